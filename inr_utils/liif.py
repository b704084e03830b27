"""LIIF for continuous-time cine: a convolutional encoder reads the zero-filled binned
cine, a sine-MLP decoder is queried at any time t (ORIGINAL_SYSTEM.md, LIIF sections).

Data: subjects (phantom seeds, or Sunnybrook slices split by patient) give magnitude
images at any t; each sample draws a smooth phase (augmentation), simulates the
continuous-time binned acquisition (T_high acquisitions into T_low bins, nominal rate R
at 25 frames) and returns the zero-filled bins and the targets at T_query times.

Models (registry ``ENCODERS``): ``unet2d`` stacks the bins' real and imaginary parts as
channels and outputs ONE C-channel map (decoded with [feature, t]); ``unet3d`` and
``rdn3d`` keep time and output C channels per bin; the decoder is queried with the
features of the bins before and after t and the offset of t from each, and the two
outputs are blended linearly by the fractional position of t between the bins.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .acquisition import binned_acquisition, random_phase
from .fourier import fft2c, ifft2c
from .inr import SineLayer
from .io import SUNNYBROOK_SPLIT, load_sunnybrook, resample_cine, sunnybrook_slices
from .phantom import BeatingHeartPhantom

# ---------------------------------------------------------------- subjects
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
    if DATA is None or str(DATA).lower() in ("", "none", "phantom"):
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


# ---------------------------------------------------------------- samples
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
class AcquisitionSpec:
    R: float = 6.0  # nominal acceleration at 25 frames
    T_low: int = 8  # bins
    T_high: int = 32  # acquisitions per cycle
    T_query: int = 16  # query times per sample
    noise_std: float = 0.0


def make_sample(subject, spec: AcquisitionSpec, seed: int, train: bool, augment: bool = False,
                with_bin_truth: bool = False) -> dict:
    """One sample: zero-filled bins, bin times, query times and targets (torch tensors);
    ``with_bin_truth`` adds ``truth_bins``, the true images at the bin centres.

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
    return {"zf": torch.stack([zf.real, zf.imag]),  # (2, T_low, H, W)
            "vs": torch.stack([vs.real, vs.imag]),  # view-shared bins, same layout
            "bin_times": torch.from_numpy(acq.bin_times).float(), "t_query": torch.from_numpy(tq).float(),
            "target": torch.from_numpy(target), "kspace": torch.from_numpy(acq.kspace[:, 0]),
            "mask": torch.from_numpy(acq.mask),
            **({"truth_bins": torch.from_numpy(image_at(acq.bin_times))} if with_bin_truth else {})}


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
        size = sum(v.numel() * v.element_size() for v in sample.values())
        if self._cached_bytes + size <= self.cache_bytes:
            self._cache[key], self._cached_bytes = sample, self._cached_bytes + size
        return sample

    def sample(self, i: int, with_bin_truth: bool = False) -> dict:
        """Sample ``i`` (``with_bin_truth``: also the true images at the bin centres)."""
        key = (self.seed, self.epoch if self.train else 0, i)
        return make_sample(self.subjects[i], self.spec, int(np.random.SeedSequence(key).generate_state(1)[0]), self.train,
                           self.train and self.augment, with_bin_truth)


def collate(batch):
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


# ---------------------------------------------------------------- encoders
ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(name):
    def wrap(ctor):
        ENCODERS[name] = ctor
        return ctor
    return wrap


def output_conv(encoder: nn.Module) -> nn.Module:
    """An encoder's output convolution: its last registered Conv2d / Conv3d."""
    return [m for m in encoder.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))][-1]


def he_init(encoder: nn.Module) -> nn.Module:
    """He (Kaiming) normal initialisation for LeakyReLU(0.1) of every conv but the output one
    (kept at PyTorch's default). With PyTorch's default the UNet's features shrink ~50x from
    input to head, and a residual LIIF sits at its input for many epochs before it learns
    (measured: 0.104 -> 0.098 test relative L1, R = 6, T_low = 8 real, same 150 s)."""
    last = output_conv(encoder)
    for conv in (m for m in encoder.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)) and m is not last):
        nn.init.kaiming_normal_(conv.weight, a=0.1, nonlinearity="leaky_relu")
        nn.init.zeros_(conv.bias)
    return encoder


