"""LIIF data: subjects (phantom seeds, or real slices split by patient) give magnitude images
at any t; each sample draws a smooth phase, simulates the continuous-time binned acquisition
(``AcquisitionSpec``) and holds the zero-filled and view-shared bins and the targets at its
query times (``Sample``); ``datasets(DataConfig)`` gives the train / validation / test sets.
"""
from __future__ import annotations

import dataclasses

from dataclasses import dataclass, fields
from typing import Optional

import numpy as np
import torch

from ..acquisition import binned_acquisition, random_phase
from ..fourier import ifft2c
from ..io import (SUNNYBROOK_SPLIT, DataFormatError, is_phantom, load_case, load_sunnybrook, normalise, resample_cine,
                  sunnybrook_slices)
from ..phantom import BeatingHeartPhantom
from ..runs import check_int
from .config import AcquisitionSpec, DataConfig

#: phantom subject seeds per split (disjoint ranges)
PHANTOM_SEEDS = {"train": 1000, "val": 5000, "test": 9000}


class PhantomSubject:
    def __init__(self, seed: int, N: int):
        self.name, self.N, self.phantom = f"phantom-{seed}", N, BeatingHeartPhantom(seed)

    def magnitude(self, t) -> np.ndarray:
        return self.phantom(np.mod(t, 1.0), self.N, self.N)


class CineSubject:
    """A real cine sampled at any t by periodic linear interpolation between its frames."""

    def __init__(self, name: str, cine: np.ndarray, N: int):
        self.name, self.N = name, N
        self.frames = resample_cine(cine, None, N)

    def magnitude(self, t) -> np.ndarray:
        T0 = self.frames.shape[0]
        pos = np.mod(np.asarray(t, dtype=np.float64), 1.0) * T0
        i0 = np.floor(pos).astype(int)
        w = (pos - i0)[:, None, None].astype(np.float32)
        return (1 - w) * self.frames[i0 % T0] + w * self.frames[(i0 + 1) % T0]


def subjects(DATA, split: str, N: int, count: Optional[int] = None) -> list:
    """Subjects of one split. ``DATA=None``: phantom seeds (``count`` of them);
    ``"sunnybrook"``: every slice of the split's patients (fixed patient split);
    a path: an HDF5 file in the Sunnybrook layout (same split rule)."""
    if split not in PHANTOM_SEEDS:
        raise ValueError(f"split must be one of {list(PHANTOM_SEEDS)}, got {split!r}")
    if is_phantom(DATA):
        return [PhantomSubject(PHANTOM_SEEDS[split] + i, N) for i in range(count or 1)]
    path = None if str(DATA).lower() == "sunnybrook" else str(DATA)
    index = sunnybrook_slices(path)
    out = []
    for patient in SUNNYBROOK_SPLIT[split]:
        for s in index.get(patient, []):
            cine, _ = load_sunnybrook(patient, s, path)
            out.append(CineSubject(f"{patient}/{s}", cine, N))
    if not out:
        raise ValueError(f"no slices of the {split} patients {SUNNYBROOK_SPLIT[split]} in {path or 'the Sunnybrook file'}")
    return out[:count] if count else out


def cine_subjects(sources, N: int) -> list:
    """Subjects from your own fully sampled cines, e.g. another scanner's, to evaluate trained
    models on data they never saw.

    Each source is anything a notebook's ``DATA`` takes that holds a fully sampled cine: an image
    cine (.npy/.npz/.h5), a k-space file with a ``target``, a CMRxRecon file or folder with its
    fully sampled data, an ISMRMRD file of a fully sampled scan (``path::slice`` for one slice),
    or ``"sunnybrook:<patient>/<slice>"``. The magnitude of the fully sampled cine is cropped to
    its central square (the heart is near the centre; resizing a rectangle would distort it),
    scaled to [0, 1] by its min and max as the Sunnybrook slices are, and resized to N x N."""
    if isinstance(sources, (str, bytes)) or not len(sources):
        raise ValueError("cine_subjects takes a non-empty list of cines (DATA strings)")
    out = []
    for source in map(str, sources):
        if is_phantom(source):
            raise ValueError(f"{source!r} names the embedded phantom; give a file of a real cine")
        target = load_case(source, T=None, N=None).target
        if target is None:
            raise DataFormatError(f"{source}: holds no fully sampled cine (no 'target'): a model can only be scored "
                                  "against a fully sampled scan")
        mag = np.abs(np.asarray(target))
        H, W = mag.shape[-2:]
        side = min(H, W)
        top, left = (H - side) // 2, (W - side) // 2
        out.append(CineSubject(source, normalise(mag[:, top:top + side, left:left + side]), N))
    return out


