"""Write the README's results section from ``outputs/`` (never typed by hand).

The section between ``<!-- results:start -->`` and ``<!-- results:end -->`` is
rebuilt from every ``outputs/<notebook>/R<R>/metrics.json`` at the end of
``make reproduce``, or alone by ``python -m inr_utils.report``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from . import OUTPUTS, REPO_ROOT

START, END = "<!-- results:start -->", "<!-- results:end -->"
COLUMNS = [("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("nrmse", "NRMSE", "{:.3f}"),
           ("rel_l1", "rel. L1", "{:.3f}"), ("temporal_fidelity", "temporal fidelity", "{:.2f}"),
           ("temporal_correlation", "temporal corr.", "{:.2f}"),
           ("seconds", "seconds", "{:.1f}"), ("train_seconds", "train s", "{:.0f}"), ("infer_seconds", "infer s / cine", "{:.3f}")]


def _r_key(path: Path) -> tuple:
    m = re.fullmatch(r"R([0-9.]+)(?:_T([0-9]+))?(?:_(.*))?", path.parent.name)
    return (m.group(3) or "", float(m.group(1)), int(m.group(2) or 0)) if m else ("~", float("inf"), 0)


#: extra figures shown under a notebook's table when a run wrote them
EXTRA_FIGURES = ("psnr_vs_time.png", "lambda_curve.png")


def _lambda_study_rows(runs) -> list[str]:
    lines = ["| run | representation | log10 lambda | one conditional fit (dB) | separate fits (dB) | conditional - separate (dB) |",
             "|---|---|---|---|---|---|"]
    timing = ["", "| run | conditional fit (s) | separate fits, all (s) | ratio to one fixed fit | auto log10 lambda | "
              "oracle log10 lambda | PSNR auto (dB) | PSNR oracle (dB) | temporal fidelity falls with lambda |",
              "|---|---|---|---|---|---|---|---|---|"]
    for path in runs:
        r = json.loads(path.read_text())
        rep = r.get("representation", "lowrank-lambda")  # metrics.json without the key come from the low-rank form
        for ll, v in r.get("conditional", {}).items():
            sep = r["separate"][ll]["psnr"]
            lines.append(f"| {path.parent.name} | {rep} | {ll} | {v['psnr']:.2f} | {sep:.2f} | {v['psnr'] - sep:+.2f} |")
        n = max(len(r.get("separate", {})), 1)
        if "psnr_auto" in r:
            if "smoothness_monotone" not in r:
                mono = "not checked"
            elif r["smoothness_monotone"]:
                mono = "yes (every step of the dense curve)"
            else:
                mono = "no: rises on " + ", ".join(f"[{a:.3g}, {b:.3g}]" for a, b in r["smoothness_rises_on"])
            timing.append(f"| {path.parent.name} | {r['seconds_conditional']:.1f} | {r['seconds_separate']:.1f} | "
                          f"{r['seconds_conditional'] / (r['seconds_separate'] / n):.2f} | {r['auto_log10_lambda']:.2f} | "
                          f"{r['oracle_log10_lambda']:.2f} | {r['psnr_auto']:.2f} | {r['psnr_oracle']:.2f} | {mono} |")
    return lines + timing + [""]


def run_records(outputs: Path = OUTPUTS) -> dict:
    """{run folder: run_info.json record} (``runs.record_run``) of every executed run."""
    return {p.parent.relative_to(outputs).as_posix(): json.loads(p.read_text())
            for p in sorted(outputs.glob("[0-9][0-9]_*/R*/run_info.json"))}


#: the project's target for `make reproduce` (every notebook at its defaults) on 2 CPU cores, minutes
REPRODUCE_TARGET_MIN = 90


#: the LIIF targets: best encoder / tuned TV on the real patient, training seconds per model, inference seconds per cine
LIIF_TV_RATIO, LIIF_TRAIN_S, LIIF_INFER_S = 0.8, 300, 1.0
#: where the benchmark scripts write their tables (shown at the end of the README's results)
BENCHMARK_RESULTS = REPO_ROOT / "benchmarks" / "results"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def liif_target_line(runs_dir: Path) -> str:
    """The LIIF targets judged from every ``R*_T*/metrics.json`` of notebook 05 (generated, like the wall-time verdict)."""
    runs = [json.loads(p.read_text()) for p in sorted(Path(runs_dir).glob("R*_T*/metrics.json"))]
    if not runs:
        return ""
    real = [r for r in runs if r.get("data") == "sunnybrook"]
    from .liif import best_to_tv

    ratios = {f"R{r['R']:g} T{r['T_low']}": best_to_tv(r) for r in real}
    parts = [f"best LIIF / tuned TV <= {LIIF_TV_RATIO} on the real held-out patient: "
             + (f"{_verdict(all(v <= LIIF_TV_RATIO for v in ratios.values()))} ("
                + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()) + ")" if ratios else "no real-data run")]
    for T_low in sorted({r["T_low"] for r in runs}):
        secs = [r["methods"][k]["train_seconds"] for r in runs if r["T_low"] == T_low for k in ("RDN", "UNet")]
        over = sum(s > LIIF_TRAIN_S for s in secs)
        parts.append(f"training <= {LIIF_TRAIN_S} s per model at T_low = {T_low}: {_verdict(not over)} "
                     f"({min(secs):.0f}-{max(secs):.0f} s; {over} of {len(secs)} models over)")
    infer = [r["methods"][k]["infer_seconds"] for r in runs for k in ("RDN", "UNet")]
    parts.append(f"inference of one cine < {LIIF_INFER_S:g} s: {_verdict(max(infer) < LIIF_INFER_S)} (at most {max(infer):.2f} s)")
    return "LIIF targets, judged from these runs: " + "; ".join(parts) + "."


def machine(record: dict) -> str:
    """'<cores> x <CPU model>' of a ``run_info.json`` record."""
    return f"{record.get('cpu_count')} x {record.get('cpu')}"


def wall_time_line(records: dict, unrecorded: tuple = ()) -> str:
    """Wall time of every run, per notebook with the dates and machines that ran it, against
    REPRODUCE_TARGET_MIN; ``unrecorded``: runs with results but no record (run before records were kept)."""
    if not records:
        return ""
    total = sum(r["seconds"] or 0 for r in records.values())
    machines = {machine(r) for r in records.values()}
    verdict = "" if unrecorded else (
        f" Target for `make reproduce` on 2 CPU cores: {REPRODUCE_TARGET_MIN} min, "
        f"{_verdict(total / 60 <= REPRODUCE_TARGET_MIN)} ({total / 60:.1f} min of notebook runs"
        + (" on one machine" if len(machines) == 1 else f" on {len(machines)} machines") +
        "; the venv set-up and the kernel starts come on top).")
    parts = []
    for nb in sorted({k.split("/")[0] for k in records}):
        runs = {k: r for k, r in records.items() if k.startswith(nb + "/")}
        dates = sorted({(r.get("start_time") or "?")[:10] for r in runs.values()})
        parts.append(f"{nb}: {len(runs)} runs, {sum(r['seconds'] or 0 for r in runs.values()) / 60:.1f} min "
                     f"(run {', '.join(dates)} on {'; '.join(sorted({machine(r) for r in runs.values()}))}; "
                     + ", ".join(f"{k.split('/')[1]} {(r['seconds'] or 0) / 60:.1f}" for k, r in runs.items()) + ")")
    return (f"Wall time of the executed notebooks behind these results (papermill's record in each run's "
            f"`run_info.json`): {len(records)} runs, {total / 60:.1f} min in all. " + "; ".join(parts) + ". "
            "A LIIF run that resumed from its checkpoints counts only the resumed part here; its `train s` column "
            "holds the full training time." + verdict
            + (f" Runs without a record (executed before records were kept, not counted): {', '.join(unrecorded)}."
               if unrecorded else ""))


def results_markdown(outputs: Path = OUTPUTS) -> str:
    records = run_records(outputs)
    ran = [p.parent.relative_to(outputs).as_posix() for p in sorted(outputs.glob("[0-9][0-9]_*/R*/metrics.json"))]
    line = wall_time_line(records, tuple(r for r in ran if r not in records))
    lines = [line, ""] if line else []
    for nb_dir in sorted(p for p in outputs.glob("[0-9][0-9]_*") if p.is_dir()):
        runs = sorted(nb_dir.glob("R*/metrics.json"), key=_r_key)
        if not runs:
            continue
        results = [(p, json.loads(p.read_text())) for p in runs]
        cols = [c for c in COLUMNS if any(isinstance(m.get(c[0]), (int, float))
                                           for _, r in results for m in r.get("methods", {}).values())]
        lines += [f"### {nb_dir.name}", "", "| run | method | " + " | ".join(c[1] for c in cols) + " |",
                  "|---|---|" + "---|" * len(cols)]
        for path, result in results:
            for method, m in result.get("methods", {}).items():
                cells = [fmt.format(m[k]) if isinstance(m.get(k), (int, float)) else "" for k, _, fmt in cols]
                lines.append(f"| {path.parent.name} | {method} | " + " | ".join(cells) + " |")
        lines.append("")
        if any("conditional" in json.loads(p.read_text()) for p in runs):
            lines += _lambda_study_rows(runs)
        for path in runs:
            for fig in ("comparison.png",) + EXTRA_FIGURES:
                if (path.parent / fig).exists():
                    rel = (path.parent / fig).relative_to(REPO_ROOT).as_posix()
                    lines += [f"![{nb_dir.name} {path.parent.name} {fig}]({rel})", ""]
    liif_runs = outputs / "05_liif_architecture_search"
    if liif_runs.is_dir():
        from .liif import summary_table

        table = summary_table(liif_runs)
        if table:
            lines += ["### LIIF summary (relative L1 on held-out subjects; the original's published value in brackets)", "",
                      table, "", liif_target_line(liif_runs), ""]
    for bench in sorted(BENCHMARK_RESULTS.glob("*.md")):
        lines += [f"### Benchmark: {bench.stem}", "", bench.read_text().strip(), ""]
    return "\n".join(lines) or "_No results yet: run `make reproduce`._"


def write_benchmark(name: str, text: str) -> Path:
    """Write a benchmark's result as ``benchmarks/results/<name>.md`` and rebuild the README, which shows it."""
    out = BENCHMARK_RESULTS / f"{name}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text.rstrip("\n") + "\n")
    update_readme()
    return out


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


if __name__ == "__main__":  # python -m inr_utils.report: rebuild the README's results from outputs/ (no runs)
    print("README results", "rebuilt" if update_readme() else "unchanged")
