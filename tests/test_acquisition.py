import numpy as np
import pytest

from inr_utils.acquisition import (achieved_acceleration, binned_acquisition, center_lines, coil_maps,
                                   make_masks, original_masks, random_phase, simulate, variable_density_masks)
from inr_utils.phantom import phantom_cine


@pytest.mark.parametrize("R", [2, 3, 4, 6, 8, 12, 2.5, 7.3])
@pytest.mark.parametrize("T,W", [(20, 128), (25, 127), (8, 64)])
def test_achieved_acceleration_within_5_percent(R, T, W):
    mask = variable_density_masks(T, W, R, seed=0)
    assert abs(achieved_acceleration(mask) - R) / R < 0.05
    assert mask.dtype == np.uint8 and mask.shape == (T, W)


def test_centre_always_sampled_and_patterns_differ():
    mask = variable_density_masks(20, 128, 6, seed=0)
    assert mask[:, center_lines(128, 8)].all()
    assert len({m.tobytes() for m in mask}) == 20


def test_masks_deterministic_by_seed():
    a, b, c = (variable_density_masks(10, 64, 4, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("bad", [0.5, 0, -3, float("nan"), float("inf"), "fast"])
def test_bad_acceleration_is_refused(bad):
    with pytest.raises(ValueError, match="acceleration R"):
        variable_density_masks(4, 32, bad, seed=0)


def test_original_masks_use_original_parameters():
    for R in (2, 3, 4, 6):
        mask = original_masks(25, 127, R, seed=0)
        assert mask.shape == (25, 127) and mask[:, center_lines(127, 2)].all()
    # the original's R = 6 parameters give roughly R = 6 (the original did not enforce it)
    assert 4.5 < achieved_acceleration(original_masks(25, 128, 6, seed=0)) < 8
    with pytest.raises(ValueError, match="original mask parameters"):
        make_masks(4, 32, 5, seed=0, style="original")


def test_coil_maps_normalised():
    S = coil_maps(4, 40, 30, seed=0)
    assert S.shape == (4, 40, 30) and S.dtype == np.complex64
    assert np.allclose((np.abs(S) ** 2).sum(0), 1, atol=1e-5)


def test_random_phase_smooth_and_seeded():
    p = random_phase(np.linspace(0, 1, 6), 32, 32, seed=0)
    assert p.shape == (6, 32, 32)
    assert np.abs(np.diff(p, axis=-1)).max() < 0.5  # smooth in space
    assert np.array_equal(p, random_phase(np.linspace(0, 1, 6), 32, 32, seed=0))


def test_random_phase_is_the_trilinear_interpolation_of_its_lattice():
    """The separable evaluation equals scipy's trilinear interpolation of the 5^3 lattice (times clipped to [0, 1])."""
    from scipy.ndimage import map_coordinates

    t = np.array([0.0, 0.13, 0.5, 0.99, 1.0, 1.2, -0.1])
    lattice = np.random.default_rng(7).standard_normal((5, 5, 5)) * 2.0
    grid = np.meshgrid(np.clip(t, 0, 1) * 4, np.linspace(0, 4, 9), np.linspace(0, 4, 6), indexing="ij")
    ref = map_coordinates(lattice, grid, order=1, mode="nearest")
    assert np.allclose(random_phase(t, 9, 6, seed=7, scale=2.0), ref, atol=1e-6)


def test_simulate_noise_only_on_sampled_lines_and_deterministic():
    mag = phantom_cine(6, 32, 32, seed=0)
    a, b = simulate(mag, 3, seed=5), simulate(mag, 3, seed=5)
    assert np.array_equal(a.kspace, b.kspace)
    unsampled = (a.mask == 0)[:, None, None, :]
    assert not np.any((a.kspace != 0) & unsampled)
    noiseless = simulate(mag, 3, seed=5, noise_std=0)
    diff = (a.kspace - noiseless.kspace)[np.broadcast_to(~unsampled, a.kspace.shape)]
    assert abs(np.std(diff) - 1e-3) < 2e-4


def test_zero_filled_of_full_sampling_is_target():
    mag = phantom_cine(3, 16, 16, seed=0)
    a = simulate(mag, 1, seed=0, noise_std=0)
    assert achieved_acceleration(a.mask) == 1
    assert np.allclose(a.zero_filled(), a.target, atol=1e-5)


def test_binned_acquisition_keeps_first_sample_per_line():
    H = W = 32
    T_high, T_low = 16, 4
    # each time point is a different constant image, so a sample tells which acquisition it came from
    image_at = lambda t: np.ones((len(t), H, W), np.complex64) * (1 + np.asarray(t))[:, None, None]
    b = binned_acquisition(image_at, R=3, T_low=T_low, T_high=T_high, seed=0)
    assert b.kspace.shape == (T_low, 1, H, W) and b.mask.shape == (T_low, W)
    masks = variable_density_masks(T_high, W, 3 * T_high / 25, seed=0, n_center=1)
    dc_row = H // 2
    for k in range(T_low):
        group = masks[k * 4:(k + 1) * 4]
        assert np.array_equal(b.mask[k], group.max(0))
        # DC line (sampled by every acquisition) must hold the first acquisition of the bin
        first_t = (k * 4) / T_high
        assert np.isclose(b.kspace[k, 0, dc_row, W // 2], (1 + first_t) * np.sqrt(H * W), rtol=1e-5)
    assert np.allclose(b.bin_times, (np.arange(T_low) + 0.5) / T_low - 0.5 / T_high)
    with pytest.raises(ValueError, match="multiple of T_low"):
        binned_acquisition(image_at, R=3, T_low=5, T_high=T_high)


def test_snr_sets_the_noise_and_birdcage_coils_are_an_option():
    from inr_utils.acquisition import noise_for_snr

    cine = phantom_cine(4, 32, 32, seed=0)
    acq = simulate(cine, R=2, seed=0, coils=4, snr_db=30, coil_model="birdcage")
    assert acq.noise_std == pytest.approx(np.sqrt(np.mean(np.abs(acq.target) ** 2)) / 10 ** 1.5)
    assert noise_for_snr(acq.target, 20) == pytest.approx(10 * noise_for_snr(acq.target, 40))
    clean = simulate(cine, R=2, seed=0, coils=4, noise_std=0.0, coil_model="birdcage")
    sampled = acq.mask[:, None, None, :].astype(bool) & np.ones_like(acq.kspace, bool)
    measured = np.std((acq.kspace - clean.kspace)[sampled])
    assert measured == pytest.approx(acq.noise_std, rel=0.05)  # the noise actually added
    assert np.allclose((np.abs(acq.smaps) ** 2).sum(0), 1, atol=1e-5)
    with pytest.raises(ValueError, match="unknown coil model"):
        simulate(cine, R=2, coil_model="helmholtz")
