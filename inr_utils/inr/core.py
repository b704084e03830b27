"""The registry of representations and the coordinate conventions they share."""
from __future__ import annotations

import torch
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
