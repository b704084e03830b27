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
# # 04 · LIIF: continuous-time cine from binned k-space, 2D vs 3D encoders
#
# A supervised model: a convolutional encoder reads the zero-filled *binned* cine
# (T_low bins of a continuous-time acquisition), and a sine-MLP decoder is queried at
# any time t. We train the original's three configurations and compare them on
# held-out subjects at uniform query times:
#
# * **2D, C = 8** and **2D, C = 64**: a 2D UNet stacks every bin (real, imaginary) as
#   channels and outputs ONE C-channel map; the decoder sees [feature, t].
# * **3D, C = 16**: a 3D UNet keeps time; the decoder blends the outputs from the bins
#   before and after t.
#
# The original found the 2D C = 64 model static in time; the temporal correlation (of the
# output's and the target's temporal changes) shows it as a number.
#
# A fair test trains every model until its validation error stops improving (the plateau
# rule: less than `PLATEAU` over the last quarter of the epochs) or `EPOCHS` run out; the
# summary's first target says whether every model reached the plateau before that cap, and
# metrics.json keeps how much each model's last quarter of epochs still improved
# (`last_quarter_gain`). Every model gets the training choices that help every encoder alike
# (preset `"fair"`: view-shared input bins and augmentation) and its encoder's better
# initialisation (He initialisation stalls the 2D UNet, PyTorch's default stalls the 3D UNet,
# on the validation patient). The encoders run in bfloat16 autocast where the
# hardware has it (`BF16`, as in notebook 05; the decoder stays float32), which makes the
# convolutions faster on a CPU with AVX512-BF16. `PRESET="original"` with `BF16=False` is the original's exact setting. Trained models of the
# default runs ship with the package and are evaluated without training when every setting
# matches (`RETRAIN=True` trains anyway; `make reproduce` does).

# %%
from typing import Optional

import matplotlib.pyplot as plt
import torch

from inr_utils import figures, liif
from inr_utils.io import data_label
from inr_utils.runs import RunOutputs, check_device, resolve_out_dir

# %% tags=["parameters"]
R: float = 6  # nominal acceleration at 25 frames (the binned acquisition's own rate follows from it)
T_LOW: int = 8  # bins of the acquisition (the encoder's input frames)
SEED: int = 0  # seed of data sampling, initialisation and shuffling
DATA: Optional[str] = None  # None: phantom subjects; "sunnybrook": real slices split by patient; or a Sunnybrook-layout file
N: int = 64  # image size N x N (the original: 128)
T_HIGH: int = 32  # acquisitions per cardiac cycle
T_QUERY: int = 16  # query times per training sample (jittered) and per validation sample (uniform)
T_EVAL: int = 64  # uniform query times at evaluation (the original: 64)
N_TRAIN: int = 36  # phantom training subjects, as notebook 05 (real data: every slice of the training patients)
N_VAL: int = 4  # phantom validation subjects
N_TEST: int = 4  # phantom test subjects
PRESET: str = "fair"  # "fair": view-shared input, augmentation, each encoder's better init; "original": the original's setting
EPOCHS: int = 200  # most training epochs per configuration: a cap; the plateau rule (PLATEAU) is meant to stop each model first
PLATEAU: Optional[float] = 0.01  # stop when the last quarter of the epochs improved validation by less than this fraction (None: run EPOCHS)
MIN_EPOCHS: int = 40  # epochs before the plateau rule applies (fewer: validation noise can stop a model that still learns)
MAX_SECONDS: Optional[float] = None  # training-time budget per model in seconds (None: none)
KEEP_BEST: bool = False  # end each model with its lowest-validation epoch's weights (False: the last epoch's, as the shipped models were trained)
BATCH: int = 2  # samples per step
LR: float = 1e-3  # Adam learning rate
LR_PATIENCE: int = 5  # epochs without a better validation error before the learning rate halves
HIDDEN: int = 32  # decoder width (the original 3D: 128)
LAYERS: int = 4  # decoder sine layers
UNET2D_CHANNELS: list = [32, 64, 128]  # 2D UNet widths
UNET3D_CHANNELS: list = [16, 32, 64]  # 3D UNet widths (the original's)
RESIDUAL: bool = False  # decode a correction added to the input bins interpolated to t (False: the original's)
PIXELS_PER_STEP: int = 1024  # random pixels decoded per query frame in a training step (0: all)
RESUME: bool = True  # continue from OUT_DIR/checkpoints when present
RETRAIN: bool = False  # train even when a shipped model was trained with exactly these settings (make reproduce: True)
SAMPLE_CACHE_GB: float = 2  # memory (GiB) for keeping the simulated samples, so every model after the first reads them (0: simulate again)
DEVICE: str = "cpu"  # where the models train and run: "cpu", "cuda", "cuda:<n>" or "auto" (a GPU when present)
BF16: Optional[bool] = None  # bfloat16 autocast of the encoders, as notebook 05 (None: where DEVICE has fast bfloat16; False: float32)
OUT_DIR: Optional[str] = None  # None: outputs/04_liif_2d_vs_3d/R<R>[_<data>][_seed<SEED>]/

