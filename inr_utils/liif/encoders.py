"""The LIIF encoders: convolutional networks that read the binned cine and output the
feature maps the decoder is queried with.

Registry ``ENCODERS`` (built from an ``EncoderConfig``, whose fields hold every default):

* ``unet2d``: a 2D UNet over the bins stacked as channels; ONE C-channel map (B, C, H, W).
* ``unet3d``: a 3D UNet that pools only in space; C channels per bin (B, C, T_low, H, W).
* ``rdn3d``: a residual dense network (Zhang et al. 2018) with 3D convolutions, per bin.

3D networks may pad periodically in time (``CircularTimeConv3d``): the bins cover one
cardiac cycle, so the last bin neighbours the first.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry

ENCODERS = Registry("encoder")
#: encoders that keep time (output per bin); the others output one map for every t
TEMPORAL = {"unet3d", "rdn3d"}


def output_conv(encoder: nn.Module) -> nn.Module:
    """An encoder's output convolution: its last registered Conv2d / Conv3d."""
    return [m for m in encoder.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))][-1]


def he_init(encoder: nn.Module) -> nn.Module:
    """He (Kaiming) normal initialisation for LeakyReLU(0.1) of every conv but the output one
    (kept at PyTorch's default). With PyTorch's default a UNet's features shrink by orders of
    magnitude from input to head, and a residual LIIF then sits at its input for many epochs."""
    last = output_conv(encoder)
    for conv in (m for m in encoder.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)) and m is not last):
        nn.init.kaiming_normal_(conv.weight, a=0.1, nonlinearity="leaky_relu")
        nn.init.zeros_(conv.bias)
    return encoder


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that runs oneDNN's kernel on a CPU in float32 for any batch size.

    For one sample (a cine at inference, ``liif.reconstruct``) PyTorch's dispatch picks its
    native ``slow_conv3d`` for these layers (a size heuristic made for 2-D convolutions), several
    times slower than oneDNN; ``torch.mkldnn_convolution`` is the kernel it picks for larger
    batches, with the same autograd. Elsewhere (CUDA, bfloat16 autocast, other dtypes, string
    padding) it is ``nn.Conv3d``."""

    def _conv_forward(self, x, weight, bias):
        if (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
                and self.padding_mode == "zeros" and not isinstance(self.padding, str)
                and not torch.is_autocast_enabled("cpu") and torch.backends.mkldnn.is_available()):
            return torch.mkldnn_convolution(x, weight, bias, self.padding, self.stride, self.dilation, self.groups)
        return super()._conv_forward(x, weight, bias)


class CircularTimeConv3d(Conv3d):
    """Conv3d padded periodically in time (the bins cover one cardiac cycle, so the last bin
    neighbours the first) and with zeros in space."""

    def __init__(self, cin, cout, kernel_size=3, padding=0):
        super().__init__(cin, cout, kernel_size, padding=(0, padding, padding))
        self.time_pad = padding

    def forward(self, x):
        return super().forward(_CircularTimePad.apply(x, self.time_pad) if self.time_pad else x)


class _CircularTimePad(torch.autograd.Function):
    """Periodic padding of p frames on each side of axis 2. Its backward folds the pads'
    gradients onto the first and last p frames in place (autograd through slices and a
    concatenation would zero-fill and add whole tensors)."""

    @staticmethod
    def forward(ctx, x, p: int):
        ctx.p = p
        return torch.cat([x[:, :, -p:], x, x[:, :, :p]], 2)

    @staticmethod
    def backward(ctx, grad):
        p = ctx.p
        grad_x = grad[:, :, p:-p].clone()
        grad_x[:, :, -p:] += grad[:, :, :p]
        grad_x[:, :, :p] += grad[:, :, -p:]
        return grad_x, None


def _block(conv, cin, cout):
    return nn.Sequential(conv(cin, cout, 3, padding=1), nn.LeakyReLU(0.1), conv(cout, cout, 3, padding=1), nn.LeakyReLU(0.1))


class UNet(nn.Module):
    """Small UNet in 2D or 3D; 3D pools only in space (time is kept at T_low)."""

    def __init__(self, dims: int, cin: int, cout: int, channels: Sequence[int] = (16, 32, 64), circular: bool = False):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else (CircularTimeConv3d if circular else Conv3d)
        self.pool = (lambda x: F.avg_pool2d(x, 2)) if dims == 2 else (lambda x: F.avg_pool3d(x, (1, 2, 2)))
        self.downs = nn.ModuleList()
        c_prev = cin
        for c in channels:
            self.downs.append(_block(conv, c_prev, c))
            c_prev = c
        self.ups = nn.ModuleList(_block(conv, channels[i] + channels[i - 1], channels[i - 1]) for i in range(len(channels) - 1, 0, -1))
        self.head = conv(channels[0], cout, 1)

    def forward(self, x):
        skips = []
        for i, down in enumerate(self.downs):
            x = down(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = up(torch.cat([upsample_space(x, skip.shape[-2:]), skip], 1))
        return self.head(x)


def upsample_space(x, size):
    """Bilinear upsampling of the last two (spatial) axes of (B, C, H, W) or (B, C, T, H, W).
    For 3D this equals trilinear interpolation at the same T (align_corners=False) up to
    rounding, done per frame in 2D, whose backward is faster on a CPU than trilinear's."""
    if x.dim() == 4:
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    B, C, T = x.shape[:3]
    y = F.interpolate(x.transpose(1, 2).reshape(B * T, C, *x.shape[-2:]), size=tuple(size), mode="bilinear",
                      align_corners=False)
    return y.reshape(B, T, C, *y.shape[-2:]).transpose(1, 2)


