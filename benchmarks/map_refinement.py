"""The coil-map refinement's grid, chosen on the training and validation slices (a script, not a test).

    .venv/bin/python benchmarks/map_refinement.py                  # the four training / validation mid slices
    .venv/bin/python benchmarks/map_refinement.py --grids 0 8 16 32

Each slice is simulated as the benchmark does (R = 6, 4 coils, per-frame VD masks, noise 1e-3)
and fitted by the default INR at fixed relative weights (``--log-lambda``, ``--log-mu``) with
the known maps, and with ESPIRiT maps estimated from the undersampled data refined on each
grid of ``--grids`` (0: used as estimated). ``inr.default_map_grid`` (N/8) was chosen with it.

Writes ``benchmarks/results/map_refinement.md``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slices", default="tune", help="as in global_recon.py: 'tune', 'default' or one DATA spec")
    ap.add_argument("--grids", type=int, nargs="+", default=[0, 8, 16])
    ap.add_argument("--log-lambda", type=float, default=-2.0)
    ap.add_argument("--log-mu", type=float, default=-3.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from tqdm.auto import tqdm

    from global_recon import simulated_case, slice_specs
    from inr_utils import inr, metrics, selection
    from inr_utils.report import write_benchmark

    torch.set_num_threads(args.threads)
    try:
        grids = [inr.check_map_grid(g, "--grids") for g in args.grids]
    except ValueError as err:
        raise SystemExit(str(err))
    specs = slice_specs(args.slices)
    if any("SCD0000501" in s for s in specs):
        print("note: SCD0000501 is the test patient; choose the grid on the training and validation slices")

    def psnr_of(acq, grid):
        y = torch.from_numpy(acq.kspace)
        settings = inr.default_settings(selection.DEFAULT_REPRESENTATION, acq.target.shape, map_grid=grid)
        lam, mu = selection.absolute(args.log_lambda, args.log_mu, selection.data_scale(acq.zero_filled()))
        x, *_ = inr.reconstructor(settings, progress=False)(acq.op, y, lam, mu, None)
        return metrics.psnr(x, acq.target)

    head = ["known maps"] + [f"ESPIRiT, grid {g}" if g else "ESPIRiT as estimated" for g in grids]
    rows = []
    for spec in tqdm(specs, desc="slices"):
        known = simulated_case(spec, 6)
        estimated = simulated_case(spec, 6, coil_maps="espirit")
        values = [psnr_of(known, 0)] + [psnr_of(estimated, g) for g in grids]
        rows.append(f"| {spec.replace('sunnybrook:', '')} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
        tqdm.write(rows[-1])
    cmd = shlex.join([".venv/bin/python", "benchmarks/map_refinement.py"] + sys.argv[1:])
    text = "\n".join([
        f"The default INR ({selection.DEFAULT_REPRESENTATION}, its default steps) at relative log10 lambda "
        f"{args.log_lambda:g}, log10 mu {args.log_mu:g}, R = 6, 4 coils, noise 1e-3: PSNR (dB) with the known maps "
        f"and with ESPIRiT maps refined on each grid (`inr.CoilMapRefinement`). {args.threads} thread(s). "
        f"Command: `{cmd}`", "",
        "| slice | " + " | ".join(head) + " |", "|---|" + "---|" * len(head), *rows])
    print(text)
    print(f"\nwrote {write_benchmark('map_refinement', text)}")


if __name__ == "__main__":
    main()
