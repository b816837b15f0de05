"""The few-shot prompts of the reference framework (``../shared/reference/ibm-llm-agent-framework/prompts``,
one folder per agent, one JSON list per dataset) verified against the framework's own s-expression specs,
as ``make verify-reference`` does: 76 of the 86 examples are well formed, and these 10 break their spec."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from ltlagent.cli import main
from paths import REFERENCE_SPECS, needs_reference

PROMPTS = REFERENCE_SPECS.parent / "prompts"

# file -> (examples ok, examples in the file)
SUMMARIES = {
    "cot/fever_v1.0.json": (3, 3), "cot/gsm8k_main.json": (8, 8), "cot/hotpot_qa.json": (6, 6),
    "cot/trivia_qa.json": (1, 1),
    "direct/gsm8k_main.json": (8, 8), "direct/hotpot_qa.json": (6, 6), "direct/trivia_qa.json": (1, 1),
    "granite_react/hotpot_qa.json": (6, 6),
    "pass/fever_v1.0.json": (0, 3), "pass/gsm8k_main.json": (1, 1), "pass/hotpot_qa.json": (6, 6),
    "pass/trivia_qa.json": (1, 1),
    "pass_list/gsm8k_main.json": (1, 1), "pass_list/hotpot_qa.json": (5, 6), "pass_list/trivia_qa.json": (1, 1),
    "react/fever_v1.0.json": (3, 3), "react/gsm8k_main.json": (1, 1), "react/hotpot_qa.json": (6, 6),
    "react/trivia_qa.json": (1, 1),
    "reflexion/hotpot_qa.json": (5, 6),
    "rewoo/fever_v1.0.json": (0, 3), "rewoo/gsm8k_main.json": (0, 1), "rewoo/hotpot_qa.json": (6, 6),
    "rewoo/trivia_qa.json": (0, 1),
}
# (file, example, line:col, message): why each of the 10 breaks its spec
VIOLATIONS = {
    # PASS on FEVER: [Plan], a tag the spec does not declare (its plan is [Thought]): [Action] follows the question
    ("pass/fever_v1.0.json", 1, "2:225", "segment 'action' is not allowed here"),
    ("pass/fever_v1.0.json", 2, "3:192", "segment 'action' is not allowed here"),
    ("pass/fever_v1.0.json", 3, "4:229", "segment 'action' is not allowed here"),
    # PASS-list and Reflexion on HotpotQA: a fourth search round where the spec allows three
    ("pass_list/hotpot_qa.json", 1, "2:1174", "segment 'plan' is not allowed here"),
    ("reflexion/hotpot_qa.json", 1, "2:1137", "segment 'thought' is not allowed here"),
    # ReWOO: steps without their [Plan] (and [Action Label]), an example without its [Answer] (the solver)
    ("rewoo/fever_v1.0.json", 1, "2:336", "segment 'action-label' is not allowed here"),
    ("rewoo/fever_v1.0.json", 2, "3:297", "segment 'action-label' is not allowed here"),
    ("rewoo/fever_v1.0.json", 3, "4:328", "segment 'action-label' is not allowed here"),
    ("rewoo/gsm8k_main.json", 1, "2:892", "the example ends before the spec is satisfied; the shortest way to "
                                          "finish is: solver"),
    ("rewoo/trivia_qa.json", 1, "2:491", "segment 'action' is not allowed here"),
}
ERROR = re.compile(r"^\s*error\s+example (\d+): (.+?):(\d+:\d+): (.*)$")
SUMMARY = re.compile(r"^(.+): (\d+) of (\d+) example\(s\) ok$")


def verify_folder(folder) -> tuple[int, str]:
    spec = REFERENCE_SPECS / f"{folder.name.removeprefix('granite_')}.txt"  # as make verify-reference
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["verify", str(spec), str(folder)])
    return code, out.getvalue()


@needs_reference
def test_the_reference_prompts_have_the_known_verdicts():
    summaries, violations, codes = {}, set(), {}
    for folder in sorted(p for p in PROMPTS.iterdir() if p.is_dir()):
        code, output = verify_folder(folder)
        codes[folder.name] = code
        for line in output.splitlines():
            if match := SUMMARY.match(line):
                summaries[_short(match[1])] = (int(match[2]), int(match[3]))
            elif match := ERROR.match(line):
                violations.add((_short(match[2]), int(match[1]), match[3], match[4]))
    assert summaries == SUMMARIES
    assert violations == VIOLATIONS
    assert sum(ok for ok, _ in summaries.values()) == 76 and sum(n for _, n in summaries.values()) == 86
    assert {name for name, code in codes.items() if code} == {"pass", "pass_list", "reflexion", "rewoo"}


def _short(path: str) -> str:
    return str(Path(path).relative_to(PROMPTS))


@pytest.mark.skipif(not PROMPTS.is_dir(), reason="reference prompts not found")
def test_every_reference_prompt_folder_has_a_spec():
    assert all((REFERENCE_SPECS / f"{p.name.removeprefix('granite_')}.txt").is_file()
               for p in PROMPTS.iterdir() if p.is_dir())
