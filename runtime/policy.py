"""Enforcing data rules while the model writes: which steps, tools and argument values keep every rule.

A data rule is ``G φ`` with φ past-time over data (compiler/data.py). At step ``i`` the past is known, so
φ is a function of what the step is: its letter and, for a call, its arguments. ``Policy`` answers:

* ``letter_allowed(history, letter)``: φ holds for a step that is not a call (its letter fixes it);
* ``CallPlan``: for a call of one tool, the arguments are written field by field in the schema's order;
  before each field, the values that still let *some* completion of the remaining fields make φ true.

Values are judged in three-valued logic: a field not written yet is UNKNOWN; ``OTHER`` stands for any
value that is none of the field's *candidates* (every constant and earlier value the rules compare the
field with, found by a probing evaluation), so a comparison of OTHER with a candidate is false. A value is
offered only when some completion makes φ definitely true, so every finished call satisfies the rules
(soundness); what cannot be decided this way (an ordered comparison with an unseen value) is refused, so a
rule like ``this.args.amount <= 100`` offers only the candidate values that satisfy it.

The reference semantics is ``ltlagent.compiler.semantics.holds``; this module is a second, incremental
implementation, and the tests check that every run it produces satisfies ``holds``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional

from ltlagent.compiler.ast import Binary, Compare, Const, Literal, Path, Prop, Quant, Truth, Unary, prop_matches
from ltlagent.compiler.data import trace_steps
from ltlagent.compiler.semantics import Step, compare_values, json_equal

MAX_SEARCH = 5_000  # evaluations one feasibility search may spend before it gives up (refuses)


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNKNOWN, OTHER = _Marker("UNKNOWN"), _Marker("OTHER")
READS_INSIDE = ("reads inside",)  # the probe's note of the fields whose values' parts the rules read
PEERS = ("peers",)  # the probe's note of (field, field) pairs the rules compare with each other


class OpenList(list):
    """A list argument being written: its elements so far, then zero or more not known yet."""


class Probe(_Marker):
    """Stands for a field while its candidates are collected: every value compared with it is noted."""

    def __init__(self, field: str, notes: dict):
        super().__init__(f"PROBE({field})")
        self.field, self.notes = field, notes

    def note(self, value) -> None:
        bucket = self.notes.setdefault(self.field, [])
        if not any(json_equal(value, v) for v in bucket):
            bucket.append(value)


def _marked(value) -> bool:
    if isinstance(value, (_Marker, OpenList)):
        return True
    if isinstance(value, list):
        return any(_marked(v) for v in value)
    if isinstance(value, dict):
        return any(_marked(v) for v in value.values())
    return False


# -- steps of a run ------------------------------------------------------------------------------------

def history(spec, records) -> list[Step]:
    """The Steps of a run's records (see ``compiler.data.trace_steps``)."""
    return trace_steps(spec, ((r.name, r.letter, r.text, r.tool) for r in records))


# -- three-valued evaluation ---------------------------------------------------------------------------

