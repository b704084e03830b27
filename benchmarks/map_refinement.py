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
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import fixed_weights  # noqa: E402  (beside this script)
from inr_utils.summary import counted  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=("inr", "tv"), default="inr", help="the default INR or our TV+S")
    ap.add_argument("--grids", type=int, nargs="+", default=[0, 8, 16])
    ap.add_argument("--map-lrs", type=float, nargs="+", default=None,
                    help="learning rates of the maps' correction (default: the method's own)")
    fixed_weights.add_arguments(ap, log_lambda=-2.0, log_mu=-3.0)
    args = ap.parse_args()

    import torch

    from global_recon import simulated_case
    from inr_utils import inr, selection, tv

    torch.set_num_threads(args.threads)
    try:
        grids = [inr.check_map_grid(g, "--grids") for g in args.grids]
        map_lrs = [tv.check_rate("--map-lrs", v) for v in args.map_lrs] if args.map_lrs else (
            [tv.MAP_LR] if args.method == "tv" else [None])
    except ValueError as err:
        raise SystemExit(str(err))
    specs = fixed_weights.tuning_specs(args.slices)
    weights = [(ll, lm) for ll in args.log_lambda for lm in args.log_mu]

    def reconstruct(grid, map_lr):
        """The method refining the maps on ``grid`` (0: as given) at ``map_lr``."""
        if args.method == "tv":
            return lambda acq, y, lam, mu: tv.tv_recon(acq.op, y, lam, mu=mu, log_every=10 ** 9, map_grid=grid,
                                                       map_lr=map_lr)[0]
        return lambda acq, y, lam, mu: inr.reconstructor(
            inr.default_settings(selection.DEFAULT_REPRESENTATION, acq.target.shape, map_grid=grid, map_lr=map_lr),
            progress=False)(acq.op, y, lam, mu, None)[0]

    columns = [("known maps", 0, None)] + [
        (f"ESPIRiT, grid {g}" + (f", map lr {lr:g}" if lr is not None and len(map_lrs) > 1 else "") if g
         else "ESPIRiT as estimated", g, lr) for g in grids for lr in (map_lrs if g else [None])]
    rows, _ = fixed_weights.fit_rows(
        specs, weights, lambda spec: {"known": simulated_case(spec, 6), "estimated": simulated_case(spec, 6, coil_maps="espirit")},
        lambda cases, ll, lm: [fixed_weights.timed_fit(cases["known" if name == "known maps" else "estimated"], ll, lm,
                                                       reconstruct(g, lr)) for name, g, lr in columns])
    fitted = (f"Our temporal + spatial TV (`tv.tv_recon`, its default iterations)" if args.method == "tv" else
              f"The default INR ({selection.DEFAULT_REPRESENTATION}, its default steps)")
    caption = (f"{fitted} at fixed relative weights (log10 lambda, log10 mu), R = 6, 4 coils, noise 1e-3: PSNR (dB) and "
               f"seconds per fit with the known maps and with ESPIRiT maps refined on each grid (`inr.CoilMapRefinement`)"
               + (f", the maps' correction at learning rate {', '.join(f'{v:g}' for v in map_lrs)}" if map_lrs != [None] else "")
               + f". {counted(args.threads, 'thread')}.")
    name = "map_refinement_tv" if args.method == "tv" else "map_refinement_inr_lr" if args.map_lrs else "map_refinement"
    fixed_weights.write_table(name, "map_refinement.py", caption, [name for name, *_ in columns], rows)


if __name__ == "__main__":
    main()
