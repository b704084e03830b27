"""Classical baseline: temporal-TV compressed sensing on explicit voxels.

    x* = argmin_x  0.5 ||A x - y||_2^2 + lambda * sum_{t,y,x} |x[t+1] - x[t]|      (circular in t)

solved by the primal-dual method of Condat and Vu (gradient step on the smooth data
term, dual ascent on the TV term, projection of the dual onto |z| <= lambda). With
||A^H A|| <= 1 (orthonormal FFT, binary mask, sum_c |S_c|^2 = 1) and ||D_t||^2 <= 4
the steps tau = 0.95, sigma = 1/8 satisfy 1/tau - sigma ||D||^2 >= L/2, so it
converges. (The original multiplied the two terms; this adds them, as intended.)
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .fourier import SenseOp
from .metrics import psnr


def temporal_diff(x: torch.Tensor) -> torch.Tensor:
    """Forward difference along t (axis -3), circular: D x [t] = x[t+1] - x[t]."""
    return torch.roll(x, -1, dims=-3) - x


def temporal_diff_adjoint(z: torch.Tensor) -> torch.Tensor:
    """D^H z [t] = z[t-1] - z[t]."""
    return torch.roll(z, 1, dims=-3) - z


def temporal_tv(x: torch.Tensor) -> torch.Tensor:
    """sum |x[t+1] - x[t]| (complex modulus, circular in t)."""
    return temporal_diff(x).abs().sum()


@dataclass
class FitHistory:
    """Loss and PSNR (when a target is known) against wall-clock seconds."""

    seconds: list = field(default_factory=list)
    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    psnr: list = field(default_factory=list)

    def add(self, seconds, step, loss, value=None):
        self.seconds.append(float(seconds)); self.step.append(int(step)); self.loss.append(float(loss))
        self.psnr.append(None if value is None else float(value))

    def as_dict(self):
        return {"seconds": self.seconds, "step": self.step, "loss": self.loss, "psnr": self.psnr}


class Stopwatch:
    """Wall-clock seconds since creation, leaving out the time spent inside ``paused()``
    (monitoring: PSNR against a target, objective values), so fit times are the solver's."""

    def __init__(self):
        self.start, self.excluded = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.excluded

    @contextmanager
    def paused(self):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - t


def tv_objective(op: SenseOp, x, y, lam) -> float:
    return float(0.5 * (op.forward(x) - y).abs().pow(2).sum() + lam * temporal_tv(x))


def tv_recon(op: SenseOp, y, lam: float, iters: int = 300, target: Optional[np.ndarray] = None,
             x0: Optional[torch.Tensor] = None, log_every: int = 10, progress: bool = False):
    """Temporal-TV reconstruction; returns (x (T, H, W) complex64 numpy, FitHistory).
    History times leave out the monitoring itself (objective and PSNR against ``target``)."""
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lambda must be finite and >= 0, got {lam!r}")
    y = torch.as_tensor(y)
    x = op.adjoint(y) if x0 is None else torch.as_tensor(x0).clone()
    z = torch.zeros_like(x)
    tau, sigma = 0.95, 1.0 / 8.0
    hist, clock = FitHistory(), Stopwatch()
    with torch.no_grad():
        for k in tqdm(range(iters), desc=f"TV lambda={lam:.2g}", disable=not progress, leave=False):
            x_new = x - tau * (op.adjoint(op.forward(x) - y) + temporal_diff_adjoint(z))
            z = z + sigma * temporal_diff(2 * x_new - x)
            z = z / torch.clamp(z.abs() / lam, min=1.0) if lam > 0 else torch.zeros_like(z)
            x = x_new
            if (k + 1) % log_every == 0 or k + 1 == iters:
                elapsed = clock.elapsed()
                with clock.paused():
                    value = psnr(x.numpy(), target) if target is not None else None
                    hist.add(elapsed, k + 1, tv_objective(op, x, y, lam), value)
    return x.numpy(), hist


def tv_sweep(op: SenseOp, y, lambdas: Sequence[float], score, iters: int = 300, progress: bool = True):
    """Fit each lambda, score each result with ``score(x) -> float`` (higher is better).
    Returns (best lambda, {lambda: (x, history, score, seconds)})."""
    results = {}
    for lam in tqdm(list(lambdas), desc="TV sweep", disable=not progress):
        t0 = time.perf_counter()
        x, hist = tv_recon(op, y, lam, iters)
        results[lam] = (x, hist, score(x), time.perf_counter() - t0)
    best = max(results, key=lambda l: results[l][2])
    return best, results