class Judge:
    """φ's value at the current step (the last of ``steps``), True / False / None (unknown), with every
    earlier step's values memoised across calls (they never change)."""

    def __init__(self, formulas):
        self.formulas = list(formulas)
        self.memo: dict = {}
        self.evaluations = 0

    def value(self, steps: list[Step]):
        self.evaluations += 1
        self.steps, self.i = steps, len(steps) - 1
        self.local: dict = {}
        result = True
        for f in self.formulas:
            v = self._at(f, self.i, ())
            if v is False:
                return False
            if v is None:
                result = None
        return result

    def probe(self, steps: list[Step]) -> None:
        """Evaluate every branch (no short cuts), so that probes see every comparison."""
        self.steps, self.i, self.local, self.probing = steps, len(steps) - 1, {}, True
        try:
            for f in self.formulas:
                self._at(f, self.i, ())
        finally:
            self.probing = False

    probing = False

    def _at(self, f, j: int, env: tuple):
        pure = j < self.i and all(kind == "call" or not _marked(v) for _, (kind, v) in env)
        key = (id(f), j, _env_key(env))
        store = self.memo if pure and not self.probing else self.local
        if key in store:
            return store[key]
        value = self._eval(f, j, env)
        store[key] = value
        return value

    def _eval(self, f, j: int, env: tuple):
        step = self.steps[j]
        if isinstance(f, Prop):
            return prop_matches(f, step.letter)
        if isinstance(f, Const):
            return f.value
        if isinstance(f, Truth):
            values = self._values(f.term, j, env)
            if values is None or len(values) != 1:
                return False
            v = values[0]
            return None if isinstance(v, _Marker) else v is True
        if isinstance(f, Compare):
            return self._compare(f, j, env)
        if isinstance(f, Quant):
            return self._quant(f, j, env)
        if isinstance(f, Unary):
            return self._unary(f, j, env)
        return self._binary(f, j, env)

    def _unary(self, f: Unary, j: int, env: tuple):
        at = lambda k: self._at(f.arg, k, env)  # noqa: E731
        if f.op == "!":
            v = at(j)
            return None if v is None else not v
        if f.op == "previous":
            return False if j == 0 else at(j - 1)
        if f.op == "once":
            return _any(at(k) for k in range(j, -1, -1)) if not self.probing else _any([at(k) for k in range(j + 1)])
        if f.op == "historically":
            return _all(at(k) for k in range(j, -1, -1)) if not self.probing else _all([at(k) for k in range(j + 1)])
        raise ValueError(f"not a past-time operator: {f.op}")

    def _binary(self, f: Binary, j: int, env: tuple):
        left = lambda k: self._at(f.left, k, env)  # noqa: E731
        right = lambda k: self._at(f.right, k, env)  # noqa: E731
        if f.op == "since":
            # a S b at j  ==  b(j) | (a(j) & (a S b)(j-1))
            b = right(j)
            rest = False if j == 0 else self._at(f, j - 1, env)
            return _or(b, _and(left(j), rest))
        a = left(j)
        if not self.probing:
            if f.op == "&" and a is False:
                return False
            if f.op == "|" and a is True:
                return True
            if f.op == "->" and a is False:
                return True
        b = right(j)
        if f.op == "&":
            return _and(a, b)
        if f.op == "|":
            return _or(a, b)
        if f.op == "->":
            return _or(None if a is None else not a, b)
        return None if None in (a, b) else a == b

    def _quant(self, q: Quant, j: int, env: tuple):
        if isinstance(q.ranges[0], Path):
            values = self._elements(q.ranges[0], j, env)
            if values is None:
                return None
            bindings = [("value", v) for v in values]
        else:
            calls = [k for k in range(j) if self.steps[k].call is not None
                     and any(prop_matches(r, self.steps[k].letter) for r in q.ranges)]
            if q.kind == "latest":
                calls = calls[-1:]
            bindings = [("call", k) for k in calls]
        results = (self._at(q.body, j, env + ((q.var, b),)) for b in bindings)
        if self.probing:
            results = list(results)
        return _all(results) if q.kind == "forall" else _any(results)

    # -- terms -----------------------------------------------------------------------------------------

    def _root(self, path: Path, j: int, env: tuple):
        for var, (kind, value) in reversed(env):
            if var == path.root:
                return ("call", self.steps[value].call) if kind == "call" else ("value", value)
        step = self.steps[j]
        if step.call is not None and (path.root == "this" or step.letter.split(".", 1)[0] == path.root):
            return ("call", step.call)
        return None

    def _values(self, path: Path, j: int, env: tuple) -> Optional[list]:
        """The values a path names ([] when undefined); a marker stands for what is not known yet."""
        root = self._root(path, j, env)
        if root is None:
            return []
        kind, value = root
        parts = path.parts
        if kind == "call":
            if parts[0] not in value:
                return []
            value, parts = value[parts[0]], parts[1:]
        return _walk(value, parts)

    def _elements(self, path: Path, j: int, env: tuple):
        values = self._values(path, j, env)
        if "*" in path.parts:
            return values
        if len(values) != 1:
            return []
        v = values[0]
        if isinstance(v, _Marker):
            return None
        if isinstance(v, OpenList):
            return list(v) + [UNKNOWN]
        return v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else []

    def _term(self, term, j: int, env: tuple):
        """A term's one value, a marker, or None when undefined."""
        if isinstance(term, Literal):
            return list(term.value) if isinstance(term.value, tuple) else term.value
        values = self._values(term, j, env)
        if "*" in term.parts:
            return values
        return values[0] if len(values) == 1 else _UNDEFINED

    def _compare(self, c: Compare, j: int, env: tuple):
        if c.op in ("==", "!=") and isinstance(c.left, Path) and c.left == c.right and "*" not in c.left.parts:
            value = self._term(c.left, j, env)  # X == X: whether X is defined (a value not known yet is)
            if value is _UNDEFINED:
                return False
            if value is UNKNOWN:
                return None  # an open list's element that may or may not come
            return c.op == "=="
        many_left = isinstance(c.left, Path) and "*" in c.left.parts
        if many_left and self._root(c.left, j, env) is None:
            return False
        lefts = self._term(c.left, j, env) if many_left else [self._term(c.left, j, env)]
        right = self._term(c.right, j, env)
        if isinstance(c.right, Path) and "*" in c.right.parts and self._root(c.right, j, env) is None:
            return False
        if right is _UNDEFINED or any(v is _UNDEFINED for v in lefts):
            return False
        values = [_compare3(c.op, v, right) for v in lefts]
        return _all(values)


