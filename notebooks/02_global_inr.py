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

import dataclasses
import time

import h5py
import matplotlib.pyplot as plt
import numpy as np
import torch

from inr_utils import figures, inr, io, metrics, selection, tv
from inr_utils.acquisition import check_acceleration
from inr_utils.runs import RunOutputs, check_int, resolve_out_dir

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
SIREN_LOG_EVERY: int = 8  # SIREN steps between PSNR checks (each renders the whole cine: ~10 s on 2 CPU cores)
HOLDOUT: float = 0.1  # fraction of sampled lines held out to choose the weights when DATA has no target
DEVICE: str = "cpu"  # "cuda" to fit on a GPU
OUT_DIR: Optional[str] = None  # None: outputs/02_global_inr/R<R>[_<data>][_seed<SEED>]/

# %% [markdown]
# ## Check the parameters and load the scan
# Same `DATA` rules as notebook 01. A k-space file without `target` is reconstructed
# and written, with the weights chosen on held-out lines and no metrics.

# %%
R = check_acceleration(R)
SEED, TV_ITERS = check_int("SEED", SEED, 0), check_int("TV_ITERS", TV_ITERS)
STEPS = None if STEPS is None else check_int("STEPS", STEPS)
RANK = None if RANK is None else check_int("RANK", RANK)
SIREN_LOG_EVERY, MAX_EXTEND = check_int("SIREN_LOG_EVERY", SIREN_LOG_EVERY), check_int("MAX_EXTEND", MAX_EXTEND, 0)
for name, reps in (("REPRESENTATION", [REPRESENTATION]), ("INR_ROWS", INR_ROWS)):
    bad = [r for r in reps if r not in inr.REPRESENTATIONS or r.endswith("-lambda")]
    if bad or not reps:
        raise ValueError(f"{name} {reps!r}: choose from {sorted(r for r in inr.REPRESENTATIONS if not r.endswith('-lambda'))}")
if REPRESENTATION not in INR_ROWS:
    INR_ROWS = list(INR_ROWS) + [REPRESENTATION]
acq = io.load_case(DATA, R=R, seed=SEED, T=T, N=N, coils=COILS)
target = acq.target
out = RunOutputs(resolve_out_dir(OUT_DIR, "02_global_inr", R, DATA, SEED))
op, y = acq.op, torch.from_numpy(acq.kspace)
t0 = time.perf_counter()
zf = acq.zero_filled()
zf_seconds = time.perf_counter() - t0


def search_for(method: str, spatial: bool = True) -> selection.SearchSpec:
    """The method's default starting grid with this notebook's overrides."""
    spec = selection.DEFAULT_SEARCH[method]
    return dataclasses.replace(spec, log_lambdas=tuple(LOG_LAMBDAS or spec.log_lambdas),
                               log_mus=(tuple(LOG_MUS or spec.log_mus) if spatial and spec.log_mus else None),
                               step=SEARCH_STEP, max_extend=MAX_EXTEND)


print(f"source {acq.meta.get('source')} | kspace {acq.kspace.shape} | achieved R {acq.achieved_acceleration:.2f} | "
      f"target: {target is not None} | data scale {selection.data_scale(zf):.4g}")
print("rule:", selection.rule_text(target is not None, HOLDOUT))

# %% [markdown]
# ## Compressed sensing on explicit voxels: temporal TV, then temporal + spatial TV
# Primal-dual (Condat-Vu) iterations (`inr_utils.tv`); the original's code multiplied data
# and TV terms, this adds them. Each row's weights come from the same search.

# %%
selections = {}
for name in ("TV", "TV+S"):
    selections[name] = selection.select_weights(tv.reconstructor(TV_ITERS), acq, search_for(name), HOLDOUT, SEED)
    sel = selections[name]
    print(f"{name}: tried {[(t['log_lambda'], t['log_mu'], round(t['score'], 4)) for t in sel.trials]}")
    print(f"   -> log10 lambda = {sel.log_lambda}, log10 mu = {sel.log_mu}" + ("  (still at an edge)" if sel.at_edge else ""))

# %% [markdown]
# ## The INRs: a low-rank grid representation and a hash-grid neural field
# `lowrank`: f(t, y, x) = sum_k S_k(y, x) T_k(t), complex multi-resolution spatial grids times
# periodic Fourier series in time. `hashgrid`: an Instant-NGP-style multi-resolution grid
# encoding of (t, y, x), dense at coarse levels and hashed at fine ones, periodic in t,
# followed by a small MLP with complex output. Sizes and steps default from the cine's
# shape (`inr.default_settings`); both fit with Adam and the spatial + temporal TV.
# `REPRESENTATION` gets the search; the other rows reuse its weights unless
# `SEARCH_EXTRA_ROWS` (each search is about ten fits).

# %%
def on_fit(res):
    if res.diverged:
        print(res.message)


settings = {rep: inr.default_settings(rep, acq.kspace[:, 0].shape, steps=STEPS, lr=LR,
                                      **({"rank": RANK} if rep.startswith("lowrank") else {})) for rep in INR_ROWS}
