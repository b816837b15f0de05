"""``check`` passing means ``run`` accepts (issue 9): whatever the runtime would refuse on the spec alone,
``check`` reports located with exit 1; and what ``check`` passes, the runtime's Decoder and ToolBox build."""
from __future__ import annotations

import contextlib
import io
import os
import random
import sys
import textwrap

import pytest

import ltlagent
from ltlagent.cli import main
from paths import SPECS, reference_spec_paths
from tiers import FAST

HEAD = "name: t\nsegments:\n  q: {tag: 'Q:', by: env, input: task}\n"


def cli(args, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(args)
    return code, out.getvalue()


def check_text(tmp_path, text: str, name: str = "spec.yaml") -> tuple[int, str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return cli(["check", str(path)])


REFUSED = {
    # (a recursive grammar decodes now, on llguidance: tests/test_cfg_content.py)
    "refused grammar terminal": (HEAD + "  a: {tag: 'A:', grammar: 'start: /(?=x)x/'}\n", 4, "look-around"),
    "look-around": (HEAD + "  a: {tag: 'A:', regex: '(?=x)x'}\n", 4, "look-arounds"),
    "anchor": (HEAD + "  a: {tag: 'A:', regex: '^x$'}\n", 4, "anchors"),
    "unsupported schema": (HEAD + "  a: {tag: 'A:', json: {not: {type: string}}}\n", 4, "Unsupported JSON Schema"),
    "unbound env choice": (HEAD + "  a: {tag: 'A:'}\n  e: {tag: 'E:', by: env, choice: [pass, fail]}\n", 5,
                           "env choice segment 'e' is bound to nothing"),
    "prefix tags": (HEAD + "  a: {tag: 'A'}\n  b: {tag: 'A:'}\n", 5, "starts with the tag 'A'"),
    "missing module": (HEAD + "  a: {tag: 'A:'}\n  o: {tag: 'O:', by: env, tool: T}\ntools:\n"
                       "  T: {function: 'no_such_module_xyz:run'}\n", 7, "cannot find module 'no_such_module_xyz'"),
    "missing parent package": (HEAD + "  a: {tag: 'A:'}\n  o: {tag: 'O:', by: env, tool: T}\ntools:\n"
                               "  T: {function: 'no_such_pkg_xyz.sub:run'}\n", 7, "cannot find module"),
    "missing function": (HEAD + "  a: {tag: 'A:'}\n  o: {tag: 'O:', by: env, tool: T}\ntools:\n"
                         "  T: {function: 'json:no_such_function'}\n", 7, "has no attribute 'no_such_function'"),
    "not callable": (HEAD + "  a: {tag: 'A:'}\n  o: {tag: 'O:', by: env, tool: T}\ntools:\n"
                     "  T: {function: 'json:__doc__'}\n", 7, "is not callable"),
    "missing entry point": (HEAD + "  a: {tag: 'A:'}\n  o: {tag: 'O:', by: env, tool: T}\ntools:\n"
                            "  T: {entry_point: no_such_entry_point_xyz}\n", 7, "no entry point"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_check_refuses_what_run_would_refuse_located(tmp_path, case):
    text, line, message = REFUSED[case]
    code, output = check_text(tmp_path, text + "behavior:\n  - q\n" if "behavior" not in text else text)
    assert code == 1, output
    assert f"spec.yaml:{line}:" in output and message in output and "^" in output


def test_a_function_tool_is_found_without_calling_it(tmp_path):
    (tmp_path / "tool_mod_fe.py").write_text("CALLS = []\ndef run(text):\n    CALLS.append(text)\n    return text\n")
    sys.path.insert(0, str(tmp_path))
    try:
        code, output = check_text(tmp_path, HEAD + "  a: {tag: 'A:'}\n  o: {tag: 'O:', by: env, tool: T}\n"
                                  "tools:\n  T: {function: 'tool_mod_fe:run'}\nbehavior:\n  - pattern: q a o\n")
        assert code == 0, output
        assert sys.modules["tool_mod_fe"].CALLS == []  # imported to find the attribute, never called
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("tool_mod_fe", None)


def test_a_missing_module_is_not_imported_at_all(tmp_path, monkeypatch):
    import importlib

    imported = []
    monkeypatch.setattr(importlib, "import_module", lambda name, *a: imported.append(name))
    from ltlagent.compiler.tools import function_problem

    assert "cannot find module" in function_problem("no_such_module_xyz:run")
    assert imported == []


def test_run_refuses_a_task_spec_without_task():
    code, output = cli(["run", str(SPECS / "react.yaml")])
    assert code == 2
    assert "--task" in output and "'question'" in output


# ------------------------------------------------------------------------------- check => runtime accepts

@pytest.fixture(scope="module")
def runtime(tiny_tokenizer):
    from ltlagent.runtime.agent import Runtime

    return Runtime.for_tokenizer(tiny_tokenizer, tiny_tokenizer.eos_token_id)


def runtime_accepts(runtime, spec) -> None:
    """Build what ``ltlagent run`` builds from a spec: the ToolBox and the Decoder (raises if refused)."""
    from ltlagent.runtime.tools import ToolBox

    ToolBox.for_spec(spec, builtins=("search", "lookup", "calculator"))
    runtime.decoder(ltlagent.compile(spec))


GOOD_CONTENTS = ["regex: '[a-z]+'", "regex: '[0-9]{1,3}(,[0-9]{3})*'", "regex: '(?i)yes|no'",
                 "regex: '\\\\d+\\\\.\\\\d*'", "regex: 'x*?'", "grammar: 'start: \"a\" start | \"b\"'",
                 "grammar: 'start: WORD+\\n%import common.WORD'", "json: {type: integer}", "json: {enum: [a, b]}",
                 "json: {type: string, maxLength: 5}", "end: ' END'", "choice: [a, ab]", "choice: [yes, no]"]
BAD_CONTENTS = ["regex: '(?=a)a'", "regex: '(a)\\1'", "regex: '^a'", "regex: 'a$'", "regex: '\\\\bfoo'",
                "regex: 'a{'", "regex: '[[]'", "grammar: 'start: /(?=a)a/'",
                "grammar: 'start: \"(\" start \")\" | \"x\"'", "json: {type: string, pattern: '(?=a)a'}",
                "json: {not: {type: string}}", "end: ''", "choice: [a, ab], end: ''"]
CONTENTS = GOOD_CONTENTS * 6 + BAD_CONTENTS
TAGS = ["A:", "B:", "[A]", "C:"] * 3 + ["A", "Answer:", "Answer: "]
BINDINGS = ["input: user", "tool: search", "tool: T"] * 3 + [""]
TOOL_TARGETS = ["{builtin: calculator}", "{function: 'json:dumps'}"] * 4 + [
    "{function: 'json:nope'}", "{function: 'nope_xyz:f'}", "{entry_point: nope_xyz}"]


def random_spec(rng: random.Random) -> str:
    tag_a, tag_b = rng.sample(TAGS, 2)
    env = "choice: [pass, fail]" if rng.random() < 0.5 else ""
    binding = rng.choice(BINDINGS)
    env_fields = ", ".join(f for f in (env, binding) if f)
    return textwrap.dedent(f"""\
        name: fz
        segments:
          q: {{tag: 'Q:', by: env, input: task}}
          a: {{tag: '{tag_a}', {rng.choice(CONTENTS)}, max_tokens: 12}}
          b: {{tag: '{tag_b}', {rng.choice(CONTENTS)}, max_tokens: 12}}
          e: {{tag: 'E:', by: env{", " + env_fields if env_fields else ""}}}
        tools:
          T: {rng.choice(TOOL_TARGETS)}
        behavior:
          - pattern: q (a e)* b
        limits: {{max_segments: 8, max_tokens: 120}}
        """)


def test_what_check_passes_the_runtime_accepts(tmp_path, runtime):
    shipped = [p.read_text(encoding="utf-8") for p in sorted(SPECS.glob("*.yaml"))]
    reference = [(p.read_text(encoding="utf-8"), ".txt") for p in reference_spec_paths()]
    rng = random.Random(7)
    cases = [(t, ".yaml") for t in shipped] + reference + [(random_spec(rng), ".yaml") for _ in range(150)]
    passed = refused = 0
    for i, (text, suffix) in enumerate(cases):
        code, output = check_text(tmp_path, text, f"case{i}{suffix}")
        assert code in (0, 1) and "internal error" not in output, output
        if code == 0:
            runtime_accepts(runtime, ltlagent.load(tmp_path / f"case{i}{suffix}"))
            passed += 1
        else:
            refused += 1
    assert passed >= len(shipped) + len(reference) + 20 and refused >= 20, (passed, refused)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_check_refuses_the_runtime_refuses_too(tmp_path, runtime, case):
    """The refusals are real: past the front end, the runtime (ToolBox or Decoder) fails on each."""
    from ltlagent.compiler.content import ContentError
    from ltlagent.runtime.tools import ToolBox, ToolError

    text, _, _ = REFUSED[case]
    spec = _bypass_front_end(text + "behavior:\n  - q\n")
    if spec is None:  # refused while loading: the content cannot even be translated for the runtime
        return
    with pytest.raises((ToolError, ContentError, ValueError)):
        ToolBox.for_spec(spec, builtins=("search", "lookup", "calculator"))
        decoder = runtime.decoder(ltlagent.compile(spec))
        if any(s.by == "env" and s.options and s.tool is None and s.input is None for s in spec.segments):
            raise ValueError("an env choice bound to nothing gets the fallback text, never an option")
        del decoder


def _bypass_front_end(text: str):
    """The spec loaded without the decodability check, or None when it fails another check."""
    from ltlagent.compiler import checks, spec as spec_module

    original = spec_module.check_decodable
    spec_module.check_decodable = lambda *a, **k: None
    try:
        return ltlagent.load(text)
    except ltlagent.SpecError:
        return None
    finally:
        spec_module.check_decodable = original
        del checks


# ------------------------------------------------------------------------------------- end of the input

def user_lines(*lines):
    from ltlagent.runtime.environment import EndOfInput

    queue = list(lines)

    def ask(segment):
        if not queue:
            raise EndOfInput(segment.name)
        return queue.pop(0)
    return ask


def test_end_of_input_ends_a_chat_normally_where_the_spec_allows_it(runtime, tiny_tokenizer):
    from ltlagent.runtime.agent import prompt_text
    from ltlagent.runtime.environment import Environment
    from ltlagent.runtime.adversarial import RandomLogits
    from samplers import Sampler
    from ltlagent.runtime.trace import verdict

    compiled = ltlagent.compile(ltlagent.load(SPECS / "chat.yaml"))
    decoder, ends = runtime.decoder(compiled), set()
    for seed in range(4 if FAST else 8):
        events = []
        result = decoder.run(RandomLogits(len(tiny_tokenizer), seed), Sampler(),
                             Environment("", None, ask_user=user_lines("Hello")), prompt_text(compiled.spec),
                             lambda kind, payload: events.append(kind))
        assert verdict(compiled, result)["satisfied"] and result.accepted
        assert [r.name for r in result.segments].count("user") == 1
        assert not result.transcript.rstrip().endswith("User:")  # the tag of the turn that never came is dropped
        ends.add(result.stopped_by)
        assert ("end_of_input" in events) == (result.stopped_by == "end of input")
    assert "end of input" in ends


def test_end_of_input_where_the_spec_needs_more_is_an_error(runtime, tiny_tokenizer):
    from ltlagent.runtime.decode import DecodeError
    from ltlagent.runtime.environment import Environment
    from ltlagent.runtime.adversarial import RandomLogits
    from samplers import Sampler

    spec = ltlagent.load("name: two\nsegments:\n  user: {tag: 'User:', by: env, input: user}\n"
                         "  reply: {tag: 'Reply:', max_tokens: 5}\nbehavior:\n  - pattern: user reply user reply\n")
    decoder = runtime.decoder(ltlagent.compile(spec))
    with pytest.raises(DecodeError, match="the input ended before 'user'"):
        decoder.run(RandomLogits(len(tiny_tokenizer), 0), Sampler(), Environment("", None, ask_user=user_lines("hi")), "")


@pytest.mark.model
def test_the_chat_agent_ends_at_the_end_of_its_input(tmp_path):
    import json
    import subprocess

    trace = tmp_path / "chat.jsonl"
    done = subprocess.run([sys.executable, "-m", "ltlagent", "run", str(SPECS / "chat.yaml"), "--trace", str(trace)],
                          input="Hello\n", capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("User:") == 1 + done.stdout.count("User: (end of input)")
    assert "User: Hello" in done.stdout and "User: User:" not in done.stdout
    summary = json.loads(trace.read_text(encoding="utf-8").splitlines()[-1])
    assert summary["type"] == "summary" and summary["verdict"]["satisfied"]
    assert summary["stopped_by"] in ("end of input", "eos", "end")
