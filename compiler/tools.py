"""What ``ltlagent run`` needs of a spec's environment, checked without running anything (``ltlagent
check`` and ``run`` call it): every env choice segment is bound to something that picks its option, and
every declared tool can be loaded."""
from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points

from .errors import SpecSemanticError

ENTRY_POINT_GROUP = "ltlagent.tools"


def check_runnable(spec) -> None:
    """Raise SpecSemanticError, located, for the first thing the runtime would refuse: tags or choice
    options it cannot tell apart (see ``check_distinct``), an env choice segment bound to nothing (no one
    would pick its option), a tool that cannot be loaded (see ``check_tools``)."""
    check_distinct(spec)
    for segment in spec.segments:
        if segment.by == "env" and segment.content.kind == "choice" and segment.tool is None \
                and segment.input is None:
            raise SpecSemanticError(f"env choice segment {segment.name!r} is bound to nothing, so no one picks "
                                    "its option at run time", segment.span,
                                    "give it 'tool: NAME' (a tool answering one of the options) or 'input: user'")
    check_tools(spec)


def check_distinct(spec) -> None:
    """The model picks the next tag, and a choice option, token by token: no tag may start with another
    tag, and no option's text (a space, the option, END) may start with another's. Raises
    SpecSemanticError at the longer one."""
    tags = sorted(spec.segments, key=lambda s: len(s.tag))
    for i, short in enumerate(tags):
        for long in tags[i + 1:]:
            if long.tag.startswith(short.tag):
                raise SpecSemanticError(f"the tag {long.tag!r} of {long.name!r} starts with the tag {short.tag!r} of "
                                        f"{short.name!r}: the model could not tell them apart", long.span)
    for segment in spec.segments:
        texts = sorted(segment.options, key=len)
        for i, short in enumerate(texts):
            clash = next((o for o in texts[i + 1:] if f" {o}{segment.end}".startswith(f" {short}{segment.end}")), None)
            if clash is not None and segment.by == "model":
                raise SpecSemanticError(f"option {clash!r} of {segment.name!r} starts with option {short!r} "
                                        f"followed by the segment's end {segment.end!r}: the model could not tell "
                                        "them apart", segment.span)


def check_tools(spec) -> None:
    """Raise SpecSemanticError, located at the tool, for the first ``function:`` or ``entry_point:`` tool
    the runtime could not load. A function is looked up with ``importlib.util.find_spec`` first (which
    imports the parent packages of a dotted module, not the module); only when the module exists is it
    imported, to find the attribute: its top-level code runs, the tool itself is never called. An entry
    point is looked up in the installed metadata and not loaded."""
    for tool in spec.tools:
        problem = {"function": function_problem, "entry_point": entry_point_problem}.get(tool.kind, _none)(tool.target)
        if problem is not None:
            raise SpecSemanticError(f"tool {tool.name!r}: {problem}", tool.span)


def _none(_target: str) -> None:
    return None


def function_problem(target: str, what: str | None = None) -> str | None:
    """Why ``module:function`` names no importable callable, or None (see ``check_tools``). ``what``
    names the target in the messages (default ``'function: <target>'``, as a spec's tool writes it)."""
    what = what or f"'function: {target}'"
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        return f"{what} is not of the form module:function"
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as err:  # a parent package that is missing or fails to import
        return f"cannot find module {module_name!r} ({what}): {type(err).__name__}: {err}"
    if found is None:
        return f"cannot find module {module_name!r} ({what}); is it installed or on PYTHONPATH?"
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - any import failure means the runtime cannot load the tool
        return f"importing module {module_name!r} failed ({what}): {type(err).__name__}: {err}"
    function = getattr(module, attribute, None)
    if function is None:
        return f"module {module_name!r} has no attribute {attribute!r} ({what})"
    return None if callable(function) else f"{what} is not callable"


def entry_point_problem(target: str) -> str | None:
    """Why no entry point ``target`` is installed in the group ``ltlagent.tools``, or None."""
    names = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
    if target in names:
        return None
    return f"no entry point {target!r} in group {ENTRY_POINT_GROUP!r} (installed: {', '.join(names) or 'none'})"
