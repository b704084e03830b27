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
# # 05 · LIIF architecture search: UNet vs RDN encoders vs temporal TV
#
# Same continuous-time task as notebook 04 (binned k-space in, any t out), now with two
# 3D encoders, a shallow **UNet** and a residual dense network (**RDN**), against a
# *correct and tuned* temporal-TV baseline (explicit voxels on the bins, lambda chosen on
# the validation subjects, then interpolated in time to the query times; the original's
# code multiplied its two loss terms) and zero filling. By default the encoders read
# view-shared bins (each bin's missing lines from the nearest bin that sampled them), output
# a per-bin image correction of them and decode a further correction at t (`INPUT`,
# `RESIDUAL`, `IMAGE_SKIP`), and train on shifted, time-reversed and flipped subjects
# (`AUGMENT`). Both encoders sit behind the same **unrolled data-consistency cascade**
# (`DC_CASCADE`, `DC_STAGES`): four small 3D UNets, each followed by a soft data-consistency
# step that puts the bins' measured lines back with a learned weight, and one more such step on
# the encoder's corrected bins (`FINAL_DC`); the 3D convolutions pad periodically in time, as
# the bins span one cardiac cycle (`CIRCULAR_TIME`), and run in bfloat16 where the hardware
# has it (`BF16`). `liif.preset("original", ...)` is the original's setting (zero-filled input,
# no residual or image skip, zero time padding, no data consistency, the original's widths).
#
# Why a learned model can beat TV here at all: a bin holds lines acquired at different times
# of its window, so its k-space is not the Fourier transform of any single image. TV enforces
# consistency with those lines; putting the measured lines back into the *true* images at the
# bin centres already costs a large error (`benchmarks/liif_consistency_floor.py` measures it
# on these test subjects: on the real slices about as much as TV's whole error at T_low = 4).
# A network that is not forced to match the lines can learn to undo that mixing. `make reproduce` runs it for
# R = 3 and 6 and T_LOW = 4 and 8; the last cell gathers every run into the original's
# table, with its published errors beside ours.

# %%
from typing import Optional

from IPython.display import Markdown, display

from inr_utils import figures, liif
from inr_utils.runs import RunOutputs, check_device, resolve_out_dir

# %% tags=["parameters"]
R: float = 6  # nominal acceleration at 25 frames
T_LOW: int = 8  # bins of the acquisition (4 or 8 in the original)
SEED: int = 0  # seed of data sampling, initialisation and shuffling
DATA: Optional[str] = None  # None: phantom subjects; "sunnybrook": real slices split by patient; or a Sunnybrook-layout file
N: int = 64  # image size N x N (the original: 128)
T_HIGH: int = 32  # acquisitions per cardiac cycle (the original's)
T_QUERY: int = 16  # query times per training sample (jittered) and per validation sample (uniform)
T_EVAL: int = 64  # uniform query times at evaluation (the original's)
N_TRAIN: int = 36  # phantom training subjects (real data: every slice of the training patients)
N_VAL: int = 4  # phantom validation subjects
N_TEST: int = 4  # phantom test subjects (real data: every slice of the test patient)
EPOCHS: Optional[int] = None  # training epochs per encoder (None: 40 at T_LOW 4 or less, 32 above)
PLATEAU: Optional[float] = None  # stop earlier when the last quarter of the epochs improved validation by less than this fraction (None: run EPOCHS)
MIN_EPOCHS: int = 40  # epochs before the plateau rule applies (fewer: validation noise can stop a model that still learns)
MAX_SECONDS: Optional[float] = None  # training-time budget per model in seconds (None: none)
KEEP_BEST: bool = False  # end each model with its lowest-validation epoch's weights (False: the last epoch's, as the shipped models were trained)
BATCH: int = 2  # samples per step (2 learns more per epoch than 4, for a little more time per epoch on a CPU)
LR: float = 1e-3  # Adam learning rate (the original's), reduce-on-plateau
HIDDEN: int = 32  # decoder width (the original's)
LAYERS: int = 4  # decoder sine layers (the original's)
C: int = 16  # encoder output channels (the original's)
UNET_CHANNELS: list = [8, 16, 32]  # 3D UNet encoder widths (the original: [16, 32, 64])
RDN_CHANNELS: int = 12  # RDN feature channels (the original: 32)
RDN_BLOCKS: int = 2  # residual dense blocks (the original: 5)
RDN_LAYERS: int = 2  # conv layers per block (the original: 6)
RDN_GROWTH: int = 8  # growth rate (the original: 32)
TV_LOG_LAMBDAS: list = [-3.0, -2.5, -2.0, -1.5, -1.0]  # temporal-TV candidates, chosen on validation subjects
TV_ITERS: int = 300  # primal-dual iterations of temporal TV
INPUT: str = "vs"  # encoder input: "zf" zero-filled bins (the original's), "vs" view-shared bins, "zfvs" both
RESIDUAL: bool = True  # decode a correction added to the input bins interpolated to t (False: the original's)
IMAGE_SKIP: bool = True  # the encoder also outputs a per-bin image correction of the input (needs RESIDUAL)
AUGMENT: bool = True  # training augmentation: time shift, time reversal, spatial flips (False: the original's)
CIRCULAR_TIME: bool = True  # 3D networks pad periodically in time (the bins span one cycle); False: zero padding, the original's
DC_CASCADE: list = [8, 16, 32]  # widths of the small 3D UNet of each stage (UNet + soft data consistency) before the encoder ([]: off, the original's)
DC_STAGES: int = 4  # stages of DC_CASCADE
FINAL_DC: bool = True  # a last soft data-consistency step on the encoder's corrected bins
BF16: Optional[bool] = None  # bfloat16 autocast of the CNNs (None: where DEVICE has fast bfloat16)
PIXELS_PER_STEP: int = 1024  # random pixels decoded per query frame in a training step (0: all)
RESUME: bool = True  # continue from OUT_DIR/checkpoints when present
RETRAIN: bool = False  # train even when a shipped model was trained with exactly these settings (make reproduce: True)
SAMPLE_CACHE_GB: float = 2  # memory (GiB) for keeping the simulated samples, so every model after the first reads them (0: simulate again)
DEVICE: str = "cpu"  # where the models train and run: "cpu", "cuda", "cuda:<n>" or "auto" (a GPU when present); TV runs on the CPU
OUT_DIR: Optional[str] = None  # None: outputs/05_liif_architecture_search/R<R>_T<T_LOW>[_<data>][_seed<SEED>]/