_UNDEFINED = _Marker("UNDEFINED")


def _walk(value, parts) -> list:
    values = [value]
    for part in parts:
        nxt = []
        for v in values:
            if isinstance(v, _Marker):
                if isinstance(v, Probe):  # a rule reads inside this field's values: no OTHER for it
                    v.notes.setdefault(READS_INSIDE, set()).add(v.field)
                nxt.append(UNKNOWN)  # a part of a value not known (OTHER: only that it is no candidate)
            elif part == "*":
                nxt.extend(v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else [])
                if isinstance(v, OpenList):
                    nxt.append(UNKNOWN)
            elif isinstance(part, int):
                if isinstance(v, list) and 0 <= part < len(v):
                    nxt.append(v[part])
                elif isinstance(v, OpenList):
                    nxt.append(UNKNOWN)
            elif isinstance(v, dict) and part in v:
                nxt.append(v[part])
        values = nxt
    return values


def _peers(a: Probe, b: Probe) -> None:
    """Two fields of the call being written are compared: each one's values are the other's candidates."""
    a.notes.setdefault(PEERS, set()).update({(a.field, b.field), (b.field, a.field)})


def _compare3(op: str, left, right):
    """``left op right`` where either side may hold markers (see the module doc)."""
    if _marked(right) and not _marked(left) and op in ("==", "!="):
        left, right = right, left  # equality is symmetric: the side holding markers goes left
    members = (right if isinstance(right, list) else list(right) if isinstance(right, dict) else []) \
        if op in ("in", "notin") else [right]
    if isinstance(left, Probe):
        for member in members:
            if isinstance(member, Probe):
                _peers(left, member)
            elif not _marked(member):
                left.note(member)
        return None
    if op in ("in", "notin") and not _marked(left):
        for member in members:  # "a" in this.args.tags: "a" is a candidate of the tags' elements
            if isinstance(member, Probe):
                member.note(left)
    if isinstance(right, _Marker) or (op in ("in", "notin") and _marked(right)):
        return None  # e.g. OTHER == OTHER: the same value, or two different ones, not known
    if left is UNKNOWN:
        return None
    if left is OTHER:
        if op == "==":
            return False
        if op == "!=":
            return True
        if op in ("in", "notin"):
            inside = isinstance(right, (list, dict))
            return (False if op == "in" else True) if inside else False
        return None
    if _marked(left):
        if op in ("==", "!="):
            eq = _equal3(left, right)
            return eq if op == "==" or eq is None else not eq
        return None
    return compare_values(op, left, right)


