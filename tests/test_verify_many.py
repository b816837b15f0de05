"""`ltlagent verify` over many prompts at once: folders, .json and .py literal lists (never evaluated),
'---'-separated text; a summary line per file and violations located inside each file."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from paths import REPO

GOOD = ("Question: What is the capital of France?\\nThought: It is Paris.\\nAnswer: Paris")
BAD = ("Question: What is 2 + 2?\\nAnswer: 4")  # cot needs a thought first


def verify(*args):
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "ltlagent", "verify", "specs/cot.yaml", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)


def test_folder_of_prompt_files(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "a.txt").write_text(GOOD.replace("\\n", "\n") + "\n---\n" + GOOD.replace("\\n", "\n") + "\n")
    (folder / "b.json").write_text(json.dumps({"examples": [GOOD.replace("\\n", "\n"), BAD.replace("\\n", "\n")]},
                                              indent=1))
    (folder / "c.py").write_text(f'[\n    "{GOOD}",\n]\n')
    (folder / "notes.csv").write_text("ignored")
    done = verify(str(folder))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert f"{folder / 'a.txt'}: 2 of 2 example(s) ok" in lines
    assert f"{folder / 'b.json'}: 1 of 2 example(s) ok" in lines
    assert f"{folder / 'c.py'}: 1 of 1 example(s) ok" in lines
    assert not any("notes.csv" in line for line in lines)
    # the violation points into the JSON file, at the escaped "\nAnswer:" of the second string
    error = next(line for line in lines if "error" in line)
    location = error.split("example 2: ", 1)[1].split(": ", 1)[0]
    path, line, col = location.rsplit(":", 2)
    raw = (folder / "b.json").read_text().splitlines()[int(line) - 1]
    assert path == str(folder / "b.json") and raw[int(col) - 1:].startswith("Answer:")


def test_literal_files_are_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.py"
    evil.write_text(f"__import__('pathlib').Path({str(marker)!r}).write_text('x')\n")
    done = verify(str(evil))
    assert done.returncode == 1 and not marker.exists()
    assert "expected a list of example strings" in done.stderr and "Traceback" not in done.stderr


def test_default_examples_still_come_from_the_spec():
    done = verify()
    assert done.returncode == 0 and "specs/cot.yaml: 1 of 1 example(s) ok" in done.stdout
