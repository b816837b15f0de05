"""The retail tools as ltlagent tools of one text argument, for specs and ``ToolBox``.

A spec's ``observation`` segment passes the text of its ``action_input`` (a JSON object) to the tool
named by its ``action`` option. ``bind(episode)`` gives, per tool name, a function of that text that
parses it and runs the tool on ``episode`` (logged there); pass it as ``ToolBox.for_spec(spec,
extra=bind(episode))``. The module-level functions of the same names are what ``specs/retail.yaml``
declares (``function: ltlagent.runtime.retail.binding:NAME``), so ``ltlagent check`` can load them; they
are bound to no episode and say so, as the observation, when called.
"""
from __future__ import annotations

import json
from typing import Callable

from ..tools.registry import ToolUnavailable
from .tools import SCHEMAS
from .world import Episode


def parse_arguments(text: str):
    """The JSON value in ``text``, or an ``"Error: ..."`` string when it is not JSON."""
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as err:
        return f"Error: the tool input is not JSON: {err.msg} at character {err.pos}"


def render(result) -> str:
    """A tool result as observation text: strings as they are, anything else as compact JSON."""
    return result if isinstance(result, str) else json.dumps(result, separators=(",", ":"))


def bind(episode: Episode) -> dict[str, Callable[[str], str]]:
    """Per tool name, ``function(text) -> observation`` running the tool on ``episode``."""
    def tool(name: str) -> Callable[[str], str]:
        def run(text: str) -> str:
            args = parse_arguments(text)
            if isinstance(args, str):
                episode.log.append({"kind": "tool_call", "name": name, "args": text})
                episode.log.append({"kind": "tool_result", "name": name, "result": args})
                return args
            return render(episode.call(name, args))
        run.__name__ = name
        return run
    return {name: tool(name) for name in SCHEMAS}


def _unbound(name: str) -> Callable[[str], str]:
    def run(text: str) -> str:
        raise ToolUnavailable(f"Tool {name} needs a retail episode: build the ToolBox with "
                              f"extra=ltlagent.runtime.retail.binding.bind(episode).")
    run.__name__ = name
    run.__doc__ = f"The retail tool {name}, unbound (see the module docstring)."
    return run


globals().update({name: _unbound(name) for name in SCHEMAS})
