"""The runtime's front door: a compiled spec + a local model (or any logits source) -> runs and traces."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .decode import Decoder, RunResult
from .engines.base import EngineOptions, Sampling
from .environment import Environment
from .index import IndexStore
from .prompts import PromptFormatError, RenderedPrompt, build_prompt, choose_format, completion_text, fallback_note
from .vocab import Vocab

prompt_text = completion_text  # the ``completion`` prompt (instructions, examples, a blank line)


@dataclass
class Runtime:
    """A vocabulary, its indexes and the engine's array ops, shared by every spec decoded on that engine."""

    vocab: Vocab
    indexes: IndexStore
    ops: object

    @classmethod
    def for_vocab(cls, vocab: Vocab, ops, cache: Optional[Path] = None) -> "Runtime":
        return cls(vocab, IndexStore(vocab.outlines(), vocab.hash, cache), ops)

    @classmethod
    def for_engine(cls, engine, cache: Optional[Path] = None) -> "Runtime":
        return cls.for_vocab(engine.vocab, engine.ops, cache)

    @classmethod
    def for_tokenizer(cls, tokenizer, eos_token_id: int, cache: Optional[Path] = None) -> "Runtime":
        """A transformers tokenizer's runtime, with scores as CPU torch tensors."""
        from .engines.arrays import TorchOps

        return cls.for_vocab(Vocab.of_tokenizer(tokenizer, eos_token_id), TorchOps("cpu"), cache)

    def decoder(self, compiled) -> Decoder:
        return Decoder(compiled, self.vocab, self.indexes, self.ops)


class Agent:
    """A compiled spec bound to an engine: ``run(task)`` decodes one episode."""

    def __init__(self, compiled, engine, runtime: Runtime, prompt_format: Optional[str] = None):
        """``prompt_format`` overrides the spec's ``prompt.format`` (see ``prompts.choose_format``). Raises
        PromptFormatError when a chat format is asked of a model without a chat template, or its template
        refuses the prompt (tried once here, so bad input fails before any run). When no format is asked
        (neither here nor in the spec), the default chat format falls back to ``completion`` on a model
        without a template or whose template refuses the prompt, and ``prompt_format_note`` says why."""
        self.compiled, self.engine, self.runtime = compiled, engine, runtime
        self.decoder = runtime.decoder(compiled)
        self.asked_format = prompt_format
        self.template = engine.chat_template() if hasattr(engine, "chat_template") else None
        self.prompt_format = choose_format(prompt_format, compiled.spec, self.template, engine.model_name)
        self.prompt_format_note = fallback_note(prompt_format, compiled.spec, self.template, engine.model_name)
        try:
            self.prompt("a task")
        except PromptFormatError as err:
            if self.prompt_format == "completion" or (prompt_format or compiled.spec.prompt.format) is not None:
                raise
            self.prompt_format_note = f"{err}; the default prompt format ({self.prompt_format}) fell back to completion"
            self.prompt_format = "completion"
            self.prompt("a task")

    @classmethod
    def load(cls, compiled, options: Optional[EngineOptions] = None,
             progress: Optional[Callable[[str], None]] = None, prompt_format: Optional[str] = None) -> "Agent":
        """Open the engine (the embedded default model on ``auto`` unless ``options`` say otherwise) and
        build the spec's token indexes (cached on disk). Raises ModelError when the model cannot be found
        locally, EngineError when the engine cannot run it, PromptFormatError as ``__init__``."""
        from .engines import open_engine
        from .models import cache_dir

        engine = open_engine(options or EngineOptions(), progress)
        return cls(compiled, engine, Runtime.for_engine(engine, cache_dir() / "indexes"), prompt_format)

    def for_spec(self, compiled) -> "Agent":
        """Another spec's agent on the same engine, runtime and prompt-format override (nothing is loaded
        again)."""
        return Agent(compiled, self.engine, self.runtime, self.asked_format)

    def prompt(self, task: str, examples: Optional[list[str]] = None) -> RenderedPrompt:
        """The prompt of a run on ``task`` in this agent's format."""
        return build_prompt(self.compiled.spec, examples, task, self.prompt_format, self.template,
                            self.engine.model_name)

    def run(self, task: str, toolbox=None, sampling: Sampling = Sampling(), examples: Optional[list[str]] = None,
            on_event=None, ask_user=None, reference: Optional[str] = None, grader=None) -> RunResult:
        """One episode on the task; env segments are filled by ``toolbox`` tools, the task and the user;
        ``reference`` (the gold answer, if known) and ``grader`` are for tools that grade answers."""
        environment = Environment(task, toolbox, ask_user=ask_user, reference=reference, grader=grader)
        return self.decoder.run(self.engine.session(), self.engine.ops.sampler(sampling), environment,
                                self.prompt(task, examples), on_event)

    def run_free(self, task: str, toolbox=None, sampling: Sampling = Sampling(),
                 examples: Optional[list[str]] = None, reference: Optional[str] = None, grader=None):
        """The ablation: the same prompt and environment, generated without masks (see ``unconstrained``);
        returns a FreeResult."""
        from .unconstrained import FreeRunner

        environment = Environment(task, toolbox, reference=reference, grader=grader)
        runner = FreeRunner(self.compiled, self.runtime.vocab, self.runtime.vocab.eos_ids, self.engine.ops)
        return runner.run(self.engine.session(), self.engine.ops.sampler(sampling), environment,
                          self.prompt(task, examples))
