"""One conversation of a spec's agent with a scripted user over a retail episode: the only place where
the evaluation harness meets the spec (``ltlagent eval --task retail``).

What it needs from the spec, nothing more:

- user turns: env segments with ``input: user``. A free-text one gets the scripted user's message (its
  ``opening()`` first, then ``reply(agent's messages since the user last spoke, log)``); a choice one
  (``confirmation: [yes, no]``) gets ``yes`` when the user's reply is an explicit yes
  (``monitor.is_yes``), else ``no`` (or its first option when it has no ``no``). A reply holding
  ``###STOP###`` ends the conversation at a free-text user turn (``EndOfInput``: the decoder ends the
  run there when the spec accepts it), and so does the user's ``MAX_TURNS``-th free-text turn
  (the user leaves, as τ-bench caps its conversations; it matters to the ablation, whose model may hand
  the turn back at once, forever).
- messages to the user: the model segments no tool binding reads (not a tool's name, arguments or call
  segment) and not named like a thought; in ``specs/retail.yaml``, ``response`` and ``propose`` (a call
  segment no tool runs: the change stated as the exact call, for the user's yes). Each is
  logged on the episode (``say_agent``) as soon as the run reaches the next env segment, so the log's
  order is the conversation's.
- tool calls: ``ToolBox.for_spec(spec, extra=binding.bind(episode))``; the binding runs and logs them on
  the episode (a call segment's arguments reach it as JSON text).

``play`` runs one conversation constrained (the decoder) or free (the ablation's ``FreeRunner``) and
returns the run; the episode holds the event log the monitor reads.
"""
from __future__ import annotations

from typing import Optional

from ..environment import EndOfInput, Environment
from .monitor import is_yes
from .users import STOP, ScriptedUser
from .world import Episode


def tool_inputs(spec) -> set:
    """The segments a tool binding reads (its name, its arguments, its call), by any binding field that
    names a segment."""
    import dataclasses

    names = {s.name for s in spec.segments}
    found = set()
    for segment in spec.segments:
        tool = segment.tool
        if tool is None:
            continue
        values = dataclasses.asdict(tool).values() if dataclasses.is_dataclass(tool) else vars(tool).values()
        found.update(v for v in values if isinstance(v, str) and v in names)
    return found


def message_segments(spec) -> tuple[str, ...]:
    """The model segments that speak to the user (see the module docstring)."""
    reads = tool_inputs(spec)
    return tuple(s.name for s in spec.segments
                 if s.by == "model" and s.name not in reads and "thought" not in s.name.lower())


def user_segments(spec) -> tuple[str, ...]:
    """The env segments the user fills (``input: user``)."""
    return tuple(s.name for s in spec.segments if s.by == "env" and s.input == "user")


def check_spec(spec) -> Optional[str]:
    """Why the harness cannot run ``spec`` on the retail world (None when it can): it needs a free-text
    user turn and at least one message segment."""
    free = [n for n in user_segments(spec) if not spec.segment(n).options]
    if not free:
        return f"spec {spec.name!r} has no free-text user turn (an env segment with input: user)"
    if not message_segments(spec):
        return f"spec {spec.name!r} has no segment that speaks to the user (a model segment no tool reads)"
    return None


def toolbox(spec, episode: Episode):
    """The spec's tools, bound to ``episode`` (calls run on its database copy and are logged there)."""
    from ..tools import ToolBox
    from .binding import bind

    return ToolBox.for_spec(spec, extra=bind(episode))


MAX_TURNS = 10   # free-text user turns before the user leaves (the propositional spec allows 4)


class RetailEnvironment(Environment):
    """Fills user turns from a scripted user and logs the agent's messages on the episode; tools as in
    any Environment. ``ended`` once the user said STOP."""

    def __init__(self, spec, episode: Episode, user: ScriptedUser, tools):
        super().__init__("", tools)
        self.episode, self.user = episode, user
        self.messages = set(message_segments(spec))
        self.seen = 0          # records already looked at
        self.turns = 0         # user turns so far
        self.free_turns = 0    # of them, free-text ones
        self.ended = False

    def sync(self, records: list) -> None:
        """Log the agent's messages among ``records`` not seen yet (``records``: the run's segments so far)."""
        for record in records[self.seen:]:
            if record.name in self.messages and record.by == "model":
                self.episode.say_agent(record.text)
        self.seen = max(self.seen, len(records))

    def produce(self, segment, records: list):
        self.sync(records)
        if segment.input == "user":
            return self.user_turn(segment), None
        return super().produce(segment, records)

    def agent_said(self) -> str:
        """The agent's messages since the user last spoke, one per line."""
        said = []
        for event in reversed(self.episode.log):
            if event.get("kind") == "user":
                break
            if event.get("kind") == "agent":
                said.append(event["text"])
        return "\n".join(reversed(said))

    def user_turn(self, segment) -> str:
        if not segment.options and (self.ended or self.free_turns >= MAX_TURNS):
            self.ended = True
            raise EndOfInput(segment.name)
        if self.turns == 0 and not segment.options:
            reply = self.user.opening()
        else:
            reply = self.user.reply(self.agent_said(), self.episode.log)
        self.turns += 1
        self.free_turns += not segment.options
        stop = STOP in reply
        reply = " ".join(reply.replace(STOP, " ").split())
        if segment.options:
            option = "yes" if is_yes(reply) and "yes" in segment.options else \
                "no" if "no" in segment.options else segment.options[0]
            self.episode.log.append({"kind": "user", "text": reply, "option": option})
            return option
        if stop:
            self.ended = True
            self.episode.log.append({"kind": "user", "text": reply, "stop": True})
            raise EndOfInput(segment.name)
        self.episode.say_user(reply)
        return reply


def play(agent, episode: Episode, user: ScriptedUser, unconstrained: bool = False, sampling=None,
         free_runner=None, on_event=None):
    """One conversation of ``agent`` (a runtime Agent) with ``user`` over ``episode``: ``(RunResult,
    parse_failure)`` (parse_failure None for constrained runs). The agent's last messages are logged
    before it returns; tool calls and user turns are logged as they happen."""
    from ..engines.base import Sampling

    spec = agent.compiled.spec
    env = RetailEnvironment(spec, episode, user, toolbox(spec, episode))
    sampling = sampling or Sampling()
    prompt = agent.prompt("")
    sampler = agent.engine.ops.sampler(sampling)
    if unconstrained:
        runner = free_runner or free_runner_for(agent)
        free = runner.run(agent.engine.session(), sampler, env, prompt)
        result, failure = free.result, free.parse_failure
    else:
        result, failure = agent.decoder.run(agent.engine.session(), sampler, env, prompt, on_event), None
    env.sync(result.segments)
    return result, failure


def free_runner_for(agent):
    """The ablation's runner for ``agent`` (build once per agent: it scans the vocabulary)."""
    from ..unconstrained import FreeRunner

    vocab = agent.runtime.vocab
    return FreeRunner(agent.compiled, vocab, vocab.eos_ids, agent.engine.ops)
