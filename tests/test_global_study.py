"""Notebook 02's runner (its settings are checked once, with the notebook's parameter names) and the benchmark's choice of cases."""
import pytest

from inr_utils import metrics, selection
from inr_utils.global_study import GlobalStudy, GlobalStudyConfig, SirenBudget


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
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from global_recon import case_specs, slice_specs

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
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from global_recon import by_patient

    rows = [(3.0, 0, 0, 0, "SCD0000501/slice_051"), (4.0, 0, 0, 0, "SCD0000501/slice_046"),
            (0.5, 0, 0, 0, "SCD0000101/slice_006")]
    (_, line), = [by_patient(rows)]
    assert "test patient's 2 slice(s), median +3.50 dB" in line and "patients' 1 slice(s), median +0.50 dB" in line
    assert by_patient(rows[:2]) == []
