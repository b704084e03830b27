"""How much error does the binning itself cause? (LIIF task of notebook 05.)

For every (R, T_low) of the LIIF grid, on the test subjects of notebook 05 (same seeds,
N = 64, T_eval = 64 uniform query times), relative L1 at the query times of:
  - the TRUE images at the bin centres, interpolated periodically in time (the temporal floor
    of any method that reconstructs the bins and interpolates);
  - the same true images with each bin's measured lines put back (the floor of any method
    that enforces consistency with the bins, as temporal TV does: a bin's lines were
    acquired at different times of its window, so no single image matches them);
  - zero filling and view sharing of the bins (the inputs of the networks).
Writes ``benchmarks/results/liif_consistency_floor.md`` and refreshes the README.

    .venv/bin/python benchmarks/liif_consistency_floor.py
"""
from __future__ import annotations

import argparse

import numpy as np

from inr_utils import liif
from inr_utils.metrics import rel_l1
from inr_utils.report import write_benchmark


def errors(DATA, R: float, T_low: int, n_test: int, seed: int) -> dict:
    # notebook 05's test set: N = 64, T_high = 32, T_eval = 64
    _, _, test = liif.datasets(liif.DataConfig(DATA, 64, liif.AcquisitionSpec(R, T_low, 32, 16), 64, n_test=n_test, seed=seed))
    rows = []
    for i in range(len(test)):
        s = test.sample(i, with_bin_truth=True)
        target = s.target.numpy()
        rows.append({**liif.consistency_floor(s), "ZF": rel_l1(liif.zf_at_queries(s), target),
                     "view sharing": rel_l1(liif.zf_at_queries(s, "vs"), target)})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0, help="SEED of notebook 05 (its test set uses SEED + 2)")
    ap.add_argument("--n-test", type=int, default=4, help="phantom test subjects (05's N_TEST)")
    args = ap.parse_args()
    lines = [f"Relative L1 at the query times on notebook 05's test subjects (N = 64, T_eval = 64, seed {args.seed}). "
             "Command: `.venv/bin/python benchmarks/liif_consistency_floor.py`", "",
             "| data | R | T_low | true bins | true bins + measured lines | ZF | view sharing |", "|---|---|---|---|---|---|---|"]
    for DATA in ("sunnybrook", None):
        for R in (3, 6):
            for T_low in (4, 8):
                e = errors(DATA, R, T_low, args.n_test, args.seed)
                lines.append(f"| {DATA or 'phantom'} | {R} | {T_low} | {e['true_bins']:.3f} | "
                             f"{e['true_bins_with_measured_lines']:.3f} | {e['ZF']:.3f} | {e['view sharing']:.3f} |")
                print(lines[-1], flush=True)
    out = write_benchmark("liif_consistency_floor", "\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
