"""Notebook 02's runner (its settings are checked once, with the notebook's parameter names) and the benchmark's choice of cases."""
import pytest

from inr_utils import metrics, selection
from inr_utils.global_study import GlobalStudy, GlobalStudyConfig, SirenBudget


def _benchmark():
    """benchmarks/global_recon.py as a module (the benchmarks are scripts, not a package)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import global_recon

    return global_recon


def test_the_default_representation_is_always_a_row_and_search_overrides_apply():
    c = GlobalStudyConfig(representation="hashgrid", inr_rows=["lowrank"], log_lambdas=[-3.0], max_extend=1)
    assert c.inr_rows == ["lowrank", "hashgrid"]
    spec = c.search_for("TV+S")
    assert spec.log_lambdas == (-3.0,) and spec.log_mus == selection.DEFAULT_SEARCH["TV+S"].log_mus
    assert spec.max_extend == 1 and c.search_for("TV").log_mus is None


@pytest.mark.parametrize("kw,match", [({"representation": "lowrank-lambda"}, "REPRESENTATION"),
                                      ({"inr_rows": ["hashgird"]}, "INR_ROWS"), ({"steps": 0}, "STEPS must be"),
                                      ({"max_extend": -1}, "MAX_EXTEND must be an integer >= 0"),
                                      ({"siren": {"seconds": 0}}, "SIREN_SECONDS"), ({"device": "gpu"}, "DEVICE must be"),
                                      ({"map_grid": -1}, "MAP_GRID must be an integer >= 0"),
                                      ({"map_grid": 1}, "MAP_GRID must be 0")])
def test_bad_settings_name_the_parameter(kw, match):
    if "siren" in kw:
        with pytest.raises(ValueError, match=match):
            SirenBudget(**kw["siren"])
        return
    with pytest.raises(ValueError, match=match):
        GlobalStudyConfig(**kw)


def test_a_tiny_study_records_every_row(tiny_acq):
    c = GlobalStudyConfig(inr_rows=["lowrank", "hashgrid"], steps=20, log_lambdas=[-3.0], log_mus=[-4.0], max_extend=0, tv_iters=20,
                          siren=SirenBudget(hidden=16, layers=2, frames=2, seconds=1, steps=2, log_every=1))
    study = GlobalStudy(tiny_acq, c, "my.h5")
    study.classical(); study.inrs(); study.siren()
    rec = study.result().record
    assert set(rec["methods"]) == {"ZF", "TV", "TV+S", "SIREN", "lowrank", "hashgrid", "INR"} and rec["data"] == "my.h5"
    assert rec["methods"]["INR"] == rec["methods"]["lowrank"] and rec["methods"]["TV"]["iterations"] == 20
    # the row that is not searched is one fit at the searched row's weights
    assert len(rec["sweep"]["hashgrid"]) == 1
    assert [rec["methods"]["hashgrid"][k] for k in ("log10_lambda", "log10_mu")] == \
        [rec["methods"]["lowrank"][k] for k in ("log10_lambda", "log10_mu")]


def test_inr_rows_refine_estimated_maps_only(tiny_acq):
    """The simulation's own maps are used as they are; estimated ones are refined by every INR
    row (recorded as map_grid), unless MAP_GRID says otherwise."""
    import dataclasses

    estimated = dataclasses.replace(tiny_acq, meta={"coil_maps": {"method": "espirit", "calibration_lines": 8}})
    for acq, map_grid, expected in ((tiny_acq, None, 0), (estimated, None, 4), (estimated, 0, 0), (tiny_acq, 3, 3)):
        study = GlobalStudy(acq, GlobalStudyConfig(inr_rows=["lowrank", "hashgrid"], map_grid=map_grid), None)
        assert {s.map_grid for s in study.settings.values()} == {expected}
        assert ("refined jointly" in study.describe()) == bool(expected)


def test_tv_rows_refine_estimated_maps_as_the_inr_rows_do(tiny_acq):
    """One rule for every method: with maps off by a smooth field (marked as estimates) the TV
    rows refine them when MAP_GRID allows, record the grid, and gain from it."""
    import dataclasses

    from test_coil_refinement import _smooth_error

    wrong = dataclasses.replace(tiny_acq, smaps=_smooth_error(tiny_acq.smaps, 0.6),
                                meta={"coil_maps": {"method": "espirit", "calibration_lines": 8}})
    psnr = {}
    for map_grid in (0, None):
        c = GlobalStudyConfig(inr_rows=["lowrank"], log_lambdas=[-2.5], log_mus=[-3.5], max_extend=0, tv_iters=300,
                              map_grid=map_grid)
        study = GlobalStudy(wrong, c, None)
        study.classical()
        rows = {name: study.selections[name] for name in ("TV", "TV+S")}
        psnr[map_grid] = {name: metrics.psnr(sel.recon, wrong.target) for name, sel in rows.items()}
        assert study.map_grid == (0 if map_grid == 0 else 4)
    for name in ("TV", "TV+S"):
        assert psnr[None][name] > psnr[0][name] + 2, psnr


def test_benchmark_case_selection():
    """--first and --cases of benchmarks/global_recon.py pick the slices they name, in the
    set's order, and refuse what the set does not hold."""
    case_specs, slice_specs = _benchmark().case_specs, _benchmark().slice_specs

    every = slice_specs("default")
    assert case_specs("default") == every
    assert case_specs("default", first=2) == every[:2]
    mid = "SCD0000101/slice_006"
    assert case_specs("default", cases=[mid]) == ["sunnybrook:" + mid]
    assert case_specs("default", first=2, cases=[mid, every[1].split(":")[1]]) == every[:2] + ["sunnybrook:" + mid]
    with pytest.raises(ValueError, match="not cases"):
        case_specs("tune", cases=["SCD0000501/slice_051"])
    with pytest.raises(ValueError, match="--first"):
        case_specs("default", first=0)


