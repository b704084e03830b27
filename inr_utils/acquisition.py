"""Simulated accelerated multi-coil Cartesian cine acquisition.

Pieces compose like the original system's: smooth random
phase, coil maps normalised to sum_c |S_c|^2 = 1, per-frame 1-D variable-density
masks along W, complex Gaussian noise on the sampled samples, zero filling
(A^H y), and the continuous-time *binned* acquisition of the LIIF experiments.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from .fourier import SenseOp, fft2c

#: The original system's mask parameters (sw, sm, sa) for p(x) = sm exp(-|x|/sw) + sa.
ORIGINAL_MASK_PARAMS = {2: (0.9, 0.7, 0.075), 3: (0.43, 0.7, 0.057), 4: (0.3, 0.7, 0.045), 6: (0.15, 0.7, 0.057535)}


def check_acceleration(R, lo: float = 1.0, hi: Optional[float] = None) -> float:
    """Return R as float, or raise one clear error if it is not a finite number >= lo."""
    try:
        value = float(R)
    except (TypeError, ValueError):
        raise ValueError(f"acceleration R must be a number, got {R!r}") from None
    if not np.isfinite(value) or value < lo:
        raise ValueError(f"acceleration R must be finite and >= {lo:g}, got {R!r}")
    if hi is not None and value > hi:
        raise ValueError(f"acceleration R must be <= {hi:g} here, got {R!r}")
    return value


# ---------------------------------------------------------------- phase and coils
def random_phase(t, H: int, W: int, seed: int, grid: int = 5, scale: float = 1.0) -> np.ndarray:
    """Smooth phase (radians) at times t in [0, 1]: a grid^3 standard-normal lattice
    interpolated trilinearly (the original's 5 x 5 x 5 scheme), evaluable at any t."""
    lattice = np.random.default_rng(seed).standard_normal((grid, grid, grid)) * scale
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    # trilinear = linear along t, then y, then x (separable, so cheaper than one 3D interpolation)
    out = _linear_weights(np.clip(t, 0, 1) * (grid - 1), grid) @ lattice.reshape(grid, -1)
    out = np.einsum("yi,tij->tyj", _linear_weights(np.linspace(0, grid - 1, H), grid), out.reshape(-1, grid, grid))
    return (out @ _linear_weights(np.linspace(0, grid - 1, W), grid).T).astype(np.float32)


def _linear_weights(coords: np.ndarray, n: int) -> np.ndarray:
    """(len(coords), n) matrix of linear interpolation at ``coords`` in [0, n - 1] on n nodes."""
    i0 = np.clip(np.floor(coords).astype(int), 0, n - 2)
    w = coords - i0
    m = np.zeros((len(coords), n))
    m[np.arange(len(coords)), i0] = 1 - w
    m[np.arange(len(coords)), i0 + 1] += w
    return m


def coil_maps(C: int, H: int, W: int, seed: int) -> np.ndarray:
    """C smooth coil sensitivities (C, H, W) complex64 with sum_c |S_c|^2 = 1.

    Magnitude exp(-d / (2 l)) around an anchor (the original's form), anchors spread
    around the body; each coil also carries a smooth linear phase.
    """
    if C < 1:
        raise ValueError(f"number of coils must be >= 1, got {C}")
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, W), indexing="ij")
    angles = 2 * np.pi * (np.arange(C) / C) + rng.uniform(0, 2 * np.pi) + rng.uniform(-0.3, 0.3, C)
    maps = []
    for c in range(C):
        ax, ay = 1.1 * np.cos(angles[c]), 1.1 * np.sin(angles[c])
        d = np.hypot(x - ax, y - ay)
        l = 0.5 * d.max()
        phase = rng.uniform(-1, 1) * x + rng.uniform(-1, 1) * y + rng.uniform(0, 2 * np.pi)
        maps.append(np.exp(-d / (2 * l)) * np.exp(1j * phase) if C > 1 else np.ones_like(d))
    maps = np.stack(maps)
    maps /= np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))
    return maps.astype(np.complex64)


# ---------------------------------------------------------------- masks
def _density(W: int, decay: float, floor: float) -> np.ndarray:
    x = np.linspace(-1, 1, W)
    return np.exp(-np.abs(x) / decay) + floor


