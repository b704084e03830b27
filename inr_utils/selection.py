"""Choosing the regularisation weights by one rule for every method.

Weights are relative to the data: lambda = 10**log_lambda * s and mu = 10**log_mu * s with
s = ``data_scale`` (a robust peak of the zero-filled image). Both penalties are
1-homogeneous in the image while the data term is quadratic, so scaling the k-space by c
moves the best absolute weights by c: relative weights carry over between scanners and
normalisations.

The search (``select_weights``) is coordinate-wise on a grid of step ``SearchSpec.step`` in
log10: lambda over its candidates (at the middle spatial candidate), then mu at the best
lambda, then lambda once more around the best (with the spatial term only). Whenever the
best value of a pass sits at the edge of what that pass tried, the pass adds the next grid
point beyond that edge (at most ``max_extend`` times), so the optimum is never a
candidate grid's boundary unless the extensions ran out (``Selection.at_edge`` says so).

Scores, by one rule:

* With a ground truth (``target``): PSNR against the target of a fit on all the data
  (the oracle; what a paper's tuned baseline does).
* Without one: hold out a fraction of the sampled lines, fit on the rest, score the
  relative error of the predicted held-out lines; the chosen weights are refitted on all
  the data.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .acquisition import Acquisition
from .fourier import SenseOp
from .metrics import psnr

#: reconstruct(op, y, lam, mu, target) -> (recon (T, H, W) complex numpy, history[, smaps]); lam
#: and mu are absolute weights (mu = 0: no spatial term); a method that refines the coil maps
#: returns them (C, H, W) third, and its held-out lines are predicted with them
Reconstructor = Callable[[SenseOp, torch.Tensor, float, float, object], tuple]


def data_scale(zero_filled: np.ndarray) -> float:
    """99.9th percentile of |zero-filled image| (a peak that ignores a few hot pixels)."""
    scale = float(np.percentile(np.abs(zero_filled), 99.9))
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"the zero-filled image has no finite positive peak (got {scale!r}): check the k-space")
    return scale


@dataclass(frozen=True)
class SearchSpec:
    """Starting candidates (relative log10 weights) and how the search may extend them."""

    log_lambdas: Sequence[float] = (-4.0, -3.5, -3.0, -2.5, -2.0)
    log_mus: Optional[Sequence[float]] = None  # None: no spatial term
    step: float = 0.5  # grid spacing in log10 of the extensions and the final lambda pass
    max_extend: int = 4  # grid points one pass may add beyond an edge

    def __post_init__(self):
        for name in ("log_lambdas", "log_mus"):
            values = getattr(self, name)
            if values is None and name == "log_mus":
                continue
            if not values or not all(np.isfinite(v) for v in values):
                raise ValueError(f"{name} must be a non-empty list of finite numbers, got {values!r}")
        if not (np.isfinite(self.step) and self.step > 0):
            raise ValueError(f"step must be finite and > 0, got {self.step!r}")
        if int(self.max_extend) != self.max_extend or self.max_extend < 0:
            raise ValueError(f"max_extend must be an integer >= 0, got {self.max_extend!r}")


@dataclass
class Selection:
    log_lambda: float  # relative (see the module docstring)
    log_mu: Optional[float]  # relative; None without a spatial term
    scale: float  # data_scale: absolute weight = 10**log * scale
    rule: str
    trials: list  # [{"log_lambda", "log_mu", "score"}] in the order tried
    at_edge: bool  # the best weight is still on the edge of what was tried (extensions ran out)
    recon: np.ndarray  # reconstruction at the chosen weights, from all the data
    history: object
    seconds_total: float  # every fit of the search (and the refit)
    seconds_final: float  # the fit that produced ``recon``

    @property
    def weights(self) -> tuple:
        """Absolute (lambda, mu)."""
        return absolute(self.log_lambda, self.log_mu, self.scale)


def absolute(log_lambda: float, log_mu: Optional[float], scale: float) -> tuple:
    return 10.0 ** log_lambda * scale, (0.0 if log_mu is None else 10.0 ** log_mu * scale)


def rule_text(has_target: bool, holdout: float) -> str:
    search = ("weights relative to the zero-filled peak, searched coordinate-wise on a log10 grid that "
              "extends past an edge")
    if has_target:
        return f"{search}; score: PSNR against the target (fits on all lines)"
    return (f"{search}; score: relative error on {holdout:.0%} held-out sampled lines (fits on the other "
            "lines), then refit on all lines")


def split_lines(mask: np.ndarray, fraction: float = 0.1, seed: int = 0, keep_center: int = 8):
    """Hold out ``fraction`` of each frame's sampled lines (never the central ``keep_center``).
    Returns (fit_mask, holdout_mask), both (T, W) uint8, disjoint, union = mask."""
    if not 0 < fraction < 1:
        raise ValueError(f"hold-out fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    T, W = mask.shape
    fit_mask, hold = mask.copy(), np.zeros_like(mask)
    centre = np.arange(W // 2 - keep_center // 2, W // 2 - keep_center // 2 + keep_center)
    for k in range(T):
        cand = np.setdiff1d(np.flatnonzero(mask[k]), centre)
        n = int(round(fraction * len(cand)))
        chosen = rng.choice(cand, size=n, replace=False) if n else []
        hold[k, chosen], fit_mask[k, chosen] = 1, 0
    return fit_mask, hold


def heldout_error(x, smaps, holdout_mask, y) -> float:
    """Relative error of the predicted held-out lines: ||M_h(F S x) - y_h||^2 / ||y_h||^2."""
    op = SenseOp(smaps, holdout_mask)
    y = torch.as_tensor(y)
    with torch.no_grad():
        pred = op.forward(torch.as_tensor(x))
        ref = op.apply_mask(y)
        return float((pred - ref).abs().pow(2).sum() / ref.abs().pow(2).sum())


@dataclass
class HeldOutLines:
    """The sampled lines split into those a fit sees and those held out to score it."""

    op_fit: SenseOp  # the operator on the fitted lines
    y_fit: torch.Tensor  # the k-space on the fitted lines (zero on the held-out ones)
    smaps: np.ndarray
    holdout_mask: np.ndarray  # (T, W)
    y: torch.Tensor  # all the measured k-space

    def error(self, x, smaps=None) -> float:
        """``heldout_error`` of a reconstruction ``x`` (T, H, W) fitted on ``y_fit`` (with the
        fit's refined ``smaps`` when it refined them)."""
        return heldout_error(x, self.smaps if smaps is None else smaps, self.holdout_mask, self.y)


def hold_out(acq: Acquisition, fraction: float = 0.1, seed: int = 0) -> HeldOutLines:
    """Hold out ``fraction`` of each frame's sampled lines of ``acq`` (``split_lines``)."""
    fit_mask, hold = split_lines(acq.mask, fraction, seed)
    op_fit, y = SenseOp(acq.smaps, fit_mask), torch.from_numpy(acq.kspace)
    return HeldOutLines(op_fit, op_fit.apply_mask(y), acq.smaps, hold, y)


def _grid(value: float) -> float:
    return round(float(value), 6)


def select_weights(reconstruct: Reconstructor, acq: Acquisition, spec: SearchSpec = SearchSpec(), holdout: float = 0.1,
                   seed: int = 0) -> Selection:
    """Search the weights of ``reconstruct`` under the rule of the module docstring."""
    y = torch.from_numpy(acq.kspace)
    scale = data_scale(acq.zero_filled())
    has_target = acq.target is not None
    t_all = time.perf_counter()
    if has_target:
        op_score, y_score = acq.op, y
    else:
        lines = hold_out(acq, holdout, seed)
        op_score, y_score = lines.op_fit, lines.y_fit
    cache: dict = {}  # (log_lambda, log_mu) -> (score, recon, history, seconds)
    trials: list = []

    def evaluate(ll, lm):
        key = (_grid(ll), None if lm is None else _grid(lm))
        if key not in cache:
            t0 = time.perf_counter()
            x, hist, *maps = reconstruct(op_score, y_score, *absolute(key[0], key[1], scale), acq.target)
            seconds = time.perf_counter() - t0
            score = psnr(x, acq.target) if has_target else -lines.error(x, *maps)
            cache[key] = (score, x, hist, seconds)
            trials.append({"log_lambda": key[0], "log_mu": key[1], "score": score if has_target else -score})
        return cache[key][0]

    def line(values, score_of):
        """Best of ``values``, extended by ``spec.step`` past an edge while the best sits there."""
        values = sorted({_grid(v) for v in values})
        for extensions in range(int(spec.max_extend) + 1):
            scores = [score_of(v) for v in values]
            best = values[int(np.argmax(scores))]
            at_edge = len(values) > 1 and best in (values[0], values[-1])
            if not at_edge or extensions == spec.max_extend:
                return best, at_edge
            if best == values[0]:
                values.insert(0, _grid(best - spec.step))
            else:
                values.append(_grid(best + spec.step))

    mus = None if spec.log_mus is None else sorted(spec.log_mus)
    lm = None if mus is None else mus[len(mus) // 2]
    ll, edge = line(spec.log_lambdas, lambda v: evaluate(v, lm))
    if mus is not None:
        lm, edge_mu = line(mus, lambda v: evaluate(ll, v))
        ll, edge = line([ll - spec.step, ll, ll + spec.step], lambda v: evaluate(v, lm))
        edge = edge or edge_mu
    key = (_grid(ll), None if lm is None else _grid(lm))
    if has_target:
        _, x, hist, sec = cache[key]
    else:
        t0 = time.perf_counter()
        x, hist, *_ = reconstruct(acq.op, y, *absolute(key[0], key[1], scale), None)
        sec = time.perf_counter() - t0
    return Selection(key[0], key[1], scale, rule_text(has_target, holdout), trials, bool(edge), x, hist,
                     time.perf_counter() - t_all, sec)


def fit_at(reconstruct: Reconstructor, acq: Acquisition, log_lambda: float, log_mu: Optional[float]) -> Selection:
    """One fit on all the data at given relative weights, no search (e.g. another method's
    choice): a ``Selection`` of that one trial (score: PSNR with a target, else None)."""
    scale = data_scale(acq.zero_filled())
    t0 = time.perf_counter()
    x, hist, *_ = reconstruct(acq.op, torch.from_numpy(acq.kspace), *absolute(log_lambda, log_mu, scale), acq.target)
    seconds = time.perf_counter() - t0
    score = psnr(x, acq.target) if acq.target is not None else None
    trial = {"log_lambda": _grid(log_lambda), "log_mu": None if log_mu is None else _grid(log_mu), "score": score}
    return Selection(trial["log_lambda"], trial["log_mu"], scale, "given weights (no search)", [trial], False, x, hist,
                     seconds, seconds)


#: Starting grids (relative log10 weights) of each method's search, centred on the optima seen on
#: training patients' slices; they only set the search's cost, since it extends past an edge.
DEFAULT_SEARCH = {
    "TV": SearchSpec(log_lambdas=(-3.5, -3.0, -2.5)),
    "TV+S": SearchSpec(log_lambdas=(-3.5, -3.0, -2.5), log_mus=(-4.5, -4.0, -3.5)),
    "lowrank": SearchSpec(log_lambdas=(-4.0, -3.5, -3.0), log_mus=(-5.0, -4.5, -4.0)),
    "hashgrid": SearchSpec(log_lambdas=(-4.0, -3.5, -3.0), log_mus=(-5.0, -4.5, -4.0)),
    "siren": SearchSpec(log_lambdas=(-4.0, -3.5, -3.0), log_mus=(-5.0, -4.5, -4.0)),
    "BART T": SearchSpec(log_lambdas=(-3.0, -2.5, -2.0)),
    "BART W+T": SearchSpec(log_lambdas=(-2.5, -2.0, -1.5), log_mus=(-4.0, -3.5, -3.0)),
    "BART L+T": SearchSpec(log_lambdas=(-3.5, -3.0, -2.5), log_mus=(-3.0, -2.5, -2.0)),
}
#: the representation of notebook 02's `INR` row and of the benchmark's summary
DEFAULT_REPRESENTATION = "lowrank"