class RDB(nn.Module):
    """Residual dense block (Zhang et al. 2018) with 3D convolutions."""

    def __init__(self, channels: int, growth: int, layers: int, conv=Conv3d):
        super().__init__()
        self.convs = nn.ModuleList(conv(channels + i * growth, growth, 3, padding=1) for i in range(layers))
        self.fuse = Conv3d(channels + layers * growth, channels, 1)

    def forward(self, x):
        feats = [x]
        for conv in self.convs:
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.1))
        return x + self.fuse(torch.cat(feats, 1))


class RDN3D(nn.Module):
    def __init__(self, cin: int, cout: int, channels: int = 32, blocks: int = 5, layers: int = 6, growth: int = 32,
                 circular: bool = False):
        super().__init__()
        conv = CircularTimeConv3d if circular else Conv3d
        self.head = conv(cin, channels, 3, padding=1)
        self.blocks = nn.ModuleList(RDB(channels, growth, layers, conv) for _ in range(blocks))
        self.fuse = nn.Sequential(Conv3d(blocks * channels, channels, 1), conv(channels, channels, 3, padding=1))
        self.tail = conv(channels, cout, 3, padding=1)

    def forward(self, x):
        f0 = self.head(x)
        out, outs = f0, []
        for b in self.blocks:
            out = b(out)
            outs.append(out)
        return self.tail(self.fuse(torch.cat(outs, 1)) + f0)


# constructors take (T_low, C out, input channels per bin) and the encoder's fields of its
# EncoderConfig (``EncoderConfig.kwargs``); the defaults live in the config only
@ENCODERS.register("unet2d")
def _unet2d(T_low: int, C: int, in_channels: int, *, channels: Sequence[int], he: bool):
    net = UNet(2, in_channels * T_low, C, channels)
    return he_init(net) if he else net


@ENCODERS.register("unet3d")
def _unet3d(T_low: int, C: int, in_channels: int, *, channels: Sequence[int], he: bool, circular: bool):
    net = UNet(3, in_channels, C, channels, circular)
    return he_init(net) if he else net


@ENCODERS.register("rdn3d")
def _rdn3d(T_low: int, C: int, in_channels: int, *, channels: int, blocks: int, layers: int, growth: int,
           circular: bool):
    return RDN3D(in_channels, C, channels, blocks, layers, growth, circular)  # its residual paths keep the scale
