"""What ``ltlagent check`` proves about a compiled spec: satisfiability, dead segments and options,
bounded reachability of acceptance within the limits, and robustness against the environment."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .ast import letter_segment
from .automaton import DEAD, Automaton, shortest_accepted, shortest_to_accept


@dataclass(frozen=True)
class Finding:
    """One check's outcome: ``level`` is ``ok``, ``warning`` or ``error``."""

    check: str
    level: str
    message: str
    detail: tuple[str, ...] = field(default=())


def analyse(compiled) -> list[Finding]:
    """All checks of a CompiledSpec, in a fixed order."""
    findings = [satisfiable(compiled), *dead_letters(compiled), within_limits(compiled), environment_game(compiled)]
    if any(r.kind == "data" for r in compiled.spec.behavior):
        findings += data_findings(compiled)
    return findings


def data_findings(compiled) -> list[Finding]:
    """What the data rules do to the game: tools no data can ever allow (dead), and the states where
    every way on is a step the data may forbid (the tool results decide; the runtime then stops with an
    error rather than break a rule). Judged three-valued per letter, with the data unknown."""
    from .data import _kleene, body

    spec, aut = compiled.spec, compiled.automaton
    rules = [body(r) for r in spec.behavior if r.kind == "data"]
    judged = {a: [_kleene(phi, a) for phi in rules] for a in aut.alphabet}
    model = {a for a in aut.alphabet if spec.segment(letter_segment(a)).by == "model"}
    dead = sorted(a for a in model if False in judged[a])
    guarded = {a for a in model if any(v is not True for v in judged[a])}
    findings = [Finding("data", "warning", f"{a!r} can never be written: a data rule is false for it whatever "
                                           "the data") for a in dead]
    stuck = _guarded_states(aut, guarded)
    if stuck:
        trace, letters = stuck
        findings.append(Finding("data", "warning", "the data may leave no way on: after "
                                f"{format_trace(trace, spec)} every step allowed is one the data rules may forbid "
                                f"({', '.join(letters[:4])}{', ...' if len(letters) > 4 else ''}); the runtime then "
                                "stops with an error, never breaks a rule", ()))
    n = len(rules)
    findings.append(Finding("data", "ok", f"{n} data rule{'s' if n != 1 else ''} enforced while decoding; "
                                          f"{len(guarded)} of the agent's letters are guarded by data"))
    return findings


def _guarded_states(aut, guarded: set):
    """A shortest trace to a non-accepting state whose every allowed letter is guarded, and those
    letters; None when there is none."""
    from collections import deque

    seen, queue = {aut.initial: []}, deque([aut.initial])
    while queue:
        state = queue.popleft()
        allowed = aut.allowed(state)
        if allowed and state not in aut.accepting and all(a in guarded for a in allowed):
            return seen[state], sorted(allowed)
        for a in allowed:
            nxt = aut.step(state, a)
            if nxt is not None and nxt not in seen:
                seen[nxt] = seen[state] + [a]
                queue.append(nxt)
    return None


def format_trace(trace, spec=None) -> str:
    """``a b c``, env segments marked with a leading ``@`` when a spec is given."""
    marks = {s.name for s in spec.segments if s.by == "env"} if spec else set()
    return " ".join(("@" if letter_segment(a) in marks else "") + a for a in trace) or "(empty)"


def satisfiable(compiled) -> Finding:
    trace = shortest_accepted(compiled.automaton)
    if trace is None:
        core = conflicting_rules(compiled.spec)
        what = ("this rule alone is unsatisfiable:" if len(core) == 1 else
                f"these {len(core)} rules conflict (without any one of them the rest are satisfiable):")
        return Finding("satisfiable", "error", f"the spec is unsatisfiable; {what}",
                       tuple(_rule_line(rule) for rule in core))
    return Finding("satisfiable", "ok", f"satisfiable; a shortest accepted trace has {len(trace)} segments",
                   (format_trace(trace, compiled.spec),))


def conflicting_rules(spec) -> list:
    """A smallest-by-deletion set of the spec's rules whose conjunction no trace meets (every rule in it
    is needed: without any one, the rest are satisfiable), in spec order. Empty when the spec has no
    rules or is satisfiable. Compiles each rule once and intersects subsets."""
    from .api import rule_automaton
    from .automaton import intersect_all
    from .errors import AutomatonTooLarge

    alphabet = spec.alphabet
    parts = [rule_automaton(rule, alphabet) for rule in spec.behavior]
    if shortest_accepted(intersect_all(parts, alphabet)) is not None:
        return []
    core = list(range(len(parts)))
    for i in range(len(parts)):
        rest = [j for j in core if j != i]
        try:
            empty = shortest_accepted(intersect_all([parts[j] for j in rest], alphabet)) is None
        except AutomatonTooLarge:  # a subset can be larger than the whole: keep the rule
            empty = False
        if empty:
            core = rest
    return [spec.behavior[i] for i in core]


def _rule_line(rule) -> str:
    where = f"{rule.span.location()}: " if rule.span is not None else ""
    return f"{where}{rule.text}"


def used_letters(aut: Automaton) -> set[str]:
    """Letters on at least one transition of the trimmed automaton."""
    return {aut.alphabet[i] for row in aut.delta for i, t in enumerate(row) if t != DEAD}


