"""The hash-grid neural field (Instant-NGP style multi-resolution encoding of (t, y, x) + a small MLP) and its lambda-conditional form."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .core import register, frame_times, lambda_coordinate
from .lowrank import grid_sample_2d


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


def _two_tap_matrix(i0: torch.Tensor, i1: torch.Tensor, w1: torch.Tensor, res: int) -> torch.Tensor:
    """(len(i0), res) linear interpolation weights: row n holds 1 - w1[n] at i0[n] and w1[n] at
    i1[n] (added, so a repeated node gets both), in w1's dtype and device."""
    rows = torch.arange(len(i0), device=w1.device)
    m = torch.zeros(len(i0), res, device=w1.device, dtype=w1.dtype)
    m[rows, i0] += 1 - w1
    m[rows, i1] += w1
    return m


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
        self._weights_cache: dict = {}

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
                        acc = acc + (wa * wb * wc)[:, None] * grids[l].index_select(0, idx)
            out.append(acc)
        return torch.cat(out, 1)

    def _time_matrix(self, t: torch.Tensor, res: int):
        """(m, used): the (len(t), n) periodic linear interpolation weights from the time nodes
        ``used`` (indices, ascending) that t touches, and those indices; ``used`` is None when t
        touches all ``res`` nodes (m is then (len(t), res)). Cached for the frame times."""
        key = (res, t.device, t.dtype, tuple(t.tolist()) if t.numel() <= 4096 else None)
        if key[3] is not None and key in self._weights_cache:
            return self._weights_cache[key]
        m = _two_tap_matrix(*_periodic_corners(t, res), res)
        used = torch.nonzero(m.ne(0).any(0)).flatten()
        out = (m, None) if len(used) == res else (m.index_select(1, used), used)
        if key[3] is not None:
            self._weights_cache[key] = out
        return out

    def _axis_matrix(self, res: int, size: int, like: torch.Tensor) -> torch.Tensor:
        """(size, res) linear interpolation weights from ``res`` nodes to ``size`` pixel centres
        (``_clamped_corners``, i.e. bilinear with align_corners=False), cached."""
        key = ("axis", res, size, like.device, like.dtype)
        if key not in self._weights_cache:
            centres = (2 * torch.arange(size, dtype=torch.float64) + 1) / size - 1
            self._weights_cache[key] = _two_tap_matrix(*_clamped_corners(centres, res), res).to(like.device, like.dtype)
        return self._weights_cache[key]

    def render_features(self, t: torch.Tensor) -> torch.Tensor:
        """Features (len(t), out_features, H, W) on the pixel grid at normalised times t, without
        gathering per voxel: every level (a hashed one after one gather of its node values) is
        interpolated separably (a small matrix along t, bilinear in (y, x)), which equals the
        per-point interpolation of ``forward``. A static encoding returns one time (1, ...)."""
        T, H, W = self.shape
        levels = []
        for l, (rt, ry, rx) in enumerate(self.resolutions):
            g = self.grids[l]
            # only the time nodes that the times t touch (a block of frames needs about half of them)
            m_t, used = self._time_matrix(t, rt) if self.temporal else (None, None)
            if self.hashed[l]:  # index_select: its backward (index_add) is much cheaper on a CPU than indexing's
                node_ids = getattr(self, f"_nodes{l}")
                node_ids = node_ids if used is None else node_ids.index_select(0, used)
                nodes = g.index_select(0, node_ids.flatten()).view(*node_ids.shape, -1)  # (rt or used, ry, rx, F)
            else:
                nodes = g.view(rt, ry, rx, -1)
                nodes = nodes if used is None else nodes.index_select(0, used)
            if not self.temporal:
                g_t = nodes[0].permute(2, 0, 1)[None]  # static: (1, F, ry, rx)
            else:
                g_t = torch.einsum("tk,kyxf->tfyx", m_t, nodes)  # (len(t), F, ry, rx)
            if 2 * ry <= H and 2 * rx <= W:  # a coarse level: two small matrices (faster than F.interpolate's backward)
                g_t = self._axis_matrix(ry, H, g_t) @ g_t @ self._axis_matrix(rx, W, g_t).T
            elif (ry, rx) != (H, W):  # bilinear, align_corners=False: the same weights as _clamped_corners
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
    hidden layers of ``hidden``) to (real, imag); with ``init`` (a complex (H, W) image),

        f(t, y, x) = b(y, x) + MLP(E(t, y, x)),

    b a learnt static image (bilinear between pixel centres) that starts at ``init``: the fits
    pass the zero-filled cine's temporal mean, so the field starts from an image that has
    seen every sampled line and fits the motion and the remaining aliasing.

    ``render`` evaluates the field on the pixel grid through ``GridEncoding.render_features``
    (separable interpolation) and the MLP channel-first; it equals the per-point ``forward``.
    Sizes default from (T, H, W): ``levels`` for a growth factor near 1.5, ``log2_table`` =
    ceil(log2(T H W / 8)) (the fits' settings, ``inr.default_settings``, ask for T H W / 2).
    """

    def __init__(self, shape, levels: Optional[int] = None, features: int = 2, log2_table: Optional[int] = None,
                 coarsest: int = 8, hidden: int = 16, layers: int = 1, init_scale: float = 1e-4, seed: int = 0,
                 init: Optional[torch.Tensor] = None):
        super().__init__()
        if hidden < 1 or layers < 0:
            raise ValueError(f"hidden must be >= 1 and layers >= 0, got {hidden}, {layers}")
        self.shape = tuple(int(v) for v in shape)
        gen = torch.Generator().manual_seed(seed)
        self.encoding = GridEncoding(shape, levels, features, log2_table, coarsest, True, init_scale, gen)
        self.mlp = _mlp([self.encoding.out_features] + [hidden] * layers + [2], gen)
        self.base = None
        if init is not None:  # a static image the field is added to, e.g. the zero-filled cine's temporal mean
            init = torch.as_tensor(init)
            if init.shape != self.shape[1:] or not init.is_complex():
                raise ValueError(f"init must be a complex (H, W) = {self.shape[1:]} image, got {init.dtype} {tuple(init.shape)}")
            self.base = nn.Parameter(torch.view_as_real(init.to(torch.complex64)).permute(2, 0, 1).contiguous())

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
        out = self.mlp(self.encode(coords))
        if self.base is not None:  # bilinear between pixel centres, as the encoding's levels
            out = out + grid_sample_2d(self.base[None], coords[None, None, :, [2, 1]].to(self.base.dtype)).T
        return out

    def render(self, t: Optional[torch.Tensor] = None, log_lambda=None) -> torch.Tensor:
        """The cine (len(t), H, W) complex at normalised times t (default: the T frames)."""
        T, H, W = self.shape
        t = (frame_times(T) if t is None else t).to(self.grids[0].device, self.grids[0].dtype)
        x = _mlp_channels_first(self.mlp, self.encoding.render_features(t).flatten(2))
        if self.base is not None:
            x = x + self.base.flatten(1)[None]
        return torch.complex(x[:, 0], x[:, 1]).view(len(t), H, W)


#: decades of log10(lambda) over which a split conditional network hands over between its encodings
SPLIT_WIDTH = 0.2


class ConditionalHashGridINR(nn.Module):
    """The neural field with log10(lambda) as an input: f(lambda, t, y, x).

    With c = log10(lambda) rescaled from ``log_lambda_range`` to [-1, 1]:

        f(c, t, y, x) = MLP([ E_s(y, x),  g(c) * E_d(t, y, x),  c ])

    E_d is the spatio-temporal ``GridEncoding`` of ``HashGridINR``; E_s a static one (the same
    spatial levels, one node in time), so that a large lambda can reach a static cine; g(c) a
    per-channel gate in (0, 2) from a small MLP of c (1 -> ``gate_hidden`` -> channels,
    2 sigmoid), starting at 1 at c = 0, so lambda can scale each level's temporal detail. With
    ``lambda_frequencies`` = K > 0, c enters the gate and the MLP as [c, sin(k pi c), cos(k pi c)
    for k = 1..K] instead of c alone, so that the network can change faster along lambda.

    With ``lambda_split`` = s (a log10 lambda inside the range), the temporal detail comes from
    two spatio-temporal encodings of the same sizes, one for the weaker and one for the stronger
    regularisation, handed over linearly across the ``split_width`` decades centred on s:

        E_d = (1 - w) E_d,low + w E_d,high,   w = clip((log10 lambda - s) / split_width + 1/2, 0, 1)

    Outside the hand-over w is 0 or 1 and only one encoding is evaluated, so such a step costs
    what a step without the split costs, and each encoding fits only its part of the range
    instead of both the weakly and the strongly regularised (nearly static) solutions. lambda
    enters only through the network (no grid along lambda, no anchors). No tying or
    curriculum: ``fit`` draws log10(lambda) from the range at every step (uniformly, or from a
    symmetric Beta distribution that favours the middle: ``log_lambda_beta``); a fixed-lambda
    fit of the same class (c held constant, no split) is the separately fitted network it is
    compared with.
    """

    def __init__(self, shape, levels: Optional[int] = None, features: int = 2, log2_table: Optional[int] = None,
                 coarsest: int = 8, hidden: int = 16, layers: int = 1, gate_hidden: int = 16,
                 log_lambda_range=(-5.0, 0.0), init_scale: float = 1e-4, seed: int = 0, lambda_frequencies: int = 0,
                 lambda_split: Optional[float] = None, split_width: float = SPLIT_WIDTH):
        super().__init__()
        if hidden < 1 or layers < 0 or gate_hidden < 1 or lambda_frequencies < 0:
            raise ValueError(f"hidden and gate_hidden must be >= 1, layers and lambda_frequencies >= 0, got {hidden}, "
                             f"{gate_hidden}, {layers}, {lambda_frequencies}")
        lo, hi = (float(v) for v in log_lambda_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"log_lambda_range must be finite (lo, hi) with lo < hi, got {log_lambda_range}")
        if lambda_split is not None and not (lo < float(lambda_split) < hi):
            raise ValueError(f"lambda_split must be a log10(lambda) inside the range ({lo:g}, {hi:g}), got {lambda_split!r}")
        if not (math.isfinite(split_width) and split_width > 0):
            raise ValueError(f"split_width must be a finite number of decades > 0, got {split_width!r}")
        self.shape, self.log_lambda_range = tuple(int(v) for v in shape), (lo, hi)
        gen = torch.Generator().manual_seed(seed)
        self.dynamic = GridEncoding(shape, levels, features, log2_table, coarsest, True, init_scale, gen)
        self.static = GridEncoding(shape, levels, features, log2_table, coarsest, False, init_scale, gen)
        self.lambda_frequencies = int(lambda_frequencies)
        n_c = 1 + 2 * self.lambda_frequencies
        self.gate = _mlp([n_c, gate_hidden, self.dynamic.out_features], gen)
        self.mlp = _mlp([self.static.out_features + self.dynamic.out_features + n_c] + [hidden] * layers + [2], gen)
        # built last, so that the other modules start from the same weights with or without it
        self.lambda_split, self.split_width = (None if lambda_split is None else float(lambda_split)), float(split_width)
        self.dynamic_high = None if lambda_split is None else \
            GridEncoding(shape, levels, features, log2_table, coarsest, True, init_scale, gen)

    conditional = True

    def split_weight(self, log_lambda) -> float:
        """w of the stronger-regularisation encoding at log10(lambda) (0 without a split)."""
        if self.lambda_split is None:
            return 0.0
        return min(max((float(log_lambda) - self.lambda_split) / self.split_width + 0.5, 0.0), 1.0)

    def _dynamic(self, log_lambda, features):
        """E_d at log10(lambda): ``features(encoding)`` of the encodings the split weighs in."""
        w = self.split_weight(log_lambda)
        if w == 0.0:
            return features(self.dynamic)
        if w == 1.0:
            return features(self.dynamic_high)
        return (1 - w) * features(self.dynamic) + w * features(self.dynamic_high)

    def _c(self, log_lambda) -> torch.Tensor:
        if log_lambda is None:
            raise ValueError("this representation takes lambda as an input: pass log_lambda")
        p = self.mlp[0].weight
        c = lambda_coordinate(log_lambda, self.log_lambda_range)
        k = math.pi * np.arange(1, self.lambda_frequencies + 1) * c
        return torch.tensor([[c, *np.sin(k), *np.cos(k)]], device=p.device, dtype=p.dtype)

    def gains(self, log_lambda) -> torch.Tensor:
        """The gate g(c) on the dynamic features (channels,)."""
        return 2 * torch.sigmoid(self.gate(self._c(log_lambda)))[0]

    def forward(self, coords: torch.Tensor, log_lambda=None) -> torch.Tensor:
        """Values (N, 2) = (real, imag) at coords (N, 3) = (t, y, x) in [-1, 1] and log10(lambda)."""
        c = self._c(log_lambda)
        dyn = self._dynamic(log_lambda, lambda e: e(coords))
        feats = [self.static(coords), self.gains(log_lambda) * dyn, c.expand(len(coords), -1)]
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
        n_s, n_d = self.static.out_features, self.dynamic.out_features
        w_s, w_d, w_c = first.weight[:, :n_s], first.weight[:, n_s:n_s + n_d], first.weight[:, n_s + n_d:]
        stat = self.static.render_features(t)[0].flatten(1)  # (n_s, H W)
        bias = w_s @ stat + (first.bias[:, None] + w_c @ c.T)  # (hidden, H W)
        dyn = self._dynamic(log_lambda, lambda e: e.render_features(t)).flatten(2)  # (len(t), n_d, H W)
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
