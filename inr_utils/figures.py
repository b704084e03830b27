"""The original's figure set for any named reconstructions, plus a comparison grid.

Per method (files under ``<folder>/<name>/``): ``mag.gif``, ``phase.gif``,
``half_T_mag.png``, ``half_T_phase.png``, ``half_T_mag_error.png`` (|x| - |target|
at T/2; not for the target itself) and ``half_H_mag.png`` (x-t profile: row H/2 over
time). Magnitudes share one grey scale, [0, peak of the target].
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np

GIF_FPS = 10
#: error panels of the comparison grid span +-ERROR_RANGE x the target's peak
ERROR_RANGE = 0.15


def _to_uint8(img, vmin, vmax):
    return (np.clip((img - vmin) / max(vmax - vmin, 1e-12), 0, 1) * 255).round().astype(np.uint8)


def save_gif(path, frames_uint8, fps: int = GIF_FPS):
    iio.imwrite(path, frames_uint8, extension=".gif", duration=1000 / fps, loop=0)


def magnitude_gif(path, cine, vmax, fps: int = GIF_FPS):
    save_gif(path, _to_uint8(np.abs(cine), 0, vmax), fps)


def phase_gif(path, cine, fps: int = GIF_FPS):
    rgb = (plt.get_cmap("twilight")((np.angle(cine) + np.pi) / (2 * np.pi))[..., :3] * 255).astype(np.uint8)
    save_gif(path, rgb, fps)


def _save_image(path, img, cmap, vmin, vmax, title, xlabel="x", ylabel="y", cbar_label=""):
    fig, ax = plt.subplots(figsize=(3.4, 3.0), dpi=100)
    im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto" if ylabel == "t" else "equal",
                   interpolation="nearest")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=cbar_label)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def figure_set(folder, name: str, cine, target=None, peak: Optional[float] = None) -> dict:
    """Write the original's figures for one reconstruction; returns {figure: path}."""
    folder = Path(folder) / name
    folder.mkdir(parents=True, exist_ok=True)
    cine = np.asarray(cine)
    T, H, _ = cine.shape
    peak = peak or float(np.abs(target if target is not None else cine).max())
    t2, h2 = T // 2, H // 2
    paths = {"mag_gif": folder / "mag.gif", "phase_gif": folder / "phase.gif",
             "half_T_mag": folder / "half_T_mag.png", "half_T_phase": folder / "half_T_phase.png",
             "half_H_mag": folder / "half_H_mag.png"}
    magnitude_gif(paths["mag_gif"], cine, peak)
    phase_gif(paths["phase_gif"], cine)
    _save_image(paths["half_T_mag"], np.abs(cine[t2]), "gray", 0, peak, f"{name}: |x| at t = T/2", cbar_label="magnitude")
    _save_image(paths["half_T_phase"], np.angle(cine[t2]), "twilight", -np.pi, np.pi, f"{name}: phase at T/2",
                cbar_label="rad")
    _save_image(paths["half_H_mag"], np.abs(cine[:, h2, :]), "gray", 0, peak, f"{name}: x-t at y = H/2",
                ylabel="t", cbar_label="magnitude")
    if target is not None and cine is not target:
        err = np.abs(cine[t2]) - np.abs(np.asarray(target)[t2])
        lim = max(float(np.abs(err).max()), 1e-6)
        paths["half_T_mag_error"] = folder / "half_T_mag_error.png"
        _save_image(paths["half_T_mag_error"], err, "RdBu_r", -lim, lim, f"{name}: |x| - |target| at T/2",
                    cbar_label="error")
    return paths


def figure_sets(folder, recons: Mapping[str, np.ndarray], target=None) -> dict:
    """``figure_set`` for every named reconstruction (target first as 'Original')."""
    peak = float(np.abs(target).max()) if target is not None else None
    out = {}
    if target is not None:
        out["Original"] = figure_set(folder, "Original", target, None, peak)
    for name, cine in recons.items():
        out[name] = figure_set(folder, name, cine, target, peak)
    return out


def _format_metrics(m: Optional[Mapping]) -> str:
    if not m:
        return ""
    labels = {"psnr": "PSNR {:.2f} dB", "ssim": "SSIM {:.3f}", "nrmse": "NRMSE {:.3f}", "rel_l1": "rel L1 {:.3f}",
              "temporal_fidelity": "temp. fid. {:.2f}", "temporal_correlation": "temp. corr. {:.2f}",
              "seconds": "{:.1f} s"}
    return "\n".join(fmt.format(m[k]) for k, fmt in labels.items() if k in m and m[k] is not None)


