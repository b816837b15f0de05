"""Data rules: LTLf grown with terms over tool calls, compared, quantified and read through past time.

A behaviour formula that uses data (a comparison, a quantifier, a path such as ``o.result.status``) or a
past-time operator (``previous``, ``once``, ``historically``, ``since``) is a *data rule*. It must read
``G φ`` with ``φ`` free of future operators: φ is checked at every step against what happened so far, so
the runtime can tell, before a step is written, which steps and which argument values keep it true.
This module resolves the names of such a rule, checks them against the tools' JSON Schemas and types
every comparison; every error is located (``file:line:col`` and a caret). The meaning is
``semantics.holds``; the runtime enforces it (``ltlagent.runtime.policy``).

Names in a data rule:

* ``segment`` / ``segment.option`` — a letter, as in any formula (a call segment's options are its tools);
* ``this`` — the call written at the current step (any call segment); ``SEG`` — the same, only when the
  current step is in call segment SEG; ``x`` — a variable bound by a quantifier;
* after a call: ``.args`` (its arguments, walked under the tool's ``parameters``), ``.result`` (its
  result, walked under the tool's ``returns``: known for earlier calls only), ``.ok`` (the tool answered
  without an error), ``.tool`` (its name); then ``.field``, ``[*]`` (every element; on the left of a
  comparison: every element must satisfy it), ``[N]``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Optional

from .ast import (CALL_FIELDS, PAST_BINARY, PAST_UNARY, Binary, Compare, Const, Formula, Last, Literal, Path,
                  Prop, Quant, Rule, Truth, Unary)
from .errors import SpecSemanticError

THIS = "this"
FUTURE_OPS = frozenset({"X", "WX", "F", "G", "U", "R", "W"})
ORDERED = frozenset({"<", "<=", ">", ">="})


def is_data_formula(formula: Formula) -> bool:
    """Whether a parsed formula uses data or past time (and so is a data rule)."""
    if isinstance(formula, (Compare, Truth, Quant)):
        return True
    if isinstance(formula, Unary):
        return formula.op in PAST_UNARY or is_data_formula(formula.arg)
    if isinstance(formula, Binary):
        return formula.op in PAST_BINARY or is_data_formula(formula.left) or is_data_formula(formula.right)
    return False


def body(rule: Rule) -> Formula:
    """The φ of a data rule ``G φ``."""
    return rule.node.arg


# -- types ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Type:
    """What a term can be: ``kind`` among string number boolean null array object any; ``items`` the
    element type of an array; ``many``: the term has a ``[*]`` (a collection of values)."""

    kind: str
    items: Optional["Type"] = None
    many: bool = False

    def __str__(self) -> str:
        text = f"array of {self.items}" if self.kind == "array" and self.items else self.kind
        return f"values of type {text}" if self.many else text


ANY = Type("any")


def schema_type(schema, root=None) -> Type:
    """The Type a JSON Schema describes (``any`` where it does not say one type)."""
    schema = resolve_ref(schema, root if root is not None else schema)
    if not isinstance(schema, dict):
        return ANY
    kind = schema.get("type")
    if kind == "integer":
        kind = "number"
    if kind == "array":
        return Type("array", schema_type(schema.get("items", {}), root or schema))
    if "enum" in schema and kind is None:
        kinds = {_value_kind(v) for v in schema["enum"]}
        return Type(kinds.pop()) if len(kinds) == 1 else ANY
    return Type(kind) if kind in ("string", "number", "boolean", "null", "object") else ANY


def _value_kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, (list, tuple)) else "object"


def resolve_ref(schema, root):
    """A local ``{"$ref": "#/..."}`` followed inside ``root`` (other schemas as they are)."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#"):
        node = root
        for key in [k for k in schema["$ref"][1:].split("/") if k]:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        schema, seen = node, seen + 1
        if seen > 32:
            return {}
    return schema


def walk_schema(schema, part, root):
    """The sub-schema at one path part (a field, ``*`` or an index), or None when the schema does not
    declare it."""
    schema = resolve_ref(schema, root)
    if not isinstance(schema, dict):
        return None
    if part == "*" or isinstance(part, int):
        items = schema.get("items")
        return items if isinstance(items, dict) else (
            {} if schema.get("type") == "array" or (isinstance(items, bool) and items) else None)
    props = schema.get("properties", {})
    if part in props:
        return props[part]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


