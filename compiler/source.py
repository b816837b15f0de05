"""Source text with positions: spans and caret rendering for error messages."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """A named piece of text: a file's contents, or an inline string (name ``<string>``)."""

    name: str
    text: str

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a 0-based character offset, clamped to the text."""
        offset = max(0, min(offset, len(self.text)))
        line = self.text.count("\n", 0, offset) + 1
        start = self.text.rfind("\n", 0, offset) + 1
        return line, offset - start + 1

    def offset(self, line: int, col: int) -> int:
        """0-based offset of a 1-based (line, column); lines past the end clamp to the end."""
        lines = self.text.split("\n")
        if line > len(lines):
            return len(self.text)
        return sum(len(text) + 1 for text in lines[: line - 1]) + col - 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline ('' past the end)."""
        lines = self.text.split("\n")
        return lines[line - 1] if 0 < line <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """A half-open range [start, end) of character offsets in a source."""

    source: Source = field(repr=False)
    start: int
    end: int

    @property
    def line(self) -> int:
        return self.source.line_col(self.start)[0]

    @property
    def col(self) -> int:
        return self.source.line_col(self.start)[1]

    def sub(self, start: int, end: int) -> "Span":
        """The span of [start, end) counted from this span's start."""
        return Span(self.source, self.start + start, self.start + end)

    def location(self) -> str:
        """``file:line:col``."""
        return f"{self.source.name}:{self.line}:{self.col}"

    def caret(self) -> str:
        """The source line followed by a caret line under the span (at least one caret). Characters a
        terminal would act on (control characters, lone surrogates, non-characters) are shown escaped,
        as ``\\x7f``, and the caret stays under the escaped form; a line longer than CARET_WINDOW
        characters is cut around the span, the cuts marked ``…``."""
        line, col = self.line, self.col
        text = self.source.line_text(line)
        end_line, end_col = self.source.line_col(self.end)
        start, end = col - 1, (end_col - 1 if end_line == line else len(text))
        lo, hi = max(0, start - CARET_WINDOW // 2), max(end, start + CARET_WINDOW // 2)
        head, tail = ("…" if lo > 0 else ""), ("…" if hi < len(text) else "")
        before = head + printable(text[lo:start])
        marked = printable(text[start:max(end, start)])
        marker = " " * len(before) + "^" * max(1, min(len(marked), CARET_WINDOW))
        return f"    {head}{printable(text[lo:hi])}{tail}\n    {marker}"


CARET_WINDOW = 160


def _unsafe(char: str) -> bool:
    """A character that must not reach a terminal raw: control characters other than tab, lone
    surrogates (not encodable as UTF-8) and Unicode non-characters."""
    code = ord(char)
    if char == "\t":
        return False
    return (unicodedata.category(char) in ("Cc", "Cs") or 0xFDD0 <= code <= 0xFDEF
            or (code & 0xFFFE) == 0xFFFE)


def escape_char(char: str) -> str:
    """``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN`` for one character."""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every character that is unsafe on a terminal escaped (see ``_unsafe``); line
    breaks are kept."""
    if text.isprintable():
        return text
    return "".join(escape_char(c) if c != "\n" and _unsafe(c) else c for c in text)


def normalise_newlines(text: str) -> str:
    """Text with Windows (CRLF) and old Mac (CR) line endings read as LF, as users write them."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def whole(source: Source) -> Span:
    """A span covering the first character of a source (for errors about the file as a whole)."""
    return Span(source, 0, min(1, len(source.text)))


@dataclass(frozen=True)
class Embedded:
    """Text embedded in a source (e.g. a formula inside a YAML string): ``offsets[i]`` is the source
    offset of the text's character i (one extra entry for the end of the text)."""

    source: Source
    offsets: tuple[int, ...]

    def span(self, start: int, end: int) -> Span:
        """The source span of [start, end) in the embedded text."""
        first = self._map(start)
        last = self._map(max(start, end - 1)) + 1 if end > start else first + 1
        return Span(self.source, first, max(first + 1, last))

    def _map(self, offset: int) -> int:
        return self.offsets[max(0, min(offset, len(self.offsets) - 1))]


def standalone(text: str, name: str = "<string>") -> Embedded:
    """Text that is its own source."""
    return Embedded(Source(name, text), tuple(range(len(text) + 1)))


def shifted(source: Source, text: str, start: int) -> Embedded:
    """Text that stands verbatim in ``source`` at offset ``start``."""
    return Embedded(source, tuple(range(start, start + len(text) + 1)))


_ESCAPE_LENGTH = {"x": 4, "u": 6, "U": 10}
_SKIP_LIMIT = 200


def embed(source: Source, text: str, start: int, end: int) -> Embedded:
    """Locate a YAML scalar's ``text`` inside its raw form ``source.text[start:end]`` character by
    character: quotes, indentation, folded line breaks, doubled quotes and backslash escapes are skipped
    in the raw text. A character that cannot be aligned maps to the position reached so far."""
    raw = source.text[start:max(end, start + 1)]
    double = raw.startswith('"')
    offsets, j = [], int(raw[:1] in ("'", '"'))
    for char in text:
        found = _align(raw, j, char, double)
        if found is None:
            offsets.append(start + min(j, len(raw)))
            continue
        offsets.append(start + found[0])
        j = found[1]
    offsets.append(start + min(j, len(raw)))
    return Embedded(source, tuple(offsets))


def _align(raw: str, j: int, char: str, double: bool):
    """(position of ``char``'s raw form at or after j, position after it), or None within the limit."""
    limit = min(len(raw), j + _SKIP_LIMIT)
    while j < limit:
        if double and raw[j] == "\\" and j + 1 < len(raw):  # every backslash starts an escape
            if raw[j + 1] == "\n":  # a line continuation stands for nothing
                j += 2
                continue
            return j, j + _ESCAPE_LENGTH.get(raw[j + 1], 2)
        if raw[j] == char:
            return j, j + 1
        j += 1
    return None
