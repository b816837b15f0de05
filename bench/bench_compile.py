"""Compile-time benchmark: ltlagent's LTLf -> minimal DFA against ltlf2dfa 2.0 + MONA, side by side.

    python bench/bench_compile.py [--quick]

Families (over the alphabet given per row; ``other`` is a letter no proposition names):
  (a) resp-n  : G(a_1 -> F b_1) & ... & G(a_n -> F b_n),  n = 2..8,  alphabet a_i, b_i, other
  (b) fxn-n   : F(a & X^n true),                           n = 1..10, alphabet a, other
  (c) gxn-n   : G(a -> X^n b),                             n = 1..10, alphabet a, b, other
  bounded operators (ltlf2dfa has none: the peer gets them expanded by their definitions, X^lo g | ... |
  X^hi g, quadratic in the bound, and is skipped past PEER_MAX_CHARS of expanded text):
  (d) bresp-n : G(a -> F[0,n] b)          n + 2 states,  n = 10, 30, 37, 100, 1000, 10000
  (e) bgresp-n: G[0,n](a -> F[0,n] b),                    n = 5, 10, 20, 30
  (f) fnest-d : F[0,1](F[0,1](... a)) nested d deep,      d = 5, 10, 50, 200
  (g) fg-n    : F[0,n] G[0,n] a,                          n = 5, 10, 40, 80
  (h) gf-n    : G[n,2n] F[0,n] a,                         n = 5, 10, 50, 100
  A peer cell "killed" is MONA killed by the system (out of memory), "too long" MONA's lexer limit (YYLMAX)
  on the expanded formula, "(big)" not run.

Columns:
  ours ms      median wall time of ltlagent.compile_formula(text, alphabet) (parse + build + minimise)
  ours st      states of our minimal trimmed partial DFA (no sink state)
  peer ms      median of ltlf2dfa parse + MONA encoding + the `mona -q -u -w` run: the DFA construction
  +dot ms      ltlf2dfa's MONA-output -> DOT step (sympy guard simplification), one run; only measured
               when MONA printed <= DOT_MAX_TRANSITIONS transitions (it takes 20 s at resp-4, minutes beyond)
  raw st       states of the peer's DFA as ltlf2dfa returns it (MONA's states less its pre-initial state 0,
               sink included, over all 2^|atoms| interpretations)
  1hot st      the peer's DFA restricted to one-hot interpretations (our letters), trimmed and minimised
               (it may differ from ours by one: the peer accepts the empty trace, ltlagent never does)
  peer/ours    peer ms / ours ms (> 1: we are faster)

A section "rules built within the others" compiles a spec whose rule G(draft -> X^k answer) needs 2^k
states alone, beside a pattern allowing one draft (ltlagent.compile builds it within the pattern), and the
same rule alone (refused past the 100000-state cap from k = 17 or so).

A last section compiles every specs/*.yaml of the repo and every reference spec
../shared/reference/ibm-llm-agent-framework/specs/*.txt with ``ltlagent.load`` + ``ltlagent.compile``
(when the package has them) and checks the < 20 ms compile target.

Timings are wall-clock (time.perf_counter) on whatever machine runs this; the script always exits 0.
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ltlagent
from ltlagent import compile_formula
from ltlagent.compiler.ast import Binary, Const, Last, Prop, Unary
from ltlagent.compiler.automaton import Automaton, minimize
from ltlagent.compiler.errors import AutomatonTooLarge
from ltlagent.compiler.ltl import parse_formula

REPO = Path(__file__).resolve().parents[1]
SHARED_SPECS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ibm-llm-agent-framework" / "specs"
DOT_MAX_TRANSITIONS = 130
PEER_MAX_CHARS = 20_000
SPEC_TARGET_MS = 20.0

try:
    from ltlf2dfa.base import MonaProgram
    from ltlf2dfa.ltlf2dfa import output2dot
    from ltlf2dfa.parser.ltlf import LTLfParser

    PEER_ERROR = None
except Exception as err:  # pragma: no cover - depends on the environment
    PEER_ERROR = repr(err)
MONA = shutil.which("mona")
if MONA is None and PEER_ERROR is None:
    PEER_ERROR = "`mona` is not on PATH"


def median_time(fn, min_runs: int = 3, max_runs: int = 7, budget_s: float = 2.0) -> tuple[float, object]:
    """Median seconds of fn() over min_runs..max_runs runs (stops early past budget_s); and its last result."""
    times, result, start = [], None, time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def nest(op: str, body: str, n: int) -> str:
    return f"{op}(" * n + body + ")" * n


# Agent protocols written as pure LTLf (the same formula text goes to both sides), over plain letters.
AGENTS = {
    "react": (["question", "thought", "action", "action_input", "observation", "final_thought", "answer"],
              "question & X G !question & G(question -> X thought) & G(thought -> X action) "
              "& G(action -> X action_input) & G(action_input -> X observation) "
              "& G(observation -> X(thought | final_thought)) & G(final_thought -> X answer) "
              "& G(answer -> last) & F answer & (!answer U observation)"),
    "cot": (["question", "thought", "answer"],
            "question & X thought & X(thought U (answer & last)) & G(thought -> X(thought | answer))"),
    "reflexion": (["question", "thought", "action", "observation", "proposal", "eval_pass", "eval_fail",
                   "reflection", "answer"],
                  "question & X G !question & G(question -> X thought) & G(thought -> X(action | proposal)) "
                  "& G(action -> X observation) & G(observation -> X thought) "
                  "& G(proposal -> X(eval_pass | eval_fail)) & G(eval_fail -> X reflection) "
                  "& G(eval_pass -> X answer) & G(reflection -> X thought) & G(answer -> last) & F answer "
                  "& !F(reflection & X F(reflection & X F reflection))"),
    "rewoo": (["question", "plan", "label", "action", "action_input", "solver"],
              "question & X plan & G(plan -> X label) & G(label -> X action) & G(action -> X action_input) "
              "& G(action_input -> X(plan | solver)) & G(solver -> last) & F solver & X G !question"),
    "pass": (["question", "plan", "action", "action_input", "summary", "final_thought", "answer"],
             "question & X plan & X G !question & G(plan -> X action) & G(action -> X action_input) "
             "& G(action_input -> X(action | summary)) & G(summary -> X(plan | final_thought)) "
             "& G(final_thought -> X answer) & G(answer -> last) & F answer "
             "& G(plan -> X F summary)"),
}


def families(quick: bool):
    for name, (alphabet, text) in AGENTS.items():
        yield f"agent-{name}", text, alphabet
    resp = range(2, 7) if quick else range(2, 9)
    xs = range(1, 7) if quick else range(1, 11)
    for n in resp:
        text = " & ".join(f"G(a_{i} -> F b_{i})" for i in range(1, n + 1))
        alphabet = [f"a_{i}" for i in range(1, n + 1)] + [f"b_{i}" for i in range(1, n + 1)] + ["other"]
        yield f"resp-{n}", text, alphabet
    for n in xs:
        yield f"fxn-{n}", f"F(a & {nest('X', 'true', n)})", ["a", "other"]
    for n in xs:
        yield f"gxn-{n}", f"G(a -> {nest('X', 'b', n)})", ["a", "b", "other"]
    for n in (10, 30, 37, 100, 1000) if quick else (10, 30, 37, 100, 1000, 10000):
        yield f"bresp-{n}", f"G(a -> F[0,{n}] b)", ["a", "b", "other"]
    for n in (5, 10, 20) if quick else (5, 10, 20, 30):
        yield f"bgresp-{n}", f"G[0,{n}](a -> F[0,{n}] b)", ["a", "b", "other"]
    for d in (5, 10, 50) if quick else (5, 10, 50, 200):
        yield f"fnest-{d}", nest("F[0,1]", "a", d), ["a", "other"]
    for n in (5, 10, 40) if quick else (5, 10, 40, 80):
        yield f"fg-{n}", f"F[0,{n}] G[0,{n}] a", ["a", "other"]
    for n in (5, 10, 50) if quick else (5, 10, 50, 100):
        yield f"gf-{n}", f"G[{n},{2 * n}] F[0,{n}] a", ["a", "other"]


def peer_text(text: str) -> str:
    """The formula in ltlf2dfa's syntax: bounded F / G expanded by their definitions (ltlf2dfa has
    none), every binary operator parenthesised (its n-ary -> is left-associative)."""
    return _peer(parse_formula(text)) if "[" in text else text


def peer_size(f) -> int:
    """The length of _peer(f), computed without building it (nested bounds expand exponentially)."""
    if isinstance(f, Prop):
        return len(f.segment)
    if isinstance(f, (Const, Last)):
        return 5
    if isinstance(f, Unary):
        arg = peer_size(f.arg)
        if f.bounds is None:
            return arg + 3
        lo, hi = f.bounds
        return 2 + sum(arg + 4 * k + 3 for k in range(lo, hi + 1))
    return peer_size(f.left) + peer_size(f.right) + 12


def peer_too_big(text: str) -> bool:
    return "[" in text and peer_size(parse_formula(text)) > PEER_MAX_CHARS


def _peer(f) -> str:
    if isinstance(f, Prop):
        return f.segment
    if isinstance(f, Const):
        return "true" if f.value else "false"
    if isinstance(f, Last):
        return "last"
    if isinstance(f, Unary):
        arg = _peer(f.arg)
        if f.bounds is None:
            return f"{f.op}({arg})"
        nxt, join = ("X", " | ") if f.op == "F" else ("WX", " & ")
        return "(" + join.join(nest(nxt, arg, k) for k in range(f.bounds[0], f.bounds[1] + 1)) + ")"
    assert isinstance(f, Binary)
    return f"(({_peer(f.left)}) {f.op} ({_peer(f.right)}))"


class Peer:
    """ltlf2dfa driven step by step (its own parser, MONA encoding and DOT conversion), with the MONA
    program on a private temporary file rather than ltlf2dfa's fixed file in its package directory."""

    def __init__(self):
        self.parser = LTLfParser()
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-ltlf2dfa-"))

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def mona(self, text: str) -> str:
        program = self.tmp / "automa.mona"
        program.write_text(MonaProgram(self.parser(peer_text(text))).mona_program())
        done = subprocess.run([MONA, "-q", "-u", "-w", str(program)], capture_output=True, text=True, timeout=300)
        if done.returncode < 0:
            raise RuntimeError(f"mona killed by signal {-done.returncode}")
        if done.returncode != 0:
            raise RuntimeError(f"mona failed: {done.stderr.strip()[:200]}")
        return done.stdout.strip()