class CircularTimeConv3d(nn.Conv3d):
    """Conv3d padded periodically in time (the bins cover one cardiac cycle, so the last bin
    neighbours the first) and with zeros in space. Measured on the real R = 6 slices (UNet,
    55 epochs, test relative L1): 0.1198 -> 0.1173 at T_low = 4, 0.0994 -> 0.0970 at
    T_low = 8, for ~15-20% more time per training step."""

    def __init__(self, cin, cout, kernel_size=3, padding=0):
        super().__init__(cin, cout, kernel_size, padding=(0, padding, padding))
        self.time_pad = padding

    def forward(self, x):
        return super().forward(_CircularTimePad.apply(x, self.time_pad) if self.time_pad else x)


class _CircularTimePad(torch.autograd.Function):
    """Periodic padding of p frames on each side of axis 2. Its backward folds the pads'
    gradients onto the first and last p frames in place: autograd through slices and a
    concatenation would zero-fill and add whole tensors, which costs ~15% of a CPU step here."""

    @staticmethod
    def forward(ctx, x, p: int):
        ctx.p = p
        return torch.cat([x[:, :, -p:], x, x[:, :, :p]], 2)

    @staticmethod
    def backward(ctx, grad):
        p = ctx.p
        grad_x = grad[:, :, p:-p].clone()
        grad_x[:, :, -p:] += grad[:, :, :p]
        grad_x[:, :, :p] += grad[:, :, -p:]
        return grad_x, None


def _block(conv, cin, cout):
    return nn.Sequential(conv(cin, cout, 3, padding=1), nn.LeakyReLU(0.1), conv(cout, cout, 3, padding=1), nn.LeakyReLU(0.1))


class UNet(nn.Module):
    """Small UNet in 2D or 3D; 3D pools only in space (time is kept at T_low)."""

    def __init__(self, dims: int, cin: int, cout: int, channels: Sequence[int] = (16, 32, 64), circular: bool = False):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else (CircularTimeConv3d if circular else nn.Conv3d)
        self.pool = (lambda x: F.avg_pool2d(x, 2)) if dims == 2 else (lambda x: F.avg_pool3d(x, (1, 2, 2)))
        self.downs = nn.ModuleList()
        c_prev = cin
        for c in channels:
            self.downs.append(_block(conv, c_prev, c))
            c_prev = c
        self.ups = nn.ModuleList(_block(conv, channels[i] + channels[i - 1], channels[i - 1]) for i in range(len(channels) - 1, 0, -1))
        self.head = conv(channels[0], cout, 1)

    def forward(self, x):
        skips = []
        for i, down in enumerate(self.downs):
            x = down(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = up(torch.cat([upsample_space(x, skip.shape[-2:]), skip], 1))
        return self.head(x)


def upsample_space(x, size):
    """Bilinear upsampling of the last two (spatial) axes of (B, C, H, W) or (B, C, T, H, W).
    For 3D this equals trilinear interpolation at the same T (align_corners=False) up to
    rounding, done per frame in 2D, whose backward is faster on a CPU than trilinear's."""
    if x.dim() == 4:
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    B, C, T = x.shape[:3]
    y = F.interpolate(x.transpose(1, 2).reshape(B * T, C, *x.shape[-2:]), size=tuple(size), mode="bilinear",
                      align_corners=False)
    return y.reshape(B, T, C, *y.shape[-2:]).transpose(1, 2)


class RDB(nn.Module):
    """Residual dense block (Zhang et al. 2018) with 3D convolutions."""

    def __init__(self, channels: int, growth: int, layers: int, conv=nn.Conv3d):
        super().__init__()
        self.convs = nn.ModuleList(conv(channels + i * growth, growth, 3, padding=1) for i in range(layers))
        self.fuse = nn.Conv3d(channels + layers * growth, channels, 1)

    def forward(self, x):
        feats = [x]
        for conv in self.convs:
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.1))
        return x + self.fuse(torch.cat(feats, 1))


class RDN3D(nn.Module):
    def __init__(self, cin: int, cout: int, channels: int = 32, blocks: int = 5, layers: int = 6, growth: int = 32,
                 circular: bool = False):
        super().__init__()
        conv = CircularTimeConv3d if circular else nn.Conv3d
        self.head = conv(cin, channels, 3, padding=1)
        self.blocks = nn.ModuleList(RDB(channels, growth, layers, conv) for _ in range(blocks))
        self.fuse = nn.Sequential(nn.Conv3d(blocks * channels, channels, 1), conv(channels, channels, 3, padding=1))
        self.tail = conv(channels, cout, 3, padding=1)

    def forward(self, x):
        f0 = self.head(x)
        out, outs = f0, []
        for b in self.blocks:
            out = b(out)
            outs.append(out)
        return self.tail(self.fuse(torch.cat(outs, 1)) + f0)


