"""Centred orthonormal 2-D FFT and the multi-coil SENSE operator.

Convention (the project's k-space layout relies on it): over the last two axes (H, W),

    F x = fftshift(fft2(ifftshift(x), norm="ortho")),   F^H k = fftshift(ifft2(ifftshift(k), norm="ortho")).

Phase-encode lines run along the last axis W: a mask of shape (T, W) selects columns.
Works on torch tensors (autograd-friendly) and on numpy arrays.

For even sizes the torch path avoids the shifts (copies): with h = N/2 and the checkerboard
D[n] = (-1)^n, fftshift(fft(ifftshift(x))) = (-1)^h D fft(D x) in each axis, and likewise for
the inverse. ``SenseOp`` folds D into its coil maps and its mask, so it does no shifts at all.

The data term and its gradient work in hybrid space (image rows, k-space columns). The mask
selects columns, so it commutes with the FFT along the rows: with F = F_H F_W,

    ||M F S x - y||^2 = ||M F_W S x - F_H^H y||^2,

and the measured k-space is moved to hybrid space once (``F_H^H y``); every evaluation then
needs a 1-D FFT along W only, half the work of the 2-D FFT. For even W the residual is kept
signed, M_w r with M_w = s_W D_W M (|M_w r| = |r| for a 0/1 mask), and the FFT's 1/sqrt(W)
sits in the mask and the maps, so the residual costs one mask product and the gradient's
inverse FFT none.
"""
from __future__ import annotations

import copy
import functools
import math
from typing import Optional

import numpy as np
import torch

_DIMS = (-2, -1)


@functools.lru_cache(maxsize=32)
def checkerboard(H: int, W: int, device: str = "cpu", signed: bool = False) -> torch.Tensor:
    """D = (-1)^(y + x) as an (H, W) float32 tensor; ``signed``: times (-1)^(H/2 + W/2).
    For even H, W: fft2c(x) = signed D * fft2(D x), ifft2c(k) = signed D * ifft2(D k)."""
    if H % 2 or W % 2:
        raise ValueError(f"the checkerboard form of the centred FFT needs even sizes, got {H} x {W}")
    board = 1 - 2 * ((torch.arange(H)[:, None] + torch.arange(W)[None, :]) % 2).to(torch.float32)
    return (board * (-1.0) ** ((H // 2 + W // 2) % 2) if signed else board).to(device)


def _centred(x, inverse: bool):
    H, W = x.shape[-2:]
    transform = torch.fft.ifft2 if inverse else torch.fft.fft2
    if H % 2 or W % 2:
        return torch.fft.fftshift(transform(torch.fft.ifftshift(x, dim=_DIMS), norm="ortho"), dim=_DIMS)
    device = str(x.device)
    return checkerboard(H, W, device, True) * transform(checkerboard(H, W, device) * x, norm="ortho")


def fft2c(x):
    """Centred orthonormal FFT over the last two axes (numpy or torch)."""
    if isinstance(x, torch.Tensor):
        return _centred(x, inverse=False)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=_DIMS), norm="ortho"), axes=_DIMS)


def ifft2c(k):
    """Centred orthonormal inverse FFT over the last two axes (numpy or torch)."""
    if isinstance(k, torch.Tensor):
        return _centred(k, inverse=True)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=_DIMS), norm="ortho"), axes=_DIMS)


