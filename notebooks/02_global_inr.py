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
# # 02 · Global INR: one scan, data consistency and temporal TV
#
# A scan-specific implicit neural representation f_theta(t, y, x) is fitted to one
# scan's k-space (no training set):
#
#   min_theta 0.5 ||A f_theta - y||^2 + lambda * sum |f_theta(t+1) - f_theta(t)|
#
# Rows: the ground truth (**Original**), zero filling (**ZF**), temporal-TV compressed
# sensing on explicit voxels (**TV**, the classical baseline), the original system's
# network (**SIREN**, 16 x 256 sine MLP; on a CPU only a short, time-boxed run) and the
# fast representation that is our CPU default (**INR**, a low-rank multi-resolution
# grid, see `inr_utils.inr`). TV and INR get their lambda by the same rule.

# %%
from typing import Optional

import time

import h5py
import matplotlib.pyplot as plt
import numpy as np
import torch

from inr_utils import figures, inr, io, metrics
from inr_utils.acquisition import check_acceleration
from inr_utils.runs import RunOutputs, check_int, resolve_out_dir
from inr_utils.selection import select_lambda
from inr_utils.tv import tv_recon

# %% tags=["parameters"]
R: float = 6  # acceleration factor (ignored when DATA is a k-space file)
SEED: int = 0  # seed for the simulated scan and for every fit
DATA: Optional[str] = None  # None: phantom; "sunnybrook[:<patient>/<slice>]"; or a k-space / image file
T: int = 20  # frames (simulated data)
N: int = 128  # image size N x N (simulated data)
COILS: int = 4  # receive coils (simulated data)
REPRESENTATION: str = "lowrank"  # registry name of the fast INR (see inr_utils.inr.REPRESENTATIONS)
RANK: int = 16  # rank of the low-rank representation
STEPS: int = 1000  # Adam steps of the fast INR
LR: float = 1e-2  # learning rate of the fast INR
LOG_LAMBDAS: list = [-4.0, -3.5, -3.0, -2.5, -2.0]  # candidate log10(lambda), for TV and INR alike
TV_ITERS: int = 1000  # primal-dual iterations of temporal TV
SIREN_HIDDEN: int = 256  # the original: 256
SIREN_LAYERS: int = 16  # the original: 16
SIREN_LR: float = 1e-4  # the original: 1e-4 to 1e-3
SIREN_FRAMES: int = 2  # frames per SIREN step (the whole cine does not fit a CPU step)
SIREN_SECONDS: float = 60  # training-time budget of the SIREN run, PSNR monitoring not counted (a full run: hours on a GPU)
SIREN_STEPS: int = 100000  # step cap of the SIREN run
SIREN_LOG_EVERY: int = 8  # SIREN steps between PSNR checks (each renders the whole cine: ~10 s on 2 CPU cores)
HOLDOUT: float = 0.1  # fraction of sampled lines held out to choose lambda when DATA has no target
DEVICE: str = "cpu"  # "cuda" to fit on a GPU
OUT_DIR: Optional[str] = None  # None: outputs/02_global_inr/R<R>[_<data>][_seed<SEED>]/

# %% [markdown]
# ## Check the parameters and load the scan
# Same `DATA` rules as notebook 01. A k-space file without `target` is reconstructed
# and written, with lambda chosen on held-out lines and no metrics.

# %%
R = check_acceleration(R)
SEED, STEPS, TV_ITERS, RANK = check_int("SEED", SEED, 0), check_int("STEPS", STEPS), check_int("TV_ITERS", TV_ITERS), check_int("RANK", RANK)
SIREN_LOG_EVERY = check_int("SIREN_LOG_EVERY", SIREN_LOG_EVERY)
if not LOG_LAMBDAS or not all(np.isfinite(LOG_LAMBDAS)):
    raise ValueError(f"LOG_LAMBDAS must be a non-empty list of finite numbers, got {LOG_LAMBDAS!r}")
if REPRESENTATION not in inr.REPRESENTATIONS:
    raise ValueError(f"REPRESENTATION {REPRESENTATION!r} is not registered; choose from {sorted(inr.REPRESENTATIONS)}")
torch.set_num_threads(max(torch.get_num_threads(), 1))
acq = io.load_case(DATA, R=R, seed=SEED, T=T, N=N, coils=COILS)
target = acq.target
out = RunOutputs(resolve_out_dir(OUT_DIR, "02_global_inr", R, DATA, SEED))
op, y = acq.op, torch.from_numpy(acq.kspace)
t0 = time.perf_counter()
zf = acq.zero_filled()
zf_seconds = time.perf_counter() - t0
print(f"source {acq.meta.get('source')} | kspace {acq.kspace.shape} | achieved R {acq.achieved_acceleration:.2f} | target: {target is not None}")

# %% [markdown]
# ## Temporal TV on explicit voxels (the classical baseline)
# Primal-dual (Condat-Vu) iterations on 0.5 ||A x - y||^2 + lambda TV_t(x), added, not
# multiplied as in the original code; lambda from the candidates by the rule printed.

# %%
def tv_fit(op_, y_, ll, tgt):
    return tv_recon(op_, y_, 10.0 ** ll, iters=TV_ITERS, target=tgt, log_every=50)

tv_sel = select_lambda(tv_fit, acq, LOG_LAMBDAS, HOLDOUT, SEED)
print("rule:", tv_sel.rule)
print("TV scores:", {k: round(v, 4) for k, v in tv_sel.scores.items()}, "-> log10 lambda =", tv_sel.log_lambda)

