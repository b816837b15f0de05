"""ltlagent: LTLf specs over an agent's output segments, compiled to automata that constrain a local LLM.

Public API: ``load``, ``compile``, ``compile_formula``, ``holds``, and the types ``Spec``,
``CompiledSpec``, ``Automaton`` and ``SpecError``. Importing ltlagent never imports torch.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .compiler.api import compile, compile_formula, holds, load, load_artifact  # noqa: E402
from .compiler.artifact import CompiledSpec  # noqa: E402
from .compiler.ast import Spec  # noqa: E402
from .compiler.automaton import Automaton  # noqa: E402
from .compiler.errors import SpecError, SpecSemanticError, SpecSyntaxError  # noqa: E402

__all__ = ["load", "compile", "compile_formula", "load_artifact", "Spec", "CompiledSpec", "Automaton", "SpecError", "SpecSemanticError", "SpecSyntaxError", "holds",
           "__version__"]
