"""Scan-specific implicit neural representations of a complex cine and their fitting.

A representation maps normalised coordinates to a complex value: (t, y, x) in
[-1, 1]^3, or (c, t, y, x) when the temporal-TV weight is a coordinate too
(c = log10(lambda) rescaled from ``log_lambda_range`` to [-1, 1]). Time t in [-1, 1)
is one cardiac cycle: t = 2 k / T - 1 for frame k. Output: (real, imaginary).

Registry (``build(name, shape, **kw)``):

* ``"lowrank"`` (the CPU default): f(t, y, x) = sum_k S_k(y, x) T_k(t). S_k are complex
  multi-resolution feature grids (bilinear, full, 1/2 and 1/4 resolution, summed);
  T_k are periodic Fourier series in t. A partially separable (low-rank space x time)
  model with continuous coordinates: a query at any t or (y, x) interpolates.
* ``"lowrank-lambda"``: the same with lambda as a coordinate. The finest grid and the
  temporal coefficients also live on a coarse grid along log10(lambda) (anchors, linear
  interpolation between neighbours); coarse grids are shared by every lambda.
* ``"hashgrid"``: a neural field, Instant-NGP style: a multi-resolution grid encoding of
  (t, y, x) (dense coarse levels, hashed fine levels, periodic in t) and a small ReLU MLP
  with complex output (``HashGridINR``).
* ``"hashgrid-lambda"``: the neural field with log10(lambda) as an input of its MLP (beside
  a static spatial encoding and the gated spatio-temporal one; ``ConditionalHashGridINR``).
* ``"siren"``: the original's sine MLP (omega_0 = 30, 256 wide, 16 hidden layers, last
  layer linear), optionally with lambda as a fourth input (``in_features=4``).
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .fourier import SenseOp
from .metrics import psnr
from .tv import FitHistory, Stopwatch, check_weight, total_variation

REPRESENTATIONS: dict[str, Callable[..., nn.Module]] = {}
FUSED_ADAM = True  # one fused kernel per step (CPU and CUDA); skips parameters without gradients


def register(name: str):
    def wrap(ctor):
        REPRESENTATIONS[name] = ctor
        return ctor
    return wrap


def build(name: str, shape, **kwargs) -> nn.Module:
    """Construct a registered representation for a cine of ``shape`` = (T, H, W)."""
    if name not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {name!r}; registered: {sorted(REPRESENTATIONS)}")
    return REPRESENTATIONS[name](tuple(shape), **kwargs)


def frame_times(T: int) -> torch.Tensor:
    """Normalised time coordinate of frame k: 2 k / T - 1 (the cycle is periodic)."""
    return 2 * torch.arange(T, dtype=torch.float32) / T - 1


def lambda_coordinate(log_lambda: float, log_lambda_range=(-5.0, 0.0)) -> float:
    lo, hi = log_lambda_range
    return 2 * (float(log_lambda) - lo) / (hi - lo) - 1


# ---------------------------------------------------------------- low-rank grid INR
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

    def spatial(self, log_lambda=None) -> torch.Tensor:
        """Complex spatial maps S (rank, H, W) on the pixel grid."""
        T, H, W = self.shape
        S = self._mix(self.fine, log_lambda)
        for g in self.coarse:
            S = S + F.interpolate(g, size=(H, W), mode="bilinear", align_corners=False)[0]
        return torch.complex(S[: self.rank], S[self.rank:])

    def temporal(self, t: torch.Tensor, log_lambda=None) -> torch.Tensor:
        """Temporal functions T_k(t) (rank, len(t))."""
        return self._mix(self.coef, log_lambda) @ self._basis(t)

    def render(self, t: Optional[torch.Tensor] = None, log_lambda=None) -> torch.Tensor:
        """The cine (len(t), H, W) complex at normalised times t (default: the T frames)."""
        t = (frame_times(self.shape[0]) if t is None else t).to(self.fine[0].device)
        return torch.einsum("khw,kt->thw", self.spatial(log_lambda), self.temporal(t, log_lambda).to(torch.complex64))

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


# ---------------------------------------------------------------- hash-grid neural field
_HASH_PRIMES = (1, 2654435761, 805459861)  # Instant-NGP's spatial hash: XOR of coordinate x prime


def _periodic_corners(t: torch.Tensor, res: int):
    """Periodic linear interpolation along t in [-1, 1) over ``res`` nodes at t_k = 2 k / res - 1:
    (k0, k1, w1) with value = (1 - w1) g[k0] + w1 g[k1]."""
    u = (t + 1) / 2 * res
    k0 = torch.floor(u)
    w1 = u - k0
    k0 = k0.long() % res
    return k0, (k0 + 1) % res, w1


def _clamped_corners(y: torch.Tensor, res: int):
    """Linear interpolation along y in [-1, 1] over ``res`` nodes at pixel centres
    (2 i + 1) / res - 1, constant past the outer nodes (align_corners=False, border)."""
    v = ((y + 1) / 2 * res - 0.5).clamp(0, res - 1)
    i0 = torch.floor(v).clamp(max=max(res - 2, 0))
    w1 = v - i0
    i0 = i0.long()
    return i0, (i0 + 1).clamp(max=res - 1), w1


class GridEncoding(nn.Module):
    """Multi-resolution grid encoding of (t, y, x) (Instant-NGP style), without the MLP.

    Level l has a grid of (r_t, r_y, r_x) nodes with ``features`` values each, from
    ``coarsest`` nodes along the longer image side to one node per pixel, growing
    geometrically; time has min(T, max(2, round(2 T s_l))) nodes (s_l = r / finest), periodic
    (the cardiac cycle wraps), or one node (``temporal=False``: a static, spatial-only
    encoding). A level whose grid fits the table of 2**log2_table entries is stored densely;
    a finer one is hashed into the table (XOR of coordinates times primes, modulo its size),
    so colliding cells share values and the MLP that follows disambiguates them. Output: the
    features of all levels, each linearly interpolated in t, y and x, concatenated
    (``out_features`` = levels * features).
    """

    def __init__(self, shape, levels: Optional[int] = None, features: int = 2, log2_table: Optional[int] = None,
                 coarsest: int = 8, temporal: bool = True, init_scale: float = 1e-4,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        T, H, W = (int(v) for v in shape)
        self.shape = (T, H, W)
        finest = max(H, W)
        coarsest = max(2, min(int(coarsest), finest))
        if levels is None:
            levels = max(1, int(math.ceil(math.log(finest / coarsest) / math.log(1.5))) + 1)
        if log2_table is None:
            log2_table = max(10, int(math.ceil(math.log2(T * H * W / 8))))
        if levels < 1 or features < 1:
            raise ValueError(f"levels and features must be >= 1, got {levels}, {features}")
        self.features, self.table_size = int(features), 2 ** int(log2_table)
        self.out_features, self.temporal = int(levels) * self.features, bool(temporal)
        growth = (finest / coarsest) ** (1 / (levels - 1)) if levels > 1 else 1.0
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        self.resolutions, self.hashed = [], []
        self.grids = nn.ParameterList()
        for l in range(levels):
            s = min(1.0, coarsest * growth ** l / finest) if levels > 1 else 1.0
            res = (min(T, max(2, round(2 * T * s))) if T > 1 and temporal else 1, max(2, round(H * s)) if H > 1 else 1,
                   max(2, round(W * s)) if W > 1 else 1)
            cells = res[0] * res[1] * res[2]
            hashed = cells > self.table_size
            self.resolutions.append(res)
            self.hashed.append(hashed)
            n = self.table_size if hashed else cells
            self.grids.append(nn.Parameter((torch.rand(n, features, generator=gen) * 2 - 1) * init_scale))
            if hashed:  # the table entry of every node of this level, for render_features()
                k, i, j = torch.meshgrid(*(torch.arange(r) for r in res), indexing="ij")
                self.register_buffer(f"_nodes{l}", self._hash(k, i, j), persistent=False)
        self._time_cache: dict = {}

    def _hash(self, k, i, j) -> torch.Tensor:
        return ((k * _HASH_PRIMES[0]) ^ (i * _HASH_PRIMES[1]) ^ (j * _HASH_PRIMES[2])) % self.table_size

    def _index(self, l: int, k, i, j) -> torch.Tensor:
        rt, ry, rx = self.resolutions[l]
        return self._hash(k, i, j) if self.hashed[l] else (k * ry + i) * rx + j

    def forward(self, coords: torch.Tensor, grids: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """Features (N, out_features) at coords (N, 3) = (t, y, x) (``grids``: other values for
        the levels' tables, e.g. to check gradients)."""
        grids = self.grids if grids is None else grids
        out = []
        for l, (rt, ry, rx) in enumerate(self.resolutions):
            kt = _periodic_corners(coords[:, 0], rt)
            ky = _clamped_corners(coords[:, 1], ry)
            kx = _clamped_corners(coords[:, 2], rx)
            acc = 0
            for a in (0, 1):
                wa = kt[2] if a else 1 - kt[2]
                for b in (0, 1):
                    wb = ky[2] if b else 1 - ky[2]
                    for c in (0, 1):
                        wc = kx[2] if c else 1 - kx[2]
                        idx = self._index(l, kt[a], ky[b], kx[c])
                        acc = acc + (wa * wb * wc)[:, None] * grids[l][idx]
            out.append(acc)
        return torch.cat(out, 1)

    def _time_matrix(self, t: torch.Tensor, res: int) -> torch.Tensor:
        """(len(t), res) periodic linear interpolation weights (cached for the frame times)."""
        key = (res, t.device, t.dtype, tuple(t.tolist()) if t.numel() <= 4096 else None)
        if key[3] is not None and key in self._time_cache:
            return self._time_cache[key]
        k0, k1, w1 = _periodic_corners(t, res)
        m = torch.zeros(len(t), res, device=t.device, dtype=t.dtype)
        m[torch.arange(len(t)), k0] += 1 - w1
        m[torch.arange(len(t)), k1] += w1
        if key[3] is not None:
            self._time_cache[key] = m
        return m

    def render_features(self, t: torch.Tensor) -> torch.Tensor:
        """Features (len(t), out_features, H, W) on the pixel grid at normalised times t, without
        gathering per voxel: every level (a hashed one after one gather of its node values) is
        interpolated separably (a small matrix along t, bilinear in (y, x)), which equals the
        per-point interpolation of ``forward``. A static encoding returns one time (1, ...)."""
        T, H, W = self.shape
        levels = []
        for l, (rt, ry, rx) in enumerate(self.resolutions):
            g = self.grids[l]
            nodes = g[getattr(self, f"_nodes{l}")] if self.hashed[l] else g.view(rt, ry, rx, -1)  # (rt, ry, rx, F)
            if not self.temporal:
                g_t = nodes[0].permute(2, 0, 1)[None]  # static: (1, F, ry, rx)
            else:
                g_t = torch.einsum("tk,kyxf->tfyx", self._time_matrix(t, rt), nodes)  # (len(t), F, ry, rx)
            if (ry, rx) != (H, W):
                g_t = F.interpolate(g_t, size=(H, W), mode="bilinear", align_corners=False)
            levels.append(g_t)
        return torch.cat(levels, 1)


def _mlp(dims: Sequence[int], gen: torch.Generator) -> nn.Sequential:
    """ReLU MLP with the given widths, last layer linear, weights U(+-1/sqrt(fan_in)), zero bias."""
    mods = []
    for a, b in zip(dims[:-1], dims[1:]):
        lin = nn.Linear(a, b)
        bound = 1 / math.sqrt(a)
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound, generator=gen)
            lin.bias.zero_()
        mods += [lin, nn.ReLU()]
    return nn.Sequential(*mods[:-1])


