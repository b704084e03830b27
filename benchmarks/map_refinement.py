"""The coil-map refinement's grid, chosen on the training and validation slices (a script, not a test).

    .venv/bin/python benchmarks/map_refinement.py                  # the four training / validation mid slices
    .venv/bin/python benchmarks/map_refinement.py --grids 0 8 16 32
    .venv/bin/python benchmarks/map_refinement.py --method tv --grids 0 16 --map-lrs 5e-3 2e-2 5e-2 \
        --log-lambda -3 -2.5 --log-mu -4

Each slice is simulated as the benchmark does (R = 6, 4 coils, per-frame VD masks, noise 1e-3)
and fitted at fixed relative weights (``--log-lambda``, ``--log-mu``; several values: every
pair) with the known maps, and with ESPIRiT maps estimated from the undersampled data refined
on each grid of ``--grids`` (0: used as estimated), by the default INR (``--method inr``) or by
our temporal + spatial TV (``--method tv``, ``tv.tv_recon`` with its default iterations) at
each learning rate of the maps' correction in ``--map-lrs`` (default: the method's own; the
INR's is its ``map_lr``, by default its own learning rate).
``inr.default_map_grid`` (N/8) was chosen with the INR, ``tv.MAP_LR`` with TV.

Writes ``benchmarks/results/map_refinement.md`` (``map_refinement_tv.md`` for TV,
``map_refinement_inr_lr.md`` for the INR with ``--map-lrs``), PSNR and seconds per fit.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slices", default="tune", help="as in global_recon.py: 'tune', 'default' or one DATA spec")
    ap.add_argument("--method", choices=("inr", "tv"), default="inr", help="the default INR or our TV+S")
    ap.add_argument("--grids", type=int, nargs="+", default=[0, 8, 16])
    ap.add_argument("--map-lrs", type=float, nargs="+", default=None,
                    help="learning rates of the maps' correction (default: the method's own)")
    ap.add_argument("--log-lambda", type=float, nargs="+", default=[-2.0])
    ap.add_argument("--log-mu", type=float, nargs="+", default=[-3.0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from tqdm.auto import tqdm

    from global_recon import simulated_case, slice_specs
    from inr_utils import inr, metrics, selection, tv
    from inr_utils.report import write_benchmark

    torch.set_num_threads(args.threads)
    try:
        grids = [inr.check_map_grid(g, "--grids") for g in args.grids]
    except ValueError as err:
        raise SystemExit(str(err))
    specs = slice_specs(args.slices)
    if any("SCD0000501" in s for s in specs):
        print("note: SCD0000501 is the test patient; choose settings on the training and validation slices")

    try:
        map_lrs = [tv.check_rate("--map-lrs", v) for v in args.map_lrs] if args.map_lrs else (
            [tv.MAP_LR] if args.method == "tv" else [None])
    except ValueError as err:
        raise SystemExit(str(err))
    weights = [(ll, lm) for ll in args.log_lambda for lm in args.log_mu]

    def fit(acq, grid, log_lambda, log_mu, map_lr):
        """PSNR (dB) and seconds of one fit at relative weights."""
        y = torch.from_numpy(acq.kspace)
        lam, mu = selection.absolute(log_lambda, log_mu, selection.data_scale(acq.zero_filled()))
        t0 = time.perf_counter()
        if args.method == "tv":
            x, *_ = tv.tv_recon(acq.op, y, lam, mu=mu, log_every=10 ** 9, map_grid=grid, map_lr=map_lr)
        else:
            settings = inr.default_settings(selection.DEFAULT_REPRESENTATION, acq.target.shape, map_grid=grid,
                                            map_lr=map_lr)
            x, *_ = inr.reconstructor(settings, progress=False)(acq.op, y, lam, mu, None)
        return metrics.psnr(x, acq.target), time.perf_counter() - t0

    columns = [("known maps", 0, None)] + [
        (f"ESPIRiT, grid {g}" + (f", map lr {lr:g}" if lr is not None and len(map_lrs) > 1 else "") if g
         else "ESPIRiT as estimated", g, lr) for g in grids for lr in (map_lrs if g else [None])]
    head = [name for name, *_ in columns]
    rows = []
    for spec in tqdm(specs, desc="slices"):
        known = simulated_case(spec, 6)
        estimated = simulated_case(spec, 6, coil_maps="espirit")
        for ll, lm in weights:
            cells = [fit(known if name == "known maps" else estimated, g, ll, lm, lr) for name, g, lr in columns]
            rows.append(f"| {spec.replace('sunnybrook:', '')} | {ll:g}, {lm:g} | "
                        + " | ".join(f"{p:.2f} ({s:.0f} s)" for p, s in cells) + " |")
            tqdm.write(rows[-1])
    cmd = shlex.join([".venv/bin/python", "benchmarks/map_refinement.py"] + sys.argv[1:])
    fitted = (f"Our temporal + spatial TV (`tv.tv_recon`, its default iterations)" if args.method == "tv" else
              f"The default INR ({selection.DEFAULT_REPRESENTATION}, its default steps)")
    text = "\n".join([
        f"{fitted} at fixed relative weights (log10 lambda, log10 mu), R = 6, 4 coils, noise 1e-3: PSNR (dB) and "
        f"seconds per fit with the known maps and with ESPIRiT maps refined on each grid (`inr.CoilMapRefinement`)"
        + (f", the maps' correction at learning rate {', '.join(f'{v:g}' for v in map_lrs)}" if map_lrs != [None] else "")
        + f". {args.threads} thread(s). Command: `{cmd}`", "",
        "| slice | weights | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head), *rows])
    print(text)
    name = "map_refinement_tv" if args.method == "tv" else "map_refinement_inr_lr" if args.map_lrs else "map_refinement"
    print(f"\nwrote {write_benchmark(name, text)}")


if __name__ == "__main__":
    main()
