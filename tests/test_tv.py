"""Temporal and spatial TV: adjoint differences, the objective, its gradient, the primal-dual solver on a tiny case."""
import numpy as np
import pytest
import torch

from inr_utils import metrics, tv
from inr_utils.tv import temporal_diff, temporal_diff_adjoint, tv_recon


def test_temporal_difference_adjoint():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((5, 4, 3)) + 1j * rng.standard_normal((5, 4, 3)))
    z = torch.from_numpy(rng.standard_normal((5, 4, 3)) + 1j * rng.standard_normal((5, 4, 3)))
    assert torch.vdot(temporal_diff(x).flatten(), z.flatten()).isclose(torch.vdot(x.flatten(), temporal_diff_adjoint(z).flatten()))


def test_tv_improves_on_zf_and_lowers_objective(case):
    acq, op, y = case
    zf_psnr = metrics.psnr(acq.zero_filled(), acq.target)
    x, hist = tv_recon(op, y, lam=1e-2, iters=150, target=acq.target)
    assert metrics.psnr(x, acq.target) > zf_psnr + 3
    assert hist.loss[-1] < hist.loss[0]
    with pytest.raises(ValueError, match="lambda"):
        tv_recon(op, y, lam=float("nan"))


def test_tv_history_times_leave_out_the_monitoring(case, monkeypatch):
    """Same for temporal TV: 0.5 s of PSNR monitoring at each of 5 logs stays out of its history times."""
    import time

    acq, op, y = case
    real_psnr = tv.psnr
    monkeypatch.setattr(tv, "psnr", lambda x, t: (time.sleep(0.5), real_psnr(x, t))[1])
    _, hist = tv.tv_recon(op, y, 1e-3, iters=5, target=acq.target, log_every=1)
    assert len(hist.psnr) == 5 and hist.seconds[-1] < 2.0


def _complex(rng, *shape):
    return torch.from_numpy(rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def test_spatial_difference_adjoint():
    rng = np.random.default_rng(1)
    x, g = _complex(rng, 3, 5, 4), _complex(rng, 2, 3, 5, 4)
    lhs = torch.vdot(tv.spatial_grad(x).flatten(), g.flatten())
    assert lhs.isclose(torch.vdot(x.flatten(), tv.spatial_grad_adjoint(g).flatten()))


@pytest.mark.parametrize("block_bytes", [2**20, 300])
def test_total_variation_value_and_gradient_match_autograd(block_bytes, monkeypatch):
    """The written-out subgradient of lam TV_t + mu TV_s equals autograd of the plain formula
    (no difference is exactly zero for random data), with the spatial part in one block of
    frames and in blocks of one frame (the complex cine) or two (the real one)."""
    monkeypatch.setattr(tv, "_SPATIAL_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(2)
    x = _complex(rng, 4, 6, 5).requires_grad_(True)
    lam, mu = 0.7, 0.3
    plain = lam * tv.temporal_diff(x).abs().sum() + mu * tv.spatial_tv(x)
    (g_plain,) = torch.autograd.grad(plain, x)
    ours = tv.total_variation(x, lam, mu)
    (g_ours,) = torch.autograd.grad(ours, x)
    assert torch.allclose(ours, plain) and torch.allclose(g_ours, g_plain)
    # a real image: the same formulas on its only plane
    xr = x.detach().real.clone().requires_grad_(True)
    plain = lam * tv.temporal_diff(xr).abs().sum() + mu * tv.spatial_tv(xr)
    (g_plain,) = torch.autograd.grad(plain, xr)
    ours = tv.total_variation(xr, lam, mu)
    (g_ours,) = torch.autograd.grad(ours, xr)
    assert torch.allclose(ours, plain) and torch.allclose(g_ours, g_plain)
    # a constant image has zero TV and a zero subgradient (no NaN from 0 / 0)
    c = torch.ones(3, 4, 4, dtype=torch.complex64, requires_grad=True)
    v = tv.total_variation(c, 1.0, 1.0)
    v.backward()
    assert v.item() == 0 and torch.all(c.grad == 0)


def test_tv_with_spatial_term_converges_and_beats_temporal_only(case):
    acq, op, y = case
    x_t, _ = tv_recon(op, y, lam=1e-2, iters=200)
    x_ts, hist = tv_recon(op, y, lam=1e-2, mu=3e-4, iters=200, log_every=20)
    assert all(a >= b - 1e-6 * abs(a) for a, b in zip(hist.loss, hist.loss[1:]))  # objective decreases
    assert metrics.psnr(x_ts, acq.target) > metrics.psnr(x_t, acq.target) + 0.3  # a piecewise-smooth phantom
    with pytest.raises(ValueError, match="mu must be finite"):
        tv_recon(op, y, lam=1e-2, mu=-1.0)


def test_tv_spatial_dual_in_blocks_of_frames_equals_one_block(case, monkeypatch):
    """The primal-dual method's spatial dual step runs in blocks of frames: blocks of one frame
    give the same iterates, to the bit, as all 8 frames in one block (every part is frame-local),
    and its kept D_s^H z is the adjoint of the spatial differences at the dual."""
    acq, op, y = case
    x_one, hist_one = tv_recon(op, y, lam=1e-2, mu=3e-3, iters=30)
    monkeypatch.setattr(tv, "_SPATIAL_BLOCK_BYTES", 1)
    x_blocks, hist_blocks = tv_recon(op, y, lam=1e-2, mu=3e-3, iters=30)
    assert np.array_equal(x_one, x_blocks) and hist_one.loss == hist_blocks.loss
    dual = tv._SpatialDual(torch.from_numpy(x_one), sigma=0.5, mu=1e-3)
    assert dual.block == 1
    dual.step(torch.from_numpy(x_one))
    z = torch.stack([torch.complex(dual.zy[0], dual.zy[1]), torch.complex(dual.zx[0], dual.zx[1])]).reshape(2, *x_one.shape)
    assert (z.abs().pow(2).sum(0).sqrt() <= 1e-3 * (1 + 1e-5)).all()  # projected onto |(zy, zx)| <= mu
    assert torch.allclose(dual.adjoint(torch.from_numpy(x_one)), tv.spatial_grad_adjoint(z))


# ---------------------------------------------------------------- hash-grid neural field