def _mlp_channels_first(mlp: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The MLP applied along dim 1 of x (n, C, P) -> (n, out, P), as batched matrix products."""
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    for k, lin in enumerate(linears):
        x = torch.baddbmm(lin.bias[None, :, None], lin.weight.expand(len(x), -1, -1), x)
        if k + 1 < len(linears):
            x = torch.relu(x)
    return x


class HashGridINR(nn.Module):
    """Neural field: ``GridEncoding`` of (t, y, x) followed by a small ReLU MLP (``layers``
    hidden layers of ``hidden``) to (real, imag).

    ``render`` evaluates the field on the pixel grid through ``GridEncoding.render_features``
    (separable interpolation) and the MLP channel-first; it equals the per-point ``forward``.
    Sizes default from (T, H, W): ``levels`` for a growth factor near 1.5, ``log2_table`` =
    ceil(log2(T H W / 8)).
    """

    def __init__(self, shape, levels: Optional[int] = None, features: int = 2, log2_table: Optional[int] = None,
                 coarsest: int = 8, hidden: int = 16, layers: int = 1, init_scale: float = 1e-4, seed: int = 0):
        super().__init__()
        if hidden < 1 or layers < 0:
            raise ValueError(f"hidden must be >= 1 and layers >= 0, got {hidden}, {layers}")
        self.shape = tuple(int(v) for v in shape)
        gen = torch.Generator().manual_seed(seed)
        self.encoding = GridEncoding(shape, levels, features, log2_table, coarsest, True, init_scale, gen)
        self.mlp = _mlp([self.encoding.out_features] + [hidden] * layers + [2], gen)

    # the encoding's tables and layout, for inspection and tests
    grids = property(lambda self: self.encoding.grids)
    resolutions = property(lambda self: self.encoding.resolutions)
    hashed = property(lambda self: self.encoding.hashed)
    features = property(lambda self: self.encoding.features)

    def encode(self, coords: torch.Tensor, grids: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """Concatenated interpolated features (N, levels * features) at coords (N, 3) = (t, y, x)."""
        return self.encoding(coords, grids)

    def forward(self, coords: torch.Tensor, log_lambda=None) -> torch.Tensor:
        """Values (N, 2) = (real, imag) at coords (N, 3) = (t, y, x) in [-1, 1]."""
        return self.mlp(self.encode(coords))

    def render(self, t: Optional[torch.Tensor] = None, log_lambda=None) -> torch.Tensor:
        """The cine (len(t), H, W) complex at normalised times t (default: the T frames)."""
        T, H, W = self.shape
        t = (frame_times(T) if t is None else t).to(self.grids[0].device, self.grids[0].dtype)
        x = _mlp_channels_first(self.mlp, self.encoding.render_features(t).flatten(2))
        return torch.complex(x[:, 0], x[:, 1]).view(len(t), H, W)


class ConditionalHashGridINR(nn.Module):
    """The neural field with log10(lambda) as an input: f(lambda, t, y, x).

    With c = log10(lambda) rescaled from ``log_lambda_range`` to [-1, 1]:

        f(c, t, y, x) = MLP([ E_s(y, x),  g(c) * E_d(t, y, x),  c ])

    E_d is the spatio-temporal ``GridEncoding`` of ``HashGridINR``; E_s a static one (the same
    spatial levels, one node in time), so that a large lambda can reach a static cine; g(c) a
    per-channel gate in (0, 2) from a small MLP of c (1 -> ``gate_hidden`` -> channels,
    2 sigmoid), starting at 1, so lambda can scale each level's temporal detail. lambda enters
    only through the network (no grid along lambda, no anchors). No tying or curriculum:
    ``fit`` draws log10(lambda) uniformly from the range at every step; a fixed-lambda fit of
    the same class (c held constant) is the separately fitted network it is compared with.
    """

    def __init__(self, shape, levels: Optional[int] = None, features: int = 2, log2_table: Optional[int] = None,
                 coarsest: int = 8, hidden: int = 16, layers: int = 1, gate_hidden: int = 16,
                 log_lambda_range=(-5.0, 0.0), init_scale: float = 1e-4, seed: int = 0):
        super().__init__()
        if hidden < 1 or layers < 0 or gate_hidden < 1:
            raise ValueError(f"hidden and gate_hidden must be >= 1 and layers >= 0, got {hidden}, {gate_hidden}, {layers}")
        lo, hi = (float(v) for v in log_lambda_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"log_lambda_range must be finite (lo, hi) with lo < hi, got {log_lambda_range}")
        self.shape, self.log_lambda_range = tuple(int(v) for v in shape), (lo, hi)
        gen = torch.Generator().manual_seed(seed)
        self.dynamic = GridEncoding(shape, levels, features, log2_table, coarsest, True, init_scale, gen)
        self.static = GridEncoding(shape, levels, features, log2_table, coarsest, False, init_scale, gen)
        self.gate = _mlp([1, gate_hidden, self.dynamic.out_features], gen)
        self.mlp = _mlp([self.static.out_features + self.dynamic.out_features + 1] + [hidden] * layers + [2], gen)

    conditional = True

    def _c(self, log_lambda) -> torch.Tensor:
        if log_lambda is None:
            raise ValueError("this representation takes lambda as an input: pass log_lambda")
        p = self.mlp[0].weight
        return torch.tensor([[lambda_coordinate(log_lambda, self.log_lambda_range)]], device=p.device, dtype=p.dtype)

    def gains(self, log_lambda) -> torch.Tensor:
        """The gate g(c) on the dynamic features (channels,)."""
        return 2 * torch.sigmoid(self.gate(self._c(log_lambda)))[0]

    def forward(self, coords: torch.Tensor, log_lambda=None) -> torch.Tensor:
        """Values (N, 2) = (real, imag) at coords (N, 3) = (t, y, x) in [-1, 1] and log10(lambda)."""
        c = self._c(log_lambda)
        feats = [self.static(coords), self.gains(log_lambda) * self.dynamic(coords), c.expand(len(coords), 1)]
        return self.mlp(torch.cat(feats, 1))

    def render(self, t: Optional[torch.Tensor] = None, log_lambda=None) -> torch.Tensor:
        """The cine (len(t), H, W) complex at normalised times t (default: the T frames).

        Equals ``forward`` on the pixel grid; the first layer is split by its inputs so that
        nothing is copied per frame but the dynamic features: W_s E_s (static, once for all
        frames) + w_c c + b is a per-pixel bias, and the gate scales W_d's columns instead of
        the features (W_d (g * E_d) = (W_d diag g) E_d)."""
        T, H, W = self.shape
        first = self.mlp[0]
        t = (frame_times(T) if t is None else t).to(first.weight.device, first.weight.dtype)
        c = self._c(log_lambda)
        n_s = self.static.out_features
        w_s, w_d, w_c = first.weight[:, :n_s], first.weight[:, n_s:-1], first.weight[:, -1:]
        stat = self.static.render_features(t)[0].flatten(1)  # (n_s, H W)
        bias = w_s @ stat + (first.bias[:, None] + w_c * c)  # (hidden, H W)
        dyn = self.dynamic.render_features(t).flatten(2)  # (len(t), n_d, H W)
        x = torch.baddbmm(bias[None], (w_d * self.gains(log_lambda)[None]).expand(len(t), -1, -1), dyn)
        if len(self.mlp) > 1:  # hidden layers: ReLU, then the rest of the MLP
            x = _mlp_channels_first(self.mlp[2:], torch.relu(x))
        return torch.complex(x[:, 0], x[:, 1]).view(len(t), H, W)


@register("hashgrid")
def _hashgrid(shape, **kw):
    return HashGridINR(shape, **kw)


@register("hashgrid-lambda")
def _hashgrid_lambda(shape, **kw):
    return ConditionalHashGridINR(shape, **kw)


# ---------------------------------------------------------------- SIREN (the original)
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


# ---------------------------------------------------------------- fitting
@dataclass
class FitResult:
    recon: np.ndarray  # (T, H, W) complex64 (for a conditional model: at ``log_lambda`` or the range's middle)
    history: FitHistory
    seconds: float
    steps: int
    diverged: bool = False
    message: str = ""
    model: Optional[nn.Module] = field(default=None, repr=False)


def objective(op: SenseOp, x: torch.Tensor, y: torch.Tensor, lam: float, frames=None, mu: float = 0.0) -> torch.Tensor:
    """0.5 ||A x - y||^2 + lambda TV_t(x) + mu TV_s(x) (``inr_utils.tv``); with ``frames`` (a
    contiguous block), the block's data and spatial terms and its inner temporal differences
    scaled to estimate the whole."""
    if frames is None:
        return op.data_term(x, y) + total_variation(x, lam, mu)
    T = op.mask.shape[0]
    sub = SenseOp(op.smaps, op.mask[frames])
    data = sub.data_term(x, y[frames]) * (T / len(frames))
    tv = (x[1:] - x[:-1]).abs().sum() * (T / max(len(frames) - 1, 1)) if len(frames) > 1 else x.new_zeros(())
    spatial = total_variation(x, 0.0, mu) * (T / len(frames)) if mu else 0.0
    return data + lam * tv + spatial


def fit(model: nn.Module, op: SenseOp, y, log_lambda: Optional[float] = None, steps: int = 1000, lr: float = 1e-2,
        log_lambda_range: Optional[Sequence[float]] = None, frames_per_step: Optional[int] = None,
        max_seconds: Optional[float] = None, target: Optional[np.ndarray] = None, log_every: int = 25,
        seed: int = 0, progress: bool = True, desc: str = "fit", mu: float = 0.0,
        balance_log_lambda: Optional[float] = None) -> FitResult:
    """Fit a representation to k-space y (T, C, H, W):

        min_theta  0.5 ||A f_theta - y||_2^2 + lambda TV_t(f_theta) + mu TV_s(f_theta)

    (TV_t: sum |f(t+1) - f(t)|, circular; TV_s: isotropic spatial TV; ``inr_utils.tv``)
    with Adam and a cosine learning-rate decay. Fixed lambda = 10**log_lambda, or, for a
    conditional model with ``log_lambda_range`` = (lo, hi), log10(lambda) drawn uniformly
    from it at every step (one network for every lambda); with ``balance_log_lambda`` = b,
    each such step's objective is divided by 1 + lambda / 10**b, which leaves every lambda's
    minimiser unchanged and keeps the steps at large lambda (whose penalty is orders of
    magnitude larger) from dominating Adam's moment estimates. ``frames_per_step`` trains on a
    random contiguous block of frames per step (for the SIREN, whose full cine does not fit
    a CPU step). Stops at ``steps`` or ``max_seconds``; on NaN/Inf it stops, warns with a
    clear message and keeps the last good parameters (``diverged=True``). Times (history,
    ``seconds``, ``max_seconds``) leave out the PSNR monitoring against ``target``, which a
    real scan does not have.
    """
    if log_lambda is None and log_lambda_range is None:
        raise ValueError("give log_lambda (fixed weight) or log_lambda_range (lambda as a coordinate)")
    mu = check_weight("mu", mu)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device  # move the model first to fit on a GPU
    y = torch.as_tensor(y).to(device)
    if op.smaps.device != device:
        op = SenseOp(op.smaps, op.mask.cpu().numpy()).to(device)
    T = y.shape[0]
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=FUSED_ADAM)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    eval_ll = log_lambda if log_lambda is not None else float(np.mean(log_lambda_range))
    hist, good = FitHistory(), copy.deepcopy(model.state_dict())
    diverged, message, clock, step = False, "", Stopwatch(), 0
    rendered = None  # the render of the last monitored (and kept) parameters, reused as the result
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        ll = log_lambda if log_lambda is not None else float(rng.uniform(*log_lambda_range))
        cond_ll = ll if getattr(model, "conditional", False) else None
        if frames_per_step and frames_per_step < T:
            start = int(rng.integers(T))
            frames = (start + torch.arange(frames_per_step)) % T
            x = model.render(frame_times(T)[frames], cond_ll)
        else:
            frames, x = None, model.render(None, cond_ll)
        loss = objective(op, x, y, 10.0 ** ll, frames, mu)
        if balance_log_lambda is not None and log_lambda is None:
            loss = loss / (1 + 10.0 ** (ll - balance_log_lambda))
        if not torch.isfinite(loss):
            diverged = True
            message = (f"{desc}: loss became {loss.item()} at step {step}; stopped and restored the last good "
                       f"parameters (from step {hist.step[-1] if hist.step else 0}). Lower the learning rate (lr={lr}).")
            warnings.warn(message, RuntimeWarning)
            model.load_state_dict(good)
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        elapsed = clock.elapsed()
        last = step + 1 == steps or (max_seconds is not None and elapsed >= max_seconds)
        if (step + 1) % log_every == 0 or last:
            good = copy.deepcopy(model.state_dict())
            value = None
            if target is not None:
                with clock.paused():
                    rendered = render_numpy(model, eval_ll)
                    value = psnr(rendered, target)
            hist.add(elapsed, step + 1, loss.item(), value)
            bar.set_postfix(loss=f"{loss.item():.3g}", **({"psnr": f"{value:.2f}"} if value is not None else {}))
        if last:
            break
    seconds = clock.elapsed()
    recon = rendered if rendered is not None else render_numpy(model, eval_ll)
    return FitResult(recon, hist, seconds, step + 1, diverged, message, model)


@dataclass(frozen=True)
class FitSettings:
    """A representation, its constructor arguments, Adam steps and learning rate."""

    name: str
    model: dict = field(default_factory=dict)
    steps: int = 1000
    lr: float = 1e-2


def default_settings(name: str, shape, **overrides) -> FitSettings:
    """Sizes and steps of each representation from the cine's shape (T, H, W); ``overrides``
    (``steps``, ``lr`` or constructor arguments; None keeps the default) win. The low-rank
    steps and learning rate were chosen on a training patient's slice (SCD0000201, R = 6)."""
    if name not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {name!r}; registered: {sorted(REPRESENTATIONS)}")
    T, H, W = (int(v) for v in shape)
    if name in ("lowrank", "lowrank-lambda"):
        base = FitSettings(name, {"rank": min(16, T)}, 500, 2e-2)
    elif name in ("hashgrid", "hashgrid-lambda"):
        base = FitSettings(name, {}, 1000, 1e-2)
    else:
        base = FitSettings(name, {}, 1000, 1e-4)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    steps, lr = overrides.pop("steps", base.steps), overrides.pop("lr", base.lr)
    return FitSettings(name, {**base.model, **overrides}, int(steps), float(lr))


def reconstructor(settings: FitSettings, device: str = "cpu", seed: int = 0, progress: bool = True, on_result=None):
    """A ``selection.Reconstructor``: fits a fresh model of ``settings`` at absolute weights
    (lam, mu); low-rank models start from the temporal mean of the zero-filled cine.
    ``on_result(FitResult)`` sees every fit (e.g. to print divergence messages)."""

    def reconstruct(op, y, lam, mu, target):
        shape = (op.mask.shape[0],) + tuple(op.smaps.shape[-2:])
        kw = dict(settings.model)
        if settings.name.startswith("lowrank"):
            kw["init"] = op.adjoint(torch.as_tensor(y)).mean(0)
        model = build(settings.name, shape, **kw).to(device)
        res = fit(model, op, y, log_lambda=math.log10(lam), mu=mu, steps=settings.steps, lr=settings.lr, target=target,
                  seed=seed, progress=progress, desc=f"{settings.name} lambda={lam:.2g} mu={mu:.2g}")
        if on_result is not None:
            on_result(res)
        return res.recon, res.history

    return reconstruct


def render_numpy(model: nn.Module, log_lambda=None) -> np.ndarray:
    with torch.no_grad():
        return model.render(None, log_lambda if getattr(model, "conditional", False) else None).cpu().numpy()


# ---------------------------------------------------------------- choosing lambda without ground truth
def split_lines(mask: np.ndarray, fraction: float = 0.1, seed: int = 0, keep_center: int = 8):
    """Hold out ``fraction`` of each frame's sampled lines (never the central ``keep_center``).
    Returns (fit_mask, holdout_mask), both (T, W) uint8, disjoint, union = mask."""
    if not 0 < fraction < 1:
        raise ValueError(f"hold-out fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    T, W = mask.shape
    fit_mask, hold = mask.copy(), np.zeros_like(mask)
    centre = np.arange(W // 2 - keep_center // 2, W // 2 - keep_center // 2 + keep_center)
    for k in range(T):
        cand = np.setdiff1d(np.flatnonzero(mask[k]), centre)
        n = int(round(fraction * len(cand)))
        chosen = rng.choice(cand, size=n, replace=False) if n else []
        hold[k, chosen], fit_mask[k, chosen] = 1, 0
    return fit_mask, hold


def heldout_error(x, smaps, holdout_mask, y) -> float:
    """Relative error of the predicted held-out lines: ||M_h(F S x) - y_h||^2 / ||y_h||^2."""
    op = SenseOp(smaps, holdout_mask)
    y = torch.as_tensor(y)
    with torch.no_grad():
        pred = op.forward(torch.as_tensor(x))
        ref = op._m * y
        return float((pred - ref).abs().pow(2).sum() / ref.abs().pow(2).sum())
