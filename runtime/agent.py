"""The runtime's front door: a compiled spec + a local model (or any logits source) -> runs and traces."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .decode import Decoder, RunResult, Vocab
from .environment import Environment
from .index import IndexStore


def prompt_text(spec, examples: Optional[list[str]] = None) -> str:
    """Instructions, then the few-shot examples, then a blank line: the run's transcript follows."""
    shots = examples if examples is not None else [e.text for e in spec.prompt.examples]
    parts = [spec.prompt.instructions.strip()] + [s.strip() for s in shots]
    text = "\n\n".join(p for p in parts if p)
    return text + "\n\n" if text else ""


@dataclass
class Runtime:
    """A tokenizer's vocabulary and indexes, shared by every spec decoded with that tokenizer."""

    tokenizer: object
    vocab: Vocab
    indexes: IndexStore

    @classmethod
    def for_tokenizer(cls, tokenizer, eos_token_id: int, cache: Optional[Path] = None) -> "Runtime":
        from .vocab import outlines_vocabulary, token_bytes, vocabulary_hash

        vocab = Vocab(tokenizer, token_bytes(tokenizer), eos_token_id)
        store = IndexStore(outlines_vocabulary(tokenizer, eos_token_id), vocabulary_hash(tokenizer), cache)
        return cls(tokenizer, vocab, store)

    def decoder(self, compiled) -> Decoder:
        return Decoder(compiled, self.vocab, self.indexes)


class Agent:
    """A compiled spec bound to a loaded model: ``run(task)`` decodes one episode."""

    def __init__(self, compiled, loaded, runtime: Runtime):
        self.compiled, self.loaded, self.runtime = compiled, loaded, runtime
        self.decoder = runtime.decoder(compiled)

    @classmethod
    def load(cls, compiled, model: Optional[str] = None, threads: Optional[int] = None,
             progress: Optional[Callable[[str], None]] = None) -> "Agent":
        """Load the model (the embedded default when None) and build the spec's token indexes (cached on
        disk). Raises ModelError when the model cannot be found locally."""
        from .models import cache_dir, load_model

        kwargs = {"progress": progress} if progress else {}
        loaded = load_model(model, threads=threads, **kwargs)
        runtime = Runtime.for_tokenizer(loaded.tokenizer, loaded.eos_token_ids[0], cache_dir() / "indexes")
        return cls(compiled, loaded, runtime)

    def for_spec(self, compiled) -> "Agent":
        """Another spec's agent on the same loaded model and runtime (nothing is loaded again)."""
        return Agent(compiled, self.loaded, self.runtime)

    def run(self, task: str, toolbox=None, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
            examples: Optional[list[str]] = None, on_event=None, ask_user=None, reference: Optional[str] = None,
            grader=None) -> RunResult:
        """One episode on the task; env segments are filled by ``toolbox`` tools, the task and the user;
        ``reference`` (the gold answer, if known) and ``grader`` are for tools that grade answers."""
        from .session import ModelSession, Sampler

        environment = Environment(task, toolbox, ask_user=ask_user, reference=reference, grader=grader)
        return self.decoder.run(ModelSession(self.loaded.model), Sampler(temperature, top_p, seed), environment,
                                prompt_text(self.compiled.spec, examples), on_event)

    def run_free(self, task: str, toolbox=None, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
                 examples: Optional[list[str]] = None, reference: Optional[str] = None, grader=None):
        """The ablation: the same prompt and environment, generated without masks (see ``unconstrained``);
        returns a FreeResult."""
        from .session import ModelSession, Sampler
        from .unconstrained import FreeRunner

        environment = Environment(task, toolbox, reference=reference, grader=grader)
        runner = FreeRunner(self.compiled, self.runtime.vocab, self.loaded.eos_token_ids)
        return runner.run(ModelSession(self.loaded.model), Sampler(temperature, top_p, seed), environment,
                          prompt_text(self.compiled.spec, examples))
