"""Evaluation reports: where results go, one summary row per results file, the table, and the PNG plot.

Needs no torch; matplotlib only for ``plot`` (the ``plot`` extra)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

FREE_SUFFIX = "-unconstrained"
RATES = ("em", "f1", "accuracy", "satisfied", "parse_failed")          # over every item (a failed run scores 0)
COSTS = ("seconds", "model_tokens", "segments", "forward_passes")      # over the runs that finished
PLOT_FORMATS = (".png", ".pdf", ".svg")


class ReportError(ValueError):
    """A report that cannot be made (e.g. --plot without matplotlib)."""


def results_path(out: Path, spec_name: str, task: str, unconstrained: bool) -> Path:
    """The results file of one spec: ``out`` itself when it names a .jsonl file, else
    ``out/<spec>-<task>.jsonl`` (characters other than letters, digits, ``_.-`` in the name become ``_``);
    ``-unconstrained`` before the suffix for the ablation."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", spec_name).lstrip(".") or "spec"
    path = out if out.suffix == ".jsonl" else out / f"{safe}-{task}.jsonl"
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
    """The JSON objects of a results file, one per line (torn, blank or non-object lines skipped)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def means(rows: list[dict]) -> dict:
    """Rates (answer metrics, satisfaction, parse failures) over every row, a failed run (one with an
    ``error``) counting 0; costs over the rows that finished; ``errors``, the failed fraction, if any."""
    result = {}
    for key in RATES:
        if any(key in r for r in rows):
            result[key] = sum(float(r.get(key) or 0) for r in rows) / len(rows)
    finished = [r for r in rows if "error" not in r]
    for key in COSTS:
        values = [float(r[key]) for r in finished if isinstance(r.get(key), (int, float))]
        if values:
            result[key] = sum(values) / len(values)
    if len(finished) < len(rows):
        result["errors"] = 1 - len(finished) / len(rows)
    return result


def summarize(agent: str, mode: str, path: Path, ids: Optional[set] = None) -> Optional[Row]:
    """The row of one results file, over the items in ``ids`` when given (None when there are none)."""
    rows = [r for r in read_rows(path) if ids is None or r.get("id") in ids]
    return Row(agent, mode, len(rows), means(rows)) if rows else None


COLUMNS = (("em", "EM", "{:.3f}"), ("f1", "F1", "{:.3f}"), ("accuracy", "acc", "{:.3f}"),
           ("satisfied", "satisfied", "{:.0%}"), ("parse_failed", "parse fail", "{:.0%}"),
           ("errors", "errors", "{:.0%}"), ("seconds", "s/item", "{:.1f}"), ("model_tokens", "tokens", "{:.0f}"),
           ("segments", "segments", "{:.1f}"))


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
    """A chart (PNG, PDF or SVG by the suffix) of grouped bars: per agent and mode, its answer metrics,
    satisfaction and parse-failure rates. Raises ReportError when it cannot (see ``check_plot``) or the
    file cannot be written."""
    check_plot(path)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    except OSError as err:
        raise ReportError(f"{path}: {err.strerror or err}") from None
    finally:
        plt.close(figure)


def check_plot(path: Path) -> None:
    """Raises ReportError unless a plot can be drawn to ``path``: a known suffix, matplotlib installed."""
    import importlib.util

    if path.suffix.lower() not in PLOT_FORMATS:
        raise ReportError(f"{path}: --plot draws {', '.join(PLOT_FORMATS)} files")
    if importlib.util.find_spec("matplotlib") is None:
        raise ReportError("--plot needs matplotlib: pip install 'ltlagent[plot]'")
