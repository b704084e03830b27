"""LIIF for continuous-time cine: a convolutional encoder reads the binned cine, a sine-MLP
decoder is queried at any time t (the original's LIIF sections).

Modules:

* ``config``: typed settings (``AcquisitionSpec``, ``DataConfig``, ``EncoderConfig``,
  ``ModelConfig``, ``TrainConfig``) and named presets (``preset("original", "unet3d", 8)``).
* ``data``: subjects (phantom seeds, or Sunnybrook slices split by patient), view sharing,
  samples (``Sample``) and datasets.
* ``encoders``: UNet (2D, 3D), RDN (3D), periodic time padding, the ``ENCODERS`` registry.
* ``model``: the sine decoder and ``LiifCine`` (residual, image skip, soft data consistency).
* ``training``: the training loop (one process, or several with ``World``: PyTorch DDP),
  checkpoints, ``save_model`` / ``load_model``; ``ddp``: the torchrun entry point
  (``torchrun --nproc_per_node N -m inr_utils.liif.ddp ...``).
* ``evaluation``: baselines at the query times (ZF, tuned temporal TV), prediction, metrics,
  the consistency floor.
* ``experiment``: the runner of notebooks 04 and 05 (``LiifExperiment``, ``LiifRunner``).
* ``tables``: the original's table beside its published numbers; a run's summary block.
* ``shipped``: trained models that ship with the package (provenance, ``ship``, ``shipped_dir``);
  ``reconstruct`` (``evaluation``) applies one to your own binned k-space.

Reconstructing your own binned k-space with a shipped (or your own saved) model::

    from inr_utils import liif
    model = liif.load_model(liif.shipped_dir("05_liif_architecture_search", 6, "sunnybrook", T=8) / "UNet.pt")
    cine = liif.reconstruct(model, kspace, mask, T_query=64)   # kspace (8, H, W) complex, mask (8, W)
"""
from .config import (ENCODER_DEFAULTS, INPUTS, PRESETS, AcquisitionSpec, DataConfig, EncoderConfig, ModelConfig,
                     TrainConfig, preset, preset_data)
from .data import (PHANTOM_SEEDS, CineSubject, LiifDataset, PhantomSubject, Sample, cine_subjects, collate, datasets,
                   make_sample, sample_from_bins, subjects, view_share)
from .encoders import ENCODERS, RDN3D, CircularTimeConv3d, UNet, he_init, output_conv, upsample_space
from .evaluation import (best_to_tv, consistency_floor, evaluate_all, interpolate_bins, mean_metrics, predict, reconstruct, tune_tv,
                         tv_at_queries, zf_at_queries)
from .experiment import LiifExperiment, LiifResult, LiifRunner
from .model import LiifCine, SineDecoder, bf16_supported
from .shipped import SHIPPED_MODELS, provenance, ship, shipped_dir
from .tables import results_table, run_summary, run_summary_2d_vs_3d, summary_table
from .training import World, evaluate_loss, load_model, rel_l1_loss, save_model, train, train_all

__all__ = [
    "ENCODER_DEFAULTS", "INPUTS", "PRESETS", "AcquisitionSpec", "DataConfig", "EncoderConfig", "ModelConfig",
    "TrainConfig", "preset", "preset_data", "PHANTOM_SEEDS", "CineSubject", "LiifDataset", "PhantomSubject", "Sample", "cine_subjects", "collate",
    "datasets", "make_sample", "sample_from_bins", "subjects", "view_share", "ENCODERS", "RDN3D", "CircularTimeConv3d", "UNet",
    "he_init", "output_conv", "upsample_space", "best_to_tv", "consistency_floor", "evaluate_all",
    "interpolate_bins", "mean_metrics", "predict", "reconstruct", "tune_tv", "tv_at_queries", "zf_at_queries", "LiifExperiment",
    "LiifResult", "LiifRunner", "LiifCine", "SineDecoder", "bf16_supported", "results_table", "run_summary", "run_summary_2d_vs_3d",
    "summary_table", "SHIPPED_MODELS", "provenance", "ship", "shipped_dir", "World", "evaluate_loss", "load_model", "rel_l1_loss", "save_model", "train", "train_all",
]
