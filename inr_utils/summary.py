"""The summary block a run writes into its metrics.json (``metrics["summary"]``), so that the
report renders every notebook's tables and target verdicts without knowing its schema.

    {"tables": [{"title": str, "columns": [str, ...], "rows": [[str, ...], ...], "headline": bool}],
     "targets": [{"target": str, "value": str, "met": bool}]}

Cells are formatted strings. The report joins the rows of equally titled tables of a
notebook's runs (each row led by its run's folder) and lists every target verdict.
"""
from __future__ import annotations

from typing import Sequence


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence], headline: bool = False) -> dict:
    """``headline``: the README's results summary shows this table too (the results page shows every table)."""
    if any(len(r) != len(columns) for r in rows):
        raise ValueError(f"summary table {title!r}: every row needs {len(columns)} cells")
    return {"title": title, "columns": list(columns), "rows": [[str(c) for c in r] for r in rows], "headline": bool(headline)}


def target(text: str, value: str, met: bool) -> dict:
    """One target: what it asks (``text``), the measured ``value`` and whether it is met."""
    return {"target": text, "value": str(value), "met": bool(met)}


def counted(n: int, noun: str) -> str:
    """``n`` with its noun in the right number (regular plurals): ``counted(1, "slice")`` is
    "1 slice", ``counted(11, "slice")`` "11 slices"."""
    return f"{n} {noun if n == 1 else noun + 's'}"


def block(tables: Sequence[dict] = (), targets: Sequence[dict] = ()) -> dict:
    return {"tables": list(tables), "targets": list(targets)}


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def verdict_line(runs: Sequence[tuple[str, dict]]) -> str:
    """'k of n targets met' over the runs' verdicts, naming every missed one with its measurement."""
    got = [(run, v) for run, s in runs for v in (s or {}).get("targets", [])]
    if not got:
        return ""
    missed = [f"{run}: {v['target']} ({v['value']})" for run, v in got if not v["met"]]
    return f"{len(got) - len(missed)} of {len(got)} targets met" + ("; missed: " + "; ".join(missed) if missed else "")


def render(runs: Sequence[tuple[str, dict]], headline_only: bool = False, verdicts_table: bool = True) -> list[str]:
    """Markdown lines from ``(run name, summary block)`` pairs: one table per title (rows of
    every run, led by the run; ``headline_only``: only the headline tables), then one table of
    the target verdicts (unless ``verdicts_table`` is False)."""
    tables: dict = {}
    verdicts = []
    for run, s in runs:
        for t in (s or {}).get("tables", []):
            if headline_only and not t.get("headline"):
                continue
            entry = tables.setdefault(t["title"], {"columns": t["columns"], "rows": []})
            if entry["columns"] != t["columns"]:  # same title, other columns: a table of its own
                entry = tables.setdefault(f"{t['title']} ({run})", {"columns": t["columns"], "rows": []})
            entry["rows"] += [[run, *r] for r in t["rows"]]
        verdicts += [[run, v["target"], v["value"], verdict(v["met"])] for v in (s or {}).get("targets", [])]
    lines = []
    for title, t in tables.items():
        cols = ["run", *t["columns"]]
        lines += [f"**{title}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(r) + " |" for r in t["rows"]] + [""]
    if verdicts and verdicts_table:
        lines += ["**Targets**", "", "| run | target | measured | verdict |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(r) + " |" for r in verdicts] + [""]
    return lines
