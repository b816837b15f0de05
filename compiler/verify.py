"""Prompt verification: split few-shot transcripts into segments by their tags and check them against
the automaton and the content constraints of model segments; report the first violation, located."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

from .ast import Segment, letter, letter_segment
from .automaton import shortest_accepted
from .source import Embedded, Span, standalone


@dataclass(frozen=True)
class Piece:
    """One segment occurrence in a transcript: its segment, content, and offsets in the example text."""

    segment: Segment
    content: str
    start: int          # offset of the tag
    content_start: int  # offset of the content


@dataclass(frozen=True)
class Violation:
    message: str
    span: Span
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExampleResult:
    index: int
    trace: tuple[str, ...]
    violation: Optional[Violation] = None

    @property
    def ok(self) -> bool:
        return self.violation is None


def split_segments(text: str, segments) -> tuple[list[Piece], Optional[int]]:
    """Pieces of a transcript: a segment starts where a line starts with its tag (the longest tag wins).
    Also returns the offset of non-blank text before the first tag, if any."""
    by_length = sorted(segments, key=lambda s: -len(s.tag))
    heads = []
    for match in re.finditer(r"^[ \t]*", text, re.MULTILINE):
        seg = next((s for s in by_length if text.startswith(s.tag, match.end())), None)
        if seg is not None:
            heads.append((match.end(), seg))
    pieces = []
    for i, (start, seg) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        body_start = start + len(seg.tag)
        body = text[body_start:end]
        lead = 1 if body.startswith(" ") else 0  # the content follows one separating space
        pieces.append(Piece(seg, body[lead:].rstrip(), start, body_start + lead))
    first = heads[0][0] if heads else len(text)
    preamble = next((m.start() for m in re.finditer(r"\S", text[:first])), None)
    return pieces, preamble


def piece_letter(piece: Piece) -> Optional[str]:
    """The alphabet letter of a piece (None for a choice segment whose content is no option)."""
    if piece.segment.content.kind == "call":
        name = piece.content.split(" ", 1)[0]
        return letter(piece.segment.name, name) if name in piece.segment.options else None
    if piece.segment.content.kind != "choice":
        return piece.segment.name
    return letter(piece.segment.name, piece.content) if piece.content in piece.segment.options else None


def check_example(compiled, text: str, where: Optional[Embedded] = None, index: int = 0) -> ExampleResult:
    """Check one transcript: the first segment that leaves the automaton's language or breaks its
    content constraint is reported with the segments allowed at that point."""
    where = where or standalone(text, "<example>")
    aut, spec = compiled.automaton, compiled.spec
    pieces, preamble = split_segments(text, spec.segments)
    if preamble is not None:
        tags = ", ".join(repr(s.tag) for s in spec.segments)
        return ExampleResult(index, (), Violation(f"text before the first segment tag (tags: {tags})",
                                                  where.span(preamble, preamble + 1)))
    state, trace = aut.initial, []
    for piece in pieces:
        allowed = _allowed_segments(compiled, state)
        name = piece_letter(piece)
        if name is None:
            options = ", ".join(piece.segment.options)
            return ExampleResult(index, tuple(trace), Violation(
                f"{piece.segment.name!r} must be one of: {options}; got {piece.content!r}",
                where.span(piece.content_start, piece.content_start + max(1, len(piece.content))), allowed))
        nxt = aut.step(state, name)
        if nxt is None:
            return ExampleResult(index, tuple(trace), Violation(
                f"segment {name!r} is not allowed here", where.span(piece.start, piece.start + len(piece.segment.tag)),
                allowed))
        problem = content_problem(piece.segment, piece.content, spec) if piece.segment.by == "model" else None
        if problem:
            return ExampleResult(index, tuple(trace), Violation(
                f"{piece.segment.name!r}: {problem}",
                where.span(piece.content_start, piece.content_start + max(1, len(piece.content))), allowed))
        state, trace = nxt, trace + [name]
    broken = _data_violation(spec, pieces, where)
    if broken is not None:
        return ExampleResult(index, tuple(trace), broken)
    if state not in aut.accepting:
        return ExampleResult(index, tuple(trace), Violation(
            "the example ends before the spec is satisfied" + _continuation(aut, state),
            where.span(len(text.rstrip()), len(text.rstrip()) + 1), _allowed_segments(compiled, state)))
    return ExampleResult(index, tuple(trace))


def _allowed_segments(compiled, state) -> tuple[str, ...]:
    letters = compiled.automaton.allowed(state)
    seen = []
    for a in letters:
        seg = letter_segment(a)
        name = a if compiled.spec.segment(seg).content.kind in ("choice", "call") else seg
        if name not in seen:
            seen.append(name)
    return tuple(seen)


def _continuation(aut, state) -> str:
    from dataclasses import replace

    rest = shortest_accepted(replace(aut, initial=state))
    return f"; the shortest way to finish is: {' '.join(rest)}" if rest else ""


def content_problem(segment: Segment, content: str, spec=None) -> Optional[str]:
    """Why ``content`` breaks the segment's content constraint, or None if it meets it (a call segment's
    content is checked when ``spec``, which declares its tools, is given)."""
    kind, value = segment.content.kind, segment.content.value
    if kind == "call" and spec is not None:
        from .content import call_problem

        return call_problem(spec, segment, content)
    if kind == "regex" and re.fullmatch(value, content) is None:
        return f"content {content!r} does not match the regex {value!r}"
    if kind == "grammar":
        return _grammar_problem(value, content)
    if kind == "json":
        return _json_problem(value, content)
    return None


def _grammar_problem(grammar: str, content: str) -> Optional[str]:
    import lark

    try:
        lark.Lark(grammar, start="start").parse(content)
    except lark.exceptions.LarkError as err:
        return f"content does not parse with the segment's grammar: {str(err).strip().splitlines()[0]}"
    return None


def _json_problem(schema_text: str, content: str) -> Optional[str]:
    import jsonschema

    try:
        value = json.loads(content)
    except json.JSONDecodeError as err:
        return f"content is not JSON: {err.msg} at character {err.pos}"
    try:
        jsonschema.validate(value, json.loads(schema_text))
    except jsonschema.ValidationError as err:
        return f"content does not meet the JSON Schema: {err.message}"
    return None


def split_prompt_file(text: str) -> list[tuple[str, int]]:
    """Examples of a prompt file: separated by lines of three or more dashes; (text, offset) each."""
    examples, start = [], 0
    for match in re.finditer(r"^-{3,}[ \t]*$\n?", text, re.MULTILINE):
        examples.append((text[start:match.start()], start))
        start = match.end()
    examples.append((text[start:], start))
    return [(body, offset) for body, offset in examples if body.strip()]


PROMPT_SUFFIXES = (".txt", ".prompt", ".md", ".json", ".py")


def prompt_files(path) -> list:
    """The prompt files under ``path``: the file itself, or a folder's files with a prompt suffix
    (sorted, recursively)."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in PROMPT_SUFFIXES)
    return [path]


