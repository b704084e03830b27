"""Reconstructions on a tiny case: they must beat zero filling; lambda behaves as a TV weight."""
import numpy as np
import pytest
import torch

from inr_utils import inr, metrics, tv
from inr_utils.acquisition import simulate
from inr_utils.phantom import phantom_cine
from inr_utils.tv import temporal_diff, temporal_diff_adjoint, tv_recon


@pytest.fixture(scope="module")
def case():
    acq = simulate(phantom_cine(8, 32, 32, seed=2), R=4, seed=2, coils=2, noise_std=1e-3)
    return acq, acq.op, torch.from_numpy(acq.kspace)


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


@pytest.mark.parametrize("name,kw,steps,lr", [("lowrank", {"rank": 8}, 300, 1e-2),
                                              ("siren", {"hidden": 64, "layers": 3}, 300, 1e-3)])
def test_inr_fit_improves_on_zf(case, name, kw, steps, lr):
    acq, op, y = case
    model = inr.build(name, acq.target.shape, **kw)
    res = inr.fit(model, op, y, log_lambda=-2.5, steps=steps, lr=lr, target=acq.target, progress=False, seed=0)
    assert res.recon.shape == acq.target.shape and not res.diverged
    assert metrics.psnr(res.recon, acq.target) > metrics.psnr(acq.zero_filled(), acq.target) + 2


def test_fit_time_leaves_out_the_psnr_monitoring(case, monkeypatch):
    """The reported fit time and the time box count training only: a monitoring step that
    takes 0.2 s at each of 5 logs (1 s in all) must not show up in them."""
    import time

    acq, op, y = case
    real_psnr = inr.psnr
    monkeypatch.setattr(inr, "psnr", lambda x, t: (time.sleep(0.2), real_psnr(x, t))[1])
    model = inr.build("lowrank", acq.target.shape, rank=4)
    res = inr.fit(model, op, y, log_lambda=-3, steps=5, log_every=1, target=acq.target, max_seconds=0.5,
                  progress=False)
    assert res.steps == 5 and len(res.history.psnr) == 5  # the time box did not cut the fit short
    assert res.seconds < 0.5


def test_tv_history_times_leave_out_the_monitoring(case, monkeypatch):
    """Same for temporal TV: 0.2 s of PSNR monitoring at each of 5 logs stays out of its history times."""
    import time

    acq, op, y = case
    real_psnr = tv.psnr
    monkeypatch.setattr(tv, "psnr", lambda x, t: (time.sleep(0.2), real_psnr(x, t))[1])
    _, hist = tv.tv_recon(op, y, 1e-3, iters=5, target=acq.target, log_every=1)
    assert len(hist.psnr) == 5 and hist.seconds[-1] < 0.5


def test_fit_is_deterministic(case):
    acq, op, y = case
    runs = [inr.fit(inr.build("lowrank", acq.target.shape, rank=4), op, y, log_lambda=-3, steps=20, progress=False).recon
            for _ in range(2)]
    assert np.array_equal(*runs)


def test_query_matches_render_and_continuous_in_t(case):
    acq, op, y = case
    model = inr.build("lowrank", acq.target.shape, rank=4)
    inr.fit(model, op, y, log_lambda=-3, steps=30, progress=False)
    T, H, W = acq.target.shape
    with torch.no_grad():
        cine = model.render()
        iy, ix = torch.tensor([3, 17, 30]), torch.tensor([1, 16, 31])
        coords = torch.stack([inr.frame_times(T)[2].expand(3), 2 * (iy + 0.5) / H - 1, 2 * (ix + 0.5) / W - 1], 1)
        v = model(coords)
        assert torch.allclose(torch.complex(v[:, 0], v[:, 1]), cine[2, iy, ix], atol=1e-5)
        t = torch.tensor([0.1, 0.1 + 1e-4])
        a, b = model.render(t)
        assert (a - b).abs().max() < 1e-2 * cine.abs().max()


def test_divergence_stops_with_last_good_state(case):
    acq, op, y = case
    model = inr.build("lowrank", acq.target.shape, rank=4)
    with pytest.warns(RuntimeWarning, match="restored the last good parameters"):
        res = inr.fit(model, op, y * float("nan"), log_lambda=-3, steps=10, progress=False)
    assert res.diverged and np.all(np.isfinite(res.recon))


def test_lambda_coordinate_controls_temporal_smoothness(case):
    """One conditional fit: larger lambda -> monotonically smaller temporal variation."""
    acq, op, y = case
    model = inr.build("lowrank-lambda", acq.target.shape, rank=8)
    inr.fit(model, op, y, log_lambda_range=(-5, 0), steps=600, progress=False, seed=0)
    tv = [float(temporal_diff(torch.from_numpy(inr.render_numpy(model, ll))).abs().sum()) for ll in (-5, -3.75, -2.5, -1.25, 0)]
    assert all(a > b for a, b in zip(tv, tv[1:])), tv
    with pytest.raises(ValueError, match="pass log_lambda"):
        model.render()


def test_holdout_split():
    mask = np.zeros((4, 64), np.uint8)
    mask[:, ::2] = 1
    fit_mask, hold = inr.split_lines(mask, 0.2, seed=0)
    assert not np.any(fit_mask & hold) and np.array_equal(fit_mask | hold, mask)
    assert hold.sum() > 0 and not hold[:, 28:36].any()
