"""Write the results from ``outputs/`` and ``benchmarks/results/`` (never typed by hand).

``docs/results.md`` (every table and figure) and the README's summary (between
``<!-- results:start -->`` and ``<!-- results:end -->``: wall time, the target verdicts per
notebook, the headline tables, the benchmarks' headline sections) are rebuilt from every
``outputs/<notebook>/R<R>/metrics.json`` at the end of ``make reproduce``, or alone by
``python -m inr_utils.report``. The report knows no
notebook: it tabulates each run's ``methods`` and renders each run's ``summary`` block
(``inr_utils.summary``); the targets it judges live in ``inr_utils.targets``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from . import OUTPUTS, REPO_ROOT, summary
from .runs import write_if_changed
from .sweep import pool_seconds, recorded_seconds
from .targets import REPRODUCE_MINUTES

START, END = "<!-- results:start -->", "<!-- results:end -->"
#: markers around the part of a benchmark's table that the README's summary shows
HEADLINE = ("<!-- headline -->", "<!-- /headline -->")
#: a benchmark file holding ``BESIDE.format(notebook folder)`` has its headline shown right after that
#: notebook's block in the README (e.g. a LIIF benchmark beside notebook 05); the others come last
BESIDE = "<!-- beside {} -->"
_BESIDE = re.compile(r"<!-- beside (\S+) -->\n?")
RESULTS_PAGE = REPO_ROOT / "docs" / "results.md"
COLUMNS = [("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("nrmse", "NRMSE", "{:.3f}"),
           ("rel_l1", "rel. L1", "{:.3f}"), ("temporal_fidelity", "temporal fidelity", "{:.2f}"),
           ("temporal_correlation", "temporal corr.", "{:.2f}"),
           ("seconds", "seconds", "{:.1f}"), ("train_seconds", "train s", "{:.0f}"), ("infer_seconds", "infer s / cine", "{:.3f}")]


def _r_key(path: Path) -> tuple:
    m = re.fullmatch(r"R([0-9.]+)(?:_T([0-9]+))?(?:_(.*))?", path.parent.name)
    return (m.group(3) or "", float(m.group(1)), int(m.group(2) or 0)) if m else ("~", float("inf"), 0)


#: extra figures shown under a notebook's table when a run wrote them
EXTRA_FIGURES = ("psnr_vs_time.png", "lambda_curve.png")


def run_records(outputs: Path = OUTPUTS) -> dict:
    """{run folder: run_info.json record} (``runs.record_run``) of every executed run."""
    return {p.parent.relative_to(outputs).as_posix(): json.loads(p.read_text())
            for p in sorted(outputs.glob("[0-9][0-9]_*/R*/run_info.json"))}


#: where the benchmark scripts write their tables (shown at the end of the README's results)
BENCHMARK_RESULTS = REPO_ROOT / "benchmarks" / "results"


def machine(record: dict) -> str:
    """'<cores> x <CPU model>' of a ``run_info.json`` record."""
    return f"{record.get('cpu_count')} x {record.get('cpu')}"


def pool_span(records: dict, from_scratch: dict | None = None) -> tuple | None:
    """(seconds, first start, last end) of the runs when they ran as one pool, i.e. one
    ``make reproduce``: every record from the same clean commit with papermill's start and end
    times, no run resumed (its record is its time from scratch), and the span from the first
    start to the last end no longer than the runs added up (runs of separate sessions leave gaps
    that make it longer); else None."""
    from datetime import datetime

    codes = {json.dumps(r.get("code"), sort_keys=True) for r in records.values()}
    if not records or len(codes) != 1 or not (r0 := next(iter(records.values())).get("code")) or r0.get("dirty"):
        return None
    if any((from_scratch or {}).get(k, 0) > (r["seconds"] or 0) + 1 for k, r in records.items()):
        return None
    try:
        starts = [datetime.fromisoformat(r["start_time"]) for r in records.values()]
        ends = [datetime.fromisoformat(r["end_time"]) for r in records.values()]
    except (KeyError, TypeError, ValueError):
        return None
    span = (max(ends) - min(starts)).total_seconds()
    return (span, min(starts), max(ends)) if 0 < span <= sum(r["seconds"] or 0 for r in records.values()) + 1 else None


def wall_time_line(records: dict, unrecorded: tuple = (), from_scratch: dict | None = None,
                   bf16: dict | None = None) -> str:
    """Wall time of every run, per notebook with the dates and machines that ran it, against
    REPRODUCE_MINUTES; ``unrecorded``: runs with results but no record (run before records were
    kept); ``from_scratch``: {run: seconds} of a run from scratch where it differs from its
    record (``sweep.recorded_seconds``: a LIIF run that resumed records only the rest);
    ``bf16``: {run: whether its CNNs ran in bfloat16} of the LIIF runs (their metrics.json), said
    beside the time because a CPU without native bfloat16 runs them in float32, at other speeds.

    When the runs were one ``make reproduce`` (``pool_span``), the verdict is its measured wall
    time. Otherwise it needs no measured ``make reproduce``: that runs 2 at a time on 2 cores, so
    its wall time is at most the runs' sum (met when that is within the target) and at least
    half of it (missed when that is over); between the two it is undecided, and the line gives
    the time of the runs scheduled longest first on 2 workers (``sweep.pool_seconds``), as an
    estimate."""
    if not records:
        return ""
    total = sum(r["seconds"] or 0 for r in records.values())
    scratch = {k: (from_scratch or {}).get(k) or r["seconds"] or 0 for k, r in records.items()}
    full = sum(scratch.values())
    machines = {machine(r) for r in records.values()}
    verdict = ""
    measured = pool_span(records, from_scratch)
    if not unrecorded and measured:
        span, first, last = measured
        verdict = (f" Target for `make reproduce` on 2 CPU cores: {REPRODUCE_MINUTES} min, "
                   f"{summary.verdict(span / 60 <= REPRODUCE_MINUTES)}: measured, these runs ran as one `make reproduce` "
                   f"(one commit, every run from scratch, on {'; '.join(sorted(machines))}) from "
                   f"{first:%Y-%m-%d %H:%M} to {last:%H:%M} UTC, {span / 60:.1f} min from the first notebook's start to "
                   f"the last one's end ({full / 60:.1f} min of runs added up); the venv set-up before them comes on top.")
    elif not unrecorded:
        estimate = pool_seconds(list(scratch.values()), 2) / 60
        where = " on one machine" if len(machines) == 1 else f" on {len(machines)} machines"
        state = (summary.verdict(True) if full / 60 <= REPRODUCE_MINUTES else
                 summary.verdict(False) if full / 120 > REPRODUCE_MINUTES else "not decided by these records")
        verdict = (f" Target for `make reproduce` on 2 CPU cores: {REPRODUCE_MINUTES} min, {state} ("
                   + (f"these runs from scratch add up to {full / 60:.1f} min{where}, counting each LIIF run that "
                      f"resumed with its full training time; " if full > total + 1 else
                      f"{full / 60:.1f} min of notebook runs{where}, added up; ")
                   + f"`make reproduce` runs 2 at a time, so its wall time lies between half of that and all of it; "
                   f"started longest first on 2 workers, as it does, they would take about {estimate:.1f} min. "
                   "An estimate from the runs' records, not one measured `make reproduce`; the venv set-up and the "
                   "kernel starts come on top).")
    parts = []
    for nb in sorted({k.split("/")[0] for k in records}):
        runs = {k: r for k, r in records.items() if k.startswith(nb + "/")}
        dates = sorted({(r.get("start_time") or "?")[:10] for r in runs.values()})
        parts.append(f"{nb}: {len(runs)} runs, {sum(r['seconds'] or 0 for r in runs.values()) / 60:.1f} min "
                     f"(run {', '.join(dates)} on {'; '.join(sorted({machine(r) for r in runs.values()}))}; "
                     + ", ".join(f"{k.split('/')[1]} {(r['seconds'] or 0) / 60:.1f}"
                                 + (f" (from scratch {scratch[k] / 60:.1f})" if scratch[k] > (r["seconds"] or 0) + 1 else "")
                                 for k, r in runs.items()) + ")")
    return (f"Wall time of the executed notebooks behind these results (papermill's record in each run's "
            f"`run_info.json`): {len(records)} runs, {total / 60:.1f} min in all. " + "; ".join(parts) + ". "
            "A LIIF run that resumed from its checkpoints counts only the resumed part in papermill's record; "
            "\"from scratch\" adds up its models' training seconds (its `train s` column)." + verdict
            + precision_sentence(bf16 or {})
            + (f" Runs without a record (executed before records were kept, not counted): {', '.join(unrecorded)}."
               if unrecorded else ""))


def precision_sentence(bf16: dict) -> str:
    """What the LIIF runs' CNNs ran in ({run: bfloat16 or not}), for the wall-time line."""
    if not bf16:
        return ""
    n = sum(map(bool, bf16.values()))
    which = ("in bfloat16 (a CPU with native bfloat16, AVX512-BF16 or AMX)" if n == len(bf16) else
             "in float32" if n == 0 else f"in bfloat16 in {n} of {len(bf16)} runs, in float32 in the others")
    return (f" The LIIF runs ({', '.join(sorted({k.split('/')[0][:2] for k in bf16}))}) trained their CNNs {which}"
            + ("; a CPU without native bfloat16 runs them in float32, so its seconds differ." if n else "."))


