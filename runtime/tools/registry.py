"""The tools of an episode: built from a spec, called by name with one line of text, never raising.

Every call runs in its own daemon thread and is awaited through a ``concurrent.futures.Future`` with
the tool's timeout. A call that times out is *abandoned*: Python cannot kill a thread, so it keeps
running in the background until the tool returns (its result is then dropped); as the thread is a
daemon it never keeps the process alive. Tools that may hang should therefore not hold resources
others need.
"""
from __future__ import annotations

import importlib
import re
import threading
import time
from concurrent.futures import Future, wait
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable, Iterable, Mapping, Optional

from . import calculator
from .docstore import Browser, DocStore
from .episode import Episode, wants_episode

DEFAULT_TIMEOUT = 10.0
MAX_CHARS = 2000
ENTRY_POINT_GROUP = "ltlagent.tools"
BUILTINS = ("search", "lookup", "calculator", "finish")

ToolFunction = Callable[[str], object]


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one call: ``text`` is the observation (one line, capped), ``ok`` False when the
    tool was unknown, failed, timed out or is unavailable (``error`` then says why), ``seconds`` the
    wall time, ``finished`` True when a ``finish`` tool ran (the episode's answer is ``text``)."""

    text: str
    ok: bool
    seconds: float
    error: Optional[str] = None
    finished: bool = False


@dataclass(frozen=True)
class ToolEntry:
    """A callable tool: ``function`` takes one str (and the Episode too when ``episode``) and returns
    something str()-able."""

    name: str
    function: ToolFunction
    timeout: float = DEFAULT_TIMEOUT
    finishes: bool = False
    origin: str = ""
    episode: bool = False  # called as function(text, episode): see episode.episode_tool


class ToolError(Exception):
    """A tool that cannot be built (bad import target, missing entry point, unknown builtin)."""


class ToolUnavailable(Exception):
    """Raised by a tool to report, as the observation itself, that it cannot run (ok=False)."""


class ToolBox:
    """The tools of one episode; ``search`` and ``lookup`` share one Browser over ``docs``."""

    def __init__(self, entries: Iterable[ToolEntry] = (), docs: Optional[DocStore] = None,
                 max_chars: int = MAX_CHARS):
        self.docs = docs
        self.max_chars = max_chars
        self._entries = {entry.name: entry for entry in entries}
        self.reset()

    @classmethod
    def for_spec(cls, spec, docs: Optional[DocStore] = None,
                 extra: Optional[Mapping[str, ToolFunction]] = None, builtins: Iterable[str] = (),
                 max_chars: int = MAX_CHARS) -> "ToolBox":
        """The tools ``spec`` uses (a Spec or a CompiledSpec): its declared tools, the built-ins named in
        ``tool:`` bindings and by the options of ``name_from`` choice segments, the built-ins listed in
        ``builtins`` (e.g. ``("search", "lookup")`` for specs that bind no tools, like the reference
        s-expression specs), then ``extra`` (name to callable; overrides a tool of the same name, keeping
        its declared timeout). Raises ToolError naming the tool and its target when a function or entry
        point cannot be loaded, or a name is neither declared nor a built-in."""
        spec = getattr(spec, "spec", spec)
        box = cls((), docs, max_chars)
        declared, extra = {tool.name: tool for tool in spec.tools}, dict(extra or {})
        entries = {name: box._declared_entry(tool) for name, tool in declared.items() if name not in extra}
        for name in _bound_names(spec) + list(builtins):
            if name not in entries and name not in extra:
                if name not in BUILTINS:
                    raise ToolError(f"tool {name!r} is used by the spec but neither declared nor a built-in "
                                    f"({', '.join(BUILTINS)})")
                entries[name] = box._builtin_entry(name, name, DEFAULT_TIMEOUT)
        for name, function in extra.items():
            timeout = declared[name].timeout if name in declared else DEFAULT_TIMEOUT
            entries[name] = ToolEntry(name, function, timeout, origin="extra", episode=wants_episode(function))
        box._entries = entries
        return box

    # -- building ------------------------------------------------------------------------------

    def _declared_entry(self, tool) -> ToolEntry:
        if tool.kind == "builtin":
            return self._builtin_entry(tool.name, tool.target, tool.timeout)
        if tool.kind == "function":
            function = _import_function(tool.name, tool.target)
            return ToolEntry(tool.name, function, tool.timeout, origin=f"function {tool.target}",
                             episode=wants_episode(function))
        if tool.kind == "entry_point":
            function = _load_entry_point(tool.name, tool.target)
            return ToolEntry(tool.name, function, tool.timeout, origin=f"entry point {tool.target}",
                             episode=wants_episode(function))
        raise ToolError(f"tool {tool.name!r}: unknown kind {tool.kind!r}")

    def _builtin_entry(self, name: str, target: str, timeout: float) -> ToolEntry:
        functions = {"search": lambda text: self._browse(name, "search", text),
                     "lookup": lambda text: self._browse(name, "lookup", text),
                     "calculator": calculator.evaluate, "finish": lambda text: text}
        if target not in functions:
            raise ToolError(f"tool {name!r}: unknown built-in {target!r} (built-ins: {', '.join(BUILTINS)})")
        return ToolEntry(name, functions[target], timeout, finishes=target == "finish", origin=f"builtin {target}")

    def _browse(self, name: str, action: str, text: str) -> str:
        if self.browser is None:
            raise ToolUnavailable(f"No document store was given (use --docs), so {name} cannot run.")
        return getattr(self.browser, action)(text)

    # -- state ---------------------------------------------------------------------------------

    def names(self) -> tuple[str, ...]:
        """The tool names, in spec order (declared tools, then bound built-ins, then extras)."""
        return tuple(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def find(self, name: str) -> Optional[str]:
        """The tool called ``name``: exactly, else ignoring case and surrounding blanks; None if none."""
        if name in self._entries:
            return name
        wanted = name.strip().lower()
        return next((n for n in self._entries if n.lower() == wanted), None)

    def entry(self, name: str) -> ToolEntry:
        """The entry of tool ``name`` (KeyError if none)."""
        return self._entries[name]

    def reset(self) -> None:
        """Start a new episode: a fresh Browser (no open page) over the same documents."""
        self.browser = Browser(self.docs) if self.docs is not None else None

    # -- calling -------------------------------------------------------------------------------

    def call(self, name: str, text: str, episode: Optional[Episode] = None) -> ToolResult:
        """Run tool ``name`` on ``text`` within its timeout. Never raises for tool problems: an unknown
        tool, an exception in the tool or a timeout give ok=False and an observation saying so. Episode
        tools get ``episode`` (an empty Episode over this box when None)."""
        return self.call_many([(name, text)], episode)[0]

    def call_many(self, calls: list[tuple[str, str]], episode: Optional[Episode] = None) -> list[ToolResult]:
        """Run several calls concurrently, each within its own timeout; results in call order. Episode
        tools get ``episode`` (an empty Episode over this box when None), which is cancelled if one of
        them times out."""
        episode = episode or Episode(self)
        started = [self._start(name, text, episode) for name, text in calls]
        return [self._finish(*item) for item in started]

    def _start(self, name: str, text: str, episode: Episode):
        entry, begun = self._entries.get(name), time.monotonic()
        if entry is None:
            return None, name, None, begun, episode
        future: Future = Future()

        def run():
            if future.set_running_or_notify_cancel():
                try:
                    arguments = (str(text), episode) if entry.episode else (str(text),)
                    future.set_result(entry.function(*arguments))
                except BaseException as err:  # noqa: BLE001 - reported as the observation
                    future.set_exception(err)
        threading.Thread(target=run, name=f"ltlagent-tool-{name}", daemon=True).start()
        return entry, name, future, begun, episode

    def _finish(self, entry: Optional[ToolEntry], name: str, future: Optional[Future], begun: float,
                episode: Episode) -> ToolResult:
        if entry is None:
            known = ", ".join(self._entries) or "none"
            return self._result(f"Unknown tool {name!r}. Available tools: {known}.", False, begun,
                                f"unknown tool {name!r}")
        wait([future], timeout=max(0.0, begun + entry.timeout - time.monotonic()))
        if not future.done():
            if entry.episode:
                episode.cancelled.set()  # the abandoned composite tool makes no further calls
            return self._result(f"Tool {name} timed out after {entry.timeout:g} s", False, begun, "timeout")
        err = future.exception()
        if isinstance(err, ToolUnavailable):
            return self._result(str(err), False, begun, str(err))
        if err is not None:
            return self._failure(name, err, begun)
        try:
            text = str(future.result())
        except Exception as err:  # noqa: BLE001 - a result whose str() fails
            return self._failure(name, err, begun)
        return self._result(text, True, begun, None, entry.finishes)

    def _failure(self, name: str, err: BaseException, begun: float) -> ToolResult:
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return self._result(f"Tool {name} failed: {reason}", False, begun, reason)

    def _result(self, text: str, ok: bool, begun: float, error: Optional[str], finished: bool = False) -> ToolResult:
        return ToolResult(one_line(text, self.max_chars), ok, time.monotonic() - begun, error, finished)


_LINE_BREAKS = re.compile(r"[ \t]*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+[ \t]*")


def one_line(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` on one line (line breaks and the blanks around them become one space), stripped, and
    cut to ``limit`` characters with a final ``…`` when longer."""
    text = _LINE_BREAKS.sub(" ", text).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _bound_names(spec) -> list[str]:
    """Tool names the segments bind: fixed ``tool:`` names, then the options of ``name_from`` segments."""
    names = []
    for segment in spec.segments:
        call = segment.tool
        if call is not None and call.name is not None:
            names.append(call.name)
        elif call is not None and call.name_from is not None:
            names.extend(spec.segment(call.name_from).options)
    return list(dict.fromkeys(names))


def _import_function(name: str, target: str) -> ToolFunction:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ToolError(f"tool {name!r}: 'function: {target}' is not of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - any import failure is a build error
        raise ToolError(f"tool {name!r}: cannot import module {module_name!r} for 'function: {target}': "
                        f"{type(err).__name__}: {err}") from err
    function = getattr(module, attribute, None)
    if function is None:
        raise ToolError(f"tool {name!r}: module {module_name!r} has no attribute {attribute!r} "
                        f"('function: {target}')")
    if not callable(function):
        raise ToolError(f"tool {name!r}: 'function: {target}' is not callable")
    return function


def _load_entry_point(name: str, target: str) -> ToolFunction:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == target]
    if not found:
        installed = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
        raise ToolError(f"tool {name!r}: no entry point {target!r} in group {ENTRY_POINT_GROUP!r} "
                        f"(installed: {', '.join(installed) or 'none'})")
    try:
        function = found[0].load()
    except Exception as err:  # noqa: BLE001 - any load failure is a build error
        raise ToolError(f"tool {name!r}: cannot load entry point {target!r}: {type(err).__name__}: {err}") from err
    if not callable(function):
        raise ToolError(f"tool {name!r}: entry point {target!r} is not callable")
    return function
