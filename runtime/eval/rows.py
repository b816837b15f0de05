"""Result rows: one JSON object per item, built from its episode(s).

One episode per item (the default) gives a row with the run's fields: ``prediction``, ``satisfied``,
``parse_failed`` / ``parse_failure``, ``stopped_by``, the costs (``segments`` — a count —, ``model_tokens``,
``forward_passes``, ``seconds``), ``letters``, and the whole run: ``trace`` (per segment: name, letter,
option, text, by, tokens, and the tool call's name, input, ok and error) and ``transcript`` (the
episode's text after the prompt). With ``--samples K`` the row holds each episode under ``samples`` and
sums them up: the majority answer is the ``prediction``, ``satisfied`` and ``parse_failed`` are the shares
of samples, the costs are the item's totals (``segments``: the mean per sample), ``votes`` counts the
answers. Every row has the task's scores on its prediction, and ``metrics`` names them.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Optional

from .datasets import Item
from .tasks import MetricError, Task

SUMMED = ("model_tokens", "forward_passes", "seconds")


def segment_summary(record) -> dict:
    """What a result row keeps of one segment (a ``SegmentRecord``): name, letter, option, text, by,
    tokens, and for a tool call its name, input, ok and error."""
    summary = {"name": record.name, "letter": record.letter, "option": record.option, "text": record.text,
               "by": record.by, "tokens": record.tokens}
    if record.tool is not None:
        summary["tool"] = {k: record.tool.get(k) for k in ("name", "input", "ok", "error")}
    return summary


def episode_text(transcript: str, prompt: str) -> str:
    """The episode's part of a run's transcript: what follows the prompt (all of it if it does not
    start with the prompt)."""
    return transcript[len(prompt):] if prompt and transcript.startswith(prompt) else transcript


def episode_fields(result, prediction: str, satisfied: bool, parse_failure: Optional[str], prompt: str) -> dict:
    """The fields of one finished episode (a ``RunResult``) in a result row."""
    return {"prediction": prediction, "satisfied": satisfied, "parse_failed": parse_failure is not None,
            "parse_failure": parse_failure, "stopped_by": result.stopped_by, "segments": len(result.segments),
            "model_tokens": result.model_tokens, "forward_passes": result.forward_passes,
            "seconds": round(result.seconds, 3), "letters": result.letters,
            "trace": [segment_summary(r) for r in result.segments],
            "transcript": episode_text(result.transcript, prompt)}


def majority(answers: list[str], key: Callable[[str], str]) -> tuple[int, dict]:
    """The majority vote over ``answers``: ``(index of the chosen answer, votes per normalised answer)``.
    Answers are compared by ``key``; empty ones (no answer written, or a failed run) do not vote unless
    every answer is empty. Ties go to the answer met first, and the index is that answer's first
    occurrence. Raises ValueError for no answers."""
    if not answers:
        raise ValueError("no answers to vote on")
    keys = [key(a) for a in answers]
    voters = [i for i, a in enumerate(answers) if a.strip()] or list(range(len(answers)))
    votes = Counter(keys[i] for i in voters)
    best = max(votes.values())
    chosen = next(i for i in voters if votes[keys[i]] == best)
    return chosen, dict(votes)


def item_row(item: Item, task: Task, samples: list[dict]) -> dict:
    """The result row of ``item`` from its episodes' fields (one dict per sample, in sample order; a
    sample that failed has ``error``). Raises MetricError (naming the item) when a user metric fails."""
    base = {"id": item.id, "question": item.question, "gold": item.answer}
    fields = dict(samples[0]) if len(samples) == 1 else combine(samples, task.metric.vote_key)
    try:
        scores = task.metric.score(fields.get("prediction", ""), item.answer)
    except MetricError as err:
        raise MetricError(f"{err} (item {item.id!r})") from None
    return {**base, **fields, **scores, "metrics": list(scores)}


def combine(samples: list[dict], vote_key: Callable[[str], str]) -> dict:
    """One item's fields from several sampled episodes: the majority prediction, the shares of samples
    satisfied and failing to parse, summed costs, the mean segment count, the votes, and the samples
    themselves. ``error`` only when every sample failed (the first one's)."""
    answers = [s.get("prediction", "") for s in samples]
    chosen, votes = majority(answers, vote_key)
    finished = [s for s in samples if "error" not in s]
    fields = {"prediction": answers[chosen],
              "satisfied": sum(bool(s.get("satisfied")) for s in samples) / len(samples),
              "parse_failed": sum(bool(s.get("parse_failed")) for s in samples) / len(samples),
              "votes": votes}
    for key in SUMMED:
        fields[key] = round(sum(float(s.get(key) or 0) for s in samples), 3)
    if finished:
        fields["segments"] = sum(s.get("segments", 0) for s in finished) / len(finished)
    else:
        fields["error"] = samples[0]["error"]
    fields["samples"] = samples
    return fields
