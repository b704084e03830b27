import numpy as np

from inr_utils import figures


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
