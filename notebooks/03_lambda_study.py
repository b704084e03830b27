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
# # 03 · The lambda study: the regularisation weight as an input of the network
#
# One network f_theta(lambda, t, y, x) is trained with log10(lambda) drawn from
# [-5, 0] at every step (the original's range), the temporal-TV weight being lambda
# itself:
#
#   min_theta E_{log10 lambda ~ U[-5, 0]} [ 0.5 ||A f_theta(lambda) - y||^2 + lambda TV_t(f_theta(lambda)) ]
#
# so every lambda comes from one fit. We compare it with networks of the same form fitted
# separately at log10 lambda = -5, -2.5 and 0 (PSNR and time, in this run), draw the dense
# PSNR-vs-lambda curve, check that temporal fidelity falls as lambda grows, and choose
# lambda **without** ground truth by predicting held-out k-space lines.

# %%
from typing import Optional


import matplotlib.pyplot as plt
import numpy as np
import torch

from inr_utils import explorer, figures, inr, io, metrics
from inr_utils.acquisition import check_acceleration
from inr_utils.fourier import SenseOp
from inr_utils.runs import RunOutputs, check_int, resolve_out_dir
from inr_utils.tv import temporal_tv

# %% tags=["parameters"]
R: float = 6  # acceleration factor (ignored when DATA is a k-space file)
SEED: int = 0  # seed for the simulated scan and the fits
DATA: Optional[str] = None  # None: phantom; "sunnybrook[:<patient>/<slice>]"; or a k-space / image file
T: int = 20  # frames (simulated data)
N: int = 128  # image size N x N (simulated data)
COILS: int = 4  # receive coils (simulated data)
REPRESENTATION: str = "hashgrid-lambda"  # "hashgrid-lambda" (lambda an input of the MLP) or "lowrank-lambda" (grids between anchors)
STEPS: int = 1000  # Adam steps of one fixed-lambda fit
COND_STEPS: int = 1800  # Adam steps of the lambda-conditional fit (its cost target: at most 2 fixed fits)
LR: float = 1e-2  # learning rate
BALANCE_LOG_LAMBDA: Optional[float] = -2.0  # conditional fit: each step's objective / (1 + lambda / 10**this) (chosen on SCD0000201); None: unweighted
RANK: int = 16  # rank (lowrank-lambda only)
LAMBDA_ANCHORS: int = 5  # grid points along log10(lambda) (lowrank-lambda only)
LOG_LAMBDA_MIN: float = -5.0  # range of log10(lambda) (the original's: -5 to 0)
LOG_LAMBDA_MAX: float = 0.0  # upper end of log10(lambda)
SHOW: list = [-5.0, -2.5, 0.0]  # log10(lambda) rows of the original's table (and the separate fits)
DENSE: int = 41  # points of the dense PSNR-vs-lambda curve
HOLDOUT: float = 0.1  # fraction of sampled lines held out to choose lambda without ground truth
DEVICE: str = "cpu"  # "cuda" to fit on a GPU
OUT_DIR: Optional[str] = None  # None: outputs/03_lambda_study/R<R>[_<data>][_seed<SEED>]/

# %% [markdown]
# ## Check the parameters and load the scan

# %%
R = check_acceleration(R)
SEED, STEPS, COND_STEPS, RANK = check_int("SEED", SEED, 0), check_int("STEPS", STEPS), check_int("COND_STEPS", COND_STEPS), check_int("RANK", RANK)
LAMBDA_ANCHORS, DENSE = check_int("LAMBDA_ANCHORS", LAMBDA_ANCHORS, 2), check_int("DENSE", DENSE, 2)
CONDITIONAL_FORMS = {"hashgrid-lambda": "hashgrid-lambda", "lowrank-lambda": "lowrank"}  # conditional -> its fixed-lambda fit
if REPRESENTATION not in CONDITIONAL_FORMS:
    raise ValueError(f"REPRESENTATION must be one of {sorted(CONDITIONAL_FORMS)}, got {REPRESENTATION!r}")
