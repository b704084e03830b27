import numpy as np
import pytest

from inr_utils import liif
from liif_helpers import SPEC


def test_interpolate_bins_periodic():
    x = np.arange(4, dtype=np.complex64)[:, None, None] * np.ones((4, 2, 2), np.complex64)
    bins = (np.arange(4) + 0.5) / 4
    out = liif.interpolate_bins(x, bins, np.array([0.125, 0.25, 0.875 + 0.125]))
    assert np.allclose(out[:, 0, 0], [0, 0.5, 1.5])  # t = 1.0 lies halfway between bin 3 (3) and bin 0 (0)


def test_consistency_floor_is_zero_cost_without_binning_and_grows_with_it():
    """One acquisition per bin: the measured lines ARE the true bins (no extra error);
    several acquisitions mixed into a bin: putting their lines back costs error."""
    subj = liif.subjects(None, "test", 16, 1)[0]
    one = liif.make_sample(subj, liif.AcquisitionSpec(R=3, T_low=4, T_high=4, T_query=6), 0, False, with_bin_truth=True)
    f = liif.consistency_floor(one)
    assert abs(f["true_bins_with_measured_lines"] - f["true_bins"]) < 1e-5
    mixed = liif.make_sample(subj, liif.AcquisitionSpec(R=3, T_low=4, T_high=16, T_query=6), 0, False, with_bin_truth=True)
    g = liif.consistency_floor(mixed)
    assert g["true_bins_with_measured_lines"] > g["true_bins"] + 0.01
    with pytest.raises(ValueError, match="with_bin_truth"):
        liif.consistency_floor(liif.make_sample(subj, SPEC, 0, False))
