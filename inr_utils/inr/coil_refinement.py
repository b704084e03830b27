"""Coil maps refined jointly with the image (an option of every scan-specific fit).

Maps estimated from the undersampled data (``inr_utils.coils``) are wrong where the
calibration region cannot describe them, typically near the edges of the field of view.
A data-consistency term with wrong maps cannot be met by any image, and the
reconstruction pays for the mismatch. Here the maps get a smooth, per-coil correction that
is fitted together with the image:

    S_c = (S0_c + U d_c) / sqrt(sum_c' |S0_c' + U d_c'|^2),

with S0 the estimated maps, d_c a complex ``grid`` x ``grid`` array (zero at the start) and U
bicubic upsampling to H x W. The normalisation keeps sum_c |S_c|^2 = 1, so the image's
magnitude is not traded against the maps' (only a smooth per-pixel phase is, which a
magnitude image does not see). The penalty ``weight`` * ||d||^2 keeps the correction small
where the data do not ask for one.
"""
from __future__ import annotations

import torch
from torch import nn

from ..fourier import SenseOp
from .core import upsampling_matrix


class CoilMapRefinement(nn.Module):
    """A smooth correction of ``smaps`` (C, H, W) on a ``grid`` x ``grid`` control grid."""

    def __init__(self, smaps: torch.Tensor, grid: int = 16, weight: float = 0.0):
        super().__init__()
        if grid < 2:
            raise ValueError(f"the map correction's grid needs at least 2 x 2 points, got {grid}")
        smaps = torch.as_tensor(smaps).to(torch.complex64).contiguous()  # the refined maps keep this layout
        self.register_buffer("base", smaps)
        self.grid, self.weight = int(grid), float(weight)
        C = smaps.shape[0]
        self.delta = nn.Parameter(torch.zeros(2 * C, self.grid, self.grid, device=smaps.device))
        H, W = smaps.shape[-2:]  # U d = U_H d U_W^T (bicubic, align_corners=True; ``upsampling_matrix``)
        self.register_buffer("up_h", upsampling_matrix(self.grid, H, "bicubic", True).to(smaps.device), persistent=False)
        self.register_buffer("up_w", upsampling_matrix(self.grid, W, "bicubic", True).T.contiguous().to(smaps.device),
                             persistent=False)

    def maps(self) -> torch.Tensor:
        """The refined maps S (C, H, W), sum_c |S_c|^2 = 1."""
        up = self.up_h @ self.delta @ self.up_w
        C = self.base.shape[0]
        # on real planes: complex abs and division (and their backward passes) are slow on CPU
        re, im = self.base.real + up[:C], self.base.imag + up[C:]
        scale = (re.square() + im.square()).sum(0, keepdim=True).add_(1e-12).rsqrt()
        return torch.complex(re * scale, im * scale)

    def penalty(self) -> torch.Tensor:
        return self.weight * self.delta.pow(2).sum()

    def data_term(self, op: SenseOp, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """0.5 ||M F (S x) - y||^2 with the refined maps S (``SenseOp.data_term``), plus the
        penalty; differentiable in x and in the correction."""
        return op.data_term(x, y, self.maps()) + self.penalty()

