"""Differential test against the trusted peer ltlf2dfa 2.0 (LTLf -> MONA -> DFA).

For a deterministic set of random formulas over the plain letters ``a b c`` (and a hand-picked set of
corner cases) our minimal DFA and ltlf2dfa's DFA must agree on EVERY trace of length 1..5 over the
one-hot alphabet {a, b, c}: each step of our trace (a letter) is the interpretation in which exactly
that atom is true.

How the peer is driven. ltlf2dfa's ``to_dfa`` writes its MONA program to a fixed file inside its own
package directory (a race when tests run concurrently), so we call its pieces ourselves: its parser
(``LTLfParser``), its MONA encoding (``MonaProgram.mona_program``), the ``mona -q -u -w`` invocation it
uses (on a private temporary file), and its own MONA-output -> DOT conversion (``output2dot``). The DOT
DFA is then parsed here: accepting states from the ``doublecircle`` line, the initial state from
``init -> N``, edges labelled by sympy-printed Boolean formulas over the (lower-cased) atoms, which we
evaluate on each one-hot interpretation.

Semantics, checked by reading ltlf2dfa's source (ltlf.py, base.py):
* its ``X`` is strong (``ex1 v: v in $ & v = i+1 & ...``) and ``WX`` weak, like ours; ``last`` is
  ``WX false``; ``U R`` are the usual LTLf ones; ``F G`` are ``true U`` / ``false R``.
* the empty trace: the peer evaluates at position 0 of an empty ``$`` and so ACCEPTS the empty trace
  for e.g. ``true``, ``last``, ``G a``, ``!a``, whereas in ltlagent the empty trace satisfies nothing.
  The empty trace is therefore left out of the comparison (lengths 1..5 only).
* it has no ``W`` nor bounded ``F[lo,hi]`` / ``G[lo,hi]``; we expand them from their definitions:
  ``l W r = (l U r) | G l``, ``F[lo,hi] g = X^lo g | ... | X^hi g`` (strong X),
  ``G[lo,hi] g = WX^lo g & ... & WX^hi g``. It does have ``-> <->``; its n-ary ``->`` is
  left-associative, so every binary operator is emitted fully parenthesised.
"""
from __future__ import annotations

import itertools
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ltlagent import compile_formula
from ltlagent.compiler.automaton import Automaton, product, universal
from ltlagent.compiler.ast import Binary, Const, Formula, Last, Prop, Unary
from ltlagent.compiler.ltl import format_formula, parse_formula

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import language_difference  # noqa: E402

try:
    from ltlf2dfa.base import MonaProgram
    from ltlf2dfa.ltlf2dfa import output2dot
    from ltlf2dfa.parser.ltlf import LTLfParser

    _IMPORT_ERROR = None
except Exception as err:  # pragma: no cover - depends on the environment
    _IMPORT_ERROR = err

MONA = shutil.which("mona")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_IMPORT_ERROR is not None, reason=f"ltlf2dfa cannot be imported: {_IMPORT_ERROR!r}"),
    pytest.mark.skipif(MONA is None, reason="the `mona` binary (needed by ltlf2dfa) is not on PATH"),
]

LETTERS = ("a", "b", "c")
TRACES = tuple(t for n in range(1, 6) for t in itertools.product(LETTERS, repeat=n))  # 3+9+27+81+243
SEED = 20240617
N_RANDOM = 1500


# ------------------------------------------------------------------------------ our AST -> peer text

def to_peer(f: Formula) -> str:
    """ltlf2dfa syntax for a formula over plain lower-case props, sugar expanded, fully parenthesised."""
    if isinstance(f, Prop):
        assert f.option is None and re.fullmatch(r"[a-z][a-z0-9_]*", f.segment), f
        return f.segment
    if isinstance(f, Const):
        return "true" if f.value else "false"
    if isinstance(f, Last):
        return "last"
    if isinstance(f, Unary):
        arg = to_peer(f.arg)
        if f.bounds is None:
            return f"{f.op}({arg})"
        lo, hi = f.bounds
        nxt, join = ("X", " | ") if f.op == "F" else ("WX", " & ")
        terms = []
        for k in range(lo, hi + 1):
            term = arg
            for _ in range(k):
                term = f"{nxt}({term})"
            terms.append(f"({term})")
        return "(" + join.join(terms) + ")"
    left, right = to_peer(f.left), to_peer(f.right)
    if f.op == "W":
        return f"(({left} U {right}) | G({left}))"
    return f"({left} {f.op} {right})"