def _equal3(left, right):
    """Equality of a value holding markers with a plain one: a Probe notes its counterpart."""
    if isinstance(left, Probe):
        left.note(right)
        return None
    if left is UNKNOWN:
        return None
    if left is OTHER:
        return False
    if isinstance(left, dict):
        if not isinstance(right, dict) or left.keys() != right.keys():
            return False
        return _all([_equal3(left[k], right[k]) for k in left])
    if isinstance(left, OpenList):
        if not isinstance(right, list) or len(right) < len(left):
            return False
        return _and(_all([_equal3(a, b) for a, b in zip(left, right)]), None)
    if isinstance(left, list):
        if len(left) == 1 and isinstance(left[0], Probe) and isinstance(right, list):
            left[0].note(list(right))  # a probed list field: the whole list, and each element, are candidates
            for element in right:
                left[0].note(element)
            return None
        if not isinstance(right, list) or len(left) != len(right):
            return False
        return _all([_equal3(a, b) for a, b in zip(left, right)])
    return json_equal(left, right)


def _env_key(env: tuple):
    return tuple((var, kind, value if kind == "call" else _freeze(value)) for var, (kind, value) in env)


def _freeze(value):
    if isinstance(value, _Marker):
        return ("marker", id(value))
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError:
        return ("marked", id(value))


def _and(a, b):
    return False if False in (a, b) else (True if a is True and b is True else None)


def _or(a, b):
    return True if True in (a, b) else (False if a is False and b is False else None)


def _any(values):
    result = False
    for v in values:
        if v is True:
            return True
        if v is None:
            result = None
    return result


def _all(values):
    result = True
    for v in values:
        if v is False:
            return False
        if v is None:
            result = None
    return result


# -- the policy of one spec ----------------------------------------------------------------------------

class Policy:
    """The data rules of a spec, judged incrementally over one run (``reset`` for the next)."""

    def __init__(self, spec):
        self.spec = spec
        self.formulas = [rule.node.arg for rule in spec.behavior if rule.kind == "data"]
        self.tools = {t.name: t for t in spec.tools}
        self.reset()

    def reset(self) -> None:
        self.judge = Judge(self.formulas)

    @property
    def active(self) -> bool:
        return bool(self.formulas)

    def letter_allowed(self, past: list[Step], letter: str) -> bool:
        """Whether a step with ``letter`` that is not a call keeps every rule."""
        return not self.formulas or self.judge.value(past + [Step(letter)]) is True

    def plan(self, past: list[Step], letter: str, tool: str) -> Optional["CallPlan"]:
        """How to write a call of ``tool`` (letter ``letter``) that keeps every rule, or None when no
        arguments can (the call is never started)."""
        schema = json.loads(self.tools[tool].parameters)
        plan = CallPlan(self, past, letter, tool, schema)
        return plan if plan.feasible() else None


@dataclass
class FieldInfo:
    name: str
    schema: dict
    is_list: bool
    candidates: list
    other: bool = True  # whether a value (list: an element) that is no candidate may be written
    lists: list = field(default_factory=list)  # a list field: whole lists the rules compare it with


