"""The LIIF benchmark scripts' tables: what the README's headline says is computed from the rows."""
import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generalisation_headline_reads_back_its_table():
    """Rows written by liif_generalisation.py are read back with their numbers; the headline leaves
    the training setting out of the range and counts the settings where LIIF beats TV."""
    script = _script("liif_generalisation")
    table = ["| sunnybrook, R 6, T_low 8 | sunnybrook | 6 | 0 | 0.0864 | 0.0839 | 0.1065 | 0.1978 | 0.787 (training setting) |",
             "| sunnybrook, R 6, T_low 8 | sunnybrook | 8 | 0 | 0.1063 | 0.1043 | 0.1301 | 0.2402 | 0.802 |",
             "| sunnybrook, R 6, T_low 8 | phantom | 6 | 0 | 0.1 | 0.1 | 0.09 | 0.3 | 1.111 |",
             "| sunnybrook, R 6, T_low 8 | phantom | 8 | 0 | 0.1 | 0.1 | 0.2 | 0.3 | 0.500 |"]
    text = script.document("intro", table)
    rows = script.table_rows(text)
    assert len(rows) == 4 and rows[0]["training setting"] and not rows[1]["training setting"]
    assert rows[1]["UNet"] == pytest.approx(0.1043) and rows[2]["best LIIF / TV"] == pytest.approx(1.111)
    head = text.split("<!-- headline -->")[1].split("<!-- /headline -->")[0]
    assert "| sunnybrook, R 6, T_low 8 | 0.787 | sunnybrook | 1 | 0.802-0.802 | 1 of 1 |" in head
    assert "| sunnybrook, R 6, T_low 8 | 0.787 | phantom | 2 | 0.500-1.111 | 1 of 2 |" in head
    assert "<!-- beside 05_liif_architecture_search -->" in text


def test_original_sizes_verdict_needs_a_gap_beyond_the_seed_spread():
    script = _script("liif_original_sizes")

    def run(rdn, unet, tv=0.1):
        methods = {"RDN": {"rel_l1": rdn, "epochs": 2, "train_seconds": 400.0},
                   "UNet": {"rel_l1": unet, "epochs": 10, "train_seconds": 310.0}, "TV": {"rel_l1": tv}}
        return {"methods": methods}

    assert script.verdict([run(0.08, 0.09), run(0.081, 0.092)]).startswith("yes: UNet - RDN = +0.0105")
    assert script.verdict([run(0.08, 0.09), run(0.095, 0.092)]).startswith("no, within")  # RDN's seeds differ by 0.015
    assert script.verdict([run(0.09, 0.08), run(0.091, 0.081)]).startswith("no, UNet beats RDN by more than it: UNet - RDN = -0.0100")
    assert script.verdict([run(0.08, 0.09)]) == "one seed only: no spread"
    row = script.headline_row(6, 8, [run(0.08, 0.09), run(0.082, 0.094)])
    assert row.startswith("| 6 | 8 | 2 | 0.0810 | 0.0920 | 0.1000 | 0.810 | 2/2; 10/10 | 400/400; 310/310 | +0.0100, +0.0120 | yes")
    assert [script.stopped_by({"stop": s}) for s in ("plateau after 14 epochs: ...", "time budget: 318 s ...",
                                                     "reached the most epochs (40)", "")] == ["plateau", "budget", "epochs", "?"]


