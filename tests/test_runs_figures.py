import numpy as np
import pytest

from inr_utils import figures
from inr_utils.runs import RunOutputs, check_int, default_out_dir
from inr_utils import OUTPUTS


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


def test_figure_set_and_grid(tmp_path):
    rng = np.random.default_rng(0)
    target = (rng.random((6, 32, 32)) * np.exp(1j * rng.random((6, 32, 32)))).astype(np.complex64)
    recon = target + 0.05
    paths = figures.figure_sets(tmp_path, {"ZF": recon}, target)
    assert set(paths) == {"Original", "ZF"}
    assert {"mag_gif", "phase_gif", "half_T_mag", "half_T_phase", "half_H_mag", "half_T_mag_error"} == set(paths["ZF"])
    assert "half_T_mag_error" not in paths["Original"]
    for p in paths["ZF"].values():
        assert p.stat().st_size > 0
    assert paths["ZF"]["mag_gif"].stat().st_size < 1_000_000
    grid = figures.comparison_grid(tmp_path / "grid.png", {"ZF": recon}, target, {"ZF": {"psnr": 30.0}})
    assert grid.stat().st_size > 10_000


def test_record_run_and_wall_time_line(tmp_path):
    """run_info.json holds papermill's record of an executed notebook; the README line sums
    the runs per notebook with their dates and machines."""
    import json
    import re

    from inr_utils import REPO_ROOT
    from inr_utils.report import run_records, wall_time_line
    from inr_utils.runs import record_run

    for run, seconds, day in (("R3", 90.0, "2026-11-20"), ("R6", 150.0, "2026-11-26")):
        folder = tmp_path / "05_liif" / run
        folder.mkdir(parents=True)
        out_dir = str(REPO_ROOT / "outputs" / "05_liif" / run) if run == "R3" else str(folder)
        meta = {"papermill": {"parameters": {"R": int(run[1:]), "OUT_DIR": out_dir}, "start_time": f"{day}T10:00:00",
                              "end_time": None, "duration": seconds}}
        (folder / "05_liif.ipynb").write_text(json.dumps({"metadata": meta, "cells": []}))
        info = json.loads(record_run(folder / "05_liif.ipynb").read_text())
        assert info["seconds"] == seconds and info["parameters"]["R"] == int(run[1:]) and info["cpu"]
        # the code that ran: this checkout's commit (tests run in a git clone)
        assert re.fullmatch(r"[0-9a-f]{40}", info["code"]["commit"]) and isinstance(info["code"]["dirty"], bool)
        # a folder inside the repository is recorded relative to it, one outside as it is
        assert info["parameters"]["OUT_DIR"] == ("outputs/05_liif/R3" if run == "R3" else str(folder.resolve()))
    records = run_records(tmp_path)
    assert set(records) == {"05_liif/R3", "05_liif/R6"}
    line = wall_time_line(records)
    assert "2 runs, 4.0 min in all" in line and "2026-11-20, 2026-11-26" in line and "R3 1.5, R6 2.5" in line
    assert "without a record" not in line and "without a record" in wall_time_line(records, ("01_data/R3",))
    # the 90-min verdict: only when every run has a record, and "missed" once the sum is over
    assert "**met** (4.0 min of notebook runs on one machine" in line
    assert "Target" not in wall_time_line(records, ("01_data/R3",))
    records["05_liif/R6"]["seconds"] = 91 * 60.0
    assert "**missed** (92.5 min" in wall_time_line(records)
    assert wall_time_line({}) == ""


def test_liif_target_line(tmp_path):
    """The LIIF verdicts come from 05's metrics.json: the TV ratio on the real patient only,
    training seconds per T_low, the slowest inference."""
    import json

    from inr_utils.report import liif_target_line

    def write(name, data, T_low, rdn, unet, tv, train, infer=0.3):
        folder = tmp_path / name
        folder.mkdir()
        methods = {"RDN": {"rel_l1": rdn, "train_seconds": train[0], "infer_seconds": infer},
                   "UNet": {"rel_l1": unet, "train_seconds": train[1], "infer_seconds": infer}, "TV": {"rel_l1": tv}}
        (folder / "metrics.json").write_text(json.dumps({"R": 6, "T_low": T_low, "data": data, "methods": methods}))

    assert liif_target_line(tmp_path) == ""
    write("R6_T4", "phantom", 4, 0.5, 0.5, 0.5, (100, 200))  # phantom: ratio 1.0, not judged
    write("R6_T4_sunnybrook", "sunnybrook", 4, 0.09, 0.08, 0.1, (250, 299))
    line = liif_target_line(tmp_path)
    assert "real held-out patient: **met** (R6 T4 0.800)" in line
    assert "at T_low = 4: **met** (100-299 s; 0 of 4 models over)" in line and "< 1 s: **met** (at most 0.30 s)" in line
    write("R6_T8_sunnybrook", "sunnybrook", 8, 0.09, 0.0801, 0.1, (301, 250), infer=1.2)
    line = liif_target_line(tmp_path)
    assert "real held-out patient: **missed** (R6 T4 0.800, R6 T8 0.801)" in line
    assert "at T_low = 8: **missed** (250-301 s; 1 of 2 models over)" in line and "< 1 s: **missed** (at most 1.20 s)" in line
