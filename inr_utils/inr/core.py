"""The registry of representations and the coordinate conventions they share."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry

REPRESENTATIONS = Registry("representation")
register = REPRESENTATIONS.register
FUSED_ADAM = True  # one fused kernel per step (CPU and CUDA); skips parameters without gradients


def build(name: str, shape, **kwargs) -> nn.Module:
    """Construct a registered representation for a cine of ``shape`` = (T, H, W)."""
    return REPRESENTATIONS.build(name, tuple(shape), **kwargs)


def frame_times(T: int) -> torch.Tensor:
    """Normalised time coordinate of frame k: 2 k / T - 1 (the cycle is periodic)."""
    return 2 * torch.arange(T, dtype=torch.float32) / T - 1


def lambda_coordinate(log_lambda: float, log_lambda_range=(-5.0, 0.0)) -> float:
    lo, hi = log_lambda_range
    return 2 * (float(log_lambda) - lo) / (hi - lo) - 1


def upsampling_matrix(n_in: int, n_out: int, mode: str = "bilinear", align_corners: bool = False) -> torch.Tensor:
    """The (n_out, n_in) matrix U of ``F.interpolate`` along one axis (``mode`` "bilinear" or
    "bicubic", border samples repeated), so that for g (..., h, w)

        F.interpolate(g, size=(H, W), mode=mode, align_corners=align_corners) = U_H g U_W^T

    (both modes are separable). Two small matrix products are cheaper on CPU than the
    interpolation and, above all, its backward pass."""
    basis = torch.eye(n_in).reshape(1, n_in, n_in, 1)  # channel j: the unit vector e_j along the axis
    return F.interpolate(basis, size=(n_out, 1), mode=mode, align_corners=align_corners)[0, :, :, 0].T.contiguous()
