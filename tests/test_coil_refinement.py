"""Coil maps refined jointly with the image: the data term's gradients, the normalisation, a
fit that recovers from wrong maps, and the held-out scoring with the refined maps."""
import dataclasses

import numpy as np
import pytest
import torch

from inr_utils import inr, metrics, selection
from inr_utils.fourier import SenseOp, _fft1c
from inr_utils.inr import CoilMapRefinement


def _smooth_error(smaps: np.ndarray, amplitude: float, seed: int = 0) -> np.ndarray:
    """``smaps`` times a smooth complex per-coil field, renormalised: maps that are wrong as an
    estimate is, slowly across the image."""
    C, H, W = smaps.shape
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, W), indexing="ij")
    field = np.stack([np.exp(amplitude * (rng.standard_normal() * yy + rng.standard_normal() * xx)
                             + 1j * amplitude * (rng.standard_normal() * xx * yy + rng.standard_normal() * yy))
                      for _ in range(C)])
    wrong = smaps * field
    return (wrong / np.sqrt((np.abs(wrong) ** 2).sum(0, keepdims=True))).astype(np.complex64)


@pytest.mark.parametrize("W", [16, 15])
@pytest.mark.parametrize("T", [3, 9])
def test_refined_data_term_and_its_gradients_match_autograd(W, T):
    """The written-out gradients (image and correction) against autograd through a plain 2-D
    centred FFT, for even W (checkerboard folding) and odd W, in one block of frames and in
    several (``fourier.FRAMES_PER_BLOCK``)."""
    torch.manual_seed(0)
    C, H = 2, 12
    smaps = torch.randn(C, H, W, dtype=torch.complex64)
    smaps = smaps / (smaps.abs() ** 2).sum(0).sqrt()
    op = SenseOp(smaps, (torch.rand(T, W) > 0.5).float().numpy())
    y = torch.randn(T, C, H, W, dtype=torch.complex64)  # not masked: the unsampled part is a constant
    refinement = CoilMapRefinement(smaps, grid=4)
    with torch.no_grad():
        refinement.delta.normal_(0, 0.3)
    x = torch.randn(T, H, W, dtype=torch.complex64, requires_grad=True)
    loss = refinement.data_term(op, x, y)
    loss.backward()
    grad_x, grad_delta = x.grad.clone(), refinement.delta.grad.clone()

    x_ref = x.detach().clone().requires_grad_(True)
    refinement.delta.grad = None
    k = _fft1c(_fft1c(x_ref.unsqueeze(-3) * refinement.maps(), inverse=False, dim=-1), inverse=False, dim=-2)
    loss_ref = 0.5 * (op.apply_mask(k) - op.apply_mask(y)).abs().pow(2).sum() + 0.5 * (y - op.apply_mask(y)).abs().pow(2).sum()
    loss_ref.backward()
    assert loss.item() == pytest.approx(loss_ref.item(), rel=1e-5)
    assert torch.allclose(grad_x, x_ref.grad, rtol=1e-4, atol=1e-4 * float(grad_x.abs().max()))
    assert torch.allclose(grad_delta, refinement.delta.grad, rtol=1e-4, atol=1e-4 * float(grad_delta.abs().max()))


def test_refined_maps_start_at_the_estimate_and_stay_normalised():
    rng = np.random.default_rng(1)
    smaps = (rng.standard_normal((3, 10, 12)) + 1j * rng.standard_normal((3, 10, 12))).astype(np.complex64)
    smaps /= np.sqrt((np.abs(smaps) ** 2).sum(0, keepdims=True))
    refinement = CoilMapRefinement(torch.from_numpy(smaps), grid=3, weight=0.5)
    assert np.allclose(refinement.maps().detach().numpy(), smaps, atol=1e-6)
    assert refinement.penalty().item() == 0
    with torch.no_grad():
        refinement.delta.normal_(0, 1.0)
    maps = refinement.maps().detach().numpy()
    assert np.allclose((np.abs(maps) ** 2).sum(0), 1, atol=1e-5)
    assert not np.allclose(maps, smaps, atol=1e-2)
    assert refinement.penalty().item() == pytest.approx(0.5 * float(refinement.delta.detach().pow(2).sum()), rel=1e-6)
    with pytest.raises(ValueError, match="at least 2 x 2"):
        CoilMapRefinement(torch.from_numpy(smaps), grid=1)


