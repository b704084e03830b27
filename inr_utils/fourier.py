"""Centred orthonormal 2-D FFT and the multi-coil SENSE operator.

Convention (the project's k-space layout relies on it): over the last two axes (H, W),

    F x = fftshift(fft2(ifftshift(x), norm="ortho")),   F^H k = fftshift(ifft2(ifftshift(k), norm="ortho")).

Phase-encode lines run along the last axis W: a mask of shape (T, W) selects columns.
Works on torch tensors (autograd-friendly) and on numpy arrays.
"""
from __future__ import annotations

import numpy as np
import torch

_DIMS = (-2, -1)


def fft2c(x):
    """Centred orthonormal FFT over the last two axes (numpy or torch)."""
    if isinstance(x, torch.Tensor):
        return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=_DIMS), norm="ortho"), dim=_DIMS)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=_DIMS), norm="ortho"), axes=_DIMS)


def ifft2c(k):
    """Centred orthonormal inverse FFT over the last two axes (numpy or torch)."""
    if isinstance(k, torch.Tensor):
        return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=_DIMS), norm="ortho"), dim=_DIMS)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=_DIMS), norm="ortho"), axes=_DIMS)


class SenseOp:
    """Multi-coil Cartesian SENSE operator with per-frame line masks.

    Forward  A: x (..., T, H, W)  ->  y (..., T, C, H, W),   y = M F (S x)
    Adjoint  A^H: y  ->  x,                                   x = sum_c conj(S_c) F^H (M y_c)

    ``smaps`` is (C, H, W) complex, ``mask`` is (T, W) (1 = line sampled). With
    sum_c |S_c|^2 = 1 and a full mask, A^H A is the identity.
    """

    def __init__(self, smaps, mask):
        self.smaps = torch.as_tensor(smaps).to(torch.complex64)
        mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be (T, W), got shape {tuple(mask.shape)}")
        if self.smaps.ndim != 3 or self.smaps.shape[-1] != mask.shape[-1]:
            raise ValueError(f"smaps (C, H, W) {tuple(self.smaps.shape)} does not match mask (T, W) {tuple(mask.shape)}")
        self.mask = mask.to(torch.float32)
        self._m = self.mask[:, None, None, :]  # (T, 1, 1, W) broadcast over coils and rows

    @property
    def image_shape(self):
        return (self.mask.shape[0],) + tuple(self.smaps.shape[-2:])

    def to(self, device):
        self.smaps, self.mask = self.smaps.to(device), self.mask.to(device)
        self._m = self.mask[:, None, None, :]
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._m * fft2c(x.unsqueeze(-3) * self.smaps)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return (self.smaps.conj() * ifft2c(self._m * y)).sum(dim=-3)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """A^H A x."""
        return self.adjoint(self.forward(x))

    __call__ = forward
