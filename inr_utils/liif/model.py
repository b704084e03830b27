"""The LIIF model: an encoder reads the binned cine, a sine-MLP decoder is queried at any
continuous time t (``LiifCine``, built from a ``ModelConfig``).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..fourier import fft2c, ifft2c
from ..inr import SineLayer
from .config import INPUTS, EncoderConfig, ModelConfig
from .data import Sample
from .encoders import ENCODERS, output_conv


class SineDecoder(nn.Module):
    """Sine MLP [feature, time] -> (real, imag); hidden layers of sines, last linear."""

    def __init__(self, cin: int, hidden: int = 32, layers: int = 4, omega0: float = 30.0):
        super().__init__()
        mods = [SineLayer(cin, hidden, omega0, first=True)] + [SineLayer(hidden, hidden, omega0) for _ in range(layers - 1)]
        self.net = nn.Sequential(*mods, nn.Linear(hidden, 2))

    def forward(self, x):
        return self.net(x)

    def feature_part(self, feat: torch.Tensor) -> torch.Tensor:
        """The first layer's argument without its time term, omega0 (W_f F + b), channels last:
        feat (B, C, ..., P) -> (B, ..., P, hidden).

        The first layer is sin(omega0 (W_f F + w_t t + b)); all but the time term is the same
        for every query time of a pixel (2D) or of a bin (3D), so it is computed once per pixel
        or bin instead of once per query (``finish`` adds the time term)."""
        first = self.net[0]
        f = feat.movedim(1, -1)
        return first.omega0 * torch.addmm(first.linear.bias, f.reshape(-1, f.shape[-1]), first.linear.weight[:, :-1].T
                                          ).view(*f.shape[:-1], -1)

    def finish(self, pre: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The decoder from ``feature_part``'s ``pre`` (..., hidden) and the time input ``t``
        (broadcast against pre's leading axes): equals ``forward([F, t])``. Without autograd
        (inference) each sine layer works in place on one (..., hidden) tensor: these are the
        largest tensors of a prediction, one per query time and pixel."""
        first = self.net[0]
        w_t = first.omega0 * first.linear.weight[:, -1]
        if torch.is_grad_enabled():
            return self.net[1:](torch.sin(pre + t[..., None] * w_t))
        x = torch.addcmul(pre, t[..., None], w_t).sin_()
        for layer in self.net[1:-1]:
            x = layer.linear(x).mul_(layer.omega0).sin_()
        return self.net[-1](x)


