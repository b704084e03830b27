from inr_utils import lambda_study


def test_lambda_study_verdicts():
    rec = {"conditional": {"-5": {"psnr": 30.0}, "0": {"psnr": 25.0}}, "separate": {"-5": {"psnr": 30.2}, "0": {"psnr": 25.9}},
           "seconds_conditional": 30.0, "seconds_separate": 20.0, "auto_log10_lambda": -2.0, "oracle_log10_lambda": -2.5,
           "psnr_auto": 31.0, "psnr_oracle": 31.3, "smoothness_monotone": False, "smoothness_rises_on": [[-1.0, -0.5]]}
    s = lambda_study.run_summary(rec)
    verdicts = [(t["value"], t["met"]) for t in s["targets"]]
    assert verdicts == [("0.30 dB", True), ("largest gap -0.90 dB; by log10 lambda: -5 -0.20, 0 -0.90", False), ("3.00x", False)]
    assert s["tables"][1]["rows"][0][2] == "3.00" and s["tables"][1]["rows"][0][-1] == "no: rises on [-1, -0.5]"
    # the gap counts on both sides: far above a separate fit is not matching it either
    rec["conditional"] = {"-5": {"psnr": 30.4}, "0": {"psnr": 26.6}}
    assert lambda_study.run_summary(rec)["targets"][1]["value"] == "largest gap +0.70 dB; by log10 lambda: -5 +0.20, 0 +0.70"
    assert not lambda_study.run_summary(rec)["targets"][1]["met"]
    rec["conditional"] = {"-5": {"psnr": 30.4}, "0": {"psnr": 25.5}}
    assert [t["met"] for t in lambda_study.run_summary(rec)["targets"]][1]
    # a scan without ground truth: the objectives alone give a table, no PSNR rows or gap verdicts
    blind = {"conditional": {"-5": {"objective": 4.0, "data": 3.0, "tv_t": 1e5}}, "separate": {"-5": {"objective": 2.0}},
             "seconds_conditional": 30.0, "seconds_separate": 20.0}
    s = lambda_study.run_summary(blind)
    assert [t["rows"] for t in s["tables"]] == [[["lowrank-lambda", "-5", "4", "2", "2.00"]]] and s["targets"] == []


def test_settings_are_checked_with_the_notebooks_names():
    import pytest

    from inr_utils.lambda_study import LambdaStudyConfig

    with pytest.raises(ValueError, match="REPRESENTATION must be one of"):
        LambdaStudyConfig(representation="lowrank")
    with pytest.raises(ValueError, match="LOG_LAMBDA_MIN < LOG_LAMBDA_MAX"):
        LambdaStudyConfig(log_lambda_range=(0.0, -5.0))
    with pytest.raises(ValueError, match="every SHOW value"):
        LambdaStudyConfig(show=[-6.0])
    with pytest.raises(ValueError, match="DEVICE must be"):
        LambdaStudyConfig(device="gpu")
    for bad in (0, -0.5, 1.5, float("nan"), "half"):
        with pytest.raises(ValueError, match="FRAME_FRACTION must be in"):
            LambdaStudyConfig(frame_fraction=bad)
    for bad in (0, -2.0, float("nan"), float("inf"), "4"):
        with pytest.raises(ValueError, match="LAMBDA_BETA must be a finite number > 0"):
            LambdaStudyConfig(lambda_beta=bad)
    with pytest.raises(ValueError, match="LAMBDA_DRAWS must be one of"):
        LambdaStudyConfig(lambda_draws="sobol")
    for bad in (-5.0, 0.0, 2.0, float("nan"), True, "-1.5"):
        with pytest.raises(ValueError, match="LAMBDA_SPLIT must be None or a log10"):
            LambdaStudyConfig(lambda_split=bad)


def test_only_the_conditional_network_has_the_split():
    """The conditional fit's network hands over at LAMBDA_SPLIT; the separate fits (one lambda
    each) have one spatio-temporal encoding, as without the split; None gives one everywhere."""
    from inr_utils import io
    from inr_utils.lambda_study import LambdaStudy, LambdaStudyConfig

    acq = io.load_case(None, R=4, T=6, N=16, coils=2)
    study = LambdaStudy(acq, LambdaStudyConfig(lambda_split=-1.0, steps=2, cond_steps=2, show=[-2.0], dense=2))
    conditional = study.build("hashgrid-lambda", study.op, study.y, conditional=True)
    separate = study.build("hashgrid-lambda", study.op, study.y)
    assert conditional.lambda_split == -1.0 and conditional.dynamic_high is not None
    assert separate.lambda_split is None and separate.dynamic_high is None
    study = LambdaStudy(acq, LambdaStudyConfig(lambda_split=None, steps=2, cond_steps=2, show=[-2.0], dense=2))
    assert study.build("hashgrid-lambda", study.op, study.y, conditional=True).dynamic_high is None
    assert study.conditional().model.dynamic_high is None


