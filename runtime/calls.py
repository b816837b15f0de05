"""Writing a call segment: a tool's name, then its arguments field by field, each under the values the
data rules still allow (``policy.CallPlan``), within the segment's token budget.

The call is written ``NAME {"a": VALUE, "b": VALUE}`` + END: the name and the opening are one of the
alternatives the model walks (like a choice option); each value is one content piece whose regex is the
values on offer followed by the literal text after it (``, "b": `` or ``}`` + END), so the piece ends
exactly where the next begins. A list is written element by element: each piece is one element followed
by ``, `` (when another element can still be allowed) or ``]`` and the text after the list.
"""
from __future__ import annotations

import json
import re

from ltlagent.compiler.content import call_opening, call_rest_regex, call_separators, json_regex
from .index import IndexStore, TokenTrie
from .policy import OTHER, history, literal, literal_regex, string_except

DEFAULT_CALL_TOKENS = 256
PIECE_CACHE = 1024  # value-piece indexes kept in memory per decoder (value sets change every step)


def call_content(decoder, segment, indexes: IndexStore):
    """The decoder's static view of a call segment: per tool, the tokens of its opening (as options)
    and the fewest tokens of the rest of the call (for the budget plan)."""
    from .decode import _Content

    option_ids, rest_min = {}, {}
    for name in segment.options:
        tool = decoder.spec.tool(name)
        opening = call_opening(tool) + ("" if call_separators(tool, segment.end) else segment.end)
        option_ids[name] = decoder.vocab.encode(opening)
        rest = call_rest_regex(tool, segment.end)
        if rest:
            paths = indexes.paths(rest, decoder.vocab.eos_id)
            rest_min[name] = paths.dist[indexes.get(rest).get_initial_state()]
    decoder.piece_store = IndexStore(indexes.vocabulary, indexes.vocabulary_hash, None)
    return _Content(option_ids=option_ids, min_tokens=min(len(v) for v in option_ids.values()),
                    end=segment.end, rest_min=rest_min)


def write_call(run, segment, content, letters: list[str], tag_tokens: int):
    """Write one call (the decode loop's ``model_content`` for a call segment). Returns (letter, text,
    tokens, forced tokens)."""
    d = run.d
    tools = [a.split(".", 1)[1] for a in letters]
    tool, fed = run.steps.walk(TokenTrie([(t, content.option_ids[t]) for t in tools]))
    opening = d.vocab.text(fed)
    run.pieces.append(opening)
    run.emit("text", opening)
    letter = f"{segment.name}.{tool}"
    plan = run.plans.get(letter) or run.policy.plan(history(d.spec, run.records), letter, tool)
    budget = _budget(run, segment, letter, tag_tokens) - len(fed)
    writer = _Writer(run, plan, call_separators(d.spec.tool(tool), segment.end), budget)
    writer.write()
    text = opening + writer.text
    body = text[1:] if text.startswith(" ") else text
    body = body[: -len(segment.end)] if segment.end and body.endswith(segment.end) else body
    forced = (len(fed) if len(tools) == 1 else 0) + writer.forced
    return letter, body, len(fed) + writer.tokens, forced


def _budget(run, segment, letter: str, tag_tokens: int) -> int:
    d = run.d
    after = d.floor[run.segments_left - 1][d.aut.step(run.state, letter)]
    most = segment.content.max_tokens or DEFAULT_CALL_TOKENS
    return int(min(run.tokens_left - tag_tokens - after, max(most, d.letter_cost[letter] - tag_tokens)))


