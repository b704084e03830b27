"""The low-rank grid INR: f(t, y, x) = sum_k S_k(y, x) T_k(t), its locally low-rank form (temporal
functions that vary slowly in space) and its lambda-conditional form (anchors along log10 lambda)."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .core import register, frame_times, lambda_coordinate


def interpolation_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in) linear interpolation from ``n_in`` nodes to ``n_out`` pixels, both at cell
    centres spanning [-1, 1] and constant past the outer nodes (``grid_sample``'s
    align_corners=False with border padding), so that U g interpolates g along one axis."""
    v = ((torch.arange(n_out, dtype=torch.float32) + 0.5) * n_in / n_out - 0.5).clamp(0, n_in - 1)
    i0 = torch.floor(v).clamp(max=max(n_in - 2, 0))
    w1 = v - i0
    i0 = i0.long()
    m = torch.zeros(n_out, n_in)
    rows = torch.arange(n_out)
    m[rows, i0] += 1 - w1
    m[rows, (i0 + 1).clamp(max=n_in - 1)] += w1
    return m


class LowRankINR(nn.Module):
    """f(t, y, x) = sum_k S_k(y, x) T_k(t, y, x), k = 1..rank.

    S_k are complex multi-resolution feature grids (bilinear; full, 1/2 and 1/4 resolution,
    summed), T_k(t, y, x) = sum_j C_kj(y, x) phi_j(t) are real periodic Fourier series in t
    (phi: 1, cos, sin of ``harmonics`` harmonics).

    * ``block=None`` (``"lowrank"``): C_kj is one number per component: a globally low-rank
      (partially separable) cine, rank <= ``rank``.
    * ``block=b`` (``"localrank"``): C_kj(y, x) is a coarse grid with a node every b pixels,
      interpolated bilinearly, so the temporal functions drift slowly across the image. Near
      any pixel the cine is close to rank ``rank``: a locally low-rank cine (the prior of BART's
      ``-R L``), still continuous in (t, y, x).

    A query at any t or (y, x) interpolates. ``lambda_anchors`` > 1 makes lambda a coordinate:
    the finest spatial grid and the temporal coefficients have one copy per anchor along
    log10(lambda), linearly interpolated between neighbours.
    """

    def __init__(self, shape, rank: int = 16, harmonics: Optional[int] = None, levels: Sequence[int] = (1, 2, 4),
                 lambda_anchors: int = 1, log_lambda_range=(-5.0, 0.0), init: Optional[torch.Tensor] = None,
                 block: Optional[int] = None):
        super().__init__()
        T, H, W = shape
        if rank < 1 or (block is not None and block < 1):
            raise ValueError(f"rank and block must be >= 1, got {rank}, {block}")
        self.shape, self.rank = (T, H, W), rank
        self.harmonics = T // 2 if harmonics is None else harmonics
        self.n_basis = 2 * self.harmonics + 1
        self.lambda_anchors, self.log_lambda_range = lambda_anchors, tuple(log_lambda_range)
        self.levels = tuple(levels)
        self.block = block
        # finest level (and temporal coefficients) carry one copy per lambda anchor; separate
        # parameters, so a step touches (and Adam updates) only the two anchors it uses
        self.fine = nn.ParameterList([nn.Parameter(torch.zeros(2 * rank, H, W)) for _ in range(lambda_anchors)])
        self.coarse = nn.ParameterList([nn.Parameter(torch.zeros(1, 2 * rank, max(H // s, 1), max(W // s, 1)))
                                        for s in self.levels if s != 1])
        coef = torch.randn(lambda_anchors, rank, self.n_basis, generator=torch.Generator().manual_seed(0)) * 0.1
        coef[:, 0] = 0
        coef[:, 0, 0] = 1  # component 0 starts as a static image (the init)
        if block is not None:  # the same temporal functions at every node to start with
            grid = (max(1, round(H / block)), max(1, round(W / block)))
            coef = coef[..., None, None].repeat(1, 1, 1, *grid)
            self.register_buffer("_uy", interpolation_matrix(H, grid[0]), persistent=False)
            self.register_buffer("_ux", interpolation_matrix(W, grid[1]), persistent=False)
        self.coef = nn.ParameterList([nn.Parameter(c.contiguous()) for c in coef])
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

    def _spatial_real(self, log_lambda=None) -> torch.Tensor:
        """(2 rank, H, W): real parts of S_1..S_rank, then their imaginary parts."""
        T, H, W = self.shape
        S = self._mix(self.fine, log_lambda)
        for g in self.coarse:
            S = S + F.interpolate(g, size=(H, W), mode="bilinear", align_corners=False)[0]
        return S

    def spatial(self, log_lambda=None) -> torch.Tensor:
        """Complex spatial maps S (rank, H, W) on the pixel grid."""
        S = self._spatial_real(log_lambda)
        return torch.complex(S[: self.rank], S[self.rank:])

    def temporal(self, t: torch.Tensor, log_lambda=None) -> torch.Tensor:
        """Temporal functions T_k(t) (rank, len(t)); for the local form, at every pixel
        (rank, len(t), H, W)."""
        coef = self._mix(self.coef, log_lambda)
        if self.block is None:
            return coef @ self._basis(t)
        return self._local_temporal(coef, t)

    def _local_temporal(self, coef: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """T_k(t, y, x) on the pixel grid (rank, len(t), H, W): the temporal functions at the
        nodes, then interpolated separably (two small matrix products per frame)."""
        r, nb, gh, gw = coef.shape
        T, H, W = self.shape
        at_nodes = torch.matmul(self._basis(t).T, coef.view(r, nb, gh * gw)).view(r * len(t), gh, gw)
        return torch.matmul(self._uy, torch.matmul(at_nodes, self._ux.T)).view(r, len(t), H, W)

    def render(self, t: Optional[torch.Tensor] = None, log_lambda=None) -> torch.Tensor:
        """The cine (len(t), H, W) complex at normalised times t (default: the T frames)."""
        T, H, W = self.shape
        t = (frame_times(T) if t is None else t).to(self.fine[0].device)
        S = self._spatial_real(log_lambda).view(2, self.rank, H * W)  # real arithmetic: (re, im) x rank x pixels
        coef = self._mix(self.coef, log_lambda)
        if self.block is None:
            x = torch.matmul((coef @ self._basis(t)).T, S)  # (2, len(t), H W)
        else:  # sum_k S_k T_k(t) per pixel, as one broadcast product (an einsum here is far slower on CPU)
            x = (S.unsqueeze(2) * self._local_temporal(coef, t).flatten(2).unsqueeze(0)).sum(1)
        return torch.complex(x[0], x[1]).view(len(t), H, W)

    def forward(self, coords: torch.Tensor, log_lambda=None) -> torch.Tensor:
        """Values (N, 2) = (real, imag) at coords (N, 3) = (t, y, x) in [-1, 1]."""
        t, yx = coords[:, 0], coords[:, 1:]
        grid = yx[:, [1, 0]].view(1, 1, -1, 2)  # grid_sample wants (x, y)
        S = grid_sample_2d(self._mix(self.fine, log_lambda)[None], grid)
        for g in self.coarse:
            S = S + grid_sample_2d(g, grid)
        coef = self._mix(self.coef, log_lambda)
        if self.block is None:
            Tk = coef @ self._basis(t)  # (rank, N)
        else:
            C = grid_sample_2d(coef.flatten(0, 1)[None], grid).view(self.rank, self.n_basis, -1)
            Tk = (C * self._basis(t)[None]).sum(1)
        re = (S[: self.rank] * Tk).sum(0)
        im = (S[self.rank:] * Tk).sum(0)
        return torch.stack([re, im], -1)


def grid_sample_2d(grid_params: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of (1, C, H, W) at (1, 1, N, 2) -> (C, N); pixel centres at align_corners=False."""
    return F.grid_sample(grid_params, grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0]


@register("lowrank")
def _lowrank(shape, **kw):
    return LowRankINR(shape, **kw)


@register("localrank")
def _localrank(shape, rank: int = 8, block: int = 16, **kw):
    return LowRankINR(shape, rank=rank, block=block, **kw)


@register("lowrank-lambda")
def _lowrank_lambda(shape, lambda_anchors: int = 5, **kw):
    return LowRankINR(shape, lambda_anchors=lambda_anchors, **kw)