if not (np.isfinite(LOG_LAMBDA_MIN) and np.isfinite(LOG_LAMBDA_MAX) and LOG_LAMBDA_MIN < LOG_LAMBDA_MAX):
    raise ValueError(f"need finite LOG_LAMBDA_MIN < LOG_LAMBDA_MAX, got {LOG_LAMBDA_MIN}, {LOG_LAMBDA_MAX}")
RANGE = (LOG_LAMBDA_MIN, LOG_LAMBDA_MAX)
if BALANCE_LOG_LAMBDA is not None and not np.isfinite(BALANCE_LOG_LAMBDA):
    raise ValueError(f"BALANCE_LOG_LAMBDA must be finite or None, got {BALANCE_LOG_LAMBDA}")
if not all(RANGE[0] <= ll <= RANGE[1] for ll in SHOW):
    raise ValueError(f"every SHOW value must lie in [{RANGE[0]:g}, {RANGE[1]:g}], got {SHOW}")
acq = io.load_case(DATA, R=R, seed=SEED, T=T, N=N, coils=COILS)
target = acq.target
out = RunOutputs(resolve_out_dir(OUT_DIR, "03_lambda_study", R, DATA, SEED))
op, y = acq.op, torch.from_numpy(acq.kspace)
shape = acq.kspace[:, 0].shape
zf = acq.zero_filled()
print(f"source {acq.meta.get('source')} | kspace {acq.kspace.shape} | target: {target is not None} | {REPRESENTATION}")


def build(name, op_, y_):
    """A fresh model; the low-rank forms start from the temporal mean of the zero-filled cine."""
    if name.startswith("lowrank"):
        kw = dict(rank=RANK, init=op_.adjoint(y_).mean(0))
        if name == "lowrank-lambda":
            kw.update(lambda_anchors=LAMBDA_ANCHORS, log_lambda_range=RANGE)
        return inr.build(name, shape, **kw).to(DEVICE)
    return inr.build(name, shape, log_lambda_range=RANGE, seed=SEED).to(DEVICE)


def conditional_fit(op_, y_, desc):
    return inr.fit(build(REPRESENTATION, op_, y_), op_, y_, log_lambda_range=RANGE, steps=COND_STEPS, lr=LR, seed=SEED,
                   balance_log_lambda=BALANCE_LOG_LAMBDA, desc=desc)

# %% [markdown]
# ## One fit for every lambda
# `hashgrid-lambda` (the default): the multi-resolution grid encoding of (t, y, x) of
# notebook 02's `hashgrid`, beside a static (spatial-only) encoding, and log10(lambda) as an
# input of the MLP, which also sets a gain on each spatio-temporal feature; lambda reaches the
# output only through the network. `lowrank-lambda`: the low-rank model whose finest spatial
# level and temporal coefficients are interpolated between `LAMBDA_ANCHORS` anchors along
# log10(lambda) (a lookup table in lambda, kept for comparison). Each step draws
# log10(lambda) uniformly from the range and divides that step's objective by
# 1 + lambda / 10^`BALANCE_LOG_LAMBDA`: a positive factor per lambda, so every lambda's
# minimiser is unchanged, but the steps at large lambda (whose TV term is orders of magnitude
# larger than the data term) no longer dominate Adam's moment estimates.

# %%
cond = conditional_fit(op, y, "conditional fit")
seconds_conditional = cond.seconds
print(f"conditional fit: {cond.steps} steps, {seconds_conditional:.1f} s")

# %% [markdown]
# ## Separately fitted networks at the table's lambdas
# The same form at one fixed lambda each (`hashgrid-lambda` with its lambda input held
# constant; `lowrank` for `lowrank-lambda`), `STEPS` steps each, timed in this run.

# %%
separate, seconds_separate = {}, 0.0
for ll in SHOW:
    model = build(CONDITIONAL_FORMS[REPRESENTATION], op, y)
    res = inr.fit(model, op, y, log_lambda=ll, steps=STEPS, lr=LR, seed=SEED, desc=f"separate log10 lambda={ll:g}")
    separate[ll] = res.recon
    seconds_separate += res.seconds