def settle(f: FieldInfo, read_inside: bool = False) -> None:
    """Make a field's domain one the writer can spell and the judge can decide: a finite schema's values
    (enum, const, boolean, null) are its candidates and there is no OTHER; a value other than the
    candidates, when some of them may be excluded, is spelled only for plain strings (``string_except``)
    and numbers (``integer_except``: then integers only), so another schema gets OTHER only when it has
    no candidates; and never when the rules read parts of the field's values (``read_inside``: OTHER's
    parts are unknown)."""
    schema = f.schema
    if f.is_list:
        schema = schema.get("items") if isinstance(schema.get("items"), dict) else {}
    finite = _finite_values(schema)
    if finite is not None:
        f.candidates, f.other = finite, False
        return
    if schema.get("type") in ("string", "number", "integer") and "$ref" not in schema:
        import jsonschema

        valid = jsonschema.validators.validator_for(schema)(schema).is_valid
        f.candidates = [c for c in f.candidates if valid(c)]  # a value the field cannot hold is no choice
    f.other = not read_inside and (plain_string(schema) or plain_number(schema) or not f.candidates)


def _add_candidates(f: FieldInfo, values) -> None:
    for v in values:
        if not _marked(v) and not any(json_equal(v, c) for c in f.candidates):
            f.candidates.append(v)


def _finite_values(schema: dict) -> Optional[list]:
    if "enum" in schema and isinstance(schema["enum"], list):
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    return {"boolean": [True, False], "null": [None]}.get(schema.get("type"))


def plain_string(schema: dict) -> bool:
    """A string schema with no constraint but its type (so any other string is a valid value)."""
    return schema.get("type") == "string" and set(schema) <= {"type", "description", "title"}


def plain_number(schema: dict) -> bool:
    """An integer or number schema with no constraint but its type."""
    return schema.get("type") in ("integer", "number") and set(schema) <= {"type", "description", "title"}