def _wall_time_lines(outputs: Path) -> list[str]:
    """The wall-time line of every run under ``outputs`` (and those without a record), as lines."""
    records = run_records(outputs)
    ran = [p.parent.relative_to(outputs).as_posix() for p in sorted(outputs.glob("[0-9][0-9]_*/R*/metrics.json"))]
    bf16 = {k: m["bf16"] for k in records for m in [json.loads((outputs / k / "metrics.json").read_text())]
            if (outputs / k / "metrics.json").is_file() and isinstance(m.get("bf16"), bool)}
    line = wall_time_line(records, tuple(r for r in ran if r not in records),
                          {k: recorded_seconds(outputs / k) for k in records}, bf16)
    return [line, ""] if line else []


def results_markdown(outputs: Path = OUTPUTS) -> str:
    lines = _wall_time_lines(outputs)
    for nb_dir, results in _runs(outputs):
        runs = [p for p, _ in results]
        cols = [c for c in COLUMNS if any(isinstance(m.get(c[0]), (int, float))
                                           for _, r in results for m in r.get("methods", {}).values())]
        lines += [f"### {nb_dir.name}", "", "| run | method | " + " | ".join(c[1] for c in cols) + " |",
                  "|---|---|" + "---|" * len(cols)]
        for path, result in results:
            for method, m in result.get("methods", {}).items():
                cells = [fmt.format(m[k]) if isinstance(m.get(k), (int, float)) else "" for k, _, fmt in cols]
                lines.append(f"| {path.parent.name} | {method} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += summary.render([(p.parent.name, r.get("summary")) for p, r in results])
        for path in runs:
            for fig in ("comparison.png",) + EXTRA_FIGURES:
                if (path.parent / fig).exists():
                    rel = (path.parent / fig).relative_to(REPO_ROOT).as_posix()
                    lines += [f"![{nb_dir.name} {path.parent.name} {fig}]({rel})", ""]
    for bench in sorted(BENCHMARK_RESULTS.glob("*.md")):
        text = _BESIDE.sub("", bench.read_text()).replace(HEADLINE[0] + "\n", "").replace(HEADLINE[1] + "\n", "")
        lines += [f"### Benchmark: {bench.stem}", "", text.strip(), ""]
    return "\n".join(lines) or "_No results yet: run `make reproduce`._"


def _runs(outputs: Path):
    """[(notebook folder, [(metrics.json path, record), ...])] of every notebook with runs."""
    out = []
    for nb_dir in sorted(p for p in outputs.glob("[0-9][0-9]_*") if p.is_dir()):
        runs = sorted(nb_dir.glob("R*/metrics.json"), key=_r_key)
        if runs:
            out.append((nb_dir, [(p, json.loads(p.read_text())) for p in runs]))
    return out


def benchmark_headlines(folder: Path = BENCHMARK_RESULTS) -> list[tuple[str, str | None, str]]:
    """[(benchmark name, notebook folder it stands beside or None, headline section)] of every
    benchmark file in ``folder`` with ``HEADLINE`` markers."""
    out = []
    for bench in sorted(folder.glob("*.md")):
        text = bench.read_text()
        if HEADLINE[0] in text and HEADLINE[1] in text:
            beside = _BESIDE.search(text)
            part = _BESIDE.sub("", text.split(HEADLINE[0], 1)[1].split(HEADLINE[1], 1)[0]).strip()
            out.append((bench.stem, beside.group(1) if beside else None, part))
    return out


def headline_markdown(outputs: Path = OUTPUTS, page: Path = RESULTS_PAGE, benchmarks: Path = BENCHMARK_RESULTS) -> str:
    """The README's summary: wall time, per notebook its target verdicts, headline tables, one
    figure on real data and the headline sections of the benchmarks placed beside it, then every
    other benchmark's headline section; the rest on ``page``."""
    lines = _wall_time_lines(outputs)
    headlines = benchmark_headlines(benchmarks)
    shown = set()
    for nb_dir, results in _runs(outputs):
        blocks = [(p.parent.name, r.get("summary")) for p, r in results]
        verdicts = summary.verdict_line(blocks)
        tables = summary.render(blocks, headline_only=True, verdicts_table=False)
        real = [p.parent / "comparison.png" for p, _ in results if "sunnybrook" in p.parent.name]
        figure = [f"![{nb_dir.name} {real[-1].parent.name}]({real[-1].relative_to(REPO_ROOT).as_posix()})", ""] \
            if real and real[-1].exists() else []
        if verdicts or tables or figure:
            lines += [f"**{nb_dir.name}** ({len(results)} runs)" + (f": {verdicts}." if verdicts else "."), ""]
            lines += tables + figure
        for name, beside, part in headlines:
            if beside == nb_dir.name:
                lines += [f"**Benchmark `{name}`**", "", part, ""]
                shown.add(name)
    for name, _, part in headlines:
        if name not in shown:
            lines += [f"**Benchmark `{name}`**", "", part, ""]
    rel_page = page.relative_to(REPO_ROOT).as_posix() if page.is_relative_to(REPO_ROOT) else str(page)
    lines += [f"Every table, figure and benchmark: [{rel_page}]({rel_page})."]
    return "\n".join(lines)


def write_benchmark(name: str, text: str) -> Path:
    """Write a benchmark's result as ``benchmarks/results/<name>.md`` and rebuild the results, which show it."""
    out = BENCHMARK_RESULTS / f"{name}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text.rstrip("\n") + "\n")
    update_readme()
    return out


def update_readme(readme: Path = REPO_ROOT / "README.md", outputs: Path = OUTPUTS, page: Path = RESULTS_PAGE) -> bool:
    """Rewrite the results page and the README's summary; returns whether either changed."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no results markers {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{headline_markdown(outputs, page)}\n{END}{tail}"
    # figure links on the page are relative to docs/
    body = results_markdown(outputs).replace("](outputs/", "](../outputs/")
    page_text = ("# Results\n\nGenerated by `python -m inr_utils.report` (run by `make reproduce` and the benchmarks) "
                 "from `outputs/*/R*/metrics.json` and `benchmarks/results/*.md`; do not edit by hand.\n\n" + body + "\n")
    wrote_readme, wrote_page = write_if_changed(readme, new), write_if_changed(page, page_text)
    return wrote_readme or wrote_page


if __name__ == "__main__":  # python -m inr_utils.report: rebuild the results and the parameter docs (no runs)
    from .pipeline import write_parameters_doc

    print(f"wrote {write_parameters_doc().relative_to(REPO_ROOT)}")
    print("results page and README summary", "rebuilt" if update_readme() else "unchanged")