# %% [markdown]
# ## The fast INR (CPU default)
# f(t, y, x) = sum_k S_k(y, x) T_k(t): complex multi-resolution spatial grids times
# periodic Fourier series in time, fitted with Adam; same lambda rule as TV.

# %%
def inr_fit(op_, y_, ll, tgt):
    model = inr.build(REPRESENTATION, acq.kspace[:, 0].shape, rank=RANK, init=op_.adjoint(y_).mean(0)).to(DEVICE)
    res = inr.fit(model, op_, y_, log_lambda=ll, steps=STEPS, lr=LR, target=tgt, seed=SEED, desc=f"INR log10 lambda={ll}")
    if res.diverged:
        print(res.message)
    return res.recon, res.history

inr_sel = select_lambda(inr_fit, acq, LOG_LAMBDAS, HOLDOUT, SEED)
print("INR scores:", {k: round(v, 4) for k, v in inr_sel.scores.items()}, "-> log10 lambda =", inr_sel.log_lambda)

# %% [markdown]
# ## The original's SIREN, time-boxed
# 16 hidden layers of 256 sines (omega_0 = 30), trained on blocks of `SIREN_FRAMES`
# frames per step at the INR's lambda. On two CPU cores one step takes seconds, so this
# row shows how far the original network gets in `SIREN_SECONDS`; set a GPU `DEVICE` and
# a large budget for the full run.

# %%
siren = inr.build("siren", acq.kspace[:, 0].shape, hidden=SIREN_HIDDEN, layers=SIREN_LAYERS).to(DEVICE)
siren_res = inr.fit(siren, op, y, log_lambda=inr_sel.log_lambda, steps=SIREN_STEPS, lr=SIREN_LR,
                    frames_per_step=SIREN_FRAMES, max_seconds=SIREN_SECONDS, target=target, log_every=SIREN_LOG_EVERY,
                    seed=SEED, desc="SIREN")
print(f"SIREN: {siren_res.steps} steps in {siren_res.seconds:.0f} s" + (f" ({siren_res.message})" if siren_res.diverged else ""))

# %% [markdown]
# ## Results
# Metrics on magnitudes over the whole cine; `seconds` is the wall time of the fit that
# produced the row (the lambda sweep is reported separately as `seconds_sweep`).

# %%
recons = {"ZF": zf, "TV": tv_sel.recon, "SIREN": siren_res.recon, "INR": inr_sel.recon}
seconds = {"ZF": zf_seconds, "TV": tv_sel.seconds_final, "SIREN": siren_res.seconds, "INR": inr_sel.seconds_final}
result = {"R": acq.acceleration, "achieved_R": acq.achieved_acceleration, "seed": SEED, "data": str(DATA) if DATA else "phantom",
          "lambda_rule": tv_sel.rule, "methods": {}}
for name, x in recons.items():
    entry = metrics.all_metrics(x, target) if target is not None else {}
    entry["seconds"] = seconds[name]
    result["methods"][name] = entry
result["methods"]["TV"].update(log10_lambda=tv_sel.log_lambda, seconds_sweep=tv_sel.seconds_total, iterations=TV_ITERS)
result["methods"]["INR"].update(representation=REPRESENTATION, log10_lambda=inr_sel.log_lambda, steps=STEPS,
                                seconds_sweep=inr_sel.seconds_total)
result["methods"]["SIREN"].update(log10_lambda=inr_sel.log_lambda, steps=siren_res.steps, hidden=SIREN_HIDDEN, layers=SIREN_LAYERS)
result["sweep"] = {"TV": tv_sel.scores, "INR": inr_sel.scores}
if target is not None:
    print(f"{'method':8s} {'PSNR':>7s} {'SSIM':>6s} {'NRMSE':>6s} {'relL1':>6s} {'tfid':>5s} {'sec':>6s}")
    for name, m in result["methods"].items():
        print(f"{name:8s} {m['psnr']:7.2f} {m['ssim']:6.3f} {m['nrmse']:6.3f} {m['rel_l1']:6.3f} {m['temporal_fidelity']:5.2f} {m['seconds']:6.1f}")

# %% [markdown]
# ## Figures: the original's set per row, the comparison grid, PSNR against time

# %%
figures.original_table(out, recons, target, result["methods"] if target is not None else None, f"02 global INR: R = {acq.acceleration:g}")
histories = {"TV": tv_sel.history, "SIREN": siren_res.history, "INR": inr_sel.history}
if target is not None:
    figures.psnr_vs_time(out.path("psnr_vs_time.png"), histories, title=f"PSNR vs fit time (monitoring excluded), R = {acq.acceleration:g}")
    display_img = plt.imread(out.path("psnr_vs_time.png"))
    plt.figure(figsize=(7, 4.5)); plt.imshow(display_img); plt.axis("off"); plt.show()

# %% [markdown]
# ## Write the reconstructions and the numbers
# `recon.h5`: one (T, H, W) complex64 dataset per method (and `target` when known).

# %%
with h5py.File(out.path("recon.h5"), "w") as f:
    for name, x in recons.items():
        f.create_dataset(name, data=x.astype(np.complex64))
    if target is not None:
        f.create_dataset("target", data=target)
    f.attrs["R"] = acq.acceleration
result["history"] = {k: h.as_dict() for k, h in histories.items()}
out.write_json("metrics.json", result)
written = out.commit()
print("wrote", len(written), "files to", out.out_dir)
