"""The original's SIREN: a sine MLP (omega_0 = 30), optionally with lambda as a fourth input."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .core import register, frame_times, lambda_coordinate


class SineLayer(nn.Module):
    def __init__(self, fan_in, fan_out, omega0: float = 30.0, first: bool = False):
        super().__init__()
        self.omega0, self.linear = omega0, nn.Linear(fan_in, fan_out)
        bound = 1 / fan_in if first else math.sqrt(6 / fan_in) / omega0  # Sitzmann et al. 2020 init
        nn.init.uniform_(self.linear.weight, -bound, bound)

    def forward(self, x):
        return torch.sin(self.omega0 * self.linear(x))


class Siren(nn.Module):
    """Sine MLP: in -> hidden (x layers) -> 2 (real, imag), last layer linear."""

    def __init__(self, shape, in_features: int = 3, hidden: int = 256, layers: int = 16, omega0: float = 30.0,
                 log_lambda_range=(-5.0, 0.0)):
        super().__init__()
        self.shape, self.log_lambda_range = tuple(shape), tuple(log_lambda_range)
        mods = [SineLayer(in_features, hidden, omega0, first=True)]
        mods += [SineLayer(hidden, hidden, omega0) for _ in range(layers - 1)]
        last = nn.Linear(hidden, 2)
        bound = math.sqrt(6 / hidden) / omega0
        nn.init.uniform_(last.weight, -bound, bound)
        self.net = nn.Sequential(*mods, last)
        self.in_features = in_features

    @property
    def conditional(self) -> bool:
        return self.in_features == 4

    def forward(self, coords, log_lambda=None):
        if self.conditional:
            if log_lambda is None:
                raise ValueError("this SIREN takes lambda as a coordinate: pass log_lambda")
            c = torch.full_like(coords[:, :1], lambda_coordinate(log_lambda, self.log_lambda_range))
            coords = torch.cat([c, coords], 1)
        return self.net(coords)

    def render(self, t: Optional[torch.Tensor] = None, log_lambda=None, chunk: int = 1 << 16) -> torch.Tensor:
        T, H, W = self.shape
        dev = self.net[0].linear.weight.device
        t = (frame_times(T) if t is None else t).to(dev)
        ys = 2 * (torch.arange(H, device=dev) + 0.5) / H - 1  # pixel centres
        xs = 2 * (torch.arange(W, device=dev) + 0.5) / W - 1
        coords = torch.stack(torch.meshgrid(t, ys, xs, indexing="ij"), -1).reshape(-1, 3)
        out = torch.cat([self(coords[i:i + chunk], log_lambda) for i in range(0, len(coords), chunk)])
        return torch.complex(out[:, 0], out[:, 1]).view(len(t), H, W)


@register("siren")
def _siren(shape, **kw):
    return Siren(shape, **kw)