def center_lines(W: int, n: int) -> np.ndarray:
    """Indices of the n lines around k-space centre (index W // 2 is DC)."""
    return np.arange(W // 2 - n // 2, W // 2 - n // 2 + n)


def variable_density_masks(T: int, W: int, R: float, seed: int, *, decay: float = 0.3, floor: float = 0.01,
                           n_center: Optional[int] = None) -> np.ndarray:
    """Per-frame 1-D variable-density masks (T, W) uint8 whose achieved acceleration
    T*W / (lines sampled) is R to within half a line over the whole cine.

    The total line budget round(T*W/R) is split over frames (counts differ by at most
    one); each frame keeps the ``n_center`` central lines (default max(2, W // 16)) and
    draws the rest without replacement with probability proportional to
    exp(-|x|/decay) + floor, x in [-1, 1] (the density of the original's LIIF masks).
    """
    R = check_acceleration(R)
    rng = np.random.default_rng(seed)
    total = int(round(T * W / R))
    counts = np.full(T, total // T)
    counts[rng.permutation(T)[: total - counts.sum()]] += 1
    centre = center_lines(W, min(max(2, W // 16) if n_center is None else n_center, W))
    if counts.min() < len(centre):
        raise ValueError(f"R = {R:g} leaves {counts.min()} lines per frame, fewer than the {len(centre)} centre lines")
    p = _density(W, decay, floor)
    p[centre] = 0
    masks = np.zeros((T, W), dtype=np.uint8)
    for k in range(T):
        masks[k, centre] = 1
        extra = rng.choice(W, size=counts[k] - len(centre), replace=False, p=p / p.sum())
        masks[k, extra] = 1
    return masks


def original_masks(T: int, W: int, R: int, seed: int, candidates: int = 1000) -> np.ndarray:
    """The original system's masks: Bernoulli lines with p = sm exp(-|x|/sw) + sa,
    two centre lines, keep candidates whose sampling fraction is within 0.01 of the
    mean, draw T of them. Only R in {2, 3, 4, 6}; achieved R is whatever results."""
    if R not in ORIGINAL_MASK_PARAMS:
        raise ValueError(f"the original mask parameters exist for R in {sorted(ORIGINAL_MASK_PARAMS)}, got {R!r}")
    sw, sm, sa = ORIGINAL_MASK_PARAMS[R]
    rng = np.random.default_rng(seed)
    p = np.clip(sm * np.exp(-np.abs(np.linspace(-1, 1, W)) / sw) + sa, 0, 1)
    cand = (rng.random((candidates, W)) < p).astype(np.uint8)
    cand[:, center_lines(W, 2)] = 1
    frac = cand.mean(1)
    keep = cand[np.abs(frac - frac.mean()) <= 0.01]
    return keep[rng.choice(len(keep), size=T, replace=len(keep) < T)]


def make_masks(T: int, W: int, R: float, seed: int, style: str = "vd") -> np.ndarray:
    """Masks by style: ``"vd"`` (exact achieved R, default) or ``"original"``."""
    if style == "vd":
        return variable_density_masks(T, W, R, seed)
    if style == "original":
        return original_masks(T, W, int(R) if float(R).is_integer() else R, seed)
    raise ValueError(f"unknown mask style {style!r}; use 'vd' or 'original'")


def achieved_acceleration(mask) -> float:
    """T*W / number of sampled lines, over the whole cine."""
    mask = np.asarray(mask)
    return mask.size / max(int(mask.astype(bool).sum()), 1)


# ---------------------------------------------------------------- acquisition
@dataclass
class Acquisition:
    """A simulated or loaded scan in the project's layout (see README / io.py)."""

    kspace: np.ndarray  # (T, C, H, W) complex64, zeros where not sampled
    mask: np.ndarray  # (T, W) uint8
    smaps: np.ndarray  # (C, H, W) complex64
    target: Optional[np.ndarray] = None  # (T, H, W) complex64 ground truth
    acceleration: float = float("nan")  # requested R (NaN when unknown)
    noise_std: float = 0.0
    seed: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def op(self) -> SenseOp:
        return SenseOp(self.smaps, self.mask)

    @property
    def achieved_acceleration(self) -> float:
        return achieved_acceleration(self.mask)

    def zero_filled(self) -> np.ndarray:
        """A^H y as (T, H, W) complex64."""
        return self.op.adjoint(torch.from_numpy(self.kspace)).numpy()


def add_noise(kspace: np.ndarray, mask: np.ndarray, std: float, seed: int) -> np.ndarray:
    """Add circular complex Gaussian noise (E|n|^2 = std^2) on sampled lines only."""
    rng = np.random.default_rng(seed)
    noise = (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape)) * (std / np.sqrt(2))
    return (kspace + noise * mask[:, None, None, :]).astype(np.complex64)


#: coil models of ``simulate``: the project's Gaussian-profile maps, or an ideal birdcage coil
COIL_MODELS = ("gaussian", "birdcage")


def noise_for_snr(target: np.ndarray, snr_db: float) -> float:
    """k-space noise std giving an image SNR of ``snr_db``: 20 log10(rms |target| / sigma),
    sigma being the noise std of each coil image (equal to the k-space std for the
    orthonormal FFT)."""
    if not np.isfinite(snr_db):
        raise ValueError(f"SNR in dB must be finite, got {snr_db!r}")
    return float(np.sqrt(np.mean(np.abs(target) ** 2)) / 10 ** (snr_db / 20))


def simulate(magnitude: np.ndarray, R: float, seed: int = 0, coils: int = 4, noise_std: float = 1e-3,
             mask_style: str = "vd", phase_scale: float = 1.0, coil_model: str = "gaussian",
             snr_db: Optional[float] = None) -> Acquisition:
    """Simulate an accelerated multi-coil acquisition of a magnitude cine (T, H, W).

    image = |cine| exp(i phase);  y = M F (S image) + n  on sampled lines.
    The magnitude is used as given (normalise it first; notebooks scale to [0, 1]).
    ``coil_model``: ``COIL_MODELS``; ``snr_db`` (when given) sets the noise instead of
    ``noise_std`` (``noise_for_snr``).
    """
    R = check_acceleration(R)
    magnitude = np.asarray(magnitude, dtype=np.float32)
    if magnitude.ndim != 3:
        raise ValueError(f"cine must be (T, H, W), got shape {magnitude.shape}")
    if not np.all(np.isfinite(magnitude)):
        raise ValueError("cine contains NaN or Inf")
    T, H, W = magnitude.shape
    phase = random_phase(np.linspace(0, 1, T), H, W, seed=seed + 1, scale=phase_scale)
    target = (magnitude * np.exp(1j * phase)).astype(np.complex64)
    if coil_model == "gaussian":
        smaps = coil_maps(coils, H, W, seed=seed + 2)
    elif coil_model == "birdcage":
        from .coils import birdcage

        smaps = birdcage(coils, H, W)
    else:
        raise ValueError(f"unknown coil model {coil_model!r}; choose from {COIL_MODELS}")
    if snr_db is not None:
        noise_std = noise_for_snr(target, snr_db)
    mask = make_masks(T, W, R, seed=seed + 3, style=mask_style)
    clean = SenseOp(smaps, mask).forward(torch.from_numpy(target)).numpy()
    kspace = add_noise(clean, mask, noise_std, seed=seed + 4)
    return Acquisition(kspace, mask, smaps, target, R, noise_std, seed)


# ---------------------------------------------------------------- binned continuous-time acquisition
@dataclass
class BinnedAcquisition:
    """Binned k-space of the LIIF experiments (single sample per line per bin)."""

    kspace: np.ndarray  # (T_low, C, H, W) complex64
    mask: np.ndarray  # (T_low, W) uint8
    smaps: np.ndarray  # (C, H, W)
    bin_times: np.ndarray  # (T_low,) centre time of each bin
    zero_filled: np.ndarray  # (T_low, H, W) complex64

    @property
    def op(self) -> SenseOp:
        return SenseOp(self.smaps, self.mask)


def binned_acquisition(image_at: Callable[[np.ndarray], np.ndarray], R: float, T_low: int, T_high: int = 32, *,
                       seed: int = 0, smaps: Optional[np.ndarray] = None, noise_std: float = 0.0,
                       decay: float = 0.3, floor: float = 0.01, nominal_frames: int = 25) -> BinnedAcquisition:
    """Continuous-time binned acquisition (the original's architecture search).

    T_high acquisitions at t_j = j / T_high, each a 1-D VD mask at R_high = R * T_high /
    nominal_frames (R is the nominal rate at 25 frames); groups of T_high / T_low
    consecutive acquisitions form a bin; in each bin only the *first* acquisition of
    each line is kept and the bin's k-space is the sum of the kept lines.
    ``image_at(t)`` returns complex images (len(t), H, W) at times t.
    """
    R = check_acceleration(R)
    if T_low < 1 or T_high % T_low:
        raise ValueError(f"T_high ({T_high}) must be a positive multiple of T_low ({T_low})")
    t_high = np.arange(T_high) / T_high
    images = np.asarray(image_at(t_high))
    if images.ndim != 3 or images.shape[0] != T_high:
        raise ValueError(f"image_at must return (T_high, H, W), got {images.shape}")
    _, H, W = images.shape
    if smaps is None:
        smaps = np.ones((1, H, W), np.complex64)
    R_high = max(R * T_high / nominal_frames, 1.0)
    masks = variable_density_masks(T_high, W, R_high, seed, decay=decay, floor=floor, n_center=1)
    k_high = fft2c(images[:, None] * smaps[None])  # (T_high, C, H, W)
    per_bin = T_high // T_low
    kspace = np.zeros((T_low,) + k_high.shape[1:], np.complex64)
    mask = np.zeros((T_low, W), np.uint8)
    for b in range(T_low):
        for j in range(b * per_bin, (b + 1) * per_bin):
            new = (masks[j] == 1) & (mask[b] == 0)  # first acquisition of each line wins
            kspace[b][..., new] = k_high[j][..., new]
            mask[b] |= new.astype(np.uint8)
    if noise_std > 0:
        kspace = add_noise(kspace, mask, noise_std, seed + 1)
    bin_times = (np.arange(T_low) + 0.5) / T_low - 0.5 / T_high
    zf = SenseOp(smaps, mask).adjoint(torch.from_numpy(kspace)).numpy()
    return BinnedAcquisition(kspace, mask, np.asarray(smaps, np.complex64), bin_times, zf)
