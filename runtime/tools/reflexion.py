"""Reflexion's evaluator (specs/reflexion.yaml): grades a proposed answer against the task's reference."""
from __future__ import annotations

from .episode import Episode, episode_tool


@episode_tool
def evaluate(answer: str, episode: Episode) -> str:
    """``pass`` when ``answer`` matches the episode's reference answer, else ``fail``. Raises
    ToolUnavailable (reported as the observation) when the run has no reference answer."""
    return "pass" if episode.grade(answer) else "fail"
