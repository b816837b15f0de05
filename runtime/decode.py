"""The decode loop: a compiled spec drives a model token by token so that every finished run is accepted.

Per step: the automaton state gives the allowed next segments; a letter is a candidate only if, after
it, acceptance stays reachable within the remaining segments *and* tokens (``plan.token_floor``). The
model picks among candidate tags (EOS too, only in accepting states); a single candidate is forced. It
then writes the content under the segment's constraint (token trie for choices; for regex / JSON /
grammar / free text a ``runtime.masks`` constraint: an outlines-core index, or llguidance for context-free
content) within a token budget that leaves room for the shortest way to
acceptance; when the budget only just suffices, that shortest path is forced. Forced tokens are fed in
one forward call; environment text is appended as prefill; one KV cache lives across the episode.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ltlagent.compiler.analysis import winning_region
from ltlagent.compiler.ast import Segment, letter as letter_of
from .masks import constraint_for
from .environment import EndOfInput
from .index import IndexPaths, IndexStore, TokenTrie
from .plan import token_floor
from .policy import Policy, history
from .steps import TokenSteps
from .prompts import prompt_ids
from .vocab import Vocab  # noqa: F401  (re-exported: the decoder's view of a tokenizer)

STOP = "<stop>"
DEFAULT_SEGMENT_TOKENS = 256


class DecodeError(RuntimeError):
    """The run cannot go on: e.g. the environment produced an option the spec forbids at that point."""


@dataclass(frozen=True)
class SegmentRecord:
    """One segment of a run, as written to the trace."""

    name: str
    letter: str
    option: Optional[str]
    text: str
    by: str
    state_before: int
    state_after: int
    tokens: int
    forced_tokens: int
    forward_passes: int
    seconds: float
    tool: Optional[dict] = None


@dataclass
class RunResult:
    segments: list[SegmentRecord]
    stopped_by: str
    final_state: int
    accepted: bool
    model_tokens: int
    forward_passes: int
    tokens_fed: int
    seconds: float
    transcript: str
    mask_seconds: list[float] = field(default_factory=list)     # per sampled token: mask + pick
    forward_seconds: list[float] = field(default_factory=list)  # per forward call
    engine: dict = field(default_factory=dict)                  # a serving engine's counters (requests, …)

    @property
    def letters(self) -> list[str]:
        return [s.letter for s in self.segments]


@dataclass
class _Content:
    """How one model segment's content is decoded: option token ids (walked as a trie) or a constraint
    (``runtime.masks``: an outlines-core index for regular content, llguidance for context-free)."""

    option_ids: dict = field(default_factory=dict)
    constraint: object = None       # runtime.masks.RegexConstraint or GrammarConstraint
    min_tokens: int = 0
    end: str = ""                   # the segment's END (the last part of every content)
    rest_min: dict = field(default_factory=dict)  # a call segment: per tool, the fewest tokens after its opening

    @property
    def index(self):                # the outlines-core index of regular content (None otherwise)
        return getattr(self.constraint, "index", None)

    @property
    def paths(self) -> Optional[IndexPaths]:
        return getattr(self.constraint, "paths", None)

    @property
    def regex(self) -> Optional[str]:
        return getattr(self.constraint, "regex", None)


class Decoder:
    """Everything precomputed for one compiled spec and one vocabulary; ``run`` decodes one episode."""

    def __init__(self, compiled, vocab: Vocab, indexes: IndexStore, ops):
        """``ops`` are the engine's array operations (allowed-token arrays are made where its scores
        live). Raises ConstraintError for content the runtime cannot decode under, or tags / options
        whose tokenizations are ambiguous."""
        self.compiled, self.vocab, self.ops = compiled, vocab, ops
        self.spec, self.aut = compiled.spec, compiled.automaton
        self.indexes = indexes
        self.policy = Policy(self.spec)
        self.tags = {s.name: vocab.encode(s.tag) for s in self.spec.segments}
        self.contents = {s.name: self._content(s, indexes) for s in self.spec.segments if s.by == "model"}
        _check_alternatives(self)
        self.letter_cost = {a: self._letter_cost(a) for a in self.aut.alphabet}
        self.floor = token_floor(self.aut, self.letter_cost, self.spec.limits.max_segments)
        self.regions = winning_region(compiled, self.spec.limits.max_segments)
        self.masks: dict = {}

    def _content(self, segment: Segment, indexes: IndexStore) -> _Content:
        end_ids = self.vocab.encode(segment.end)
        if segment.content.kind == "call":
            from .calls import call_content

            return call_content(self, segment, indexes)
        if segment.content.kind == "choice":
            ids = {o: self.vocab.encode(" " + o) + end_ids for o in segment.options}
            return _Content(option_ids=ids, min_tokens=min(len(v) for v in ids.values()))
        constraint = constraint_for(segment, self.vocab, indexes, self.ops)
        return _Content(constraint=constraint, min_tokens=constraint.min_tokens, end=segment.end)

    def _letter_cost(self, name: str) -> int:
        segment = self.spec.segment(name.split(".", 1)[0])
        if segment.by == "env":
            return 0
        content = self.contents[segment.name]
        option = name.split(".", 1)[1] if "." in name else None
        body = len(content.option_ids[option]) if option is not None else content.min_tokens
        body += content.rest_min.get(option, 0)
        return len(self.tags[segment.name]) + body

    def run(self, source, sampler, environment, prompt,
            on_event: Optional[Callable[[str, object], None]] = None) -> RunResult:
        """Decode one episode after ``prompt`` (text read literally, or a ``prompts.RenderedPrompt``);
        ``environment.produce(segment, records)`` fills env segments. Raises DecodeError when the
        environment breaks the spec."""
        return _Run(self, source, sampler, environment, on_event or (lambda kind, payload: None)).go(prompt)


class _Run:
    def __init__(self, decoder: Decoder, source, sampler, environment, on_event):
        self.d, self.env, self.emit = decoder, environment, on_event
        self.steps = steps_for(decoder, source, sampler, self.show)
        self.state = decoder.aut.initial
        self.segments_left = decoder.spec.limits.max_segments
        self.tokens_left = decoder.spec.limits.max_tokens
        self.records: list[SegmentRecord] = []
        self.pieces: list[str] = []
        self.policy = decoder.policy if not decoder.policy.active else Policy(decoder.spec)  # one judge per run
        self.plans: dict = {}

    def show(self, ids: list[int]) -> None:
        """Model-written tokens join the transcript and are shown as they come."""
        piece = self.d.vocab.text(ids)
        self.pieces.append(piece)
        self.emit("text", piece)

    def go(self, prompt) -> RunResult:
        started = time.perf_counter()
        text, ids = prompt_ids(prompt, self.d.vocab)  # a chat template's specials as ids; the rest literal
        self.pieces.append(text)
        self.steps.prefill(ids)
        while (choice := self.choose_segment()) != STOP:
            try:
                self.segment(choice)
            except EndOfInput:
                self.end_of_input(choice)
                break
        counters = self.steps.counters()
        return RunResult(self.records, self.stopped_by, self.state, self.state in self.d.aut.accepting,
                         self.d.spec.limits.max_tokens - self.tokens_left, counters.forward_passes,
                         counters.tokens_fed, time.perf_counter() - started, "".join(self.pieces),
                         counters.mask_seconds, counters.forward_seconds, counters.engine)

    def end_of_input(self, name: str) -> None:
        """The user's input ended where segment ``name`` began: a normal end of the conversation when
        the spec accepts the run so far (the unfinished tag is dropped), else a DecodeError."""
        if self.state not in self.d.aut.accepting:
            raise DecodeError(f"the input ended before {name!r}, where the spec does not allow the run to end")
        self.pieces.pop()
        self.stopped_by = "end of input"
        self.emit("end_of_input", self.d.spec.segment(name))

    # -- which segment comes next ------------------------------------------------------------------

    def candidates(self) -> dict[str, list[str]]:
        """Per segment, its letters that keep acceptance reachable within both budgets, and among them
        the safe ones when there are any (see ``safe``). In an accepting state with no safe move, none:
        the run stops rather than risk a dead end."""
        d, result = self.d, {}
        if self.segments_left <= 0:
            return result
        floor = d.floor[self.segments_left - 1]
        for segment in d.spec.segments:
            letters = [a for a in segment.letters if (t := d.aut.step(self.state, a)) is not None
                       and d.letter_cost[a] + floor[t] <= self.tokens_left]
            if letters and self.policy.active and segment.by == "model":
                letters = self.data_allowed(segment, letters)
            if letters:
                result[segment.name] = letters
        if not result and self.policy.active and self.state not in d.aut.accepting:
            raise DecodeError("the data rules allow none of the steps the automaton allows here (after "
                              f"{' '.join(r.letter for r in self.records[-3:]) or 'the start'}): the spec's "
                              "rules leave this run no way on")
        safe = self.safe(result)
        if safe or self.state in d.aut.accepting:
            return safe
        return result

    def data_allowed(self, segment: Segment, letters: list[str]) -> list[str]:
        """The letters of a model segment whose step keeps every data rule: a call of a tool only when
        some arguments do (its plan is kept for writing them)."""
        past = history(self.d.spec, self.records)
        kept = []
        for a in letters:
            if segment.content.kind == "call":
                plan = self.policy.plan(past, a, a.split(".", 1)[1])
                if plan is not None:
                    self.plans[a] = plan
                    kept.append(a)
            elif self.policy.letter_allowed(past, a):
                kept.append(a)
        return kept

    def safe(self, reachable: dict[str, list[str]]) -> dict[str, list[str]]:
        """The moves after which the agent can still force acceptance within the remaining segments
        whatever the environment picks (the winning region ``ltlagent check`` proves the initial state is
        in): a model segment's letters that lead into the region; an env choice segment only when every
        option it may pick is reachable and leads into it."""
        d = self.d
        region = d.regions[min(self.segments_left - 1, len(d.regions) - 1)]
        result = {}
        for name, letters in reachable.items():
            segment = d.spec.segment(name)
            inside = [a for a in letters if d.aut.step(self.state, a) in region]
            if segment.by == "env" and len(segment.letters) > 1:
                if len(inside) == len(segment.letters):
                    result[name] = inside
            elif inside:
                result[name] = inside
        return result

    def choose_segment(self) -> str:
        self.cands = self.candidates()
        keys = list(self.cands) + ([STOP] if self.state in self.d.aut.accepting else [])
        if not keys:
            raise DecodeError(f"no way on from automaton state {self.state} (a bug: budgets are planned)")
        self.stopped_by = "end" if keys == [STOP] else "eos"  # "end": nothing may follow; "eos": the model chose
        if keys == [STOP]:
            return STOP
        sequences = [(k, [self.d.vocab.eos_id] if k == STOP else self.d.tags[k]) for k in keys]
        key, _ = self.steps.walk(TokenTrie(sequences), stop_token=self.d.vocab.eos_id)
        return key

    # -- one segment ---------------------------------------------------------------------------------

    def segment(self, name: str) -> None:
        d = self.d
        segment = d.spec.segment(name)
        before, started, passes = self.state, time.perf_counter(), self.steps.counters().forward_passes
        self.emit("segment_start", segment)
        tag_ids = d.tags[name]  # already fed while the segment was chosen
        self.pieces.append(segment.tag)
        if segment.by == "env":
            letter, text, tokens, forced, tool = self.env_content(segment)
        else:
            letter, text, tokens, forced = self.model_content(segment, len(tag_ids))
            tool = None
            self.tokens_left -= len(tag_ids) + tokens
        self.state = d.aut.step(self.state, letter)
        self.segments_left -= 1
        option = letter.split(".", 1)[1] if "." in letter else None
        record = SegmentRecord(name, letter, option, text, segment.by, before, self.state, tokens, forced,
                               self.steps.counters().forward_passes - passes, time.perf_counter() - started,
                               tool)
        self.records.append(record)
        self.emit("segment_end", record)

    def env_content(self, segment: Segment):
        text, tool = self.env.produce(segment, self.records)
        text = " ".join(str(text).split("\n")) if segment.end == "\n" else str(text)
        letter = segment.name
        if segment.options:
            letter = letter_of(segment.name, text.strip())
            if tool is not None and tool.get("ok") is False:
                raise DecodeError(f"{segment.name!r} needs one of its options from tool {tool.get('name')!r}, "
                                  f"which did not give one: {text.strip()}")
            if letter not in self.cands.get(segment.name, ()):
                raise DecodeError(f"the environment answered {text.strip()!r} in {segment.name!r}, which the "
                                  f"spec does not allow here (allowed: {', '.join(self.cands.get(segment.name, ()))})")
        body = f" {text.strip()}{segment.end}" if text.strip() else segment.end
        ids = self.d.vocab.encode(body)
        self.steps.prefill(ids)
        self.pieces.append(body)
        self.emit("text", body)
        return letter, text.strip(), len(ids), len(ids), tool

    def model_content(self, segment: Segment, tag_tokens: int):
        d = self.d
        content = d.contents[segment.name]
        letters = self.cands[segment.name]
        after = d.floor[self.segments_left - 1]
        if segment.content.kind == "call":
            from .calls import write_call

            return write_call(self, segment, content, letters, tag_tokens)
        if content.constraint is None:
            return self.choice_content(segment, content, letters)
        target = d.aut.step(self.state, segment.name)
        budget = int(min(self.tokens_left - tag_tokens - after[target],
                         max(segment.content.max_tokens or DEFAULT_SEGMENT_TOKENS, content.min_tokens)))
        ids, forced = self.steps.content(content, budget)
        text = d.vocab.text(ids)
        return segment.name, _strip_content(text, segment.end), len(ids), forced

    def choice_content(self, segment: Segment, content: _Content, letters: list[str]):
        options = [a.split(".", 1)[1] for a in letters]
        trie = TokenTrie([(o, content.option_ids[o]) for o in options])
        option, fed = self.steps.walk(trie)
        body = self.d.vocab.text(fed)
        self.pieces.append(body)
        self.emit("text", body)
        forced = len(fed) if len(options) == 1 else 0
        return letter_of(segment.name, option), option, len(fed), forced


def steps_for(decoder: Decoder, source, sampler, on_text):
    """The steps that produce a run on ``source``: its own when it generates them (a serving engine's
    session has ``steps``), else token by token over its scores."""
    own = getattr(source, "steps", None)
    return own(decoder, sampler, on_text) if own is not None else TokenSteps(decoder, source, sampler, on_text)


def _check_alternatives(decoder: Decoder) -> None:
    """Every tag, and every option of each choice, must be distinguishable token by token."""
    from .constraints import ConstraintError

    groups = [("tags", list(decoder.tags.items()) + [(STOP, [decoder.vocab.eos_id])])]
    groups += [(f"options of {name!r}", list(c.option_ids.items())) for name, c in decoder.contents.items()
               if c.option_ids]
    for what, sequences in groups:
        try:
            TokenTrie(sequences)
        except ValueError as err:
            raise ConstraintError(f"ambiguous {what}: {err}") from None


def _strip_content(text: str, end: str) -> str:
    """The content of ``" " + content + end``."""
    if end and text.endswith(end):
        text = text[: -len(end)]
    return text[1:] if text.startswith(" ") else text
