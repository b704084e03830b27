"""The BART bridge: .cfl/.hdr in BART's column-major layout, our axes mapped to BART's, and
(when ``bart`` is on PATH) BART's zero filling equal to ours on the same file."""
import numpy as np
import pytest

from inr_utils import bart, io


def test_cfl_round_trip_is_column_major_with_a_16_dim_header(tmp_path, rng):
    x = (rng.standard_normal((3, 4, 1, 2)) + 1j * rng.standard_normal((3, 4, 1, 2))).astype(np.complex64)
    io.write_cfl(tmp_path / "x", x)
    dims = (tmp_path / "x.hdr").read_text().splitlines()[1].split()
    assert dims == ["3", "4", "1", "2"] + ["1"] * 12
    raw = np.fromfile(tmp_path / "x.cfl", np.complex64)
    assert raw[1] == x[1, 0, 0, 0] and raw[3] == x[0, 1, 0, 0]  # the first axis runs fastest
    assert np.array_equal(io.read_cfl(tmp_path / "x"), x)


@pytest.mark.skipif(not bart.available(), reason="bart is not on PATH")
def test_bart_zero_filling_matches_ours(tiny_acq):
    ours = tiny_acq.zero_filled()
    theirs = bart.zero_filled(tiny_acq)
    assert theirs.shape == ours.shape
    assert np.abs(theirs - ours).max() < 1e-4 * np.abs(ours).max()


def test_unknown_regulariser_is_refused_before_running(tiny_acq):
    with pytest.raises(ValueError, match="unknown BART regulariser"):
        bart.reconstructor(100, second="X")
    with pytest.raises(ValueError, match="unknown BART regularisers"):
        bart.pics(tiny_acq, {"T": 1e-3, "Q": 1e-3})


@pytest.mark.skipif(not bart.available(), reason="bart is not on PATH")
@pytest.mark.parametrize("second", [None, "W", "L"])
def test_each_bart_prior_improves_on_zero_filling(tiny_acq, second):
    """pics with temporal TV alone, + wavelet, + locally low rank, at moderate relative
    weights, on the same file: each improves on zero filling (the layout and the flags act
    on the right axes)."""
    from inr_utils import metrics, selection

    zf = tiny_acq.zero_filled()
    scale = selection.data_scale(zf)
    recon = bart.reconstructor(100, second=second)
    x, seconds = recon(tiny_acq.op, tiny_acq.kspace, 10 ** -2.5 * scale, 10 ** -2.5 * scale, tiny_acq.target)
    assert x.shape == tiny_acq.target.shape and seconds > 0
    assert metrics.psnr(x, tiny_acq.target) > metrics.psnr(zf, tiny_acq.target) + 1


@pytest.mark.skipif(not bart.available(), reason="bart is not on PATH")
def test_nlinv_maps_are_normalised_and_close_to_the_simulating_maps(tiny_acq):
    """BART's joint estimate on the time-averaged k-space: (C, H, W) maps with
    sum_c |S_c|^2 = 1, agreeing with the maps that simulated the data up to a phase per pixel
    inside the object (|<S_true, S_est>| = 1 when equal)."""
    maps = bart.nlinv_maps(tiny_acq.kspace, tiny_acq.mask)
    assert maps.shape == tiny_acq.smaps.shape and maps.dtype == np.complex64
    assert np.allclose((np.abs(maps) ** 2).sum(0), 1, atol=1e-4)
    inside = np.abs(tiny_acq.target).mean(0) > 0.2 * np.abs(tiny_acq.target).max()
    assert np.median(np.abs((np.conj(tiny_acq.smaps) * maps).sum(0))[inside]) > 0.9
