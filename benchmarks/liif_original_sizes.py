"""Does RDN beat UNet at the original's encoder sizes? (notebook 05's comparison, original widths.)

Notebook 05 shrinks its encoders to fit a CPU budget (UNet 8/16/32; RDN 12 channels, 2 blocks of
2 layers, growth 8). This runs notebook 05 with the original's encoders instead (UNet 16/32/64;
RDN 32 channels, 5 blocks of 6 layers, growth 32), everything else at 05's defaults (view-shared
input, residual with image skip, data-consistency cascade, periodic time padding), on the real
slices, for each (R, T_low) and two seeds, each model under the same training budget
(``--budget-s`` seconds, and at most ``--epochs`` epochs; the plateau rule of ``--plateau``, applied
after ``--min-epochs``: with a few epochs its last quarter is 2-3 epochs, and validation noise
stops models that still learn).
Per (R, T_low) it states whether RDN beats UNet by more than the spread between its two seeds.
Each finished run is also recorded, one JSON line with what the tables need, in
``benchmarks/results/liif_original_sizes_runs.jsonl``; a recorded run or a finished one in
``--work`` is reused, so the command resumes and the tables can be rebuilt (``--table-only``)
on a fresh clone or on a machine without the runs' device. The models train on
``--device`` (notebook 05's ``DEVICE``; default ``auto``: a GPU when present, else the CPU, with
bfloat16 where the device has it); TV runs on the CPU. A budget in seconds means more epochs on a
GPU, so the device names the runs' folders and the results file.

    .venv/bin/python benchmarks/liif_original_sizes.py                      # R 3 6, T_low 4 8, seeds 0 1, 1800 s per model
    .venv/bin/python benchmarks/liif_original_sizes.py --R 6 --T-low 8 --budget-s 600
    .venv/bin/python benchmarks/liif_original_sizes.py --device cuda --N 128   # on a GPU, the original's image size
    .venv/bin/python benchmarks/liif_original_sizes.py --device cuda --budget-s 100 --keep-best
    .venv/bin/python benchmarks/liif_original_sizes.py --device cuda --budget-s 100 --table-only  # GPU runs' table, anywhere

``--keep-best`` ends each model with its lowest-validation epoch's weights (notebook 05's
``KEEP_BEST``); without it a model keeps its last epoch's, which at these sizes can be a
diverged one (the verdict then names it instead of comparing).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from inr_utils import REPO_ROOT
from inr_utils.liif.config import stopped_by
from inr_utils.pipeline import NOTEBOOK_DIR, execute
from inr_utils.report import BENCHMARK_RESULTS, BESIDE, HEADLINE, machine, write_benchmark
from inr_utils.runs import check_device, write_text_atomic
from inr_utils.summary import counted

NOTEBOOK = NOTEBOOK_DIR / "05_liif_architecture_search.py"
#: the original's encoders (notebook 05's parameters)
ORIGINAL_SIZES = {"UNET_CHANNELS": [16, 32, 64], "RDN_CHANNELS": 32, "RDN_BLOCKS": 5, "RDN_LAYERS": 6, "RDN_GROWTH": 32}


def device_suffix(device: str) -> str:
    """'' on the CPU, else e.g. '_cuda0': runs on another device get their own folders and results file."""
    return "" if device == "cpu" else "_" + device.replace(":", "")


#: the plateau rule's ``min_epochs`` of the runs recorded before ``--min-epochs`` existed (notebook
#: 05's TrainConfig default then); their folders and results files carry no ``_min`` suffix
LEGACY_MIN_EPOCHS = 8


def min_epochs_suffix(min_epochs: int) -> str:
    return "" if min_epochs == LEGACY_MIN_EPOCHS else f"_min{min_epochs}"


def run_dir(work: Path, R: float, T_low: int, seed: int, N: int, budget: float, device: str = "cpu",
            keep_best: bool = False, min_epochs: int = LEGACY_MIN_EPOCHS) -> Path:
    return work / (f"R{R:g}_T{T_low}_N{N}_seed{seed}_budget{budget:g}{device_suffix(device)}{'_best' if keep_best else ''}"
                   f"{min_epochs_suffix(min_epochs)}")


#: one JSON line per finished run (``run_record``), keyed by its run folder's name
RUNS_FILE = BENCHMARK_RESULTS / "liif_original_sizes_runs.jsonl"
#: what a record keeps of each method's entry in the run's metrics.json
RECORD_FIELDS = ("rel_l1", "epochs", "stop", "kept_epoch", "train_seconds")


def run_record(folder: Path) -> dict:
    """The record of a finished run folder: its name, the notebook's parameters that define the
    grid point, each method's ``RECORD_FIELDS``, its start time, the machine it ran on and whether
    its CNNs ran in bfloat16."""
    m = json.loads((folder / "metrics.json").read_text())
    info = json.loads((folder / "run_info.json").read_text())
    params = info.get("parameters", {})
    return {"run": folder.name, "R": m.get("R"), "T_low": m.get("T_low"), "seed": m.get("seed"), "N": m.get("N"),
            "device": m.get("device", "cpu"),
            "epochs_max": params.get("EPOCHS"), "plateau": params.get("PLATEAU"), "budget_s": params.get("MAX_SECONDS"),
            "min_epochs": params.get("MIN_EPOCHS", LEGACY_MIN_EPOCHS),
            "keep_best": params.get("KEEP_BEST"), "start_time": info.get("start_time"), "machine": machine(info),
            **({"threads": info["threads"]} if info.get("threads") is not None else {}),
            **({"bf16": m["bf16"]} if isinstance(m.get("bf16"), bool) else {}),
            "methods": {k: {f: v[f] for f in RECORD_FIELDS if f in v} for k, v in m["methods"].items()}}


def load_records(path: Path = RUNS_FILE) -> dict:
    """Recorded runs by run folder name (the last line of a name wins)."""
    if not path.is_file():
        return {}
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["run"]: r for r in records}


def save_record(record: dict, path: Path = RUNS_FILE) -> None:
    """Add or replace (by run name) one record; the file is rewritten sorted by name, atomically."""
    records = {**load_records(path), record["run"]: record}
    write_text_atomic(path, "".join(json.dumps(records[k], sort_keys=True) + "\n" for k in sorted(records)))


#: the CNNs' precision in the table, from the record's ``bf16`` (absent in records made before it was kept):
#: a budget in seconds buys another number of epochs in the other precision
PRECISION = {True: "bfloat16", False: "float32"}


def precision_note(record: dict) -> str:
    """' (float32)' or ' (bfloat16)' when the run recorded how its CNNs ran; '' when it did not."""
    name = PRECISION.get(record.get("bf16"))
    return f" ({name})" if name else ""


def threads_note(record: dict) -> str:
    """', 1 thread' when the run recorded its OMP_NUM_THREADS (a budget in seconds buys more epochs
    on more threads); '' when it did not (records made before threads were kept)."""
    n = record.get("threads")
    return "" if n is None else f", {counted(n, 'thread')}"


#: relative L1 of the zero image: a model above it has diverged (worse than predicting nothing)
DIVERGED_REL_L1 = 1.0


def epochs_cell(method: dict) -> str:
    """'22 (plateau)', or '22 (plateau; kept 17)' when the model ended with an earlier epoch's weights."""
    epochs, kept = method.get("epochs", "?"), method.get("kept_epoch")
    return f"{epochs} ({stopped_by(method)}" + (f"; kept {kept}" if kept not in (None, epochs) else "") + ")"