def test_original_sizes_table_only_writes_the_finished_runs_and_names_the_others(tmp_path, monkeypatch):
    """--table-only trains nothing: the table holds the finished runs of the grid and says which are not run."""
    import json
    import sys

    script = _script("liif_original_sizes")
    for seed, (rdn, unet) in enumerate(((0.11, 0.10), (0.12, 0.105))):
        folder = script.run_dir(tmp_path, 6, 4, seed, 64, 1800, min_epochs=40)
        folder.mkdir(parents=True)
        methods = {k: {"rel_l1": v, "epochs": 10, "train_seconds": 100.0, "stop": "plateau after 10 epochs"}
                   for k, v in (("RDN", rdn), ("UNet", unet), ("TV", 0.15), ("ZF", 0.2))}
        (folder / "metrics.json").write_text(json.dumps({"methods": methods, **({"bf16": False} if seed else {})}))
        (folder / "run_info.json").write_text(json.dumps({"start_time": "2026-12-03T10:00", "cpu_count": 2, "cpu": "x"}))
    written = {}
    monkeypatch.setattr(script, "execute", lambda *a, **k: pytest.fail("--table-only must not train"))
    monkeypatch.setattr(script, "write_benchmark", lambda name, text: written.update({name: text}) or name)
    runs_file = tmp_path / "runs.jsonl"
    monkeypatch.setattr(sys, "argv", ["x", "--R", "6", "--T-low", "4", "8", "--device", "cpu", "--work", str(tmp_path),
                                      "--table-only", "--runs-file", str(runs_file)])
    script.main()
    text = written["liif_original_sizes_min40"]  # the default --min-epochs 40; 8 (the first grid's) has no suffix
    assert "| 6 | 4 | 2 | 0.1150 | 0.1025 |" in text and "10 (plateau), 10 (plateau)" in text
    assert "--min-epochs 40" in text and "plateau (judged after 40 epochs or more)" in text
    assert "Not run yet (the command resumes them): R 6, T_low 8, seed 0; R 6, T_low 8, seed 1." in text
    assert "--table-only" not in text and "--T-low 4 8" in text and "--runs-file" not in text
    # the CNNs' precision where the run recorded it (a seconds budget buys other epochs in the other precision)
    assert "| 2026-12-03 | 2 x x, cpu |" in text and "| 2026-12-03 | 2 x x, cpu (float32) |" in text
    # the finished runs were recorded; without their folders (a fresh clone) the records give the same table
    assert sorted(script.load_records(runs_file)) == ["R6_T4_N64_seed0_budget1800_min40", "R6_T4_N64_seed1_budget1800_min40"]
    for seed in (0, 1):
        for f in script.run_dir(tmp_path, 6, 4, seed, 64, 1800, min_epochs=40).iterdir():
            f.unlink()
    script.main()
    assert written["liif_original_sizes_min40"] == text
    # the first grid's runs (plateau rule after 8 epochs) are other runs: not in this table
    monkeypatch.setattr(sys, "argv", sys.argv + ["--min-epochs", "8"])
    with pytest.raises(SystemExit, match="no finished run"):
        script.main()


def test_original_sizes_runs_05_with_the_plateau_rule_after_min_epochs(tmp_path, monkeypatch):
    """A missing run executes notebook 05 with the benchmark's plateau settings, MIN_EPOCHS included,
    into a folder named by them; --min-epochs below 2 is refused."""
    import json
    import sys

    script = _script("liif_original_sizes")
    calls = []

    def fake_execute(notebook, params, folder, progress=False):
        Path(folder).mkdir(parents=True)
        calls.append((Path(notebook).stem, params, Path(folder).name))
        methods = {k: {"rel_l1": 0.1, "epochs": 40, "train_seconds": 10.0, "stop": "plateau after 40 epochs"}
                   for k in ("RDN", "UNet", "TV", "ZF")}
        (Path(folder) / "metrics.json").write_text(json.dumps({"methods": methods}))
        (Path(folder) / "run_info.json").write_text(json.dumps({"start_time": "2026-12-05T10:00", "cpu_count": 2, "cpu": "x",
                                                                "threads": 1, "parameters": params}))

    monkeypatch.setattr(script, "execute", fake_execute)
    written = {}
    monkeypatch.setattr(script, "write_benchmark", lambda name, text: written.update({name: text}) or name)
    argv = ["x", "--R", "6", "--T-low", "8", "--seeds", "0", "--device", "cpu", "--work", str(tmp_path),
            "--runs-file", str(tmp_path / "runs.jsonl")]
    monkeypatch.setattr(sys, "argv", argv + ["--min-epochs", "30"])
    script.main()
    (stem, params, name), = calls
    assert stem == "05_liif_architecture_search" and name == "R6_T8_N64_seed0_budget1800_min30"
    assert (params["PLATEAU"], params["MIN_EPOCHS"], params["MAX_SECONDS"], params["RETRAIN"]) == (0.01, 30, 1800, True)
    assert script.load_records(tmp_path / "runs.jsonl")[name]["min_epochs"] == 30
    assert "| 2026-12-05 | 2 x x, cpu, 1 thread |" in written["liif_original_sizes_min30"]  # the thread count it ran with
    monkeypatch.setattr(sys, "argv", argv + ["--min-epochs", "1"])
    with pytest.raises(SystemExit, match="--min-epochs >= 2"):
        script.main()


