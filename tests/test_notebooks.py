"""Notebooks executed headlessly (papermill over the Jupytext sources) with small parameters."""
import json

import h5py
import numpy as np
import pytest
from papermill.exceptions import PapermillExecutionError

from inr_utils.pipeline import NOTEBOOK_DIR, SMOKE_PARAMETERS, execute

NB01 = NOTEBOOK_DIR / "01_data.py"
SMALL = {k: v for k, v in SMOKE_PARAMETERS["01_data"].items() if k != "R"}


def _independent_zf_psnr(path):
    """Re-derive the ZF PSNR from case.h5 with plain numpy (no inr_utils)."""
    with h5py.File(path) as f:
        k, S, g, mask = f["kspace"][()], f["smaps"][()], f["target"][()], f["mask"][()]
    coil_imgs = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    zf = (np.conj(S)[None] * coil_imgs).sum(1)
    a, b = np.abs(zf), np.abs(g)
    return 10 * np.log10(b.max() ** 2 / np.mean((a - b) ** 2)), mask.size / mask.sum()


@pytest.mark.parametrize("R", [4, 6])
def test_01_writes_case_metrics_and_figures(tmp_path, R):
    executed = execute(NB01, {"R": R, **SMALL}, tmp_path)
    assert executed.exists()
    info = json.loads((tmp_path / "run_info.json").read_text())  # the wall time kept in git for the README
    assert info["parameters"]["R"] == R and 0 < info["seconds"] < 600 and info["cpu_count"] >= 1
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["R"] == R and set(m["methods"]["ZF"]) >= {"psnr", "ssim", "nrmse", "rel_l1"}
    psnr, achieved = _independent_zf_psnr(tmp_path / "case.h5")
    assert abs(psnr - m["methods"]["ZF"]["psnr"]) < 0.05
    assert abs(achieved - R) / R < 0.05
    for name in ("mag.gif", "phase.gif", "half_T_mag.png", "half_T_phase.png", "half_T_mag_error.png", "half_H_mag.png"):
        assert (tmp_path / "figures" / "ZF" / name).exists()
    assert (tmp_path / "comparison.png").exists()
    assert not list(tmp_path.glob(".partial-*"))