def test_benchmark_splits_the_margin_by_patient():
    """The summary's by-patient line separates the test patient's slices from the others' and
    is left out when the cases hold only one group."""
    by_patient = _benchmark().by_patient

    rows = [(3.0, 1.0, 0, 0, "SCD0000501/slice_051"), (4.0, 2.0, 0, 0, "SCD0000501/slice_046"),
            (0.5, -0.5, 0, 0, "SCD0000101/slice_006")]
    _, bart_line, _, tv_line = by_patient(rows)
    assert bart_line.startswith("Margin over BART's best") and tv_line.startswith("Margin over our best TV")
    assert "test patient's 2 slices, median +3.50 dB" in bart_line and "patients' 1 slice, median +0.50 dB" in bart_line
    assert "test patient's 2 slices, median +1.50 dB" in tv_line and "patients' 1 slice, median -0.50 dB" in tv_line
    assert by_patient(rows[:2]) == []
    assert by_patient([r[:1] + (None,) + r[2:] for r in rows])[1] == bart_line  # no TV rows: the BART line only


def test_benchmark_summary_compares_with_the_best_tv_and_bart_row_of_each_slice():
    """Margins are taken against the best of the TV rows run (the +maps rows included) and the
    best BART row, slice by slice; a slice missing a method's result is left out."""
    summary = _benchmark().summary

    methods = ["TV", "TV+S+maps", "lowrank", "BART T -i 300", "BART L+T -i 300"]
    psnrs = {"a": dict(zip(methods, (30.0, 33.0, 34.0, 31.0, 32.0))),
             "b": dict(zip(methods, (29.0, 28.0, 30.0, 31.0, 29.5))),
             "c": {"TV": 30.0, "lowrank": 40.0}}  # incomplete: not in the summary
    results = {f"{case}|6|{m}": {"psnr": v, "seconds": 10.0 if m == "lowrank" else 20.0, "peak_mb": 100.0}
               for case, row in psnrs.items() for m, v in row.items()}
    lines = summary(results, [6], "lowrank", methods, True)
    row = next(line for line in lines if line.startswith("| 6 |"))
    # margins over BART's best: +2.0 (a), -1.0 (b); over our best TV: +1.0 (a, TV+S+maps), +1.0 (b, TV)
    assert row.split(" | ")[1:6] == ["2", "0.50", "-1.00", "1.00", "1.00"]
    assert "BART L+T -i 300 x1, BART T -i 300 x1" in row and "TV+S+maps x1, TV x1" in row
    assert any("no slice below BART's best: **missed**" in line for line in lines)


