"""Sweeps of notebook 01: the Dask executor writes what the local one writes, a stopped sweep
resumes with only what is missing, a failing point is recorded while the others finish."""
import json
from pathlib import Path

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


def _record(folder, seconds, train_seconds=None):
    folder.mkdir(parents=True)
    (folder / "run_info.json").write_text(json.dumps({"seconds": seconds, "parameters": {}, "code": None}))
    if train_seconds is not None:
        methods = {"ZF": {"train_seconds": 0.0}, "A": {"train_seconds": train_seconds / 2},
                   "B": {"train_seconds": train_seconds / 2}}
        (folder / "metrics.json").write_text(json.dumps({"methods": methods}))


def test_runs_start_longest_first_by_their_last_record(tmp_path):
    """The longest-processing-time order: a run never recorded first, then by the seconds it last
    took; a LIIF run that resumed counts its full training time (metrics.json), not the rest."""
    runs = [sweep.SweepRun("nb.py", {"R": r}, str(tmp_path / f"R{r}")) for r in (1, 2, 3, 4, 5)]
    _record(tmp_path / "R1", 60.0)
    _record(tmp_path / "R2", 600.0)
    _record(tmp_path / "R3", 30.0, train_seconds=1200.0)  # resumed: 30 s of papermill, 1200 s of training
    _record(tmp_path / "R4", 300.0, train_seconds=100.0)
    assert sweep.recorded_seconds(tmp_path / "R3") == 1200.0 and sweep.recorded_seconds(tmp_path / "R4") == 300.0
    assert sweep.recorded_seconds(tmp_path / "R5") is None
    assert [r.parameters["R"] for r in sweep.longest_first(runs)] == [5, 3, 2, 4, 1]


def test_several_notebooks_share_one_pool_and_the_longest_run_starts_first(tmp_path):
    """sweep_many: two plans in one folder each under out_root, one result each; with one
    worker the runs execute longest first across the plans (seen in their start times)."""
    nb02 = NOTEBOOK_DIR / "02_global_inr.py"
    _record(tmp_path / "01_data" / "R4_T4_N16_COILS2", 5.0)
    _record(tmp_path / "01_data" / "R6_T4_N16_COILS2", 50.0)
    small02 = {k: [v] for k, v in pipeline.SMOKE_PARAMETERS["02_global_inr"].items() if k != "R"}
    small02.update(N=[16], T=[4], STEPS=[5], TV_ITERS=[5], SIREN_SECONDS=[1])
    _record(Path(sweep.plan(nb02, {"R": [4], **small02}, tmp_path / "02_global_inr")[0].out_dir), 20.0)
    results = sweep.sweep_many([(NB01, {"R": [4, 6], **SMALL}), (nb02, {"R": [4], **small02})], tmp_path,
                               workers=1, progress=False)
    assert [len(r.executed) for r in results] == [2, 1] and all(r.ok for r in results)
    assert (tmp_path / "01_data" / "sweep_summary.md").is_file() and (tmp_path / "02_global_inr" / "sweep_summary.md").is_file()
    starts = {run.out_dir: json.loads((Path(run.out_dir) / "run_info.json").read_text())["start_time"]
              for r in results for run in r.executed}
    order = [Path(d).parent.name + "/" + Path(d).name[:2] for d in sorted(starts, key=starts.get)]
    assert order == ["01_data/R6", "02_global_inr/R4", "01_data/R4"]


def test_pool_seconds_follows_the_longest_first_schedule():
    assert sweep.pool_seconds([10.0, 1.0, 1.0], 2) == 10.0 and sweep.pool_seconds([5.0, 5.0, 5.0], 1) == 15.0
    assert sweep.pool_seconds([3.0, 3.0, 2.0, 2.0, 2.0], 2) == 7.0  # the rule's own answer (the best split is 6)
    assert sweep.pool_seconds([], 2) == 0.0
    with pytest.raises(ValueError, match="workers must be >= 1"):
        sweep.pool_seconds([1.0], 0)
