"""Image-quality metrics on magnitudes, over the whole cine.

For a reconstruction x and a target g (both (T, H, W), complex or real), with
a = |x|, b = |g| and peak = max over the whole cine of b:

    PSNR   = 10 log10(peak^2 / mean((a - b)^2))          [dB]
    SSIM   = mean over frames of skimage's 2-D SSIM(a_t, b_t), data_range = peak
             (Gaussian window sigma 1.5, the Wang et al. constants)
    NRMSE  = ||a - b||_2 / ||b||_2
    rel_l1 = sum |a - b| / sum b                          (the original's error)
    temporal_fidelity = sum_pixels std_t(a) / sum_pixels std_t(b)
             (1 = as dynamic as the target; near 0 = a static reconstruction)
    temporal_correlation = Pearson correlation over all voxels of a - mean_t(a) with
             b - mean_t(b) (1 = the target's motion; 0 = static or unrelated flicker,
             which can inflate temporal_fidelity but not this)
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

METRIC_KEYS = ("psnr", "ssim", "nrmse", "rel_l1", "temporal_fidelity", "temporal_correlation")


def _mags(x, target):
    a = np.abs(np.asarray(x)).astype(np.float64)
    b = np.abs(np.asarray(target)).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"reconstruction shape {a.shape} differs from target shape {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("metrics got NaN or Inf values")
    return a, b


def psnr(x, target) -> float:
    a, b = _mags(x, target)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(b.max() ** 2 / mse))


def ssim(x, target) -> float:
    a, b = _mags(x, target)
    if a.ndim == 2:
        a, b = a[None], b[None]
    peak = b.max()
    return float(np.mean([structural_similarity(a[k], b[k], data_range=peak, gaussian_weights=True,
                                                sigma=1.5, use_sample_covariance=False) for k in range(a.shape[0])]))


def nrmse(x, target) -> float:
    a, b = _mags(x, target)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def rel_l1(x, target) -> float:
    a, b = _mags(x, target)
    return float(np.abs(a - b).sum() / b.sum())


def temporal_fidelity(x, target) -> float:
    a, b = _mags(x, target)
    return float(a.std(axis=0).sum() / max(b.std(axis=0).sum(), 1e-12))


def temporal_correlation(x, target) -> float:
    a, b = _mags(x, target)
    da, db = a - a.mean(axis=0), b - b.mean(axis=0)
    denom = np.sqrt((da**2).sum() * (db**2).sum())
    return float((da * db).sum() / denom) if denom > 0 else 0.0


def all_metrics(x, target) -> dict:
    """Every metric above as a dict of floats (keys: METRIC_KEYS)."""
    return {k: globals()[k](x, target) for k in METRIC_KEYS}