print(f"separate fits: {len(SHOW)} x {STEPS} steps, {seconds_separate:.1f} s in all")

# %% [markdown]
# ## The dense lambda curve from the one network
# The published finding: larger lambda gives temporally smoother cines, i.e. temporal
# fidelity (the output's temporal standard deviation over the target's, `metrics`; without
# a target, TV_t of the output) falls monotonically with lambda. The cell checks it along the
# dense curve and names every interval where it rises.

# %%
dense = np.linspace(*RANGE, DENSE)
curve_tv, curve_psnr, curve_fidelity = [], [], []
for ll in dense:
    x = inr.render_numpy(cond.model, ll)
    curve_tv.append(float(temporal_tv(torch.from_numpy(x))))
    curve_psnr.append(metrics.psnr(x, target) if target is not None else np.nan)
    curve_fidelity.append(metrics.temporal_fidelity(x, target) if target is not None else np.nan)
cond_at = {ll: inr.render_numpy(cond.model, ll) for ll in SHOW}
smoothness = np.asarray(curve_fidelity if target is not None else curve_tv)
rises = [(float(dense[i]), float(dense[i + 1])) for i in range(len(dense) - 1) if smoothness[i + 1] > smoothness[i]]
monotone = not rises
print(("temporal fidelity" if target is not None else "TV_t") + " against lambda: " +
      ("decreases monotonically over the dense curve" if monotone else
       "rises on " + ", ".join(f"[{a:.3g}, {b:.3g}]" for a, b in rises)))
fig, ax = plt.subplots(1, 2, figsize=(12, 4))
if target is not None:
    ax[0].plot(dense, curve_psnr, "-", label=f"one conditional fit ({seconds_conditional:.0f} s)")
    ax[0].plot(SHOW, [metrics.psnr(separate[ll], target) for ll in SHOW], "o", ms=8,
               label=f"separate fits ({seconds_separate:.0f} s for {len(SHOW)})")
    ax[0].set(xlabel="log10 lambda", ylabel="PSNR (dB)", title="PSNR against lambda")
    ax[0].legend(); ax[0].grid(alpha=0.3)
if target is not None:
    ax[1].plot(dense, curve_fidelity)
    ax[1].set(xlabel="log10 lambda", ylabel="temporal fidelity (std_t ratio to the target)",
              title="temporal fidelity against lambda" + ("" if monotone else f" (rises on {len(rises)} intervals)"))
else:
    ax[1].semilogy(dense, curve_tv)
    ax[1].set(xlabel="log10 lambda", ylabel="TV_t of the output", title="temporal variation against lambda")
ax[1].grid(alpha=0.3)
fig.tight_layout()
fig.savefig(out.path("lambda_curve.png"))
plt.show()

# %% [markdown]
# ## Choosing lambda without ground truth
# Hold out a fraction of the sampled lines (never the centre), fit one conditional
# network on the rest, and choose the lambda whose output best predicts the held-out
# lines; one fit scores every lambda. The oracle is the best PSNR on the dense curve.

# %%
fit_mask, hold = inr.split_lines(acq.mask, HOLDOUT, SEED)
op_fit = SenseOp(acq.smaps, fit_mask)
ho = conditional_fit(op_fit, y * op_fit._m, "held-out conditional fit")
ho_err = [inr.heldout_error(inr.render_numpy(ho.model, ll), acq.smaps, hold, y) for ll in dense]
auto_ll = float(dense[int(np.argmin(ho_err))])
result_auto = {"auto_log10_lambda": auto_ll, "seconds_holdout_fit": ho.seconds}
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(dense, ho_err, label="held-out line error (relative)")
ax.axvline(auto_ll, color="C1", ls="--", label=f"auto: {auto_ll:.2f}")
if target is not None:
    oracle_ll = float(dense[int(np.nanargmax(curve_psnr))])
    psnr_auto = float(np.interp(auto_ll, dense, curve_psnr))
    psnr_oracle = float(np.nanmax(curve_psnr))
    ax.axvline(oracle_ll, color="C2", ls=":", label=f"oracle: {oracle_ll:.2f}")
    result_auto.update(oracle_log10_lambda=oracle_ll, psnr_auto=psnr_auto, psnr_oracle=psnr_oracle)
    print(f"auto log10 lambda {auto_ll:.2f} -> {psnr_auto:.2f} dB; oracle {oracle_ll:.2f} -> {psnr_oracle:.2f} dB; gap {psnr_oracle - psnr_auto:.2f} dB")
