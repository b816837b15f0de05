"""Context-free content: recursive Lark grammars and recursive JSON Schemas as one plain BNF.

Regular content is a regex (``content.py``) decoded with an outlines-core index. Content that is not
regular — a ``grammar:`` whose rules recurse other than through ``*`` / ``+``, a ``json:`` schema whose
``$ref`` s form a cycle (a tree, nested lists) — is turned here into a ``Bnf``: nonterminals with
alternatives of symbols, terminals as regexes, the ``%ignore`` terminals. The whole segment body
(``" " + content + END``) is one ``Bnf`` whose ``start`` rule is ``SP user_start END``.

The same ``Bnf`` is what llguidance masks with (``Bnf.lark()``: Lark text in llguidance's dialect, names
renumbered, one rule per line), what vLLM's guidance backend is sent, and what the runtime's shortest-
completion parser (``runtime.cfg``) reads, so all three agree on the language.

``check`` validates the emitted grammar with llguidance (imported inside ``grammar_problem`` only).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

from .content import ContentError

START = "start"


@dataclass(frozen=True)
class Terminal:
    regex: str                     # Python / Rust common regex syntax (what outlines-core indexes)
    literal: Optional[str] = None  # the text when the terminal is a plain string
    source: Optional[str] = None   # its name in the user's grammar (for located errors)


@dataclass(frozen=True)
class Bnf:
    rules: dict        # nonterminal -> tuple of alternatives (tuples of symbol names)
    terminals: dict    # terminal name -> Terminal
    ignore: tuple = ()  # terminal names skipped between any two terminals

    def lark(self) -> str:
        """The grammar as llguidance Lark text (``%ignore`` included)."""
        lines = []
        for name, alts in self.rules.items():
            lines.append(f"{name}: " + " | ".join(" ".join(alt) for alt in alts))
        for name, term in self.terminals.items():
            if term.literal is not None:
                lines.append(f"{name}: {json.dumps(term.literal)}")
            else:
                lines.append(f"{name}: /{_lark_regex(term.regex)}/")
        lines += [f"%ignore {name}" for name in self.ignore]
        return "\n".join(lines) + "\n"


def _lark_regex(regex: str) -> str:
    """A regex in llguidance's syntax: ``/`` escaped, escaped blanks and control characters as escapes."""
    out, i = [], 0
    while i < len(regex):
        char = regex[i]
        if char == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            out.append(" " if nxt == " " else _ctl(nxt) if ord(nxt) < 32 else "\\" + nxt)
            i += 2
            continue
        out.append("\\/" if char == "/" else _ctl(char) if ord(char) < 32 else char)
        i += 1
    return "".join(out)


def _ctl(char: str) -> str:
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(char, f"\\x{ord(char):02x}")


class _Builder:
    """Rules and terminals under fresh names (r0, r1, … / T0, T1, …), terminals shared by value."""

    def __init__(self):
        self.rules: dict = {}
        self.terminals: dict = {}
        self._by_value: dict = {}

    def terminal(self, regex: str, literal: Optional[str] = None, source: Optional[str] = None) -> str:
        key = (regex, literal)
        if key not in self._by_value:
            name = f"T{len(self.terminals)}"
            self.terminals[name] = Terminal(regex, literal, source)
            self._by_value[key] = name
        return self._by_value[key]

    def literal(self, text: str) -> str:
        return self.terminal(re.escape(text), text)

    def fresh(self) -> str:
        name = f"r{len(self.rules)}"
        self.rules[name] = ()
        return name

    def rule(self, alts) -> str:
        name = self.fresh()
        self.rules[name] = tuple(tuple(a) for a in alts)
        return name

    def body(self, user_start: str, end: str, ignore=()) -> Bnf:
        seq = [self.literal(" "), user_start] + ([self.literal(end)] if end else [])
        rules = {START: (tuple(seq),), **self.rules}
        return Bnf(rules, dict(self.terminals), tuple(ignore))


# -- Lark grammars ------------------------------------------------------------------------------------

