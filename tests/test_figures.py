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


def test_psnr_vs_time_names_the_threads_the_fits_ran_with(tmp_path, monkeypatch):
    """The time axis says how many CPU threads the fits had (by default torch's count in the
    process that draws it, which ran them), not a fixed number."""
    import torch

    from inr_utils.history import FitHistory

    assert figures.seconds_label(1).endswith("(1 CPU thread)") and figures.seconds_label(2).endswith("(2 CPU threads)")
    labels = []
    real_set = figures.plt.Axes.set
    monkeypatch.setattr(figures.plt.Axes, "set", lambda self, **kw: (labels.append(kw.get("xlabel")), real_set(self, **kw))[1])
    h = FitHistory()
    h.seconds, h.psnr = [0.5, 1.0], [20.0, 25.0]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        path = figures.psnr_vs_time(tmp_path / "p.png", {"fit": h})
    finally:
        torch.set_num_threads(threads)
    assert path.stat().st_size > 5_000 and labels == [figures.seconds_label(1)]