def test_refinement_recovers_most_of_what_wrong_maps_cost(tiny_acq):
    """With maps off by a smooth field, the fit that refines them comes much closer to the fit
    with the true maps than the fit that trusts them."""
    wrong = dataclasses.replace(tiny_acq, smaps=_smooth_error(tiny_acq.smaps, 0.6))
    y = torch.from_numpy(tiny_acq.kspace)

    def fit(acq, grid):
        model = inr.build("lowrank", acq.target.shape, rank=6, init=acq.op.adjoint(y).mean(0))
        res = inr.fit(model, acq.op, y, log_lambda=-2.5, steps=300, lr=2e-2, progress=False, map_grid=grid)
        return metrics.psnr(res.recon, acq.target), res

    known, _ = fit(tiny_acq, 0)
    trusted, _ = fit(wrong, 0)
    refined, res = fit(wrong, 4)
    assert known - trusted > 3, (known, trusted)  # the wrong maps cost the plain fit
    assert refined - trusted > 0.5 * (known - trusted), (known, trusted, refined)
    assert res.smaps.shape == tiny_acq.smaps.shape and np.allclose((np.abs(res.smaps) ** 2).sum(0), 1, atol=1e-4)
    assert trusted == pytest.approx(fit(wrong, 0)[0], abs=1e-6) and refined == pytest.approx(fit(wrong, 4)[0], abs=1e-6)


def test_the_maps_learning_rate_is_their_own(tiny_acq):
    """``map_lr``: None and the model's own rate give the same fit; another rate moves only the
    maps' correction at that rate (a frozen model, lr tiny, still sees the maps move); a bad
    value is refused."""
    wrong = dataclasses.replace(tiny_acq, smaps=_smooth_error(tiny_acq.smaps, 0.6))
    y = torch.from_numpy(tiny_acq.kspace)

    def fit(lr, map_lr):
        model = inr.build("lowrank", wrong.target.shape, rank=6, init=wrong.op.adjoint(y).mean(0))
        return inr.fit(model, wrong.op, y, log_lambda=-2.5, steps=60, lr=lr, progress=False, map_grid=4, map_lr=map_lr)

    same, default = fit(2e-2, 2e-2), fit(2e-2, None)
    assert np.array_equal(same.recon, default.recon) and np.array_equal(same.smaps, default.smaps)
    frozen_maps_only = fit(1e-12, 1e-1)
    assert np.abs(frozen_maps_only.smaps - wrong.smaps).max() > 1e-2  # the maps moved at their own rate
    assert np.abs(fit(1e-12, None).smaps - wrong.smaps).max() < 1e-6  # at the model's (tiny) rate they do not
    assert inr.default_settings("lowrank", wrong.target.shape, map_lr=5e-2).map_lr == 5e-2
    with pytest.raises(ValueError, match="map_lr"):
        fit(2e-2, float("nan"))


def test_held_out_lines_are_scored_with_the_refined_maps(tiny_acq):
    """Without a target, a method that returns refined maps is scored with them: the true image
    with the true maps predicts the held-out lines far better than with wrong maps."""
    wrong = dataclasses.replace(tiny_acq, smaps=_smooth_error(tiny_acq.smaps, 0.6), target=None)
    scores = {}
    for label, returned in (("refined", (tiny_acq.smaps,)), ("as given", ())):
        def reconstruct(op, y, lam, mu, target, returned=returned):
            return (tiny_acq.target, None) + returned

        sel = selection.select_weights(reconstruct, wrong, selection.SearchSpec(log_lambdas=(-3.0,)))
        scores[label] = sel.trials[0]["score"]
    assert scores["refined"] < 0.1 * scores["as given"], scores


