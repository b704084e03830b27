"""Classical baseline: temporal (and optionally spatial) TV compressed sensing on explicit voxels,
and the regularisers every scan-specific method shares.

    x* = argmin_x  0.5 ||A x - y||_2^2 + lambda TV_t(x) + mu TV_s(x)

    TV_t(x) = sum_{t,y,x} |x[t+1] - x[t]|                          (circular in t, complex modulus)
    TV_s(x) = sum_{t,y,x} sqrt(|x[y+1] - x[y]|^2 + |x[x+1] - x[x]|^2)   (isotropic; zero difference
                                                                     past the last row / column)

solved by the primal-dual method of Condat and Vu (gradient step on the smooth data
term, dual ascent on each TV term, projection of its dual onto |z| <= weight). With
||A^H A|| <= 1 (orthonormal FFT, binary mask, sum_c |S_c|^2 = 1), ||D_t||^2 <= 4 and
||D_s||^2 <= 8, the steps tau = 0.95 and dual steps sigma_t, sigma_s with
4 sigma_t + 8 sigma_s <= 1/tau - 1/2 converge (sigma_t = 1/8 without the spatial term).
The original multiplied data and TV terms; this adds them, as intended.

With ``map_grid`` > 0 the coil maps are refined jointly with the image, as the INRs' fits
refine them (``inr.CoilMapRefinement``: a smooth, normalised per-coil correction on a
``map_grid`` x ``map_grid`` grid). Each iteration evaluates the data term once with the
current maps, takes its image gradient for the primal-dual step above and its gradient in the
correction for one Adam step (learning rate ``map_lr``, cosine decay to 5 %). The normalised
maps keep ||A^H A|| <= 1, so the step sizes stay valid; the operator changes while the maps
move and the iteration is then a heuristic, which settles as the learning rate decays.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from .fourier import SenseOp
from .history import FitHistory, Stopwatch
from .metrics import psnr

#: Adam's learning rate for the coil-map correction when TV refines the maps (``map_grid``),
#: chosen on the four training and validation mid slices at R = 6 (TV+S at two weights each;
#: ``benchmarks/map_refinement.py --method tv``): 1e-1 is within 0.09 dB of the best of
#: 5e-3 ... 2e-1 on each of the eight fits, and gains up to 0.14 dB over 2e-2 where ESPIRiT's
#: maps are furthest off.
MAP_LR = 1e-1


def temporal_diff(x: torch.Tensor) -> torch.Tensor:
    """Forward difference along t (axis -3), circular: D x [t] = x[t+1] - x[t]."""
    return torch.roll(x, -1, dims=-3) - x


def temporal_diff_adjoint(z: torch.Tensor) -> torch.Tensor:
    """D^H z [t] = z[t-1] - z[t]."""
    return torch.roll(z, 1, dims=-3) - z


def temporal_tv(x: torch.Tensor) -> torch.Tensor:
    """sum |x[t+1] - x[t]| (complex modulus, circular in t)."""
    return temporal_diff(x).abs().sum()


def _planes(x: torch.Tensor) -> torch.Tensor:
    """x (..., T, H, W) as contiguous real planes (K, ..., T, H, W): K = 2 (re, im) for a
    complex x, 1 for a real one. Every spatial-TV path works on planes: rows of a plane are
    contiguous and vectorise; interleaved re / im (and complex broadcasting) are slow on CPU."""
    return torch.view_as_real(x).movedim(-1, 0).contiguous() if x.is_complex() else x.unsqueeze(0)


def _from_planes(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The inverse of ``_planes`` for a tensor shaped like ``like``."""
    return torch.view_as_complex(p.movedim(0, -1).contiguous()) if like.is_complex() else p[0]


def _spatial_diff(p: torch.Tensor):
    """(gy, gx): forward differences of planes p (K, ..., H, W) over (y, x), zero past the last
    row / column (differentiable by autograd)."""
    gy, gx = torch.zeros_like(p), torch.zeros_like(p)
    if p.requires_grad and torch.is_grad_enabled():  # out= takes no part in autograd
        gy[..., :-1, :] = p[..., 1:, :] - p[..., :-1, :]
        gx[..., :-1] = p[..., 1:] - p[..., :-1]
    else:  # straight into the outputs, without temporaries
        torch.sub(p[..., 1:, :], p[..., :-1, :], out=gy[..., :-1, :])
        torch.sub(p[..., 1:], p[..., :-1], out=gx[..., :-1])
    return gy, gx


