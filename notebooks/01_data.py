# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Data: a simulated accelerated multi-coil cine acquisition
#
# Every later notebook reconstructs from what this one builds: a complex cine
# (magnitude x smooth random phase), coil sensitivities, one variable-density
# Cartesian mask per frame at acceleration **R** (phase-encode lines along the last
# axis W), complex Gaussian noise, and the zero-filled (ZF) reconstruction A^H y.
# It writes `case.h5` in the project's k-space layout (see README), `metrics.json`
# with the ZF numbers, and the original's figure set.

# %%
from typing import Optional

import json
import time

import matplotlib.pyplot as plt
import numpy as np

from inr_utils import figures, io, metrics
from inr_utils.acquisition import check_acceleration
from inr_utils.fourier import fft2c
from inr_utils.runs import RunOutputs, check_int, resolve_out_dir

# %% tags=["parameters"]
R: float = 6  # acceleration factor (ignored when DATA is a k-space file: its own mask is used)
SEED: int = 0  # seed for subject, phase, coil maps, masks and noise
DATA: Optional[str] = None  # None: phantom; "sunnybrook" or "sunnybrook:<patient>/<slice>"; or a file path
T: int = 20  # number of frames (image cines are resampled periodically in time)
N: int = 128  # image size N x N
COILS: int = 4  # number of receive coils
NOISE_STD: float = 1e-3  # complex noise std on sampled k-space (images peak near 1)
SNR_DB: Optional[float] = None  # None: NOISE_STD; else the noise of this image SNR, 20 log10(rms|image| / sigma) (30: a realistic scan)
COIL_MODEL: str = "gaussian"  # simulated coils: "gaussian" (the project's smooth profiles) or "birdcage" (an ideal birdcage coil)
COIL_MAPS: Optional[str] = None  # None: the maps that simulated the data; "espirit", "lowres" or "nlinv" (BART): estimated from the undersampled data
MASK_STYLE: str = "vd"  # "vd" (achieved R exact to half a line) or "original" (R in 2, 3, 4, 6)
OUT_DIR: Optional[str] = None  # None: outputs/01_data/R<R>[_<data>][_seed<SEED>]/

# %% [markdown]
# ## Check the parameters
# Bad values stop here, before anything is written.

# %%
R = check_acceleration(R)
SEED, T, N, COILS = check_int("SEED", SEED, 0), check_int("T", T, 2), check_int("N", N, 8), check_int("COILS", COILS)
if not (np.isfinite(NOISE_STD) and NOISE_STD >= 0):
    raise ValueError(f"NOISE_STD must be finite and >= 0, got {NOISE_STD!r}")
t_start = time.perf_counter()
acq = io.load_case(DATA, R=R, seed=SEED, T=T, N=N, coils=COILS, noise_std=NOISE_STD, mask_style=MASK_STYLE,
                   coil_model=COIL_MODEL, snr_db=SNR_DB, coil_maps=COIL_MAPS)
out = RunOutputs(resolve_out_dir(OUT_DIR, "01_data", R, DATA, SEED))
coil_record = acq.meta.get("coil_maps", {"method": f"simulated ({COIL_MODEL})", "calibration_lines": None})
print(f"source: {acq.meta.get('source')}  |  kspace {acq.kspace.shape}  |  noise std {acq.noise_std:.3g}  |  "
      f"coil maps: {coil_record['method']}" + (f" from {coil_record['calibration_lines']} calibration lines"
                                               if coil_record["calibration_lines"] else "") + f"  |  writing to {out.out_dir}")

# %% [markdown]
# ## Ground truth
# The target cine (when the data has one): magnitude frames across the cycle and its phase at T/2.