def one_hot_states(mona_output: str, alphabet: list[str]) -> tuple[int, int]:
    """(raw states as ltlf2dfa returns them, states of the one-hot restriction trimmed and minimised)."""
    raw = int(re.search(r"Automaton has (\d+) states", mona_output).group(1)) - 1
    names = re.search(r"DFA for formula with free variables:([^\n]*)", mona_output).group(1).split()
    accepting = {int(x) for x in re.search(r"Accepting states:([^\n]*)", mona_output).group(1).split()}
    rules: dict[int, list[tuple[str, int]]] = {}
    for src, bits, dst in re.findall(r"^State (\d+):\s*([01X]*)\s*->\s*state (\d+)", mona_output, re.M):
        rules.setdefault(int(src), []).append((bits, int(dst)))

    def target(state: int, letter: str) -> int:
        vector = ["1" if name.lower() == letter else "0" for name in names]
        for bits, dst in rules[state]:
            if all(b in ("X", v) for b, v in zip(bits, vector)):
                return dst
        raise ValueError(f"no MONA transition from {state} on {letter}")

    ids, order, rows = {1: 0}, [1], []
    for state in order:  # breadth-first from MONA state 1, ltlf2dfa's initial state
        row = []
        for letter in alphabet:
            t = target(state, letter)
            if t not in ids:
                ids[t] = len(order)
                order.append(t)
            row.append(ids[t])
        rows.append(tuple(row))
    aut = Automaton(tuple(alphabet), 0, frozenset(i for i, q in enumerate(order) if q in accepting), tuple(rows))
    small = minimize(aut)
    return raw, (0 if small.is_empty else len(small.delta))


