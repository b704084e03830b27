"""The BART bridge: .cfl/.hdr in BART's column-major layout, our axes mapped to BART's, and
(when ``bart`` is on PATH) BART's zero filling equal to ours on the same file."""
import numpy as np
import pytest

from inr_utils import bart


def test_cfl_round_trip_is_column_major_with_a_16_dim_header(tmp_path, rng):
    x = (rng.standard_normal((3, 4, 1, 2)) + 1j * rng.standard_normal((3, 4, 1, 2))).astype(np.complex64)
    bart.write_cfl(tmp_path / "x", x)
    dims = (tmp_path / "x.hdr").read_text().splitlines()[1].split()
    assert dims == ["3", "4", "1", "2"] + ["1"] * 12
    raw = np.fromfile(tmp_path / "x.cfl", np.complex64)
    assert raw[1] == x[1, 0, 0, 0] and raw[3] == x[0, 1, 0, 0]  # the first axis runs fastest
    assert np.array_equal(bart.read_cfl(tmp_path / "x"), x)


@pytest.mark.skipif(not bart.available(), reason="bart is not on PATH")
def test_bart_zero_filling_matches_ours(tiny_acq):
    ours = tiny_acq.zero_filled()
    theirs = bart.zero_filled(tiny_acq)
    assert theirs.shape == ours.shape
    assert np.abs(theirs - ours).max() < 1e-4 * np.abs(ours).max()