def lark_bnf(grammar: str, end: str) -> Bnf:
    """The BNF of a Lark grammar's ``start`` (EBNF already expanded by lark itself) as a segment body.
    Raises ContentError when lark cannot read it."""
    import lark

    try:
        parser = lark.Lark(grammar, start="start")
    except Exception as err:  # noqa: BLE001 - check_content reports lark's own errors first
        raise ContentError(f"invalid Lark grammar: {str(err).strip().splitlines()[0] if str(err).strip() else err}")
    b = _Builder()
    names: dict = {}
    for rule in parser.rules:
        if rule.origin.name not in names:
            names[rule.origin.name] = b.fresh()
    terms = {}
    for t in parser.terminals:
        literal = t.pattern.value if t.pattern.type == "str" and not t.pattern.flags else None
        terms[t.name] = b.terminal(t.pattern.to_regexp(), literal, t.name)
    ignored = [terms[n] for n in parser.ignore_tokens if n in terms]
    spaced = dict(terms)
    if ignored:
        # %ignore as grammar: any run of ignored terminals before each terminal of the content and before
        # END, never after END (llguidance's own %ignore would let a server write blanks after END until
        # its token limit); the same language as the regex path's separators.
        blanks = b.fresh()
        b.rules[blanks] = ((),) + tuple((blanks, t) for t in ignored)
        spaced = {name: b.rule([(blanks, t)]) for name, t in terms.items() if t not in ignored}
    alts: dict = {}
    for rule in parser.rules:
        seq = [spaced[s.name] if s.is_term else names[s.name] for s in rule.expansion]
        alts.setdefault(names[rule.origin.name], []).append(tuple(seq))
    for name, a in alts.items():
        b.rules[name] = tuple(a)
    if ignored:
        inner = b.rule([(names["start"], blanks)])
        return b.body(inner, end)
    return b.body(names["start"], end)


def grammar_is_regular(grammar: str) -> bool:
    """Whether ``content.grammar_regex`` can translate the grammar (no recursion but * and +)."""
    from .content import grammar_regex

    try:
        grammar_regex(grammar)
    except ContentError as err:
        if "recursive" in str(err):
            return False
        raise
    return True


# -- JSON Schemas ---------------------------------------------------------------------------------------

JSON_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
JSON_INTEGER = r"-?(?:0|[1-9][0-9]*)"
JSON_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_IGNORED = {"title", "description", "$schema", "$id", "$comment", "default", "examples", "$defs", "definitions",
            "additionalProperties"}
_SUPPORTED = {"type", "properties", "required", "items", "enum", "const", "anyOf", "$ref", "minItems"} | _IGNORED


def json_is_recursive(schema_text: str) -> bool:
    """Whether the schema's ``$ref`` s form a cycle (its language is then not regular)."""
    schema = json.loads(schema_text)
    graph: dict = {}

    def refs(node, found):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                found.add(node["$ref"])
            for key, value in node.items():
                if key not in ("$defs", "definitions"):
                    refs(value, found)
        elif isinstance(node, list):
            for value in node:
                refs(value, found)
        return found

    targets = {"#": schema}
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items() if isinstance(schema, dict) else ():
            targets[f"#/{key}/{name}"] = sub
    for ref, node in targets.items():
        graph[ref] = refs(node, set())
    state: dict = {}

    def cyclic(ref) -> bool:
        if state.get(ref) == 1:
            return True
        if state.get(ref) == 2 or ref not in graph:
            return False
        state[ref] = 1
        if any(cyclic(r) for r in graph[ref]):
            return True
        state[ref] = 2
        return False

    return cyclic("#")


def json_bnf(schema_text: str, end: str) -> Bnf:
    """The BNF of the JSON values a (recursive) schema accepts, compact with an optional single space
    after ``,`` and ``:``, object properties in the schema's order (required ones always written).
    Raises ContentError for keywords this translation does not support."""
    schema = json.loads(schema_text)
    b = _Builder()
    return b.body(_json_values(b, schema)(schema), end)


def piece_bnf(prefix: str, branches) -> Bnf:
    """The BNF of a call argument's piece: the regex ``prefix`` (may be empty), then one of ``branches``,
    each (value, after) where value is ``("regex", R)`` or ``("schema", SUB, ROOT)`` (a JSON value of
    SUB, its refs resolved in ROOT) and after a regex of what follows it (may be empty). Raises
    ContentError for schemas the translation does not support."""
    b = _Builder()
    head = (b.terminal(prefix),) if prefix else ()
    alts = []
    for value, after in branches:
        if value[0] == "schema":
            first = (_json_values(b, value[2])(value[1]),)
        else:
            first = (b.terminal(value[1]),) if value[1] else ()
        alts.append(head + first + ((b.terminal(after),) if after else ()))
    return Bnf({START: tuple(alts), **b.rules}, dict(b.terminals))