# %% [markdown]
# ## The experiment as typed settings (checked once), the subjects
# Phantom subjects are distinct seeds (train, validation and test seeds never overlap);
# real slices are split by patient (train SCD0000101/201/301, validation 401, test 501).

# %%
DEVICE = check_device(DEVICE)
data = liif.DataConfig(DATA, N, liif.AcquisitionSpec(R, T_LOW, T_HIGH, T_QUERY), T_EVAL, N_TRAIN, N_VAL, N_TEST, SEED,
                       cache_gb=SAMPLE_CACHE_GB, **liif.preset_data(PRESET))
model = dict(hidden=HIDDEN, layers=LAYERS, residual=RESIDUAL, bf16=BF16)
experiment = liif.LiifExperiment(
    data, liif.TrainConfig(EPOCHS, LR, BATCH, PIXELS_PER_STEP or None, SEED, RESUME, plateau=PLATEAU, min_epochs=MIN_EPOCHS,
                           max_seconds=MAX_SECONDS, keep_best=KEEP_BEST, lr_patience=LR_PATIENCE),
    {"2D-C8": liif.preset(PRESET, "unet2d", T_LOW, {"channels": UNET2D_CHANNELS}, C=8, **model),
     "2D-C64": liif.preset(PRESET, "unet2d", T_LOW, {"channels": UNET2D_CHANNELS}, C=64, **model),
     "3D-C16": liif.preset(PRESET, "unet3d", T_LOW, {"channels": UNET3D_CHANNELS}, C=16, **model)},
    shipped=None if RETRAIN else liif.shipped_dir("04_liif_2d_vs_3d", R, DATA, SEED), device=DEVICE)
runner = liif.LiifRunner(experiment)
out = RunOutputs(resolve_out_dir(OUT_DIR, "04_liif_2d_vs_3d", data.acquisition.R, DATA, SEED))
print(runner.describe())

# %% [markdown]
# ## One sample
# Binned masks (first sample of each line per bin), the zero-filled bins, and the targets.

# %%
s0 = runner.test_set[0]
fig, ax = plt.subplots(1, 3, figsize=(14, 3.2))
ax[0].imshow(s0.mask, aspect="auto", cmap="gray", interpolation="nearest")
ax[0].set(title=f"bin masks (achieved R per bin {s0.mask.numel() / s0.mask.sum():.2f})", xlabel="line", ylabel="bin")
im = ax[1].imshow(torch.complex(s0.zf[0, T_LOW // 2], s0.zf[1, T_LOW // 2]).abs(), cmap="gray")
ax[1].set_title("|ZF| of the middle bin"); fig.colorbar(im, ax=ax[1])
im = ax[2].imshow(s0.target[T_EVAL // 2].abs(), cmap="gray"); ax[2].set_title("target at t = 1/2"); fig.colorbar(im, ax=ax[2])
plt.show()

# %% [markdown]
# ## Train the three configurations, evaluate on held-out subjects
# Relative-L1 magnitude loss, Adam with reduce-on-plateau, validation every epoch,
# checkpoints (resumable) under `OUT_DIR/checkpoints/`; evaluation at T_EVAL uniform query
# times. ZF is the zero-filled bins interpolated (periodically, linearly) to the query times.

# %%
result = runner.run(out)
print(liif.results_table(result.record))

# %% [markdown]
# ## Learning curves
# Validation relative L1 against epoch and against training seconds; a square marks a model
# stopped by the plateau rule (each model's stopping reason, and how much its last quarter of
# epochs still improved the best validation error, is printed and kept in metrics.json).

# %%
curves = figures.learning_curves(out.path("learning_curves.png"), result.histories,
                                 f"04 LIIF learning curves: R = {R:g}, T_low = {T_LOW}, {data_label(DATA)}")
for name, h in result.histories.items():
    gain = result.record["methods"][name]["last_quarter_gain"]
    print(f"{name}: {len(h['val'])} epochs, best validation {min(h['val']):.4f}; {h.get('stop') or 'no stop recorded'}"
          + (f"; the last quarter improved it by {100 * gain:.1f}%" if gain is not None else ""))
plt.figure(figsize=(12, 4)); plt.imshow(plt.imread(curves)); plt.axis("off"); plt.show()

# %% [markdown]
# ## The original's table with numbers (first test subject)
# Rows: Original (target at the query times), ZF, then each configuration.

# %%
first = {name: xs[0] for name, xs in result.recons.items()}
figures.original_table(out, first, result.targets[0], result.record["methods"],
                       f"04 LIIF 2D vs 3D: R = {R:g}, T_low = {T_LOW} (metrics: mean over {len(result.targets)} test subjects)")

# %%
result.record["summary"] = liif.run_summary_2d_vs_3d(result.record)  # the README's row, the 3D-vs-2D verdict, the targets
print(result.record["summary"]["tables"][0]["rows"][0][-1])
out.write_json("metrics.json", result.record)
written = out.commit()
print("wrote", len(written), "files to", out.out_dir)
