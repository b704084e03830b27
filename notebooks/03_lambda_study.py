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

from inr_utils import explorer, figures, io, metrics
from inr_utils.acquisition import check_acceleration
from inr_utils.lambda_study import LambdaStudy, LambdaStudyConfig, psnr_halfway
from inr_utils.runs import RunOutputs, resolve_out_dir

# %% tags=["parameters"]
R: float = 6  # acceleration factor (ignored when DATA is a k-space file)
SEED: int = 0  # seed for the simulated scan and the fits
DATA: Optional[str] = None  # None: phantom; "sunnybrook[:<patient>/<slice>]"; or a k-space / image file
T: int = 20  # frames (simulated data)
N: int = 128  # image size N x N (simulated data)
COILS: int = 4  # receive coils (simulated data)
REPRESENTATION: str = "hashgrid-lambda"  # "hashgrid-lambda" (lambda an input of the MLP) or "lowrank-lambda" (grids between anchors)
STEPS: int = 2000  # Adam steps of one fixed-lambda fit
COND_STEPS: int = 3400  # Adam steps of the lambda-conditional fit (its cost target: at most 2 fixed fits)
FRAME_FRACTION: float = 0.5  # frames per step, as a fraction of T (a random contiguous block; 1: all); chosen on SCD0000401
LR: float = 1e-2  # learning rate
BALANCE_LOG_LAMBDA: Optional[float] = -2.0  # conditional fit: each step's objective / (1 + lambda / 10**this); None: unweighted
LAMBDA_BETA: float = 0.5  # conditional fit: log10(lambda) drawn from Beta(this, this) over the range (1: uniform; < 1: more at the ends)
LAMBDA_DRAWS: str = "quasi"  # conditional fit: "quasi" (a quasi-random sequence with that distribution) or "random" (independent draws)
LAMBDA_SPLIT: Optional[float] = -1.5  # hashgrid-lambda's conditional network: log10(lambda) where a second encoding takes over (None: one)
RANK: int = 16  # rank (lowrank-lambda only)
LAMBDA_ANCHORS: int = 5  # grid points along log10(lambda) (lowrank-lambda only)
LOG_LAMBDA_MIN: float = -5.0  # range of log10(lambda) (the original's: -5 to 0)
LOG_LAMBDA_MAX: float = 0.0  # upper end of log10(lambda)
SHOW: list = [-5.0, -2.5, 0.0]  # log10(lambda) rows of the original's table (and the separate fits)
DENSE: int = 41  # points of the dense PSNR-vs-lambda curve
HOLDOUT: float = 0.1  # fraction of sampled lines held out to choose lambda without ground truth
DEVICE: str = "cpu"  # where the networks fit: "cpu", "cuda", "cuda:<n>" or "auto" (a GPU when present)
OUT_DIR: Optional[str] = None  # None: outputs/03_lambda_study/R<R>[_<data>][_seed<SEED>]/

# %% [markdown]
# ## Check the parameters and load the scan

# %%
config = LambdaStudyConfig(
    representation=REPRESENTATION, steps=STEPS, cond_steps=COND_STEPS, frame_fraction=FRAME_FRACTION, lr=LR,
    balance_log_lambda=BALANCE_LOG_LAMBDA, lambda_beta=LAMBDA_BETA, lambda_draws=LAMBDA_DRAWS, lambda_split=LAMBDA_SPLIT,
    rank=RANK, lambda_anchors=LAMBDA_ANCHORS,
    log_lambda_range=(LOG_LAMBDA_MIN, LOG_LAMBDA_MAX), show=SHOW, dense=DENSE, holdout=HOLDOUT, device=DEVICE, seed=SEED)
acq = io.load_case(DATA, R=check_acceleration(R), seed=config.seed, T=T, N=N, coils=COILS)
target = acq.target
out = RunOutputs(resolve_out_dir(OUT_DIR, "03_lambda_study", R, DATA, SEED))
study = LambdaStudy(acq, config, DATA)
print(f"source {acq.meta.get('source')} | kspace {acq.kspace.shape} | target: {target is not None} | {REPRESENTATION}")