def headline_row(R: float, T_low: int, runs: list) -> str:
    """One README row per (R, T_low): the seeds' mean relative L1 of each model and of TV, epochs,
    training seconds and the verdict."""
    mean = {k: np.mean([m["methods"][k]["rel_l1"] for m in runs]) for k in ("RDN", "UNet", "TV")}
    epochs = {k: "/".join(str(m["methods"][k].get("epochs", "?")) for m in runs) for k in ("RDN", "UNet")}
    seconds = {k: "/".join(f"{m['methods'][k]['train_seconds']:.0f}" for m in runs) for k in ("RDN", "UNet")}
    # a seed changes the masks and noise as well as the initialisation, so both models' errors move
    # together with it; the paired difference shows which model wins on the same data
    paired = ", ".join(f"{m['methods']['UNet']['rel_l1'] - m['methods']['RDN']['rel_l1']:+.4f}" for m in runs)
    return (f"| {R:g} | {T_low} | {len(runs)} | {mean['RDN']:.4f} | {mean['UNet']:.4f} | {mean['TV']:.4f} | "
            f"{min(mean['RDN'], mean['UNet']) / mean['TV']:.3f} | {epochs['RDN']}; {epochs['UNet']} | "
            f"{seconds['RDN']}; {seconds['UNet']} | {paired} | {verdict(runs)} |")


