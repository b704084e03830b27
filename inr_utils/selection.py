"""Choosing the regularisation weight lambda by one rule for every method.

* With a ground truth (``target``): fit every candidate on all the data and keep the
  best PSNR against the target (the oracle; it is what a paper's tuned baseline does).
* Without one: hold out a fraction of the sampled lines, fit every candidate on the
  rest, keep the candidate that best predicts the held-out lines, then refit it on
  all the data.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .acquisition import Acquisition
from .fourier import SenseOp
from .inr import heldout_error, split_lines
from .metrics import psnr

#: reconstruct(op, y, log10_lambda, target) -> (recon (T, H, W) complex numpy, history)
Reconstructor = Callable[[SenseOp, torch.Tensor, float, object], tuple]


@dataclass
class Selection:
    log_lambda: float
    rule: str
    scores: dict  # {log10 lambda: PSNR (dB) or held-out relative error}
    recon: np.ndarray  # reconstruction at the chosen lambda, from all the data
    history: object
    seconds_total: float  # every fit of the sweep (and the refit)
    seconds_final: float  # the fit that produced ``recon``
    extra: dict = field(default_factory=dict)


def rule_text(has_target: bool, holdout: float) -> str:
    if has_target:
        return "lambda = argmax over the candidates of PSNR against the target (fits on all lines)"
    return (f"lambda = argmin over the candidates of the relative error on {holdout:.0%} held-out sampled lines "
            "(fits on the other lines), then refit on all lines")


def select_lambda(reconstruct: Reconstructor, acq: Acquisition, log_lambdas: Sequence[float], holdout: float = 0.1,
                  seed: int = 0) -> Selection:
    """Sweep ``log_lambdas`` with ``reconstruct`` under the rule above."""
    if len(log_lambdas) == 0:
        raise ValueError("give at least one candidate log10(lambda)")
    y = torch.from_numpy(acq.kspace)
    t_all = time.perf_counter()
    scores, results = {}, {}
    if acq.target is not None:
        for ll in log_lambdas:
            t0 = time.perf_counter()
            x, hist = reconstruct(acq.op, y, float(ll), acq.target)
            results[ll] = (x, hist, time.perf_counter() - t0)
            scores[ll] = psnr(x, acq.target)
        best = max(scores, key=scores.get)
        x, hist, sec = results[best]
    else:
        fit_mask, hold = split_lines(acq.mask, holdout, seed)
        op_fit = SenseOp(acq.smaps, fit_mask)
        y_fit = y * op_fit._m
        for ll in log_lambdas:
            x, _ = reconstruct(op_fit, y_fit, float(ll), None)
            scores[ll] = heldout_error(x, acq.smaps, hold, y)
        best = min(scores, key=scores.get)
        t0 = time.perf_counter()
        x, hist = reconstruct(acq.op, y, float(best), None)
        sec = time.perf_counter() - t0
    return Selection(float(best), rule_text(acq.target is not None, holdout), {float(k): float(v) for k, v in scores.items()},
                     x, hist, time.perf_counter() - t_all, sec)