# constructors take (T_low, C out, in_channels per bin, widths...); UNets: he=False keeps PyTorch's init
@register_encoder("unet2d")
def _unet2d(T_low: int, C: int, in_channels: int = 2, channels=(32, 64, 128), he: bool = True):
    net = UNet(2, in_channels * T_low, C, channels)
    return he_init(net) if he else net


@register_encoder("unet3d")
def _unet3d(T_low: int, C: int, in_channels: int = 2, channels=(16, 32, 64), he: bool = True, circular: bool = False):
    net = UNet(3, in_channels, C, channels, circular)
    return he_init(net) if he else net


@register_encoder("rdn3d")
def _rdn3d(T_low: int, C: int, in_channels: int = 2, channels: int = 32, blocks: int = 5, layers: int = 6,
           growth: int = 32, circular: bool = False):
    return RDN3D(in_channels, C, channels, blocks, layers, growth, circular)  # its residual paths keep the scale


# ---------------------------------------------------------------- decoder and model
class SineDecoder(nn.Module):
    """Sine MLP [feature, time] -> (real, imag); hidden layers of sines, last linear."""

    def __init__(self, cin: int, hidden: int = 32, layers: int = 4, omega0: float = 30.0):
        super().__init__()
        mods = [SineLayer(cin, hidden, omega0, first=True)] + [SineLayer(hidden, hidden, omega0) for _ in range(layers - 1)]
        self.net = nn.Sequential(*mods, nn.Linear(hidden, 2))

    def forward(self, x):
        return self.net(x)


#: encoder inputs: name -> sample keys concatenated along channels
INPUTS = {"zf": ("zf",), "vs": ("vs",), "zfvs": ("zf", "vs")}