def test_original_sizes_record_is_replaced_by_its_run_folder(tmp_path):
    """A run's record holds what the tables need; recording the same run again replaces its line."""
    import json

    script = _script("liif_original_sizes")
    folder = script.run_dir(tmp_path, 3, 8, 1, 64, 1800)
    folder.mkdir()
    methods = {"RDN": {"rel_l1": 0.07, "epochs": 9, "stop": "time budget: 1801 s", "train_seconds": 1801.0, "psnr": 30.0}}
    (folder / "metrics.json").write_text(json.dumps({"R": 3.0, "T_low": 8, "seed": 1, "N": 64, "methods": methods}))
    (folder / "run_info.json").write_text(json.dumps({"start_time": "2026-12-04T18:00", "cpu_count": 2, "cpu": "x",
                                                      "parameters": {"MAX_SECONDS": 1800, "EPOCHS": 200, "KEEP_BEST": False}}))
    runs_file = tmp_path / "runs.jsonl"
    record = script.run_record(folder)
    assert record["methods"]["RDN"] == {"rel_l1": 0.07, "epochs": 9, "stop": "time budget: 1801 s", "train_seconds": 1801.0}
    assert (record["R"], record["T_low"], record["seed"], record["budget_s"], record["machine"]) == (3.0, 8, 1, 1800, "2 x x")
    script.save_record(record, runs_file)
    script.save_record({**record, "methods": {"RDN": {"rel_l1": 0.06}}}, runs_file)
    assert len(runs_file.read_text().splitlines()) == 1
    assert script.load_records(runs_file)[folder.name]["methods"]["RDN"]["rel_l1"] == 0.06


def test_original_sizes_table_of_gpu_runs_is_written_without_a_gpu(tmp_path, monkeypatch):
    """--table-only --device cuda reads the runs' cuda folders and writes the _cuda table on a machine
    without CUDA; an unknown device name is refused."""
    import json
    import sys

    import torch

    script = _script("liif_original_sizes")
    folder = script.run_dir(tmp_path, 3, 8, 0, 64, 1800, "cuda", min_epochs=8)
    assert folder.name.endswith("_cuda")
    folder.mkdir(parents=True)
    methods = {k: {"rel_l1": v, "epochs": 20, "train_seconds": 50.0, "stop": "plateau after 20 epochs"}
               for k, v in (("RDN", 0.07), ("UNet", 0.08), ("TV", 0.09), ("ZF", 0.1))}
    (folder / "metrics.json").write_text(json.dumps({"methods": methods, "device": "cuda"}))
    (folder / "run_info.json").write_text(json.dumps({"start_time": "2026-12-04T12:00", "cpu_count": 16, "cpu": "x"}))
    written = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(script, "write_benchmark", lambda name, text: written.update({name: text}) or name)
    argv = ["x", "--R", "3", "--T-low", "8", "--seeds", "0", "--work", str(tmp_path), "--table-only",
            "--runs-file", str(tmp_path / "runs.jsonl"), "--min-epochs", "8", "--device"]
    monkeypatch.setattr(sys, "argv", argv + ["cuda"])
    script.main()
    assert "| 3 | 8 | 0 | 0.0700 | 0.0800 | 0.0900 | 0.1000 |" in written["liif_original_sizes_cuda"]
    monkeypatch.setattr(sys, "argv", argv + ["tpu"])
    with pytest.raises(SystemExit, match="device the runs trained on"):
        script.main()


def test_original_sizes_verdict_names_a_diverged_model_and_the_kept_epoch_is_shown():
    script = _script("liif_original_sizes")

    def run(seed, rdn, unet):
        return {"seed": seed, "methods": {"RDN": {"rel_l1": rdn}, "UNet": {"rel_l1": unet}}}

    text = script.verdict([run(0, 1.8e6, 0.08), run(1, 0.09, 0.08)])
    assert text.startswith("no verdict: RDN (seed 0) diverged")
    assert script.verdict([run(0, 0.09, float("nan")), run(1, 0.09, 0.08)]).startswith("no verdict: UNet (seed 0)")
    assert script.epochs_cell({"epochs": 22, "stop": "plateau after 22 epochs", "kept_epoch": 17}) == "22 (plateau; kept 17)"
    assert script.epochs_cell({"epochs": 22, "stop": "plateau after 22 epochs", "kept_epoch": 22}) == "22 (plateau)"
    assert script.run_dir(Path("w"), 6, 8, 0, 64, 100, "cuda", keep_best=True).name == "R6_T8_N64_seed0_budget100_cuda_best"
    assert script.run_dir(Path("w"), 6, 8, 0, 64, 100, "cuda", keep_best=True, min_epochs=40).name.endswith("_best_min40")
    # the original-size table shows the thread count beside the machine
    assert [script.threads_note(r) for r in ({"threads": 1}, {"threads": 2}, {})] == [", 1 thread", ", 2 threads", ""]