def test_01_real_data(tmp_path):
    execute(NB01, {"R": 3, "DATA": "sunnybrook", **SMALL}, tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["data"] == "sunnybrook" and m["methods"]["ZF"]["psnr"] > 10


def test_01_realistic_scan_estimates_its_coil_maps_and_records_them(tmp_path):
    """Birdcage coils, 30 dB image SNR and ESPIRiT maps from the undersampled data: the
    record says which maps and how many calibration lines; case.h5 carries the estimated maps."""
    execute(NB01, {"R": 3, **SMALL, "N": 48, "COIL_MODEL": "birdcage", "SNR_DB": 30.0, "COIL_MAPS": "espirit"}, tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["coil_maps"]["method"] == "espirit" and m["coil_maps"]["calibration_lines"] >= 8
    with h5py.File(tmp_path / "case.h5") as f:
        target, smaps = f["target"][()], f["smaps"][()]
        assert f.attrs["noise_std"] == pytest.approx(np.sqrt(np.mean(np.abs(target) ** 2)) / 10 ** 1.5, rel=1e-4)
    outside = np.abs(target).max(0) < 1e-3  # ESPIRiT maps vanish outside the object; the simulated ones do not
    assert outside.any() and np.median((np.abs(smaps[:, outside]) ** 2).sum(0)) < 0.5


@pytest.mark.parametrize("bad,message", [({"R": 0.5}, "acceleration R must be finite and >= 1"),
                                         ({"R": float("nan")}, "acceleration R must be finite"),
                                         ({"DATA": "missing.h5"}, "DATA file not found"),
                                         ({"N": 4}, "N must be an integer >= 8"),
                                         ({"COIL_MODEL": "helmholtz"}, "unknown coil model"),
                                         ({"COIL_MAPS": "sense"}, "unknown coil-map method")])
def test_01_bad_input_fails_clearly_and_keeps_outputs(tmp_path, bad, message):
    execute(NB01, {"R": 4, **SMALL}, tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(PapermillExecutionError, match=message):
        execute(NB01, {"R": 4, **SMALL, **bad}, tmp_path)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "01_data.failed.ipynb"}
    assert after == before


NB02 = NOTEBOOK_DIR / "02_global_inr.py"
NB03 = NOTEBOOK_DIR / "03_lambda_study.py"


def test_02_global_inr_small(tmp_path):
    execute(NB02, SMOKE_PARAMETERS["02_global_inr"], tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["methods"]) == {"ZF", "TV", "TV+S", "SIREN", "hashgrid", "lowrank", "INR"}
    for entry in m["methods"].values():
        assert {"psnr", "ssim", "nrmse", "rel_l1", "seconds"} <= set(entry)
    assert m["methods"]["INR"] == m["methods"]["lowrank"] and m["default_representation"] == "lowrank"
    for name in ("TV", "TV+S", "INR"):
        assert m["methods"][name]["psnr"] > m["methods"]["ZF"]["psnr"]
    assert m["methods"]["TV"]["log10_mu"] is None and m["methods"]["TV+S"]["log10_mu"] is not None
    # every search tried the extension past the starting grid's edge when its best sat there
    for name in ("TV", "TV+S", "lowrank"):
        tried = sorted({t["log_lambda"] for t in m["sweep"][name]})
        best = m["methods"][name]["log10_lambda"]
        assert m["methods"][name]["at_edge"] or min(tried) < best < max(tried)
    assert "PSNR against the target" in m["lambda_rule"]
    with h5py.File(tmp_path / "recon.h5") as f:
        assert {"ZF", "TV", "TV+S", "SIREN", "hashgrid", "lowrank", "INR", "target"} <= set(f)
        assert np.array_equal(f["INR"][()], f["lowrank"][()])
    assert (tmp_path / "psnr_vs_time.png").exists()


def test_02_kspace_file_without_target_or_coil_maps(tmp_path):
    """A user's scan: k-space and mask only. The maps are estimated (ESPIRiT) and recorded;
    the weights come from held-out lines."""
    from inr_utils import io
    from inr_utils.acquisition import simulate
    from inr_utils.phantom import phantom_cine

    acq = simulate(phantom_cine(8, 40, 40, seed=4), R=3, seed=4, coils=2)  # a calibration band ESPIRiT can use
    acq.target = None
    path = io.save_kspace(tmp_path / "notarget.h5", acq)
    with h5py.File(path, "a") as f:
        del f["smaps"]
    params = {**SMOKE_PARAMETERS["02_global_inr"], "DATA": str(path)}
    executed = execute(NB02, params, tmp_path / "out")
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["coil_maps"]["method"] == "espirit" and m["coil_maps"]["calibration_lines"] >= 8
    assert "coil maps: espirit" in executed.read_text()  # printed by the run
    assert "psnr" not in m["methods"]["INR"] and "seconds" in m["methods"]["INR"]
    assert "held-out" in m["lambda_rule"]
    with h5py.File(tmp_path / "out" / "recon.h5") as f:
        assert "target" not in f and f["INR"].shape == (8, 40, 40)


def test_03_lambda_study_small(tmp_path):
    execute(NB03, SMOKE_PARAMETERS["03_lambda_study"], tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("conditional", "separate"):
        assert set(m[key]) == {"-5", "-2.5", "0"} and all({"psnr", "objective", "data", "tv_t"} <= set(v) for v in m[key].values())
    for key in ("seconds_conditional", "seconds_separate", "auto_log10_lambda", "oracle_log10_lambda", "psnr_auto", "psnr_oracle"):
        assert np.isfinite(m[key])
    assert m["psnr_oracle"] >= m["psnr_auto"]
    assert m["representation"] == "hashgrid-lambda" and isinstance(m["smoothness_monotone"], bool)
    assert m["smoothness_monotone"] == (not m["smoothness_rises_on"])
    assert len(m["dense"]["temporal_fidelity"]) == len(m["dense"]["log10_lambda"]) == SMOKE_PARAMETERS["03_lambda_study"]["DENSE"]
    assert (tmp_path / "lambda_explorer_static.png").exists()


def test_03_kspace_file_without_target(tmp_path):
    """A user's scan without ground truth: no PSNR anywhere, but both forms' objective at the
    table's lambdas, in the record, its summary table and the printed lines."""
    from inr_utils import io
    from inr_utils.acquisition import simulate
    from inr_utils.phantom import phantom_cine

    acq = simulate(phantom_cine(6, 16, 16, seed=2), R=3, seed=2, coils=2)
    acq.target = None
    path = io.save_kspace(tmp_path / "notarget.h5", acq)
    executed = execute(NB03, {**SMOKE_PARAMETERS["03_lambda_study"], "DATA": str(path)}, tmp_path / "out")
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key in ("conditional", "separate"):
        assert all("psnr" not in v and np.isfinite(v["objective"]) for v in m[key].values())
    assert "psnr_auto" not in m and np.isfinite(m["auto_log10_lambda"]) and m["methods"] == {}
    titles = [t["title"] for t in m["summary"]["tables"]]
    assert len(titles) == 1 and titles[0].startswith("Lambda study: the objective")
    assert "objective J conditional / separate" in executed.read_text()


def test_03_lambda_study_refuses_an_unknown_representation(tmp_path):
    with pytest.raises(Exception, match="REPRESENTATION must be one of"):
        execute(NB03, {**SMOKE_PARAMETERS["03_lambda_study"], "REPRESENTATION": "lowrank"}, tmp_path)
    assert not (tmp_path / "metrics.json").exists()


NB04 = NOTEBOOK_DIR / "04_liif_2d_vs_3d.py"
NB05 = NOTEBOOK_DIR / "05_liif_architecture_search.py"
LIIF_KEYS = {"rel_l1", "psnr", "ssim", "nrmse", "temporal_fidelity", "train_seconds", "infer_seconds"}


def test_04_liif_2d_vs_3d_small(tmp_path):
    execute(NB04, {**SMOKE_PARAMETERS["04_liif_2d_vs_3d"], "EPOCHS": 3}, tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["methods"]) == {"ZF", "2D-C8", "2D-C64", "3D-C16"}
    assert all(LIIF_KEYS <= set(v) for v in m["methods"].values())
    # three epochs end at the cap (the plateau rule waits for MIN_EPOCHS); the summary says so
    assert all(m["methods"][n]["stop"] == "reached the most epochs (3)" and np.isfinite(m["methods"][n]["last_quarter_gain"])
               for n in ("2D-C8", "2D-C64", "3D-C16"))
    assert m["summary"]["targets"][0]["value"].startswith("0 of 3: 2D-C8 epoch cap (3), last quarter ")
    assert (tmp_path / "models" / "3D-C16.pt").exists() and (tmp_path / "checkpoints" / "3D-C16.pt").exists()


def test_05_architecture_search_small_and_summary(tmp_path):
    from inr_utils import liif

    # T_low = 2: the defaults (periodic time padding, two DC stages, final DC, bfloat16 where fast);
    # T_low = 4: the original's plain encoders in float32
    plain = {"CIRCULAR_TIME": False, "DC_CASCADE": [], "FINAL_DC": False, "BF16": False}
    for t_low in (2, 4):
        params = {**SMOKE_PARAMETERS["05_liif_architecture_search"], "T_LOW": t_low, **(plain if t_low == 4 else {})}
        execute(NB05, params, tmp_path / f"R6_T{t_low}")
        m = json.loads((tmp_path / f"R6_T{t_low}" / "metrics.json").read_text())
        assert m["T_low"] == t_low and set(m["methods"]) == {"RDN", "UNet", "TV", "ZF"}
        assert all(LIIF_KEYS <= set(v) for v in m["methods"].values())
        assert m["epochs"] == 2 and m["bf16"] == (t_low == 2 and liif.bf16_supported()) and m["device"] == "cpu"
        for name in ("UNet", "RDN"):
            model = liif.load_model(tmp_path / f"R6_T{t_low}" / "models" / f"{name}.pt")
            cfg = model.config
            assert cfg.encoder.circular == (t_low == 2) and cfg.final_dc == (t_low == 2)
            assert (cfg.dc_cascade, cfg.dc_stages) == (((4,), 2) if t_low == 2 else ((), 0))
            assert len(model.dc_cnns) == (2 if t_low == 2 else 0) and cfg.bf16 == m["bf16"]
    table = liif.summary_table(tmp_path)
    assert table.count("\n") == 3 and "| 6 | 4 |" in table


@pytest.mark.parametrize("notebook", sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_parameters_cell_is_documented_by_papermill(notebook):
    """One flat parameters cell; papermill's --help-notebook parses every line (type, default,
    help) and the contract parameters R, SEED, DATA, OUT_DIR are there."""
    import jupytext
    from papermill.translators import PythonTranslator

    cells = [c for c in jupytext.read(notebook).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    lines = [l for l in cells[0].source.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    params = PythonTranslator.inspect(cells[0])
    assert len(params) == len(lines), "papermill could not parse some parameter lines"
    assert all(p.help and p.inferred_type_name != "None" for p in params)
    assert {"R", "SEED", "DATA", "OUT_DIR"} <= {p.name for p in params}
