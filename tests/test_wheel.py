"""The wheel: build it from a copy of the repository, install it into a fresh venv, run the console script.

Slow (about a minute; needs PyPI for the isolated build backend and the runtime dependencies):
``python -m pytest -m slow tests/test_wheel.py``. The build runs in a copy of the work tree so the
repository gets no ``build/`` or ``*.egg-info`` left behind.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_TOP_LEVEL = ("compiler", "runtime", "grammars", "specs", "tests", "bench")
COPY_IGNORE = shutil.ignore_patterns(".git", ".hypothesis", ".pytest_cache", ".benchmarks", "build", "dist",
                                     "*.egg-info", "__pycache__", "*.pyc", ".venv")


def _run(args, cwd, timeout=600, env=None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


def _clean_env() -> dict[str, str]:
    """The environment without this interpreter's venv/path settings, so the new venv stands alone."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME",
                                                            "PIP_REQUIRE_VIRTUALENV", "LTLAGENT_DEBUG")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1", TERM="dumb")
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(REPO, source, ignore=COPY_IGNORE)
    outdir = tmp / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", outdir, source], cwd=tmp, env=_clean_env())
    wheels = sorted(outdir.glob("ltlagent-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", root], cwd=root.parent, env=_clean_env())
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    light = [r for r in _requirements(wheel) if _name(r) not in RUNTIME_ONLY]
    _run([python, "-m", "pip", "install", "--quiet", *light], cwd=root.parent, env=_clean_env())
    _run([python, "-m", "pip", "install", "--quiet", "--no-deps", wheel], cwd=root.parent, env=_clean_env())
    return root


# The runtime's heavy dependencies: left out of the fresh venv, which proves the compiler and the CLI's
# compile-side commands run without them (they are imported only inside the runtime).
# outlines-core is not among them: loading a spec builds its content's index (compiler/content.py), so
# that what loads is what the runtime can decode; it is a small extension without torch.
RUNTIME_ONLY = {"torch", "transformers", "gguf", "safetensors"}


def _requirements(wheel: Path) -> list[str]:
    """The wheel's unconditional Requires-Dist entries."""
    metadata = zipfile.ZipFile(wheel).read(f"{_dist_info_prefix(wheel)}METADATA").decode()
    return [line.split(":", 1)[1].strip() for line in metadata.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def _name(requirement: str) -> str:
    import re

    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_wheel_declares_the_runtime_dependencies(wheel):
    names = {_name(r) for r in _requirements(wheel)}
    assert RUNTIME_ONLY <= names and {"lark", "pydantic", "pyyaml", "typer"} <= names


def _dist_info_prefix(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{name}-{version}.dist-info/"


def test_wheel_holds_only_the_ltlagent_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = _dist_info_prefix(wheel)
    strays = [n for n in names if not (n.startswith("ltlagent/") or n.startswith(dist_info))]
    assert not strays, f"files outside ltlagent/ and {dist_info}: {strays}"
    for required in ("ltlagent/__init__.py", "ltlagent/cli.py", "ltlagent/compiler/api.py",
                     "ltlagent/grammars/ltl.lark", "ltlagent/grammars/pattern.lark", "ltlagent/grammars/sexpr.lark",
                     "ltlagent/specs/react.yaml", "ltlagent/specs/docs/demo.jsonl", "ltlagent/runtime/decode.py",
                     "ltlagent/runtime/tools/docstore.py", f"{dist_info}entry_points.txt"):
        assert required in names, f"{required} is missing from {wheel.name}"
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}entry_points.txt").decode()
    assert "ltlagent = ltlagent.cli:run" in entry_points


def test_wheel_ships_every_source_module(wheel):
    """No subpackage forgotten in pyproject's package list (runtime/eval once was)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in (("ltlagent", "ltlagent"), ("compiler", "ltlagent/compiler"), ("runtime", "ltlagent/runtime")):
        for source in (REPO / folder).rglob("*.py"):
            shipped = f"{package}/{source.relative_to(REPO / folder).as_posix()}"
            assert shipped in names, f"{shipped} is missing from {wheel.name}"


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / (name + (".exe" if os.name == "nt" else ""))


def test_installed_console_script_runs(venv, tmp_path):
    ltlagent = _bin(venv, "ltlagent")
    done = _run([ltlagent, "--help"], cwd=tmp_path, env=_clean_env())
    assert "check" in done.stdout and "compile" in done.stdout
    done = _run([ltlagent, "check", REPO / "specs" / "react.yaml"], cwd=tmp_path, env=_clean_env())
    assert "environment" in done.stdout
    _run([ltlagent, "verify", REPO / "specs" / "react.yaml"], cwd=tmp_path, env=_clean_env())
    done = _run([ltlagent, "show", "-f", "mermaid", REPO / "specs" / "cot.yaml"], cwd=tmp_path, env=_clean_env())
    assert done.stdout.startswith("stateDiagram-v2")


def test_installed_package_is_the_wheel_and_ships_its_data(venv, tmp_path):
    """The venv imports ltlagent from its own site-packages (not the repo), with grammars and specs inside."""
    python = _bin(venv, "python")
    code = ("import ltlagent, importlib.resources as r; print(ltlagent.__file__); "
            "print(r.files('ltlagent.grammars').joinpath('ltl.lark').is_file()); "
            "print(r.files('ltlagent.specs').joinpath('react.yaml').is_file())")
    lines = _run([python, "-c", code], cwd=tmp_path, env=_clean_env()).stdout.split()
    assert Path(lines[0]).resolve().is_relative_to(venv.resolve())
    assert lines[1:] == ["True", "True"]


def test_site_packages_has_no_stray_top_level_packages(venv, wheel):
    python = _bin(venv, "python")
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv,
                     env=_clean_env()).stdout.strip())
    top_level = {p.name for p in site.iterdir()}
    assert "ltlagent" in top_level
    stray = sorted(top_level & set(FORBIDDEN_TOP_LEVEL))
    assert not stray, f"top-level names in site-packages that the wheel must not create: {stray}"
    record = (site / _dist_info_prefix(wheel) / "RECORD").read_text(encoding="utf-8")
    installed = {line.split(",")[0].split("/")[0] for line in record.splitlines() if line.strip()}
    assert installed <= {"ltlagent", _dist_info_prefix(wheel).rstrip("/"), "..", "__pycache__"}, installed
