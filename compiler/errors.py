"""The one exception family users see: every error carries a span and renders as file:line:col."""
from __future__ import annotations

from .source import Span, printable


class SpecError(Exception):
    """A problem in a spec, formula, pattern or prompt, located by a span (None for location-free errors)."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        """``file:line:col: message``, the source line, a caret line, then the hint if any; characters
        unsafe on a terminal are shown escaped (``source.printable``)."""
        message = printable(self.message)
        if self.span is None:
            head = message
        else:
            head = f"{printable(self.span.location())}: {message}\n{self.span.caret()}"
        return head if self.hint is None else f"{head}\n  hint: {printable(self.hint)}"


class SpecSyntaxError(SpecError):
    """Text that does not parse: YAML, an LTLf formula, a segment pattern or an s-expression."""


class SpecSemanticError(SpecError):
    """Text that parses but means nothing valid: unknown names, wrong types, bad bounds, unknown tools."""


class AutomatonTooLarge(SpecError):
    """The automaton construction passed its state cap (raised instead of exhausting memory)."""


class ArtifactError(SpecError):
    """A compiled artifact that cannot be read (wrong version, malformed JSON)."""
