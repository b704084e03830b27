"""Fitting a representation to k-space (Adam on data consistency + temporal / spatial TV), the per-representation defaults and the selection.Reconstructor."""
from __future__ import annotations

import math
import warnings
import copy
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..fourier import SenseOp
from ..history import FitHistory, Stopwatch
from ..metrics import psnr
from ..runs import check_int
from ..tv import check_rate, check_weight, total_variation
from .coil_refinement import CoilMapRefinement
from .core import REPRESENTATIONS, build, frame_times, FUSED_ADAM


@dataclass
class FitResult:
    recon: np.ndarray  # (T, H, W) complex64 (for a conditional model: at ``log_lambda`` or the range's middle)
    history: FitHistory
    seconds: float
    steps: int
    diverged: bool = False
    message: str = ""
    model: Optional[nn.Module] = field(default=None, repr=False)
    smaps: Optional[np.ndarray] = field(default=None, repr=False)  # (C, H, W) the refined maps (``map_grid``)


def objective(op: SenseOp, x: torch.Tensor, y: torch.Tensor, lam: float, frames=None, mu: float = 0.0) -> torch.Tensor:
    """0.5 ||A x - y||^2 + lambda TV_t(x) + mu TV_s(x) (``inr_utils.tv``); with ``frames`` (a
    contiguous block), the block's data and spatial terms and its inner temporal differences
    scaled to estimate the whole."""
    if frames is None:
        return op.data_term(x, y) + total_variation(x, lam, mu)
    T = op.mask.shape[0]
    data = op.data_term(x, y, frames=frames) * (T / len(frames))
    tv = (x[1:] - x[:-1]).abs().sum() * (T / max(len(frames) - 1, 1)) if len(frames) > 1 else x.new_zeros(())
    spatial = total_variation(x, 0.0, mu) * (T / len(frames)) if mu else 0.0
    return data + lam * tv + spatial


def draw_log_lambda(rng: np.random.Generator, log_lambda_range: Sequence[float], beta: float = 1.0) -> float:
    """log10(lambda) = lo + (hi - lo) u with u ~ Beta(beta, beta): uniform at beta = 1, denser in the
    middle of the range for beta > 1."""
    lo, hi = log_lambda_range
    u = rng.uniform() if beta == 1 else rng.beta(beta, beta)  # rng.uniform keeps uniform fits' random stream
    return float(lo + (hi - lo) * u)


LAMBDA_DRAWS = ("random", "quasi")
_GOLDEN = (math.sqrt(5) - 1) / 2


