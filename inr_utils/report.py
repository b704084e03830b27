"""Write the README's results section from ``outputs/`` (never typed by hand).

The section between ``<!-- results:start -->`` and ``<!-- results:end -->`` is
rebuilt from every ``outputs/<notebook>/R<R>/metrics.json`` at the end of
``make reproduce``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from . import OUTPUTS, REPO_ROOT

START, END = "<!-- results:start -->", "<!-- results:end -->"
COLUMNS = [("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("nrmse", "NRMSE", "{:.3f}"),
           ("rel_l1", "rel. L1", "{:.3f}"), ("temporal_fidelity", "temporal fidelity", "{:.2f}"),
           ("seconds", "seconds", "{:.1f}")]


def _r_key(path: Path) -> float:
    m = re.fullmatch(r"R([0-9.]+)", path.parent.name)
    return float(m.group(1)) if m else float("inf")


def results_markdown(outputs: Path = OUTPUTS) -> str:
    lines = []
    for nb_dir in sorted(p for p in outputs.glob("[0-9][0-9]_*") if p.is_dir()):
        runs = sorted(nb_dir.glob("R*/metrics.json"), key=_r_key)
        if not runs:
            continue
        lines += [f"### {nb_dir.name}", "", "| R | method | " + " | ".join(c[1] for c in COLUMNS) + " |",
                  "|---|---|" + "---|" * len(COLUMNS)]
        for path in runs:
            result = json.loads(path.read_text())
            for method, m in result.get("methods", {}).items():
                cells = [fmt.format(m[k]) if isinstance(m.get(k), (int, float)) else "" for k, _, fmt in COLUMNS]
                lines.append(f"| {result.get('R', '')} | {method} | " + " | ".join(cells) + " |")
        lines.append("")
        for path in runs:
            grid = path.parent / "comparison.png"
            if grid.exists():
                rel = grid.relative_to(REPO_ROOT).as_posix()
                lines += [f"![{nb_dir.name} {path.parent.name}]({rel})", ""]
    return "\n".join(lines) or "_No results yet: run `make reproduce`._"


def update_readme(readme: Path = REPO_ROOT / "README.md", outputs: Path = OUTPUTS) -> bool:
    """Replace the results section of the README; returns whether it changed."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no results markers {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{results_markdown(outputs)}\n{END}{tail}"
    changed = new != text
    if changed:
        readme.write_text(new)
    return changed