def peer_failure(err: Exception) -> str:
    """A short table cell for a failed peer run: killed (out of memory), MONA's lexer limit, or the error."""
    if "killed" in str(err):
        return "killed"
    if "YYLMAX" in str(err):
        return "too long"
    return f"ERR {type(err).__name__}"


def fmt_ms(seconds) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.2f}" if ms < 1 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def bench_families(quick: bool) -> None:
    print("== LTLf -> DFA: ltlagent vs ltlf2dfa 2.0 + MONA ==")
    if PEER_ERROR:
        print(f"(peer unavailable: {PEER_ERROR}; only our side is measured)")
    peer = None if PEER_ERROR else Peer()
    compile_formula("a U b", ["a", "b"])  # build the LALR parser once, outside the timings
    head = f"{'family':<15} {'|S|':>3} {'ours ms':>8} {'ours st':>7} {'peer ms':>8} {'+dot ms':>8} " \
           f"{'raw st':>7} {'1hot st':>7} {'mona/ours':>9} {'e2e/ours':>9}"
    print(head)
    print("-" * len(head))
    try:
        for name, text, alphabet in families(quick):
            ours_s, aut = median_time(lambda: compile_formula(text, alphabet))
            peer_s = dot_s = None
            raw = hot = "-"
            if peer is not None and peer_too_big(text):
                raw = hot = "(big)"
            elif peer is not None:
                try:
                    peer_s, out = median_time(lambda: peer.mona(text), min_runs=3, max_runs=5)
                    raw, hot = one_hot_states(out, alphabet)
                    if out.count("\nState ") <= DOT_MAX_TRANSITIONS or name.startswith("agent-"):
                        t0 = time.perf_counter()
                        output2dot(out)
                        dot_s = time.perf_counter() - t0
                except Exception as err:  # report and go on
                    raw = hot = peer_failure(err)
            ratio = f"{peer_s / ours_s:.2f}x" if peer_s else "-"
            e2e = f"{(peer_s + dot_s) / ours_s:.0f}x" if peer_s and dot_s else "-"
            print(f"{name:<15} {len(alphabet):>3} {fmt_ms(ours_s):>8} {len(aut.delta):>7} {fmt_ms(peer_s):>8} "
                  f"{fmt_ms(dot_s):>8} {raw:>7} {hot:>7} {ratio:>9} {e2e:>9}", flush=True)
    finally:
        if peer is not None:
            peer.close()
    print(f"(mona/ours: ltlf2dfa's parse + MONA encoding + the mona run, against our whole parse + construction + "
          f"minimisation; e2e/ours adds ltlf2dfa's DOT step, the rest of its to_dfa(), which users call. "
          f"+dot '-': not run, that sympy step is exponential in the atoms; run for agent rows and where MONA "
          f"printed <= {DOT_MAX_TRANSITIONS} transitions)")