class CallPlan:
    """The arguments of one call, decided field by field (lists element by element)."""

    def __init__(self, policy: Policy, past: list[Step], letter: str, tool: str, schema: dict):
        self.policy, self.past, self.letter, self.tool, self.schema = policy, past, letter, tool, schema
        props = schema.get("properties", {})
        self.fields = [FieldInfo(name, sub if isinstance(sub, dict) else {}, _is_list(sub), [])
                       for name, sub in props.items()]
        self.budget_left = MAX_SEARCH
        self.answers: dict = {}  # exists() per assignment: the writer asks the same questions again
        self.peers: dict = {}
        self.inside = self._probe() if policy.formulas else set()
        for f in self.fields:
            settle(f, f.name in self.inside)

    def _step(self, args: dict) -> list[Step]:
        return self.past + [Step(self.letter, {"tool": self.tool, "args": args})]

    def _probe(self) -> set:
        notes: dict = {}
        args = {f.name: ([Probe(f.name, notes)] if f.is_list else Probe(f.name, notes)) for f in self.fields}
        self.policy.judge.probe(self._step(args))
        # a whole-arguments comparison (this.args == p.args) notes each of its fields' values too
        for f in self.fields:
            found = notes.get(f.name, [])
            f.candidates = [v for v in found if not (f.is_list and isinstance(v, list))] if f.is_list else found
            f.lists = [v for v in found if isinstance(v, list)] if f.is_list else []
        by_name = {f.name: f for f in self.fields}
        for a, b in sorted(notes.get(PEERS, set())):
            self.peers.setdefault(a, set()).add(b)
            _add_candidates(by_name[a], by_name[b].candidates)
        return notes.get(READS_INSIDE, set())

    def take_peers(self, f: FieldInfo, assigned: dict) -> None:
        """Before ``f`` is written: the values written for the fields the rules compare it with become
        its candidates too (so a value other than the candidates differs from them, as the judge
        assumes)."""
        values = []
        for name in sorted(self.peers.get(f.name, ())):
            if name in assigned and not _marked(assigned[name]):
                v = assigned[name]
                values += v if isinstance(v, list) and not isinstance(v, OpenList) else [v]
        if values:
            _add_candidates(f, values)
            settle(f, f.name in self.inside)

    def _judge(self, args: dict):
        self.budget_left -= 1
        return self.policy.judge.value(self._step(args))

    def _domain(self, f: FieldInfo) -> list:
        other = [OTHER] if f.other else []
        if not f.is_list:
            return list(f.candidates) + other
        return [[]] + [[c] for c in f.candidates + other] + [list(v) for v in f.lists] + [OpenList()]

    def exists(self, assigned: dict) -> bool:
        """Whether the fields not in ``assigned`` have values making every rule true (a search over the
        fields' candidate domains, pruned when the rules are already false). False also when the search
        runs out of MAX_SEARCH evaluations (never a guess)."""
        if not self.policy.formulas:
            return True
        key = _assignment_key(assigned)
        if key not in self.answers:
            self.budget_left = MAX_SEARCH
            self.answers[key] = self._search(dict(assigned), [f for f in self.fields if f.name not in assigned])
        return self.answers[key]

    def _search(self, assigned: dict, rest: list) -> bool:
        if self.budget_left <= 0:
            return False
        args = {f.name: assigned.get(f.name, UNKNOWN) for f in self.fields}
        verdict = self._judge(args)
        if verdict is False:
            return False
        if not rest:  # an open list may still be completed: its writer checks each element again
            return verdict is True or (verdict is None and any(isinstance(v, OpenList) for v in assigned.values()))
        if verdict is True:
            return True  # the rest do not matter
        first, later = rest[0], rest[1:]
        return any(self._search({**assigned, first.name: v}, later) for v in self._domain(first))

    def feasible(self) -> bool:
        return self.exists({})

    # -- what the decoder asks -------------------------------------------------------------------------

    def scalar_choice(self, assigned: dict, f: FieldInfo):
        """(allowed candidates, whether a non-candidate value is allowed) for scalar field ``f``."""
        allowed = [c for c in f.candidates if self.exists({**assigned, f.name: c})]
        return allowed, f.other and self.exists({**assigned, f.name: OTHER})

    def element_choice(self, assigned: dict, f: FieldInfo, prefix: list):
        """(allowed candidates, whether a non-candidate is allowed) for the next element of list field
        ``f`` after ``prefix``: an element is allowed when the list may end right after it, or may go on
        (the rules not yet false with more elements to come)."""
        room = f.schema.get("maxItems") is None or len(prefix) + 1 < f.schema["maxItems"]

        def ok(value) -> bool:
            return self.exists({**assigned, f.name: prefix + [value]}) or \
                (room and self.exists({**assigned, f.name: OpenList(prefix + [value])}))
        return [c for c in f.candidates if ok(c)], f.other and ok(OTHER)

    def may_continue(self, assigned: dict, f: FieldInfo, prefix: list) -> bool:
        """Whether some element may follow ``prefix`` (see ``element_choice``; stops at the first)."""
        room = f.schema.get("maxItems") is None or len(prefix) + 1 < f.schema["maxItems"]
        for value in list(f.candidates) + ([OTHER] if f.other else []):
            if self.exists({**assigned, f.name: prefix + [value]}) or \
                    (room and self.exists({**assigned, f.name: OpenList(prefix + [value])})):
                return True
        return False

    def may_end(self, assigned: dict, f: FieldInfo, prefix: list) -> bool:
        return self.exists({**assigned, f.name: list(prefix)})


def _assignment_key(assigned: dict) -> str:
    """A key for a partial assignment (markers and open lists spelled apart from plain values)."""
    def spell(value):
        if isinstance(value, OpenList):
            return {"open": [spell(v) for v in value]}
        if isinstance(value, _Marker):
            return {"marker": value.name}
        if isinstance(value, list):
            return [spell(v) for v in value]
        return value
    return json.dumps({k: spell(v) for k, v in sorted(assigned.items())}, sort_keys=True)


def _is_list(schema) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "array"


# -- regexes of the values on offer --------------------------------------------------------------------

STRING_CHAR = r'([^"\\\x00-\x1F\x7F-\x9F]|\\["\\bfnrt])'  # one unit; no "\/": one spelling per string
_UNIT = re.compile(r"\\.|.", re.S)


