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

from ltlagent.compiler.content import argument_schemas, call_opening, call_separators, value_language
from .index import IndexStore, TokenTrie
from .policy import OTHER, history, integer_except, literal, literal_regex, plain_number, plain_string, string_except

DEFAULT_CALL_TOKENS = 256
PIECE_CACHE = 1024  # value-piece indexes kept in memory per decoder (value sets change every step)


def call_content(decoder, segment, indexes: IndexStore):
    """The decoder's static view of a call segment: per tool, the tokens of its opening (as options)
    and the fewest tokens of the rest of the call (for the budget plan)."""
    from .decode import _Content

    decoder.piece_store = IndexStore(indexes.vocabulary, indexes.vocabulary_hash, None)
    option_ids, rest_min = {}, {}
    for name in segment.options:
        tool = decoder.spec.tool(name)
        separators = call_separators(tool, segment.end)
        opening = call_opening(tool) + ("" if separators else segment.end)
        option_ids[name] = decoder.vocab.encode(opening)
        rest_min[name] = sum(_piece_constraint(decoder, "", [(value_language(sub, root), re.escape(sep))]).min_tokens
                             for (_, sub, root), sep in zip(argument_schemas(tool), separators))
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
            self.plan.take_peers(field, self.assigned)
            if field.is_list:
                self.assigned[field.name] = self.write_list(field, sep, k)
            else:
                allowed, other = self.plan.scalar_choice(self.assigned, field)
                text = self.piece("", [(_value_language(field, self.plan.schema, allowed, other), re.escape(sep))], k)
                self.assigned[field.name] = json.loads(text[: len(text) - len(sep)])

    def write_list(self, field, sep: str, k: int) -> list:
        prefix: list = []
        while True:
            allowed, other = self.plan.element_choice(self.assigned, field, prefix)
            branches = [(("regex", re.escape(literal(c))), ends) for c in allowed
                        if (ends := self.delimiters(field, prefix + [c], sep))]
            if other and (ends := self.delimiters(field, prefix + [OTHER], sep)):
                branches.append((_element_language(field, self.plan.schema, allowed), ends))
            if not prefix and not field.schema.get("minItems") and self.plan.may_end(self.assigned, field, []):
                branches.append((("regex", ""), re.escape("]" + sep)))
            if not branches:
                from .decode import DecodeError

                raise DecodeError(f"no element of {field.name!r} keeps the data rules after {prefix!r}: the call "
                                  "cannot be completed (the rules leave no way on)")
            text = self.piece(r"\[" if not prefix else "", branches, k)
            body = text[1:] if not prefix else text
            if body.endswith("]" + sep):
                value = body[: len(body) - len(sep) - 1]
                return prefix + [json.loads(value)] if value else prefix
            prefix.append(json.loads(body[:-2]))  # the element, then ", "

    def delimiters(self, field, prefix: list, sep: str) -> str:
        """The regex of what may follow the element that ends ``prefix``: ``, `` when one more element
        can still be allowed and the budget leaves room for it (a list that may not end yet goes on
        while any budget is left), ``]`` + ``sep`` when the list may end there; "" when neither."""
        least = field.schema.get("minItems", 0)
        ends = [re.escape("]" + sep)] if len(prefix) >= least and self.plan.may_end(self.assigned, field, prefix) else []
        most = field.schema.get("maxItems")
        room = self.room_for_more(sep) or (not ends and self.tokens < self.budget)  # never past the budget
        if (most is None or len(prefix) < most) and room and self.plan.may_continue(self.assigned, field, prefix):
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

    def piece(self, prefix: str, branches: list, k: int) -> str:
        """Decode one piece (see ``_piece_constraint``) within what the budget leaves for the pieces
        after it."""
        from .decode import _Content

        d = self.run.d
        constraint = _piece_constraint(d, prefix, branches)
        need = constraint.min_tokens
        budget = max(need, self.budget - self.tokens - self.reserves[k])
        piece = _Content(constraint=constraint, min_tokens=need, end="")
        ids, forced = self.run.steps.content(piece, budget)
        self.tokens += len(ids)
        self.forced += forced
        self.last = d.vocab.text(ids)
        self.text += self.last
        return self.last


def _piece_constraint(d, prefix: str, branches: list):
    """The constraint of a value piece: the regex ``prefix``, then one of ``branches`` (value language
    as ``value_language`` gives it, regex of what follows). One outlines-core regex when every value is
    a regex, else a llguidance grammar (``compiler.cfg.piece_bnf``). Kept per decoder (at most
    PIECE_CACHE of them: the value sets change every step)."""
    from ltlagent.compiler.cfg import piece_bnf

    from .masks import GrammarConstraint, RegexConstraint

    cache = d.__dict__.setdefault("piece_constraints", {})
    key = json.dumps([prefix, branches])
    if key not in cache:
        if len(cache) >= PIECE_CACHE:
            cache.clear()
            d.piece_store.memory.clear()
        if all(value[0] == "regex" for value, _ in branches):
            regex = prefix + "(?:" + "|".join(f"(?:{value[1]}){after}" for value, after in branches) + ")"
            store = d.piece_store
            cache[key] = RegexConstraint(store.get(regex), store.paths(regex, d.vocab.eos_id), regex,
                                         d.vocab.eos_id, d.ops)
        else:
            cache[key] = GrammarConstraint(piece_bnf(prefix, branches), d.vocab, d.ops)
    return cache[key]


def _value_language(field, root: dict, allowed: list, other: bool) -> tuple:
    """The values on offer for a scalar field: the allowed candidates, and when any other value is
    allowed too, the field's schema less the candidates that are not allowed."""
    excluded = [c for c in field.candidates if not any(c == a for a in allowed)]
    if other and not excluded:
        return value_language(field.schema, root)
    spelled = literal_regex(allowed) if allowed else None
    if other and plain_string(field.schema) and all(isinstance(c, str) for c in excluded):
        return ("regex", "|".join(filter(None, [string_except(excluded), spelled])))
    if other and plain_number(field.schema):  # then any integer but the excluded ones (sound, not complete)
        return ("regex", "|".join(filter(None, [integer_except(excluded), spelled])))
    if not allowed:
        from .decode import DecodeError

        raise DecodeError(f"no value of {field.name!r} keeps the data rules: the call cannot be completed")
    return ("regex", literal_regex(allowed))  # sound: only the values known to keep the rules


def _element_language(field, root: dict, allowed: list) -> tuple:
    """Any element other than the candidates that are not allowed (see ``_value_language``)."""
    items = field.schema.get("items", {}) if isinstance(field.schema.get("items"), dict) else {}
    from .policy import FieldInfo

    inner = FieldInfo(field.name, items, False, field.candidates, field.other)
    return _value_language(inner, root, allowed, True)