class LiifCine(nn.Module):
    """Encoder + sine decoder queried at continuous times.

    ``temporal=False`` (2D encoder): one map F(y, x); value(t) = dec([F, 2t - 1]).
    ``temporal=True`` (3D encoders): per-bin maps F_k; for t between bins k0 and k1 (bin
    centres, periodic) with fraction w, value(t) = (1 - w) dec([F_k0, d0]) + w dec([F_k1, d1]),
    d = (t - t_k) * T_low the offset in bin units.
    ``residual=True`` adds the decoded value to the input bins interpolated linearly to t
    (the network learns a correction; training starts from the input, not from noise).
    ``input``: ``"zf"`` the zero-filled bins (the original's), ``"vs"`` view-shared bins
    (each bin's missing lines taken from the nearest bin that sampled them), ``"zfvs"`` both
    (4 channels per bin; what was measured in the bin and what was borrowed; the residual
    base is the view-shared bins).
    ``image_skip=True`` (3D encoders, residual): the encoder outputs two more channels, a
    per-bin (real, imag) correction added to the input bins before they are interpolated to t
    (a plain residual CNN path that trains fast; zero at initialisation).
    ``dc_cascade=[widths]`` (needs ``image_skip``): ``dc_stages`` small 3D UNets, each followed
    by a soft data-consistency step that puts the measured lines back with a learned weight
    mu_i in (0, 1), correct the input bins before the encoder reads them (an unrolled network):

        x_i = DC_i(x_{i-1} + UNet_i(x_{i-1})),   DC_i(z) = F^H [ F z + mu_i M (y - F z) ]   (per bin; y its lines, M its mask)

    The last x_i then replaces the input bins as the residual base. ``final_dc=True`` applies one
    more soft DC step to the encoder's corrected bins (x_n + image correction) before they are
    interpolated to t. Bins mix acquisition times, so the lines are not exact for any single
    image; each mu is learned (starts at 0.5).
    """

    def __init__(self, encoder: str, T_low: int, C: int = 16, hidden: int = 32, layers: int = 4,
                 encoder_kwargs: Optional[dict] = None, residual: bool = False, input: str = "zf",
                 image_skip: bool = False, dc_cascade: Optional[Sequence[int]] = None, dc_stages: int = 1,
                 final_dc: bool = False, bf16: bool = False):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; registered: {sorted(ENCODERS)}")
        self.config = {"encoder": encoder, "T_low": T_low, "C": C, "hidden": hidden, "layers": layers,
                       "encoder_kwargs": encoder_kwargs or {}, "residual": residual, "input": input,
                       "image_skip": image_skip, "dc_cascade": list(dc_cascade) if dc_cascade else None,
                       "dc_stages": dc_stages if dc_cascade else 0, "final_dc": final_dc, "bf16": bf16}
        self.bf16 = bf16
        if input not in INPUTS:
            raise ValueError(f"input must be one of {INPUTS} (zero-filled, view-shared bins, or both), got {input!r}")
        self.input = input
        self.temporal = encoder != "unet2d"
        if image_skip and not (self.temporal and residual):
            raise ValueError("image_skip needs a temporal (3D) encoder and residual=True")
        if (dc_cascade or final_dc) and not image_skip:
            raise ValueError("dc_cascade and final_dc need image_skip=True (a 3D residual model)")
        if dc_cascade and (not isinstance(dc_stages, int) or dc_stages < 1):
            raise ValueError(f"dc_stages must be a positive integer, got {dc_stages!r}")
        self.image_skip, self.C = image_skip, C
        self.encoder = ENCODERS[encoder](T_low, C + 2 * image_skip, 2 * len(INPUTS[input]), **(encoder_kwargs or {}))
        if image_skip:  # the correction starts at zero, so training starts from the input bins
            last = output_conv(self.encoder)
            with torch.no_grad():
                last.weight[C:].zero_(); last.bias[C:].zero_()
        if self.temporal:  # channels-last Conv3d on CPU: train step 0.30 -> 0.25 s (UNet), 0.41 -> 0.27 s (RDN)
            self.encoder.to(memory_format=torch.channels_last_3d)
        self.decoder = SineDecoder(C + 1, hidden, layers)
        if residual:  # start exactly from the interpolated zero filling
            nn.init.zeros_(self.decoder.net[-1].weight)
            nn.init.zeros_(self.decoder.net[-1].bias)
        self.T_low, self.residual = T_low, residual
        # built last, so the other modules start from the same weights with or without them
        self.dc_cnns = nn.ModuleList()
        for _ in range(dc_stages if dc_cascade else 0):
            cnn = ENCODERS["unet3d"](T_low, 2, 2 * len(INPUTS[input]), list(dc_cascade),
                                     circular=(encoder_kwargs or {}).get("circular", False))
            head = output_conv(cnn)
            with torch.no_grad():  # each stage starts as the identity
                head.weight.zero_(); head.bias.zero_()
            self.dc_cnns.append(cnn.to(memory_format=torch.channels_last_3d))
        self.final_dc = final_dc
        n_dc = len(self.dc_cnns) + final_dc  # mu_i = sigmoid(logit_i); no parameter without DC (older saved models load)
        self.register_parameter("dc_logits", nn.Parameter(torch.zeros(n_dc)) if n_dc else None)

    def input_of(self, sample: dict) -> torch.Tensor:
        """The encoder's input from a sample or batch: its (2 or 4, T_low, H, W) channels."""
        return torch.cat([sample[k] for k in INPUTS[self.input]], -4)

    def features(self, zf, kspace: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None):
        """zf (B, 2, T_low, H, W) -> tanh features (B, C, H, W) or (B, C, T_low, H, W), the
        per-sample scale (the input is divided by its peak; the output multiplied back) and the
        per-bin image correction (B, 2, T_low, H, W) of ``image_skip`` (None without it).
        ``kspace`` (B, T_low, H, W) and ``mask`` (B, T_low, W): the bins' lines, for ``dc_cascade`` / ``final_dc``."""
        scale = zf.flatten(1).abs().amax(1).clamp_min(1e-8).view(-1, 1, 1, 1, 1)
        x = zf / scale
        if self.dc_logits is not None and (kspace is None or mask is None):
            raise ValueError("a dc_cascade / final_dc model needs the bins' kspace and mask (LiifCine.apply_to passes them)")
        base = bins = x[:, -2:]
        for i, cnn in enumerate(self.dc_cnns):
            z = torch.cat([x[:, :-2], bins], 1).contiguous(memory_format=torch.channels_last_3d)
            bins = self.soft_dc(bins + self._cnn(cnn, z), kspace, mask, scale, self.dc_logits[i])
        x = torch.cat([x[:, :-2], bins], 1)
        x = x.flatten(1, 2) if not self.temporal else x.contiguous(memory_format=torch.channels_last_3d)
        y = self._cnn(self.encoder, x)
        if not self.image_skip:
            return torch.tanh(y[:, : self.C]), scale, None
        # with image_skip the last two channels are a per-bin (real, imag) correction of the input bins
        bins = bins + y[:, self.C:]
        if self.final_dc:
            bins = self.soft_dc(bins, kspace, mask, scale, self.dc_logits[-1])
        return torch.tanh(y[:, : self.C]), scale, bins - base

    def _cnn(self, net, x):
        """A convolutional network, in bfloat16 autocast when ``bf16`` (the FFTs and the decoder stay float32)."""
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return net(x).float()

    @staticmethod
    def soft_dc(bins, kspace, mask, scale, logit):
        """F^H [F z + mu M (y / scale - F z)], mu = sigmoid(logit); bins z (B, 2, T, H, W) real/imag."""
        k = fft2c(torch.complex(bins[:, 0], bins[:, 1]))
        m = mask[:, :, None, :].to(k.real.dtype)
        z = ifft2c(k + torch.sigmoid(logit) * m * (kspace / scale[:, 0] - k))
        return torch.stack([z.real, z.imag], 1)

    def apply_to(self, batch: dict, pixels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The model on a batch of samples (``collate``) at its query times."""
        return self(self.input_of(batch), batch["bin_times"], batch["t_query"], pixels, batch["kspace"], batch["mask"])

    def forward(self, zf, bin_times, t_query, pixels: Optional[torch.Tensor] = None,
                kspace: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None):
        """Complex values at t_query (B, Tq): (B, Tq, H, W), or (B, Tq, P) at flat pixel
        indices ``pixels`` (P,) (training on a random subset of pixels is cheaper)."""
        feat, scale, skip = self.features(zf, kspace, mask)
        B, Tq = t_query.shape
        H, W = zf.shape[-2:]
        feat = feat.flatten(-2)  # (..., H*W)
        zfn = (zf[:, -2:] / scale + (0 if skip is None else skip)).flatten(-2)  # (B, 2, T, H*W); vs when both
        if pixels is not None:
            feat, zfn = feat[..., pixels], zfn[..., pixels]
        T = self.T_low
        pos = torch.remainder(t_query - bin_times[:, :1], 1.0) * T  # fractional bin position, periodic
        k0 = torch.floor(pos).long()
        i0, i1 = k0 % T, (k0 + 1) % T
        w = (pos - k0)[:, None, :, None]  # (B, 1, Tq, 1)
        take = lambda x, idx: torch.gather(x, 2, idx[:, None, :, None].expand(-1, x.shape[1], -1, x.shape[-1]))
        if not self.temporal:
            tin = (2 * t_query - 1)[:, None, :, None].expand(-1, 1, -1, feat.shape[-1])
            out = self.decoder(torch.cat([feat.unsqueeze(2).expand(-1, -1, Tq, -1), tin], 1).movedim(1, -1))
        else:
            def dec(idx, d):
                tin = d[:, None, :, None].expand(-1, 1, -1, feat.shape[-1])
                return self.decoder(torch.cat([take(feat, idx), tin], 1).movedim(1, -1))  # (B, Tq, P, 2)
            wl = w[:, 0, :, :, None]
            out = (1 - wl) * dec(i0, pos - k0) + wl * dec(i1, pos - k0 - 1)
        if self.residual:
            base = (1 - w) * take(zfn, i0) + w * take(zfn, i1)  # (B, 2, Tq, P)
            out = out + base.movedim(1, -1)
        out = torch.complex(out[..., 0], out[..., 1]) * scale.view(-1, 1, 1)
        return out if pixels is not None else out.view(B, Tq, H, W)


def bf16_supported(device: str = "cpu") -> bool:
    """Whether bfloat16 convolutions are fast here (CPU: oneDNN with AVX512-BF16 / AMX; CUDA: Ampere or newer)."""
    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:  # a private query of PyTorch's oneDNN build; absent or failing: assume no
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def rel_l1_loss(pred, target):
    """sum | |x_hat| - |x| | / sum |x| (the original's loss), per batch."""
    return (pred.abs() - target.abs()).abs().sum() / target.abs().sum().clamp_min(1e-8)


# ---------------------------------------------------------------- training
def _atomic_save(obj, path: Path):
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(model: LiifCine, train_set: LiifDataset, val_set: LiifDataset, epochs: int, lr: float = 1e-3, batch: int = 4,
          checkpoint: Optional[Path] = None, resume: bool = True, seed: int = 0, progress: bool = True,
          desc: str = "train", tag: str = "", pixels_per_step: Optional[int] = 1024) -> dict:
    """Adam + reduce-on-plateau on the relative-L1 magnitude loss, validation every epoch.
    Each step decodes ``pixels_per_step`` random pixels of every query frame (None: all).

    ``checkpoint`` is written atomically after each epoch (model, optimiser, scheduler,
    epoch, history) and resumed from when present, only if it was written by the same model
    config, ``tag``, learning rate, batch, pixels per step and seed and has not run past
    ``epochs`` (otherwise training starts afresh, with a message). NaN/Inf stops with a
    message, keeping the last checkpointed state. Returns the history (train/val loss,
    seconds per epoch).
    """
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    history = {"epoch": [], "train": [], "val": [], "seconds": [], "lr": [], "stopped": ""}
    settings = {"lr": lr, "batch": batch, "pixels_per_step": pixels_per_step, "seed": seed}
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = torch.load(checkpoint, weights_only=False)
        if (state["config"] == model.config and state.get("tag", "") == tag and state.get("settings") == settings
                and state["epoch"] < epochs):
            model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); sched.load_state_dict(state["sched"])
            history, start = state["history"], state["epoch"] + 1
            print(f"{desc}: resumed from {checkpoint} at epoch {start}")
        else:
            print(f"{desc}: {checkpoint} was written by another model, setting or a longer run; training afresh")
    g = torch.Generator().manual_seed(seed)
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        train_set.set_epoch(epoch)
        g.manual_seed(seed * 1000 + epoch)
        loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True, generator=g, collate_fn=collate)
        model.train()
        losses = []
        for b in tqdm(loader, desc=f"{desc} epoch {epoch + 1}/{epochs}", disable=not progress, leave=False):
            pix = None
            if pixels_per_step:
                n_pix = b["target"].shape[-2] * b["target"].shape[-1]
                pix = torch.randperm(n_pix, generator=g)[: min(pixels_per_step, n_pix)]
            target = b["target"] if pix is None else b["target"].flatten(-2)[..., pix]
            loss = rel_l1_loss(model.apply_to(b, pix), target)
            if not torch.isfinite(loss):
                history["stopped"] = f"{desc}: loss became {loss.item()} in epoch {epoch + 1}; stopped, parameters of the last finished epoch kept"
                warnings.warn(history["stopped"], RuntimeWarning)
                if checkpoint is not None and Path(checkpoint).exists():
                    model.load_state_dict(torch.load(checkpoint, weights_only=False)["model"])
                return history
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        val = evaluate_loss(model, val_set, batch)
        sched.step(val)
        history["epoch"].append(epoch + 1); history["train"].append(float(np.mean(losses))); history["val"].append(val)
        history["seconds"].append(time.perf_counter() - t0); history["lr"].append(opt.param_groups[0]["lr"])
        if progress:
            print(f"{desc} epoch {epoch + 1}/{epochs}: train {history['train'][-1]:.4f} val {val:.4f} ({history['seconds'][-1]:.0f} s)")
        if checkpoint is not None:
            _atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                          "epoch": epoch, "history": history, "config": model.config, "tag": tag, "settings": settings},
                         Path(checkpoint))
    return history