# %%
target = acq.target
if target is not None:
    Tn = target.shape[0]
    show = np.linspace(0, Tn - 1, 5).round().astype(int)
    fig, axes = plt.subplots(1, 6, figsize=(17, 3))
    for a, k in zip(axes, show):
        im = a.imshow(np.abs(target[k]), cmap="gray", vmin=0, vmax=np.abs(target).max())
        a.set_title(f"|target|, frame {k}")
    fig.colorbar(im, ax=axes[4], fraction=0.046)
    im = axes[5].imshow(np.angle(target[Tn // 2]), cmap="twilight", vmin=-np.pi, vmax=np.pi)
    axes[5].set_title("phase at T/2")
    fig.colorbar(im, ax=axes[5], fraction=0.046, label="rad")
    plt.show()
else:
    print("this data has no target: metrics are not computed")

# %% [markdown]
# ## Coil sensitivities
# Magnitude of each coil map; they are normalised so that sum_c |S_c|^2 = 1 (estimated
# ESPIRiT maps: inside the object, zero outside it).

# %%
C = acq.smaps.shape[0]
fig, axes = plt.subplots(1, C + 1, figsize=(3 * (C + 1), 3), squeeze=False)
for c in range(C):
    im = axes[0, c].imshow(np.abs(acq.smaps[c]), cmap="viridis", vmin=0, vmax=1)
    axes[0, c].set_title(f"|S_{c}|")
im = axes[0, C].imshow((np.abs(acq.smaps) ** 2).sum(0), cmap="viridis", vmin=0, vmax=1.05)
axes[0, C].set_title("sum |S_c|^2")
fig.colorbar(im, ax=axes[0, C], fraction=0.046)
plt.show()

# %% [markdown]
# ## Sampling masks
# One 1-D variable-density mask per frame (rows) over phase-encode lines (columns).
# The **achieved** acceleration is T*W / (lines sampled) over the whole cine.

# %%
achieved_R = acq.achieved_acceleration
fig, axes = plt.subplots(1, 2, figsize=(12, 3), gridspec_kw={"width_ratios": [3, 1]})
axes[0].imshow(acq.mask, cmap="gray", aspect="auto", interpolation="nearest")
axes[0].set(xlabel="phase-encode line (W)", ylabel="frame", title=f"masks: requested R = {acq.acceleration:g}, achieved R = {achieved_R:.3f}")
axes[1].plot(acq.mask.mean(0))
axes[1].set(xlabel="phase-encode line", ylabel="sampling probability", title="empirical density")
plt.show()
print(f"requested R = {acq.acceleration:g}, achieved R = {achieved_R:.4f}")

# %% [markdown]
# ## k-space and the zero-filled reconstruction
# Log magnitude of coil 0 at T/2 (fully sampled vs measured), then ZF = A^H y and its error.

# %%
zf = acq.zero_filled()
t2 = zf.shape[0] // 2
fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
if target is not None:
    full = fft2c(target[t2] * acq.smaps[0])
    im = axes[0].imshow(np.log10(np.abs(full) + 1e-6), cmap="magma", vmin=-5)
    axes[0].set_title("log10 |k| coil 0, fully sampled")
    fig.colorbar(im, ax=axes[0], fraction=0.046)
im = axes[1].imshow(np.log10(np.abs(acq.kspace[t2, 0]) + 1e-6), cmap="magma", vmin=-5)
axes[1].set_title("log10 |k| coil 0, measured")
fig.colorbar(im, ax=axes[1], fraction=0.046)
peak = np.abs(target).max() if target is not None else np.abs(zf).max()
im = axes[2].imshow(np.abs(zf[t2]), cmap="gray", vmin=0, vmax=peak)
axes[2].set_title("|ZF| at T/2")
fig.colorbar(im, ax=axes[2], fraction=0.046)
if target is not None:
    err = np.abs(zf[t2]) - np.abs(target[t2])
    lim = np.abs(err).max()
    im = axes[3].imshow(err, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[3].set_title("|ZF| - |target| at T/2")
    fig.colorbar(im, ax=axes[3], fraction=0.046)
for a in axes:
    a.set_xlabel("x (W)"); a.set_ylabel("y (H)")
plt.show()

# %% [markdown]
# ## Numbers and files
# ZF metrics on magnitudes over the whole cine (definitions in `inr_utils.metrics`),
# then `case.h5`, `metrics.json` and the figure set, published together at the end.

# %%
result = {"R": acq.acceleration, "achieved_R": achieved_R, "seed": SEED, "data": io.data_label(DATA),
          "shape": list(acq.kspace.shape), "noise_std": acq.noise_std, "coil_maps": coil_record, "methods": {}}
recons = {"ZF": zf}
if target is not None:
    result["methods"]["ZF"] = metrics.all_metrics(zf, target)
    print(json.dumps(result["methods"], indent=2))
io.save_kspace(out.path("case.h5"), acq)
figures.original_table(out, recons, target, result["methods"], f"01 data: R = {acq.acceleration:g} (achieved {achieved_R:.2f})", show=False)
result["seconds"] = time.perf_counter() - t_start
out.write_json("metrics.json", result)
written = out.commit()
print("wrote:", *[str(p.relative_to(out.out_dir)) for p in written if "figures" not in p.parts], "+ figures/")
