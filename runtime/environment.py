"""The environment's side of a run: env segments are filled by the task, the user, or a tool call.

``Environment.produce(segment, records)`` returns ``(text, tool_info)``; tool failures and timeouts come
back as observation text from the ToolBox, never as exceptions.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Callable, Optional

from ltlagent.compiler.ast import Segment

from .tools.episode import Episode, Grader


class EndOfInput(Exception):
    """Raised by ``ask_user`` when the user's input has ended: the conversation is over. The decode loop
    ends the run there if the spec accepts it, else stops with an error."""


def read_user_line(segment: Segment) -> str:
    """The user's next line from stdin (without its newline), the tag being already on screen. Raises
    EndOfInput at the end of input."""
    import sys

    line = sys.stdin.readline()
    if not line:
        raise EndOfInput(segment.name)
    return line.rstrip("\r\n")


def _prompted_line(segment: Segment) -> str:
    """``input()`` with the tag as its prompt; EndOfInput at the end of input."""
    try:
        return input(f"{segment.tag} ")
    except EOFError:
        raise EndOfInput(segment.name) from None


class Environment:
    """Fills env segments: ``input: task`` with the task, ``input: user`` through ``ask_user``, a tool
    binding through the ToolBox (tool name fixed or taken from the latest option of a choice segment,
    input from the latest text of a segment), and anything unbound through ``fallback``. Episode tools
    (``@episode_tool``) also see the segments so far and ``reference``, the task's gold answer if known."""

    def __init__(self, task: str, toolbox=None, ask_user: Optional[Callable[[Segment], str]] = None,
                 fallback: Optional[Callable[[Segment, list], str]] = None, reference: Optional[str] = None,
                 grader: Optional[Grader] = None):
        self.task, self.toolbox = task, toolbox
        self.reference, self.grader = reference, grader
        self.ask_user = ask_user or _prompted_line
        self.fallback = fallback or default_fallback(toolbox)

    def produce(self, segment: Segment, records: list) -> tuple[str, Optional[dict]]:
        if segment.input == "task":
            return self.task, None
        if segment.input == "user":
            return self.ask_user(segment), None
        if segment.tool is None:
            return self.fallback(segment, records), None
        name = segment.tool.name or _latest(records, segment.tool.name_from, option=True)
        argument = _latest(records, segment.tool.input_from) if segment.tool.input_from else _last_model_text(records)
        if segment.tool.name_from is not None and segment.tool.input_from is None and name is not None:
            argument = _call_arguments(records, segment.tool.name_from, name, argument)
        if self.toolbox is None:
            return f"No tools are available for {name}.", {"name": name, "input": argument, "ok": False}
        episode = Episode(self.toolbox, self.task, tuple(records), self.reference, self.grader)
        result = self.toolbox.call(name or "", argument or "", episode)
        return result.text, {"name": name, "input": argument, **asdict(result)}


def _latest(records: list, segment: Optional[str], option: bool = False) -> Optional[str]:
    for record in reversed(records):
        if record.name == segment:
            return record.option if option else record.text
    return None


def _call_arguments(records: list, source: str, name: str, fallback: str) -> str:
    """The arguments (JSON text) of the latest call in call segment ``source``, written ``NAME {...}``;
    ``fallback`` when that segment is a choice (its input is another segment's text)."""
    text = _latest(records, source) or ""
    head, _, rest = text.partition(" ")
    return rest if head == name and rest.lstrip().startswith("{") else fallback


def _last_model_text(records: list) -> str:
    return next((r.text for r in reversed(records) if r.by == "model"), "")


def default_fallback(toolbox) -> Callable[[Segment, list], str]:
    """For env segments the spec binds to nothing (e.g. the reference s-expression specs): when the
    latest model segments look like ``action`` / ``action input`` and the action names a tool, call it
    (ReAct style); otherwise an observation saying nothing is bound."""
    def fallback(segment: Segment, records: list) -> str:
        action = next((r for r in reversed(records) if r.by == "model" and "action" in r.name
                       and "input" not in r.name), None)
        argument = next((r.text for r in reversed(records) if r.by == "model" and "input" in r.name), "")
        if toolbox is not None and action is not None:
            wanted = action.option or action.text
            name = _match_tool(toolbox, wanted)
            if name is not None:
                return toolbox.call(name, argument).text
            return f"No tool named {wanted.strip()!r}. Available tools: {', '.join(toolbox.names()) or 'none'}."
        return f"(no environment is bound to {segment.name})"
    return fallback


def _match_tool(toolbox, text: str) -> Optional[str]:
    return toolbox.find(text.split("[", 1)[0])
