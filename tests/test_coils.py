"""Coil maps from the data: the calibration band, ESPIRiT against the maps that simulated the
data, the low-resolution estimate, clear errors, and the birdcage maps."""
import numpy as np
import pytest

from inr_utils import coils
from inr_utils.acquisition import Acquisition, simulate
from inr_utils.phantom import phantom_cine


@pytest.fixture(scope="module")
def scan():
    return simulate(phantom_cine(8, 48, 48, seed=3), R=3, seed=3, coils=4, noise_std=1e-3)


def test_calibration_band_is_the_central_run_sampled_in_some_frame():
    mask = np.zeros((3, 16), np.uint8)
    mask[0, 6:9] = 1  # lines 6, 7, 8 (8 = centre)
    mask[1, 9:11] = 1  # 9, 10
    mask[2, [4, 5, 12]] = 1  # 4, 5 extend the run on the left only; 12 is isolated
    assert coils.calibration_band(mask) == 5  # symmetric around 8: lines 6..10
    mask[:, 8] = 0
    assert coils.calibration_band(mask) == 0


def test_time_average_fills_each_line_from_the_frames_that_sampled_it():
    k = np.zeros((2, 1, 1, 4), np.complex64)
    k[0, 0, 0, 1], k[1, 0, 0, 1], k[1, 0, 0, 2] = 2, 4, 6
    mask = np.array([[0, 1, 0, 0], [0, 1, 1, 0]], np.uint8)
    assert np.allclose(coils.time_averaged_kspace(k, mask)[0, 0], [0, 3, 6, 0])


def test_espirit_recovers_the_simulating_maps_up_to_a_common_phase(scan):
    maps, how = coils.estimate(scan.kspace, scan.mask, "espirit")
    assert how.method == "espirit" and coils.ESPIRIT_MIN_CALIB <= how.calibration_lines <= coils.ESPIRIT_MAX_CALIB
    inside = np.abs(scan.target).mean(0) > 0.2 * np.abs(scan.target).max()
    agreement = np.abs((np.conj(scan.smaps) * maps).sum(0))  # |<S_true, S_est>| per pixel, 1 if equal up to phase
    assert np.median(agreement[inside]) > 0.98
    assert np.allclose((np.abs(maps[:, inside]) ** 2).sum(0), 1, atol=0.05)


def test_lowres_maps_are_normalised_and_close_to_the_true_ones(scan):
    maps, how = coils.estimate(scan.kspace, scan.mask, "lowres", calib=12)
    assert how.as_dict() == {"method": "lowres", "calibration_lines": 12}
    assert np.allclose((np.abs(maps) ** 2).sum(0), 1, atol=1e-4)
    inside = np.abs(scan.target).mean(0) > 0.2 * np.abs(scan.target).max()
    assert np.median(np.abs((np.conj(scan.smaps) * maps).sum(0))[inside]) > 0.9


def test_bad_requests_get_one_clear_error(scan):
    with pytest.raises(ValueError, match="unknown coil-map method"):
        coils.estimate(scan.kspace, scan.mask, "sense")
    band = coils.calibration_band(scan.mask)
    with pytest.raises(ValueError, match=f"central band sampled in at least one frame is {band} lines"):
        coils.estimate(scan.kspace, scan.mask, "espirit", calib=band + 2)
    narrow = scan.mask.copy()
    narrow[:, :narrow.shape[1] // 2 - 3] = 0
    narrow[:, narrow.shape[1] // 2 + 3:] = 0  # at most 6 central lines: too few for ESPIRiT's kernel
    assert coils.calibration_band(narrow) < coils.ESPIRIT_MIN_CALIB
    with pytest.raises(ValueError, match=f"needs at least {coils.ESPIRIT_MIN_CALIB} central phase-encode lines .* central band is "
                                         f"{coils.calibration_band(narrow)} lines"):
        coils.estimate(scan.kspace * narrow[:, None, None, :], narrow, "espirit")
    with pytest.raises(ValueError, match="ESPIRiT found consistent coil maps on only"):
        coils.espirit_maps(scan.kspace, scan.mask, 16, crop=0.9999)  # a crop no pixel passes: no silent zero maps
    with pytest.raises(ValueError, match="must be complex"):
        coils.estimate(np.abs(scan.kspace), scan.mask)
    with pytest.raises(ValueError, match="kspace \\(T, C, H, W\\) and mask \\(T, W\\)"):
        coils.estimate(scan.kspace[0], scan.mask)


def test_reconstruction_with_estimated_maps_is_close_to_known_maps(scan):
    """Zero filling with ESPIRiT maps loses little against the maps that made the data (magnitudes)."""
    from inr_utils import metrics

    maps, _ = coils.estimate(scan.kspace, scan.mask)
    ours = Acquisition(scan.kspace, scan.mask, maps).zero_filled()
    assert metrics.psnr(ours, scan.target) > metrics.psnr(scan.zero_filled(), scan.target) - 1


def test_nlinv_estimate_refuses_without_bart_and_records_its_method(scan, monkeypatch):
    from inr_utils import bart

    if bart.available():
        maps, how = coils.estimate(scan.kspace, scan.mask, "nlinv")
        assert how.as_dict() == {"method": "nlinv", "calibration_lines": None} and maps.shape == scan.smaps.shape
    monkeypatch.setattr(bart, "available", lambda: False)
    with pytest.raises(ValueError, match="'nlinv' runs BART's nlinv, and `bart` is not on PATH"):
        coils.estimate(scan.kspace, scan.mask, "nlinv")


def test_birdcage_maps_are_normalised_and_distinct():
    maps = coils.birdcage(8, 32, 24)
    assert maps.shape == (8, 32, 24) and maps.dtype == np.complex64
    assert np.allclose((np.abs(maps) ** 2).sum(0), 1, atol=1e-5)
    assert np.abs(maps[0] - maps[4]).max() > 0.1


@pytest.mark.skipif(not __import__("shutil").which("bart"), reason="bart is not on PATH")
def test_espirit_agrees_with_bart_ecalib(scan, tmp_path):
    """sigpy's ESPIRiT and BART's ``ecalib -m 1`` on the same time-averaged k-space and
    calibration region give the same maps up to a common phase per pixel, inside the object."""
    import subprocess

    from inr_utils import io

    maps, how = coils.estimate(scan.kspace, scan.mask, "espirit")
    k = coils.time_averaged_kspace(scan.kspace, scan.mask)  # (C, H, W) -> BART [H W 1 C]
    io.write_cfl(tmp_path / "k", np.transpose(k, (1, 2, 0))[:, :, None, :])
    subprocess.run(["bart", "ecalib", "-m", "1", "-r", str(how.calibration_lines), "-k", str(coils.espirit_kernel(how.calibration_lines)),
                    "-c", str(coils.ESPIRIT_CROP), str(tmp_path / "k"),
                    str(tmp_path / "s")], check=True, capture_output=True)
    theirs = np.transpose(io.read_cfl(tmp_path / "s").reshape(k.shape[1], k.shape[2], -1), (2, 0, 1))
    inside = np.abs(scan.target).mean(0) > 0.2 * np.abs(scan.target).max()
    assert np.median(np.abs((np.conj(theirs) * maps).sum(0))[inside]) > 0.95