# ------------------------------------------------------------------------------ the peer's DFA (DOT)

class PeerDfa:
    """A DFA parsed from ltlf2dfa's DOT output, run on one-hot interpretations."""

    EDGE = re.compile(r'^\s*(\d+)\s*->\s*(\d+)\s*\[label="([^"]*)"\];\s*$')

    def __init__(self, dot: str):
        self.dot = dot
        init = re.search(r"^\s*init\s*->\s*(\d+);", dot, re.M)
        assert init, dot
        self.initial = int(init.group(1))
        acc = re.search(r"node \[shape = doublecircle\];([^\n]*)", dot)
        assert acc is not None, dot
        self.accepting = {int(x) for x in acc.group(1).replace(";", " ").split()}
        self.edges: dict[int, list[tuple[int, object]]] = {}
        for line in dot.splitlines():
            m = self.EDGE.match(line)
            if m:
                self.edges.setdefault(int(m.group(1)), []).append((int(m.group(2)), parse_label(m.group(3))))
        assert self.edges, dot

    def table(self, letters) -> dict[tuple[int, str], int]:
        """The transition of every (reachable state, letter) under one-hot interpretations; checks that
        exactly one edge label holds (the DOT is a complete DFA)."""
        table, todo, seen = {}, [self.initial], {self.initial}
        while todo:
            q = todo.pop()
            for letter in letters:
                env = {x: x == letter for x in letters}
                targets = [t for t, label in self.edges.get(q, []) if evaluate(label, env)]
                assert len(targets) == 1, f"state {q} letter {letter}: targets {targets}\n{self.dot}"
                table[q, letter] = targets[0]
                if targets[0] not in seen:
                    seen.add(targets[0])
                    todo.append(targets[0])
        return table


_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[~&|^(),]))")


def parse_label(text: str):
    """Parse a sympy-printed Boolean label (lower-cased by ltlf2dfa): ``~ & | ^``, parentheses,
    ``true``/``false``, atoms, and the function forms ``implies equivalent ite xor and or not``."""
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot tokenise label {text!r} at {pos}")
        tokens.append(m.group("name") or m.group("op"))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    tokens.append(None)
    i = 0

    def peek():
        return tokens[i]

    def take(expected=None):
        nonlocal i
        tok = tokens[i]
        if expected is not None and tok != expected:
            raise ValueError(f"label {text!r}: expected {expected!r}, got {tok!r}")
        i += 1
        return tok

    def binary(sub, op, kind):
        def parse():
            items = [sub()]
            while peek() == op:
                take()
                items.append(sub())
            return items[0] if len(items) == 1 else (kind, *items)
        return parse

    def unary():
        if peek() == "~":
            take()
            return ("not", unary())
        tok = take()
        if tok == "(":
            node = expr()
            take(")")
            return node
        if tok in ("true", "false"):
            return ("const", tok == "true")
        if tok in ("implies", "equivalent", "ite", "xor", "and", "or", "not") and peek() == "(":
            take("(")
            args = [expr()]
            while peek() == ",":
                take()
                args.append(expr())
            take(")")
            return (tok, *args)
        if tok is None or not re.fullmatch(r"[a-z][a-z0-9_]*", tok):
            raise ValueError(f"label {text!r}: unexpected {tok!r}")
        return ("atom", tok)

    conj = binary(unary, "&", "and")
    disj = binary(conj, "|", "or")
    expr = binary(disj, "^", "xor")
    node = expr()
    if peek() is not None:
        raise ValueError(f"label {text!r}: trailing {peek()!r}")
    return node


