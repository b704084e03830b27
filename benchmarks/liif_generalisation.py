"""How do notebook 05's shipped models do on data they were not trained on?

Each shipped 05 model pair (UNet, RDN; ``inr_utils/data/liif_models/05_liif_architecture_search``)
is evaluated on the other data (real-trained models on phantom test subjects and the other way
round), at acceleration rates and k-space noise levels other than the training ones, beside
temporal TV tuned on the validation subjects of that same setting and zero filling. Relative L1
at 64 query times, mean over the test subjects (the real test patient SCD0000501: its 11 slices;
phantom: 4 test seeds). Writes ``benchmarks/results/liif_generalisation.md``.

    .venv/bin/python benchmarks/liif_generalisation.py
    .venv/bin/python benchmarks/liif_generalisation.py --R 4 6 8 --noise 0 0.02
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from inr_utils import liif
from inr_utils.io import data_label
from inr_utils.report import write_benchmark

SHIPPED_05 = liif.SHIPPED_MODELS / "05_liif_architecture_search"
TV_LOG_LAMBDAS = (-3.0, -2.5, -2.0, -1.5, -1.0)


def evaluate(models: dict, data, R: float, T_low: int, noise: float, N: int, seed: int = 0) -> dict:
    """Mean relative L1 of each model, ZF and tuned TV at one setting; TV's lambda from the validation subjects."""
    cfg = liif.DataConfig(data, N, liif.AcquisitionSpec(R, T_low, 32, 16, noise_std=noise), 64, n_train=1, n_val=4,
                          n_test=4, seed=seed)
    _, val_set, test_set = liif.datasets(cfg)
    tv_ll, _ = liif.tune_tv(val_set, TV_LOG_LAMBDAS)
    samples, recons, _ = liif.evaluate_all(models, test_set)
    recons["TV"] = [liif.tv_at_queries(s, tv_ll) for s in samples]
    targets = [s.target.numpy() for s in samples]
    return {name: liif.mean_metrics(x, targets)["rel_l1"] for name, x in recons.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--R", type=float, nargs="+", default=None, help="rates to evaluate (default: the training R, 4 and 8)")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.02], help="k-space noise std (images peak near 1)")
    ap.add_argument("--runs", nargs="+", default=None, help="shipped run folders to evaluate (default: all, e.g. R6_T8_sunnybrook)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folders = sorted(d for d in SHIPPED_05.glob("*") if (d / "manifest.json").is_file() and (not args.runs or d.name in args.runs))
    if not folders:
        raise SystemExit(f"no shipped notebook-05 models under {SHIPPED_05}")
    rows = []
    for folder in folders:
        manifest = json.loads((folder / "manifest.json").read_text())
        d = manifest["data"]
        R0, T_low, N, trained_on = d["acquisition"]["R"], d["acquisition"]["T_low"], d["N"], d["data"]
        models = {name: liif.load_model(folder / f"{name}.pt") for name in ("RDN", "UNet")}
        settings = [(data, R, noise) for data in (trained_on, None if trained_on else "sunnybrook")
                    for R in (args.R or sorted({R0, 4.0, 8.0})) for noise in args.noise]
        for data, R, noise in settings:
            r = evaluate(models, data, R, T_low, noise, N)
            best = min(r["RDN"], r["UNet"]) / r["TV"]
            same = data == trained_on and R == R0 and noise == d["acquisition"]["noise_std"]
            rows.append(f"| {data_label(trained_on)}, R {R0:g}, T_low {T_low} | {data_label(data)} | {R:g} | {noise:g} | "
                        f"{r['RDN']:.4f} | {r['UNet']:.4f} | {r['TV']:.4f} | {r['ZF']:.4f} | {best:.3f}"
                        f"{' (training setting)' if same else ''} |")
            print(rows[-1], flush=True)
    cmd = "`.venv/bin/python benchmarks/liif_generalisation.py" + (f" --runs {' '.join(args.runs)}" if args.runs else "") + \
          (f" --R {' '.join(f'{r:g}' for r in args.R)}" if args.R else "") + f" --noise {' '.join(f'{n:g}' for n in args.noise)}`"
    lines = ["Notebook 05's shipped models evaluated on other data, rates and k-space noise than they were trained on, "
             "against temporal TV tuned on the validation subjects of each setting. Relative L1 at 64 query times "
             f"(lower is better); best / TV below 1 means a LIIF model beats TV. Command: {cmd}", "",
             "| models trained on | evaluated on | R | noise | RDN | UNet | TV | ZF | best LIIF / TV |",
             "|---|---|---|---|---|---|---|---|---|", *rows]
    print(f"wrote {write_benchmark('liif_generalisation', chr(10).join(lines))}")


if __name__ == "__main__":
    main()
