"""Coil maps estimated from the data against the maps that simulated them (a script, not a test).

    .venv/bin/python benchmarks/coil_maps.py                 # training and validation mid slices
    .venv/bin/python benchmarks/coil_maps.py --slices default --first 3

On each slice (simulated as the benchmark does: R = 6, 4 coils, per-frame VD masks, noise
1e-3 or ``--snr-db``) temporal TV (``tv.tv_recon``, ``--iters`` iterations) is run with the
known maps and with each estimate, at relative log10 lambda in ``--lambdas``; the table gives
the best PSNR with the known maps and, per estimate, its best PSNR minus that, plus the
fully sampled coil combination with the estimated maps (the ceiling a map error leaves,
sum_c conj(S_est_c) S_c x against x). The estimates: ESPIRiT at the project's defaults
(``coils.ESPIRIT_*``), ESPIRiT at sigpy's and BART's common setting (kernel 6, region 24,
crop 0.95), and the low-resolution maps from 24 lines and at their defaults (48). The
ESPIRiT defaults and the low-resolution band were chosen on the training and validation
slices (``--slices tune``) with this script.

Writes ``benchmarks/results/coil_maps[_<slices>][_snr<dB>].md``.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def estimates():
    from inr_utils import coils

    return {
        "ESPIRiT (defaults)": lambda a: coils.estimate(a.kspace, a.mask, "espirit")[0],
        "ESPIRiT k6 r24 c0.95": lambda a: coils.espirit_maps(a.kspace, a.mask, min(24, coils.calibration_band(a.mask)),
                                                             kernel=6, crop=0.95),
        "lowres 24": lambda a: coils.lowres_maps(a.kspace, a.mask, min(24, coils.calibration_band(a.mask))),
        "lowres (defaults: 48)": lambda a: coils.estimate(a.kspace, a.mask, "lowres")[0],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slices", default="tune", help="as in global_recon.py: 'tune', 'default' or one DATA spec")
    ap.add_argument("--first", type=int, default=None, help="only the first N slices")
    ap.add_argument("--snr-db", type=float, default=None)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[-3, -2.5, -2])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(args.threads)
    from global_recon import simulated_case, slice_specs

    from inr_utils import metrics, selection, tv
    from inr_utils.report import write_benchmark

    specs = slice_specs(args.slices)[:args.first]
    rec = tv.reconstructor(args.iters)
    names = list(estimates())
    lines = [f"Temporal TV ({args.iters} iterations, best of relative log10 lambda {args.lambdas}) with coil maps "
             f"estimated from the undersampled data against the known maps; R = 6, 4 coils, noise "
             f"{'1e-3' if args.snr_db is None else f'for an image SNR of {args.snr_db:g} dB'}. Per estimate: PSNR "
             "difference to the known maps (dB) / ceiling (PSNR of the fully sampled coil combination with the "
             f"estimated maps). Command: `{shlex.join(['.venv/bin/python', 'benchmarks/coil_maps.py'] + sys.argv[1:])}`", "",
             "| slice | known maps | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    diffs = {n: [] for n in names}
    for spec in tqdm(specs, desc="slices"):
        acq = simulated_case(spec, 6, args.snr_db)
        x = acq.target
        best = lambda a: max(metrics.psnr(selection.fit_at(rec, a, ll, None).recon, x) for ll in args.lambdas)
        known = best(acq)
        cells = []
        for name, estimate in estimates().items():
            maps = estimate(acq)
            ceiling = metrics.psnr((np.conj(maps)[None] * (acq.smaps[None] * x[:, None])).sum(1), x)
            diffs[name].append(best(dataclasses.replace(acq, smaps=maps)) - known)
            cells.append(f"{diffs[name][-1]:+.2f} / {ceiling:.1f}")
        lines.append(f"| {spec.replace('sunnybrook:', '')} | {known:.2f} | " + " | ".join(cells) + " |")
    lines.append("| mean | | " + " | ".join(f"{np.mean(diffs[n]):+.2f}" for n in names) + " |")
    table = "\n".join(lines)
    print(table)
    name = "coil_maps" + ("" if args.slices == "tune" else "_" + args.slices.replace(":", "-").replace("/", "-")) + \
        (f"_first{args.first}" if args.first else "") + (f"_snr{args.snr_db:g}" if args.snr_db is not None else "")
    print(f"\nwrote {write_benchmark(name, table)}")


if __name__ == "__main__":
    main()
