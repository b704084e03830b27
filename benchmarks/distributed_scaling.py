"""Beyond one process: notebook sweeps on Dask workers, LIIF training with DDP (a script, not a test).

    .venv/bin/python benchmarks/distributed_scaling.py            # both parts
    .venv/bin/python benchmarks/distributed_scaling.py --part sweep
    .venv/bin/python benchmarks/distributed_scaling.py --part ddp

Sweep: ``--runs`` notebook-01 runs at its defaults (R and SEED varied), first one after
another in this process (``pipeline.execute``, the way ``make reproduce`` ran notebooks
before sweeps), then as a sweep on a Dask ``LocalCluster`` of ``--workers`` workers (each
run with cores / workers threads), side by side in one invocation. Reported: both wall
times, their ratio, and the scheduling overhead per run: (sweep wall time x workers - sum
of the runs' own execution times) / runs, i.e. the worker time not spent executing notebooks.

DDP: notebook 05's UNet (05-defaults) on phantom subjects at N = 32, the same global batch and
epochs with 1 process (all cores) and with ``--workers`` gloo processes (1 thread each):
validation relative L1 after every epoch (the same samples seen) and seconds per epoch, for
two seeds (the spread between seeds is the yardstick for "the same").

Writes ``benchmarks/results/distributed_scaling.md`` and refreshes the README.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from inr_utils import REPO_ROOT  # noqa: E402


def sweep_part(runs: int, workers: int) -> list[str]:
    from inr_utils.pipeline import NOTEBOOK_DIR, execute
    from inr_utils.sweep import sweep

    nb = NOTEBOOK_DIR / "01_data.py"
    grid = {"R": [3, 4, 6, 8], "SEED": list(range(max(1, runs // 4)))}
    n = len(grid["R"]) * len(grid["SEED"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for R in grid["R"]:
            for seed in grid["SEED"]:
                execute(nb, {"R": R, "SEED": seed}, Path(tmp) / "sequential" / f"R{R}_seed{seed}")
        sequential = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = sweep(nb, grid, Path(tmp) / "dask", "dask", workers=workers, progress=False)
        wall = time.perf_counter() - t0
        if result.failed:
            raise SystemExit(f"sweep runs failed: {result.failed}")
        import json

        busy = sum(json.loads((Path(r.out_dir) / "run_info.json").read_text())["seconds"] for r in result.runs)
    overhead = (wall * workers - busy) / n
    return [f"Notebook 01 at its defaults, {n} runs (R in {grid['R']}, SEED in {grid['SEED']}).", "",
            "| executor | workers | wall time (s) | ratio to sequential | scheduling overhead per run (s) |",
            "|---|---|---|---|---|",
            f"| sequential (one process) | 1 | {sequential:.1f} | 1.00 | |",
            f"| dask LocalCluster | {workers} | {wall:.1f} | {wall / sequential:.2f} | {overhead:.2f} |", "",
            f"Targets: ratio at most 0.6 ({'met' if wall / sequential <= 0.6 else 'missed'}); overhead per run at most "
            f"2 s ({'met' if overhead <= 2 else 'missed'}). The overhead counts the papermill kernel's start, which "
            "the sequential runs pay too."]


def ddp_part(workers: int, epochs: int, seeds) -> list[str]:
    rows = []
    for seed in seeds:
        for procs in (1, workers):
            with tempfile.TemporaryDirectory() as tmp:
                torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
                threads = max(1, (os.cpu_count() or 1) // procs)
                cmd = [torchrun, "--nproc_per_node", str(procs), "--master_port", str(29500 + procs + 10 * seed), "-m",
                       "inr_utils.liif.ddp", "--out", tmp, "--encoder", "unet3d", "--preset", "05-defaults", "--N", "32",
                       "--T-low", "8", "--n-train", "8", "--n-val", "2", "--epochs", str(epochs), "--batch", "4",
                       "--seed", str(seed), "--no-resume"]
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO_ROOT,
                               env={**os.environ, "OMP_NUM_THREADS": str(threads)})
                wall = time.perf_counter() - t0
                extra = torch.load(Path(tmp) / "models" / "unet3d.pt", weights_only=False)["extra"]
                h = extra["history"]
                rows.append((seed, procs, threads, h["val"], sum(h["seconds"]) / len(h["seconds"]), wall))
                print(f"seed {seed}, {procs} process(es): val {[round(v, 4) for v in h['val']]}, "
                      f"{rows[-1][4]:.1f} s per epoch", flush=True)
    lines = [f"LIIF UNet (05-defaults) on 8 phantom training subjects, N = 32, T_low = 8, global batch 4, {epochs} epochs "
             "(the same samples seen in every row).", "",
             "| seed | processes | threads each | validation rel. L1 per epoch | s per epoch | wall (s, with start-up) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {p} | {t} | {', '.join(f'{v:.4f}' for v in val)} | {ep:.1f} | {w:.0f} |" for s, p, t, val, ep, w in rows]
    by = {(s, p): val[-1] for s, p, _, val, _, _ in rows}
    spread = abs(by[(seeds[0], 1)] - by[(seeds[-1], 1)]) if len(seeds) > 1 else float("nan")
    gaps = [abs(by[(s, workers)] - by[(s, 1)]) for s in seeds]
    lines += ["", f"Final validation error, {workers} processes against 1: largest difference {max(gaps):.2e}; spread "
              f"between seeds (1 process): {spread:.2e} "
              f"({'within' if max(gaps) <= spread else 'outside'} the seed spread)."]
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("sweep", "ddp", "all"), default="all")
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    from inr_utils.report import write_benchmark

    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores. Command: `.venv/bin/python "
             f"benchmarks/distributed_scaling.py {' '.join(sys.argv[1:])}`".rstrip(), ""]
    if args.part in ("sweep", "all"):
        lines += ["**Notebook sweep on Dask workers**", ""] + sweep_part(args.runs, args.workers) + [""]
    if args.part in ("ddp", "all"):
        lines += ["**LIIF training with DDP (gloo)**", ""] + ddp_part(args.workers, args.epochs, [0, 1])
    text = "\n".join(lines)
    print(text)
    print(f"wrote {write_benchmark('distributed_scaling', text).relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
