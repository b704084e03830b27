"""Coil sensitivity maps estimated from the measured k-space, and physically motivated ones for simulation.

A real scan comes without coil maps: they are estimated from the data themselves, here
from the time-averaged k-space. The masks sample different lines in different frames, so
averaging each line over the frames that sampled it fills a central band far wider than the
lines every frame shares; that band is the calibration region.

* ``"espirit"`` (default): ESPIRiT (Uecker et al., MRM 2014) by sigpy's ``EspiritCalib``: the
  calibration region's k-space kernels, their eigen-decomposition in image space, the
  eigenvector of eigenvalue 1 per pixel (0 where the eigenvalue is below ``crop``: outside
  the object). Maps satisfy sum_c |S_c|^2 = 1 inside the object.
* ``"lowres"``: Hann-windowed low-resolution coil images of the calibration band divided by
  their root sum of squares (sum_c |S_c|^2 = 1 everywhere).
* ``"nlinv"``: BART's nonlinear inversion (``bart nlinv``, image and maps estimated jointly;
  needs ``bart`` on PATH), normalised the same way (``inr_utils.bart.nlinv_maps``).

``birdcage`` gives the maps of an ideal birdcage coil (sigpy's ``birdcage_maps``), normalised
the same way, for simulations that do not use the project's Gaussian-profile maps.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from .fourier import ifft2c

METHODS = ("espirit", "lowres", "nlinv")

#: ESPIRiT's kernel width, largest calibration region and crop, chosen on the training and
#: validation mid slices (Sunnybrook SCD0000101-401, R = 6, 4 simulated coils, temporal TV;
#: benchmarks/coil_maps.py): kernel 8 with region 32 lost least against the known maps among
#: kernel 6-8 and region 24-48; crop 0 and 0.8 tied, and 0.8 still zeroes the air around an object
ESPIRIT_KERNEL, ESPIRIT_MAX_CALIB, ESPIRIT_CROP = 8, 32, 0.8
#: fewest calibration lines ESPIRiT is run with (its kernel is at most half the region wide)
ESPIRIT_MIN_CALIB = 8
#: largest calibration band of the low-resolution maps (48 lost less than 24 on 3 of the 4
#: training and validation slices, benchmarks/coil_maps.py)
LOWRES_MAX_CALIB = 48


@dataclass(frozen=True)
class CoilEstimate:
    """How a scan's coil maps were obtained (recorded in metrics.json as ``coil_maps``)."""

    method: str  # one of METHODS, or "given" (the file's own maps)
    calibration_lines: Optional[int] = None  # width of the calibration band along W (phase encode)

    def as_dict(self) -> dict:
        return asdict(self)


def calibration_band(mask: np.ndarray) -> int:
    """Width of the central band of phase-encode lines (along W) that every line of is sampled
    in at least one frame: the calibration region of the time-averaged k-space."""
    sampled = np.asarray(mask).astype(bool).any(0)
    W = len(sampled)
    centre, half = W // 2, 0
    if not sampled[centre]:
        return 0
    while centre - half - 1 >= 0 and centre + half + 1 < W and sampled[centre - half - 1] and sampled[centre + half + 1]:
        half += 1
    return 2 * half + 1


def time_averaged_kspace(kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(C, H, W): each line averaged over the frames that sampled it (zero if none did)."""
    counts = np.asarray(mask).astype(np.float32).sum(0)
    return (np.asarray(kspace).sum(0) / np.maximum(counts, 1)[None, None, :]).astype(np.complex64)


def _check(kspace, mask):
    kspace, mask = np.asarray(kspace), np.asarray(mask)
    if kspace.ndim != 4 or mask.shape != (kspace.shape[0], kspace.shape[-1]):
        raise ValueError(f"coil-map estimation needs kspace (T, C, H, W) and mask (T, W), got {kspace.shape} "
                         f"and {mask.shape}")
    if not np.iscomplexobj(kspace):
        raise ValueError(f"kspace must be complex, got {kspace.dtype}")
    if not np.all(np.isfinite(kspace)):
        raise ValueError("kspace contains NaN or Inf")
    return kspace, mask


def unit_rss(maps: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Maps (C, H, W) divided by their root sum of squares over coils (sum_c |S_c|^2 = 1), the
    RSS kept at least ``floor`` times its peak; complex64."""
    rss = np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))
    return (maps / np.maximum(rss, floor * rss.max())).astype(np.complex64)