def load_examples(path) -> list:
    """The examples of one prompt file as (text, Embedded location) pairs. A ``.json`` or ``.py`` file
    holds a literal list of strings (or a mapping with an ``examples`` list), read without evaluating
    anything; other files hold examples separated by lines of three or more dashes.
    Raises SpecSyntaxError for a literal file that is not such a list; OSError for unreadable files."""
    from pathlib import Path

    from .api import read_source
    from .source import shifted

    path = Path(path)
    source = read_source(path, str(path))
    if path.suffix in (".json", ".py"):
        return _literal_examples(source)
    return [(text, shifted(source, text, offset)) for text, offset in split_prompt_file(source.text)]


def _literal_examples(source) -> list:
    import ast
    import warnings

    from .errors import SpecSyntaxError
    from .source import Span, embed

    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence": the literal is still read
            warnings.simplefilter("ignore")
            tree = ast.parse(source.text, mode="eval").body
    except (SyntaxError, ValueError) as err:  # ValueError: a NUL byte in the file
        offset = source.offset(getattr(err, "lineno", None) or 1, getattr(err, "offset", None) or 1)
        message = getattr(err, "msg", None) or str(err)
        raise SpecSyntaxError(f"not a literal list of examples: {message}", Span(source, offset, offset + 1)) from None
    if isinstance(tree, ast.Dict):
        tree = next((v for k, v in zip(tree.keys, tree.values)
                     if isinstance(k, ast.Constant) and k.value == "examples"), tree)
    if not isinstance(tree, (ast.List, ast.Tuple)):
        raise SpecSyntaxError("expected a list of example strings (or a mapping with an 'examples' list)",
                              Span(source, 0, 1))
    examples = []
    for node in tree.elts:
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            start = source.offset(node.lineno, node.col_offset + 1)
            raise SpecSyntaxError("every example must be a string", Span(source, start, start + 1))
        start = source.offset(node.lineno, node.col_offset + 1)
        end = source.offset(node.end_lineno, node.end_col_offset + 1)
        examples.append((node.value, embed(source, node.value, start, end)))
    return examples


def _data_violation(spec, pieces, where) -> Optional[Violation]:
    """The first step of an example at which a data rule is false, as a Violation located at its piece
    (the example's observations are the results the rules read)."""
    rules = [r for r in spec.behavior if r.kind == "data"]
    if not rules:
        return None
    from .data import trace_steps
    from .semantics import holds_at

    steps = trace_steps(spec, ((p.segment.name, piece_letter(p) or p.segment.name, p.content, None) for p in pieces))
    for i, piece in enumerate(pieces):
        for rule in rules:
            if not holds_at(rule.node.arg, steps, i):
                why = f" ({rule.why})" if rule.why else ""
                return Violation(f"this step breaks a data rule{why}: {' '.join(rule.text.split())[:100]}",
                                 where.span(piece.start, piece.start + len(piece.segment.tag)))
    return None