# %% [markdown]
# ## The experiment: data, training and the two models as typed settings
# `liif.preset("05-defaults", ...)` and `liif.preset("original", ...)` name the two settings;
# the parameters above override the fields they name. Every setting is checked here, once.

# %%
EPOCHS = (40 if T_LOW <= 4 else 32) if EPOCHS is None else EPOCHS
DEVICE = check_device(DEVICE)
data = liif.DataConfig(DATA, N, liif.AcquisitionSpec(R, T_LOW, T_HIGH, T_QUERY), T_EVAL, N_TRAIN, N_VAL, N_TEST, SEED,
                       augment=AUGMENT, cache_gb=SAMPLE_CACHE_GB)
model = dict(T_low=T_LOW, C=C, hidden=HIDDEN, layers=LAYERS, residual=RESIDUAL, input=INPUT, image_skip=IMAGE_SKIP,
             dc_cascade=DC_CASCADE, dc_stages=DC_STAGES, final_dc=FINAL_DC, bf16=BF16)
experiment = liif.LiifExperiment(
    data, liif.TrainConfig(EPOCHS, LR, BATCH, PIXELS_PER_STEP or None, SEED, RESUME, plateau=PLATEAU, min_epochs=MIN_EPOCHS,
                           max_seconds=MAX_SECONDS, keep_best=KEEP_BEST),
    {"UNet": liif.ModelConfig(liif.EncoderConfig("unet3d", channels=UNET_CHANNELS, circular=CIRCULAR_TIME), **model),
     "RDN": liif.ModelConfig(liif.EncoderConfig("rdn3d", channels=RDN_CHANNELS, blocks=RDN_BLOCKS, layers=RDN_LAYERS,
                                                growth=RDN_GROWTH, circular=CIRCULAR_TIME), **model)},
    tv_log_lambdas=TV_LOG_LAMBDAS, tv_iters=TV_ITERS, order=("RDN", "UNet", "TV", "ZF"),
    extra={"epochs": EPOCHS, "batch": BATCH},
    shipped=None if RETRAIN else liif.shipped_dir("05_liif_architecture_search", R, DATA, SEED, T=T_LOW), device=DEVICE)
runner = liif.LiifRunner(experiment)
out = RunOutputs(resolve_out_dir(OUT_DIR, "05_liif_architecture_search", data.acquisition.R, DATA, SEED, T=T_LOW))
print(runner.describe())

# %% [markdown]
# ## Tune temporal TV on the validation subjects, train the UNet and RDN encoders, evaluate
# TV's lambda is chosen on the validation subjects; the encoders train with checkpoints
# (resumable) under `OUT_DIR/checkpoints/`; everything is evaluated on the held-out subjects
# at T_EVAL uniform query times.

# %%
result = runner.run(out)
print(liif.results_table(result.record))
figures.learning_curves(out.path("learning_curves.png"), result.histories,
                        f"05 LIIF learning curves: R = {R:g}, T_low = {T_LOW}")

# %% [markdown]
# ## Figures (first test subject) and the run's numbers

# %%
first = {name: result.recons[name][0] for name in ("ZF", "UNet", "RDN", "TV")}
figures.original_table(out, first, result.targets[0], result.record["methods"],
                       f"05 LIIF: R = {R:g}, T_low = {T_LOW} (metrics: mean over {len(result.targets)} test subjects)")
result.record["summary"] = liif.run_summary(result.record)  # the README's row and target verdicts
out.write_json("metrics.json", result.record)
written = out.commit()
print("wrote", len(written), "files to", out.out_dir)

# %% [markdown]
# ## Summary of every run so far (relative L1; the original's published value in brackets)

# %%
display(Markdown(liif.summary_table(out.out_dir.parent)))
