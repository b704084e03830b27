import numpy as np
import pytest

from inr_utils import metrics


def test_known_values():
    target = np.zeros((2, 16, 16)); target[:, 4:12, 4:12] = 1.0  # 2 x 64 ones out of 512 pixels
    x = target + 0.1  # uniform offset on magnitudes
    assert metrics.psnr(x, target) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert metrics.rel_l1(x, target) == pytest.approx(0.1 * 512 / 128)
    assert metrics.nrmse(x, target) == pytest.approx(np.sqrt(0.01 * 512) / np.sqrt(128))
    assert metrics.ssim(target, target) == pytest.approx(1.0)
    assert metrics.ssim(x, target) < 1.0


def test_magnitudes_are_compared():
    rng = np.random.default_rng(0)
    target = rng.random((3, 16, 16)) * np.exp(1j * rng.random((3, 16, 16)))
    assert metrics.psnr(np.abs(target) * np.exp(1j * 2.0), target) > 200  # phase ignored: equal to rounding


def test_temporal_fidelity_exposes_static_output():
    rng = np.random.default_rng(0)
    target = rng.random((10, 16, 16))
    static = np.repeat(target.mean(0, keepdims=True), 10, axis=0)
    assert metrics.temporal_fidelity(static, target) == pytest.approx(0.0)
    assert metrics.temporal_fidelity(target, target) == pytest.approx(1.0)
    assert metrics.temporal_correlation(static, target) == pytest.approx(0.0, abs=1e-9)
    assert metrics.temporal_correlation(target, target) == pytest.approx(1.0)
    flicker = static + 0.3 * rng.standard_normal(static.shape)  # noisy but static: high fidelity ratio, ~0 correlation
    assert metrics.temporal_fidelity(flicker, target) > 0.5 and abs(metrics.temporal_correlation(flicker, target)) < 0.1
    assert set(metrics.all_metrics(static, target)) == set(metrics.METRIC_KEYS)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(np.ones((2, 4, 4)), np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.psnr(np.full((2, 4, 4), np.nan), np.ones((2, 4, 4)))