class LiifCine(nn.Module):
    """Encoder + sine decoder queried at continuous times.

    ``temporal=False`` (2D encoder): one map F(y, x); value(t) = dec([F, 2t - 1]).
    ``temporal=True`` (3D encoders): per-bin maps F_k; for t between bins k0 and k1 (bin
    centres, periodic) with fraction w, value(t) = (1 - w) dec([F_k0, d0]) + w dec([F_k1, d1]),
    d = (t - t_k) * T_low the offset in bin units.
    ``residual=True`` adds the decoded value to the input bins interpolated linearly to t
    (the network learns a correction; training starts from the input, not from noise).
    ``input``: ``"zf"`` the zero-filled bins (the original's), ``"vs"`` view-shared bins
    (each bin's missing lines taken from the nearest bin that sampled them), ``"zfvs"`` both
    (4 channels per bin; what was measured in the bin and what was borrowed; the residual
    base is the view-shared bins).
    ``image_skip=True`` (3D encoders, residual): the encoder outputs two more channels, a
    per-bin (real, imag) correction added to the input bins before they are interpolated to t
    (a plain residual CNN path that trains fast; zero at initialisation).
    ``dc_cascade=[widths]`` (needs ``image_skip``): ``dc_stages`` small 3D UNets, each followed
    by a soft data-consistency step that puts the measured lines back with a learned weight
    mu_i in (0, 1), correct the input bins before the encoder reads them (an unrolled network):

        x_i = DC_i(x_{i-1} + UNet_i(x_{i-1})),   DC_i(z) = F^H [ F z + mu_i M (y - F z) ]   (per bin; y its lines, M its mask)

    The last x_i then replaces the input bins as the residual base. ``final_dc=True`` applies one
    more soft DC step to the encoder's corrected bins (x_n + image correction) before they are
    interpolated to t. Bins mix acquisition times, so the lines are not exact for any single
    image; each mu is learned (starts at 0.5).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"LiifCine takes a ModelConfig (see liif.config, liif.preset), got {type(config).__name__}")
        self.config = c = config
        self.bf16, self.input, self.temporal = c.bf16, c.input, c.encoder.temporal
        self.image_skip, self.C = c.image_skip, c.C
        self.encoder = ENCODERS.build(c.encoder.name, c.T_low, c.C + 2 * c.image_skip, c.in_channels, **c.encoder.kwargs())
        if c.image_skip:  # the correction starts at zero, so training starts from the input bins
            last = output_conv(self.encoder)
            with torch.no_grad():
                last.weight[c.C:].zero_(); last.bias[c.C:].zero_()
        if self.temporal:  # channels-last Conv3d is the faster layout on CPU
            self.encoder.to(memory_format=torch.channels_last_3d)
        self.decoder = SineDecoder(c.C + 1, c.hidden, c.layers)
        if c.residual:  # start exactly from the interpolated zero filling
            nn.init.zeros_(self.decoder.net[-1].weight)
            nn.init.zeros_(self.decoder.net[-1].bias)
        self.T_low, self.residual = c.T_low, c.residual
        # built last, so the other modules start from the same weights with or without them
        self.dc_cnns = nn.ModuleList()
        stage = EncoderConfig("unet3d", channels=c.dc_cascade, circular=bool(c.encoder.kwargs().get("circular", False))) \
            if c.dc_cascade else None
        for _ in range(c.dc_stages):
            cnn = ENCODERS.build("unet3d", c.T_low, 2, c.in_channels, **stage.kwargs())
            head = output_conv(cnn)
            with torch.no_grad():  # each stage starts as the identity
                head.weight.zero_(); head.bias.zero_()
            self.dc_cnns.append(cnn.to(memory_format=torch.channels_last_3d))
        self.final_dc = c.final_dc
        n_dc = len(self.dc_cnns) + c.final_dc  # mu_i = sigmoid(logit_i); no parameter without DC steps
        self.register_parameter("dc_logits", nn.Parameter(torch.zeros(n_dc)) if n_dc else None)

    def input_of(self, sample: Sample) -> torch.Tensor:
        """The encoder's input from a sample or batch: its (2 or 4, T_low, H, W) channels."""
        return torch.cat([getattr(sample, k) for k in INPUTS[self.input]], -4)

    def features(self, zf, kspace: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None):
        """zf (B, 2, T_low, H, W) -> tanh features (B, C, H, W) or (B, C, T_low, H, W), the
        per-sample scale (the input is divided by its peak; the output multiplied back) and the
        per-bin image correction (B, 2, T_low, H, W) of ``image_skip`` (None without it).
        ``kspace`` (B, T_low, H, W) and ``mask`` (B, T_low, W): the bins' lines, for ``dc_cascade`` / ``final_dc``."""
        scale = zf.flatten(1).abs().amax(1).clamp_min(1e-8).view(-1, 1, 1, 1, 1)
        x = zf / scale
        if self.dc_logits is not None and (kspace is None or mask is None):
            raise ValueError("a dc_cascade / final_dc model needs the bins' kspace and mask (LiifCine.apply_to passes them)")
        base = bins = x[:, -2:]
        for i, cnn in enumerate(self.dc_cnns):
            z = torch.cat([x[:, :-2], bins], 1).contiguous(memory_format=torch.channels_last_3d)
            bins = self.soft_dc(bins + self._cnn(cnn, z), kspace, mask, scale, self.dc_logits[i])
        x = torch.cat([x[:, :-2], bins], 1)
        x = x.flatten(1, 2) if not self.temporal else x.contiguous(memory_format=torch.channels_last_3d)
        y = self._cnn(self.encoder, x)
        if not self.image_skip:
            return torch.tanh(y[:, : self.C]), scale, None
        # with image_skip the last two channels are a per-bin (real, imag) correction of the input bins
        bins = bins + y[:, self.C:]
        if self.final_dc:
            bins = self.soft_dc(bins, kspace, mask, scale, self.dc_logits[-1])
        return torch.tanh(y[:, : self.C]), scale, bins - base

    def _cnn(self, net, x):
        """A convolutional network, in bfloat16 autocast when ``bf16`` (the FFTs and the decoder stay float32)."""
        bf16 = bf16_supported(x.device.type) if self.bf16 is None else self.bf16
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            return net(x).float()

    @staticmethod
    def soft_dc(bins, kspace, mask, scale, logit):
        """F^H [F z + mu M (y / scale - F z)], mu = sigmoid(logit); bins z (B, 2, T, H, W) real/imag."""
        k = fft2c(torch.complex(bins[:, 0], bins[:, 1]))
        m = mask[:, :, None, :].to(k.real.dtype)
        z = ifft2c(k + torch.sigmoid(logit) * m * (kspace / scale[:, 0] - k))
        return torch.stack([z.real, z.imag], 1)

    def apply_to(self, batch: Sample, pixels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The model on a batch of samples (``collate``) at its query times."""
        return self(self.input_of(batch), batch.bin_times, batch.t_query, pixels, batch.kspace, batch.mask)

    #: query times decoded at a time without autograd (inference): the decoder's tensors, one
    #: (queries, pixels, hidden) per layer, then stay small enough for the CPU's caches
    QUERY_CHUNK = 8

    def forward(self, zf, bin_times, t_query, pixels: Optional[torch.Tensor] = None,
                kspace: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None):
        """Complex values at t_query (B, Tq): (B, Tq, H, W), or (B, Tq, P) at flat pixel
        indices ``pixels`` (P,) (training on a random subset of pixels is cheaper)."""
        feat, scale, skip = self.features(zf, kspace, mask)
        B, Tq = t_query.shape
        H, W = zf.shape[-2:]
        feat = feat.flatten(-2)  # (..., H*W)
        zfn = (zf[:, -2:] / scale + (0 if skip is None else skip)).flatten(-2)  # (B, 2, T, H*W); vs when both
        if pixels is not None:
            feat, zfn = feat[..., pixels], zfn[..., pixels]
        pre = self.decoder.feature_part(feat)  # (B, P, hidden) 2D; (B, T_low, P, hidden) 3D
        step = Tq if torch.is_grad_enabled() else self.QUERY_CHUNK
        out = torch.cat([self._decode(pre, zfn, bin_times, t_query[:, s:s + step]) for s in range(0, Tq, step)], 1)
        out = torch.complex(out[..., 0], out[..., 1]) * scale.view(-1, 1, 1)
        return out if pixels is not None else out.view(B, Tq, H, W)

    def _decode(self, pre, zfn, bin_times, t_query):
        """(real, imag) at t_query (B, Tq): (B, Tq, P, 2), from the decoder's feature term ``pre``
        and the normalised input bins ``zfn`` (B, 2, T_low, P) for the residual."""
        T = self.T_low
        pos = torch.remainder(t_query - bin_times[:, :1], 1.0) * T  # fractional bin position, periodic
        k0 = torch.floor(pos).long()
        i0, i1 = k0 % T, (k0 + 1) % T
        w = (pos - k0)[:, None, :, None]  # (B, 1, Tq, 1)
        batch = torch.arange(len(t_query), device=t_query.device)[:, None]
        if not self.temporal:  # dec([F, 2t - 1]) for every query time t
            out = self.decoder.finish(pre[:, None], (2 * t_query - 1)[:, :, None])  # (B, Tq, P, 2)
        else:  # dec([F_idx, d]) per query: the bin's feature term, indexed (B, Tq, P, hidden)
            wl = w[:, 0, :, :, None]
            out = ((1 - wl) * self.decoder.finish(pre[batch, i0], (pos - k0)[:, :, None])
                   + wl * self.decoder.finish(pre[batch, i1], (pos - k0 - 1)[:, :, None]))
        if self.residual:
            take = lambda idx: zfn.movedim(2, 1)[batch, idx].movedim(2, 1)  # (B, 2, Tq, P)
            out = out + ((1 - w) * take(i0) + w * take(i1)).movedim(1, -1)
        return out


def bf16_supported(device: str = "cpu") -> bool:
    """Whether bfloat16 convolutions are fast here (CPU: oneDNN with AVX512-BF16 / AMX; CUDA: Ampere or newer)."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:  # a private query of PyTorch's oneDNN build; absent or failing: assume no
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
