"""What an episode tool sees of its run: the task, the segments so far, the episode's other tools, and
(when the caller knows it) the task's reference answer with a grader.

A tool function opts in with ``@episode_tool``: it is then called as ``function(text, episode)`` instead
of ``function(text)``. That is how composite tools (ReWOO's solver, PASS's summarize, Reflexion's
evaluator) run the episode's Search / Lookup, read several earlier segments, or grade an answer.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

Grader = Callable[[str, str], bool]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def episode_tool(function):
    """Mark ``function(text, episode)`` as a tool that receives the Episode; returns ``function``."""
    function.ltlagent_episode = True
    return function


def wants_episode(function) -> bool:
    """True when ``function`` was marked with ``@episode_tool``."""
    return bool(getattr(function, "ltlagent_episode", False))


def default_grader(answer: str, reference: str) -> bool:
    """Normalised exact match (HotpotQA's EM); equal numbers when the reference is a number."""
    from ..eval.metrics import exact_match, last_number

    if NUMBER.fullmatch(reference.strip()):
        value = last_number(answer)
        return value is not None and abs(value - float(reference.strip().replace(",", ""))) < 1e-9
    return exact_match(answer, reference) == 1.0


@dataclass(frozen=True)
class Episode:
    """One run as its tools see it. ``records`` are the segments so far (``SegmentRecord``s: name,
    option, text, by); ``reference`` is the task's gold answer when the caller gave one. ``cancelled`` is
    set by the ToolBox when the tool using this episode timed out: its later calls then do nothing."""

    toolbox: object
    task: str = ""
    records: tuple = ()
    reference: Optional[str] = None
    grader: Optional[Grader] = None
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    def call(self, name: str, text: str):
        """Run another tool of the episode (name matched exactly, else case-insensitively); a ToolResult."""
        return self.call_many([(name, text)])[0]

    def call_many(self, calls: list[tuple[str, str]]) -> list:
        """Run several tools concurrently; ToolResults in call order (ok=False for every call once the
        episode is cancelled, so an abandoned composite tool cannot change the browser any more)."""
        from .registry import ToolResult

        if self.cancelled.is_set():
            return [ToolResult("Cancelled: the calling tool timed out.", False, 0.0, "cancelled") for _ in calls]
        return self.toolbox.call_many([(self.resolve(name), text) for name, text in calls], self)

    def resolve(self, name: str) -> str:
        """The episode's tool called ``name``, ignoring case (``name`` itself when there is none)."""
        return self.toolbox.find(name) or name

    def since(self, segment: str) -> tuple:
        """The records after the latest one of ``segment`` (every record when there is none)."""
        latest = max((i for i, r in enumerate(self.records) if r.name == segment), default=-1)
        return tuple(self.records[latest + 1:])

    def calls_since(self, segment: str, action: str = "action", argument: str = "action_input") -> list:
        """``(tool, input)`` pairs written since the latest ``segment``: each ``action`` record (its
        option, else its text) with the ``argument`` record that follows it."""
        calls, pending = [], None
        for record in self.since(segment):
            if record.name == action:
                pending = record.option or record.text
            elif record.name == argument and pending is not None:
                calls.append((pending, record.text))
                pending = None
        return calls

    def grade(self, answer: str) -> bool:
        """Whether ``answer`` matches the reference (by ``grader``, else ``default_grader``). Raises
        ToolUnavailable when the caller gave no reference answer."""
        from .registry import ToolUnavailable

        if self.reference is None:
            raise ToolUnavailable("No reference answer was given for this task (ltlagent run --reference, "
                                  "or ltlagent eval, which passes each item's gold answer).")
        return bool((self.grader or default_grader)(answer, self.reference))