def literal(value) -> str:
    """A JSON value as the call writes it (json.dumps: ", " and ": " separators)."""
    return json.dumps(value, ensure_ascii=False)


def literal_regex(values) -> str:
    """A regex matching exactly these JSON values as written."""
    return "(" + "|".join(re.escape(literal(v)) for v in values) + ")" if values else "(?!)"


EXCEPT_DEPTH = 2  # units a complement spells out (outlines-core's DFA grows exponentially with depth: 3 units
# took 0.7 s, 9 units over 280 s); a longer excluded string blocks every string with its first units


def string_except(excluded: list[str]) -> str:
    """A regex of the JSON strings other than the ``excluded`` ones, each string having one spelling
    (STRING_CHAR units): built on the excluded strings' trie of units, so none of them matches. A string
    longer than EXCEPT_DEPTH units excludes every string with its first EXCEPT_DEPTH units (the regex
    engine bounds nesting): sound, a little less complete."""
    trie: dict = {}
    for text in excluded:
        node = trie
        units = _UNIT.findall(literal(text)[1:-1])
        for unit in units[:EXCEPT_DEPTH]:
            node = node.setdefault(unit, {})
        node[None if len(units) <= EXCEPT_DEPTH else _BLOCK] = True
    return '"' + (_trie_complement(trie) or "(?!)") + '"'


_BLOCK = ("block",)


def _trie_complement(node: dict) -> Optional[str]:
    """Strings of STRING_CHAR units that are not exactly a word of the trie rooted at ``node``, nor
    start with a blocked prefix (None when there are none)."""
    if _BLOCK in node:
        return None
    branches = [] if None in node else [""]  # ending here is fine unless an excluded word ends here
    units = [u for u in node if isinstance(u, str)]
    chars = "".join(re.escape(u) for u in units if len(u) == 1)
    escapes = "".join(u[1] for u in units if len(u) == 2)
    char_class = rf'[^"\\\x00-\x1F\x7F-\x9F{chars}]'
    rest = "".join(c for c in '"\\bfnrt' if c not in escapes)
    first = char_class + (rf"|\\[{re.escape(rest)}]" if rest else "")
    branches.append(f"({first}){STRING_CHAR}*")  # a first unit off the trie: anything may follow
    for unit in units:
        tail = _trie_complement(node[unit])
        if tail is not None:
            branches.append(re.escape(unit) + tail)
    return "(" + "|".join(branches) + ")"


def integer_except(excluded: list) -> str:
    """A regex of the integers other than the ``excluded`` numbers, each written one way (``0`` or
    ``-?[1-9][0-9]*``): built on the excluded integers' trie of digits, so none of them matches (a
    non-integral excluded number matches no integer anyway)."""
    trie: dict = {}
    for value in excluded:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
            node = trie
            for char in str(int(value)):
                node = node.setdefault(char, {})
            node[None] = True
    return _integer_complement(trie, "") or "(?!)"  # never None: there are infinitely many integers


def _integer_complement(node: dict, prefix: str) -> Optional[str]:
    """Integers (as above) starting with ``prefix`` that are not exactly a word of the trie at ``node``
    (None when there are none)."""
    branches = [""] if prefix not in ("", "-") and None not in node else []
    nexts = "-0123456789" if prefix == "" else "123456789" if prefix == "-" else "" if prefix == "0" else "0123456789"
    off = [c for c in nexts if c not in node]
    if "-" in off:
        branches.append("-[1-9][0-9]*")
    if "0" in off and prefix == "":
        branches.append("0")
    digits = "".join(c for c in off if c.isdigit() and (c != "0" or prefix != ""))
    if digits:
        branches.append(f"[{digits}][0-9]*")
    for char in (c for c in nexts if c in node):
        rest = _integer_complement(node[char], prefix + char)
        if rest is not None:
            branches.append(re.escape(char) + rest)
    return "(" + "|".join(branches) + ")" if branches else None
