"""Fuzzing the front end: whatever the input, ``ltlagent`` ends in success or a located error with exit 1,
never an internal error (exit 3) or a traceback.

One test per input kind (YAML structure, formulas, patterns, s-expressions, prompt files), each over
``FUZZ_CASES`` seeded cases (default 2000; ``make test-fast`` runs fewer) through ``ltlagent.cli.main``
in-process, and a few real CLI subprocesses on the inputs that used to end in exit 3.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ltlagent
from ltlagent.cli import main
from paths import SPECS, reference_spec_paths
from tiers import FAST

FUZZ_CASES = int(os.environ.get("LTLAGENT_FUZZ_CASES", "300" if FAST else "2000"))
LOCATED = re.compile(r"^(?:\s*error\s+example \d+: )?\S.*?:\d+:\d+: \S", re.MULTILINE)
CHECK_ERROR = re.compile(r"^\s*error\s+\w+: ", re.MULTILINE)
# Characters that broke the reader, the escapes, the dates and the terminal.
NASTY = ["\x00", "\x7f", "\x1a", "\x1b", "\x01", "\t", "\n", "\r", "\r\n", '"', "'", "\\", "\ufffe", "\ud800",
         "\u2028", "\x85", "é", "#", ":", "-", "{", "}", "[", "]", "&", "*", "!", "|", ">", "%", "@", "`", ","]
YAML_BITS = ["2024-13-45", "2024-02-30 25:61:00", "!!binary x", "!!python/object:os.system", "<<: *a", "&a", "*a",
             "null", "~", "1e999", "0x", ": :", "- -", '"\\q"', '"\\ud800"', "'", "[", "{", "? ", "--- ", "...\n"]


def run_cli(args: list[str]) -> tuple[int, str]:
    """``ltlagent ARGS`` in-process: (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue() + err.getvalue()


def verdict_problem(code: int, output: str) -> str | None:
    """Why an outcome breaks the promise (None when it keeps it): exit 0, or exit 1 with a located
    error or a failed check; never exit 3, an internal error or a traceback."""
    if code not in (0, 1) or "internal error" in output or "Traceback" in output:
        return f"exit {code}: {output.strip()[:300]}"
    if code == 1 and not (LOCATED.search(output) or CHECK_ERROR.search(output)):
        return f"exit 1 without a location: {output.strip()[:300]}"
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", output):
        return f"raw control characters in the output: {output[:300]!r}"
    return None


def fuzz(cases, run) -> list[str]:
    """Run every case; the first few problems, each with its case."""
    problems = []
    for case in cases:
        problem = verdict_problem(*run(case))
        if problem is not None:
            problems.append(f"{case!r}: {problem}")
    return problems[:5]


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # lone surrogates make the file non-UTF-8
    return path


def mutate(rng: random.Random, text: str, bits=NASTY + YAML_BITS, edits: int = 4) -> str:
    """A few random insertions, deletions and cuts."""
    chars = list(text)
    for _ in range(rng.randint(1, edits)):
        i, op = rng.randrange(len(chars) + 1), rng.random()
        if op < 0.5:
            chars[i:i] = list(rng.choice(bits))
        elif op < 0.8 and chars:
            del chars[min(i, len(chars) - 1)]
        else:
            del chars[i:rng.randrange(i, min(len(chars), i + 40) + 1)]
    return "".join(chars)


def check_each(tmp_path: Path, texts, suffix: str = ".yaml", command: tuple = ("check",)) -> list[str]:
    def run(item):
        index, text = item
        return run_cli([*command, str(write(tmp_path / f"case{index}{suffix}", text))])
    return fuzz(list(enumerate(texts)), run)


# --------------------------------------------------------------------------------------- YAML structure

def test_fuzzed_yaml_specs_end_in_success_or_a_located_error(tmp_path):
    rng = random.Random(9)
    shipped = [p.read_text(encoding="utf-8") for p in sorted(SPECS.glob("*.yaml"))]
    texts = [mutate(rng, rng.choice(shipped)) for _ in range(FUZZ_CASES)]
    assert check_each(tmp_path, texts) == []


# ---------------------------------------------------------------------------------------------- formulas

FORMULA_SPEC = """name: fz
segments:
  a: {tag: "A:"}
  b: {tag: "B:", by: env}
  c: {tag: "C:", choice: [x, "y z"]}
  d: {tag: "D:"}
behavior:
  - %s: %s
"""
ALPHABET = ["a", "b", "c.x", "c.y z", "d"]
ATOMS = ["a", "b", "c", "d", "c.x", 'c."y z"'] * 4 + ["c.z", "e", "true", "false", "last", 'c."\\q"', 'c."\\u12"',
         'c."a\nb"', 'c."\\u00e9"']
UNARY = ["!", "X ", "WX ", "F ", "G ", "F[0,3] ", "G[1,2] ", "F[3,1] "]
BINARY = [" & ", " | ", " -> ", " <-> ", " U ", " R ", " W "]
FORMULA_NOISE = NASTY + ["(", ")", "[", "]", ",", "F[", "X", "U", "..", ".", "c.", "#x\n", "{2}", "*"]


def random_formula(rng: random.Random, depth: int = 4) -> str:
    """A random formula text, mostly well formed."""
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(ATOMS)
    if rng.random() < 0.4:
        return rng.choice(UNARY) + random_formula(rng, depth - 1)
    text = random_formula(rng, depth - 1) + rng.choice(BINARY) + random_formula(rng, depth - 1)
    return f"({text})" if rng.random() < 0.5 else text


def quote_yaml(rng: random.Random, text: str) -> str:
    """The text as a YAML double-quoted, single-quoted or plain scalar."""
    choice = rng.random()
    if choice < 0.5:
        return json.dumps(text, ensure_ascii=False)
    if choice < 0.8:
        return "'" + text.replace("'", "''") + "'"
    return text


def fuzzed_rules(rng: random.Random, generate, noise) -> list[str]:
    texts = []
    for _ in range(FUZZ_CASES):
        text = generate(rng)
        texts.append(mutate(rng, text, noise, 2) if rng.random() < 0.6 else text)
    return texts


def test_fuzzed_formulas_end_in_success_or_a_located_error(tmp_path):
    rng = random.Random(1)
    formulas = fuzzed_rules(rng, random_formula, FORMULA_NOISE)
    specs = [FORMULA_SPEC % ("ltl", quote_yaml(rng, f)) for f in formulas]
    assert check_each(tmp_path, specs) == []
    assert [f for f in formulas if not compiles_or_spec_error(f)] == []
    assert sum(compiles_or_spec_error(f) == "ok" for f in formulas) > FUZZ_CASES // 10  # not all rejected


def compiles_or_spec_error(formula: str) -> str | None:
    """'ok' or 'error' when compile_formula compiles or raises a SpecError; None for anything else."""
    try:
        ltlagent.compile_formula(formula, ALPHABET)
    except ltlagent.SpecError:
        return "error"
    except Exception:  # noqa: BLE001 - what the test looks for
        return None
    return "ok"


# ---------------------------------------------------------------------------------------------- patterns

PATTERN_ATOMS = ["a", "b", "c", "d", "c.x", 'c."y z"'] * 6 + ["c.z", "e", 'c."\\q"', 'c."a\nb"']
PATTERN_POSTFIX = ["", "", "*", "+", "?", "{2}", "{1,}", "{0,3}", "{3,1}", "{1001}"]


def random_pattern(rng: random.Random, depth: int = 4) -> str:
    """A random segment pattern, mostly well formed."""
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(PATTERN_ATOMS) + rng.choice(PATTERN_POSTFIX)
    parts = [random_pattern(rng, depth - 1) for _ in range(rng.randint(1, 3))]
    body = rng.choice([" ", " | "]).join(parts)
    return f"({body}){rng.choice(PATTERN_POSTFIX)}" if rng.random() < 0.6 else body


def test_fuzzed_patterns_end_in_success_or_a_located_error(tmp_path):
    rng = random.Random(2)
    patterns = fuzzed_rules(rng, random_pattern, FORMULA_NOISE + ["{", "}", "{1,", "?", "+"])
    specs = [FORMULA_SPEC % ("pattern", quote_yaml(rng, p)) for p in patterns]
    outcomes = [run_cli(["check", str(write(tmp_path / f"p{i}.yaml", s))]) for i, s in enumerate(specs)]
    assert [p for p, o in zip(patterns, outcomes) if verdict_problem(*o)] == []
    assert sum(code == 0 for code, _ in outcomes) > FUZZ_CASES // 10


# ----------------------------------------------------------------------------------------- s-expressions

SEXPR_OPS = ["next", "or", "always", "until", "until_3", "until_1_2", "until_2_1", "until_5000", "bogus"]
STATES = ["question", "thought", "action", "observation", "answer", "nosuch"]


def random_sexpr(rng: random.Random, depth: int = 4) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(STATES)
    items = " ".join(random_sexpr(rng, depth - 1) for _ in range(rng.randint(1, 3)))
    return f"({rng.choice(SEXPR_OPS)} {items})"


def sexpr_spec(behavior: str) -> str:
    states = " ".join(f'({s} (:text "{s.title()}:"){" (:flags :env-input)" if s == "observation" else ""})'
                      for s in STATES[:-1])
    return f"(define fz (:states {states})\n  (:behavior {behavior}))\n"


def test_fuzzed_sexpressions_end_in_success_or_a_located_error(tmp_path):
    rng = random.Random(3)
    reference = [p.read_text(encoding="utf-8") for p in reference_spec_paths()]
    noise = NASTY + ["(", ")", '"', ":text", ":flags", ":env-input", ";", "(next", "))"]
    texts = []
    for i in range(FUZZ_CASES):
        if reference and i % 2:
            texts.append(mutate(rng, rng.choice(reference), noise))
        else:
            text = sexpr_spec(random_sexpr(rng))
            texts.append(mutate(rng, text, noise, 2) if rng.random() < 0.5 else text)
    deep = sexpr_spec("(next question " * 250 + "answer" + ")" * 250)
    texts += [deep, sexpr_spec("(always " * 3000 + "answer" + ")" * 3000)]
    assert check_each(tmp_path, texts, ".txt") == []


# ------------------------------------------------------------------------------------------ prompt files

def test_fuzzed_prompt_files_end_in_success_or_a_located_error(tmp_path):
    rng = random.Random(4)
    react = ltlagent.load(SPECS / "react.yaml")
    examples = [e.text for e in react.prompt.examples]
    spec = str(SPECS / "react.yaml")
    cases = []
    for i in range(FUZZ_CASES):
        kind = rng.choice([".txt", ".txt", ".json", ".py"])
        chosen = rng.sample(examples, k=min(len(examples), rng.randint(1, 2)))
        if kind == ".txt":
            text = "\n---\n".join(chosen)
            text = text.replace("\n", rng.choice(["\n", "\r\n", "\r"]))
        else:
            text = json.dumps(chosen, ensure_ascii=rng.random() < 0.5)
        cases.append((kind, mutate(rng, text, NASTY + ["---\n", "Thought:", "Action: ", "\nAnswer:", "[", "]"])))
    problems = fuzz(list(enumerate(cases)), lambda item: run_cli(
        ["verify", spec, str(write(tmp_path / f"prompt{item[0]}{item[1][0]}", item[1][1]))]))
    assert problems == []


# ---------------------------------------------------------------------------- real command-line processes

BROKEN_INPUTS = {
    "control.yaml": 'name: r\nsegments:\n  a: {tag: "A:"}\nbehavior:\n  - "G a \x7f"\n',
    "escape.yaml": 'name: r\nsegments:\n  a: {tag: "A:"}\n  c: {tag: "C:", choice: [x]}\nbehavior:\n  - \'c."\\q" U a\'\n',
    "date.yaml": 'name: r\ndescription: 2024-13-45\nsegments:\n  a: {tag: "A:"}\n',
    "deep.txt": sexpr_spec("(next question " * 250 + "answer" + ")" * 250),
    "binary.yaml": "\x7fELF\x02\x01\x01\x00\x00\x1b[2J\x00" + "\udcd0" + "\x00" * 20 + "\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN_INPUTS))
def test_the_cli_reports_inputs_that_used_to_be_internal_errors_located(tmp_path, name):
    path = write(tmp_path / name, BROKEN_INPUTS[name])
    done = subprocess.run([sys.executable, "-m", "ltlagent", "check", str(path)], capture_output=True,
                          env={**os.environ, "NO_COLOR": "1"}, timeout=120)
    output = done.stdout.decode("utf-8") + done.stderr.decode("utf-8")
    assert done.returncode == 1, output
    assert verdict_problem(done.returncode, output) is None
    assert re.search(rf"{re.escape(str(path))}:\d+:\d+: ", output)
    assert "^" in output