def comparison_grid(path, recons: Mapping[str, np.ndarray], target=None, metrics: Optional[Mapping] = None,
                    title: str = "") -> Path:
    """One figure: a row per method (Original first) with |x| at T/2, phase at T/2,
    error at T/2, x-t profile at H/2, and the method's metrics printed beside it."""
    rows = ([("Original", target)] if target is not None else []) + list(recons.items())
    peak = float(np.abs(target).max()) if target is not None else max(float(np.abs(c).max()) for _, c in rows)
    err_lim = ERROR_RANGE * peak  # one error scale for every row; larger errors saturate
    ncol = 5
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.6 * ncol, 2.5 * len(rows)), dpi=72, squeeze=False,
                             layout="constrained", gridspec_kw={"width_ratios": [1, 1, 1, 1.3, 0.9]})
    headers = ["|x| at T/2", "phase at T/2", "|x| - |target| at T/2", "x-t profile at H/2", "metrics"]
    for r, (name, cine) in enumerate(rows):
        cine = np.asarray(cine)
        T, H, _ = cine.shape
        ax = axes[r]
        ax[0].imshow(np.abs(cine[T // 2]), cmap="gray", vmin=0, vmax=peak)
        ax[1].imshow(np.angle(cine[T // 2]), cmap="twilight", vmin=-np.pi, vmax=np.pi)
        if target is not None and name != "Original":
            im_err = ax[2].imshow(np.abs(cine[T // 2]) - np.abs(target[T // 2]), cmap="RdBu_r", vmin=-err_lim, vmax=err_lim)
            fig.colorbar(im_err, ax=ax[2], fraction=0.046, pad=0.02, extend="both")
        ax[3].imshow(np.abs(cine[:, H // 2, :]), cmap="gray", vmin=0, vmax=peak, aspect="auto")
        ax[3].set_ylabel("t (frame)")
        if r == len(rows) - 1:
            ax[3].set_xlabel("x (pixel)")
        ax[0].set_ylabel(name, fontsize=12, fontweight="bold")
        ax[4].text(0.02, 0.5, _format_metrics((metrics or {}).get(name)), va="center", ha="left", fontsize=10,
                   family="monospace", transform=ax[4].transAxes)
        for j, a in enumerate(ax):
            if r == 0:
                a.set_title(headers[j], fontsize=10)
            a.set_xticks([])
            if j != 3:
                a.set_yticks([])
            if j == 4 or (j == 2 and (target is None or name == "Original")):
                a.axis("off")
                if r == 0:
                    a.set_title(headers[j], fontsize=10)
    if title:
        fig.suptitle(title)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def seconds_label(threads: int) -> str:
    """The time axis of ``psnr_vs_time``, with the thread count the fits ran with."""
    return f"fit seconds, PSNR monitoring excluded ({threads} CPU thread{'s' if threads != 1 else ''})"


def psnr_vs_time(path, histories: Mapping[str, object], title: str = "PSNR against wall-clock time") -> Path:
    """PSNR (dB) against seconds for each iterative method's FitHistory; the axis names torch's
    thread count, the fits' own when drawn by the process that ran them (as the notebooks do)."""
    import torch

    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=100)
    for name, h in histories.items():
        pts = [(s, p) for s, p in zip(h.seconds, h.psnr) if p is not None]
        if pts:
            ax.plot(*zip(*pts), marker=".", label=name)
    ax.set(xlabel=seconds_label(torch.get_num_threads()), ylabel="PSNR (dB)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def learning_curves(path, histories: Mapping[str, Mapping], title: str = "validation error while training",
                    reference: Optional[Mapping[str, float]] = None) -> Path:
    """Validation relative L1 of each LIIF model against epoch and against training seconds
    (training histories of ``liif.train``); ``reference``: horizontal lines (e.g. ZF's and
    TV's validation error), by name. The epoch where a model stopped is marked with its reason."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), dpi=100)
    for name, h in histories.items():
        seconds = np.cumsum(h["seconds"])
        for ax, x in zip(axes, (h["epoch"], seconds)):
            line, = ax.plot(x, h["val"], marker=".", label=f"{name} ({len(h['val'])} epochs)")
            if h.get("stop", "").startswith("plateau"):
                ax.plot(x[-1], h["val"][-1], marker="s", ms=8, mfc="none", color=line.get_color())
    for ax, xlabel in zip(axes, ("epoch", "training seconds (cumulative)")):
        for name, value in (reference or {}).items():
            ax.axhline(value, ls="--", lw=1, color="gray")
            ax.annotate(name, (0.99, value), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=8)
        ax.set(xlabel=xlabel, ylabel="validation relative L1", yscale="log")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(title="square: stopped at a plateau", fontsize=8, title_fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def original_table(out, recons: Mapping[str, np.ndarray], target=None, metrics: Optional[Mapping] = None,
                   title: str = "", show: bool = True) -> Path:
    """The original's table for a run: the figure set of every row under ``figures/`` and
    the comparison grid ``comparison.png`` (paths from ``out``, a RunOutputs), shown inline."""
    figure_sets(out.path("figures"), {name.replace("log10 lambda=", "lam_"): x for name, x in recons.items()}, target)
    grid = comparison_grid(out.path("comparison.png"), recons, target, metrics or None, title=title)
    if show:
        plt.figure(figsize=(13, 2.6 * (len(recons) + 1)))
        plt.imshow(plt.imread(grid))
        plt.axis("off")
        plt.show()
    return grid
