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


@pytest.mark.parametrize("bad,message", [({"R": 0.5}, "acceleration R must be finite and >= 1"),
                                         ({"R": float("nan")}, "acceleration R must be finite"),
                                         ({"DATA": "missing.h5"}, "DATA file not found"),
                                         ({"N": 4}, "N must be an integer >= 8")])
def test_01_bad_input_fails_clearly_and_keeps_outputs(tmp_path, bad, message):
    execute(NB01, {"R": 4, **SMALL}, tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(PapermillExecutionError, match=message):
        execute(NB01, {"R": 4, **SMALL, **bad}, tmp_path)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "01_data.failed.ipynb"}
    assert after == before
