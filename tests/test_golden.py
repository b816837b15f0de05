"""Golden tests: run the real ``ltlagent`` CLI on every spec in tests/golden/ and compare its output.

Convention (one case per spec file in tests/golden/, flat, no sub-folders):

``NAME.yaml`` or ``NAME.txt``
    The spec: YAML, or the reference s-expression dialect (``.txt``). Exactly one per NAME.
    Its FIRST line may be a comment ``# cmd: ARGS`` (``; cmd: ARGS`` also works in s-expression
    files) choosing the subcommand and its options, e.g. ``# cmd: verify`` or
    ``# cmd: show --format mermaid``; without it the command is ``check``. The command line is
    ``python -m ltlagent ARGS NAME.yaml [NAME.prompt]``, run with cwd = tests/golden so every path
    in the output is the case's relative file name.
``NAME.prompt`` (optional)
    A prompt file (examples separated by lines of ``---``), appended as the second argument
    (for ``verify``).
``NAME.out`` (required)
    The expected output::

        $ ltlagent ARGS NAME.yaml [NAME.prompt]
        exit: N
        <stdout, exactly>
        --- stderr ---          (only when stderr is not empty)
        <stderr, exactly>

    A stdout that does not end with a newline is followed by the line ``(no newline at end of
    stdout)``. The only normalisation is that timings ``in 12.3 ms`` become ``in <ms> ms``.
``NAME.xfail`` (optional)
    A known bug: the file holds the reason, and the case is ``xfail(strict=True)``. Its ``.out`` is
    written by hand and holds the output the CLI SHOULD print. When the bug is fixed, delete
    ``NAME.xfail``, regenerate, and review the diff.

Every case also asserts that the output has no ANSI escape codes and no Python traceback. The
subprocess runs with NO_COLOR=1, TERM=dumb, COLUMNS=80 and without LTLAGENT_DEBUG.

An expected file (``.out``, ``.prompt``, ``.xfail``) without a spec, a spec without ``.out``, two specs
with the same NAME, or any other file in the folder fails ``test_golden_folder_is_consistent``.

Regenerating: ``LTLAGENT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` rewrites the ``.out``
of every case that has no ``.xfail`` from the CLI's current output, and those cases PASS (review the
result with ``git diff tests/golden``). Cases with a ``.xfail`` are never rewritten, and still run as
strict xfails.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
SPEC_SUFFIXES = (".yaml", ".txt")
COMPANION_SUFFIXES = (".out", ".prompt", ".xfail")
UPDATE = os.environ.get("LTLAGENT_UPDATE_GOLDEN") == "1"
CMD_LINE = re.compile(r"^[#;]+\s*cmd:\s*(.+?)\s*$")
TIMING = re.compile(r"\bin \d+(?:\.\d+)? ms\b")
STDERR_MARK = "--- stderr ---"
NO_NEWLINE = "(no newline at end of stdout)"


def spec_files() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.suffix in SPEC_SUFFIXES)


def case_args(spec: Path) -> list[str]:
    """The CLI arguments of a case: ``ARGS`` from its ``cmd:`` line (default ``check``), the spec, the prompt."""
    first = spec.read_bytes().split(b"\n", 1)[0].decode("utf-8", errors="replace")
    match = CMD_LINE.match(first)
    args = shlex.split(match.group(1)) if match else ["check"]
    args.append(spec.name)
    prompt = spec.with_suffix(".prompt")
    if prompt.exists():
        args.append(prompt.name)
    return args


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LTLAGENT_DEBUG", "FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS")}
    env.update(NO_COLOR="1", TERM="dumb", COLUMNS="80", PYTHONIOENCODING="utf-8", PYTHONUTF8="1")
    return env


def run_cli(args: list[str], cwd: Path = GOLDEN, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ltlagent", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def render(args: list[str], done: subprocess.CompletedProcess) -> str:
    """The ``.out`` text of a run (see the module docstring)."""
    out = [f"$ ltlagent {shlex.join(args)}\n", f"exit: {done.returncode}\n"]
    if done.stdout:
        out.append(done.stdout if done.stdout.endswith("\n") else done.stdout + "\n" + NO_NEWLINE + "\n")
    if done.stderr:
        out.append(f"{STDERR_MARK}\n{done.stderr}")
    return TIMING.sub("in <ms> ms", "".join(out))


def _params():
    for spec in spec_files():
        xfail = spec.with_suffix(".xfail")
        marks = [pytest.mark.xfail(strict=True, reason=xfail.read_text(encoding="utf-8").strip())] \
            if xfail.exists() else []
        yield pytest.param(spec, id=spec.name, marks=marks)


@pytest.mark.parametrize("spec", list(_params()))
def test_golden(spec: Path):
    """Run one case and compare its rendered output with ``NAME.out``; also: no ANSI codes, no traceback."""
    args = case_args(spec)
    done = run_cli(args)
    for stream in (done.stdout, done.stderr):
        assert "\x1b" not in stream, f"ANSI escape codes in the output of {spec.name}"
        assert "Traceback" not in stream, f"a traceback in the output of {spec.name}:\n{stream}"
    actual = render(args, done)
    expected_file = spec.with_suffix(".out")
    if UPDATE and not spec.with_suffix(".xfail").exists():
        expected_file.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert expected_file.exists(), f"{expected_file.name} is missing (LTLAGENT_UPDATE_GOLDEN=1 writes it)"
    expected = expected_file.read_text(encoding="utf-8")
    assert actual == expected, f"output of `ltlagent {shlex.join(args)}` differs from {expected_file.name}"


def test_golden_folder_is_consistent():
    """Every spec has its ``.out``; every ``.out``, ``.prompt`` and ``.xfail`` belongs to a spec; nothing else."""
    problems = []
    names: dict[str, list[str]] = {}
    for path in sorted(GOLDEN.iterdir()):
        if path.is_dir():
            problems.append(f"{path.name}/: sub-folders are not cases")
        elif path.suffix in SPEC_SUFFIXES:
            names.setdefault(path.stem, []).append(path.name)
        elif path.suffix not in COMPANION_SUFFIXES:
            problems.append(f"{path.name}: not a spec (.yaml, .txt) nor an expectation (.out, .prompt, .xfail)")
    for stem, specs in names.items():
        if len(specs) > 1:
            problems.append(f"{' and '.join(specs)}: two specs share the case name {stem!r}")
        if not (GOLDEN / f"{stem}.out").exists() and not UPDATE:
            problems.append(f"{specs[0]}: no expected output {stem}.out")
    for path in sorted(GOLDEN.iterdir()):
        if path.suffix in COMPANION_SUFFIXES and path.stem not in names:
            problems.append(f"{path.name}: orphan, no {path.stem}.yaml or {path.stem}.txt")
    assert not problems, "tests/golden is inconsistent:\n" + "\n".join(problems)


def test_golden_has_enough_cases():
    """The folder holds a broad set: at least 30 cases, good and broken, of every subcommand."""
    specs = spec_files()
    assert len(specs) >= 30
    commands = {case_args(s)[0] for s in specs}
    assert {"check", "verify", "show", "compile"} <= commands
    assert any(s.suffix == ".txt" for s in specs) and any(s.with_suffix(".prompt").exists() for s in specs)


def test_render_convention():
    """The ``.out`` layout: command, exit code, stdout, then stderr after a marker; timings normalised."""
    done = subprocess.CompletedProcess([], 1, stdout="a\nb", stderr="x.yaml: 3 states in 12.5 ms\n")
    assert render(["check", "x.yaml"], done) == (
        "$ ltlagent check x.yaml\nexit: 1\na\nb\n(no newline at end of stdout)\n--- stderr ---\n"
        "x.yaml: 3 states in <ms> ms\n")
    assert render(["check", "x.yaml"], subprocess.CompletedProcess([], 0, "", "")) == \
        "$ ltlagent check x.yaml\nexit: 0\n"