class SenseOp:
    """Multi-coil Cartesian SENSE operator with per-frame line masks.

    Forward  A: x (..., T, H, W)  ->  y (..., T, C, H, W),   y = M F (S x)
    Adjoint  A^H: y  ->  x,                                   x = sum_c conj(S_c) F^H (M y_c)

    ``smaps`` is (C, H, W) complex, ``mask`` is (T, W) of 0 and 1 (1 = line sampled). With
    sum_c |S_c|^2 = 1 and a full mask, A^H A is the identity.
    """

    def __init__(self, smaps, mask):
        # contiguous: maps with permuted strides (e.g. a transposed numpy array) make every coil product and FFT copy
        self.smaps = torch.as_tensor(smaps).to(torch.complex64).contiguous()
        mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be (T, W), got shape {tuple(mask.shape)}")
        if self.smaps.ndim != 3 or self.smaps.shape[-1] != mask.shape[-1]:
            raise ValueError(f"smaps (C, H, W) {tuple(self.smaps.shape)} does not match mask (T, W) {tuple(mask.shape)}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask must hold only 0 and 1 (1 = line sampled)")
        self.mask = mask.to(torch.float32)
        self._fold()

    def _fold(self):
        # an array derived from the mask must also be cut by ``_frames_view``
        self._m = self.mask[:, None, None, :]  # (T, 1, 1, W) broadcast over coils and rows
        H, W = self.smaps.shape[-2:]
        device = str(self.smaps.device)
        self._even = H % 2 == 0 and W % 2 == 0
        if self._even:  # shifts folded in (module docstring): M F_c (S x) = (s D M) fft2((D S) x)
            self._smaps_d = self.smaps * checkerboard(H, W, device)
            self._mask_d = (self.mask[:, None, :] * checkerboard(H, W, device, True))[:, None]  # (T, 1, H, W)
        # hybrid space (module docstring): for even W the centred 1-D FFT along W is
        # F_W u = s_W D_W fft(D_W u) / sqrt(W) with D_W = (-1)^x and s_W = (-1)^(W/2); D_W is folded
        # into the maps, 1/sqrt(W) into the mask, and s_W D_W stays on the residual (its signed form)
        self._even_w = W % 2 == 0
        if self._even_w:
            self._board_w = board = 1 - 2 * (torch.arange(W, device=device) % 2).to(torch.float32)
            self._sign_w = board * (-1.0) ** ((W // 2) % 2)  # s_W D_W
            self._smaps_w = self.smaps * board
            self._mask_s = self._m / math.sqrt(W)
            self._coil_scale = board / math.sqrt(W)  # F_W^H M r = coil_scale * ifft(s_W D_W M r) without normalisation
            self._smaps_grad = (self.smaps * self._coil_scale).conj().resolve_conj()
        # (y, y._version, its hybrid form for ``_residual``, 0.5 ||(1 - M) y||^2 per frame) of the last data term
        self._hybrid_y = None

    def _frames_view(self, frames) -> "SenseOp":
        """The operator of those frames (an index tensor or slice of the mask's rows): it shares
        this one's map arrays and takes the rows of the mask arrays ``_fold`` derives (mask, _m,
        _mask_d, _mask_s), so a block of frames costs no refolding of the maps."""
        view = copy.copy(self)
        view.mask, view._m = self.mask[frames], self._m[frames]
        if self._even:
            view._mask_d = self._mask_d[frames]
        if self._even_w:
            view._mask_s = self._mask_s[frames]
        view._hybrid_y = None
        return view

    def apply_mask(self, y: torch.Tensor) -> torch.Tensor:
        """M y: coil k-space (..., T, C, H, W) with the unsampled lines set to zero."""
        return self._m * y

    def to(self, device):
        self.smaps, self.mask = self.smaps.to(device), self.mask.to(device)
        self._fold()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._even:
            return self._mask_d * torch.fft.fft2(x.unsqueeze(-3) * self._smaps_d, norm="ortho")
        return self._m * fft2c(x.unsqueeze(-3) * self.smaps)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self._even:
            return (self._smaps_d.conj() * torch.fft.ifft2(self._mask_d * y, norm="ortho")).sum(dim=-3)
        return (self.smaps.conj() * ifft2c(self._m * y)).sum(dim=-3)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """A^H A x."""
        return self.adjoint(self.forward(x))

    def forward_hybrid(self, x: torch.Tensor, smaps: Optional[torch.Tensor] = None) -> torch.Tensor:
        """M F_W (S x): coil data (..., T, C, H, W) with rows in image space, columns in k-space;
        ``smaps`` (C, H, W) replaces the operator's maps."""
        if self._even_w:
            return self._sign_w * self._signed_forward(x, self._maps_w(smaps))
        return self._m * _fft1c(x.unsqueeze(-3) * (self.smaps if smaps is None else smaps), inverse=False)

    def adjoint_hybrid(self, r: torch.Tensor) -> torch.Tensor:
        """The adjoint of ``forward_hybrid``: sum_c conj(S_c) F_W^H (M r_c)."""
        signed = self._m * r * self._sign_w if self._even_w else self._m * r
        return _sum_coils(self._gradient_maps(None, self._gradient_scale()), self._coil_gradient(signed))

    def _maps_w(self, smaps: Optional[torch.Tensor]) -> torch.Tensor:
        """The maps (``smaps``, None: the operator's) with D_W folded in (even W)."""
        return self._smaps_w if smaps is None else smaps * self._board_w

    def _signed_forward(self, x: torch.Tensor, maps_w: torch.Tensor, frames: slice = slice(None)) -> torch.Tensor:
        """M fft(D_W S x) / sqrt(W) = s_W D_W M F_W (S x) (even W; ``maps_w`` with D_W folded in)."""
        return torch.fft.fft(x.unsqueeze(-3) * maps_w, dim=-1).mul_(self._mask_s[frames])

    def _hybrid_data(self, y: torch.Tensor, frames=None):
        """(the measured data as ``_residual`` compares with it, 0.5 ||(1 - M) y||^2), computed
        once per measured k-space (the same tensor, unmodified, reuses it): F_H^H M y, and for
        the signed residual M_w F_H^H M y. ``frames`` (an index tensor or slice of axis -4):
        those frames' part, cut from the whole cine's."""
        cached = self._hybrid_y
        if cached is None or cached[0] is not y or cached[1] != y._version:
            y_masked = self.apply_mask(y)
            # per frame (axis -4), summed over any leading axes
            outside = (0.5 * (y - y_masked).abs().pow(2).sum(dim=(-3, -2, -1)).reshape(-1, y.shape[-4]).sum(0)
                       if y.numel() else y.new_zeros(y.shape[-4], dtype=torch.float32))
            y_h = _fft1c(y_masked, inverse=True, dim=-2)
            cached = self._hybrid_y = (y, y._version, y_h * self._sign_w if self._even_w else y_h, outside)
        y_h, outside = cached[2], cached[3]
        if frames is None:
            return y_h, float(outside.sum())
        return y_h[..., frames, :, :, :], float(outside[frames].sum())

    def _residual(self, x: torch.Tensor, y_h: torch.Tensor, maps: Optional[torch.Tensor] = None,
                  frames: slice = slice(None)) -> torch.Tensor:
        """The data term's residual in hybrid space, r = M F_W (S x) - F_H^H y, for even W in its
        signed form M_w r = M fft(D_W S x) / sqrt(W) - M_w F_H^H y (M_w = s_W D_W M, the
        module docstring's folding; |M_w r| = |r|): one mask product and an unnormalised FFT,
        and the gradient's inverse FFT needs no mask (``_coil_gradient``). ``maps``: for even W
        with D_W folded in (``_maps_w``), otherwise as they are (None: the operator's).
        ``frames``: x and y_h hold only that block of the frames (signed form only)."""
        if not self._even_w:
            return self.forward_hybrid(x, maps) - y_h
        return self._signed_forward(x, self._smaps_w if maps is None else maps, frames).sub_(y_h)

    def _gradient_scale(self):
        """The scale of ``_coil_gradient``: F_W^H M r = scale * v (None: v itself)."""
        return self._coil_scale if self._even_w else None

    def _coil_gradient(self, r: torch.Tensor) -> torch.Tensor:
        """v with F_W^H M r = ``_gradient_scale()`` * v (the coil images of a ``_residual``,
        before the maps; r is masked, as every ``_residual`` is)."""
        if not self._even_w:
            return _fft1c(r, inverse=True)
        return torch.fft.ifft(r, dim=-1, norm="forward")

    def _gradient_maps(self, smaps: Optional[torch.Tensor], scale) -> torch.Tensor:
        """conj(scale S) (C, H, W), resolved: the maps that take ``_coil_gradient``'s v to the image."""
        if smaps is None and self._even_w:
            return self._smaps_grad
        maps = self.smaps if smaps is None else smaps
        return (maps.conj() if scale is None else (maps * scale).conj()).resolve_conj()

    def data_gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A^H (A x - y), in hybrid space (module docstring)."""
        y_h, _ = self._hybrid_data(y)
        return _value_and_gradients(self, x, y_h, None, True, False)[1]

    def data_term(self, x: torch.Tensor, y: torch.Tensor, smaps: Optional[torch.Tensor] = None,
                  frames=None) -> torch.Tensor:
        """0.5 ||A x - y||^2 (a real scalar), differentiable in x with the gradient
        A^H (A x - y) written out, which saves autograd's passes over the coil k-space;
        evaluated in hybrid space (module docstring). With ``smaps`` (C, H, W) those maps
        replace the operator's and the term is differentiable in them too (maps fitted with
        the image): d/dS_c = sum_t conj(x_t) z_{t,c}, z = F_W^H M (M F_W (S x) - F_H^H y).

        ``frames`` (an index tensor or slice of the T frames; operator's maps only): the term
        of those frames, 0.5 ||A_f x - y_f||^2, with x (..., len(frames), H, W) holding just
        them and y the whole cine's k-space, whose hybrid form is then computed once for all
        blocks of frames (a fit that draws a block per step reuses it)."""
        if frames is not None and smaps is not None:
            raise ValueError("data_term: frames takes the operator's maps (smaps must be None)")
        y_h, outside = self._hybrid_data(y, frames)
        if smaps is not None:
            return _DataTermWithMaps.apply(x, smaps, y_h, self) + outside
        if frames is None:
            return _DataTerm.apply(x, y_h, outside, self)
        if x.shape[-3] != y_h.shape[-4]:
            raise ValueError(f"data_term: x holds {x.shape[-3]} frame(s), frames selects {y_h.shape[-4]}")
        return _DataTerm.apply(x, y_h, outside, self._frames_view(frames))

    __call__ = forward


def _fft1c(x: torch.Tensor, inverse: bool, dim: int = -1) -> torch.Tensor:
    """Centred orthonormal 1-D FFT (or inverse) of a torch tensor along ``dim``."""
    transform = torch.fft.ifft if inverse else torch.fft.fft
    return torch.fft.fftshift(transform(torch.fft.ifftshift(x, dim=dim), dim=dim, norm="ortho"), dim=dim)


def _sum_coils(maps: torch.Tensor, v: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """sum_c maps_c v_c over the coil axis -3 of v (..., C, H, W) (accumulated coil by coil:
    faster on CPU than a broadcast product and a reduction), into ``out`` when given."""
    out = torch.mul(v.select(-3, 0), maps[0], out=out)
    for c in range(1, maps.shape[0]):
        out.addcmul_(v.select(-3, c), maps[c])
    return out


def _squared_norm(r: torch.Tensor) -> torch.Tensor:
    """||r||^2 of a complex tensor as a real scalar: the dot product of its real view with itself
    (several times faster on CPU than ``torch.vdot``, and than squaring and summing)."""
    v = torch.view_as_real(r).reshape(-1)
    return torch.dot(v, v)


#: Frames per block of the data term (``_value_and_gradients``): a block's coil data (4 coils at
#: 128 x 128: 2 MB) stays in the cache through the residual and both gradients.
FRAMES_PER_BLOCK = 4


def _value_and_gradients(op: SenseOp, x: torch.Tensor, y_h: torch.Tensor, smaps: Optional[torch.Tensor],
                         need_x: bool, need_maps: bool):
    """(0.5 ||r||^2, dx, dS) of the data term's residual r (``SenseOp._residual``) with the maps
    ``smaps`` (None: the operator's), and

        dx = sum_c conj(S_c) z_c,   dS_c = sum_t conj(x_t) z_{t,c},   z = F_W^H M r

    (None where not needed), computed block by block of ``FRAMES_PER_BLOCK`` frames (axis -3
    of x), each block's residual going straight into its gradients: one pass over the coil
    data in cache instead of several over all of it. Odd W (unsigned residual): one block."""
    T = x.shape[-3]
    step = FRAMES_PER_BLOCK if op._even_w else T
    scale = op._gradient_scale()  # z = scale * v
    maps = op.smaps if smaps is None else smaps
    residual_maps = op._maps_w(smaps) if op._even_w else smaps  # folded once for every block
    grad_maps = op._gradient_maps(smaps, scale) if need_x else None
    value = x.new_zeros((), dtype=x.real.dtype)
    dx = torch.empty_like(x) if need_x else None
    dmaps = torch.zeros_like(maps) if need_maps else None
    for start in range(0, T, step):
        frames = slice(start, min(start + step, T))
        xb = x[..., frames, :, :]
        r = op._residual(xb, y_h[..., frames, :, :, :], residual_maps, frames)
        value = value + _squared_norm(r)
        if not (need_x or need_maps):
            continue
        v = op._coil_gradient(r)
        if need_x:
            _sum_coils(grad_maps, v, out=dx[..., frames, :, :])
        if need_maps:
            xc = xb.conj()
            for c in range(maps.shape[0]):
                dmaps[c] += (xc * v.select(-3, c)).sum(dim=tuple(range(xb.ndim - 2)))
    if need_maps and scale is not None:
        dmaps *= scale
    return 0.5 * value, dx, dmaps


class _DataTerm(torch.autograd.Function):
    """0.5 ||A x - y||^2 with the gradient written out (computed with the value: the backward
    only scales it)."""

    @staticmethod
    def forward(ctx, x, y_h, outside, op):
        value, dx, _ = _value_and_gradients(op, x, y_h, None, ctx.needs_input_grad[0], False)
        ctx.save_for_backward(dx)
        return value + outside

    @staticmethod
    def backward(ctx, grad):
        (dx,) = ctx.saved_tensors
        return grad * dx, None, None, None


class _DataTermWithMaps(torch.autograd.Function):
    """0.5 ||M F_W (S x) - y_h||^2 with both gradients written out (PyTorch's convention for a
    real loss of complex inputs): dx = sum_c conj(S_c) z_c, dS_c = sum_t conj(x_t) z_{t,c};
    computed with the value (``_value_and_gradients``), the backward only scales them."""

    @staticmethod
    def forward(ctx, x, smaps, y_h, op):
        value, dx, dmaps = _value_and_gradients(op, x, y_h, smaps, *ctx.needs_input_grad[:2])
        ctx.save_for_backward(dx, dmaps)
        return value

    @staticmethod
    def backward(ctx, grad):
        dx, dmaps = ctx.saved_tensors
        return (None if dx is None else grad * dx), (None if dmaps is None else grad * dmaps), None, None