def test_benchmark_summary_of_the_inr_alone_gives_its_psnr_instead_of_empty_margins():
    """A run of the INR only (a tuning run) has nothing to take a margin over: its summary gives the
    median and worst PSNR over the slices and the peak memory, and judges no target."""
    summary = _benchmark().summary

    results = {f"{case}|6|lowrank": {"psnr": v, "seconds": 10.0, "peak_mb": mb}
               for case, v, mb in (("a", 35.0, 500.0), ("b", 38.0, 560.0), ("c", 36.0, 520.0))}
    lines = summary(results, [6], "lowrank", ["lowrank"], True)
    assert "| R | slices | median PSNR | worst slice | peak memory (MB, max) |" in lines
    assert "| 6 | 3 | 36.00 | 35.00 | 560 |" in lines
    assert not any("Targets" in line or "BART's best" in line for line in lines)


def test_benchmark_summary_sets_another_representation_against_the_default_slice_by_slice():
    """With a second INR among the methods, the summary gives its PSNR minus the default INR's
    per slice (median, range, how often it is higher, the test patient's slices apart) and the
    median ratio of the two fits' seconds; cases without both results are left out."""
    summary = _benchmark().summary

    rows = {"SCD0000501/slice_051": (34.0, 33.0, 20.0, 100.0), "SCD0000501/slice_046": (35.0, 35.5, 20.0, 60.0),
            "SCD0000101/slice_006": (36.0, 33.0, 10.0, 80.0), "SCD0000201/slice_018": (None, 30.0, None, 90.0)}
    results = {}
    for case, (low, grid, s_low, s_grid) in rows.items():
        results[f"{case}|6|hashgrid"] = {"psnr": grid, "seconds": s_grid, "peak_mb": 1.0}
        if low is not None:
            results[f"{case}|6|lowrank"] = {"psnr": low, "seconds": s_low, "peak_mb": 1.0}
    line = next(x for x in summary(results, [6], "lowrank", ["lowrank", "hashgrid"], True) if x.startswith("`hashgrid`"))
    # differences -1.0, +0.5, -3.0 (the fourth case has no lowrank row); time ratios 5, 3, 8
    assert "3 slices, median -1.00 dB (from -3.00 to +0.50), `hashgrid` higher on 1" in line
    assert "the test patient's 2 slices, median -0.25 dB" in line
    assert "median time ratio hashgrid / lowrank 5.00" in line
    assert not any(x.startswith("`hashgrid`") for x in summary(results, [6], "lowrank", ["lowrank"], True))


def test_retiming_takes_each_slice_s_inr_best_bart_and_best_tv_and_the_ratio_from_one_run():
    """--retime fits, per complete case, the default INR, that case's best BART row and best TV
    row at their chosen weights, case by case; the summary's ratio uses the retimed seconds only
    when the INR and BART's best come from the same retiming run."""
    bench = _benchmark()
    methods = ["TV", "TV+S+maps", "lowrank", "BART T -i 300", "BART L+T -i 300"]
    psnrs = {"a": (30.0, 33.0, 34.0, 31.0, 32.0), "b": (29.0, 28.0, 30.0, 31.0, 29.5)}
    results = {f"{case}|6|{m}": {"psnr": v, "seconds": 10.0 if m == "lowrank" else 20.0, "peak_mb": 1.0,
                                 "log_lambda": -3.0, "log_mu": None if m == "TV" else -4.0}
               for case, row in psnrs.items() for m, v in zip(methods, row)}
    results["c|6|lowrank"] = dict(results["a|6|lowrank"])  # incomplete case: not retimed
    jobs = bench.retime_jobs(results, ["sunnybrook:a", "sunnybrook:b", "sunnybrook:c"], [6], methods, "lowrank")
    assert [(spec, m, w) for spec, _, m, w in jobs] == [
        ("sunnybrook:a", "lowrank", (-3.0, -4.0)), ("sunnybrook:a", "BART L+T -i 300", (-3.0, -4.0)),
        ("sunnybrook:a", "TV+S+maps", (-3.0, -4.0)), ("sunnybrook:b", "lowrank", (-3.0, -4.0)),
        ("sunnybrook:b", "BART T -i 300", (-3.0, -4.0)), ("sunnybrook:b", "TV", (-3.0, None))]

    def ratio_cell(res):
        row = next(line for line in bench.summary(res, [6], "lowrank", methods, True) if line.startswith("| 6 |"))
        return row.split(" | ")[6]

    assert ratio_cell(results) == "0.50"
    results["a|6|lowrank"]["retimed"] = {"seconds": 30.0, "psnr": 34.0, "run": "r1"}
    results["a|6|BART L+T -i 300"]["retimed"] = {"seconds": 20.0, "psnr": 32.0, "run": "r2"}
    assert ratio_cell(results) == "0.50"  # different runs: not side by side, the search seconds stand
    results["a|6|BART L+T -i 300"]["retimed"]["run"] = "r1"
    lines = bench.summary(results, [6], "lowrank", methods, True)
    assert ratio_cell(results) == "1.00"  # median of 1.5 (a, retimed) and 0.5 (b)
    assert any(line.startswith("Time ratios: R = 6: 1 of 2 slices") for line in lines)