def _json_values(b: "_Builder", schema):
    """The function that adds to ``b`` the rule of a schema node's JSON values (refs in ``schema``)."""
    sp = b.rule([(b.literal(" "),), ()])
    comma = b.rule([(b.literal(","), sp)])
    colon = b.rule([(b.literal(":"), sp)])
    memo: dict = {}
    generic: dict = {}

    def resolve(ref: str):
        if ref == "#":
            return schema
        for key in ("$defs", "definitions"):
            prefix = f"#/{key}/"
            if ref.startswith(prefix) and ref[len(prefix):] in (schema.get(key) or {}):
                return schema[key][ref[len(prefix):]]
        raise ContentError(f"the runtime resolves only '#', '#/$defs/NAME' and '#/definitions/NAME' refs, not {ref!r}")

    def any_value() -> str:
        if "value" not in generic:
            value = generic["value"] = b.fresh()
            pair = b.rule([(b.terminal(JSON_STRING), colon, value)])
            pairs = b.fresh()
            b.rules[pairs] = ((pair,), (pairs, comma, pair))
            items = b.fresh()
            b.rules[items] = ((value,), (items, comma, value))
            generic["object"] = b.rule([(b.literal("{"), b.literal("}")), (b.literal("{"), pairs, b.literal("}"))])
            b.rules[value] = ((generic["object"],), (b.literal("["), b.literal("]")),
                              (b.literal("["), items, b.literal("]")),
                              (b.terminal(JSON_STRING),), (b.terminal(JSON_NUMBER),),
                              (b.literal("true"),), (b.literal("false"),), (b.literal("null"),))
        return generic["value"]

    def any_object() -> str:
        any_value()
        return generic["object"]

    def value(node) -> str:
        if node is True or node == {}:
            return any_value()
        if not isinstance(node, dict):
            raise ContentError("a schema that accepts nothing (false) cannot be decoded")
        unknown = sorted(set(node) - _SUPPORTED)
        if unknown:
            raise ContentError(f"recursive JSON Schemas are decoded as a grammar, which supports type, "
                               f"properties, required, items, minItems, enum, const, anyOf and $ref; not "
                               f"{', '.join(unknown)}")
        if "$ref" in node:
            ref = node["$ref"]
            if ref not in memo:
                memo[ref] = b.fresh()
                b.rules[memo[ref]] = ((value(resolve(ref)),),)
            return memo[ref]
        if "const" in node:
            return b.rule([(b.literal(json.dumps(node["const"])),)])
        if "enum" in node:
            return b.rule([(b.literal(json.dumps(v)),) for v in node["enum"]])
        if "anyOf" in node:
            return b.rule([(value(sub),) for sub in node["anyOf"]])
        kind = node.get("type")
        if isinstance(kind, list):
            return b.rule([(value({**node, "type": k}),) for k in kind])
        if kind is None:
            return any_value()
        if kind == "string":
            return b.rule([(b.terminal(JSON_STRING),)])
        if kind == "integer":
            return b.rule([(b.terminal(JSON_INTEGER),)])
        if kind == "number":
            return b.rule([(b.terminal(JSON_NUMBER),)])
        if kind in ("boolean", "null"):
            return b.rule([(b.literal(v),) for v in (("true", "false") if kind == "boolean" else ("null",))])
        if kind == "array":
            return array(node)
        if kind == "object":
            return obj(node)
        raise ContentError(f"unknown JSON Schema type {kind!r}")

    def array(node) -> str:
        item = value(node.get("items", True))
        least = int(node.get("minItems", 0))
        more = b.fresh()
        b.rules[more] = ((), (comma, item, more))
        first = [item] + [s for _ in range(max(least - 1, 0)) for s in (comma, item)]
        alts = [(b.literal("["), *first, more, b.literal("]"))]
        if least == 0:
            alts.append((b.literal("["), b.literal("]")))
        return b.rule(alts)

    def obj(node) -> str:
        props = node.get("properties")
        if not props:
            return any_object() if not node.get("required") else _refuse("required without properties")
        required = set(node.get("required") or ())
        pairs = [(b.rule([(b.literal(json.dumps(k)), colon, value(v))]), k in required) for k, v in props.items()]
        rest: dict = {}

        def after(i: int, need_comma: bool) -> str:
            key = (i, need_comma)
            if key in rest:
                return rest[key]
            if i == len(pairs):
                rest[key] = b.rule([()])
                return rest[key]
            pair, needed = pairs[i]
            take = ((comma,) if need_comma else ()) + (pair, after(i + 1, True))
            alts = [take] + ([] if needed else [(after(i + 1, need_comma),)])
            rest[key] = b.rule(alts)
            return rest[key]

        return b.rule([(b.literal("{"), after(0, False), b.literal("}"))])

    def _refuse(why: str):
        raise ContentError(f"recursive JSON Schemas: {why} is not supported")

    return value


