import numpy as np
import pytest

from inr_utils.phantom import BeatingHeartPhantom, phantom_cine, volume_curve


def test_continuous_in_time_and_periodic():
    ph = BeatingHeartPhantom(seed=3)
    t = np.array([0.3, 0.3 + 1e-4, 0.0, 1.0 - 1e-6])
    f = ph(t, 64, 64)
    assert np.abs(f[1] - f[0]).max() < 1e-2
    assert np.abs(f[3] - f[2]).max() < 1e-2  # one cardiac cycle: t = 1 joins t = 0


def test_heart_beats():
    ph = BeatingHeartPhantom(seed=0)
    r_endo, _ = ph.lv_radii(np.linspace(0, 1, 50, endpoint=False))
    assert r_endo.max() / r_endo.min() > 1.2  # ejection fraction > 0.5 -> radius ratio > sqrt(2)
    v = volume_curve(np.linspace(0, 1, 1001))
    assert v.min() == pytest.approx(0, abs=1e-3) and v[0] == pytest.approx(1)
    t_min = np.linspace(0, 1, 1001)[np.argmin(v)]
    assert t_min < 0.5  # systole is the faster half


def test_subjects_distinct_and_deterministic():
    a, b, c = phantom_cine(4, 48, 48, seed=0), phantom_cine(4, 48, 48, seed=0), phantom_cine(4, 48, 48, seed=1)
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 0.02
    assert BeatingHeartPhantom(0).params["heart_rate_bpm"] != BeatingHeartPhantom(1).params["heart_rate_bpm"]


def test_any_size_smooth_edges():
    small, large = phantom_cine(2, 40, 56, seed=2), phantom_cine(2, 128, 128, seed=2)
    assert small.shape == (2, 40, 56) and large.dtype == np.float32
    assert 0.8 < large.max() < 1.3 and large.min() >= 0
    # anti-aliased: no jump between neighbours larger than ~ half the contrast
    assert np.abs(np.diff(large, axis=-1)).max() < 0.6


def test_bad_times_refused():
    with pytest.raises(ValueError, match="finite"):
        BeatingHeartPhantom(0)(np.array([0.1, np.nan]), 16, 16)


def test_frames_rendered_together_or_alone_and_at_any_size_order_agree():
    """Frames are rendered all at once and the static anatomy is cached per size: each frame
    equals the frame rendered alone, and switching sizes gives what a fresh subject gives."""
    t = np.array([0.05, 0.3, 0.61, 0.97])
    ph = BeatingHeartPhantom(4)
    together = ph(t, 24, 20)
    assert together.shape == (4, 24, 20) and together.dtype == np.float32
    for k in range(len(t)):
        assert np.array_equal(together[k], ph(t[k:k + 1], 24, 20)[0])
    other = ph(t, 16, 16)
    assert np.array_equal(other, BeatingHeartPhantom(4)(t, 16, 16))
    assert np.array_equal(ph(t, 24, 20), together)
