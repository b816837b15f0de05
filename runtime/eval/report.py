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


def rate_keys(rows: list[dict]) -> list[str]:
    """The rates to average: the built-in ones (``RATES``) and the scores that rows name in ``metrics``
    (a user metric's), in that order."""
    extra = [k for r in rows for k in (r.get("metrics") if isinstance(r.get("metrics"), list) else ())
             if isinstance(k, str) and k not in RATES]
    return list(RATES) + list(dict.fromkeys(extra))


def means(rows: list[dict]) -> dict:
    """Rates (answer metrics, satisfaction, parse failures) over every row, a failed run (one with an
    ``error``) counting 0; costs over the rows that finished; ``errors``, the failed fraction, if any."""
    result = {}
    for key in rate_keys(rows):
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


def columns(rows: list[Row]) -> list[tuple[str, str, str]]:
    """The table's columns: ``(key, title, format)`` of the built-in ones any row has, a user metric's
    scores after the answer metrics."""
    known = {c[0] for c in COLUMNS} | set(COSTS)
    extra = list(dict.fromkeys(k for r in rows for k in r.means if k not in known))
    used = [c for c in COLUMNS if any(c[0] in r.means for r in rows)]
    at = next((i for i, c in enumerate(used) if c[0] == "satisfied"), len(used))
    return used[:at] + [(k, k, "{:.3f}") for k in extra] + used[at:]


def table(rows: list[Row]) -> str:
    """A plain-text table: one line per row, the columns any row has."""
    used = columns(rows)
    head = ["agent", "mode", "items"] + [title for _, title, _ in used]
    body = [[r.agent, r.mode, str(r.items)] + [fmt.format(r.means[k]) if k in r.means else "-" for k, _, fmt in used]
            for r in rows]
    widths = [max(len(line[i]) for line in [head] + body) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
             for line in [head] + body]
    return "\n".join(lines) + "\n"


PANEL_TITLES = {"em": "exact match", "f1": "F1", "accuracy": "accuracy", "satisfied": "satisfies the spec",
                "parse_failed": "parse failures", "seconds": "seconds per item", "model_tokens": "model tokens per item"}
PANEL_FORMATS = {"satisfied": "{:.0%}", "parse_failed": "{:.0%}", "seconds": "{:.1f}", "model_tokens": "{:.0f}"}
MODE_STYLES = {"constrained": {"color": "#3b75af"}, "unconstrained": {"color": "#f0a04b", "hatch": "//"}}


def panels(rows: list[Row]) -> list[str]:
    """The quantities the plot draws, one panel each: the answer metrics, satisfaction, parse failures
    (when any row has them), then the costs (seconds and model tokens per item)."""
    keys = [k for k, _, _ in columns(rows) if k not in ("errors", "segments")]
    return [k for k in keys if any(k in r.means for r in rows)]


def item_counts(rows: list[Row]) -> dict[str, str]:
    """Per agent, the tick label's count of items: ``n=20``, or ``n=20 / 18`` when its modes differ."""
    counts: dict[str, list[int]] = {}
    for r in rows:
        counts.setdefault(r.agent, []).append(r.items)
    return {agent: "n=" + " / ".join(map(str, dict.fromkeys(ns))) for agent, ns in counts.items()}


def plot(rows: list[Row], path: Path, title: str) -> None:
    """A chart (PNG, PDF or SVG by the suffix): one panel per quantity (answer metrics, satisfaction,
    parse failures, seconds and model tokens per item), the agents along each, constrained and
    unconstrained bars side by side, each bar labelled with its value and each agent with its number of
    items. Raises ReportError when it cannot (see ``check_plot``) or the file cannot be written."""
    check_plot(path)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys, agents = panels(rows), list(dict.fromkeys(r.agent for r in rows))
    modes = [m for m in MODE_STYLES if any(r.mode == m for r in rows)] or ["constrained"]
    ncols = min(3, max(1, len(keys)))
    nrows = -(-max(1, len(keys)) // ncols)
    figure, grid = plt.subplots(nrows, ncols, squeeze=False,
                                figsize=(ncols * max(3.6, 1.1 * len(agents) * len(modes) + 1.2), 3.3 * nrows + 0.6))
    for axes, key in zip(grid.flat, keys):
        _panel(axes, key, rows, agents, modes)
    for axes in list(grid.flat)[len(keys):]:
        axes.axis("off")
    grid.flat[0].legend(fontsize=7, loc="upper right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    except OSError as err:
        raise ReportError(f"{path}: {err.strerror or err}") from None
    finally:
        plt.close(figure)


def _panel(axes, key: str, rows: list[Row], agents: list[str], modes: list[str]) -> None:
    """One quantity's bars: per agent, one bar per mode, its value written on it."""
    width, fmt = 0.8 / len(modes), PANEL_FORMATS.get(key, "{:.2f}")
    by = {(r.agent, r.mode): r.means.get(key) for r in rows}
    top = max([v for v in by.values() if v is not None] or [0.0])
    for i, mode in enumerate(modes):
        xs = [x + (i - (len(modes) - 1) / 2) * width for x in range(len(agents))]
        values = [by.get((agent, mode)) for agent in agents]
        bars = axes.bar(xs, [v or 0.0 for v in values], width, label=mode, **MODE_STYLES[mode])
        axes.bar_label(bars, [fmt.format(v) if v is not None else "" for v in values], fontsize=7, padding=1)
    counts = item_counts(rows)
    axes.set_xticks(range(len(agents)), [f"{a}\n{counts[a]}" for a in agents], fontsize=7)
    rate = key not in COSTS
    axes.set_ylim(0, 1.12 if rate and top <= 1 else max(top, 1e-9) * 1.18)
    axes.set_title(PANEL_TITLES.get(key, key), fontsize=9)
    axes.tick_params(axis="y", labelsize=7)


def check_plot(path: Path) -> None:
    """Raises ReportError unless a plot can be drawn to ``path``: a known suffix, matplotlib installed."""
    import importlib.util

    if path.suffix.lower() not in PLOT_FORMATS:
        raise ReportError(f"{path}: --plot draws {', '.join(PLOT_FORMATS)} files")
    if importlib.util.find_spec("matplotlib") is None:
        raise ReportError("--plot needs matplotlib: pip install 'ltlagent[plot]'")
