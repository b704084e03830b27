import pytest
import torch

from inr_utils import liif


@pytest.mark.parametrize("dims", [2, 3])
def test_unet_init_keeps_the_activation_scale(dims):
    """He init: the UNet's features before its output conv keep the input's scale, where
    PyTorch's default init shrinks them by more than 10x (a residual LIIF then sits at its
    input for many epochs)."""
    torch.manual_seed(0)
    x = torch.randn(2, 2, 4, 32, 32) if dims == 3 else torch.randn(2, 8, 32, 32)

    def last_features(net):
        seen = []
        net.head.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
        net(x)
        return float(seen[0].detach().std())

    name = "unet3d" if dims == 3 else "unet2d"
    make = lambda he: liif.ENCODERS[name](4, 8, 2, **liif.EncoderConfig(name, channels=[16, 32, 64], he=he).kwargs())
    he = last_features(make(True))
    assert 0.2 < he < 5
    assert last_features(make(False)) < 0.1 * he


@pytest.mark.parametrize("encoder,kw", [("unet3d", {"channels": [4, 8]}),
                                        ("rdn3d", {"channels": 4, "blocks": 1, "layers": 2, "growth": 4})])
def test_circular_time_encoders_are_periodic_in_time(encoder, kw):
    """The bins cover one cardiac cycle: with circular time padding, rolling the input bins
    in time rolls the encoder's output the same way; zero padding breaks that at the ends."""
    x = torch.randn(1, 2, 4, 8, 8)
    for circular in (True, False):
        torch.manual_seed(0)
        enc = liif.ENCODERS[encoder](4, 3, 2, **liif.EncoderConfig(encoder, **kw, circular=circular).kwargs()).eval()
        with torch.no_grad():
            rolled, plain = enc(x.roll(1, 2)), enc(x).roll(1, 2)
        assert torch.allclose(rolled, plain, atol=1e-5) == circular


@pytest.mark.parametrize("T,p", [(1, 1), (2, 1), (5, 1), (5, 2)])
def test_circular_time_pad_gradient_matches_autograd_of_the_concatenation(T, p):
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        x = torch.randn(2, 3, T, 4, 5).contiguous(memory_format=layout).requires_grad_()
        weights = torch.randn(2, 3, T + 2 * p, 4, 5)
        padded = liif.encoders._CircularTimePad.apply(x, p)
        reference = torch.cat([x[:, :, -p:], x, x[:, :, :p]], 2)
        assert torch.equal(padded, reference)
        (g,) = torch.autograd.grad((padded * weights).sum(), x)
        (g_ref,) = torch.autograd.grad((reference * weights).sum(), x)
        assert torch.allclose(g, g_ref, atol=1e-6)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last_3d])
def test_spatial_upsampling_equals_trilinear_at_the_same_time_axis(layout):
    """The 3D UNet upsamples per frame in 2D (faster); that is trilinear interpolation with T kept."""
    x = torch.randn(2, 3, 5, 6, 7).contiguous(memory_format=layout)
    up = liif.upsample_space(x, (12, 14))
    ref = torch.nn.functional.interpolate(x, size=(5, 12, 14), mode="trilinear", align_corners=False)
    assert up.shape == ref.shape and torch.allclose(up, ref, atol=1e-6)
    assert torch.allclose(liif.upsample_space(x[:, :, 0], (12, 14)), ref[:, :, 0], atol=1e-6)


@pytest.mark.parametrize("batch", [1, 3])
def test_conv3d_takes_onednn_on_cpu_with_nn_conv3d_values_and_gradients(batch):
    """The encoders' Conv3d equals nn.Conv3d (values and gradients, same weights) and runs
    oneDNN's kernel also for one sample in float32, where PyTorch's dispatch picks slow_conv3d;
    under bfloat16 autocast it is nn.Conv3d (the autocast cast stays)."""
    from torch import nn
    from inr_utils.liif.encoders import Conv3d

    torch.manual_seed(0)
    ours, plain = Conv3d(6, 5, 3, padding=1), nn.Conv3d(6, 5, 3, padding=1)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(batch, 6, 4, 12, 10)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autograd.profiler.profile() as prof:
        y1 = ours(x1)
    assert "aten::mkldnn_convolution" in {e.key for e in prof.key_averages()}
    y2 = plain(x2)
    torch.testing.assert_close(y1, y2, rtol=1e-4, atol=1e-5)
    g = torch.randn_like(y1)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours.bias.grad, plain.bias.grad, rtol=1e-4, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ours(x).dtype == torch.bfloat16