def lowres_maps(kspace: np.ndarray, mask: np.ndarray, calib: int = LOWRES_MAX_CALIB) -> np.ndarray:
    """The ``"lowres"`` estimate (module docstring) from the ``calib`` central lines."""
    kspace, mask = _check(kspace, mask)
    k = time_averaged_kspace(kspace, mask)
    W = k.shape[-1]
    calib = max(1, min(int(calib), W))
    window = np.zeros(W, np.float32)
    lines = np.arange(W // 2 - calib // 2, W // 2 + calib - calib // 2)
    window[lines] = np.hanning(len(lines) + 2)[1:-1]
    return unit_rss(ifft2c(k * window))


def espirit_kernel(calib: int, kernel: int = ESPIRIT_KERNEL) -> int:
    """The kernel width ESPIRiT runs with: at most half the calibration region (a kernel as wide
    as the region leaves too few shifted copies to calibrate)."""
    return min(int(kernel), int(calib) // 2)


def espirit_maps(kspace: np.ndarray, mask: np.ndarray, calib: int = ESPIRIT_MAX_CALIB, kernel: int = ESPIRIT_KERNEL,
                 threshold: float = 0.02, crop: float = ESPIRIT_CROP) -> np.ndarray:
    """The ``"espirit"`` estimate (module docstring): sigpy's ``EspiritCalib`` on the
    time-averaged k-space with a ``calib`` x ``calib`` calibration region and a
    ``kernel`` x ``kernel`` k-space kernel; maps are 0 where the eigenvalue is below ``crop``."""
    from sigpy.mri.app import EspiritCalib  # imported here: sigpy's first import compiles with numba

    kspace, mask = _check(kspace, mask)
    k = time_averaged_kspace(kspace, mask)
    kernel = espirit_kernel(calib, kernel)
    # sigpy hands back a transposed (Fortran-ordered) array; C order keeps every later product with the maps contiguous
    maps = np.ascontiguousarray(EspiritCalib(k, calib_width=int(calib), kernel_width=kernel, thresh=threshold,
                                             crop=crop, show_pbar=False).run(), np.complex64)
    covered = float(((np.abs(maps) ** 2).sum(0) > 0.5).mean())
    if covered < 0.25:
        raise ValueError(f"ESPIRiT found consistent coil maps on only {covered:.0%} of the image (eigenvalue below "
                         f"crop = {crop:g} elsewhere, {calib} calibration lines, kernel {kernel}); use more calibration "
                         "lines or coil_maps='lowres'")
    return maps


def estimate(kspace: np.ndarray, mask: np.ndarray, method: str = "espirit",
             calib: Optional[int] = None) -> tuple[np.ndarray, CoilEstimate]:
    """Coil maps (C, H, W) from the data and how they were made. ``calib`` (lines along W)
    defaults to min(32 for ESPIRiT or 48 for lowres, the calibration band); a band narrower
    than ESPIRiT needs (8 lines; 2 for lowres) is an error naming the band. ``nlinv`` uses
    the whole time-averaged k-space (``calib`` does not apply)."""
    if method not in METHODS:
        raise ValueError(f"unknown coil-map method {method!r}; choose from {METHODS}")
    kspace, mask = _check(kspace, mask)
    if method == "nlinv":  # the whole time-averaged k-space, no calibration region
        from . import bart  # bart imports io, which imports this module

        if not bart.available():
            raise ValueError("coil-map estimation 'nlinv' runs BART's nlinv, and `bart` is not on PATH (apt-get install bart)")
        return bart.nlinv_maps(kspace, mask), CoilEstimate(method)
    band = calibration_band(mask)
    calib = min(ESPIRIT_MAX_CALIB if method == "espirit" else LOWRES_MAX_CALIB, band) if calib is None else int(calib)
    need = ESPIRIT_MIN_CALIB if method == "espirit" else 2
    if band < need:
        raise ValueError(f"coil-map estimation ({method}) needs at least {need} central phase-encode lines sampled "
                         f"(in some frame); this scan's central band is {band} lines wide")
    if calib < need or calib > band:
        raise ValueError(f"coil-map estimation ({method}) needs a calibration region of {need} to {band} central "
                         f"lines (the central band sampled in at least one frame is {band} lines wide), got {calib}")
    maps = espirit_maps(kspace, mask, calib) if method == "espirit" else lowres_maps(kspace, mask, calib)
    return maps, CoilEstimate(method, calib)


def birdcage(C: int, H: int, W: int, radius: float = 1.5) -> np.ndarray:
    """Maps (C, H, W) of an ideal C-rung birdcage coil of relative ``radius`` (sigpy's
    ``birdcage_maps``), normalised to sum_c |S_c|^2 = 1."""
    from sigpy.mri import birdcage_maps

    if C < 1:
        raise ValueError(f"number of coils must be >= 1, got {C}")
    maps = np.asarray(birdcage_maps((C, H, W), r=radius), np.complex64)
    return (maps / np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))).astype(np.complex64)