def quasi_log_lambdas(n: int, log_lambda_range: Sequence[float], beta: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """n values of log10(lambda) with the same Beta(beta, beta) distribution over the range as
    ``draw_log_lambda``, from a quasi-random (Kronecker) sequence instead of independent draws:

        u_k = frac(offset + k (sqrt 5 - 1) / 2),   log10 lambda_k = lo + (hi - lo) B^-1(u_k),

    B^-1 the Beta(beta, beta) quantile. Any run of m consecutive u_k leaves no gap in [0, 1)
    wider than about 2.6 / m (three-gap theorem), so every stretch of a fit's steps, its last
    ones under the smallest learning rate included, spreads over the whole range; independent
    draws cluster by chance, and a conditional network ends up favouring the lambdas that its
    last steps happened to draw."""
    from scipy.special import betaincinv

    lo, hi = log_lambda_range
    u = np.mod(offset + _GOLDEN * np.arange(n), 1.0)
    if beta != 1:
        u = betaincinv(beta, beta, u)
    return lo + (hi - lo) * u


def fit(model: nn.Module, op: SenseOp, y, *, log_lambda: Optional[float] = None, steps: int = 1000, lr: float = 1e-2,
        log_lambda_range: Optional[Sequence[float]] = None, frames_per_step: Optional[int] = None,
        max_seconds: Optional[float] = None, target: Optional[np.ndarray] = None, log_every: int = 25,
        seed: int = 0, progress: bool = True, desc: str = "fit", mu: float = 0.0,
        balance_log_lambda: Optional[float] = None, log_lambda_beta: float = 1.0, log_lambda_draws: str = "random",
        map_grid: int = 0, map_weight: float = 0.0, map_lr: Optional[float] = None) -> FitResult:
    """Fit a representation to k-space y (T, C, H, W):

        min_theta  0.5 ||A f_theta - y||_2^2 + lambda TV_t(f_theta) + mu TV_s(f_theta)

    (TV_t: sum |f(t+1) - f(t)|, circular; TV_s: isotropic spatial TV; ``inr_utils.tv``)
    with Adam and a cosine learning-rate decay. Fixed lambda = 10**log_lambda, or, for a
    conditional model with ``log_lambda_range`` = (lo, hi), log10(lambda) drawn from it at
    every step (one network for every lambda; ``draw_log_lambda``: uniformly at
    ``log_lambda_beta`` = 1, from Beta(a, a) stretched over the range at a; ``log_lambda_draws``
    "random": independent draws, "quasi": the same distribution from ``quasi_log_lambdas``,
    its offset drawn from the seed); with ``balance_log_lambda`` = b,
    each such step's objective is divided by 1 + lambda / 10**b, which leaves every lambda's
    minimiser unchanged and keeps the steps at large lambda (whose penalty is orders of
    magnitude larger) from dominating Adam's moment estimates. ``frames_per_step`` trains on a
    random contiguous (circular) block of frames per step, its data and TV terms scaled to
    the whole cine (``objective``): cheaper, noisier steps (the SIREN, whose full cine does not
    fit a CPU step; notebook 03's fits). Stops at ``steps`` or ``max_seconds``; on NaN/Inf it stops, warns with a
    clear message and keeps the last good parameters (``diverged=True``). Times (history,
    ``seconds``, ``max_seconds``) leave out the PSNR monitoring against ``target``, which a
    real scan does not have. ``map_grid`` > 0 refines the coil maps jointly with the image,
    a smooth correction on a ``map_grid`` x ``map_grid`` grid penalised by ``map_weight``
    (``coil_refinement``; full frames only), with Adam at learning rate ``map_lr`` (None: ``lr``)
    under the same cosine decay; the refined maps come back in ``smaps``.
    """
    if log_lambda is None and log_lambda_range is None:
        raise ValueError("give log_lambda (fixed weight) or log_lambda_range (lambda as a coordinate)")
    mu = check_weight("mu", mu)
    if not (np.isfinite(log_lambda_beta) and log_lambda_beta > 0):
        raise ValueError(f"log_lambda_beta must be a finite number > 0 (1: uniform), got {log_lambda_beta}")
    if log_lambda_draws not in LAMBDA_DRAWS:
        raise ValueError(f"log_lambda_draws must be one of {LAMBDA_DRAWS}, got {log_lambda_draws!r}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    quasi = None  # the conditional fit's log10(lambda) per step, when drawn quasi-randomly
    if log_lambda is None and log_lambda_draws == "quasi":
        quasi = quasi_log_lambdas(steps, log_lambda_range, log_lambda_beta, offset=rng.uniform())
    device = next(model.parameters()).device  # move the model first to fit on a GPU
    y = torch.as_tensor(y).to(device)
    if op.smaps.device != device:
        op = SenseOp(op.smaps, op.mask.cpu().numpy()).to(device)
    T = y.shape[0]
    refinement = None
    groups = [{"params": list(model.parameters()), "lr": lr}]
    if map_grid:
        if frames_per_step and frames_per_step < T:
            raise ValueError("map_grid (coil-map refinement) needs full frames; leave frames_per_step unset")
        map_lr = lr if map_lr is None else check_rate("map_lr", map_lr)
        refinement = CoilMapRefinement(op.smaps, map_grid, check_weight("map_weight", map_weight)).to(device)
        groups.append({"params": list(refinement.parameters()), "lr": map_lr})
    opt = torch.optim.Adam(groups, lr=lr, fused=FUSED_ADAM)
    # cosine decay of each group to 5 % of its own rate
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.05 + 0.475 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    eval_ll = log_lambda if log_lambda is not None else float(np.mean(log_lambda_range))
    def snapshot():  # the parameters restored on divergence (the model's and the maps' correction)
        return copy.deepcopy(model.state_dict()), None if refinement is None else copy.deepcopy(refinement.state_dict())

    hist, good = FitHistory(), snapshot()
    diverged, message, clock, step = False, "", Stopwatch(), 0
    rendered = None  # the render of the last monitored (and kept) parameters, reused as the result
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        if log_lambda is not None:
            ll = log_lambda
        else:
            ll = float(quasi[step]) if quasi is not None else draw_log_lambda(rng, log_lambda_range, log_lambda_beta)
        cond_ll = ll if getattr(model, "conditional", False) else None
        if frames_per_step and frames_per_step < T:
            start = int(rng.integers(T))
            frames = (start + torch.arange(frames_per_step)) % T
            x = model.render(frame_times(T)[frames], cond_ll)
        else:
            frames, x = None, model.render(None, cond_ll)
        if refinement is not None:
            loss = refinement.data_term(op, x, y) + total_variation(x, 10.0 ** ll, mu)
        else:
            loss = objective(op, x, y, 10.0 ** ll, frames, mu)
        if balance_log_lambda is not None and log_lambda is None:
            loss = loss / (1 + 10.0 ** (ll - balance_log_lambda))
        if not torch.isfinite(loss):
            diverged = True
            message = (f"{desc}: loss became {loss.item()} at step {step}; stopped and restored the last good "
                       f"parameters (from step {hist.step[-1] if hist.step else 0}). Lower the learning rate (lr={lr}).")
            warnings.warn(message, RuntimeWarning)
            model.load_state_dict(good[0])
            if refinement is not None:
                refinement.load_state_dict(good[1])
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        elapsed = clock.elapsed()
        last = step + 1 == steps or (max_seconds is not None and elapsed >= max_seconds)
        if (step + 1) % log_every == 0 or last:
            good = snapshot()
            value = None
            if target is not None:
                with clock.paused():
                    rendered = render_numpy(model, eval_ll)
                    value = psnr(rendered, target)
            hist.add(elapsed, step + 1, loss.item(), value)
            bar.set_postfix(loss=f"{loss.item():.3g}", **({"psnr": f"{value:.2f}"} if value is not None else {}))
        if last:
            break
    seconds = clock.elapsed()
    recon = rendered if rendered is not None else render_numpy(model, eval_ll)
    smaps = None if refinement is None else refinement.maps().detach().cpu().numpy()
    return FitResult(recon, hist, seconds, step + 1, diverged, message, model, smaps)


@dataclass(frozen=True)
class FitSettings:
    """A representation, its constructor arguments, Adam steps, learning rate, the grid and
    learning rate of the coil-map refinement (``fit``'s ``map_grid``, 0: the maps are used as
    given; ``map_lr``, None: ``lr``) and its starting image (``start``: ``"zero-filled"``, the
    zero-filled cine's temporal mean as ``init``, for ``STARTS_FROM_ZERO_FILLED``; ``"none"``)."""

    name: str
    model: dict = field(default_factory=dict)
    steps: int = 1000
    lr: float = 1e-2
    map_grid: int = 0
    map_lr: Optional[float] = None
    start: str = "none"


def default_map_grid(shape) -> int:
    """The coil-map refinement grid for a cine of shape (..., H, W): one control point per 8
    pixels (16 at 128 x 128, chosen against 8 on the training and validation mid slices at R = 6
    by benchmarks/map_refinement.py), at least 4."""
    H, W = (int(v) for v in shape[-2:])
    return max(4, min(H, W) // 8)


def check_map_grid(value, name: str = "map_grid") -> int:
    """``value`` as a refinement grid: 0 (none) or at least 2 x 2 points; one clear error naming
    ``name`` otherwise."""
    value = check_int(name, value, 0)
    if value == 1:
        raise ValueError(f"{name} must be 0 (no coil-map refinement) or >= 2, got 1")
    return value


def map_grid_for(acq) -> int:
    """The refinement an acquisition's fits get: ``default_map_grid`` when its coil maps are
    estimates (from its own data, or given by a file: ``acq.meta["coil_maps"]``), 0 when
    they are the maps that simulated it (exact)."""
    return default_map_grid(acq.smaps.shape) if "coil_maps" in acq.meta else 0


# representations that take a starting image (``init``) and start from the zero-filled cine's temporal mean
# by default: with per-frame masks that mean has seen every sampled line, so the fit is left with the motion
# and the aliasing
STARTS_FROM_ZERO_FILLED = ("lowrank", "lowrank-lambda", "hashgrid")
STARTS = ("zero-filled", "none")


def default_settings(name: str, shape, **overrides) -> FitSettings:
    """Sizes and steps of each representation from the cine's shape (T, H, W); ``overrides``
    (``steps``, ``lr``, ``map_grid``, ``map_lr``, ``start`` or constructor arguments; None keeps the default) win. The low-rank
    learning rate and rank were chosen on a training patient's slice (SCD0000201, R = 6), its steps and its maps'
    learning rate on the four training and validation mid slices."""
    REPRESENTATIONS.check(name)
    T, H, W = (int(v) for v in shape)
    if name in ("lowrank", "lowrank-lambda"):
        # the maps' correction at 1e-1 (the rate our TV uses): within 0.07 dB of the best of 2e-2 ... 2e-1 on each
        # training / validation fit and up to 0.27 dB above 2e-2 (benchmarks/map_refinement.py --map-lrs)
        # 650 steps: the most of 500 / 650 / 800 whose fits stay within BART's best run time on the training and
        # validation mid slices (R = 6); +0.29 dB over 500 there after the weight search, while 800 costs 1.7x
        # 500's time for 0.05 dB more than 650 at fixed weights (benchmarks/inr_settings.py, global_recon.py --slices tune)
        base = FitSettings(name, {"rank": min(16, T)}, 650, 2e-2, map_lr=1e-1)
    elif name == "hashgrid":
        # a table of 2^ceil(log2(T H W / 2)) entries: only the finest level (one node per voxel) is hashed, against
        # the two finest with the encoding's own default (T H W / 8); 0.5-0.7 dB above that default, and the start
        # from the zero-filled mean 2.5-3.1 dB above none, on the training and validation mid slices at R = 6
        # (benchmarks/inr_settings.py --representation hashgrid)
        base = FitSettings(name, {"log2_table": max(10, math.ceil(math.log2(T * H * W / 2)))}, 1000, 1e-2)
    elif name == "hashgrid-lambda":
        base = FitSettings(name, {}, 1000, 1e-2)
    else:
        base = FitSettings(name, {}, 1000, 1e-4)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    steps, lr = overrides.pop("steps", base.steps), overrides.pop("lr", base.lr)
    map_grid = check_map_grid(overrides.pop("map_grid", base.map_grid))
    map_lr = overrides.pop("map_lr", base.map_lr)
    start = overrides.pop("start", "zero-filled" if name in STARTS_FROM_ZERO_FILLED else "none")
    if start not in STARTS or (start == "zero-filled" and name not in STARTS_FROM_ZERO_FILLED):
        raise ValueError(f"start must be one of {STARTS} ('zero-filled' for {', '.join(STARTS_FROM_ZERO_FILLED)}), "
                         f"got {start!r} for {name}")
    return FitSettings(name, {**base.model, **overrides}, int(steps), float(lr), map_grid,
                       None if map_lr is None else float(map_lr), start)


def reconstructor(settings: FitSettings, device: str = "cpu", seed: int = 0, progress: bool = True, on_result=None):
    """A ``selection.Reconstructor``: fits a fresh model of ``settings`` at absolute weights
    (lam, mu), started from the temporal mean of the zero-filled cine where ``settings.start`` says so.
    ``on_result(FitResult)`` sees every fit (e.g. to print divergence messages). With
    ``settings.map_grid`` the refined coil maps come back as a third element (the selection
    scores held-out lines with them)."""

    def reconstruct(op, y, lam, mu, target):
        shape = (op.mask.shape[0],) + tuple(op.smaps.shape[-2:])
        kw = dict(settings.model)
        if settings.start == "zero-filled":
            kw["init"] = op.adjoint(torch.as_tensor(y)).mean(0)
        model = build(settings.name, shape, **kw).to(device)
        res = fit(model, op, y, log_lambda=math.log10(lam), mu=mu, steps=settings.steps, lr=settings.lr, target=target,
                  seed=seed, progress=progress, desc=f"{settings.name} lambda={lam:.2g} mu={mu:.2g}",
                  map_grid=settings.map_grid, map_lr=settings.map_lr)
        if on_result is not None:
            on_result(res)
        return (res.recon, res.history) if res.smaps is None else (res.recon, res.history, res.smaps)

    return reconstruct


def render_numpy(model: nn.Module, log_lambda=None) -> np.ndarray:
    with torch.no_grad():
        return model.render(None, log_lambda if getattr(model, "conditional", False) else None).cpu().numpy()