def test_generalisation_on_own_cines_scores_the_shipped_models_against_an_oracle_tv(tmp_path, monkeypatch):
    """--cines: the shipped real-trained models on a cine handed in as a file are scored beside TV
    whose lambda is the best of the grid on those same cines (no lambda does better), and they
    beat zero filling on a real slice."""
    import numpy as np
    from inr_utils import liif
    from inr_utils.io import load_sunnybrook

    script = _script("liif_generalisation")
    monkeypatch.setattr(script, "TV_LOG_LAMBDAS", (-2.5, -1.5))  # two candidates keep the test short
    folder = liif.shipped_dir("05_liif_architecture_search", 6, "sunnybrook", T=8)
    d = script.trained_on(folder)
    models = {name: liif.load_model(folder / f"{name}.pt") for name in ("RDN", "UNet")}
    np.save(tmp_path / "cine.npy", load_sunnybrook("SCD0000501", "slice_051")[0])
    cines = liif.cine_subjects([tmp_path / "cine.npy"], d["N"])
    r = script.evaluate(models, "own", 6.0, d["acquisition"]["T_low"], 0.0, d["N"], cines=cines)
    assert set(r) == {"RDN", "UNet", "TV", "ZF"} and all(np.isfinite(v) and v > 0 for v in r.values())
    assert min(r["RDN"], r["UNet"]) < r["ZF"]
    spec = liif.AcquisitionSpec(6.0, d["acquisition"]["T_low"], 32, 64, noise_std=0.0)
    _, scores = liif.tune_tv(liif.LiifDataset(cines, spec, train=False, seed=2), script.TV_LOG_LAMBDAS)
    assert r["TV"] == pytest.approx(min(scores.values()), rel=1e-6)


def test_generalisation_with_own_cines_measures_the_training_setting_and_keeps_the_default_table(tmp_path, monkeypatch):
    """--cines: one row at the training setting (its data, rate and noise), then the cines at every
    rate and noise asked for, written under liif_generalisation_cines (never over the default
    table), with the cines' label in the table and the headline."""
    import sys
    import numpy as np

    script = _script("liif_generalisation")
    calls, written = [], {}
    monkeypatch.setattr(script, "evaluate", lambda models, data, R, T_low, noise, N, seed=0, cines=None:
                        calls.append((data, R, noise, cines)) or {"RDN": 0.09, "UNet": 0.08, "TV": 0.1, "ZF": 0.2})
    monkeypatch.setattr(script, "write_benchmark", lambda name, text: written.update({name: text}) or name)
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((4, 24, 30)).astype(np.float32))
    monkeypatch.setattr(sys, "argv", ["liif_generalisation.py", "--runs", "R6_T8_sunnybrook", "--R", "4", "8",
                                      "--noise", "0", "0.02", "--cines", str(tmp_path / "a.npy"), "--cines-label", "vendor X"])
    script.main()
    assert [c[:3] for c in calls] == [("sunnybrook", 6.0, 0.0), ("vendor X", 4.0, 0.0), ("vendor X", 4.0, 0.02),
                                      ("vendor X", 8.0, 0.0), ("vendor X", 8.0, 0.02)]
    assert calls[0][3] is None and all(len(c[3]) == 1 and c[3][0].N == 64 for c in calls[1:])
    assert list(written) == ["liif_generalisation_cines"]
    text = written["liif_generalisation_cines"]
    assert "--cines" in text and "oracle" in text
    assert "| sunnybrook, R 6, T_low 8 | 0.800 | vendor X | 4 | 0.800-0.800 | 4 of 4 |" in text