ax.set(xlabel="log10 lambda", ylabel="relative error", title="lambda chosen on held-out k-space")
ax.legend(); ax.grid(alpha=0.3)
fig.tight_layout(); fig.savefig(out.path("lambda_auto.png")); plt.show()

# %% [markdown]
# ## The original's table, with numbers
# Rows: Original, ZF, then the one conditional network at log10 lambda = -5, -2.5, 0.

# %%
rows = {"ZF": zf, **{f"log10 lambda={ll:g}": cond_at[ll] for ll in SHOW}}
methods = {name: metrics.all_metrics(x, target) for name, x in rows.items()} if target is not None else {}
figures.original_table(out, rows, target, methods, f"03 lambda as a coordinate: R = {acq.acceleration:g}")

# %% [markdown]
# ## Explore lambda and t (JupyterLab)
# In JupyterLab the sliders below render the network at any log10(lambda) in the trained
# range (a continuous slider, not an index into stored frames) and at any frame, beside
# the x-t profile at row H/2 and, with a target, that lambda's PSNR on the dense curve.
# Headless runs show the static panel instead: five lambdas, frame T/2 and the x-t profile.

# %%
fig = explorer.static_panel(cond.model, np.linspace(*RANGE, 5), target)
fig.savefig(out.path("lambda_explorer_static.png"))
plt.show()
try:
    from IPython import get_ipython

    if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
        raise RuntimeError("no interactive kernel")
    explorer.interactive(cond.model, target, dense, curve_psnr if target is not None else None)
except Exception as e:  # headless or no widget support: the static panel above stands
    print(f"interactive explorer unavailable ({e}); see the static panel")

# %% [markdown]
# ## Numbers and files

# %%
def psnr_map(recons):
    return {f"{ll:g}": {"psnr": metrics.psnr(recons[ll], target)} for ll in SHOW} if target is not None else {}

result = {"R": acq.acceleration, "seed": SEED, "data": str(DATA) if DATA else "phantom", "representation": REPRESENTATION,
          "balance_log10_lambda": BALANCE_LOG_LAMBDA,
          "conditional": psnr_map(cond_at), "separate": psnr_map(separate),
          "seconds_conditional": seconds_conditional, "seconds_separate": seconds_separate,
          "steps_fixed": STEPS, "steps_conditional": COND_STEPS, **result_auto,
          "dense": {"log10_lambda": dense.tolist(), "psnr": curve_psnr if target is not None else None, "tv": curve_tv,
                    "temporal_fidelity": curve_fidelity if target is not None else None, "heldout_error": ho_err},
          "smoothness_monotone": monotone, "smoothness_rises_on": rises,
          "methods": methods}
if target is not None:
    for ll in SHOW:
        print(f"log10 lambda {ll:5g}: conditional {result['conditional'][f'{ll:g}']['psnr']:.2f} dB, "
              f"separate {result['separate'][f'{ll:g}']['psnr']:.2f} dB")
print(f"time: conditional {seconds_conditional:.1f} s vs separate {seconds_separate:.1f} s ({len(SHOW)} fits), "
      f"ratio to one fixed fit {seconds_conditional / (seconds_separate / len(SHOW)):.2f}")
out.write_json("metrics.json", result)
written = out.commit()
print("wrote", len(written), "files to", out.out_dir)