def view_share(kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill each bin's unsampled lines from the nearest bin in (periodic) time that
    sampled them (view sharing); lines no bin sampled stay zero. kspace (T, ..., W)."""
    T, W = mask.shape
    dist = np.abs(np.arange(T)[:, None] - np.arange(T)[None, :])
    dist = np.minimum(dist, T - dist)  # (T, T) periodic distance between bins
    out = kspace.copy()
    for j in range(W):
        have = np.flatnonzero(mask[:, j])
        if len(have) == 0:
            continue
        source = have[np.argmin(dist[:, have], axis=1)]  # nearest sampling bin for every bin
        out[..., j] = kspace[source][..., j]
    return out


@dataclass
class Sample:
    """One training or evaluation sample (a batch of them after ``collate``: a leading B axis).

    Images are complex; bins are stored as (real, imag) channels for the encoders."""

    zf: torch.Tensor  # (2, T_low, H, W) zero-filled bins
    vs: torch.Tensor  # (2, T_low, H, W) view-shared bins
    bin_times: torch.Tensor  # (T_low,) bin centres in [0, 1)
    t_query: torch.Tensor  # (T_query,) query times in [0, 1)
    target: torch.Tensor  # (T_query, H, W) complex: the true images at the query times
    kspace: torch.Tensor  # (T_low, H, W) complex: the bins' measured lines (single coil)
    mask: torch.Tensor  # (T_low, W) sampled lines per bin
    truth_bins: Optional[torch.Tensor] = None  # (T_low, H, W) complex: true images at the bin centres

    def tensors(self) -> dict:
        """The fields that are set, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for v in self.tensors().values())

    def to(self, device) -> "Sample":
        """The sample (or batch) with every tensor on ``device``."""
        return dataclasses.replace(self, **{k: v.to(device) for k, v in self.tensors().items()})


def make_sample(subject, spec: AcquisitionSpec, seed: int, train: bool, augment: bool = False,
                with_bin_truth: bool = False) -> Sample:
    """One sample of ``subject``; ``with_bin_truth`` adds ``truth_bins``, the true images at the
    bin centres.

    Training: query times jittered by up to half a spacing, random phase with p = 0.5.
    Evaluation: uniform query times, a random phase always (seeded)."""
    rng = np.random.default_rng(seed)
    use_phase = (rng.random() < 0.5) if train else True
    phase_seed = int(rng.integers(2**31))
    N = subject.N
    # training augmentation: periodic time shift, time reversal and spatial flips of the subject
    shift, direction = (rng.random(), rng.choice([-1, 1])) if augment else (0.0, 1)
    flips = tuple(ax for ax in (-2, -1) if augment and rng.random() < 0.5)

    def image_at(t):
        mag = subject.magnitude(np.mod(direction * np.asarray(t) + shift, 1.0))
        if flips:
            mag = np.ascontiguousarray(np.flip(mag, flips))
        if not use_phase:
            return mag.astype(np.complex64)
        return (mag * np.exp(1j * random_phase(np.mod(t, 1.0), N, N, phase_seed))).astype(np.complex64)

    acq = binned_acquisition(image_at, spec.R, spec.T_low, spec.T_high, seed=int(rng.integers(2**31)),
                             noise_std=spec.noise_std)
    tq = (np.arange(spec.T_query) + 0.5) / spec.T_query
    if train:
        tq = np.mod(tq + rng.uniform(-0.5, 0.5, spec.T_query) / spec.T_query, 1.0)
    target = image_at(tq)
    zf = torch.from_numpy(acq.zero_filled)
    vs = torch.from_numpy(np.ascontiguousarray(
        (np.conj(acq.smaps)[None] * ifft2c(view_share(acq.kspace, acq.mask))).sum(1)).astype(np.complex64))
    return Sample(zf=torch.stack([zf.real, zf.imag]), vs=torch.stack([vs.real, vs.imag]),
                  bin_times=torch.from_numpy(acq.bin_times).float(), t_query=torch.from_numpy(tq).float(),
                  target=torch.from_numpy(target), kspace=torch.from_numpy(acq.kspace[:, 0]),
                  mask=torch.from_numpy(acq.mask),
                  truth_bins=torch.from_numpy(image_at(acq.bin_times)) if with_bin_truth else None)