@torch.no_grad()
def evaluate_loss(model, dataset, batch: int = 4) -> float:
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, collate_fn=collate)
    num = den = 0.0
    for b in loader:
        pred = model.apply_to(b)
        num += float((pred.abs() - b["target"].abs()).abs().sum()); den += float(b["target"].abs().sum())
    return num / max(den, 1e-12)


def save_model(model: LiifCine, path, extra: Optional[dict] = None):
    _atomic_save({"config": model.config, "model": model.state_dict(), "extra": extra or {}}, Path(path))


def load_model(path) -> LiifCine:
    state = torch.load(path, weights_only=False)
    cfg = state["config"]
    model = LiifCine(cfg["encoder"], cfg["T_low"], cfg["C"], cfg["hidden"], cfg["layers"], cfg["encoder_kwargs"],
                     cfg.get("residual", False), cfg.get("input", "zf"), cfg.get("image_skip", False),
                     cfg.get("dc_cascade"), cfg.get("dc_stages") or 1, cfg.get("final_dc", False), cfg.get("bf16", False))
    model.load_state_dict(state["model"])
    return model.eval()


# ---------------------------------------------------------------- baselines at the query times
def interpolate_bins(x_bins: np.ndarray, bin_times: np.ndarray, t_query: np.ndarray) -> np.ndarray:
    """Periodic linear interpolation in time from bin centres to query times."""
    T = x_bins.shape[0]
    pos = np.mod(t_query - bin_times[0], 1.0) * T
    k0 = np.floor(pos).astype(int)
    w = (pos - k0)[:, None, None]
    return ((1 - w) * x_bins[k0 % T] + w * x_bins[(k0 + 1) % T]).astype(np.complex64)


