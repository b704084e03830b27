"""The lambda explorer renders a conditional network at any lambda in its range and refuses others."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from inr_utils import explorer, inr


@pytest.fixture(scope="module", params=["hashgrid-lambda", "lowrank-lambda"])
def model(request):
    return inr.build(request.param, (5, 12, 10), log_lambda_range=(-4.0, 1.0))


@pytest.mark.parametrize("log_lambda", [-4.0, -3.37, -1.0, 0.5, 1.0])
def test_render_at_any_lambda_in_range(model, log_lambda):
    x = explorer.render_at(model, log_lambda)
    assert x.shape == (5, 12, 10) and np.iscomplexobj(x) and np.all(np.isfinite(x))


@pytest.mark.parametrize("bad", [-4.01, 1.5, float("nan"), float("inf"), "high"])
def test_render_refuses_lambda_outside_the_range(model, bad):
    with pytest.raises(ValueError, match=r"log10 lambda.*(outside the range the network was trained on, \[-4, 1\]|must be a number)"):
        explorer.render_at(model, bad)


def test_render_refuses_a_fixed_lambda_model():
    with pytest.raises(ValueError, match="does not take lambda as an input"):
        explorer.render_at(inr.build("hashgrid", (5, 12, 10)), -2.0)


def test_panels_draw_with_and_without_a_target(model):
    target = np.ones((5, 12, 10), np.complex64)
    fig = plt.figure()
    x = explorer.draw_panel(fig, model, -2.2, 3, target, dense_log_lambda=np.linspace(-4, 1, 6),
                           dense_psnr=np.linspace(10, 20, 6))
    assert x.shape == (5, 12, 10) and len(fig.axes) == 5  # frame, x-t, PSNR curve and two colour bars
    explorer.draw_panel(fig, model, -2.2, 0)
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="frame must be in"):
        explorer.draw_panel(fig, model, -2.2, 5)
    fig2 = explorer.static_panel(model, [-4, -1.5, 1], target)
    assert len(fig2.axes) == 7
    plt.close("all")


def test_sliders_only_with_a_kernel_and_never_in_headless_runs(monkeypatch):
    """No front end in plain Python; a kernel has one unless INR_HEADLESS=1 (which
    pipeline.execute gives the kernels of papermill runs)."""
    monkeypatch.delenv(explorer.HEADLESS_ENV, raising=False)
    assert not explorer.has_frontend()  # no IPython kernel here

    class KernelShell:
        kernel = object()

    monkeypatch.setattr("IPython.get_ipython", lambda: KernelShell())
    assert explorer.has_frontend()
    monkeypatch.setenv(explorer.HEADLESS_ENV, "1")
    assert not explorer.has_frontend()
