"""The real ``ltlagent`` command line, beyond the golden cases: the reference s-expression specs, the
shipped specs, artifacts that round-trip, exit codes, SVG output, colour, and import hygiene.

Most tests run ``python -m ltlagent`` in a subprocess; a few call ``ltlagent.cli.main(argv)`` in-process
(it returns the exit code) where they need to monkeypatch.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ltlagent
from ltlagent.cli import main

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "specs").glob("*.yaml"))
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ibm-llm-agent-framework" / "specs"
REFERENCE_NAMES = ("chat", "cot", "direct", "pass", "pass_list", "react", "reflexion", "rewoo")
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(),
                                     reason=f"reference specs not found at {REFERENCE} (shared/ is not beside the repo)")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LTLAGENT_DEBUG", "FORCE_COLOR", "CLICOLOR_FORCE", "NO_COLOR")}
    env.update(TERM="dumb", COLUMNS="80", PYTHONIOENCODING="utf-8", **extra)
    return env


def ltlagent_cli(*args, cwd: Path = REPO, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "ltlagent", *map(str, args)], cwd=cwd, env=cli_env(**env),
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)
    for stream in (done.stdout, done.stderr):
        assert "Traceback" not in stream, stream
        assert "internal error" not in stream, stream
        assert "\x1b" not in stream, "ANSI escape codes in piped output"
    return done


def assert_round_trip(spec_path: Path, artifact: Path) -> None:
    """The artifact written by the CLI reads back to the same automaton as compiling in-process."""
    loaded = ltlagent.load_artifact(artifact)
    fresh = ltlagent.compile(ltlagent.load(spec_path))
    assert loaded.automaton == fresh.automaton
    assert loaded.alphabet == fresh.alphabet
    assert loaded.spec.name == fresh.spec.name
    assert [s.name for s in loaded.spec.segments] == [s.name for s in fresh.spec.segments]


# --- the reference s-expression specs (read from shared/, never copied into the repo) -----------------

@needs_reference
def test_reference_folder_has_the_eight_specs():
    assert sorted(p.stem for p in REFERENCE.glob("*.txt")) == sorted(REFERENCE_NAMES)


@needs_reference
@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_spec_compiles_round_trips_and_checks(name, tmp_path):
    spec = REFERENCE / f"{name}.txt"
    out = tmp_path / f"{name}.json"
    done = ltlagent_cli("compile", spec, "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{spec}: ") and done.stdout.rstrip().endswith(f"-> {out}")
    assert ltlagent.load(spec).dialect == "sexpr"
    assert_round_trip(spec, out)
    done = ltlagent_cli("check", spec)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "  error  " not in done.stdout


# --- the shipped YAML specs --------------------------------------------------------------------------

def test_there_are_shipped_specs():
    assert {p.stem for p in SPECS} >= {"react", "cot", "direct"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_shipped_spec_compiles_checks_and_verifies(spec, tmp_path):
    out = tmp_path / "artifact.json"
    done = ltlagent_cli("compile", spec, "-o", out)
    assert done.returncode == 0, done.stderr
    assert_round_trip(spec, out)
    done = ltlagent_cli("check", spec)
    assert done.returncode == 0, done.stdout + done.stderr
    if ltlagent.load(spec).prompt.examples:
        done = ltlagent_cli("verify", spec)
        assert done.returncode == 0, done.stdout + done.stderr


def test_compile_to_stdout_is_the_artifact_json():
    done = ltlagent_cli("compile", "specs/react.yaml")
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert data["format"] == "ltlagent.compiled-spec" and data["spec"]["name"] == "react"
    assert ltlagent.CompiledSpec.from_json(done.stdout).automaton == \
        ltlagent.compile(ltlagent.load(REPO / "specs" / "react.yaml")).automaton
    assert done.stderr.startswith("specs/react.yaml: ") and " states, " in done.stderr


def test_compile_is_deterministic(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert ltlagent_cli("compile", "specs/react.yaml", "-o", first).returncode == 0
    assert ltlagent_cli("compile", "specs/react.yaml", "-o", second).returncode == 0
    assert first.read_bytes() == second.read_bytes()


# --- exit codes and error output ---------------------------------------------------------------------

def test_help_lists_the_four_commands():
    done = ltlagent_cli("--help")
    assert done.returncode == 0
    for command in ("compile", "check", "verify", "show"):
        assert command in done.stdout


@pytest.mark.parametrize("args", [
    ("frobnicate", "specs/react.yaml"),
    ("show", "--format", "png", "specs/react.yaml"),
    ("show", "-f", "jpeg", "specs/react.yaml"),
    ("check",),
    ("check", "--frobnicate", "specs/react.yaml"),
    ("compile", "specs/react.yaml", "-o"),
], ids=["unknown-subcommand", "bad-format", "bad-format-short", "missing-spec", "unknown-option", "missing-option-value"])
def test_usage_errors_exit_2(args):
    done = ltlagent_cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Error" in done.stderr and done.stdout == ""


def test_bad_format_message_names_the_choices():
    done = ltlagent_cli("show", "--format", "png", "specs/react.yaml")
    assert "png" in done.stderr and "mermaid" in done.stderr


@pytest.mark.parametrize("args, needle", [
    (("check", "no/such/spec.yaml"), "no/such/spec.yaml: No such file or directory"),
    (("check", "specs"), "specs: Is a directory"),
    (("verify", "specs/react.yaml", "no/such.prompt"), "no/such.prompt: No such file or directory"),
    (("compile", "specs/react.yaml", "-o", "no/such/dir/out.json"), "No such file or directory"),
    (("show", "-f", "mermaid", "specs/react.yaml", "-o", "no/such/dir/out.md"), "No such file or directory"),
], ids=["missing-spec-file", "directory", "missing-prompt-file", "compile-output-dir", "show-output-dir"])
def test_file_errors_exit_1_without_traceback(args, needle):
    done = ltlagent_cli(*args)
    assert done.returncode == 1
    assert needle in done.stderr


def test_bad_specs_exit_1_with_a_located_error(tmp_path):
    """Every subcommand reports a broken spec the same way: ``file:line:col: message``, source, caret."""
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: broken\nsegments:\n  a: {tag: 'A:'}\nbehavior:\n  - F b\n", encoding="utf-8")
    for args in (("check",), ("compile",), ("verify",), ("show", "-f", "dot")):
        done = ltlagent_cli(*args, "broken.yaml", cwd=tmp_path)
        assert done.returncode == 1, args
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            "broken.yaml:5:7: undeclared proposition 'b'", "      - F b", "          ^",
            "  hint: declared segments: a"], args


def test_main_returns_exit_codes_in_process(capsys):
    assert main(["check", str(REPO / "specs" / "direct.yaml")]) == 0
    assert main(["frobnicate"]) == 2
    assert main(["check", str(REPO / "no-such-spec.yaml")]) == 1
    capsys.readouterr()


def test_show_writes_a_file(tmp_path):
    out = tmp_path / "react.mmd"
    done = ltlagent_cli("show", "-f", "mermaid", "specs/react.yaml", "-o", out)
    assert done.returncode == 0 and done.stdout == ""
    assert out.read_text(encoding="utf-8").startswith("stateDiagram-v2\n")
    assert f"wrote {out}" in done.stderr


# --- SVG ----------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_show_svg_with_graphviz(tmp_path):
    done = ltlagent_cli("show", "-f", "svg", "specs/react.yaml")
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout and done.stdout.rstrip().endswith("</svg>")
    out = tmp_path / "react.svg"
    assert ltlagent_cli("show", "--format", "svg", "specs/react.yaml", "-o", out).returncode == 0
    assert "<svg" in out.read_text(encoding="utf-8")


def test_show_svg_without_graphviz(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    code = main(["show", "-f", "svg", str(REPO / "specs" / "react.yaml")])
    captured = capsys.readouterr()
    assert code == 1
    assert "Graphviz" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


# --- colour -------------------------------------------------------------------------------------------

def test_piped_output_has_no_colour_even_when_asked_for_nothing():
    """Without NO_COLOR, piped output still has no ANSI codes (click strips them off a non-tty)."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    done = subprocess.run([sys.executable, "-m", "ltlagent", "check", "specs/react.yaml"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "ok" in done.stdout
    assert "\x1b" not in done.stdout + done.stderr


