"""Source text with positions: spans and caret rendering for error messages."""
from __future__ import annotations

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
        """The source line followed by a caret line under the span (at least one caret)."""
        line, col = self.line, self.col
        text = self.source.line_text(line)
        end_line, end_col = self.source.line_col(self.end)
        width = (end_col - col) if end_line == line else len(text) - col + 1
        marker = " " * (col - 1) + "^" * max(1, width)
        return f"    {text}\n    {marker}"


def whole(source: Source) -> Span:
    """A span covering the first character of a source (for errors about the file as a whole)."""
    return Span(source, 0, min(1, len(source.text)))


@dataclass(frozen=True)
class Embedded:
    """Text embedded in a source (e.g. a formula inside a YAML string): maps its offsets to the source's."""

    source: Source
    starts: tuple[tuple[int, int], ...]  # (offset in text, offset in source) at the start of each mapped run

    def span(self, start: int, end: int) -> Span:
        """The source span of [start, end) in the embedded text."""
        return Span(self.source, self._map(start), max(self._map(start) + 1, self._map(end)))

    def _map(self, offset: int) -> int:
        base_text, base_source = self.starts[0]
        for text_off, source_off in self.starts:
            if text_off <= offset:
                base_text, base_source = text_off, source_off
        return min(base_source + offset - base_text, len(self.source.text))


def standalone(text: str, name: str = "<string>") -> Embedded:
    """Text that is its own source."""
    return Embedded(Source(name, text), ((0, 0),))


def embed(source: Source, text: str, start: int, end: int) -> Embedded:
    """Locate ``text`` (a scalar's value) inside ``source.text[start:end]``, line by line when it was
    quoted, folded or escaped; lines that cannot be found map to the scalar's start."""
    window_end = min(len(source.text), max(end, start + 1))
    exact = source.text.find(text, start, window_end)
    if exact >= 0 or not text:
        return Embedded(source, ((0, exact if exact >= 0 else start),))
    runs, pos, cursor = [], 0, start
    for line in text.split("\n"):
        found = source.text.find(line, cursor, window_end) if line else -1
        runs.append((pos, found if found >= 0 else cursor))
        if found >= 0:
            cursor = found + len(line)
        pos += len(line) + 1
    return Embedded(source, tuple(runs))
