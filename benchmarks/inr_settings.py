"""The default INR's steps, learning rate and rank (or another representation's settings),
compared on the training and validation slices (a script, not a test).

    .venv/bin/python benchmarks/inr_settings.py --configs steps=500 steps=750 lr=3e-2 rank=12
    .venv/bin/python benchmarks/inr_settings.py --representation hashgrid --configs default start=none

Each slice of ``--slices`` (default: the mid-ventricular slices of the training and validation
patients) is simulated as the benchmark does (R = 6, 4 coils, per-frame VD masks, noise 1e-3,
ESPIRiT maps from the undersampled data refined on the default grid) and fitted by the default
representation at fixed relative weights (``--log-lambda``, ``--log-mu``; several values:
every pair), once per configuration of ``--configs``. A configuration overrides the defaults
(``inr.default_settings``): ``steps``, ``lr``, ``map_lr``, ``start`` (``none``: no starting
image) or a constructor argument such as ``rank`` or ``log2_table``, comma-separated
(``steps=750,lr=3e-2``); ``default`` is the defaults unchanged.

Writes ``benchmarks/results/inr_settings.md`` (``inr_settings_<representation>.md`` for another
representation than the default): PSNR (dB) and seconds per fit, and the mean PSNR and mean
seconds of each configuration over the fits.
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


def parse_config(text: str) -> dict:
    """``"steps=750,lr=3e-2"`` -> ``{"steps": 750, "lr": 0.03}``; ``"default"`` -> ``{}``."""
    if text == "default":
        return {}
    config = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"--configs entry {text!r}: write key=value pairs separated by commas, e.g. steps=750,lr=3e-2")
        if key == "start":  # the one setting that is a word: "zero-filled" or "none"
            config[key] = value
            continue
        config[key] = int(value) if value.lstrip("-").isdigit() else float(value)  # "18" an int, "3e-2" a float
    return config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["default"], help="settings to compare (see above)")
    fixed_weights.add_arguments(ap, log_lambda=-3.0, log_mu=-4.0)
    ap.add_argument("--representation", default=None,
                    help="the representation whose settings are compared (default: the default INR)")
    ap.add_argument("--R", type=float, default=6)
    ap.add_argument("--name", default=None, help="results file name (default: inr_settings[_<representation>])")
    args = ap.parse_args()

    import numpy as np
    import torch

    from global_recon import simulated_case
    from inr_utils import inr, selection

    torch.set_num_threads(args.threads)
    rep = args.representation or selection.DEFAULT_REPRESENTATION
    try:
        inr.REPRESENTATIONS.check(rep)
    except ValueError as err:
        raise SystemExit(f"--representation: {err}")
    try:
        configs = [parse_config(c) for c in args.configs]
        for c in configs:  # refuse unknown keys and bad values before any fit
            inr.build(rep, (2, 8, 8), **inr.default_settings(rep, (2, 8, 8), **c).model)
    except (ValueError, TypeError) as err:
        raise SystemExit(f"--configs: {err}")
    specs = fixed_weights.tuning_specs(args.slices)
    weights = [(ll, lm) for ll in args.log_lambda for lm in args.log_mu]

    def reconstruct(config):
        """The default representation with ``config`` overriding its defaults."""
        return lambda acq, y, lam, mu: inr.reconstructor(
            inr.default_settings(rep, acq.target.shape, map_grid=inr.map_grid_for(acq),
                                 **config), progress=False)(acq.op, y, lam, mu, None)[0]

    rows, cells = fixed_weights.fit_rows(
        specs, weights, lambda spec: simulated_case(spec, args.R, coil_maps="espirit"),
        lambda acq, ll, lm: [fixed_weights.timed_fit(acq, ll, lm, reconstruct(c)) for c in configs])
    mean = np.asarray(cells).mean(axis=0)  # (configs, 2)
    rows.append("| **mean** | | " + " | ".join(f"**{p:.2f}** ({s:.0f} s)" for p, s in mean) + " |")
    who = f"The default INR ({rep})" if rep == selection.DEFAULT_REPRESENTATION else f"`{rep}`"
    caption = (f"{who} at fixed relative weights (log10 lambda, log10 mu), "
               f"R = {args.R:g}, 4 coils, noise 1e-3, ESPIRiT maps refined on the default grid: PSNR (dB) and seconds per "
               f"fit for each configuration (overrides of `inr.default_settings`). {counted(args.threads, 'thread')}.")
    name = args.name or ("inr_settings" if rep == selection.DEFAULT_REPRESENTATION else f"inr_settings_{rep}")
    fixed_weights.write_table(name, "inr_settings.py", caption, args.configs, rows)


if __name__ == "__main__":
    main()