def tv_at_queries(sample: dict, log_lambda: float, iters: int = 300) -> np.ndarray:
    """Temporal TV on one sample's binned k-space, interpolated to its query times."""
    from .fourier import SenseOp
    from .tv import tv_recon

    mask = sample["mask"].numpy()
    op = SenseOp(np.ones((1,) + tuple(sample["kspace"].shape[-2:]), np.complex64), mask)
    x, _ = tv_recon(op, sample["kspace"][:, None], 10.0 ** log_lambda, iters=iters)
    return interpolate_bins(x, sample["bin_times"].numpy(), sample["t_query"].numpy())


def consistency_floor(sample: dict) -> dict:
    """Errors (relative L1 at the query times) of the TRUE images at the bin centres,
    interpolated in time, alone (``true_bins``) and with each bin's measured lines put back
    (``true_bins_with_measured_lines``): a bin mixes lines acquired at different times, so the
    second is a floor for any reconstruction that enforces consistency with the bins.
    Needs a sample made ``with_bin_truth``; single coil (the LIIF acquisition)."""
    from .metrics import rel_l1

    if "truth_bins" not in sample:
        raise ValueError("consistency_floor needs a sample made with with_bin_truth=True")
    truth = sample["truth_bins"].numpy()
    mask = sample["mask"].numpy().astype(bool)[:, None, :]
    with_lines = ifft2c(np.where(mask, sample["kspace"].numpy(), fft2c(truth)))
    bt, tq, target = sample["bin_times"].numpy(), sample["t_query"].numpy(), sample["target"].numpy()
    return {"true_bins": rel_l1(interpolate_bins(truth, bt, tq), target),
            "true_bins_with_measured_lines": rel_l1(interpolate_bins(with_lines, bt, tq), target)}