def test_known_map_comparison_takes_the_plain_row_for_a_maps_row():
    """With the known maps a +maps row refines nothing, so the known-map results need not hold
    it: its plain row stands in; a method missing from both leaves the case out."""
    maps_comparison = _benchmark().maps_comparison

    estimated = {"c|6|TV+S": {"psnr": 30.0}, "c|6|TV+S+maps": {"psnr": 33.5}, "c|6|lowrank": {"psnr": 34.0}}
    known = {"c|6|TV+S": {"psnr": 34.0}, "c|6|lowrank": {"psnr": 34.5}}
    lines, verdict = maps_comparison(estimated, known, [6], ["TV+S", "TV+S+maps", "lowrank"], "espirit", "k")
    assert "| 6 | TV+S+maps | 1 | -0.50 | -0.50 | -0.50 |" in lines and "| 6 | TV+S | 1 | -4.00 | -4.00 | -4.00 |" in lines
    assert "largest difference 4.00 dB" in verdict
    assert "c|6|TV+S+maps" not in known  # the caller's results are left as they are
    lines, verdict = maps_comparison(estimated, known, [6], ["TV+S", "hashgrid"], "espirit", "k")
    assert lines == [] and "no case" in verdict


def test_rows_fitted_with_other_inr_settings_are_flagged():
    """A kept INR row whose recorded steps or maps' learning rate differ from today's defaults
    (or that predates the record) is counted as out of date; current rows are not."""
    from inr_utils import inr

    outdated_rows = _benchmark().outdated_rows
    now = inr.default_settings("lowrank", (20, 128, 128))
    current = {"steps": now.steps, "map_lr": now.map_lr}
    results = {"a|6|lowrank": dict(current), "b|6|lowrank": dict(current), "a|6|TV": {"psnr": 1.0}}
    assert outdated_rows(results, ["lowrank"]) == []
    results["b|6|lowrank"]["steps"] = now.steps - 1
    results["c|6|lowrank"] = {"psnr": 1.0}  # no record
    (_, line), = [outdated_rows(results, ["lowrank"])]
    assert "2 of 3 `lowrank` rows" in line and f"{now.steps} steps" in line
    results["a|6|lowrank"]["map_lr"] = 1.0
    assert "3 of 3" in outdated_rows(results, ["lowrank"])[1]
    assert "2 of 3" in outdated_rows(results, ["lowrank"], refines=False)[1]  # known maps: no maps' rate to compare


def test_inr_settings_script_reads_configs_for_any_representation():
    """benchmarks/inr_settings.py: key=value configurations (integers where the setting is one,
    ``start`` as a word) and a clear refusal of malformed entries."""
    _benchmark()  # puts benchmarks/ on the path: inr_settings imports fixed_weights beside it
    import inr_settings as script
    assert script.parse_config("default") == {}
    assert script.parse_config("log2_table=18,lr=3e-2,start=none") == {"log2_table": 18, "lr": 0.03, "start": "none"}
    assert isinstance(script.parse_config("steps=800")["steps"], int)
    with pytest.raises(ValueError, match="key=value"):
        script.parse_config("steps")