def test_map_grid_defaults_and_errors(tiny_acq):
    assert inr.default_map_grid((20, 128, 128)) == 16 and inr.default_map_grid((8, 24, 40)) == 4
    assert inr.map_grid_for(tiny_acq) == 0  # the simulation's own maps are exact
    estimated = dataclasses.replace(tiny_acq, meta={"coil_maps": {"method": "espirit"}})
    assert inr.map_grid_for(estimated) == inr.default_map_grid(tiny_acq.smaps.shape)
    assert inr.default_settings("lowrank", (8, 32, 32)).map_grid == 0
    assert inr.default_settings("lowrank", (8, 32, 32), map_grid=6).map_grid == 6
    with pytest.raises(ValueError, match="map_grid"):
        inr.default_settings("lowrank", (8, 32, 32), map_grid=1)
    model = inr.build("lowrank", tiny_acq.target.shape, rank=2)
    with pytest.raises(ValueError, match="full frames"):
        inr.fit(model, tiny_acq.op, torch.from_numpy(tiny_acq.kspace), log_lambda=-3, steps=2, frames_per_step=2,
                map_grid=4, progress=False)


def test_benchmark_hands_every_method_the_maps_the_inr_refined(tiny_acq, tmp_path, monkeypatch):
    """global_recon --maps inr: the ESPIRiT case gets the maps that the default INR's fit refines
    at the weights it chose in the ESPIRiT results, and says so; without those results it
    stops with a message naming them."""
    import argparse
    import importlib
    import json

    from inr_utils import REPO_ROOT, report

    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    global_recon = importlib.import_module("global_recon")
    monkeypatch.setattr(report, "BENCHMARK_RESULTS", tmp_path)
    wrong = dataclasses.replace(tiny_acq, smaps=_smooth_error(tiny_acq.smaps, 0.6),
                                meta={"coil_maps": {"method": "espirit", "calibration_lines": 8}})
    args = argparse.Namespace(threads=1, default_inr="lowrank", inr_steps=200)
    with pytest.raises(SystemExit, match="--maps inr needs lowrank's result for case at R = 3 in mine.json"):
        global_recon.refined_by_inr(wrong, "case", 3, args, "mine")
    (tmp_path / "mine.json").write_text(json.dumps({"case|3|lowrank": {"log_lambda": -2.5, "log_mu": -4.0}}))
    refined = global_recon.refined_by_inr(wrong, "case", 3, args, "mine")
    assert refined.meta["coil_maps"] == {"method": "espirit", "calibration_lines": 8, "refined_by": "lowrank", "map_grid": 4}
    assert np.allclose((np.abs(refined.smaps) ** 2).sum(0), 1, atol=1e-4)

    def mismatch(maps):  # distance to the true maps, up to a per-pixel phase
        return float(np.mean(1 - np.abs((np.conj(maps) * tiny_acq.smaps).sum(0))))

    assert mismatch(refined.smaps) < 0.5 * mismatch(wrong.smaps)



def test_tv_refines_the_maps_as_the_inr_fit_does(tiny_acq):
    """Temporal + spatial TV with maps off by a smooth field: refining them jointly recovers
    most of what the wrong maps cost, returns normalised maps, and is deterministic."""
    from inr_utils import tv

    wrong = dataclasses.replace(tiny_acq, smaps=_smooth_error(tiny_acq.smaps, 0.6))
    y = torch.from_numpy(tiny_acq.kspace)

    def recon(acq, grid):
        out = tv.tv_recon(acq.op, y, 3e-3, mu=3e-4, iters=300, map_grid=grid, log_every=100)
        return metrics.psnr(out[0], acq.target), out

    known, _ = recon(tiny_acq, 0)
    trusted, out = recon(wrong, 0)
    assert len(out) == 2  # no maps returned without refinement
    refined, (x, hist, maps) = recon(wrong, 4)
    assert known - trusted > 3, (known, trusted)
    assert refined - trusted > 0.5 * (known - trusted), (known, trusted, refined)
    assert maps.shape == tiny_acq.smaps.shape and np.allclose((np.abs(maps) ** 2).sum(0), 1, atol=1e-4)
    assert hist.step == [100, 200, 300] and hist.loss[-1] < hist.loss[0]
    assert refined == pytest.approx(recon(wrong, 4)[0], abs=1e-6)
    with pytest.raises(ValueError, match="map_lr"):
        tv.tv_recon(wrong.op, y, 3e-3, iters=2, map_grid=4, map_lr=float("nan"))
    with pytest.raises(ValueError, match="at least 2 x 2"):
        tv.tv_recon(wrong.op, y, 3e-3, iters=2, map_grid=1)
