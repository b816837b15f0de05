"""Answer metrics: HotpotQA exact match and F1 with the official answer normalisation; GSM8K numeric
accuracy on the ``#### n`` answer (or any number); class-label accuracy (FEVER)."""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Optional

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the HotpotQA / SQuAD normalisation)."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Token-level F1 of the normalised answers; yes / no / noanswer must match exactly."""
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if pred in ("yes", "no", "noanswer") or ref in ("yes", "no", "noanswer"):
        if pred != ref:
            return 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def last_number(text: str) -> Optional[float]:
    """The last number in a text (thousands separators allowed), or None."""
    found = _NUMBER.findall(text or "")
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def gsm8k_gold(answer: str) -> float:
    """The number after ``####`` in a GSM8K answer. Raises ValueError when there is none."""
    if "####" not in answer:
        raise ValueError("GSM8K answer without '####'")
    value = last_number(answer.split("####")[-1])
    if value is None:
        raise ValueError("GSM8K answer without a number after '####'")
    return value


def numeric_match(prediction: str, gold: float, tolerance: float = 1e-6) -> float:
    value = last_number(prediction)
    return float(value is not None and abs(value - gold) <= tolerance * max(1.0, abs(gold)))


def gold_number(answer: str) -> Optional[float]:
    """A numeric reference answer: the number after ``####`` when there is one (GSM8K), else the last
    number in the text; None when it has no number."""
    try:
        return gsm8k_gold(answer) if "####" in answer else last_number(answer)
    except ValueError:
        return None


def normalize_label(text: str) -> str:
    """A class label compared loosely: case-folded, blanks collapsed, surrounding punctuation dropped
    (``"Not enough info."`` reads as ``"NOT ENOUGH INFO"``)."""
    return " ".join(text.strip().strip(string.punctuation).split()).casefold()


def label_match(prediction: str, gold: str) -> float:
    """1.0 when the predicted label is the gold one (see ``normalize_label``), else 0.0."""
    return float(normalize_label(prediction) == normalize_label(gold))
