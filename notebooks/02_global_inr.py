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
# # 02 · Global INR: one scan, data consistency, temporal and spatial TV
#
# A scan-specific implicit neural representation f_theta(t, y, x) is fitted to one
# scan's k-space (no training set):
#
#   min_theta 0.5 ||A f_theta - y||^2 + lambda TV_t(f_theta) + mu TV_s(f_theta)
#
# with TV_t = sum |f(t+1) - f(t)| (circular) and TV_s the isotropic spatial TV (mu = 0:
# the original's objective). Rows: the ground truth (**Original**), zero filling (**ZF**),
# explicit-voxel compressed sensing with temporal TV (**TV**, the original's baseline) and
# with temporal + spatial TV (**TV+S**, the priors of BART's `-R W -R T`), the original
# system's network (**SIREN**, 16 x 256 sine MLP; on a CPU only a short, time-boxed run),
# a neural field (**hashgrid**: multi-resolution hash-grid encoding + small MLP) and the
# low-rank grid representation (**lowrank**). `INR` is the row of `REPRESENTATION`.
# Weights are relative to the zero-filled image's peak and chosen by one search for
# every method (`inr_utils.selection`).

# %%
from typing import Optional

import matplotlib.pyplot as plt

from inr_utils import figures, io
from inr_utils.acquisition import check_acceleration
from inr_utils.global_study import GlobalStudy, GlobalStudyConfig, SirenBudget, write_recons
from inr_utils.runs import RunOutputs, resolve_out_dir

# %% tags=["parameters"]
R: float = 6  # acceleration factor (ignored when DATA is a k-space file)
SEED: int = 0  # seed for the simulated scan and for every fit
DATA: Optional[str] = None  # None: phantom; "sunnybrook[:<patient>/<slice>]"; or a k-space / image file
T: int = 20  # frames (simulated data)
N: int = 128  # image size N x N (simulated data)
COILS: int = 4  # receive coils (simulated data)
REPRESENTATION: str = "lowrank"  # the default INR: its row is also `INR` in metrics.json
INR_ROWS: list = ["hashgrid", "lowrank"]  # representations fitted, one row each (see inr_utils.inr.REPRESENTATIONS)
STEPS: Optional[int] = None  # Adam steps of every INR row; None: each representation's default (inr.default_settings)
LR: Optional[float] = None  # learning rate of every INR row; None: each representation's default
RANK: Optional[int] = None  # rank of the lowrank representation; None: min(16, T)
MAP_GRID: Optional[int] = None  # coil maps refined with each TV and INR row's image on a MAP_GRID x MAP_GRID grid; None: N/8 when the maps are estimates, 0 (none) with a simulation's own
LOG_LAMBDAS: Optional[list] = None  # starting log10(lambda / data scale) candidates of every search; None: per method
LOG_MUS: Optional[list] = None  # starting log10(mu / data scale) candidates (spatial rows); None: per method
SEARCH_STEP: float = 0.5  # grid step in log10 of the search's extensions
MAX_EXTEND: int = 4  # candidates the search may add past an edge, per pass
SEARCH_EXTRA_ROWS: bool = False  # True: INR rows other than REPRESENTATION get their own search (slow); False: they reuse its weights
TV_ITERS: int = 1000  # primal-dual iterations of TV and TV+S
SIREN_HIDDEN: int = 256  # the original: 256
SIREN_LAYERS: int = 16  # the original: 16
SIREN_LR: float = 1e-4  # the original: 1e-4 to 1e-3
SIREN_FRAMES: int = 2  # frames per SIREN step (the whole cine does not fit a CPU step)
SIREN_SECONDS: float = 60  # training-time budget of the SIREN run, PSNR monitoring not counted (a full run: hours on a GPU)
SIREN_STEPS: int = 100000  # step cap of the SIREN run
SIREN_LOG_EVERY: int = 8  # SIREN steps between PSNR checks (each renders the whole cine, which costs many steps on a CPU)
HOLDOUT: float = 0.1  # fraction of sampled lines held out to choose the weights when DATA has no target
DEVICE: str = "cpu"  # where the networks fit: "cpu", "cuda", "cuda:<n>" or "auto" (a GPU when present)
OUT_DIR: Optional[str] = None  # None: outputs/02_global_inr/R<R>[_<data>][_seed<SEED>]/

# %% [markdown]
# ## Check the parameters and load the scan
# Same `DATA` rules as notebook 01. A k-space file without `target` is reconstructed
# and written, with the weights chosen on held-out lines and no metrics.

