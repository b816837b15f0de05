"""Content constraints as regular expressions over characters, one per segment.

The translation lives in the compiler (``ltlagent.compiler.content``), so that loading a spec proves the
runtime can decode its content; this module is the runtime's name for it.
"""
from __future__ import annotations

from ltlagent.compiler.ast import Segment
from ltlagent.compiler.content import ContentError as ConstraintError
from ltlagent.compiler.content import content_regex, grammar_regex, json_regex


def choice_texts(segment: Segment) -> dict[str, str]:
    """Per option, the text written after the tag (a space, the option, END)."""
    return {option: f" {option}{segment.end}" for option in segment.options}


__all__ = ["ConstraintError", "content_regex", "choice_texts", "json_regex", "grammar_regex"]