# %% [markdown]
# ## One fit for every lambda
# `hashgrid-lambda` (the default): the multi-resolution grid encoding of (t, y, x) of
# notebook 02's `hashgrid`, beside a static (spatial-only) encoding, and log10(lambda) as an
# input of the MLP, which also sets a gain on each spatio-temporal feature; lambda reaches the
# output only through the network. Its spatio-temporal features come from two encodings of the
# same sizes, one below and one above log10 lambda = `LAMBDA_SPLIT`, blended linearly over the
# 0.2 decades centred on it (a step outside them evaluates one of them, so it costs what one
# encoding costs): one encoding over the whole range has to hold both the weakly regularised
# and the nearly static solutions, and falls further short of the separate fits in between
# (`docs/methods.md`). `lowrank-lambda`: the low-rank model whose finest spatial
# level and temporal coefficients are interpolated between `LAMBDA_ANCHORS` anchors along
# log10(lambda) (a lookup table in lambda, kept for comparison). Each step draws
# log10(lambda) from a Beta(`LAMBDA_BETA`, `LAMBDA_BETA`) distribution stretched over the
# range (below 1, as by default, denser towards its ends, which the network otherwise follows
# least; 1: uniform) and divides that step's objective by 1 + lambda / 10^`BALANCE_LOG_LAMBDA`:
# a positive factor per lambda, so every lambda's
# minimiser is unchanged, but the steps at large lambda (whose TV term is orders of magnitude
# larger than the data term) no longer dominate Adam's moment estimates. The lambdas of
# successive steps follow a quasi-random sequence with that distribution (`LAMBDA_DRAWS` =
# "quasi": a golden-ratio sequence through the Beta quantile), so every stretch of steps, the
# last ones under the smallest learning rate included, covers the whole range; with
# independent draws ("random") the network at a given lambda depends on which lambdas its last
# steps happened to draw, and two seeds of the same fit differ by up to about a dB on the
# validation cases (`docs/methods.md`). Every fit here (this
# one, the separate ones and the held-out one) takes each step on a random contiguous block of
# `FRAME_FRACTION` of the frames (the block's data and TV terms scaled to the whole cine): a
# step costs less, so the same seconds buy more, noisier steps, which on the validation
# patients fitted both forms better than full-cine steps (on the phantom they help the
# separate fits more than the conditional one).

# %%
cond = study.conditional()

# %% [markdown]
# ## Separately fitted networks at the table's lambdas
# The same form at one fixed lambda each (`hashgrid-lambda` with its lambda input held
# constant and one spatio-temporal encoding; `lowrank` for `lowrank-lambda`), `STEPS` steps
# each, timed in this run. With a target each fit's PSNR is also taken at every eighth of its steps (outside its time), so
# the figure and the table below show whether these references had converged: a fit still
# gaining at its last steps makes the gap at its lambda partly its own shortfall.

# %%
study.separate()

# %% [markdown]
# ## The dense lambda curve from the one network
# The published finding: larger lambda gives temporally smoother cines, i.e. temporal
# fidelity (the output's temporal standard deviation over the target's, `metrics`; without
# a target, TV_t of the output) falls monotonically with lambda. The cell checks it along the
# dense curve and names every interval where it rises.

# %%
study.dense_curve()
dense = study.dense
fig, ax = plt.subplots(1, 2, figsize=(12, 4))
if target is not None:
    ax[0].plot(dense, study.curve_psnr, "-", label=f"one conditional fit ({cond.seconds:.0f} s)")
    ax[0].plot(SHOW, [metrics.psnr(study.separate_recons[ll], target) for ll in SHOW], "o", ms=8,
               label=f"separate fits ({study.seconds_separate:.0f} s for {len(SHOW)})")
    ax[0].plot(SHOW, [psnr_halfway(study.separate_psnr_by_step[ll], STEPS) for ll in SHOW], "o", ms=8, mfc="none",
               color=ax[0].lines[-1].get_color(), label=f"separate fits at half their steps ({STEPS // 2})")
    ax[0].set(xlabel="log10 lambda", ylabel="PSNR (dB)", title="PSNR against lambda")
    ax[0].legend(); ax[0].grid(alpha=0.3)
if target is not None:
    ax[1].plot(dense, study.curve_fidelity)
    ax[1].set(xlabel="log10 lambda", ylabel="temporal fidelity (std_t ratio to the target)",
              title="temporal fidelity against lambda" + (f" (rises on {len(study.rises)} intervals)" if study.rises else ""))
