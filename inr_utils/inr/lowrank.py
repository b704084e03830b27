"""The low-rank grid INR: f(t, y, x) = sum_k S_k(y, x) T_k(t), and its lambda-conditional form (anchors along log10 lambda)."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .core import register, frame_times, lambda_coordinate, upsampling_matrix


class LowRankINR(nn.Module):
    def __init__(self, shape, rank: int = 16, harmonics: Optional[int] = None, levels: Sequence[int] = (1, 2, 4),
                 lambda_anchors: int = 1, log_lambda_range=(-5.0, 0.0), init: Optional[torch.Tensor] = None):
        super().__init__()
        T, H, W = shape
        self.shape, self.rank = (T, H, W), rank
        self.harmonics = T // 2 if harmonics is None else harmonics
        self.n_basis = 2 * self.harmonics + 1
        self.lambda_anchors, self.log_lambda_range = lambda_anchors, tuple(log_lambda_range)
        self.levels = tuple(levels)
        # finest level (and temporal coefficients) carry one copy per lambda anchor; separate
        # parameters, so a step touches (and Adam updates) only the two anchors it uses
        self.fine = nn.ParameterList([nn.Parameter(torch.zeros(2 * rank, H, W)) for _ in range(lambda_anchors)])
        self.coarse = nn.ParameterList([nn.Parameter(torch.zeros(1, 2 * rank, max(H // s, 1), max(W // s, 1)))
                                        for s in self.levels if s != 1])
        for i, g in enumerate(self.coarse):  # bilinear upsampling of each coarse grid as U_H g U_W^T
            h, w = g.shape[-2:]
            self.register_buffer(f"_up_h{i}", upsampling_matrix(h, H), persistent=False)
            self.register_buffer(f"_up_w{i}", upsampling_matrix(w, W).T.contiguous(), persistent=False)
        coef = torch.randn(lambda_anchors, rank, self.n_basis, generator=torch.Generator().manual_seed(0)) * 0.1
        coef[:, 0] = 0
        coef[:, 0, 0] = 1  # component 0 starts as a static image (the init)
        self.coef = nn.ParameterList([nn.Parameter(c) for c in coef])
        if init is not None:  # e.g. the temporal mean of the zero-filled cine
            with torch.no_grad():
                for f in self.fine:
                    f[0], f[rank] = init.real, init.imag

    @property
    def conditional(self) -> bool:
        return self.lambda_anchors > 1

    def _mix(self, anchors: nn.ParameterList, log_lambda) -> torch.Tensor:
        """Linear interpolation between the two anchors around log10(lambda)."""
        n = len(anchors)
        if n == 1:
            return anchors[0]
        if log_lambda is None:
            raise ValueError("this representation takes lambda as a coordinate: pass log_lambda")
        c = (lambda_coordinate(log_lambda, self.log_lambda_range) + 1) / 2 * (n - 1)
        c = min(max(c, 0.0), n - 1.0)
        i = min(int(math.floor(c)), n - 2)
        w = c - i
        return anchors[i] if w == 0 else (1 - w) * anchors[i] + w * anchors[i + 1]

    def _basis(self, t: torch.Tensor) -> torch.Tensor:
        """Fourier basis (n_basis, len(t)) at normalised times t (period 2)."""
        phase = math.pi * (t + 1)  # 2 pi * cycle fraction
        rows = [torch.ones_like(t)]
        for k in range(1, self.harmonics + 1):
            rows += [torch.cos(k * phase), torch.sin(k * phase)]
        return torch.stack(rows)

    def spatial_parts(self, log_lambda=None) -> torch.Tensor:
        """The spatial maps' real and imaginary parts (2 rank, H, W) on the pixel grid."""
        S = self._mix(self.fine, log_lambda)
        for i, g in enumerate(self.coarse):  # F.interpolate(g, (H, W), bilinear, align_corners=False)
            S = S + getattr(self, f"_up_h{i}") @ g[0] @ getattr(self, f"_up_w{i}")
        return S

    def temporal(self, t: torch.Tensor, log_lambda=None) -> torch.Tensor:
        """Temporal functions T_k(t) (rank, len(t))."""
        return self._mix(self.coef, log_lambda) @ self._basis(t)

    def render(self, t: Optional[torch.Tensor] = None, log_lambda=None) -> torch.Tensor:
        """The cine (len(t), H, W) complex at normalised times t (default: the T frames)."""
        t = (frame_times(self.shape[0]) if t is None else t).to(self.fine[0].device)
        T, H, W = self.shape
        # the T_k(t) are real: one real product with the maps' parts interleaved as (rank, H W, re / im) gives
        # the complex cine's real view directly (no interleaving copy of the cine, forward or backward)
        S = self.spatial_parts(log_lambda).view(2, self.rank, H * W).permute(1, 2, 0).reshape(self.rank, 2 * H * W)
        return torch.view_as_complex((self.temporal(t, log_lambda).T @ S).view(-1, H, W, 2))

    def forward(self, coords: torch.Tensor, log_lambda=None) -> torch.Tensor:
        """Values (N, 2) = (real, imag) at coords (N, 3) = (t, y, x) in [-1, 1]."""
        T, H, W = self.shape
        t, yx = coords[:, 0], coords[:, 1:]
        grid = yx[:, [1, 0]].view(1, 1, -1, 2)  # grid_sample wants (x, y)
        S = grid_sample_2d(self._mix(self.fine, log_lambda)[None], grid)
        for g in self.coarse:
            S = S + grid_sample_2d(g, grid)
        Tk = self.temporal(t, log_lambda)  # (rank, N)
        re = (S[: self.rank] * Tk).sum(0)
        im = (S[self.rank:] * Tk).sum(0)
        return torch.stack([re, im], -1)


def grid_sample_2d(grid_params: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of (1, C, H, W) at (1, 1, N, 2) -> (C, N); pixel centres at align_corners=False."""
    return F.grid_sample(grid_params, grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0]


@register("lowrank")
def _lowrank(shape, **kw):
    return LowRankINR(shape, **kw)


@register("lowrank-lambda")
def _lowrank_lambda(shape, lambda_anchors: int = 5, **kw):
    return LowRankINR(shape, lambda_anchors=lambda_anchors, **kw)
