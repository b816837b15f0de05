"""Evaluation reports: where results go, one summary row per results file, the table, and the PNG plot.

Needs no torch; matplotlib only for ``plot`` (the ``plot`` extra)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

FREE_SUFFIX = "-unconstrained"
MEANS = ("em", "f1", "accuracy", "satisfied", "parse_failed", "seconds", "model_tokens", "segments")


class ReportError(ValueError):
    """A report that cannot be made (e.g. --plot without matplotlib)."""


def results_path(out: Path, spec_name: str, task: str, unconstrained: bool) -> Path:
    """The results file of one spec: ``out`` itself when it names a .jsonl file, else
    ``out/<spec>-<task>.jsonl``; ``-unconstrained`` before the suffix for the ablation."""
    path = out if out.suffix == ".jsonl" else out / f"{spec_name}-{task}.jsonl"
    return path.with_name(path.stem + FREE_SUFFIX + path.suffix) if unconstrained else path


def both_modes(path: Path) -> list[tuple[str, Path]]:
    """The constrained and unconstrained results files that belong with ``path`` (either one)."""
    stem = path.stem[:-len(FREE_SUFFIX)] if path.stem.endswith(FREE_SUFFIX) else path.stem
    return [("constrained", path.with_name(stem + path.suffix)),
            ("unconstrained", path.with_name(stem + FREE_SUFFIX + path.suffix))]


@dataclass(frozen=True)
class Row:
    """The means over one results file."""

    agent: str
    mode: str
    items: int
    means: dict


def read_rows(path: Path) -> list[dict]:
    """The JSON lines of a results file (torn or blank lines skipped)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def summarize(agent: str, mode: str, path: Path) -> Optional[Row]:
    """The row of one results file (None when it does not exist or is empty)."""
    rows = read_rows(path)
    if not rows:
        return None
    means = {}
    for key in MEANS:
        values = [float(r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        if values:
            means[key] = sum(values) / len(values)
    return Row(agent, mode, len(rows), means)


COLUMNS = (("em", "EM", "{:.3f}"), ("f1", "F1", "{:.3f}"), ("accuracy", "acc", "{:.3f}"),
           ("satisfied", "satisfied", "{:.0%}"), ("parse_failed", "parse fail", "{:.0%}"),
           ("seconds", "s/item", "{:.1f}"), ("model_tokens", "tokens", "{:.0f}"), ("segments", "segments", "{:.1f}"))


def table(rows: list[Row]) -> str:
    """A plain-text table: one line per row, the columns any row has."""
    used = [c for c in COLUMNS if any(c[0] in r.means for r in rows)]
    head = ["agent", "mode", "items"] + [title for _, title, _ in used]
    body = [[r.agent, r.mode, str(r.items)] + [fmt.format(r.means[k]) if k in r.means else "-" for k, _, fmt in used]
            for r in rows]
    widths = [max(len(line[i]) for line in [head] + body) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
             for line in [head] + body]
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path, title: str) -> None:
    """A PNG of grouped bars: per agent and mode, its answer metrics and its satisfaction rate. Raises
    ReportError when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("--plot needs matplotlib: pip install 'ltlagent[plot]'") from None
    metrics = [k for k in ("em", "f1", "accuracy", "satisfied", "parse_failed") if any(k in r.means for r in rows)]
    labels = [f"{r.agent}\n{r.mode}" for r in rows]
    width = 0.8 / max(1, len(metrics))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.3 * len(rows) + 2), 4.2))
    for i, key in enumerate(metrics):
        values = [r.means.get(key, 0.0) for r in rows]
        axes.bar([x + i * width for x in range(len(rows))], values, width, label=key)
    axes.set_xticks([x + width * (len(metrics) - 1) / 2 for x in range(len(rows))], labels, fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
