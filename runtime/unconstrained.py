"""The ablation: the same prompt and environment, decoded as an API-based agent would be, without masks.

The model generates freely (any token with text, or EOS), one completion per call as an API agent makes
them. The episode ends at EOS, at the spec's token budget, when one call reaches ``CALL_TOKENS``, when a
line completes a segment after which the spec allows nothing more (e.g. an answer under
``G(answer -> last)``), or when the model writes a task tag (starting a new question). Env tags at the
start of a line are the stop sequences: at a tool-bound one the text is cut before the tag, the transcript
so far is parsed post hoc into segments (by tags, as ``verify`` does), the environment fills the segment
and generation resumes. The finished transcript is parsed the same way: ``parse_failure`` says why it
could not be read as the spec's segments; ``verdict`` then judges the parsed trace like a constrained run.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Optional

from ltlagent.compiler.verify import piece_letter, split_segments

from .decode import RunResult, SegmentRecord
from .engines.remote import sampling_fields
from .environment import EndOfInput
from .prompts import prompt_ids

CALL_TOKENS = 256  # max tokens of one completion call, as an API agent would set max_tokens


@dataclass
class FreeResult:
    """A free run: ``result`` is the parsed run (its segments are what post-hoc parsing found);
    ``parse_failure`` is None when the whole transcript reads as segments of the spec."""

    result: RunResult
    parse_failure: Optional[str]


def final_letters(automaton) -> frozenset[str]:
    """Letters after which the automaton, wherever it reads them, accepts and allows nothing more."""
    finals = set()
    for letter in automaton.alphabet:
        targets = {automaton.step(s, letter) for s in automaton.states} - {None}
        if targets and all(t in automaton.accepting and not automaton.allowed(t) for t in targets):
            finals.add(letter)
    return frozenset(finals)


def parse(compiled, transcript: str) -> tuple[list[SegmentRecord], Optional[str]]:
    """The segments of a transcript (after the prompt) and the first reason it is not a clean sequence of
    the spec's segments (text before the first tag, a choice content that is no option), or None."""
    pieces, preamble = split_segments(transcript, compiled.spec.segments)
    failure = f"text before the first tag: {transcript[preamble:preamble + 40]!r}" if preamble is not None else None
    records, state = [], compiled.automaton.initial
    for piece in pieces:
        letter = piece_letter(piece)
        if letter is None and failure is None:
            failure = f"{piece.segment.name!r} is no option: {piece.content[:40]!r}"
        if piece.segment.by == "env" and piece.segment.end == "\n" and "\n" in piece.content and failure is None:
            failure = f"untagged text after {piece.segment.name!r}: {piece.content.split(chr(10), 1)[1][:40]!r}"
        after = compiled.automaton.step(state, letter) if letter is not None and state is not None else None
        option = letter.split(".", 1)[1] if letter and "." in letter else None
        records.append(SegmentRecord(piece.segment.name, letter or piece.segment.name, option, piece.content,
                                     piece.segment.by, _state(state), _state(after), 0, 0, 0, 0.0))
        state = after
    return records, failure


def _state(state: Optional[int]) -> int:
    return -1 if state is None else state


class FreeRunner:
    """Free decoding of one compiled spec with one tokenizer: ``run`` plays one episode."""

    def __init__(self, compiled, vocab, eos_ids: tuple[int, ...], ops=None):
        """``ops``: the engine's array operations (default: CPU torch tensors)."""
        if ops is None:
            from .engines.arrays import TorchOps

            ops = TorchOps("cpu")
        self.compiled, self.vocab, self.eos_ids, self.ops = compiled, vocab, frozenset(eos_ids), ops
        env = [s for s in compiled.spec.segments if s.by == "env"]
        self.stops = re.compile(r"(?:^|\n)[ \t]*(" + "|".join(re.escape(s.tag) for s in env) + ")") if env else None
        self.tag_segment = {s.tag: s for s in env}
        self.finals = final_letters(compiled.automaton)
        text_ids = [i for i, piece in enumerate(vocab.token_bytes) if piece is not None]
        self.candidates = sorted(set(text_ids) | self.eos_ids)  # text tokens and EOS; never padding ids

    def run(self, source, sampler, environment, prompt) -> FreeResult:
        """Play one episode after ``prompt`` (text, or a ``prompts.RenderedPrompt``); never raises for
        what the model writes."""
        return _FreeRun(self, source, sampler, environment).go(prompt)


