"""LIIF evaluation: the baselines at the query times (zero filling, temporal TV tuned on the
validation subjects), predictions, metrics averaged over subjects, and the consistency floor.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from ..fourier import SenseOp, fft2c, ifft2c
from ..metrics import all_metrics, rel_l1
from ..tv import tv_recon
from .data import LiifDataset, Sample, collate, sample_from_bins
from .model import LiifCine

def interpolate_bins(x_bins: np.ndarray, bin_times: np.ndarray, t_query: np.ndarray) -> np.ndarray:
    """Periodic linear interpolation in time from bin centres to query times."""
    T = x_bins.shape[0]
    pos = np.mod(t_query - bin_times[0], 1.0) * T
    k0 = np.floor(pos).astype(int)
    w = (pos - k0)[:, None, None]
    return ((1 - w) * x_bins[k0 % T] + w * x_bins[(k0 + 1) % T]).astype(np.complex64)


def tv_at_queries(sample: Sample, log_lambda: float, iters: int = 300) -> np.ndarray:
    """Temporal TV on one sample's binned k-space, interpolated to its query times."""
    mask = sample.mask.numpy()
    op = SenseOp(np.ones((1,) + tuple(sample.kspace.shape[-2:]), np.complex64), mask)
    x, _ = tv_recon(op, sample.kspace[:, None], 10.0 ** log_lambda, iters=iters)
    return interpolate_bins(x, sample.bin_times.numpy(), sample.t_query.numpy())


def consistency_floor(sample: Sample) -> dict:
    """Errors (relative L1 at the query times) of the TRUE images at the bin centres,
    interpolated in time, alone (``true_bins``) and with each bin's measured lines put back
    (``true_bins_with_measured_lines``): a bin mixes lines acquired at different times, so the
    second is a floor for any reconstruction that enforces consistency with the bins.
    Needs a sample made ``with_bin_truth``; single coil (the LIIF acquisition)."""
    if sample.truth_bins is None:
        raise ValueError("consistency_floor needs a sample made with with_bin_truth=True")
    truth = sample.truth_bins.numpy()
    mask = sample.mask.numpy().astype(bool)[:, None, :]
    with_lines = ifft2c(np.where(mask, sample.kspace.numpy(), fft2c(truth)))
    bt, tq, target = sample.bin_times.numpy(), sample.t_query.numpy(), sample.target.numpy()
    return {"true_bins": rel_l1(interpolate_bins(truth, bt, tq), target),
            "true_bins_with_measured_lines": rel_l1(interpolate_bins(with_lines, bt, tq), target)}


def zf_at_queries(sample: Sample, key: str = "zf") -> np.ndarray:
    """The sample's zero-filled (``key="vs"``: view-shared) bins interpolated to its query times."""
    bins = getattr(sample, key)
    bins = torch.complex(bins[0], bins[1]).numpy()
    return interpolate_bins(bins, sample.bin_times.numpy(), sample.t_query.numpy())


def tune_tv(dataset: LiifDataset, log_lambdas: Sequence[float], iters: int = 300) -> tuple[float, dict]:
    """The log10(lambda) with the lowest mean relative-L1 error on ``dataset`` (validation subjects)."""
    scores = {}
    for ll in log_lambdas:
        errs = [rel_l1(tv_at_queries(dataset[i], ll, iters), dataset[i].target.numpy()) for i in range(len(dataset))]
        scores[float(ll)] = float(np.mean(errs))
    return min(scores, key=scores.get), scores


@torch.no_grad()
def predict(model: LiifCine, sample: Sample) -> tuple[np.ndarray, float]:
    """One cine at the sample's query times, and the seconds it took (on the model's device,
    the copies to and from it included)."""
    model.eval()
    device = next(model.parameters()).device
    t0 = time.perf_counter()
    out = model.apply_to(collate([sample]).to(device))[0].cpu()
    return out.numpy(), time.perf_counter() - t0


def reconstruct(model: LiifCine, kspace, mask, bin_times=None, t_query=None, T_query: int = 64) -> np.ndarray:
    """Your own binned k-space (T_low, H, W) and mask (T_low, W) reconstructed by a trained model
    at the query times: (T_query, H, W) complex (``sample_from_bins`` says what each input is).

        model = liif.load_model("inr_utils/data/liif_models/05_liif_architecture_search/R6_T8_sunnybrook/UNet.pt")
        cine = liif.reconstruct(model, kspace, mask, T_query=64)
    """
    sample = sample_from_bins(kspace, mask, bin_times, t_query, T_query)  # checks shapes, values and times
    if sample.kspace.shape[0] != model.T_low:
        raise ValueError(f"this model reads {model.T_low} bins; the k-space has {sample.kspace.shape[0]}")
    return predict(model, sample)[0]


def mean_metrics(recons: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> dict:
    """Metrics averaged over subjects (each computed over that subject's whole cine)."""
    per = [all_metrics(x, t) for x, t in zip(recons, targets)]
    return {k: float(np.mean([p[k] for p in per])) for k in per[0]}


def best_to_tv(result: dict) -> float:
    """Relative L1 of the better LIIF encoder (RDN or UNet) over temporal TV's, from a 05 ``metrics.json``."""
    m = result["methods"]
    return min(m["RDN"]["rel_l1"], m["UNet"]["rel_l1"]) / m["TV"]["rel_l1"]


def evaluate_all(models: dict, test_set: LiifDataset) -> tuple[list, dict, dict]:
    """Targets, reconstructions {name: [cine per subject]} (ZF included) and mean inference
    seconds per cine, at the test set's uniform query times."""
    samples = [test_set[i] for i in range(len(test_set))]
    recons, seconds = {"ZF": [zf_at_queries(s) for s in samples]}, {"ZF": 0.0}
    for name, model in models.items():
        preds = [predict(model, s) for s in samples]
        recons[name], seconds[name] = [p[0] for p in preds], float(np.mean([p[1] for p in preds]))
    return samples, recons, seconds
