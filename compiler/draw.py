"""Pictures of automata: Graphviz DOT and Mermaid text, segment names on the edges."""
from __future__ import annotations

import json
from collections import defaultdict

from .automaton import DEAD, Automaton


def edge_labels(aut: Automaton) -> dict[tuple[int, int], list[str]]:
    """Letters grouped per (source, target) edge, in alphabet order."""
    edges: dict[tuple[int, int], list[str]] = defaultdict(list)
    for q, row in enumerate(aut.delta):
        for i, t in enumerate(row):
            if t != DEAD:
                edges[(q, t)].append(aut.alphabet[i])
    return dict(edges)


def to_dot(aut: Automaton, name: str = "spec") -> str:
    """A Graphviz digraph: double circles accept, an arrow from nowhere marks the initial state."""
    lines = [f"digraph {json.dumps(name)} {{", "  rankdir=LR;", '  node [shape=circle, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];', '  __start [shape=point, label=""];']
    for q in aut.states:
        shape = "doublecircle" if q in aut.accepting else "circle"
        lines.append(f"  {q} [shape={shape}];")
    lines.append(f"  __start -> {aut.initial};")
    for (q, t), letters in edge_labels(aut).items():
        lines.append(f"  {q} -> {t} [label={json.dumps(chr(10).join(letters))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(aut: Automaton) -> str:
    """A Mermaid state diagram (``stateDiagram-v2``)."""
    lines = ["stateDiagram-v2", "    direction LR", f"    [*] --> s{aut.initial}"]
    for (q, t), letters in edge_labels(aut).items():
        label = ", ".join(letters).replace(":", "#58;")
        lines.append(f"    s{q} --> s{t} : {label}")
    for q in sorted(aut.accepting):
        lines.append(f"    s{q} --> [*]")
    return "\n".join(lines) + "\n"


def to_svg(aut: Automaton, name: str = "spec") -> str:
    """SVG rendered by Graphviz ``dot``. Raises FileNotFoundError when Graphviz is not installed and
    RuntimeError when it fails."""
    import shutil
    import subprocess

    dot = shutil.which("dot")
    if dot is None:
        raise FileNotFoundError("Graphviz 'dot' is not installed (apt-get install graphviz); "
                                "use --format dot or mermaid instead")
    done = subprocess.run([dot, "-Tsvg"], input=to_dot(aut, name), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.strip()}")
    return done.stdout
