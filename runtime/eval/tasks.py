"""Tasks: which fields of a JSONL item hold the task text, the reference answer, the id and the item's
documents, and how a prediction is scored (a *metric*).

Built-in tasks: ``hotpotqa`` (question, answer, _id, context; exact match and F1), ``gsm8k`` (question,
answer ending in ``#### n``, id; numeric accuracy), ``fever`` (claim, label, id; label accuracy) and
``custom`` (any JSONL file: ``--fields`` names its fields, ``--metric`` picks the metric, em_f1 by
default). Metrics: ``em_f1``, ``numeric``, ``label`` or a user's ``module:function`` taking
``(prediction, gold)`` and returning a number or a dict of numbers.

Needs no torch: ``ltlagent eval`` checks its options with this module before anything heavy loads.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, replace
from typing import Callable, Optional

from .metrics import (exact_match, f1, gold_number, gsm8k_gold, label_match, last_number, normalize_answer,
                      normalize_label, numeric_match)

FEVER_LABELS = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")
ROLES = ("question", "answer", "id", "context")
METRICS = ("em_f1", "numeric", "label")
# Fields of a result row a metric's scores may not overwrite.
RESERVED = frozenset({"id", "question", "gold", "prediction", "satisfied", "parse_failed", "parse_failure",
                      "stopped_by", "segments", "model_tokens", "forward_passes", "seconds", "letters", "trace",
                      "transcript", "samples", "votes", "error", "errors", "metrics", "seed", "sample", "items"})


class TaskError(ValueError):
    """A bad ``--task``, ``--fields`` or ``--metric`` (a usage error); ``flag`` names the option."""

    def __init__(self, flag: str, message: str):
        super().__init__(message)
        self.flag = flag


class MetricError(ValueError):
    """A user metric that raised, or returned something other than a number or a dict of numbers."""


@dataclass(frozen=True)
class Metric:
    """How predictions are scored: ``score(prediction, gold)`` gives named scores (floats, 1.0 best);
    ``vote_key`` normalises an answer for the majority vote of ``--samples``; ``grade`` is the pass / fail
    judgement of tools that grade answers (Reflexion's evaluator); ``gold_problem`` says why a reference
    answer cannot be scored (None when it can)."""

    name: str
    score: Callable[[str, str], dict]
    vote_key: Callable[[str], str]
    grade: Callable[[str, str], bool]
    gold_problem: Callable[[str], Optional[str]] = lambda gold: None


@dataclass(frozen=True)
class Fields:
    """The item fields of each role. ``id`` None: items are numbered by line; a named ``id`` or
    ``context`` field that an item lacks is an error only when ``required`` (given with ``--fields``)."""

    question: Optional[str]
    answer: Optional[str]
    id: Optional[str] = None
    context: Optional[str] = None
    required: frozenset = frozenset()


@dataclass(frozen=True)
class Task:
    """A dataset kind: its fields, its metric, and ``gold_problem``, the task's own check of a reference
    answer (None when it is fine)."""

    name: str
    fields: Fields
    metric: Metric
    gold_problem: Callable[[str], Optional[str]] = lambda gold: None


def _numeric_key(answer: str) -> str:
    value = last_number(answer)
    return f"{value:g}" if value is not None else normalize_answer(answer)


def _numeric_score(prediction: str, gold: str) -> dict:
    value = gold_number(gold)
    return {"accuracy": 0.0 if value is None else numeric_match(prediction, value)}


def _numeric_gold(gold: str) -> Optional[str]:
    return None if gold_number(gold) is not None else f"the answer {gold!r} has no number (--metric numeric needs one)"


BUILTIN_METRICS = {
    "em_f1": Metric("em_f1", lambda p, g: {"em": exact_match(p, g), "f1": f1(p, g)}, normalize_answer,
                    lambda p, g: exact_match(p, g) == 1.0),
    "numeric": Metric("numeric", _numeric_score, _numeric_key, lambda p, g: _numeric_score(p, g)["accuracy"] == 1.0,
                      _numeric_gold),
    "label": Metric("label", lambda p, g: {"accuracy": label_match(p, g)}, normalize_label,
                    lambda p, g: label_match(p, g) == 1.0),
}


def _hotpotqa_gold(gold: str) -> Optional[str]:
    return "this looks like GSM8K data (an answer with '####'); use --task gsm8k" if "####" in gold else None


def _gsm8k_gold(gold: str) -> Optional[str]:
    try:
        gsm8k_gold(gold)
    except ValueError as err:
        return str(err)
    return None


def _fever_gold(gold: str) -> Optional[str]:
    if gold in FEVER_LABELS:
        return None
    return f"label {gold!r} is not one of {', '.join(FEVER_LABELS)}"


# name: (default fields, default metric, the task's check of a reference answer)
TASKS = {
    "hotpotqa": (Fields("question", "answer", "_id", "context"), "em_f1", _hotpotqa_gold),
    "gsm8k": (Fields("question", "answer", "id"), "numeric", _gsm8k_gold),
    "fever": (Fields("claim", "label", "id"), "label", _fever_gold),
    "custom": (Fields(None, None), "em_f1", lambda gold: None),
}


def make_task(name: str, fields: Optional[str] = None, metric: Optional[str] = None) -> Task:
    """The task ``name`` with its fields overridden by ``fields`` (``role=field,...``, see
    ``parse_fields``) and its metric replaced by ``metric``. Raises TaskError naming the option at fault:
    an unknown task, bad ``--fields`` (``custom`` needs at least question and answer), a bad ``--metric``."""
    if name not in TASKS:
        raise TaskError("--task", f"unknown task {name!r}; use {', '.join(TASKS)}")
    default_fields, default_metric, gold_check = TASKS[name]
    chosen = default_fields
    if fields is not None:
        given = parse_fields(fields)
        chosen = replace(default_fields, **given, required=frozenset(given))
    if chosen.question is None or chosen.answer is None:
        raise TaskError("--fields", f"--task {name} needs --fields question=FIELD,answer=FIELD (optionally also "
                                    "id=FIELD and context=FIELD): the item fields holding the task text and the "
                                    "reference answer")
    base = BUILTIN_METRICS[default_metric]
    chosen_metric = base if metric is None else load_metric(metric, base)
    return Task(name, chosen, chosen_metric, gold_check)


def parse_fields(text: str) -> dict:
    """``"question=claim,answer=label"`` as ``{"question": "claim", "answer": "label"}``. Roles are
    question, answer, id and context, each at most once. Raises TaskError (flag ``--fields``)."""
    result = {}
    for part in text.split(","):
        role, equals, field = (s.strip() for s in part.partition("="))
        if not equals or not role or not field:
            raise TaskError("--fields", f"{part.strip()!r} is not ROLE=FIELD; write e.g. "
                                        "question=claim,answer=label,id=id,context=paragraphs")
        if role not in ROLES:
            raise TaskError("--fields", f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
        if role in result:
            raise TaskError("--fields", f"role {role!r} is given twice")
        result[role] = field
    return result


def load_metric(spec: str, vote: Metric) -> Metric:
    """The metric ``spec`` names: a built-in (em_f1, numeric, label) or ``module:function``, imported
    now; a user metric votes and grades as ``vote`` does. Raises TaskError (flag ``--metric``) for an
    unknown name or a function that cannot be imported."""
    if spec in BUILTIN_METRICS:
        return BUILTIN_METRICS[spec]
    if ":" not in spec:
        raise TaskError("--metric", f"unknown metric {spec!r}; use {', '.join(METRICS)} or module:function")
    from ltlagent.compiler.tools import function_problem

    problem = function_problem(spec, what=f"--metric {spec}")
    if problem is not None:
        raise TaskError("--metric", problem)
    module_name, _, attribute = spec.partition(":")
    if attribute in RESERVED:
        raise TaskError("--metric", f"--metric {spec}: a function named {attribute!r} would score into the result "
                                    f"rows' own field {attribute!r}; give it another name")
    function = getattr(importlib.import_module(module_name), attribute)
    return Metric(spec, _user_score(function, spec, attribute), vote.vote_key, vote.grade)


def _user_score(function, spec: str, key: str) -> Callable[[str, str], dict]:
    def score(prediction: str, gold: str) -> dict:
        try:
            value = function(prediction, gold)
        except Exception as err:  # noqa: BLE001 - the user's code: reported, never a traceback
            raise MetricError(f"--metric {spec} raised {type(err).__name__}: {err}") from None
        return as_scores(value, spec, key)
    return score


def as_scores(value, spec: str, key: str) -> dict:
    """A metric's result as named float scores: a number (or bool) becomes ``{key: value}``, a dict of
    numbers is kept. Raises MetricError for anything else, and for a dict key that names a field of the
    result row (``satisfied``, ``seconds``, …) or is not a string."""
    if _is_number(value):
        return {key: float(value)}
    if isinstance(value, dict) and value and all(isinstance(k, str) and _is_number(v) for k, v in value.items()):
        clash = sorted(set(value) & RESERVED)
        if clash:
            raise MetricError(f"--metric {spec} returned the score {clash[0]!r}, which is a field of the result "
                              f"rows; rename it")
        return {k: float(v) for k, v in value.items()}
    raise MetricError(f"--metric {spec} returned {value!r} ({type(value).__name__}); it must return a number or a "
                      "non-empty dict of numbers")


def _is_number(value) -> bool:
    return isinstance(value, (bool, int, float)) and not (isinstance(value, float) and math.isnan(value))