@pytest.mark.parametrize("input_grad", [True, False])
def test_compute_bound_counts_the_operations_torch_counts_for_a_convolution(input_grad):
    """The per-step convolution count (forward, weight gradient, input gradient where one is
    needed) equals torch's FlopCounterMode on nn.Conv2d / nn.Conv3d (strided, padded), and the
    oneDNN ``Conv3d`` of the encoders, which FlopCounterMode cannot see, counts as nn.Conv3d."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from inr_utils.liif.encoders import Conv3d

    script = _script("liif_compute_bound")
    cases = [(torch.nn.Conv2d(3, 8, 3, padding=1, stride=2), (2, 3, 9, 9)),
             (torch.nn.Conv3d(4, 6, (3, 1, 3), padding=(1, 0, 1)), (2, 4, 5, 8, 8))]
    for conv, shape in cases:
        x = torch.randn(shape, requires_grad=input_grad)
        with FlopCounterMode(display=False) as counter:
            conv(x).square().sum().backward()
        assert script.conv_flops(conv, lambda: conv(x).square().sum().backward()) == counter.get_total_flops() > 0
    onednn, reference = Conv3d(4, 6, 3, padding=1), torch.nn.Conv3d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 5, 8, 8, requires_grad=input_grad)
    counts = [script.conv_flops(m, lambda m=m: m(x).sum().backward()) for m in (onednn, reference)]
    assert counts[0] == counts[1] == 2 * 2 * 6 * 5 * 8 * 8 * 4 * 27 * (3 if input_grad else 2)


def test_compute_bound_scales_only_the_liif_models_training_seconds(tmp_path):
    """The bound keeps a non-LIIF run's seconds and the LIIF run's other seconds, scales its
    models' training seconds by their ratio, and schedules the runs on 2 workers."""
    import json

    script = _script("liif_compute_bound")
    runs = {"01_data/R3": (600, None),
            "05_liif_architecture_search/R3_T8": (1000, {"T_low": 8, "methods": {"UNet": {"train_seconds": 800},
                                                                                 "TV": {"train_seconds": 0}}}),
            "05_liif_architecture_search/R6_T8": (900, {"T_low": 8, "methods": {"UNet": {"train_seconds": 500}}})}
    for run, (seconds, metrics) in runs.items():
        (tmp_path / run).mkdir(parents=True)
        (tmp_path / run / "run_info.json").write_text(json.dumps({"seconds": seconds, "cpu": "X", "cpu_count": 2}))
        if metrics:
            (tmp_path / run / "metrics.json").write_text(json.dumps(metrics))
    result = {"models": {"05_liif_architecture_search/T8/UNet": {"bound_ratio": 0.25}}}
    bound = script.reproduce_bound(result, tmp_path)
    assert bound["runs"] == 3 and bound["machines"] == ["2 x X"]
    assert bound["recorded_min"] == pytest.approx(1500 / 60)  # 1000 | 900 + 600
    assert bound["liif_runs"]["05_liif_architecture_search/R3_T8"] == pytest.approx((1000, 800, 400))
    assert bound["liif_runs"]["05_liif_architecture_search/R6_T8"] == pytest.approx((900, 500, 525))
    assert bound["bound_min"] == pytest.approx((525 + 400) / 60)  # 600 | 525 + 400
    text = script.markdown({"ceiling": 1e11, "rates": {"matmul": 8e10, "conv3d": 1e11}, "steps": 5, "models": {
        "05_liif_architecture_search/T8/UNet": {"step_s": 0.8, "conv_share": 0.6, "conv_flops": 2e10, "conv_rate": 7e10,
                                                "bound_ratio": 0.25}}}, bound, "today", "2 x X")
    head = text.split("<!-- headline -->")[1].split("<!-- /headline -->")[0]
    assert "| 05 | 8 | UNet | 0.800 | 60% | 70.0 | 70% | 0.200 | 0.25 |" in head
    assert "at least 15.4 min" in head and "under it" in head


def test_compute_bound_profiles_a_small_model_training_step():
    """One training step of a small 3D-UNet LIIF on phantom samples: a positive time, the
    convolutions found by the profiler (a share in (0, 1]) and counted."""
    from inr_utils import liif
    from inr_utils.liif.data import collate, datasets

    script = _script("liif_compute_bound")
    data = liif.DataConfig(None, 16, liif.AcquisitionSpec(3, 4, 8, 4), 4, 2, 1, 1)
    batch = collate([datasets(data)[0][i] for i in range(2)])
    config = liif.ModelConfig(liif.EncoderConfig("unet3d", channels=[4, 8]), T_low=4, C=4, hidden=8, layers=1)
    r = script.profile_model(config, batch, 32, 1)
    assert r["step_s"] > 0 and 0 < r["conv_share"] <= 1 and r["conv_flops"] > 0 and r["conv_rate"] > 0


def test_compute_bound_names_the_missing_shipped_runs(tmp_path, monkeypatch):
    script = _script("liif_compute_bound")
    monkeypatch.setattr(script, "SHIPPED_MODELS", tmp_path)
    with pytest.raises(FileNotFoundError, match="no shipped default runs of 05_liif_architecture_search"):
        script.model_settings("05_liif_architecture_search")