else:
    ax[1].semilogy(dense, study.curve_tv)
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
study.auto_lambda()
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(dense, study.heldout_error, label="held-out line error (relative)")
ax.axvline(study.auto["auto_log10_lambda"], color="C1", ls="--", label=f"auto: {study.auto['auto_log10_lambda']:.2f}")
if target is not None:
    ax.axvline(study.auto["oracle_log10_lambda"], color="C2", ls=":", label=f"oracle: {study.auto['oracle_log10_lambda']:.2f}")
ax.set(xlabel="log10 lambda", ylabel="relative error", title="lambda chosen on held-out k-space")
ax.legend(); ax.grid(alpha=0.3)
fig.tight_layout(); fig.savefig(out.path("lambda_auto.png")); plt.show()

# %% [markdown]
# ## The original's table, with numbers
# Rows: Original, ZF, then the one conditional network at log10 lambda = -5, -2.5, 0.

# %%
rows = study.table_rows()
methods = {name: metrics.all_metrics(x, target) for name, x in rows.items()} if target is not None else {}
figures.original_table(out, rows, target, methods, f"03 lambda as a coordinate: R = {acq.acceleration:g}")

# %% [markdown]
# ## Explore lambda and t (JupyterLab)
# In JupyterLab the sliders below render the network at any log10(lambda) in the trained
# range (a continuous slider, not an index into stored frames) and at any frame, beside
# the x-t profile at row H/2 and, with a target, that lambda's PSNR on the dense curve.
# Headless runs show the static panel instead: five lambdas, frame T/2 and the x-t profile.

# %%
fig = explorer.static_panel(cond.model, np.linspace(*config.log_lambda_range, 5), target)
fig.savefig(out.path("lambda_explorer_static.png"))
plt.show()
if explorer.has_frontend():
    try:
        explorer.interactive(cond.model, target, dense, study.curve_psnr if target is not None else None)
    except Exception as e:  # no widget support: the static panel above stands
        print(f"interactive explorer unavailable ({e}); see the static panel")
else:
    print(f"headless run ({explorer.HEADLESS_ENV}=1 or no kernel): the static panel above stands in for the sliders")

# %% [markdown]
# ## Numbers and files
# Where the conditional network and the separate fits differ, the validation cases
# (`benchmarks/results/lambda_validation.md`, never this notebook's test data) say why. At
# small lambda the separate fit of `STEPS` steps has not converged: run four times longer it
# reaches a lower objective and a better image, and is still rising; the one network, which
# at small lambda also draws on what it learns at larger ones, lies above even those longer
# fits on the validation cases, at a higher objective (here, the separate fit's PSNR at half
# its steps shows how much it was still gaining). Near log10 lambda = -2.5 the separate fits
# are close to converged and the one network stays below them: it is pulled towards the
# strongly regularised end of the range it also has to represent (trained on [-5, -2.5] only,
# it matches the separate fits there). `BALANCE_LOG_LAMBDA` trades the two: a smaller value
# narrows the shortfall at -2.5 and widens the excess at small lambda.
# `docs/methods.md` gives the numbers. This run's own
# measure of it, which needs no ground truth: the objective J = 0.5 ||A x - y||^2 + lambda TV_t
# that both forms minimise, evaluated on each form's output at the table's lambdas (lower:
# the better solution of that lambda's problem; `metrics.json` keeps it with its two terms).

# %%
result = study.record()  # with its summary block: the README's rows and target verdicts
for ll in SHOW:
    one, fixed = result["conditional"][f"{ll:g}"], result["separate"][f"{ll:g}"]
    psnrs = (f"conditional {one['psnr']:.2f} dB, separate {fixed['psnr']:.2f} dB "
             f"({psnr_halfway(fixed['psnr_by_step'], STEPS):.2f} dB at half its steps); "
             if target is not None else "")
    print(f"log10 lambda {ll:5g}: {psnrs}objective J conditional / separate {one['objective'] / fixed['objective']:.2f}")
print(f"time: conditional {cond.seconds:.1f} s vs separate {study.seconds_separate:.1f} s ({len(SHOW)} fits), "
      f"ratio to one fixed fit {cond.seconds / (study.seconds_separate / len(SHOW)):.2f}")
out.write_json("metrics.json", result)
written = out.commit()
print("wrote", len(written), "files to", out.out_dir)