def test_frame_blocks_follow_the_fraction_and_reach_every_fit(monkeypatch):
    """frames_per_step: round(fraction T), at least 2, None (whole cine) at 1 or when it reaches
    T; the conditional, separate and held-out fits all receive it."""
    import numpy as np

    from inr_utils import io
    from inr_utils.lambda_study import LambdaStudy, LambdaStudyConfig

    acq = io.load_case(None, R=4, T=6, N=16, coils=2)
    cases = {0.5: 3, 0.1: 2, 0.9: 5, 1.0: None, 0.95: None}
    for fraction, expected in cases.items():
        cfg = LambdaStudyConfig(frame_fraction=fraction, steps=2, cond_steps=2, show=[-2.0], dense=2)
        assert LambdaStudy(acq, cfg).frames_per_step == expected
    seen, betas, draws = [], [], []
    real_fit = lambda_study.inr.fit

    def spy(*a, **kw):
        seen.append(kw["frames_per_step"])
        betas.append(kw.get("log_lambda_beta"))
        draws.append(kw.get("log_lambda_draws"))
        return real_fit(*a, **kw)

    monkeypatch.setattr(lambda_study.inr, "fit", spy)
    study = LambdaStudy(acq, LambdaStudyConfig(frame_fraction=0.5, lambda_beta=2.5, lambda_draws="quasi", steps=2, cond_steps=2,
                                                show=[-2.0], dense=2))
    study.conditional(); study.separate(); study.dense_curve(); study.auto_lambda()
    assert seen == [3, 3, 3] and np.isfinite(study.record()["conditional"]["-2"]["psnr"])
    # both forms' objective at the shown lambda, from their outputs, as the fits define it
    import torch

    from inr_utils.inr.fitting import objective

    rec = study.record()
    for form, x in (("conditional", study.cond_at[-2.0]), ("separate", study.separate_recons[-2.0])):
        terms = rec[form]["-2"]
        want = float(objective(acq.op, torch.from_numpy(x), torch.from_numpy(acq.kspace), 10.0 ** -2))
        assert abs(terms["objective"] - want) <= 1e-5 * want
        assert abs(terms["data"] + 1e-2 * terms["tv_t"] - terms["objective"]) <= 1e-9 * want
    ratio = rec["conditional"]["-2"]["objective"] / rec["separate"]["-2"]["objective"]
    objective_table = [t for t in rec["summary"]["tables"] if t["title"].startswith("Lambda study: the objective")][0]
    assert objective_table["rows"] == [["hashgrid-lambda", "-2", f"{rec['conditional']['-2']['objective']:.4g}",
                                        f"{rec['separate']['-2']['objective']:.4g}", f"{ratio:.2f}"]]
    # the sampling density is the conditional fits' (the first and the held-out one), not the fixed fit's
    assert betas[0] == betas[2] == 2.5 and betas[1] in (None, 1.0) and study.record()["lambda_beta"] == 2.5
    assert draws[0] == draws[2] == study.record()["lambda_draws"] == "quasi"  # both conditional fits

def test_the_separate_fits_record_their_psnr_on_the_way_and_the_table_shows_it_half_way():
    """With a target, each separate fit's PSNR is taken at every eighth of its steps; its last
    value is the fit's own PSNR, and the gap table shows the value half-way (is the reference
    converged?)."""
    from inr_utils import io
    from inr_utils.lambda_study import LambdaStudy, LambdaStudyConfig, psnr_halfway

    acq = io.load_case(None, R=4, T=6, N=16, coils=2)
    study = LambdaStudy(acq, LambdaStudyConfig(steps=16, cond_steps=2, show=[-2.0], dense=2))
    study.conditional(); study.separate(); study.dense_curve(); study.auto_lambda()
    rec = study.record()
    curve = rec["separate"]["-2"]["psnr_by_step"]
    assert curve["step"] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert abs(curve["psnr"][-1] - rec["separate"]["-2"]["psnr"]) < 1e-3
    assert curve["psnr"][0] != curve["psnr"][-1]  # the fit moved: these are values on the way, not one repeated
    table = [t for t in rec["summary"]["tables"] if t["title"].startswith("Lambda study: one conditional")][0]
    assert table["columns"][-1] == "separate fit at half its steps (dB)"
    assert table["rows"][0][-1] == f"{curve['psnr'][3]:.2f}" == f"{psnr_halfway(curve, 16):.2f}"
    # without the curves (older records, no target) the column is left out
    del rec["separate"]["-2"]["psnr_by_step"]
    table = [t for t in lambda_study.run_summary(rec)["tables"] if t["title"].startswith("Lambda study: one conditional")][0]
    assert "separate fit at half its steps (dB)" not in table["columns"]