def verdict(runs: list) -> str:
    """Whether RDN's mean relative L1 beats UNet's by more than the larger of the two seed spreads
    (and when not, whether UNet beats RDN by more than it or the two lie within it)."""
    rdn = [m["methods"]["RDN"]["rel_l1"] for m in runs]
    unet = [m["methods"]["UNet"]["rel_l1"] for m in runs]
    diverged = [f"{name} (seed {m.get('seed', '?')})" for m in runs for name in ("RDN", "UNet")
                if not np.isfinite(m["methods"][name]["rel_l1"]) or m["methods"][name]["rel_l1"] > DIVERGED_REL_L1]
    if diverged:
        return f"no verdict: {', '.join(diverged)} diverged (relative L1 above {DIVERGED_REL_L1:g}, the zero image's)"
    if len(runs) < 2:
        return "one seed only: no spread"
    gap, spread = np.mean(unet) - np.mean(rdn), max(np.ptp(rdn), np.ptp(unet))
    word = "yes" if gap > spread else "no, UNet beats RDN by more than it" if -gap > spread else "no, within the spread"
    return f"{word}: UNet - RDN = {gap:+.4f}, seed spread {spread:.4f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--R", type=float, nargs="+", default=[3, 6])
    ap.add_argument("--T-low", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--budget-s", type=float, default=1800, help="training seconds per model")
    ap.add_argument("--epochs", type=int, default=200, help="most epochs per model")
    ap.add_argument("--plateau", type=float, default=0.01, help="plateau rule (notebook 05's PLATEAU)")
    ap.add_argument("--min-epochs", type=int, default=40,
                    help=f"epochs before the plateau rule applies (notebook 05's MIN_EPOCHS; {LEGACY_MIN_EPOCHS}: the first grid's)")
    ap.add_argument("--device", default="auto", help="where the models train: cpu, cuda, cuda:<n> or auto (default)")
    ap.add_argument("--work", type=Path, default=REPO_ROOT / ".build" / "liif_original_sizes",
                    help="where the runs go (reused when finished)")
    ap.add_argument("--keep-best", action="store_true",
                    help="each model ends with its lowest-validation epoch's weights (notebook 05's KEEP_BEST; default: the last epoch's)")
    ap.add_argument("--table-only", action="store_true",
                    help="train nothing: write the table from the runs of the grid recorded or finished in --work")
    ap.add_argument("--runs-file", type=Path, default=RUNS_FILE, help="the record of finished runs (one JSON line each)")
    args = ap.parse_args()
    if args.budget_s <= 0 or args.epochs < 1 or not 0 < args.plateau < 1 or args.min_epochs < 2:
        raise SystemExit("--budget-s must be > 0, --epochs >= 1, --plateau in (0, 1) and --min-epochs >= 2")
    try:  # with --table-only the runs' device by name: their table can be written on a machine without it
        device = check_device(args.device, present=not args.table_only)
    except ValueError as err:
        raise SystemExit(f"--table-only needs the device the runs trained on: {err}" if args.table_only else str(err))
    records = load_records(args.runs_file)
    rows, verdicts, headline, missing, precisions = [], [], [], [], set()
    for R in args.R:
        for T_low in args.T_low:
            runs = []
            for seed in args.seeds:
                folder = run_dir(args.work, R, T_low, seed, args.N, args.budget_s, device, args.keep_best, args.min_epochs)
                finished = (folder / "metrics.json").exists()
                if not finished and folder.name not in records and args.table_only:
                    missing.append(f"R {R:g}, T_low {T_low}, seed {seed}")
                    continue
                if not finished and folder.name not in records:
                    print(f"running 05 at the original's sizes: R {R:g}, T_low {T_low}, seed {seed} -> {folder}", flush=True)
                    execute(NOTEBOOK, {"R": R, "T_LOW": T_low, "DATA": "sunnybrook", "SEED": seed, "N": args.N,
                                       "EPOCHS": args.epochs, "PLATEAU": args.plateau, "MIN_EPOCHS": args.min_epochs,
                                       "MAX_SECONDS": args.budget_s,
                                       "RETRAIN": True, "DEVICE": device, "KEEP_BEST": args.keep_best,
                                       **ORIGINAL_SIZES}, folder, progress=True)
                    finished = True
                if finished:  # a run folder is the source; its record is (re)written from it
                    records[folder.name] = run_record(folder)
                    save_record(records[folder.name], args.runs_file)
                m = records[folder.name]
                runs.append(m)
                precisions.add(PRECISION.get(m.get("bf16")))
                meth = m["methods"]
                rows.append(f"| {R:g} | {T_low} | {seed} | {meth['RDN']['rel_l1']:.4f} | {meth['UNet']['rel_l1']:.4f} | "
                            f"{meth['TV']['rel_l1']:.4f} | {meth['ZF']['rel_l1']:.4f} | "
                            f"{epochs_cell(meth['RDN'])}, {epochs_cell(meth['UNet'])} | "
                            f"{meth['RDN']['train_seconds']:.0f}, {meth['UNet']['train_seconds']:.0f} | "
                            f"{(m.get('start_time') or '?')[:10]} | {m.get('machine', '?')}, {m.get('device', 'cpu')}"
                            f"{precision_note(m)}{threads_note(m)} |")
                print(rows[-1], flush=True)
            if runs:
                verdicts.append(f"- R = {R:g}, T_low = {T_low}: RDN beats UNet by more than the seed spread? {verdict(runs)}")
                headline.append(headline_row(R, T_low, runs))
    if not rows:
        raise SystemExit(f"no finished run of this grid in {args.work} or {args.runs_file}")
    cmd = (f".venv/bin/python benchmarks/liif_original_sizes.py --R {' '.join(f'{r:g}' for r in args.R)} --T-low "
           f"{' '.join(map(str, args.T_low))} --seeds {' '.join(map(str, args.seeds))} --N {args.N} --budget-s {args.budget_s:g} "
           f"--epochs {args.epochs} --plateau {args.plateau:g} --min-epochs {args.min_epochs} --device {device}"
           + (" --keep-best" if args.keep_best else ""))
    kept = "its lowest-validation epoch's weights" if args.keep_best else "its last epoch's weights"
    # the headline names the precision only when every run recorded the same one
    shared_precision = f" in {next(iter(precisions))}" if len(precisions) == 1 and None not in precisions else ""
    lines = ["Notebook 05's comparison at the original's encoder sizes (UNet 16/32/64; RDN 32 channels, 5 blocks of 6 "
             f"layers, growth 32), 05's defaults otherwise, real slices (test patient SCD0000501), N = {args.N}; each model "
             f"trained for at most {args.budget_s:g} s and {args.epochs} epochs, stopping earlier at a {100 * args.plateau:g}% "
             f"plateau (judged after {args.min_epochs} epochs or more); each model keeps {kept}. Relative L1 at 64 query times. Command: `{cmd}`", "", BESIDE.format(NOTEBOOK.stem), HEADLINE[0],
             f"Notebook 05 at the original's encoder sizes (UNet 16/32/64; RDN 32 channels, 5 blocks of 6 layers, growth "
             f"32) on the real test patient, N = {args.N}, each model trained for at most {args.budget_s:g} s on "
             f"{device}{shared_precision} (checked after each epoch; the {100 * args.plateau:g}% plateau rule after {args.min_epochs} epochs "
             f"or more), keeping {kept}, mean relative L1 over the seeds; notebook 05 with its own, smaller "
             "encoders is in its LIIF table above.",
             "", "| R | T_low | seeds | RDN | UNet | TV | best / TV | epochs (RDN; UNet) per seed | train s (RDN; UNet) "
             "per seed | UNet - RDN per seed (same data) | RDN beats UNet by more than the seed spread? |",
             "|---|---|---|---|---|---|---|---|---|---|---|",
             *headline, *(["", f"Not run yet (the command resumes them): {'; '.join(missing)}."] if missing else []),
             HEADLINE[1], "",
             "| R | T_low | seed | RDN | UNet | TV | ZF | epochs (RDN, UNet; the rule that stopped them) | train s (RDN, UNet) | "
             "run on | machine, device |",
             "|---|---|---|---|---|---|---|---|---|---|---|", *rows, "", *verdicts]
    name = "liif_original_sizes" + ("" if args.budget_s == 1800 and args.N == 64 else f"_N{args.N}_budget{args.budget_s:g}")
    name += device_suffix(device) + ("_best" if args.keep_best else "") + min_epochs_suffix(args.min_epochs)
    print(f"wrote {write_benchmark(name, chr(10).join(lines))}")


if __name__ == "__main__":
    main()