for rep in [REPRESENTATION] + [r for r in INR_ROWS if r != REPRESENTATION]:
    fit_rep = inr.reconstructor(settings[rep], DEVICE, SEED, on_result=on_fit)
    if rep == REPRESENTATION or SEARCH_EXTRA_ROWS:
        selections[rep] = selection.select_weights(fit_rep, acq, search_for(rep), HOLDOUT, SEED)
    else:
        chosen = selections[REPRESENTATION]
        one = dataclasses.replace(search_for(rep), log_lambdas=(chosen.log_lambda,),
                                  log_mus=None if chosen.log_mu is None else (chosen.log_mu,))
        selections[rep] = selection.select_weights(fit_rep, acq, one, HOLDOUT, SEED)
    sel = selections[rep]
    print(f"{rep} ({settings[rep].steps} steps, lr {settings[rep].lr:g}, {settings[rep].model}): "
          f"log10 lambda = {sel.log_lambda}, log10 mu = {sel.log_mu}" + ("  (still at an edge)" if sel.at_edge else ""))
inr_sel = selections[REPRESENTATION]

# %% [markdown]
# ## The original's SIREN, time-boxed
# 16 hidden layers of 256 sines (omega_0 = 30), trained on blocks of `SIREN_FRAMES`
# frames per step at the default INR's weights. On two CPU cores one step takes seconds, so this
# row shows how far the original network gets in `SIREN_SECONDS`; set a GPU `DEVICE` and
# a large budget for the full run.

# %%
siren = inr.build("siren", acq.kspace[:, 0].shape, hidden=SIREN_HIDDEN, layers=SIREN_LAYERS).to(DEVICE)
siren_lam, siren_mu = inr_sel.weights
siren_res = inr.fit(siren, op, y, log_lambda=float(np.log10(siren_lam)), mu=siren_mu, steps=SIREN_STEPS, lr=SIREN_LR,
                    frames_per_step=SIREN_FRAMES, max_seconds=SIREN_SECONDS, target=target, log_every=SIREN_LOG_EVERY,
                    seed=SEED, desc="SIREN")
print(f"SIREN: {siren_res.steps} steps in {siren_res.seconds:.0f} s" + (f" ({siren_res.message})" if siren_res.diverged else ""))

# %% [markdown]
# ## Results
# Metrics on magnitudes over the whole cine; `seconds` is the wall time of the fit that
# produced the row (the weight search is reported separately as `seconds_sweep`).

# %%
rows = ["TV", "TV+S", "SIREN"] + list(INR_ROWS)
recons = {"ZF": zf, **{k: siren_res.recon if k == "SIREN" else selections[k].recon for k in rows}}
seconds = {"ZF": zf_seconds, **{k: siren_res.seconds if k == "SIREN" else selections[k].seconds_final for k in rows}}
result = {"R": acq.acceleration, "achieved_R": acq.achieved_acceleration, "seed": SEED, "data": str(DATA) if DATA else "phantom",
          "lambda_rule": selection.rule_text(target is not None, HOLDOUT), "data_scale": inr_sel.scale,
          "default_representation": REPRESENTATION, "methods": {}}
for name, x in recons.items():
    entry = metrics.all_metrics(x, target) if target is not None else {}
    entry["seconds"] = seconds[name]
    result["methods"][name] = entry
for name, sel in selections.items():
    result["methods"][name].update(log10_lambda=sel.log_lambda, log10_mu=sel.log_mu, at_edge=sel.at_edge,
                                   seconds_sweep=sel.seconds_total)
    if name in settings:
        result["methods"][name].update(representation=name, steps=settings[name].steps, lr=settings[name].lr,
                                       size=settings[name].model)
for name in ("TV", "TV+S"):
    result["methods"][name]["iterations"] = TV_ITERS
result["methods"]["INR"] = dict(result["methods"][REPRESENTATION])
result["methods"]["SIREN"].update(log10_lambda=inr_sel.log_lambda, log10_mu=inr_sel.log_mu, steps=siren_res.steps,
                                  hidden=SIREN_HIDDEN, layers=SIREN_LAYERS)
result["sweep"] = {k: v.trials for k, v in selections.items()}
if target is not None:
    print(f"{'method':8s} {'PSNR':>7s} {'SSIM':>6s} {'NRMSE':>6s} {'relL1':>6s} {'tfid':>5s} {'sec':>6s}")
    for name, m in result["methods"].items():
        print(f"{name:8s} {m['psnr']:7.2f} {m['ssim']:6.3f} {m['nrmse']:6.3f} {m['rel_l1']:6.3f} {m['temporal_fidelity']:5.2f} {m['seconds']:6.1f}")

# %% [markdown]
# ## Figures: the original's set per row, the comparison grid, PSNR against time

# %%
figures.original_table(out, recons, target, result["methods"] if target is not None else None, f"02 global INR: R = {acq.acceleration:g}")
histories = {**{k: v.history for k, v in selections.items()}, "SIREN": siren_res.history}
if target is not None:
    figures.psnr_vs_time(out.path("psnr_vs_time.png"), histories, title=f"PSNR vs fit time (monitoring excluded), R = {acq.acceleration:g}")
    display_img = plt.imread(out.path("psnr_vs_time.png"))
    plt.figure(figsize=(7, 4.5)); plt.imshow(display_img); plt.axis("off"); plt.show()

# %% [markdown]
# ## Write the reconstructions and the numbers
# `recon.h5`: one (T, H, W) complex64 dataset per method, `INR` (the default representation)
# and `target` when known.

# %%
with h5py.File(out.path("recon.h5"), "w") as f:
    for name, x in recons.items():
        f.create_dataset(name, data=x.astype(np.complex64))
    f["INR"] = f[REPRESENTATION]  # a hard link: the default representation under its stable name
    if target is not None:
        f.create_dataset("target", data=target)
    f.attrs["R"] = acq.acceleration
result["history"] = {k: h.as_dict() for k, h in histories.items()}
out.write_json("metrics.json", result)
written = out.commit()
print("wrote", len(written), "files to", out.out_dir)