DRAFT_SPEC = """name: drafts
segments:
  question: {{tag: "Question:", by: env, input: task}}
  thought: {{tag: "Thought:"}}
  draft: {{tag: "Draft:"}}
  answer: {{tag: "Answer:"}}
behavior:
{rules}"""


def bench_within(quick: bool) -> None:
    print()
    print("== Rules built within the others: G(draft -> X^k answer) beside a pattern allowing one draft ==")
    head = f"{'k':>3} {'with pattern ms':>15} {'states':>6} {'rule alone ms':>13} {'alone states':>14}"
    print(head)
    print("-" * len(head))
    for k in (8, 12, 20) if quick else (8, 12, 16, 20, 30):
        rule = f'  - "G(draft -> {nest("X", "answer", k)})"\n'
        both = ltlagent.load(DRAFT_SPEC.format(rules=rule + '  - {pattern: "question thought* draft thought* answer+"}\n'))
        alone = ltlagent.load(DRAFT_SPEC.format(rules=rule))
        within_s, compiled = median_time(lambda: ltlagent.compile(both), min_runs=1, max_runs=3)
        t0 = time.perf_counter()
        try:
            alone_states = str(len(ltlagent.compile(alone).automaton.delta))
        except AutomatonTooLarge:
            alone_states = "refused (cap)"
        alone_s = time.perf_counter() - t0
        print(f"{k:>3} {fmt_ms(within_s):>15} {len(compiled.automaton.delta):>6} {fmt_ms(alone_s):>13} "
              f"{alone_states:>14}", flush=True)


def bench_specs() -> None:
    print()
    print(f"== Specs: ltlagent.load + ltlagent.compile (target: compile < {SPEC_TARGET_MS:.0f} ms) ==")
    if not (hasattr(ltlagent, "load") and hasattr(ltlagent, "compile")):
        print("(skipped: ltlagent.load / ltlagent.compile are not available yet)")
        return
    paths = sorted((REPO / "specs").glob("*.yaml"))
    if SHARED_SPECS.is_dir():
        paths += sorted(SHARED_SPECS.glob("*.txt"))
    else:
        print(f"(reference specs not found at {SHARED_SPECS})")
    if not paths:
        print("(no spec files found)")
        return
    head = f"{'spec':<40} {'load ms':>8} {'compile ms':>10} {'states':>6}  target"
    print(head)
    print("-" * len(head))
    misses = 0
    for path in paths:
        shown = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else f"shared/.../{path.name}"
        try:
            load_s, spec = median_time(lambda: ltlagent.load(path))
            compile_s, compiled = median_time(lambda: ltlagent.compile(spec), min_runs=5, max_runs=11)
            states = len(compiled.automaton.delta)
        except Exception as err:  # report and go on
            print(f"{shown:<40} ERROR {type(err).__name__}: {str(err).splitlines()[0][:80]}")
            misses += 1
            continue
        ok = compile_s * 1000 < SPEC_TARGET_MS
        misses += not ok
        print(f"{shown:<40} {fmt_ms(load_s):>8} {fmt_ms(compile_s):>10} {states:>6}  {'ok' if ok else 'MISS'}")
    print(f"({len(paths) - misses}/{len(paths)} specs compile within {SPEC_TARGET_MS:.0f} ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller families")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, ltlagent {getattr(ltlagent, '__version__', '?')}, mona {MONA or '-'}")
    bench_families(args.quick)
    bench_within(args.quick)
    bench_specs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