def _validation_script():
    """benchmarks/lambda_validation.py as a module (it is a script, not part of the package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lambda_validation.py"
    spec = importlib.util.spec_from_file_location("lambda_validation", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_validation_script_refuses_test_data_and_prints_psnr(capsys, monkeypatch):
    """benchmarks/lambda_validation.py: the test patient and phantom subject 0 are refused; a
    two-step conditional fit on a training subject prints PSNR at every rendered lambda."""
    import json

    import pytest

    script = _validation_script()
    for argv in (["--data", "sunnybrook:SCD0000501"], ["--data", "sunnybrook"], ["--data", "sunnybrook:501/50"],
                 ["--data", "phantom", "--subject", "0"]):
        with pytest.raises(SystemExit):
            script.main(argv)
    assert "test" in capsys.readouterr().err
    import torch

    # the script sets torch's thread count: keep this process's
    script.main(["--data", "phantom", "--subject", "1", "--steps", "2", "--threads", str(torch.get_num_threads())])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["form"] == "conditional" and out["steps"] == 2 and set(out["psnr"]) == {f"{v:g}" for v in script.RENDER_AT}
    assert set(out["terms"]) == set(out["psnr"]) and all(t["data"] > 0 and t["tv_t"] >= 0 for t in out["terms"].values())
    # --model-kw reaches both fits' networks (LambdaStudyConfig.model_kwargs)
    built = []
    real_build = lambda_study.inr.build
    monkeypatch.setattr(lambda_study.inr, "build", lambda *a, **kw: built.append(kw) or real_build(*a, **kw))
    script.main(["--data", "phantom", "--subject", "1", "--steps", "2", "--threads", str(torch.get_num_threads()),
                 "--separate", "-2", "--model-kw", "hidden=8", "gate_hidden=4"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"] == {"hidden": 8, "gate_hidden": 4} and built[-1]["hidden"] == 8 and built[-1]["gate_hidden"] == 4
    with pytest.raises(SystemExit):
        script.main(["--data", "phantom", "--model-kw", "hidden"])
    # --range: the conditional fit draws from the sub-range and is rendered only inside it
    script.main(["--data", "phantom", "--subject", "1", "--steps", "2", "--threads", str(torch.get_num_threads()),
                 "--range", "-2.5", "0"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["range"] == [-2.5, 0.0] and set(out["psnr"]) == {f"{v:g}" for v in script.RENDER_AT if v >= -2.5}


def test_resummarise_rebuilds_stale_verdicts_from_the_record_only(tmp_path):
    """A finished run's summary built by an older rule is rebuilt from its own numbers; a
    current one is left alone, and the file stays valid JSON with the same record."""
    import json

    from inr_utils.pipeline import resummarise

    rec = {"conditional": {"-5": {"psnr": 33.0}}, "separate": {"-5": {"psnr": 30.0}},
           "seconds_conditional": 30.0, "seconds_separate": 20.0, "methods": {}}
    stale = {**rec, "summary": {"tables": [], "targets": [{"name": "old rule", "value": "", "met": True}]}}
    path = tmp_path / "03_lambda_study" / "R6" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(stale))
    assert resummarise(tmp_path) == [path]
    now = json.loads(path.read_text())
    assert {k: v for k, v in now.items() if k != "summary"} == rec
    assert [(t["value"], t["met"]) for t in now["summary"]["targets"]] == [("largest gap +3.00 dB; by log10 lambda: -5 +3.00", False), ("1.50x", True)]
    assert resummarise(tmp_path) == []


def test_validation_gap_table_pairs_each_conditional_run_with_its_own_separate_fits():
    script = _validation_script()
    case = {"data": "phantom", "subject": 1, "R": 6.0, "fit_seed": 0}
    runs = [{**case, "form": "separate", "steps": 2000, "log10_lambda": -5.0, "psnr": 31.0},
            {**case, "form": "separate", "steps": 2000, "log10_lambda": 0.0, "psnr": 25.0},
            {**case, "form": "separate", "steps": 2000, "log10_lambda": 0.0, "psnr": 99.0, "model": {"hidden": 32}},  # other sizes
            {**case, "form": "conditional", "beta": 0.5, "balance": -2.0, "steps": 3400, "seconds": 200.0,
             "psnr": {"-5": 35.0, "-2.5": 36.0, "0": 24.5}}]
    rows = script.gap_table(runs)
    assert rows == ["| [-5, 0] | 0.5 | random | -2 | none | 3400 | 2000 | defaults | phantom subject 1 | 6 | -5: +4.00, 0: -0.50 | 4.00 | 0.50 | 0.50 | 200 |"]
    assert script.gap_table(runs[:3]) == []
    # a separate fit with other steps never mixes into the notebook's 2000-step comparison; asked
    # for, it gives its own row, and the convergence table sets it beside the 2000-step fit
    longer = {**case, "form": "separate", "steps": 4000, "log10_lambda": -5.0, "psnr": 34.0}
    assert script.gap_table(runs + [longer]) == rows
    assert script.gap_table(runs + [longer], separate_steps=4000) == [
        "| [-5, 0] | 0.5 | random | -2 | none | 3400 | 4000 | defaults | phantom subject 1 | 6 | -5: +1.00 | 1.00 |  | 0.00 | 200 |"]
    # notebook 03's setting: Beta 0.5 drawn quasi-randomly, balance -2, split at -1.5, 3400 steps
    notebook = {**runs[3], "draws": "quasi", "lambda_split": -1.5}
    table = script.convergence_table(runs + [longer, notebook])
    assert table[0].startswith("| case | R | sizes | log10 lambda | separate, 2000 steps | separate, 4000 steps |")
    assert table[2:] == ["| phantom subject 1 | 6 | defaults | -5 | 31.00 | 34.00 | 35.00 | +1.00 |"]
    one_encoding = {**notebook, "lambda_split": None}  # a run without the split is not the notebook's fit
    assert script.convergence_table(runs + [longer, one_encoding])[2:] == ["| phantom subject 1 | 6 | defaults | -5 | 31.00 | 34.00 |  |  |"]
    assert script.convergence_table(runs) == []  # one number of steps per lambda: nothing to compare
    # another fit seed is its own case, named in the row, paired only with its own separate fits
    seeded = [{**r, "fit_seed": 1} for r in runs]
    assert script.gap_table(runs + seeded[:1] + seeded[3:]) == rows + [
        "| [-5, 0] | 0.5 | random | -2 | none | 3400 | 2000 | defaults | phantom subject 1, fit seed 1 | 6 | -5: +4.00 | 4.00 |  | 0.00 | 200 |"]


def test_objective_terms_match_the_fit_objective_and_the_table_compares_them():
    """objective_terms gives the two terms of ``inr.fitting.objective`` (data + lambda TV_t at any
    lambda); the objective table pairs a conditional run's render with the separate fit at its
    lambda and states J_lambda conditional / separate."""
    import torch

    from inr_utils import io
    from inr_utils.inr.fitting import objective

    script = _validation_script()
    acq = io.load_case(None, R=4, seed=1, T=6, N=16, coils=2)
    y = torch.from_numpy(acq.kspace)
    x = acq.zero_filled() + 0.01
    t = script.objective_terms(acq.op, x, y)
    for ll in (-5.0, -1.0):
        want = float(objective(acq.op, torch.from_numpy(x), y, 10.0 ** ll))
        assert abs(t["data"] + 10.0 ** ll * t["tv_t"] - want) <= 1e-4 * want
    case = {"data": "phantom", "subject": 1, "R": 6.0, "fit_seed": 0}
    runs = [{**case, "form": "separate", "steps": 2000, "log10_lambda": -1.0, "psnr": 31.0, "terms": {"data": 1.0, "tv_t": 10.0}},
            {**case, "form": "separate", "steps": 2000, "log10_lambda": -5.0, "psnr": 31.0},  # no terms recorded: no row
            {**case, "form": "conditional", "beta": 0.5, "balance": -1.0, "steps": 3400, "seconds": 200.0,
             "psnr": {"-1": 30.0, "-5": 35.0}, "terms": {"-1": {"data": 2.0, "tv_t": 20.0}, "-5": {"data": 2.0, "tv_t": 1.0}}}]
    assert script.objective_table(runs) == [
        "| [-5, 0] | 0.5 | random | -1 | none | 3400 | 2000 | defaults | phantom subject 1 | 6 | -1 | 2 / 1 | 20 / 10 | 2.00 |"]
    sub = {**runs[2], "range": [-5.0, -2.5], "terms": {"-5": {"data": 2.0, "tv_t": 1.0}}}
    assert script.objective_table([runs[0], sub]) == []  # -1 lies outside the sub-range: rendered nowhere, no row
    assert script.gap_table([runs[0], {**sub, "psnr": {"-5": 35.0, "-2.5": 36.0}}]) == []
