"""Frozen IR of the spec language: LTLf formulas, segment patterns, and their propositions.

Spans never take part in equality, so parse(print(f)) == f compares structure only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from .source import Span

_SPAN = dict(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Prop:
    """A segment (any of its options) or one option of a choice segment: ``action`` / ``action.Search``."""

    segment: str
    option: Optional[str] = None
    span: Optional[Span] = field(**_SPAN)

    def __str__(self) -> str:
        return self.segment if self.option is None else f"{self.segment}.{self.option}"


@dataclass(frozen=True)
class Const:
    value: bool
    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class Last:
    """True exactly at the last step of the trace (``WX false``)."""

    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class Unary:
    """``op`` is one of ``! X WX F G``; ``bounds`` (lo, hi) only for bounded ``F[lo,hi]`` / ``G[lo,hi]``."""

    op: str
    arg: "Formula"
    bounds: Optional[tuple[int, int]] = None
    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class Binary:
    """``op`` is one of ``& | -> <-> U R W``."""

    op: str
    left: "Formula"
    right: "Formula"
    span: Optional[Span] = field(**_SPAN)


Formula = Union[Prop, Const, Last, Unary, Binary]

UNARY_OPS = ("!", "X", "WX", "F", "G")
BINARY_OPS = ("&", "|", "->", "<->", "U", "R", "W")


@dataclass(frozen=True)
class PAtom:
    """A segment pattern atom: one segment (any option) or one option of a choice segment."""

    prop: Prop
    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class PSeq:
    items: tuple["Pattern", ...]
    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class PAlt:
    items: tuple["Pattern", ...]
    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class PRepeat:
    """``body`` repeated between ``lo`` and ``hi`` times (``hi`` None: unbounded)."""

    body: "Pattern"
    lo: int
    hi: Optional[int]
    span: Optional[Span] = field(**_SPAN)


Pattern = Union[PAtom, PSeq, PAlt, PRepeat]


def formula_props(formula: Formula) -> list[Prop]:
    """Every proposition occurrence in a formula, left to right (with spans)."""
    if isinstance(formula, Prop):
        return [formula]
    if isinstance(formula, Unary):
        return formula_props(formula.arg)
    if isinstance(formula, Binary):
        return formula_props(formula.left) + formula_props(formula.right)
    return []


def pattern_props(pattern: Pattern) -> list[Prop]:
    """Every proposition occurrence in a segment pattern, left to right."""
    if isinstance(pattern, PAtom):
        return [pattern.prop]
    if isinstance(pattern, PRepeat):
        return pattern_props(pattern.body)
    return [prop for item in pattern.items for prop in pattern_props(item)]


def letter(segment: str, option: Optional[str] = None) -> str:
    """The alphabet letter of a segment, or of one option of a choice segment."""
    return segment if option is None else f"{segment}.{option}"


def letter_segment(name: str) -> str:
    """The segment of a letter (segment names never contain dots)."""
    return name.split(".", 1)[0]


def prop_matches(prop: Prop, name: str) -> bool:
    """Whether a proposition is true at a step whose letter is ``name``."""
    if prop.option is None:
        return letter_segment(name) == prop.segment
    return name == letter(prop.segment, prop.option)
