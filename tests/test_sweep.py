"""Sweeps of notebook 01: the Dask executor writes what the local one writes, a stopped sweep
resumes with only what is missing, a failing point is recorded while the others finish."""
import json

import pytest

from inr_utils import pipeline, sweep
from inr_utils.pipeline import NOTEBOOK_DIR

NB01 = NOTEBOOK_DIR / "01_data.py"
SMALL = {"T": [4], "N": [16], "COILS": [2]}


def _metrics(root):
    """{folder: metrics.json without its wall time} of a sweep's runs."""
    out = {}
    for path in sorted(root.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        m.pop("seconds")
        out[path.parent.name] = m
    return out


def test_dask_local_cluster_writes_the_same_metrics_as_the_local_executor(tmp_path):
    grid = {"R": [4, 6], "SEED": [0, 1], **SMALL}
    local = sweep.sweep(NB01, grid, tmp_path / "local", "local", workers=2, progress=False)
    dask = sweep.sweep(NB01, grid, tmp_path / "dask", "dask", workers=2, progress=False)
    assert local.ok and dask.ok and len(local.executed) == len(dask.executed) == 4
    assert _metrics(tmp_path / "local") == _metrics(tmp_path / "dask") and len(_metrics(tmp_path / "dask")) == 4
    assert "| R | SEED | T | N | COILS | status | ZF psnr |" in (tmp_path / "dask" / "sweep_summary.md").read_text()


def test_a_stopped_sweep_runs_only_what_is_missing(tmp_path):
    first = sweep.sweep(NB01, {"R": [4], **SMALL}, tmp_path, workers=1, progress=False)  # "stopped" after R = 4
    done = tmp_path / "R4_T4_N16_COILS2" / "metrics.json"
    stamp = done.stat().st_mtime_ns
    again = sweep.sweep(NB01, {"R": [4, 6], **SMALL}, tmp_path, workers=1, progress=False)
    assert [r.parameters["R"] for r in again.executed] == [6] and [r.parameters["R"] for r in again.skipped] == [4]
    assert done.stat().st_mtime_ns == stamp and len(first.executed) == 1
    info = json.loads((tmp_path / "R6_T4_N16_COILS2" / "run_info.json").read_text())
    info["parameters"]["N"] = 99  # a record of other parameters is not this run
    (tmp_path / "R6_T4_N16_COILS2" / "run_info.json").write_text(json.dumps(info))
    assert [r.parameters["R"] for r in sweep.sweep(NB01, {"R": [4, 6], **SMALL}, tmp_path, progress=False).executed] == [6]


def test_a_failing_point_is_recorded_and_the_others_finish(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        pipeline.main(["sweep", str(NB01), "-p", "R", "4", "-p", "N", "16", "4", "-p", "T", "4", "-p", "COILS", "2",
                       "--out-root", str(tmp_path), "--workers", "2"])
    assert stop.value.code == 1
    said = capsys.readouterr().out
    assert "FAILED R=4 N=4 T=4 COILS=2: PapermillExecutionError: ValueError: N must be an integer >= 8" in said
    assert (tmp_path / "R4_N16_T4_COILS2" / "metrics.json").is_file()
    assert (tmp_path / "R4_N4_T4_COILS2" / "01_data.failed.ipynb").is_file()
    assert not (tmp_path / "R4_N4_T4_COILS2" / "metrics.json").exists()
    assert "| 4 | 4 | 4 | 2 | failed |" in (tmp_path / "sweep_summary.md").read_text()


def test_the_plan_refuses_unknown_parameters_and_names_every_swept_value(tmp_path):
    with pytest.raises(ValueError, match="has no parameter EPOCHS"):
        sweep.plan(NB01, {"R": [4], "EPOCHS": [1]})
    with pytest.raises(ValueError, match="give at least one value"):
        sweep.plan(NB01, {"R": []})
    runs = sweep.plan(NB01, {"R": [4], "DATA": [None, "sunnybrook"], "NOISE_STD": [0.001, 0.01]}, tmp_path)
    assert sorted(p.rsplit("/", 1)[1] for p in (r.out_dir for r in runs)) == [
        "R4_NOISE_STD0.001", "R4_NOISE_STD0.01", "R4_sunnybrook_NOISE_STD0.001", "R4_sunnybrook_NOISE_STD0.01"]
