"""The public API: load a spec, compile it, compile a single formula."""
from __future__ import annotations

from typing import Sequence

from .automaton import DEFAULT_STATE_CAP, Automaton
from .ltl import parse_formula


def compile_formula(text: str, alphabet: Sequence[str], cap: int = DEFAULT_STATE_CAP) -> Automaton:
    """The minimal trimmed DFA of the non-empty traces over ``alphabet`` (letters such as ``"thought"``
    or ``"action.Search"``) that satisfy the LTLf formula ``text``.

    Raises SpecSyntaxError for text that does not parse, SpecSemanticError for a proposition that names
    no letter of the alphabet, AutomatonTooLarge past ``cap`` states."""
    formula = parse_formula(text)
    from .checks import check_formula_props
    from .data import is_data_formula
    from .errors import SpecSemanticError

    if is_data_formula(formula):
        raise SpecSemanticError("a formula over data or past time is a rule of a spec (its tools' schemas "
                                "give its terms meaning), not an automaton", formula.span,
                                "put it in a spec's behavior; ltlagent.holds evaluates it on a trace of Steps")
    check_formula_props(formula, alphabet)
    return formula_parts_automaton(formula, tuple(alphabet), cap)


def load(path_or_text, name: str | None = None):
    """Load a spec (YAML or the reference s-expression dialect) from a path or from spec text.

    A ``pathlib.Path`` (or a one-line string naming an existing file) is read as a file; any other string
    is spec text. Raises SpecError subclasses with file:line:col locations; OSError for unreadable files."""
    import os
    from pathlib import Path

    from .source import Source, normalise_newlines

    if isinstance(path_or_text, os.PathLike) or (
            isinstance(path_or_text, str) and "\n" not in path_or_text and os.path.isfile(path_or_text)):
        path = Path(path_or_text)
        source = read_source(path, name or str(path))
    else:
        source = Source(name or "<string>", normalise_newlines(path_or_text))
    return load_source(source)


def read_source(path, name: str):
    """The Source of a UTF-8 file, its CRLF and CR line endings read as LF. Raises SpecSyntaxError,
    located at the first byte that is not UTF-8."""
    from .errors import SpecSyntaxError
    from .source import Source, Span, normalise_newlines

    data = path.read_bytes()
    try:
        return Source(name, normalise_newlines(data.decode("utf-8")))
    except UnicodeDecodeError as err:
        text = normalise_newlines(data.decode("utf-8", errors="replace"))
        offset = len(normalise_newlines(data[:err.start].decode("utf-8", errors="replace")))
        raise SpecSyntaxError(f"the file is not UTF-8 text (byte 0x{data[err.start]:02x})",
                              Span(Source(name, text), offset, offset + 1)) from None


def load_source(source):
    """A validated Spec from a Source, choosing the dialect by its first non-comment character."""
    from .sexpr import load_sexpr_spec
    from .spec import load_yaml_spec

    return load_sexpr_spec(source) if is_sexpr(source.text) else load_yaml_spec(source)


def is_sexpr(text: str) -> bool:
    """Whether spec text is in the s-expression dialect (its first form opens with a parenthesis)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";")):
            return stripped.startswith("(")
    return False


def compile(spec, cap: int | None = None):  # noqa: A001 - the public name the issue asks for
    """The CompiledSpec of a Spec: the minimal DFA of the conjunction of its rules (all non-empty traces
    over its alphabet when it has none). ``cap`` (default ``spec.limits.max_states``) bounds the states
    of every automaton built on the way. Raises AutomatonTooLarge located at the rule that passed it."""
    from .artifact import CompiledSpec
    from .rules import PartTooLarge, conjunction, rule_builder

    cap = spec.limits.max_states if cap is None else cap
    builders = [rule_builder(rule, spec.alphabet) for rule in spec.behavior]
    try:
        automaton, sizes = conjunction(builders, spec.alphabet, cap)
    except PartTooLarge as err:
        raise rule_too_large(spec, err.index, err, cap) from None
    return CompiledSpec(spec, automaton, tuple(sizes))


def rule_too_large(spec, index: int, err, cap: int):
    """The AutomatonTooLarge of rule ``index`` of ``spec``, located at the rule and naming it, with how
    to raise the cap."""
    from .errors import AutomatonTooLarge

    rule = spec.behavior[index]
    text = " ".join(rule.text.split())
    shown = text if len(text) <= 60 else text[:57] + "..."
    raising = ("`limits: {max_states: N}` in the spec" if spec.dialect == "yaml"
               else "ltlagent.compile(spec, cap=N) (s-expression specs carry no limits)")
    span = getattr(rule.node, "span", None) or rule.span
    return AutomatonTooLarge(f"rule {index + 1} ({shown}): {err.message}", span,
                             f"the cap is {cap} states; raise it with {raising}")


def rule_automaton(rule, alphabet, cap: int = DEFAULT_STATE_CAP) -> Automaton:
    """The minimal DFA of one behaviour rule; top-level conjunctions are built as products of parts.
    Raises AutomatonTooLarge past ``cap`` states."""
    from .rules import rule_automaton as build

    return build(rule, tuple(alphabet), cap)


def formula_parts_automaton(formula, alphabet, cap: int = DEFAULT_STATE_CAP) -> Automaton:
    """The minimal DFA of a formula built compositionally: one minimal DFA per top-level conjunct,
    intersected smallest first (conjuncts too large alone built within the others). Raises
    AutomatonTooLarge past ``cap`` states."""
    from .rules import formula_parts_automaton as build

    return build(formula, tuple(alphabet), cap)


def load_artifact(path):
    """Read a compiled artifact written by ``ltlagent compile``. Raises ArtifactError."""
    from pathlib import Path

    from .artifact import CompiledSpec

    return CompiledSpec.from_json(Path(path).read_text(encoding="utf-8"), str(path))


def holds(formula, trace) -> bool:
    """Whether a non-empty trace of letters satisfies an LTLf formula (text or ast), by the reference
    evaluator. Raises SpecSyntaxError for formula text that does not parse."""
    from .semantics import holds as reference_holds

    return reference_holds(parse_formula(formula) if isinstance(formula, str) else formula, trace)
