"""ReWOO's solver (specs/rewoo.yaml): runs every step of a plan with the episode's Search / Lookup."""
from __future__ import annotations

import re

from .episode import Episode, episode_tool

STEP = re.compile(r"#E(\d+) = (\w+)\[(.*)\]\s*$")
EVIDENCE = re.compile(r"#E(\d+)")


def plan_steps(plan: str) -> list[tuple[str, str, str]]:
    """``(number, tool, input)`` for every line of ``plan`` ending in ``#E<n> = Tool[input]``."""
    return [m.groups() for line in plan.splitlines() if (m := STEP.search(line))]


@episode_tool
def solve(plan: str, episode: Episode) -> str:
    """Run the plan's steps in order; each ``#E<k>`` in an input is replaced by step k's result first.
    Returns ``#E1 = <result> #E2 = <result> ...`` (a failed step gives its failure text)."""
    results: dict[str, str] = {}
    for number, tool, argument in plan_steps(plan):
        argument = EVIDENCE.sub(lambda m: results.get(m.group(1), m.group(0)), argument)
        results[number] = episode.call(tool, argument).text
    if not results:
        return "The plan has no step of the form '#E1 = Tool[input]'."
    return " ".join(f"#E{number} = {text}" for number, text in results.items())