# %%
config = GlobalStudyConfig(
    representation=REPRESENTATION, inr_rows=INR_ROWS, steps=STEPS, lr=LR, rank=RANK, map_grid=MAP_GRID,
    log_lambdas=LOG_LAMBDAS, log_mus=LOG_MUS, search_step=SEARCH_STEP, max_extend=MAX_EXTEND, search_extra_rows=SEARCH_EXTRA_ROWS,
    tv_iters=TV_ITERS, siren=SirenBudget(SIREN_HIDDEN, SIREN_LAYERS, SIREN_LR, SIREN_FRAMES, SIREN_SECONDS, SIREN_STEPS,
                                         SIREN_LOG_EVERY),
    holdout=HOLDOUT, device=DEVICE, seed=SEED)
acq = io.load_case(DATA, R=check_acceleration(R), seed=config.seed, T=T, N=N, coils=COILS)
out = RunOutputs(resolve_out_dir(OUT_DIR, "02_global_inr", R, DATA, SEED))
study = GlobalStudy(acq, config, DATA)
print(study.describe())

# %% [markdown]
# ## Compressed sensing on explicit voxels: temporal TV, then temporal + spatial TV
# Primal-dual (Condat-Vu) iterations (`inr_utils.tv`); the original's code multiplied data
# and TV terms, this adds them. Each row's weights come from the same search. When the coil
# maps are estimates, both rows refine them jointly with the image, as the INR rows below do
# (`MAP_GRID`): one rule for every method.

# %%
study.classical()

# %% [markdown]
# ## The INRs: a low-rank grid representation and a hash-grid neural field
# `lowrank`: f(t, y, x) = sum_k S_k(y, x) T_k(t), complex multi-resolution spatial grids times
# periodic Fourier series in time. `hashgrid`: an Instant-NGP-style multi-resolution grid
# encoding of (t, y, x), dense at coarse levels and hashed at fine ones, periodic in t,
# followed by a small MLP with complex output, added to a learnt static image. Both start
# from the zero-filled cine's temporal mean (with per-frame masks it has seen every sampled
# line), so the fit is left with the motion and the aliasing. Sizes and steps default from
# the cine's shape (`inr.default_settings`); both fit with Adam and the spatial + temporal TV.
# `REPRESENTATION` gets the search; the other rows reuse its weights unless
# `SEARCH_EXTRA_ROWS` (each search is about ten fits). When the coil maps are estimates
# (from the data, or given by a k-space file) every INR row also refines them, a smooth
# per-coil correction fitted with the image (`MAP_GRID`, `inr.CoilMapRefinement`), as TV and
# TV+S did above.

# %%
study.inrs()

# %% [markdown]
# ## The original's SIREN, time-boxed
# 16 hidden layers of 256 sines (omega_0 = 30), trained on blocks of `SIREN_FRAMES`
# frames per step at the default INR's weights. On two CPU cores one step takes seconds, so this
# row shows how far the original network gets in `SIREN_SECONDS`; set a GPU `DEVICE` and
# a large budget for the full run.

# %%
study.siren()

# %% [markdown]
# ## Results
# Metrics on magnitudes over the whole cine; `seconds` is the wall time of the fit that
# produced the row (the weight search is reported separately as `seconds_sweep`).

# %%
result = study.result()
recons, target = result.recons, acq.target
if target is not None:
    print(f"{'method':8s} {'PSNR':>7s} {'SSIM':>6s} {'NRMSE':>6s} {'relL1':>6s} {'tfid':>5s} {'sec':>6s}")
    for name, m in result.record["methods"].items():
        print(f"{name:8s} {m['psnr']:7.2f} {m['ssim']:6.3f} {m['nrmse']:6.3f} {m['rel_l1']:6.3f} {m['temporal_fidelity']:5.2f} {m['seconds']:6.1f}")

# %% [markdown]
# ## Figures: the original's set per row, the comparison grid, PSNR against time

# %%
figures.original_table(out, recons, target, result.record["methods"] if target is not None else None,
                       f"02 global INR: R = {acq.acceleration:g}")
if target is not None:
    figures.psnr_vs_time(out.path("psnr_vs_time.png"), result.histories, title=f"PSNR vs fit time (monitoring excluded), R = {acq.acceleration:g}")
    display_img = plt.imread(out.path("psnr_vs_time.png"))
    plt.figure(figsize=(7, 4.5)); plt.imshow(display_img); plt.axis("off"); plt.show()

# %% [markdown]
# ## Write the reconstructions and the numbers
# `recon.h5`: one (T, H, W) complex64 dataset per method, `INR` (the default representation)
# and `target` when known.

# %%
write_recons(out.path("recon.h5"), recons, config.representation, target, acq.acceleration)
result.record["history"] = {k: h.as_dict() for k, h in result.histories.items()}
out.write_json("metrics.json", result.record)
written = out.commit()
print("wrote", len(written), "files to", out.out_dir)