def _run_on_a_tty(args, **env_extra) -> bytes:
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(env_extra)
    try:
        subprocess.run([sys.executable, "-m", "ltlagent", *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                       stdout=slave, stderr=slave, timeout=120)
    finally:
        os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    return data


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_tty_output_is_coloured():
    assert b"\x1b[" in _run_on_a_tty(["check", "specs/react.yaml"])


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_no_color_is_honoured_on_a_tty():
    output = _run_on_a_tty(["check", "specs/react.yaml"], NO_COLOR="1")
    assert b"ok" in output
    assert b"\x1b" not in output


# --- import hygiene -----------------------------------------------------------------------------------

def test_every_subcommand_stays_free_of_heavy_imports(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from ltlagent.cli import main
        assert main(['check', 'specs/react.yaml']) == 0
        for argv in (['compile', 'specs/react.yaml', '-o', {str(tmp_path / 'a.json')!r}],
                     ['verify', 'specs/react.yaml'], ['show', '-f', 'mermaid', 'specs/react.yaml'],
                     ['--help']):
            main(argv)
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'outlines')))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=cli_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# --- robustness ---------------------------------------------------------------------------------------

def test_large_bounded_operator_finishes_quickly(tmp_path):
    spec = tmp_path / "bounded.yaml"
    spec.write_text("name: bounded\nsegments:\n  a: {tag: 'A:'}\n  b: {tag: 'B:'}\nbehavior:\n"
                    "  - F[0,20000] a\n", encoding="utf-8")
    try:
        done = subprocess.run([sys.executable, "-m", "ltlagent", "check", str(spec)], env=cli_env(),
                              capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("ltlagent check did not finish within 15 s")
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr
