"""What the settings scripts share (``map_refinement.py``, ``inr_settings.py``): fits at fixed
relative weights on the tuning slices, one table row per (slice, weights) and one cell,
"PSNR (seconds)", per compared configuration. Not a script itself.
"""
from __future__ import annotations

import shlex
import sys
import time
from typing import Callable, Sequence


def add_arguments(ap, log_lambda: float, log_mu: float):
    """The arguments every settings script takes: slices, weights, threads."""
    ap.add_argument("--slices", default="tune", help="as in global_recon.py: 'tune', 'default' or one DATA spec")
    ap.add_argument("--log-lambda", type=float, nargs="+", default=[log_lambda])
    ap.add_argument("--log-mu", type=float, nargs="+", default=[log_mu])
    ap.add_argument("--threads", type=int, default=2)


def tuning_specs(slices: str) -> list[str]:
    """The slices of ``--slices``, with a note when the test patient is among them."""
    from global_recon import slice_specs

    specs = slice_specs(slices)
    if any("SCD0000501" in s for s in specs):
        print("note: SCD0000501 is the test patient; choose settings on the training and validation slices")
    return specs


def timed_fit(acq, log_lambda: float, log_mu: float, reconstruct: Callable) -> tuple[float, float]:
    """PSNR (dB) and seconds of ``reconstruct(acq, y, lam, mu)`` at relative weights (the
    absolute weights scaled by the zero-filled image, ``selection.absolute``)."""
    import torch

    from inr_utils import metrics, selection

    y = torch.from_numpy(acq.kspace)
    lam, mu = selection.absolute(log_lambda, log_mu, selection.data_scale(acq.zero_filled()))
    t0 = time.perf_counter()
    x = reconstruct(acq, y, lam, mu)
    return metrics.psnr(x, acq.target), time.perf_counter() - t0


def fit_rows(specs: Sequence[str], weights: Sequence[tuple], load: Callable, cells: Callable) -> tuple[list, list]:
    """For each slice (``load(spec)`` -> its cases) and weight pair, ``cells(cases, ll, lm)`` ->
    [(PSNR, seconds)] per configuration. Returns the table rows and the cells."""
    from tqdm.auto import tqdm

    rows, values = [], []
    for spec in tqdm(specs, desc="slices"):
        cases = load(spec)
        for ll, lm in weights:
            row = cells(cases, ll, lm)
            values.append(row)
            rows.append(f"| {spec.replace('sunnybrook:', '')} | {ll:g}, {lm:g} | "
                        + " | ".join(f"{p:.2f} ({s:.0f} s)" for p, s in row) + " |")
            tqdm.write(rows[-1])
    return rows, values


def write_table(name: str, script: str, caption: str, head: Sequence[str], rows: Sequence[str]):
    """Print and write ``benchmarks/results/<name>.md``: the caption with the command, then the table."""
    from inr_utils.report import write_benchmark

    cmd = shlex.join([".venv/bin/python", f"benchmarks/{script}"] + sys.argv[1:])
    text = "\n".join([f"{caption} Command: `{cmd}`", "",
                      "| slice | weights | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head), *rows])
    print(text)
    print(f"\nwrote {write_benchmark(name, text)}")