# -- which content is context-free, and can it be decoded ----------------------------------------------

def content_bnf(kind: str, value: Optional[str], end: str) -> Optional[Bnf]:
    """The BNF of content llguidance decodes (a recursive grammar; a JSON Schema the translation
    supports), or None when the content is decoded from its regex by outlines-core. Raises ContentError."""
    if kind == "grammar" and not grammar_is_regular(value):
        return lark_bnf(value, end)
    if kind == "json":
        # Every JSON Schema the grammar translation supports goes to llguidance (bench/bench_masks.py: an
        # outlines-core index of a JSON object takes 0.1-34 s to build, a matcher 1-9 ms, which value sets
        # that change every step need); others stay regexes, unless they recurse (then: an error).
        try:
            return json_bnf(value, end)
        except ContentError:
            if json_is_recursive(value):
                raise
    return None


def grammar_problem(bnf: Bnf) -> Optional[str]:
    """Why the runtime cannot decode context-free content with this BNF (a terminal its byte-level
    parser cannot index, a grammar llguidance refuses, no finite text), or None."""
    import llguidance

    from .content import regex_problem

    for name, term in bnf.terminals.items():
        problem = regex_problem(term.regex)
        if problem is not None:
            return f"terminal {term.source + ' ' if term.source else ''}/{term.regex}/: {problem}"
    text = bnf.lark()
    error = llguidance.LLMatcher.validate_grammar(llguidance.grammar_from("lark", text))
    if error and not error.startswith("WARNING"):
        return f"llguidance refuses it: {error.strip().splitlines()[0]}"
    if START not in shortest_strings(bnf):
        return "no finite text matches it (every alternative recurses forever)"
    return None


def shortest_strings(bnf: Bnf) -> dict:
    """Per symbol, a shortest text (bytes) it derives (a fixed point over the rules; terminals' from their
    byte-level index). Unproductive nonterminals are absent."""
    from .content import _byte_vocabulary

    from outlines_core import Index

    best: dict = {}
    for name, term in bnf.terminals.items():
        best[name] = term.literal.encode() if term.literal is not None else _shortest_match(Index(term.regex, _byte_vocabulary()))
    changed = True
    while changed:
        changed = False
        for name, alts in bnf.rules.items():
            for alt in alts:
                if all(s in best for s in alt):
                    text = b"".join(best[s] for s in alt)
                    if name not in best or (len(text), text) < (len(best[name]), best[name]):
                        best[name] = text
                        changed = True
    return best


def _shortest_match(index) -> bytes:
    """A shortest byte string an outlines-core index over single bytes accepts (breadth first)."""
    from collections import deque

    start = index.get_initial_state()
    seen, queue = {start: b""}, deque([start])
    transitions = index.get_transitions()
    while queue:
        state = queue.popleft()
        if index.is_final_state(state):
            return seen[state]
        for byte, target in sorted(transitions.get(state, {}).items()):
            if byte < 256 and target not in seen:
                seen[target] = seen[state] + bytes([byte])
                queue.append(target)
    raise ContentError("a terminal matches no text")


def problem_offset(grammar: str, problem: str) -> Optional[int]:
    """Where in a Lark grammar's text the terminal a ``grammar_problem`` names is defined, or None."""
    found = re.match(r"terminal ([A-Z_][A-Z_0-9]*) /", problem)
    if not found:
        return None
    where = re.search(rf"^[ \t]*{found.group(1)}(?:\.-?\d+)?[ \t]*:", grammar, re.MULTILINE)
    return where.start() + len(where.group(0)) - len(where.group(0).lstrip()) if where else None