class _FreeRun:
    def __init__(self, runner: FreeRunner, source, sampler, environment):
        self.r, self.source, self.sampler, self.env = runner, source, sampler, environment
        self.transcript, self.model_tokens, self.stopped_by = "", 0, "budget"
        self.budget = runner.compiled.spec.limits.max_tokens

    def go(self, prompt) -> FreeResult:
        started = time.perf_counter()
        self.everything = self.r.ops.ids(self.r.candidates)
        self.logits = self.source.feed(prompt_ids(prompt, self.r.vocab)[1])
        self.opening()
        while self.model_tokens < self.budget and self.chunk():
            pass
        records, failure = parse(self.r.compiled, self.transcript)
        final = records[-1].state_after if records else self.r.compiled.automaton.initial
        accepted = failure is None and final in self.r.compiled.automaton.accepting
        result = RunResult(records, self.stopped_by, final, accepted,
                           self.model_tokens, self.source.forward_passes, self.source.tokens_fed,
                           time.perf_counter() - started, self.transcript)
        if hasattr(self.source, "counters"):
            result.engine = self.source.counters.as_dict()
        return FreeResult(result, failure)

    def opening(self) -> None:
        """Env segments the spec forces first (the question) are written before the model starts."""
        aut, state = self.r.compiled.automaton, self.r.compiled.automaton.initial
        while state is not None:
            segments = {a.split(".", 1)[0] for a in aut.allowed(state)}
            segment = self.r.compiled.spec.segment(segments.pop()) if len(segments) == 1 else None
            if segment is None or segment.by != "env":
                return
            text, content = self.environment_text(segment)
            option = content.split(" ", 1)[0] if segment.content.kind == "call" else content
            letter = f"{segment.name}.{option}" if segment.options else segment.name
            state = aut.step(state, letter) if letter in aut.alphabet else None
            self.logits = self.source.feed(self.r.vocab.encode(text))

    def environment_text(self, segment) -> tuple[str, str]:
        """The env segment as text (tag, content, end), appended to the transcript; and its content."""
        records, _ = parse(self.r.compiled, self.transcript)
        content, _tool = self.env.produce(segment, records)
        content = " ".join(str(content).split("\n")).strip() if segment.end == "\n" else str(content).strip()
        text = f"{segment.tag} {content}{segment.end}" if content else f"{segment.tag}{segment.end}"
        self.transcript += text
        return text, content

    def chunk(self) -> bool:
        """Generate until a stop; True when the episode goes on (an env segment was filled)."""
        if hasattr(self.source, "complete"):
            return self.remote_chunk()
        start, ids = self.source.length, []
        while self.model_tokens < self.budget and len(ids) < CALL_TOKENS:
            token = self.sampler.pick(self.logits, self.everything)
            if token in self.r.eos_ids:
                self.stopped_by = "eos"
                break
            ids.append(token)
            self.model_tokens += 1
            text = self.r.vocab.text(ids)
            hit = self.r.stops.search(text) if self.r.stops else None
            if hit is not None:
                return self.stop_at_tag(start, text[:hit.start(1)], hit.group(1))
            if "\n" in self.r.vocab.text([token]) and self.ends_final(line := text[:text.rindex("\n") + 1]):
                self.transcript += line  # what the newline token carried after the line is dropped
                self.stopped_by = "final"
                return False
            self.logits = self.source.feed([token])
        if self.stopped_by != "eos":
            self.stopped_by = "call budget" if len(ids) >= CALL_TOKENS else "budget"
        self.transcript += self.r.vocab.text(ids)
        return False

    def remote_chunk(self) -> bool:
        """The same chunk as one completions request of a serving engine (its session has ``complete``):
        env tags at line starts are the stop sequences; the text is then cut where the local loop would
        have stopped (an env tag, a final line)."""
        start = self.source.length
        most = min(CALL_TOKENS, self.budget - self.model_tokens)
        vllm = self.source.engine.token_prompts  # vLLM: token ids, and it says which stop it met
        body = {"prompt": self.source.prompt(), "max_tokens": max(1, most),
                **sampling_fields(self.sampler, self.source.counters.requests)}
        if vllm and self.r.tag_segment:  # others cannot say which stop they met: cut afterwards
            body["stop"] = ["\n" + tag for tag in list(self.r.tag_segment)[:4]]
            body["return_token_ids"] = True
        choice = self.source.complete(body)
        text, finish = str(choice.get("text") or ""), choice.get("finish_reason")
        if finish == "stop" and choice.get("stop_reason") in body.get("stop", ()):
            text += choice["stop_reason"]  # the stop sequence is not part of the text: put it back to cut there
        hit = self.r.stops.search(text) if self.r.stops else None
        cut = self.final_cut(text[:hit.start(1)] if hit else text)
        if cut is not None:
            self.count(cut)
            self.transcript += cut
            self.stopped_by = "final"
            return False
        if hit is not None:
            self.count(text[:hit.start(1)])
            return self.stop_at_tag(start, text[:hit.start(1)], hit.group(1))
        self.count(text)
        self.transcript += text
        self.stopped_by = "eos" if finish == "stop" else "call budget" if most == CALL_TOKENS else "budget"
        return False

    def count(self, text: str) -> None:
        """Charge ``text``'s tokens (the local tokenizer's), never past the spec's budget: a server's text
        may re-tokenize a little longer than it generated."""
        spent = len(self.r.vocab.encode(text)) if text else 0
        self.model_tokens = min(self.budget, self.model_tokens + spent)

    def final_cut(self, text: str):
        """``text`` up to the end of its first complete line after which the spec allows nothing more,
        or None."""
        position = 0
        while (newline := text.find("\n", position)) != -1:
            if self.ends_final(text[:newline + 1]):
                return text[:newline + 1]
            position = newline + 1
        return None

    def ends_final(self, lines: str) -> bool:
        """Whether the transcript plus these completed lines ends with a segment nothing may follow."""
        records, _ = parse(self.r.compiled, self.transcript + lines)
        return bool(records) and records[-1].letter in self.r.finals

    def stop_at_tag(self, start: int, kept: str, tag: str) -> bool:
        """The model wrote an env tag: keep the text before it, let the environment fill the segment."""
        segment = self.r.tag_segment[tag]
        self.transcript += kept
        if segment.input == "task":
            self.stopped_by = "task tag"
            return False
        try:
            filled = self.environment_text(segment)[0]
        except EndOfInput:  # the user ended the conversation: the episode ends here, as a constrained run does
            self.stopped_by = "end of input"
            return False
        self.source.rewind(start)
        self.logits = self.source.feed(self.r.vocab.encode(kept + filled))
        return True
