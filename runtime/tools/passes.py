"""PASS's environment tools (specs/pass.yaml, specs/pass_list.yaml): run the calls of one plan step, then
summarise their results or list them raw.

The calls of a step are the ``action`` / ``action_input`` pairs written since the latest ``plan``. They run
in call order, each run of consecutive Searches concurrently; after such a run the open page is the one the
Searches would leave when run one by one (the last one that found its page), so what the next Lookup reads
does not depend on thread timing. Lookups share the open page's cursor, so each runs on its own, in order.
"""
from __future__ import annotations

import re
from itertools import groupby

from .docstore import split_sentences
from .episode import Episode, episode_tool

STOPWORDS = frozenset("""about after also among and are because been before being between both but can could
did does each find first from have into just know more most need needs next only other over same should
since some step such than that their them then there these they this those through under until very want
were what when where which while whom whose will with would your""".split())


def content_words(text: str) -> set[str]:
    """Lower-cased words of four or more letters that are not stop words."""
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 3 and w not in STOPWORDS}


def relevant(result: str, words: set[str]) -> str:
    """The result's first sentence and every later one sharing a word with ``words``."""
    sentences = split_sentences(result) or (result,)
    kept = [sentences[0]] + [s for s in sentences[1:] if content_words(s) & words]
    return " ".join(kept)


def run_step(episode: Episode) -> list[tuple[str, str, str]]:
    """Run the calls written since the latest plan: ``(tool, input, result text)`` in call order."""
    done = []
    calls = episode.calls_since("plan")
    for is_search, group in groupby(calls, key=lambda call: _is_search(episode, call[0])):
        group = list(group)
        results = episode.call_many(group) if is_search else [episode.call(*call) for call in group]
        if is_search:
            _settle_page(episode, group)
        done += [(name, argument, result.text) for (name, argument), result in zip(group, results)]
    return done


def _is_search(episode: Episode, name: str) -> bool:
    return episode.resolve(name).lower() == "search"


def _settle_page(episode: Episode, searches: list[tuple[str, str]]) -> None:
    """Open the page of the last Search (in call order) that found one, whatever order the threads ran."""
    browser = getattr(episode.toolbox, "browser", None)
    pages = [page for _, argument in searches if browser is not None and (page := browser.find(argument))]
    if pages:
        browser.open(pages[-1])


@episode_tool
def summarize(plan: str, episode: Episode) -> str:
    """One line: per call in order, ``<input>: <the result's first sentence and the later ones sharing a
    content word with the plan>``."""
    words = content_words(plan)
    done = run_step(episode)
    if not done:
        return "No action was taken in this step."
    return " ".join(f"{argument}: {relevant(text, words)}" for _, argument, text in done)


@episode_tool
def list_results(plan: str, episode: Episode) -> str:
    """One line: ``(1) <Action>[<input>]: <raw result> (2) ...`` in call order."""
    done = run_step(episode)
    if not done:
        return "No action was taken in this step."
    return " ".join(f"({i}) {name}[{argument}]: {text}" for i, (name, argument, text) in enumerate(done, 1))
