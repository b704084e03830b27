"""What does a shorter LIIF training cost in accuracy? (notebook 05, the hardest setting.)

The LIIF targets ask for three things at once on 2 CPU cores: the best LIIF encoder within 0.8x of
tuned temporal TV on the real held-out patient, each model trained within 5 minutes, and all
notebooks of `make reproduce` (16 LIIF trainings among them) within 90 minutes. Training
time scales with EPOCHS, so this runs notebook 05 at R = 6, T_low = 8 on the real slices (the
setting with the smallest margin) for several EPOCHS, seeds and batch sizes, each run alone
on the machine, and tabulates accuracy against training seconds. Finished runs in ``--work``
are reused. Writes ``benchmarks/results/liif_training_budget.md`` and refreshes the README.

    .venv/bin/python benchmarks/liif_training_budget.py --runs 20:0:4 35:0:4 40:0:4 40:1:4 35:0:2 32:0:2 32:1:2
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from inr_utils import REPO_ROOT
from inr_utils.pipeline import NOTEBOOK_DIR, execute
from inr_utils.liif import best_to_tv
from inr_utils.report import machine, write_benchmark

NOTEBOOK = NOTEBOOK_DIR / "05_liif_architecture_search.py"


def run_dir(work: Path, R: float, T_low: int, epochs: int, seed: int, batch: int) -> Path:
    return work / f"R{R:g}_T{T_low}_sunnybrook_e{epochs}_s{seed}_b{batch}"


def row(folder: Path, batch: int) -> str:
    m = json.loads((folder / "metrics.json").read_text())
    meth = m["methods"]
    info = json.loads((folder / "run_info.json").read_text())
    return (f"| {m['epochs']} | {m['seed']} | {batch} | {meth['RDN']['rel_l1']:.4f} | {meth['UNet']['rel_l1']:.4f} | "
            f"{meth['TV']['rel_l1']:.4f} | {best_to_tv(m):.3f} | "
            f"{meth['RDN']['train_seconds']:.0f}, {meth['UNet']['train_seconds']:.0f} | {info['seconds'] / 60:.1f} | "
            f"{(info.get('start_time') or '?')[:10]} | {machine(info)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", default=["20:0:4", "35:0:4", "40:0:4", "40:1:4", "35:0:2", "32:0:2", "32:1:2"],
                    metavar="EPOCHS:SEED:BATCH")
    ap.add_argument("--R", type=float, default=6)
    ap.add_argument("--T-low", type=int, default=8)
    ap.add_argument("--work", type=Path, default=REPO_ROOT / ".build" / "liif_training_budget",
                    help="where the extra runs go (reused when finished)")
    args = ap.parse_args()
    rows = []
    for spec in args.runs:
        epochs, seed, batch = (int(v) for v in spec.split(":"))
        folder = run_dir(args.work, args.R, args.T_low, epochs, seed, batch)
        if not (folder / "metrics.json").exists():
            print(f"running 05 with EPOCHS={epochs}, SEED={seed}, BATCH={batch} -> {folder}", flush=True)
            execute(NOTEBOOK, {"R": args.R, "T_LOW": args.T_low, "DATA": "sunnybrook", "EPOCHS": epochs, "SEED": seed,
                               "BATCH": batch}, folder, progress=True)
        rows.append(row(folder, batch))
        print(rows[-1], flush=True)
    lines = [f"Notebook 05 at R = {args.R:g}, T_low = {args.T_low} on the real held-out patient (relative L1 at 64 query "
             "times), every other parameter at its default, for several training lengths, seeds and batch sizes; each run "
             "alone on the machine. LIIF targets: best / TV <= 0.8, each model trained in <= 300 s. Command: "
             f"`.venv/bin/python benchmarks/liif_training_budget.py --runs {' '.join(args.runs)}`", "",
             "| epochs | seed | batch | RDN | UNet | TV | best / TV | train s (RDN, UNet) | run min | run on | machine |",
             "|---|---|---|---|---|---|---|---|---|---|---|", *rows]
    out = write_benchmark("liif_training_budget", "\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
