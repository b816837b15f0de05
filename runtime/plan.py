"""Budgets: the fewest model tokens that still lead to acceptance within the remaining segments, so
the decoder can force the shortest way out before any limit is passed."""
from __future__ import annotations

import math
from typing import Mapping

INF = math.inf


def token_floor(automaton, letter_cost: Mapping[str, int], max_segments: int) -> list[list[float]]:
    """``floor[r][q]``: the fewest model tokens on an accepted continuation from state q that uses at
    most r more segments (INF if none); ``letter_cost`` gives each letter's least token cost (0 for
    env letters)."""
    accepting = automaton.accepting
    floor = [[0.0 if q in accepting else INF for q in automaton.states]]
    costs = [letter_cost[a] for a in automaton.alphabet]
    for _ in range(max_segments):
        prev = floor[-1]
        row = []
        for q, targets in enumerate(automaton.delta):
            best = 0.0 if q in accepting else INF
            for i, t in enumerate(targets):
                if t >= 0 and costs[i] + prev[t] < best:
                    best = costs[i] + prev[t]
            row.append(best)
        floor.append(row)
    return floor