# -- resolution ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """What names mean inside a data rule: per variable, the tools of the calls it ranges over (or the
    Type of the values it ranges over); the spec."""

    spec: object
    calls: dict  # var -> tuple of tool names
    values: dict  # var -> (Type, sub-schema or None, root schema)

    def bind_calls(self, var: str, tools: tuple) -> "Scope":
        return replace(self, calls={**self.calls, var: tools}, values={k: v for k, v in self.values.items() if k != var})

    def bind_values(self, var: str, kind: tuple) -> "Scope":
        return replace(self, values={**self.values, var: kind}, calls={k: v for k, v in self.calls.items() if k != var})


def call_segments(spec) -> list:
    return [s for s in spec.segments if s.content.kind == "call"]


def check_data_rule(rule: Rule, spec) -> Rule:
    """The rule with its names resolved (a variable's ``x.ok`` written as a proposition becomes a Truth),
    checked: the shape ``G φ`` with φ past-time only, every segment, tool, variable and field declared,
    every comparison well-typed. Raises SpecSemanticError, located."""
    node = rule.node
    if not (isinstance(node, Unary) and node.op == "G" and node.bounds is None):
        raise SpecSemanticError("a rule over data or past time reads G(φ), φ checked at every step", rule.node.span
                                or rule.span, "write it as G(trigger -> condition)")
    resolved = _resolve(node.arg, Scope(spec, {}, {}))
    return replace(rule, kind="data", node=Unary("G", resolved, None, node.span))


def _resolve(f: Formula, scope: Scope) -> Formula:
    if isinstance(f, Prop):
        return _resolve_prop(f, scope)
    if isinstance(f, (Const,)):
        return f
    if isinstance(f, Last) or (isinstance(f, Unary) and f.op in FUTURE_OPS) or \
            (isinstance(f, Binary) and f.op in FUTURE_OPS):
        what = "last" if isinstance(f, Last) else f.op
        raise SpecSemanticError(f"future operator {what!r} inside a rule over data or past time", f.span,
                                "such a rule is G of a past-time formula (previous, once, historically, since); "
                                "keep future constraints in rules of their own, without data")
    if isinstance(f, Unary):
        return replace(f, arg=_resolve(f.arg, scope))
    if isinstance(f, Binary):
        return replace(f, left=_resolve(f.left, scope), right=_resolve(f.right, scope))
    if isinstance(f, Truth):
        kind = _path_type(f.term, scope)
        if kind.kind not in ("boolean", "any"):
            raise SpecSemanticError(f"{f.term} is {kind}, not a truth value", f.span,
                                    "compare it: e.g. == \"...\"")
        return f
    if isinstance(f, Compare):
        _check_compare(f, scope)
        return f
    return _resolve_quant(f, scope)


def _resolve_prop(prop: Prop, scope: Scope) -> Formula:
    root = prop.segment
    if root in scope.calls or root in scope.values or root == THIS:
        path = Path(root, (prop.option,) if prop.option is not None else (), prop.span)
        return _resolve(Truth(path, prop.span), scope)
    from .checks import check_prop

    check_prop(prop, scope.spec.alphabet)
    return prop


def _resolve_quant(q: Quant, scope: Scope) -> Formula:
    if q.var == THIS or q.var in {s.name for s in scope.spec.segments}:
        raise SpecSemanticError(f"variable {q.var!r} hides a segment (or 'this'); pick another name", q.span)
    value_ranges = [r for r in q.ranges if _is_value_range(r, scope)]
    if value_ranges:
        if len(q.ranges) != 1:
            raise SpecSemanticError("a quantifier ranges over earlier calls or over one collection of values, "
                                    "not both", q.span)
        return _resolve_value_quant(q, scope)
    tools = []
    for r in q.ranges:
        tools.extend(t for t in _range_tools(r, scope.spec) if t not in tools)
    return replace(q, body=_resolve(q.body, scope.bind_calls(q.var, tuple(tools))))


def _is_value_range(r, scope: Scope) -> bool:
    if isinstance(r, Path):
        return True
    return r.segment in scope.calls or r.segment in scope.values or r.segment == THIS


def _resolve_value_quant(q: Quant, scope: Scope) -> Formula:
    r = q.ranges[0]
    path = r if isinstance(r, Path) else Path(r.segment, (r.option,) if r.option is not None else (), r.span)
    if q.kind == "latest":
        raise SpecSemanticError("'latest' picks the most recent earlier call; over values use exists or forall",
                                q.span)
    kind, node, root = _path_info(path, scope)
    if kind.many:
        element = (Type(kind.kind, kind.items), node, root)
    elif kind.kind == "array":
        element = (kind.items or ANY, walk_schema(node, "*", root) if node is not None else None, root)
    elif kind.kind in ("object", "any"):
        extra = resolve_ref(node, root).get("additionalProperties") if isinstance(resolve_ref(node, root), dict) else None
        element = (ANY, extra if isinstance(extra, dict) else None, root)  # an object's values
    else:
        raise SpecSemanticError(f"{path} is {kind}: a quantifier over values needs a list, an object or a [*] "
                                "term", path.span)
    return replace(q, ranges=(path,), body=_resolve(q.body, scope.bind_values(q.var, element)))


def _range_tools(prop: Prop, spec) -> list:
    """The tools a quantifier range names: ``seg.tool`` (one letter of a call segment) or ``seg`` (any
    call of a call segment)."""
    from .checks import check_prop

    check_prop(prop, spec.alphabet)
    segment = spec.segment(prop.segment)
    if segment.content.kind != "call":
        raise SpecSemanticError(f"{prop.segment!r} is not a call segment, so its steps have no data to range "
                                "over", prop.span, "range over a call segment or one of its tools "
                                "(segment.tool)")
    return [prop.option] if prop.option is not None else list(segment.options)


def _current_tools(root: str, spec) -> list:
    if root == THIS:
        return [t for s in call_segments(spec) for t in s.options]
    return list(spec.segment(root).options)


def _path_type(path: Path, scope: Scope) -> Type:
    """The Type of a path; raises SpecSemanticError for an unknown root, field or tool schema."""
    return _path_info(path, scope)[0]


def _path_info(path: Path, scope: Scope):
    """(Type, sub-schema or None, root schema) of a path; raises SpecSemanticError for an unknown root,
    field or tool schema."""
    spec, root = scope.spec, path.root
    if root in scope.values:
        kind, node, schema_root = scope.values[root]
        if node is not None:
            return _walk_schema(path, path.parts, node, schema_root)
        return _walk_type(path, path.parts, kind), None, None
    if root in scope.calls:
        return _call_path_info(path, scope.calls[root], spec, current=False)
    names = {s.name: s for s in spec.segments}
    if root == THIS or (root in names and names[root].content.kind == "call"):
        return _call_path_info(path, _current_tools(root, spec), spec, current=True)
    if root in names:
        raise SpecSemanticError(f"{root!r} is not a call segment, so it has no data", path.span,
                                "data terms start at a call segment, 'this' or a quantified variable")
    from .checks import _suggest

    known = sorted(set(scope.calls) | set(scope.values) | {THIS} | {s.name for s in call_segments(spec)})
    raise SpecSemanticError(f"unknown name {root!r} in a data term", path.span,
                            _suggest(root, known, "known here"))


def _call_path_info(path: Path, tools, spec, current: bool):
    """(Type, sub-schema, root) of a call path (the sub-schema of the first tool declaring it); raises
    SpecSemanticError for a path no tool here declares, or the current call's result."""
    if not path.parts or path.parts[0] not in CALL_FIELDS:
        got = path.parts[0] if path.parts else "nothing"
        raise SpecSemanticError(f"after a call comes one of {', '.join(CALL_FIELDS)}; got {got!r}", path.span)
    head, rest = path.parts[0], path.parts[1:]
    if current and head in ("result", "ok"):
        raise SpecSemanticError(f"the {head} of the call being written is not known yet", path.span,
                                "rules read the results of earlier calls: quantify over them")
    if current and head == "args" and _inside_argument(rest):
        raise SpecSemanticError("a rule can compare the call being written as a whole (this.args), an argument "
                                "(this.args.F) or a list argument's elements (this.args.F[*], this.args.F[N]), not "
                                "parts of them: each argument is written as one value", path.span,
                                "declare the parts as arguments of their own")
    if head in ("ok", "tool"):
        if rest:
            raise SpecSemanticError(f".{head} has no fields", path.span)
        return Type("boolean" if head == "ok" else "string"), None, None
    declared = [t for t in tools if _tool_schema(spec, t, head, path) is not None]
    found, nodes, problems = [], [], []
    for tool in declared:
        schema = json.loads(_tool_schema(spec, tool, head, path))
        try:
            kind, node, root = _walk_schema(path, rest, schema)
            found.append(kind)
            nodes.append((node, root))
        except SpecSemanticError as err:
            problems.append(err)
    if not found:
        if problems:
            raise problems[0]
        raise SpecSemanticError(f"no tool here declares a '{'parameters' if head == 'args' else 'returns'}' schema",
                                path.span, f"tools: {', '.join(tools)}")
    if not current and problems:  # a variable's calls: every tool it ranges over must declare the path
        raise problems[0]
    kinds = {(t.kind, t.many) for t in found}
    kind = found[0] if len(kinds) == 1 else Type("any", many=any(t.many for t in found))
    return kind, nodes[0][0], nodes[0][1]


def _inside_argument(parts) -> bool:
    """Whether the path parts after ``args`` reach inside one argument value or list element."""
    return len(parts) > 2 or (len(parts) == 2 and not (parts[1] == "*" or isinstance(parts[1], int)))


def _tool_schema(spec, tool: str, head: str, path: Path) -> Optional[str]:
    try:
        declared = spec.tool(tool)
    except KeyError:
        raise SpecSemanticError(f"tool {tool!r} is not declared under 'tools'", path.span) from None
    text = declared.parameters if head == "args" else declared.returns
    if text is None and head == "result":
        raise SpecSemanticError(f"tool {tool!r} declares no 'returns' schema, so the fields of its result "
                                "cannot be checked", path.span, f"add 'returns:' (a JSON Schema) to tool {tool!r}")
    return text


def _walk_schema_type(path: Path, parts, schema, root=None) -> Type:
    return _walk_schema(path, parts, schema, root)[0]


def _walk_schema(path: Path, parts, schema, root=None):
    """(Type, sub-schema, root schema) at ``parts`` below ``schema``."""
    root = schema if root is None else root
    node, many = schema, False
    for i, part in enumerate(parts):
        nxt = walk_schema(node, part, root)
        if nxt is None:
            where = str(Path(path.root, path.parts[: len(path.parts) - len(parts) + i]))
            kind = "an index" if part == "*" or isinstance(part, int) else f"field {part!r}"
            raise SpecSemanticError(f"{kind} is not declared by the schema of {where}", path.span,
                                    _fields_hint(node, root))
        many = many or part == "*"
        node = nxt
    kind = schema_type(node, root)
    return Type(kind.kind, kind.items, many), node, root


def _fields_hint(node, root) -> Optional[str]:
    node = resolve_ref(node, root)
    if isinstance(node, dict) and node.get("properties"):
        return f"declared fields: {', '.join(sorted(node['properties']))}"
    return None


def _walk_type(path: Path, parts, kind: Type) -> Type:
    many = False
    for part in parts:
        if part == "*" or isinstance(part, int):
            if kind.kind not in ("array", "any"):
                raise SpecSemanticError(f"{path} indexes {kind}, which is not a list", path.span)
            kind, many = (kind.items or ANY), many or part == "*"
        elif kind.kind not in ("object", "any"):
            raise SpecSemanticError(f"{path}: {kind} has no field {part!r}", path.span)
        else:
            kind = ANY
    return Type(kind.kind, kind.items, many)


def _literal_type(lit: Literal) -> Type:
    if isinstance(lit.value, tuple):
        kinds = {_value_kind(v) for v in lit.value}
        return Type("array", Type(kinds.pop()) if len(kinds) == 1 else ANY)
    return Type(_value_kind(lit.value))


def _term_type(term, scope: Scope) -> Type:
    return _literal_type(term) if isinstance(term, Literal) else _path_type(term, scope)


def _compatible(a: Type, b: Type) -> bool:
    return "any" in (a.kind, b.kind) or a.kind == b.kind or "null" in (a.kind, b.kind)


def _check_compare(c: Compare, scope: Scope) -> None:
    left, right = _term_type(c.left, scope), _term_type(c.right, scope)
    if right.many and c.op not in ("in", "notin"):
        raise SpecSemanticError(f"{c.right} names many values: only 'in' / 'not in' take them on the right",
                                c.right.span, "put the [*] term on the left (every value must then satisfy it)")
    element = Type(left.kind, left.items)
    if c.op in ORDERED:
        for side, kind in ((c.left, element), (c.right, right)):
            if kind.kind not in ("number", "any"):
                raise SpecSemanticError(f"'{c.op}' compares numbers; {_show(side)} is {kind}", side.span)
        return
    if c.op in ("in", "notin"):
        if right.many:
            members = Type(right.kind, right.items)
        elif right.kind == "array":
            members = right.items or ANY
        elif right.kind == "object":
            members = Type("string")  # membership in an object: among its keys
        elif right.kind == "any":
            members = ANY
        else:
            raise SpecSemanticError(f"'{'in' if c.op == 'in' else 'not in'}' needs a list, an object or a [*] "
                                    f"term on its right; {_show(c.right)} is {right}", c.right.span)
        if not _compatible(element, members):
            raise SpecSemanticError(f"type mismatch: {_show(c.left)} is {element}, the members of {_show(c.right)} "
                                    f"are {members}", c.span)
        return
    if not _compatible(element, right):
        raise SpecSemanticError(f"type mismatch: {_show(c.left)} is {element}, {_show(c.right)} is {right}", c.span)


def _show(term) -> str:
    from .ltl import format_term

    return format_term(term)


# -- polarity and the environment ----------------------------------------------------------------------

def env_breakable(rule: Rule, spec) -> Optional[str]:
    """The first env letter at which φ is not true whatever the data (three-valued: the letter known,
    every data atom and past-time subformula unknown), or None. An env step the agent cannot choose must
    not be able to break a data rule."""
    phi = body(rule)
    for segment in spec.segments:
        if segment.by != "env":
            continue
        for letter in segment.letters:
            if _kleene(phi, letter) is not True:
                return letter
    return None


def _kleene(f: Formula, letter: str):
    """φ at a step whose letter is known and whose data and past are not (None: unknown)."""
    from .ast import prop_matches

    if isinstance(f, Prop):
        return prop_matches(f, letter)
    if isinstance(f, Const):
        return f.value
    if isinstance(f, (Compare, Truth, Quant)):
        return None
    if isinstance(f, Unary):
        if f.op == "!":
            inner = _kleene(f.arg, letter)
            return None if inner is None else not inner
        if f.op == "once":
            return True if _kleene(f.arg, letter) is True else None
        if f.op == "historically":
            return False if _kleene(f.arg, letter) is False else None
        return None
    a, b = _kleene(f.left, letter), _kleene(f.right, letter)
    if f.op == "since":
        return True if b is True else (False if a is False and b is False else None)
    if f.op == "&":
        return False if False in (a, b) else (True if a is True and b is True else None)
    if f.op == "|":
        return True if True in (a, b) else (False if a is False and b is False else None)
    if f.op == "->":
        return True if a is False or b is True else (False if a is True and b is False else None)
    return None if None in (a, b) else a == b  # <->


# -- traces with data ----------------------------------------------------------------------------------

def call_parts(text: str):
    """(tool, arguments) of a call segment's content ``NAME {json}``; arguments None when not JSON."""
    name, _, rest = text.strip().partition(" ")
    try:
        return name, json.loads(rest) if rest.strip() else {}
    except json.JSONDecodeError:
        return name, None


def result_value(text: str):
    """A tool result as data: its JSON value when the text is JSON, else the text."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def trace_steps(spec, items) -> list:
    """The ``semantics.Step``s of a trace given as (segment name, letter, text, tool info or None)
    items: a call step carries its tool and arguments, and the result of the env segment bound to it
    (``tool: {name_from: SEG}``) when that segment comes right after it; ``ok`` is false when the tool
    failed (``tool info["ok"]`` false) or its result starts with ``Error``."""
    from .semantics import Step

    items = list(items)
    steps = []
    for k, (name, letter, text, _info) in enumerate(items):
        segment, call = spec.segment(name), None
        if segment.content.kind == "call":
            tool, args = call_parts(text)
            call = {"tool": tool, "args": args}
            if k + 1 < len(items) and _answers(spec.segment(items[k + 1][0]), name):
                _, _, result, info = items[k + 1]
                call["result"] = result_value(result)
                call["ok"] = bool((info or {}).get("ok", True)) and not result.startswith("Error")
        steps.append(Step(letter, call))
    return steps


def _answers(segment, call_segment: str) -> bool:
    return segment.by == "env" and segment.tool is not None and segment.tool.name_from == call_segment