def dead_letters(compiled) -> list[Finding]:
    """A warning per segment that can never occur, and per choice option that can never be chosen."""
    used, findings = used_letters(compiled.automaton), []
    for seg in compiled.spec.segments:
        dead = [a for a in seg.letters if a not in used]
        if len(dead) == len(seg.letters):
            findings.append(Finding("reachable", "warning", f"segment {seg.name!r} can never occur in an accepted run"))
        elif dead:
            options = ", ".join(a.split(".", 1)[1] for a in dead)
            findings.append(Finding("reachable", "warning", f"option(s) {options} of {seg.name!r} can never be chosen"))
    if not findings and compiled.automaton.accepting:
        findings.append(Finding("reachable", "ok", "every segment and option occurs in some accepted run"))
    return findings


def within_limits(compiled) -> Finding:
    """Acceptance must be reachable within ``limits.max_segments``; past the shortest path the runtime
    keeps runs inside the limit by forcing the shortest path when the budget becomes tight."""
    aut, limit = compiled.automaton, compiled.spec.limits.max_segments
    dist = shortest_to_accept(aut)
    if dist[aut.initial] is None:
        return Finding("limits", "error", "no accepted run at all, so none within the limits")
    if dist[aut.initial] > limit:
        return Finding("limits", "error", f"the shortest accepted run has {dist[aut.initial]} segments, "
                       f"more than limits.max_segments = {limit}")
    worst = max(d for d in dist if d is not None)
    return Finding("limits", "ok", f"acceptance is reachable from every state (at most {worst} more segments); "
                   f"a run needs at least {dist[aut.initial]} of its {limit} segments")


def winning_region(compiled, horizon: int) -> list[set[int]]:
    """``W[k]``: states from which the agent can force acceptance within k segments, whatever options
    the environment picks in its choice segments."""
    aut = compiled.automaton
    moves = _moves(compiled)
    regions = [set(aut.accepting)]
    for _ in range(horizon):
        prev = regions[-1]
        regions.append(prev | {q for q in aut.states if any(_wins(targets[q], env, prev)
                                                             for env, targets in moves)})
        if regions[-1] == prev:
            break
    return regions


def _moves(compiled):
    """Per segment: (picked by env?, per state the targets of its letters)."""
    aut, spec = compiled.automaton, compiled.spec
    result = []
    for seg in spec.segments:
        idx = [aut.index(a) for a in seg.letters]
        env_picks = seg.by == "env" and len(idx) > 1
        result.append((env_picks, [[aut.delta[q][i] for i in idx] for q in aut.states]))
    return result


def _wins(targets: list[int], env_picks: bool, region: set[int]) -> bool:
    if env_picks:
        return all(t != DEAD and t in region for t in targets)
    return any(t != DEAD and t in region for t in targets)


def environment_game(compiled) -> Finding:
    """Whether the agent can satisfy the spec within the segment limit whatever the environment's
    choice segments (e.g. an evaluator's pass/fail) turn out to be; if not, a spoiling play."""
    env_choice = [s.name for s in compiled.spec.segments if s.by == "env" and len(s.letters) > 1]
    horizon = compiled.spec.limits.max_segments
    shortest = shortest_to_accept(compiled.automaton)[compiled.automaton.initial]
    if shortest is None or shortest > horizon:
        return Finding("environment", "error", "no run can finish within the limits, whatever the environment does")
    regions = winning_region(compiled, horizon)
    if compiled.automaton.initial in regions[-1]:
        what = f"whatever {', '.join(env_choice)} turn(s) out to be" if env_choice else "(the environment has no choices)"
        return Finding("environment", "ok", f"the agent can always finish within the limits {what}")
    play, reason = spoiling_play(compiled, regions)
    return Finding("environment", "error", f"the environment can spoil every run: {reason}",
                   (format_trace(play, compiled.spec) + "   (@ = chosen by the environment)",))


def spoiling_play(compiled, regions) -> tuple[list[str], str]:
    """A play in which the agent takes its shortest cooperative route and the environment always picks
    an option outside the agent's winning region; ends at a dead end or when the budget runs out."""
    aut, spec = compiled.automaton, compiled.spec
    dist, budget = shortest_to_accept(aut), spec.limits.max_segments
    state, play = aut.initial, []
    for remaining in range(budget, 0, -1):
        region = regions[min(remaining - 1, len(regions) - 1)]
        seg = _cooperative_segment(compiled, state, dist)
        if seg is None:
            return play, "no allowed segment continues the run"
        choice = _env_spoiler(aut, state, seg, region) if seg.by == "env" and len(seg.letters) > 1 else None
        letter = choice or min((a for a in seg.letters if aut.step(state, a) is not None),
                               key=lambda a: dist[aut.step(state, a)])
        play.append(letter)
        state = aut.step(state, letter)
        if state is None:
            return play, f"after {format_trace(play)} no continuation satisfies the spec"
    return play, f"the run cannot end within limits.max_segments = {budget}"


def _cooperative_segment(compiled, state, dist):
    aut, best = compiled.automaton, None
    for seg in compiled.spec.segments:
        reach = [dist[t] for a in seg.letters if (t := aut.step(state, a)) is not None and dist[t] is not None]
        if reach and (best is None or min(reach) < best[0]):
            best = (min(reach), seg)
    return None if best is None else best[1]


def _env_spoiler(aut, state, seg, region) -> Optional[str]:
    for a in seg.letters:
        t = aut.step(state, a)
        if t is None or t not in region:
            return a
    return None