def sample_from_bins(kspace, mask, bin_times=None, t_query=None, T_query: int = 64) -> Sample:
    """A ``Sample`` from your own binned single-coil (or coil-combined) Cartesian k-space, to
    reconstruct with a trained model (``liif.reconstruct``); no target is known (zeros).

    kspace (T_low, H, W) complex, centred (``fourier.fft2c`` convention), unsampled lines zero;
    mask (T_low, W) 1 where a bin sampled the phase-encode line; bin_times (T_low,) the bins'
    centre times as fractions of the cycle in [0, 1) (default (k + 1/2) / T_low); t_query the
    times to reconstruct (default ``T_query`` uniform times). Any intensity scale: the models
    divide their input by its peak and multiply the output back."""
    kspace, mask = np.asarray(kspace), np.asarray(mask)
    if kspace.ndim != 3 or not np.iscomplexobj(kspace):
        raise ValueError(f"kspace must be a complex array (T_low, H, W), got {kspace.dtype} of shape {kspace.shape}")
    if mask.shape != (kspace.shape[0], kspace.shape[2]):
        raise ValueError(f"mask must be (T_low, W) = {(kspace.shape[0], kspace.shape[2])}, got {mask.shape}")
    if not np.all(np.isfinite(kspace)):
        raise ValueError("kspace holds NaN or Inf values")
    if not np.isin(mask, (0, 1)).all() or not mask.any(axis=1).all():
        raise ValueError("mask must hold 0/1 and every bin must sample at least one line")
    T_low = kspace.shape[0]
    if t_query is None:
        T_query = check_int("T_query", T_query)
    bin_times = (np.arange(T_low) + 0.5) / T_low if bin_times is None else np.asarray(bin_times, np.float64)
    t_query = (np.arange(T_query) + 0.5) / T_query if t_query is None else np.asarray(t_query, np.float64)
    for name, t, n in (("bin_times", bin_times, T_low), ("t_query", t_query, None)):
        if t.ndim != 1 or len(t) == 0 or (n is not None and len(t) != n) or not np.all((t >= 0) & (t < 1)):
            raise ValueError(f"{name} must be a 1-D array of times in [0, 1)" + (f" of length {n}" if n else "") + f", got {t!r}")
    mask = mask.astype(np.uint8)
    kspace = (kspace * mask[:, None, :]).astype(np.complex64)
    zf, vs = ifft2c(kspace), ifft2c(view_share(kspace, mask))
    as_channels = lambda x: torch.from_numpy(np.stack([x.real, x.imag]).astype(np.float32))
    H, W = kspace.shape[1:]
    return Sample(zf=as_channels(zf), vs=as_channels(vs), bin_times=torch.from_numpy(bin_times).float(),
                  t_query=torch.from_numpy(t_query).float(), target=torch.zeros((len(t_query), H, W), dtype=torch.complex64),
                  kspace=torch.from_numpy(kspace), mask=torch.from_numpy(mask))


class LiifDataset(torch.utils.data.Dataset):
    """Samples of a list of subjects; deterministic given (seed, epoch, index).

    ``cache_bytes`` > 0 keeps the samples it simulates, up to that many bytes, so a second
    model trained on the same epochs reads them instead of simulating them again (exactly the
    same samples: each is a function of its key)."""

    def __init__(self, subject_list, spec: AcquisitionSpec, train: bool, seed: int = 0, augment: bool = False,
                 cache_bytes: float = 0):
        self.subjects, self.spec, self.train, self.seed, self.epoch = list(subject_list), spec, train, seed, 0
        self.augment, self.cache_bytes = augment, cache_bytes
        self._cache, self._cached_bytes = {}, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return len(self.subjects)

    def __getitem__(self, i):
        key = (self.epoch if self.train else 0, i)
        if key in self._cache:
            return self._cache[key]
        sample = self.sample(i)
        size = sample.nbytes()
        if self._cached_bytes + size <= self.cache_bytes:
            self._cache[key], self._cached_bytes = sample, self._cached_bytes + size
        return sample

    def sample(self, i: int, with_bin_truth: bool = False) -> Sample:
        """Sample ``i`` (``with_bin_truth``: also the true images at the bin centres)."""
        key = (self.seed, self.epoch if self.train else 0, i)
        return make_sample(self.subjects[i], self.spec, int(np.random.SeedSequence(key).generate_state(1)[0]), self.train,
                           self.train and self.augment, with_bin_truth)


def collate(batch: list[Sample]) -> Sample:
    """Stack samples into a batch (a ``Sample`` whose fields have a leading B axis)."""
    return Sample(**{k: torch.stack([getattr(b, k) for b in batch]) for k in batch[0].tensors()})


def datasets(config: DataConfig) -> tuple:
    """(train, validation, test) ``LiifDataset``s of ``config`` (``DataConfig``); seeds
    ``config.seed`` (+1 validation, +2 test)."""
    spec, c = config.acquisition, config
    eval_spec = AcquisitionSpec(R=spec.R, T_low=spec.T_low, T_high=spec.T_high, T_query=c.T_eval, noise_std=spec.noise_std)
    cache = c.cache_gb * 2**30
    return (LiifDataset(subjects(c.data, "train", c.N, None if c.real else c.n_train), spec, train=True, seed=c.seed,
                        augment=c.augment, cache_bytes=cache),
            LiifDataset(subjects(c.data, "val", c.N, c.n_val), spec, train=False, seed=c.seed + 1, cache_bytes=cache),
            LiifDataset(subjects(c.data, "test", c.N, None if c.real else c.n_test), eval_spec, train=False,
                        seed=c.seed + 2))