def _spatial_diff_adjoint(gy: torch.Tensor, gx: torch.Tensor) -> torch.Tensor:
    """D_s^H (gy, gx) on planes, the exact adjoint of ``_spatial_diff`` for any (gy, gx)
    (minus the discrete divergence)."""
    out = torch.zeros_like(gy)
    out[..., 1:, :] += gy[..., :-1, :]
    out[..., :-1, :] -= gy[..., :-1, :]
    out[..., 1:] += gx[..., :-1]
    out[..., :-1] -= gx[..., :-1]
    return out


def _pair_modulus(gy: torch.Tensor, gx: torch.Tensor) -> torch.Tensor:
    """|(gy, gx)|_2 per pixel of planes (K, ..., H, W), over the K planes too: (1, ..., H, W)."""
    return (gy.square() + gx.square()).sum(0, keepdim=True).sqrt()


def spatial_grad(x: torch.Tensor) -> torch.Tensor:
    """Forward differences over (y, x) = axes (-2, -1): (2, ..., H, W), zero past the last row / column."""
    return torch.stack([_from_planes(g, x) for g in _spatial_diff(_planes(x))])


def spatial_grad_adjoint(g: torch.Tensor) -> torch.Tensor:
    """D_s^H g for g = (gy, gx) (minus the discrete divergence)."""
    return _from_planes(_spatial_diff_adjoint(_planes(g[0]), _planes(g[1])), g[0])


def spatial_tv(x: torch.Tensor) -> torch.Tensor:
    """Isotropic spatial TV: sum sqrt(|D_y x|^2 + |D_x x|^2) over every frame and pixel. The
    plain formula, differentiable by autograd: the fits use ``total_variation``, whose written-out
    subgradient (``_spatial_tv_subgradient``) is tested against this one."""
    return _pair_modulus(*_spatial_diff(_planes(x))).sum()


def _temporal_tv_subgradient(p: torch.Tensor):
    """(TV_t, D_t^H (D_t x / |D_t x|)) on planes p (K, ..., T, H, W), circular in t."""
    d = torch.roll(p, -1, dims=-3).sub_(p)  # D_t x
    modulus = d[0] * d[0]
    for k in range(1, p.shape[0]):
        modulus.addcmul_(d[k], d[k])
    modulus.sqrt_()
    value = modulus.sum()
    u = d.mul_(modulus.clamp_min_(torch.finfo(d.dtype).tiny).reciprocal_())  # d / |d|, 0 where d = 0
    return value, torch.roll(u, 1, dims=-3).sub_(u)  # D_t^H u [t] = u[t-1] - u[t]


#: Bytes of planes per block of the spatial TV (``_spatial_tv_subgradient``): a block and its
#: differences stay in the cache (8 frames of 128 x 128 complex).
_SPATIAL_BLOCK_BYTES = 2**20


