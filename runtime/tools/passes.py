"""PASS's environment tools (specs/pass.yaml, specs/pass_list.yaml): run the calls of one plan step
concurrently, then summarise their results or list them raw.

The calls of a step are the ``action`` / ``action_input`` pairs written since the latest ``plan``.
Searches run concurrently; afterwards the open page is the one the calls would leave when run in call
order (the last successful Search), so the next step's Lookups do not depend on thread timing. Lookups
share the open page's cursor, so they run in call order.
"""
from __future__ import annotations

import re

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
    calls = episode.calls_since("plan")
    if calls and all(episode.resolve(name).lower() == "lookup" for name, _ in calls):
        results = [episode.call(name, argument) for name, argument in calls]
    else:
        results = episode.call_many(calls)
        _settle_page(episode, calls, results)
    return [(name, argument, result.text) for (name, argument), result in zip(calls, results)]


def _settle_page(episode: Episode, calls: list, results: list) -> None:
    opened = [argument for (name, argument), result in zip(calls, results)
              if episode.resolve(name).lower() == "search" and result.ok and not result.text.startswith("Could not find")]
    if len(opened) > 1:
        episode.call("search", opened[-1])


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
