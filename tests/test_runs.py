import pytest
import torch

from inr_utils import OUTPUTS
from inr_utils.runs import RunOutputs, check_device, check_int, default_out_dir


def test_failed_run_leaves_existing_outputs_untouched(tmp_path):
    (tmp_path / "metrics.json").write_text("old")
    out = RunOutputs(tmp_path)
    out.write_json("metrics.json", {"new": 1})
    out.path("figures/a.txt").write_text("a")
    # the run dies before commit: the old file is intact, the new ones are not visible
    assert (tmp_path / "metrics.json").read_text() == "old"
    assert not (tmp_path / "figures").exists()
    out2 = RunOutputs(tmp_path)
    out2.write_json("metrics.json", {"new": 2})
    moved = out2.commit()
    assert (tmp_path / "metrics.json").read_text().strip().startswith("{") and len(moved) == 1
    assert not out2.staging.exists()


def test_default_out_dir_and_int_checks():
    assert default_out_dir("01_data", 6) == OUTPUTS / "01_data" / "R6"
    assert default_out_dir("01_data", 2.5).name == "R2.5"
    assert default_out_dir("05", 6, "sunnybrook", 0, T=8).name == "R6_T8_sunnybrook"
    assert default_out_dir("02", 3, "sunnybrook:SCD0000101/slice_006", 2).name == "R3_sunnybrook-SCD0000101-slice-006_seed2"
    assert default_out_dir("02", 3, "/data/my case.h5").name == "R3_my-case"
    with pytest.raises(ValueError, match="N must be an integer >= 8"):
        check_int("N", 4, 8)
    with pytest.raises(ValueError, match="T must be an integer"):
        check_int("T", 2.5)


def test_device_is_checked_once_with_one_clear_error():
    assert check_device("cpu") == "cpu" and check_device(" CPU ") == "cpu"
    assert check_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:x", "", None, 0):
        with pytest.raises(ValueError, match="DEVICE must be 'cpu', 'cuda', 'cuda:<n>' or 'auto'"):
            check_device(bad)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=f"this machine has {count} CUDA device"):
        check_device(f"cuda:{count}")
