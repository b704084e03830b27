"""The notebook pipeline's helpers: JupyterLab settings written by `make lab`."""
import json

import pytest

from inr_utils import pipeline


def test_lab_settings_open_python_files_as_jupytext_notebooks(tmp_path):
    path = pipeline.write_lab_settings(tmp_path)
    assert path == tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings = json.loads(path.read_text())
    assert settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"] == "Jupytext Notebook"


def test_lab_settings_keep_other_settings(tmp_path):
    path = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                                "@jupyterlab/docmanager-extension:plugin": {"autosave": False,
                                                                           "defaultViewers": {"markdown": "Jupytext Notebook"}}}))
    settings = json.loads(pipeline.write_lab_settings(tmp_path).read_text())
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    doc = settings["@jupyterlab/docmanager-extension:plugin"]
    assert doc["autosave"] is False and doc["defaultViewers"] == {"markdown": "Jupytext Notebook", "python": "Jupytext Notebook"}


def test_lab_settings_refuse_a_broken_file(tmp_path):
    path = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(SystemExit, match="not valid JSON"):
        pipeline.write_lab_settings(tmp_path)
    assert path.read_text() == "{not json"


def test_execute_resolves_relative_out_dir_and_data_against_the_caller(tmp_path, monkeypatch, tiny_acq):
    """The kernel runs in notebooks/; OUT_DIR="rel" must still land in the caller's ./rel and
    DATA="scan.h5" must be the caller's ./scan.h5."""
    import json

    from inr_utils import io

    monkeypatch.chdir(tmp_path)
    io.save_kspace(tmp_path / "scan.h5", tiny_acq)
    nb = pipeline.NOTEBOOK_DIR / "01_data.py"
    executed = pipeline.execute(nb, {**pipeline.SMOKE_PARAMETERS["01_data"], "DATA": "scan.h5"}, "rel")
    assert executed == tmp_path / "rel" / "01_data.ipynb"
    assert not (pipeline.NOTEBOOK_DIR / "rel").exists()
    info = json.loads((tmp_path / "rel" / "run_info.json").read_text())
    assert info["parameters"]["DATA"] == str(tmp_path / "scan.h5")
    assert (tmp_path / "rel" / "metrics.json").is_file()
    assert pipeline._absolute_data("scan.h5::2") == f"{tmp_path / 'scan.h5'}::2"
    assert pipeline._absolute_data("sunnybrook:SCD0000501/slice_051") == "sunnybrook:SCD0000501/slice_051"
    assert pipeline._absolute_data("missing.h5") == "missing.h5"  # the notebook's loader names it


def test_execute_starts_headless_kernels_names_their_threads_and_restores_the_environment(tmp_path, monkeypatch):
    """Kernels that pipeline.execute starts see INR_HEADLESS=1 (notebook 03 then shows no
    widgets) and OMP_NUM_THREADS: the caller's when set, torch's default when unset, which
    run_info.json records; the caller's environment is left as it was."""
    import json
    import os

    import torch

    monkeypatch.delenv("INR_HEADLESS", raising=False)
    nb = tmp_path / "probe.py"
    nb.write_text('# %% tags=["parameters"]\nOUT_DIR = None\n\n# %%\nimport json, os, pathlib\n'
                  'pathlib.Path(OUT_DIR, "env.json").write_text(json.dumps('
                  '[os.environ.get(k, "unset") for k in ("INR_HEADLESS", "OMP_NUM_THREADS")]))\n')
    for caller, seen in ((None, str(torch.get_num_threads())), ("1", "1")):
        if caller is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", caller)
        out = tmp_path / f"out-{caller}"
        pipeline.execute(nb, {}, out)
        assert json.loads((out / "env.json").read_text()) == ["1", seen]
        assert json.loads((out / "run_info.json").read_text())["threads"] == int(seen)
        assert "INR_HEADLESS" not in os.environ and os.environ.get("OMP_NUM_THREADS") == caller


