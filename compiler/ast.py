"""Frozen IR of the spec language: LTLf formulas, segment patterns, and their propositions.

Spans never take part in equality, so parse(print(f)) == f compares structure only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from .source import Source, Span

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


# -- data: terms over tool calls, comparisons, quantifiers, past time (see compiler/data.py) ------------

@dataclass(frozen=True)
class Path:
    """A term naming data: ``root`` is a call segment (the current step's call, when it is one of that
    segment), ``this`` (the current step's call, any call segment) or a quantified variable; ``parts``
    walk from it: ``args``, ``result``, ``ok``, ``tool``, then field names (str), ``"*"`` (every element)
    or list indexes (int)."""

    root: str
    parts: tuple[Union[str, int], ...] = ()
    span: Optional[Span] = field(**_SPAN)

    def __str__(self) -> str:
        out = self.root
        for part in self.parts:
            out += f"[{part}]" if isinstance(part, int) else ("[*]" if part == "*" else f".{part}")
        return out


@dataclass(frozen=True)
class Literal:
    """A constant term: a string, a number, null (None), or a list of constants (a tuple)."""

    value: object
    span: Optional[Span] = field(**_SPAN)


Term = Union[Path, Literal]


@dataclass(frozen=True)
class Compare:
    """``left op right``; ``op`` is one of ``== != < <= > >= in notin``."""

    op: str
    left: Term
    right: Term
    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class Truth:
    """A term used as a formula (``x.ok``): true when its value is ``true``."""

    term: Path
    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class Quant:
    """``exists|forall|latest VAR in RANGE, ...: body`` over the earlier calls of the ranges (letters
    ``segment.tool`` of call segments, or whole call segments: Props), or over the values of one
    collection (a Path: a list's elements, an object's values); ``latest`` binds the most recent call
    (false when there is none)."""

    kind: str
    var: str
    ranges: tuple[Union[Prop, Path], ...]
    body: "Formula"
    span: Optional[Span] = field(**_SPAN)


Formula = Union[Prop, Const, Last, Unary, Binary, Compare, Truth, Quant]

UNARY_OPS = ("!", "X", "WX", "F", "G")
BINARY_OPS = ("&", "|", "->", "<->", "U", "R", "W")
PAST_UNARY = ("previous", "once", "historically")   # Unary ops of the past (data rules only)
PAST_BINARY = ("since",)                            # Binary op of the past (data rules only)
CALL_FIELDS = ("args", "result", "ok", "tool")      # what a call term may name first


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


# ---------------------------------------------------------------------------------------------------
# Specs

@dataclass(frozen=True)
class Content:
    """What a segment may contain. ``kind`` is one of ``text choice regex grammar json call``.

    ``value`` holds the options (choice), the regular expression (regex), the Lark grammar text (grammar),
    the JSON Schema as canonical JSON text (json) or the tools it may call (call: a tool call written
    ``NAME {arguments}``, the arguments a JSON object under the tool's ``parameters``); None for free text. ``max_tokens`` is the segment's
    token budget (None: only the spec's overall budget applies)."""

    kind: str = "text"
    value: Union[None, str, tuple[str, ...]] = None
    max_tokens: Optional[int] = None


@dataclass(frozen=True)
class ToolCall:
    """How an env segment is produced by a tool: a fixed tool ``name``, or the tool named by the option
    chosen in segment ``name_from``; its input is the text of the latest ``input_from`` segment."""

    name: Optional[str] = None
    name_from: Optional[str] = None
    input_from: Optional[str] = None


@dataclass(frozen=True)
class Segment:
    """One kind of segment of the agent's transcript: opened by ``tag``, produced by ``by``
    (``model`` or ``env``). An env segment is filled by the task (``input='task'``), the user
    (``input='user'``) or a tool (``tool``); one with none of them is left to the runtime's defaults."""

    name: str
    tag: str
    by: str = "model"
    content: Content = Content()
    end: str = "\n"
    input: Optional[str] = None
    tool: Optional[ToolCall] = None
    description: Optional[str] = None
    span: Optional[Span] = field(**_SPAN)

    @property
    def options(self) -> tuple[str, ...]:
        return self.content.value if self.content.kind in ("choice", "call") else ()

    @property
    def letters(self) -> tuple[str, ...]:
        """Alphabet letters of this segment: one per option of a choice segment, else its name."""
        return tuple(letter(self.name, o) for o in self.options) or (self.name,)


@dataclass(frozen=True)
class Tool:
    """A tool env segments can call: ``kind`` is ``builtin`` (``target`` a built-in name), ``function``
    (``target`` = ``module:function``) or ``entry_point`` (``target`` a name in group ltlagent.tools).
    ``parameters`` and ``returns`` are JSON Schemas (canonical JSON text) of its arguments, as a call
    segment writes them, and of its result, as data rules read it (None: not declared)."""

    name: str
    kind: str
    target: str
    timeout: float = 10.0
    description: Optional[str] = None
    parameters: Optional[str] = None
    returns: Optional[str] = None
    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class Rule:
    """One conjunct of the behaviour: an LTLf formula (``kind='ltl'``), a segment pattern, or a data rule
    (``kind='data'``: ``G`` of a past-time formula over data, see compiler/data.py; enforced by the
    runtime at every step, not compiled into the automaton)."""

    kind: str
    text: str
    node: Union[Formula, Pattern]
    why: Optional[str] = None
    span: Optional[Span] = field(**_SPAN)


@dataclass(frozen=True)
class Limits:
    """Per run: ``max_segments`` and ``max_tokens``; per compilation: ``max_states``, the most states any
    automaton built for the spec may have (the cap that turns a blow-up into an error)."""

    max_segments: int = 50
    max_tokens: int = 2048
    max_states: int = 100_000


@dataclass(frozen=True)
class Example:
    """A few-shot example transcript, located in its source for error reporting."""

    text: str
    where: Optional[object] = field(default=None, compare=False, repr=False)  # source.Embedded


PROMPT_FORMATS = ("completion", "chat", "chat-system", "chat-turns")
# A spec without prompt.format (and no --prompt-format) runs in this one; chosen by measurement (README,
# "Prompt formats"). On a model without a chat template it falls back to ``completion`` (runtime/prompts.py).
DEFAULT_PROMPT_FORMAT = "chat"
CHAT_FORMAT = "chat-system"  # the placement plain ``chat`` stands for


def resolve_prompt_format(asked: Optional[str]) -> str:
    """The concrete prompt format of a spec's or the command line's value: None is the default, ``chat``
    its placement (``chat-system`` or ``chat-turns``). Raises ValueError for an unknown format."""
    name = DEFAULT_PROMPT_FORMAT if asked is None else asked
    if name not in PROMPT_FORMATS:
        raise ValueError(f"unknown prompt format {name!r}; use one of {', '.join(PROMPT_FORMATS)}")
    return CHAT_FORMAT if name == "chat" else name


@dataclass(frozen=True)
class Prompt:
    """Instructions and few-shot examples; ``format`` as written in the spec (None: not given, see
    ``resolve_prompt_format``)."""

    instructions: str = ""
    examples: tuple[Example, ...] = ()
    format: Optional[str] = None


@dataclass(frozen=True)
class Spec:
    """A validated spec: every name it uses is declared (see checks.py)."""

    name: str
    segments: tuple[Segment, ...]
    behavior: tuple[Rule, ...]
    tools: tuple[Tool, ...] = ()
    limits: Limits = Limits()
    prompt: Prompt = Prompt()
    description: Optional[str] = None
    dialect: str = "yaml"
    source: Optional[Source] = field(default=None, compare=False, repr=False)

    @property
    def alphabet(self) -> tuple[str, ...]:
        return tuple(a for s in self.segments for a in s.letters)

    def segment(self, name: str) -> Segment:
        """The segment called ``name`` (KeyError if none)."""
        for s in self.segments:
            if s.name == name:
                return s
        raise KeyError(name)

    def tool(self, name: str) -> Tool:
        for t in self.tools:
            if t.name == name:
                return t
        raise KeyError(name)