def evaluate(node, env: dict[str, bool]) -> bool:
    kind, *args = node
    if kind == "const":
        return args[0]
    if kind == "atom":
        return env[args[0]]  # KeyError: an atom outside the alphabet
    vals = [evaluate(a, env) for a in args]
    if kind == "not":
        return not vals[0]
    if kind == "and":
        return all(vals)
    if kind == "or":
        return any(vals)
    if kind == "xor":
        return sum(vals) % 2 == 1
    if kind == "implies":
        return (not vals[0]) or vals[1]
    if kind == "equivalent":
        return all(v == vals[0] for v in vals)
    if kind == "ite":
        return vals[1] if vals[0] else vals[2]
    raise ValueError(kind)


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    """peer(formula_ast) -> PeerDfa, through ltlf2dfa's parser, MONA encoding and DOT conversion."""
    parser = LTLfParser()
    program = tmp_path_factory.mktemp("ltlf2dfa") / "automa.mona"

    def run(f: Formula) -> PeerDfa:
        text = to_peer(f)
        program.write_text(MonaProgram(parser(text)).mona_program())
        done = subprocess.run([MONA, "-q", "-u", "-w", str(program)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip(), f"mona failed on {text!r}: {done.stderr}"
        return PeerDfa(output2dot(done.stdout.strip()))

    return run


# --------------------------------------------------------------------------------------- formulas

UNARY = ("!", "X", "WX", "F", "G", "F[]", "G[]")
BINARY = ("&", "|", "->", "<->", "U", "R", "W")
ROOTS = UNARY + BINARY


def random_formula(rnd: random.Random, depth: int, root: str | None = None) -> Formula:
    """A random formula over a, b, c; ``root`` forces the top operator."""
    if root is None:
        if depth == 0 or rnd.random() < 0.25:
            return rnd.choice([Prop("a"), Prop("b"), Prop("c")] * 3 + [Const(True), Const(False), Last()])
        root = rnd.choice(ROOTS)
    if root in BINARY:
        return Binary(root, random_formula(rnd, depth - 1), random_formula(rnd, depth - 1))
    arg = random_formula(rnd, depth - 1)
    if root.endswith("[]"):
        lo = rnd.randint(0, 2)
        return Unary(root[0], arg, (lo, rnd.randint(lo, 3)))
    return Unary(root, arg)


def random_formulas() -> list[Formula]:
    """N_RANDOM distinct formulas (by text), the same on every run; root operators in rotation."""
    rnd = random.Random(SEED)
    out, texts = [], set()
    while len(out) < N_RANDOM:
        f = random_formula(rnd, rnd.choice((2, 3, 3, 4, 4, 5, 5, 6)), ROOTS[len(out) % len(ROOTS)])
        if format_formula(f) not in texts:
            texts.add(format_formula(f))
            out.append(f)
    return out


HAND_PICKED = [
    "a", "!a", "X a", "WX a", "X true", "WX false", "last", "true", "false", "G false", "F last",
    "a U b", "a R b", "a W b", "F a", "G a", "G F a", "F G a", "G(a -> X b)", "G(a -> WX b)",
    "a <-> X b", "a -> b -> c", "(a -> b) -> c", "F[1,2] a", "G[0,2] b", "F[0,0] c", "G[2,3] !a",
    "G(a -> F[1,2] b)", "!(a U b) & F c", "(a W b) R c", "X X X true", "G(last -> c)", "!last",
    "F(a & X(b & X c))", "G(b -> !X b)", "a U (b U c)", "(a U b) U c",
]

CASES = [pytest.param(parse_formula(t), id=f"hand-{i:02d}") for i, t in enumerate(HAND_PICKED)] + [
    pytest.param(f, id=f"rnd-{i:03d}") for i, f in enumerate(random_formulas())
]


def disagreements(formula: Formula, theirs: PeerDfa) -> list[tuple[str, ...]]:
    ours = compile_formula(format_formula(formula), LETTERS)
    table = theirs.table(LETTERS)
    bad = []
    for trace in TRACES:
        state = theirs.initial
        for letter in trace:
            state = table[state, letter]
        if ours.accepts(trace) != (state in theirs.accepting):
            bad.append(trace)
    return bad


@pytest.mark.parametrize("formula", CASES)
def test_agrees_with_ltlf2dfa(formula, peer):
    text = format_formula(formula)
    theirs = peer(formula)
    bad = disagreements(formula, theirs)
    assert not bad, (
        f"{text!r} (peer: {to_peer(formula)!r}) disagrees on {len(bad)} traces, e.g. {list(bad[0])}: "
        f"ours={compile_formula(text, LETTERS).accepts(bad[0])}"
    )


def test_generated_formulas_cover_every_operator():
    seen = set()

    def walk(f):
        if isinstance(f, Unary):
            seen.add(f.op + ("[]" if f.bounds else ""))
            walk(f.arg)
        elif isinstance(f, Binary):
            seen.add(f.op)
            walk(f.left)
            walk(f.right)
        else:
            seen.add(type(f).__name__)

    formulas = random_formulas()
    for f in formulas:
        walk(f)
    assert seen >= set(ROOTS) | {"Prop", "Const", "Last"}
    assert len({format_formula(f) for f in formulas}) == len(formulas) == N_RANDOM
    assert random_formulas() == formulas  # deterministic


def test_label_parser():
    env = {"a": True, "b": False, "c": False}
    assert evaluate(parse_label("a & ~b"), env)
    assert not evaluate(parse_label("~a | b"), env)
    assert evaluate(parse_label("(a & ~c) | (b & c)"), env)
    assert evaluate(parse_label("true"), env) and not evaluate(parse_label("false"), env)
    assert evaluate(parse_label("a ^ b"), env) and not evaluate(parse_label("a ^ ~b"), env)
    assert evaluate(parse_label("ite(b, c, a)"), env)
    assert not evaluate(parse_label("implies(a, b)"), env)
    with pytest.raises(ValueError):
        parse_label("a $ b")


def test_peer_conventions(peer):
    """The conventions the module docstring relies on: strong X, weak WX, and the peer accepting the
    empty trace where ltlagent does not (hence lengths 1..5 only)."""
    x_true = peer(parse_formula("X true"))
    assert x_true.initial not in x_true.accepting
    table = x_true.table(LETTERS)
    assert table[x_true.initial, "a"] not in x_true.accepting  # length 1: rejected (strong next)
    wx_false = peer(parse_formula("WX false"))
    assert wx_false.table(LETTERS)[wx_false.initial, "a"] in wx_false.accepting  # length 1: accepted
    g_a = peer(parse_formula("G a"))
    assert g_a.initial in g_a.accepting  # the peer accepts the empty trace ...
    assert not compile_formula("G a", LETTERS).accepts([])  # ... ltlagent does not


# ------------------------------------------------------------------- bounded families, exactly

BOUNDED_FAMILIES = [
    "G(a -> F[0,8] b)", "G[0,5](a -> F[0,5] b)", "F[0,5] G[0,5] a", "G[3,6] F[0,3] a",
    "F[0,1] F[0,1] F[0,1] F[0,1] F[0,1] F[0,1] a", "G(a -> F[2,5] b)", "G(a -> G[1,3] !a)",
    "F[2,6] a & G[1,4](b -> F[0,2] c)", "!F[1,4](a & X G[0,2] b)", "G[0,4] a U F[0,3] b",
    "G(a -> X X X X b) & F[0,6] c", "(F[0,3] a) R (G[0,2] b | F[1,3] c)",
]


def peer_automaton(theirs: PeerDfa) -> Automaton:
    """The peer's DFA as a minimal ltlagent Automaton over LETTERS, without the empty trace."""
    table = theirs.table(LETTERS)
    states = sorted({q for q, _ in table} | set(table.values()))
    index = {q: i for i, q in enumerate(states)}
    delta = tuple(tuple(index[table[q, letter]] for letter in LETTERS) for q in states)
    accepting = frozenset(index[q] for q in states if q in theirs.accepting)
    return product(Automaton(LETTERS, index[theirs.initial], accepting, delta), universal(LETTERS))


@pytest.mark.parametrize("text", BOUNDED_FAMILIES)
def test_bounded_families_have_the_peers_language_and_state_count(text, peer):
    """Every trace, not only the short ones: the languages are equal, so are the minimal state counts."""
    ours = compile_formula(text, LETTERS)
    theirs = peer_automaton(peer(parse_formula(text)))
    assert language_difference(ours, theirs) is None, f"{text!r}: first difference {language_difference(ours, theirs)}"
    assert len(ours.delta) == len(theirs.delta)