def _spatial_tv_subgradient(p: torch.Tensor):
    """(TV_s, D_s^H (D_s x / |D_s x|_2)) on planes p (K, ..., H, W), the subgradient as planes;
    frame by frame independent, so computed in blocks of frames of ``_SPATIAL_BLOCK_BYTES``."""
    K, H, W = p.shape[0], p.shape[-2], p.shape[-1]
    frames = p.reshape(K, -1, H, W)
    out = torch.empty_like(frames)
    block = max(1, _SPATIAL_BLOCK_BYTES // (K * H * W * p.element_size()))
    value = p.new_zeros(())
    for start in range(0, frames.shape[1], block):
        value += _spatial_tv_block(frames[:, start:start + block], out[:, start:start + block])
    return value, out.view(p.shape)


def _spatial_tv_block(p: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """TV_s of planes p (K, n, H, W), its subgradient written into ``out`` (same shape)."""
    gy, gx = _spatial_diff(p)
    modulus = (gy * gy).sum(0)
    for k in range(p.shape[0]):
        modulus.addcmul_(gx[k], gx[k])
    modulus.sqrt_()
    value = modulus.sum()
    inverse = modulus.clamp_min_(torch.finfo(p.dtype).tiny).reciprocal_()
    gy.mul_(inverse)
    gx.mul_(inverse)
    # D_y^H u [y] = u[y - 1] - u[y] (u = 0 on the last row), likewise along x
    torch.add(gy, gx, out=out).neg_()
    out[..., 1:, :] += gy[..., :-1, :]
    out[..., 1:] += gx[..., :-1]
    return value


class _TotalVariation(torch.autograd.Function):
    """lam TV_t(x) + mu TV_s(x) with its subgradient written out,
    lam D_t^H (D_t x / |D_t x|) + mu D_s^H (D_s x / |D_s x|_2) (0 where a difference is 0),
    so autograd keeps no graph of the differences. Both parts run on real planes
    (``_planes``): complex arithmetic with broadcasting is slow on CPU."""

    @staticmethod
    def forward(ctx, x, lam: float, mu: float):
        p = _planes(x)
        value, grad = x.new_zeros((), dtype=p.dtype), None
        for weight, part in ((lam, _temporal_tv_subgradient), (mu, _spatial_tv_subgradient)):
            if weight:
                v, g = part(p)
                value = value + weight * v
                grad = g.mul_(weight) if grad is None else grad.add_(g, alpha=weight)
        grad = torch.zeros_like(x) if grad is None else _from_planes(grad, x)
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, out_grad):
        (grad,) = ctx.saved_tensors
        return out_grad * grad, None, None


def total_variation(x: torch.Tensor, lam: float, mu: float = 0.0) -> torch.Tensor:
    """lam TV_t(x) + mu TV_s(x) (module docstring), differentiable in x (a subgradient where
    a difference is exactly zero). For a block of frames, TV_t is circular over the block."""
    return _TotalVariation.apply(x, float(lam), float(mu))


def tv_objective(op: SenseOp, x, y, lam, mu: float = 0.0) -> float:
    value = 0.5 * (op.forward(x) - y).abs().pow(2).sum() + lam * temporal_tv(x)
    return float(value + mu * spatial_tv(x)) if mu else float(value)


def check_weight(name: str, value) -> float:
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return float(value)


def check_rate(name: str, value) -> float:
    """A learning rate: finite and > 0; one clear error naming ``name`` otherwise."""
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return float(value)


class _SpatialDual:
    """The primal-dual method's spatial dual z = (zy, zx) on planes (``_planes``), with its
    D_s^H z kept for the next primal step. ``step`` is the dual ascent on D_s x_bar and the
    projection of each pixel's pair onto |(zy, zx)|_2 <= mu; every part of it is frame-local,
    so it runs in blocks of frames of ``_SPATIAL_BLOCK_BYTES`` that stay in the cache."""

    def __init__(self, x: torch.Tensor, sigma: float, mu: float):
        K = 2 if x.is_complex() else 1
        H, W = x.shape[-2:]
        self.zy, self.zx, self.divergence = (x.real.new_zeros((K, x[..., 0, 0].numel(), H, W)) for _ in range(3))
        self.sigma, self.mu, self.shape = sigma, mu, (K,) + tuple(x.shape)
        self.block = max(1, _SPATIAL_BLOCK_BYTES // (K * H * W * self.zy.element_size()))

    def adjoint(self, like: torch.Tensor) -> torch.Tensor:
        """D_s^H z, shaped and typed like the image ``like``."""
        return _from_planes(self.divergence.view(self.shape), like)

    def step(self, x_bar: torch.Tensor):
        p = _planes(x_bar).reshape(self.zy.shape)
        for start in range(0, p.shape[1], self.block):
            f = slice(start, start + self.block)
            gy, gx = _spatial_diff(p[:, f])
            zy, zx = self.zy[:, f] + self.sigma * gy, self.zx[:, f] + self.sigma * gx
            shrink = torch.clamp(_pair_modulus(zy, zx) / self.mu, min=1.0)
            torch.div(zy, shrink, out=self.zy[:, f])
            torch.div(zx, shrink, out=self.zx[:, f])
            self.divergence[:, f] = _spatial_diff_adjoint(self.zy[:, f], self.zx[:, f])


def tv_recon(op: SenseOp, y, lam: float, *, iters: int = 300, target: Optional[np.ndarray] = None,
             x0: Optional[torch.Tensor] = None, log_every: int = 10, progress: bool = False, mu: float = 0.0,
             map_grid: int = 0, map_lr: float = MAP_LR):
    """TV reconstruction (temporal weight ``lam``, spatial weight ``mu``; module docstring);
    returns (x (T, H, W) complex64 numpy, FitHistory), and with ``map_grid`` > 0 the refined
    coil maps (C, H, W) third (module docstring). History times leave out the monitoring
    itself (objective and PSNR against ``target``)."""
    lam, mu = check_weight("lambda", lam), check_weight("mu", mu)
    map_grid = int(map_grid)
    if map_grid:
        from .inr.coil_refinement import CoilMapRefinement  # the inr package imports this module

        map_lr = check_rate("map_lr", map_lr)
        refinement = CoilMapRefinement(op.smaps, map_grid)
        map_opt = torch.optim.Adam(refinement.parameters(), lr=map_lr)
        map_sched = torch.optim.lr_scheduler.CosineAnnealingLR(map_opt, iters, eta_min=map_lr * 0.05)
    y = torch.as_tensor(y)
    x = op.adjoint(y) if x0 is None else torch.as_tensor(x0).clone()
    z = torch.zeros_like(x)
    tau = 0.95
    # dual steps: 4 sigma_t + 8 sigma_s <= 1/tau - 1/2 (module docstring), split evenly when both are on
    sigma, sigma_s = (1.0 / 8.0, 0.0) if mu == 0 else ((1 / tau - 0.5) / 8, (1 / tau - 0.5) / 16)
    spatial = _SpatialDual(x, sigma_s, mu) if mu > 0 else None
    hist, clock = FitHistory(), Stopwatch()
    with torch.no_grad():
        for k in tqdm(range(iters), desc=f"TV lambda={lam:.2g} mu={mu:.2g}", disable=not progress, leave=False):
            if map_grid:  # one data term, two gradients: the image's for the step, the maps' for Adam
                with torch.enable_grad():
                    xg = x.requires_grad_(True)
                    map_opt.zero_grad(set_to_none=True)
                    refinement.data_term(op, xg, y).backward()
                data_grad = xg.grad
                x = x.detach()
                map_opt.step()
                map_sched.step()
            else:
                data_grad = op.data_gradient(x, y)
            step = data_grad + temporal_diff_adjoint(z)
            if spatial is not None:
                step = step + spatial.adjoint(x)
            x_new = x - tau * step
            x_bar = 2 * x_new - x
            z = z + sigma * temporal_diff(x_bar)
            z = z / torch.clamp(z.abs() / lam, min=1.0) if lam > 0 else torch.zeros_like(z)
            if spatial is not None:  # dual of the isotropic norm: each (zy, zx) pair projected onto |.| <= mu
                spatial.step(x_bar)
            x = x_new
            if (k + 1) % log_every == 0 or k + 1 == iters:
                elapsed = clock.elapsed()
                with clock.paused():
                    value = psnr(x.numpy(), target) if target is not None else None
                    op_now = SenseOp(refinement.maps(), op.mask) if map_grid else op
                    hist.add(elapsed, k + 1, tv_objective(op_now, x, y, lam, mu), value)
    if map_grid:
        with torch.no_grad():
            return x.numpy(), hist, refinement.maps().numpy()
    return x.numpy(), hist


def reconstructor(iters: int = 1000, log_every: int = 50, map_grid: int = 0):
    """A ``selection.Reconstructor`` for ``tv_recon`` at absolute weights (lam, mu); with
    ``map_grid`` > 0 it refines the coil maps and returns them third."""

    def reconstruct(op, y, lam, mu, target):
        return tv_recon(op, y, lam, iters=iters, target=target, log_every=log_every, mu=mu, map_grid=map_grid)

    return reconstruct