def test_execute_runs_kernels_on_private_unix_sockets(tmp_path):
    """Kernels talk over Unix sockets in the execution's own temporary folder, not over
    TCP ports that parallel sweep workers could both draw; the folder is gone afterwards."""
    import json
    import os
    import pathlib

    if os.name == "nt":
        pytest.skip("zmq's ipc transport needs Unix sockets")
    nb = tmp_path / "probe.py"
    nb.write_text('# %% tags=["parameters"]\nOUT_DIR = None\n\n# %%\nimport json, pathlib\n'
                  'from ipykernel import get_connection_info\n'
                  'info = get_connection_info(unpack=True)\n'
                  'pathlib.Path(OUT_DIR, "conn.json").write_text(json.dumps({"transport": info["transport"], "ip": info["ip"]}))\n')
    pipeline.execute(nb, {}, tmp_path / "out")
    info = json.loads((tmp_path / "out" / "conn.json").read_text())
    assert info["transport"] == "ipc"
    folder = pathlib.Path(info["ip"]).parent
    assert folder.name.startswith("nb-") and not folder.exists()
    assert not list((tmp_path / "out").glob("kernel*")) and not list(tmp_path.glob("kernel*"))


def test_parameters_doc_is_generated_from_the_current_cells():
    """docs/parameters.md lists every parameter of every numbered notebook and is up to date
    (regenerate with `python -m inr_utils.pipeline parameters-doc`)."""
    from inr_utils import REPO_ROOT

    text = pipeline.parameters_markdown()
    assert (REPO_ROOT / "docs" / "parameters.md").read_text() == text
    for nb in pipeline.numbered_notebooks():
        assert f"## {nb.stem}" in text
    from inr_utils.lambda_study import LambdaStudyConfig

    # the notebook's defaults are the config's, and the table shows their values and types
    defaults = LambdaStudyConfig()
    assert f"| `COND_STEPS` | int | `{defaults.cond_steps}` |" in text and f"| `STEPS` | int | `{defaults.steps}` |" in text
    assert f"| `FRAME_FRACTION` | float | `{defaults.frame_fraction}` |" in text and "| `DC_STAGES` | int | `4` |" in text


def test_readme_holds_the_generated_results_and_ci_runs_its_test_command():
    from inr_utils import REPO_ROOT
    from inr_utils.report import END, START

    readme = (REPO_ROOT / "README.md").read_text()
    assert readme.count(START) == 1 and readme.count(END) == 1 and "docs/results.md" in readme
    assert "make test" in readme and (REPO_ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_reproduce_sweeps_each_notebook_over_R_and_its_grid(monkeypatch):
    """reproduce hands every numbered notebook, with R and its NOTEBOOK_GRID (DATA filtered by
    --data; notebooks without a DATA grid run only for the phantom), to one pool of workers
    (sweep_many) and returns the failures."""
    from inr_utils import pipeline, report, sweep

    calls = []

    def fake_sweep_many(plans, workers=None):
        calls.extend((nb.stem, grid, workers) for nb, grid in plans)
        return [sweep.SweepResult([], [], [], [("run", "boom")] if nb.stem.startswith("02") else [], "", 0.0)
                for nb, _ in plans]

    monkeypatch.setattr(sweep, "sweep_many", fake_sweep_many)
    monkeypatch.setattr(report, "update_readme", lambda: None)
    monkeypatch.setattr(pipeline, "write_parameters_doc", lambda: None)
    failures = pipeline.reproduce((3, 6), data="sunnybrook", workers=2)
    assert [c[0] for c in calls] == ["02_global_inr", "03_lambda_study", "04_liif_2d_vs_3d", "05_liif_architecture_search"]
    assert calls[3][1] == {"R": [3, 6], "T_LOW": [4, 8], "DATA": ["sunnybrook"], "RETRAIN": [True]} and calls[0][2] == 2
    assert calls[2][1] == {"R": [3, 6], "DATA": ["sunnybrook"], "RETRAIN": [True]}  # reproduce trains the LIIF models
    assert failures == [("run", "boom")]
    calls.clear()
    pipeline.reproduce((6,), data="phantom")
    assert [c[0] for c in calls][:2] == ["01_data", "02_global_inr"] and calls[1][1]["DATA"] == [None]