class _Writer:
    """The pieces of one call's arguments."""

    def __init__(self, run, plan, separators: list[str], budget: int):
        self.run, self.plan, self.separators, self.budget = run, plan, separators, budget
        counts = [2 + len(run.d.vocab.encode(s)) for s in separators]
        self.reserves = [sum(counts[k + 1:]) for k in range(len(separators))]  # tokens kept for the later pieces
        self.assigned: dict = {}
        self.text, self.tokens, self.forced = "", 0, 0

    def write(self) -> None:
        for k, field in enumerate(self.plan.fields):
            sep, self.current = self.separators[k], k
            if field.is_list:
                self.assigned[field.name] = self.write_list(field, sep, k)
            else:
                allowed, other = self.plan.scalar_choice(self.assigned, field)
                regex = _value_regex(field, allowed, other) + re.escape(sep)
                self.assigned[field.name] = json.loads(self.piece(regex, k)[: len(self.last) - len(sep)])

    def write_list(self, field, sep: str, k: int) -> list:
        prefix: list = []
        while True:
            allowed, other = self.plan.element_choice(self.assigned, field, prefix)
            branches = [re.escape(literal(c)) + ends for c in allowed
                        if (ends := self.delimiters(field, prefix + [c], sep))]
            if other and (ends := self.delimiters(field, prefix + [OTHER], sep)):
                branches.append(_element_regex(field, allowed) + ends)
            if not prefix and self.plan.may_end(self.assigned, field, []):
                branches.append(re.escape("]" + sep))
            if not branches:
                from .decode import DecodeError

                raise DecodeError(f"no element of {field.name!r} keeps the data rules after {prefix!r}: the call "
                                  "cannot be completed (the rules leave no way on)")
            text = self.piece((r"\[" if not prefix else "") + "(" + "|".join(branches) + ")", k)
            body = text[1:] if not prefix else text
            if body.endswith("]" + sep):
                value = body[: len(body) - len(sep) - 1]
                return prefix + [json.loads(value)] if value else prefix
            prefix.append(json.loads(body[:-2]))  # the element, then ", "

    def delimiters(self, field, prefix: list, sep: str) -> str:
        """The regex of what may follow the element that ends ``prefix``: ``, `` when one more element
        can still be allowed and the budget leaves room for it, ``]`` + ``sep`` when the list may end
        there; "" when neither."""
        ends = [re.escape("]" + sep)] if self.plan.may_end(self.assigned, field, prefix) else []
        most = field.schema.get("maxItems")
        if (most is None or len(prefix) < most) and (not ends or self.room_for_more(sep)):
            if self.plan.may_continue(self.assigned, field, prefix):
                ends.insert(0, re.escape(", "))
        return "(" + "|".join(ends) + ")" if ends else ""

    def room_for_more(self, sep: str) -> bool:
        """Whether the budget leaves room for another list element (its longest candidate, or a few
        tokens), after the current one, before the rest of the call."""
        d = self.run.d
        k = self.current
        reserve = self.reserves[k]
        longest = max((len(d.vocab.encode(literal(c))) for c in self.plan.fields[k].candidates), default=4)
        need = 2 * (len(d.vocab.encode(", ")) + max(longest, 4)) + len(d.vocab.encode("]" + sep))
        return self.budget - self.tokens - reserve > need

    def piece(self, regex: str, k: int) -> str:
        """Decode one piece under ``regex`` within what the budget leaves for the pieces after it."""
        from .decode import _Content

        d = self.run.d
        constraint = _piece_constraint(d, regex)
        need = constraint.min_tokens
        budget = max(need, self.budget - self.tokens - self.reserves[k])
        piece = _Content(constraint=constraint, min_tokens=need, end="")
        ids, forced = self.run.steps.content(piece, budget)
        self.tokens += len(ids)
        self.forced += forced
        self.last = d.vocab.text(ids)
        self.text += self.last
        return self.last


def _piece_constraint(d, regex: str):
    """The outlines-core constraint of a value piece, kept per decoder (at most PIECE_CACHE of them:
    the value sets change every step)."""
    from .masks import RegexConstraint

    cache = d.__dict__.setdefault("piece_constraints", {})
    if regex not in cache:
        if len(cache) >= PIECE_CACHE:
            cache.clear()
            d.piece_store.memory.clear()
        store = d.piece_store
        cache[regex] = RegexConstraint(store.get(regex), store.paths(regex, d.vocab.eos_id), regex,
                                       d.vocab.eos_id, d.ops)
    return cache[regex]


def _value_regex(field, allowed: list, other: bool) -> str:
    """The values on offer for a scalar field: the allowed candidates, and when any other value is
    allowed too, the field's schema less the candidates that are not allowed."""
    excluded = [c for c in field.candidates if not any(c == a for a in allowed)]
    if other and not excluded:
        return f"(?:{json_regex(json.dumps(field.schema))})"
    if other and field.schema.get("type") == "string" and set(field.schema) <= {"type", "description"} \
            and all(isinstance(c, str) for c in excluded):
        return "(?:" + "|".join([string_except(excluded)] + ([literal_regex(allowed)] if allowed else [])) + ")"
    return literal_regex(allowed)  # sound: only the values known to keep the rules


def _element_regex(field, allowed: list) -> str:
    """Any element other than the candidates that are not allowed (see ``_value_regex``)."""
    items = field.schema.get("items", {}) if isinstance(field.schema.get("items"), dict) else {}
    from .policy import FieldInfo

    inner = FieldInfo(field.name, items, False, field.candidates)
    return _value_regex(inner, allowed, True)