def zf_at_queries(sample: dict, key: str = "zf") -> np.ndarray:
    """The sample's zero-filled (``key="vs"``: view-shared) bins interpolated to its query times."""
    bins = torch.complex(sample[key][0], sample[key][1]).numpy()
    return interpolate_bins(bins, sample["bin_times"].numpy(), sample["t_query"].numpy())


def tune_tv(dataset: LiifDataset, log_lambdas: Sequence[float], iters: int = 300) -> tuple[float, dict]:
    """The log10(lambda) with the lowest mean relative-L1 error on ``dataset`` (validation subjects)."""
    from .metrics import rel_l1

    scores = {}
    for ll in log_lambdas:
        errs = [rel_l1(tv_at_queries(dataset[i], ll, iters), dataset[i]["target"].numpy()) for i in range(len(dataset))]
        scores[float(ll)] = float(np.mean(errs))
    return min(scores, key=scores.get), scores


@torch.no_grad()
def predict(model: LiifCine, sample: dict) -> tuple[np.ndarray, float]:
    """One cine at the sample's query times, and the seconds it took."""
    model.eval()
    t0 = time.perf_counter()
    out = model.apply_to(collate([sample]))[0]
    return out.numpy(), time.perf_counter() - t0


def mean_metrics(recons: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> dict:
    """Metrics averaged over subjects (each computed over that subject's whole cine)."""
    from .metrics import all_metrics

    per = [all_metrics(x, t) for x, t in zip(recons, targets)]
    return {k: float(np.mean([p[k] for p in per])) for k in per[0]}


def best_to_tv(result: dict) -> float:
    """Relative L1 of the better LIIF encoder (RDN or UNet) over temporal TV's, from a 05 ``metrics.json``."""
    m = result["methods"]
    return min(m["RDN"]["rel_l1"], m["UNet"]["rel_l1"]) / m["TV"]["rel_l1"]


def summary_table(runs_dir: Path) -> str:
    """The original's table (R, T_low, RDN, UNet, TV, ZF) in relative L1, ours beside the
    original's published numbers, from every ``R*_T*/metrics.json`` under ``runs_dir``."""
    published = {(3, 4): (0.069, 0.131, 0.098, 0.108), (3, 8): (0.063, 0.121, 0.072, 0.120),
                 (6, 4): (0.097, 0.142, 0.113, 0.247), (6, 8): (0.104, 0.170, 0.086, 0.302)}
    rows = []
    for path in sorted(Path(runs_dir).glob("R*_T*/metrics.json")):
        m = json.loads(path.read_text())
        key = (int(round(m["R"])), int(m["T_low"]))
        ours = [m["methods"].get(k, {}).get("rel_l1", float("nan")) for k in ("RDN", "UNet", "TV", "ZF")]
        pub = published.get(key, (float("nan"),) * 4)
        best = min(ours[:2])
        rows.append(f"| {m['R']:g} | {m['T_low']} | {m.get('data', '')} | " + " | ".join(f"{o:.3f} ({p:.3f})" for o, p in zip(ours, pub))
                    + f" | {best / ours[2]:.2f} |")
    head = ["| R | T_low | data | RDN | UNet | temporal TV | ZF | best LIIF / TV |", "|---|---|---|---|---|---|---|---|"]
    return "\n".join(head + rows) if rows else ""


# ---------------------------------------------------------------- experiment steps shared by notebooks 04 and 05
def datasets(DATA, N: int, R: float, T_low: int, T_high: int, T_query: int, T_eval: int, n_train: int, n_val: int,
             n_test: int, seed: int, augment: bool = False, cache_gb: float = 0):
    """(train, validation, test) datasets. Phantom: n_* subjects per split; real data:
    every slice of the split's patients (n_val caps the validation slices). ``augment``:
    random time shift, time reversal and flips of the training subjects. Validation (every
    epoch, and the TV tuning) uses T_query uniform times, the test set T_eval. ``cache_gb``:
    memory in GiB that the training set, and the validation set, each may use to keep the
    samples it simulated (see ``LiifDataset``)."""
    if T_high % T_low:
        raise ValueError(f"T_HIGH ({T_high}) must be a multiple of T_LOW ({T_low})")
    if not (np.isfinite(cache_gb) and cache_gb >= 0):
        raise ValueError(f"SAMPLE_CACHE_GB must be a finite number >= 0, got {cache_gb!r}")
    real = DATA is not None and str(DATA).lower() not in ("", "none", "phantom")
    spec = AcquisitionSpec(R=R, T_low=T_low, T_high=T_high, T_query=T_query)
    eval_spec = AcquisitionSpec(R=R, T_low=T_low, T_high=T_high, T_query=T_eval)
    cache = cache_gb * 2**30
    return (LiifDataset(subjects(DATA, "train", N, None if real else n_train), spec, train=True, seed=seed,
                        augment=augment, cache_bytes=cache),
            LiifDataset(subjects(DATA, "val", N, n_val), spec, train=False, seed=seed + 1, cache_bytes=cache),
            LiifDataset(subjects(DATA, "test", N, None if real else n_test), eval_spec, train=False, seed=seed + 2))


def train_all(models: dict, train_set, val_set, out, epochs: int, lr: float, batch: int, resume: bool, seed: int,
              pixels_per_step: Optional[int]) -> tuple[dict, dict]:
    """Train each named model (checkpoints in OUT_DIR/checkpoints/, final models staged in
    models/ of the run). Returns (histories, training seconds = the epochs' wall time, also
    across resumed sessions)."""
    ckpt_dir = out.out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    spec = train_set.spec
    tag = f"R{spec.R:g}-T{spec.T_low}-{spec.T_high}-{[s.name for s in train_set.subjects[:3]]}-{len(train_set)}-seed{seed}"
    histories, seconds = {}, {}
    for name, model in models.items():
        t0 = time.perf_counter()
        histories[name] = train(model, train_set, val_set, epochs, lr, batch, ckpt_dir / f"{name}.pt", resume, seed,
                                desc=name, tag=tag, pixels_per_step=pixels_per_step)
        # epochs' wall time summed over every (resumed) session, so a resumed run reports the real cost
        seconds[name] = float(sum(histories[name]["seconds"])) or time.perf_counter() - t0
        save_model(model, out.path(f"models/{name}.pt"), {"tag": tag, "history": histories[name]})
        print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, {seconds[name]:.0f} s")
    return histories, seconds


def evaluate_all(models: dict, test_set) -> tuple[list, dict, dict]:
    """Targets, reconstructions {name: [cine per subject]} (ZF included) and mean inference
    seconds per cine, at the test set's uniform query times."""
    samples = [test_set[i] for i in range(len(test_set))]
    recons, seconds = {"ZF": [zf_at_queries(s) for s in samples]}, {"ZF": 0.0}
    for name, model in models.items():
        preds = [predict(model, s) for s in samples]
        recons[name], seconds[name] = [p[0] for p in preds], float(np.mean([p[1] for p in preds]))
    return samples, recons, seconds


def results_table(result: dict) -> str:
    rows = [f"{'method':8s} {'relL1':>6s} {'PSNR':>6s} {'SSIM':>6s} {'NRMSE':>6s} {'tfid':>5s} {'train s':>8s} {'infer s':>8s}"]
    for name, m in result["methods"].items():
        rows.append(f"{name:8s} {m['rel_l1']:6.3f} {m['psnr']:6.2f} {m['ssim']:6.3f} {m['nrmse']:6.3f} "
                    f"{m['temporal_fidelity']:5.2f} {m['train_seconds']:8.0f} {m['infer_seconds']:8.3f}")
    return "\n".join(rows)
