"""Explore a lambda-conditional representation f(lambda, t, y, x) over continuous lambda.

``render_at`` evaluates the network at any log10(lambda) inside the range it was trained on;
``draw_panel`` draws one state of the explorer (the frame, the x-t profile at row H/2 and,
with a target, the PSNR at that lambda marked on the dense curve); ``interactive`` wires it
to two ipywidgets sliders (log10 lambda, continuous; frame) for JupyterLab, and
``static_panel`` draws a few lambdas side by side for headless runs.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from torch import nn

from . import metrics
from .inr import render_numpy


#: set to 1 by headless executions (``pipeline.execute``, hence ``make reproduce`` and sweeps, and
#: the test suite): the notebook then shows only the static panel. With no front end the
#: widgets cannot be used, and displaying them through an Output widget under papermill can
#: leave its client waiting without end for a cell the kernel has finished.
HEADLESS_ENV = "INR_HEADLESS"


def has_frontend() -> bool:
    """Whether the sliders can be shown: an IPython kernel, and not a headless run (``HEADLESS_ENV``)."""
    if os.environ.get(HEADLESS_ENV, "").strip().lower() in ("1", "true", "yes"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def lambda_range(model: nn.Module) -> tuple[float, float]:
    """The (lo, hi) range of log10(lambda) a conditional model was trained on."""
    if not getattr(model, "conditional", False):
        raise ValueError(f"{type(model).__name__} does not take lambda as an input (not a conditional representation)")
    lo, hi = model.log_lambda_range
    return float(lo), float(hi)


def render_at(model: nn.Module, log_lambda: float) -> np.ndarray:
    """The cine (T, H, W) complex64 of a conditional model at log10(lambda) = ``log_lambda``,
    which must lie inside the model's training range (no extrapolation)."""
    lo, hi = lambda_range(model)
    try:
        value = float(log_lambda)
    except (TypeError, ValueError):
        raise ValueError(f"log10 lambda must be a number, got {log_lambda!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"log10 lambda = {log_lambda} is outside the range the network was trained on, [{lo:g}, {hi:g}]")
    return render_numpy(model, value)


def draw_panel(fig, model: nn.Module, log_lambda: float, frame: int, target: Optional[np.ndarray] = None, *,
               dense_log_lambda: Optional[Sequence[float]] = None, dense_psnr: Optional[Sequence[float]] = None,
               vmax: Optional[float] = None) -> np.ndarray:
    """Draw one explorer state into ``fig`` (cleared): |x| at ``frame``, the x-t profile of
    row H/2 and, with a target, PSNR against log10(lambda) (the dense curve and this lambda's
    value). Returns the rendered cine."""
    x = render_at(model, log_lambda)
    T, H, W = x.shape
    if not 0 <= int(frame) < T:
        raise ValueError(f"frame must be in [0, {T - 1}], got {frame}")
    mag = np.abs(x)
    vmax = float(vmax if vmax is not None else (np.abs(target).max() if target is not None else mag.max()))
    fig.clear()
    panels = 3 if target is not None else 2
    axes = fig.subplots(1, panels, gridspec_kw={"width_ratios": [1, 1.2, 1.3][:panels]})
    im = axes[0].imshow(mag[int(frame)], cmap="gray", vmin=0, vmax=vmax)
    axes[0].set(title=f"log10 lambda = {float(log_lambda):.2f}, frame {int(frame)}", xlabel="x", ylabel="y")
    fig.colorbar(im, ax=axes[0], fraction=0.046, pad=0.04, label="|x|")
    im = axes[1].imshow(mag[:, H // 2], cmap="gray", vmin=0, vmax=vmax, aspect="auto")
    axes[1].axhline(int(frame), color="C1", lw=0.8)
    axes[1].set(title=f"x-t profile at row {H // 2}", xlabel="x", ylabel="t (frame)")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04, label="|x|")
    if target is not None:
        value = metrics.psnr(x, target)
        if dense_log_lambda is not None and dense_psnr is not None:
            axes[2].plot(dense_log_lambda, dense_psnr, "-", color="C0", label="dense curve")
        axes[2].plot([float(log_lambda)], [value], "o", color="C1", ms=8, label=f"{value:.2f} dB here")
        axes[2].set(title="PSNR against lambda", xlabel="log10 lambda", ylabel="PSNR (dB)")
        axes[2].grid(alpha=0.3)
        axes[2].legend(loc="lower left")
    fig.tight_layout()
    return x


def static_panel(model: nn.Module, log_lambdas: Sequence[float], target: Optional[np.ndarray] = None, frame: Optional[int] = None):
    """Headless stand-in for the sliders: the frame (top) and the x-t profile at H/2 (bottom)
    at each of ``log_lambdas``, on one grey scale. Returns the figure."""
    cines = [np.abs(render_at(model, ll)) for ll in log_lambdas]
    T, H, W = cines[0].shape
    frame = T // 2 if frame is None else int(frame)
    vmax = float(np.abs(target).max()) if target is not None else max(float(c.max()) for c in cines)
    fig, axes = plt.subplots(2, len(cines), figsize=(2.6 * len(cines) + 1, 5.6), squeeze=False)
    for k, (ll, c) in enumerate(zip(log_lambdas, cines)):
        title = f"log10 lambda = {ll:.2f}" + (f"\n{metrics.psnr(c, target):.2f} dB" if target is not None else "")
        im = axes[0, k].imshow(c[frame], cmap="gray", vmin=0, vmax=vmax)
        axes[0, k].set(title=title, xticks=[], yticks=[])
        axes[1, k].imshow(c[:, H // 2], cmap="gray", vmin=0, vmax=vmax, aspect="auto")
        axes[1, k].set(xlabel="x", ylabel="t (frame)" if k == 0 else "")
        if k:
            axes[1, k].set_yticks([])
    axes[0, 0].set_ylabel(f"frame {frame}")
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.02, pad=0.02, label="|x|")
    return fig


def interactive(model: nn.Module, target: Optional[np.ndarray] = None, dense_log_lambda=None, dense_psnr=None,
                step: float = 0.05):
    """Sliders over log10(lambda) (continuous: each move renders the network) and the frame,
    driving ``draw_panel`` in a widget output. Needs ipywidgets and a live kernel front end."""
    import ipywidgets as widgets
    from IPython.display import display

    lo, hi = lambda_range(model)
    T = model.shape[0]
    vmax = float(np.abs(target).max()) if target is not None else None
    lam = widgets.FloatSlider(value=(lo + hi) / 2, min=lo, max=hi, step=step, description="log10 lambda",
                              continuous_update=False, readout_format=".2f")
    frame = widgets.IntSlider(value=T // 2, min=0, max=T - 1, description="frame")
    out = widgets.Output()
    with out:
        fig = plt.figure(figsize=(14, 4.2))
        plt.close(fig)  # drawn into the Output below, not by the inline backend at cell end

    def redraw(_=None):
        draw_panel(fig, model, lam.value, frame.value, target, dense_log_lambda=dense_log_lambda, dense_psnr=dense_psnr,
                   vmax=vmax)
        out.clear_output(wait=True)
        with out:
            display(fig)

    lam.observe(redraw, names="value")
    frame.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox([lam, frame]), out])
    display(box)
    return box
