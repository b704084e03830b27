import warnings

import numpy as np
import pytest
import torch

from inr_utils import liif
from inr_utils.fourier import fft2c
from liif_helpers import SPEC, mc


@pytest.mark.parametrize("encoder,C", [("unet2d", 8), ("unet3d", 8), ("rdn3d", 8)])
@pytest.mark.parametrize("residual,input", [(False, "zf"), (True, "vs"), (True, "zfvs")])
def test_decoder_shapes(encoder, C, residual, input):
    kw = {"channels": [4, 8]} if encoder.startswith("unet") else {"channels": 4, "blocks": 1, "layers": 2, "growth": 4}
    model = liif.LiifCine(mc(encoder, 4, C, hidden=16, layers=2, encoder_kwargs=kw, residual=residual, input=input))
    channels = 4 if input == "zfvs" else 2
    zf, bins, tq = torch.randn(2, channels, 4, 16, 16), torch.tensor([[0.1, 0.35, 0.6, 0.85]] * 2), torch.rand(2, 5)
    out = model(zf, bins, tq)
    assert out.shape == (2, 5, 16, 16) and out.is_complex()
    pix = torch.tensor([0, 17, 255])
    assert torch.allclose(model(zf, bins, tq, pix), out.flatten(-2)[..., pix], atol=1e-5)
    # inference decodes QUERY_CHUNK query times at a time, in place: the same values (13: a last, short chunk)
    tq = torch.rand(2, 13)
    with torch.no_grad():
        chunked = model(zf, bins, tq)
    assert model.QUERY_CHUNK < 13 and torch.allclose(chunked, model(zf, bins, tq), atol=1e-5)


def test_residual_model_starts_near_zero_filling():
    torch.manual_seed(0)
    model = liif.LiifCine(mc("unet3d", 4, 4, hidden=16, layers=2, encoder_kwargs={"channels": [4, 8]}, residual=True)).eval()
    s = liif.make_sample(liif.subjects(None, "test", 16, 1)[0], SPEC, seed=0, train=False)
    pred = liif.predict(model, s)[0]
    zf = liif.zf_at_queries(s)
    assert np.allclose(pred, zf, atol=1e-5 * np.abs(zf).max())


def test_query_between_bins_blends_them():
    """At a bin centre the 3D model decodes that bin alone; halfway it is the mean of the
    two neighbours' decodings; in between it moves continuously."""
    torch.manual_seed(0)
    model = liif.LiifCine(mc("unet3d", 4, 8, hidden=16, layers=2, encoder_kwargs={"channels": [4, 8]})).eval()
    zf, bins = torch.randn(1, 2, 4, 16, 16), torch.tensor([[0.125, 0.375, 0.625, 0.875]])
    with torch.no_grad():
        feat, scale, _ = model.features(zf)
        f = feat[0].permute(1, 2, 3, 0)  # (T, H, W, C)
        dec = lambda k, d: model.decoder(torch.cat([f[k], torch.full(f[k].shape[:-1] + (1,), d)], -1))
        as_complex = lambda o: torch.complex(o[..., 0], o[..., 1]) * scale.view(())
        assert torch.allclose(model(zf, bins, torch.tensor([[0.375]]))[0, 0], as_complex(dec(1, 0.0)), atol=1e-5)
        halfway = 0.5 * as_complex(dec(0, 0.5)) + 0.5 * as_complex(dec(1, -0.5))
        assert torch.allclose(model(zf, bins, torch.tensor([[0.25]]))[0, 0], halfway, atol=1e-5)
        out = model(zf, bins, torch.linspace(0.125, 0.375, 21)[None])[0]
        assert (out[1:] - out[:-1]).abs().max() < 0.2 * out.abs().max()


def test_2d_model_decodes_its_one_feature_map_with_the_time_input():
    """2D: value(t) = dec([F, 2t - 1]) at every pixel, the decoder applied to the concatenated
    input (the model computes the first layer's feature term once per pixel)."""
    torch.manual_seed(0)
    model = liif.LiifCine(mc("unet2d", 4, 6, hidden=16, layers=3, encoder_kwargs={"channels": [4, 8]})).eval()
    zf, bins, tq = torch.randn(2, 2, 4, 16, 16), torch.tensor([[0.125, 0.375, 0.625, 0.875]] * 2), torch.rand(2, 5)
    with torch.no_grad():
        feat, scale, _ = model.features(zf)
        f = feat.permute(0, 2, 3, 1)  # (B, H, W, C)
        for b in range(2):
            for q in range(5):
                t_in = torch.full(f[b].shape[:-1] + (1,), 2 * float(tq[b, q]) - 1)
                o = model.decoder(torch.cat([f[b], t_in], -1))
                want = torch.complex(o[..., 0], o[..., 1]) * scale[b].view(())
                assert torch.allclose(model(zf, bins, tq)[b, q], want, atol=1e-5)


def test_image_skip_starts_from_the_input_and_round_trips(tmp_path):
    torch.manual_seed(0)
    kw = {"channels": 4, "blocks": 1, "layers": 2, "growth": 4}
    model = liif.LiifCine(mc("rdn3d", 4, 4, hidden=16, layers=2, encoder_kwargs=kw, residual=True, input="vs",
                          image_skip=True)).eval()
    s = liif.make_sample(liif.subjects(None, "test", 16, 1)[0], SPEC, seed=0, train=False)
    want = liif.zf_at_queries(s, "vs")
    assert np.allclose(liif.predict(model, s)[0], want, atol=1e-5 * np.abs(want).max())
    with torch.no_grad():  # a trained skip path changes the output, and survives save / load
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    moved = liif.predict(model, s)[0]
    assert np.abs(moved - want).max() > 1e-3 * np.abs(want).max()
    liif.save_model(model, tmp_path / "skip.pt")
    assert np.allclose(liif.predict(liif.load_model(tmp_path / "skip.pt"), s)[0], moved, atol=1e-6)


@pytest.mark.parametrize("encoder,residual", [("unet2d", True), ("unet3d", False)])
def test_image_skip_needs_a_3d_residual_model(encoder, residual):
    with pytest.raises(ValueError, match="image_skip"):
        liif.LiifCine(mc(encoder, 4, 4, encoder_kwargs={"channels": [4, 8]}, residual=residual, image_skip=True))


def test_unknown_input_is_named():
    with pytest.raises(ValueError, match="'kspace'"):
        liif.LiifCine(mc("unet3d", 4, 4, encoder_kwargs={"channels": [4, 8]}, input="kspace"))


def _cascade(dc_cascade, seed=0, **kw):
    torch.manual_seed(seed)
    return liif.LiifCine(mc("unet3d", 4, 4, hidden=16, layers=2, encoder_kwargs={"channels": [4, 8]}, residual=True,
                         input="vs", image_skip=True, dc_cascade=dc_cascade, **kw)).eval()


def test_dc_cascade_starts_as_the_plain_model_and_round_trips(tmp_path):
    """At initialisation every stage is the identity and the view-shared bins already hold
    their own measured lines, so the cascade (two stages, final DC) gives the plain model's
    output; trained, it survives save / load."""
    s = liif.make_sample(liif.subjects(None, "test", 16, 1)[0], SPEC, seed=0, train=False)
    plain, cascade = _cascade(None), _cascade([4, 8], dc_stages=2, final_dc=True)
    assert len(cascade.dc_cnns) == 2 and cascade.dc_logits.shape == (3,) and plain.dc_logits is None
    want = liif.predict(plain, s)[0]
    assert np.allclose(liif.predict(cascade, s)[0], want, atol=1e-5 * np.abs(want).max())
    with torch.no_grad():
        for p in cascade.dc_cnns.parameters():
            p.add_(0.05 * torch.randn_like(p))
    moved = liif.predict(cascade, s)[0]
    assert np.abs(moved - want).max() > 1e-3 * np.abs(want).max()
    liif.save_model(cascade, tmp_path / "cascade.pt")
    loaded = liif.load_model(tmp_path / "cascade.pt")
    assert loaded.config.dc_stages == 2 and loaded.config.final_dc
    assert np.allclose(liif.predict(loaded, s)[0], moved, atol=1e-6)


@pytest.mark.parametrize("stages, final_dc", [(2, False), (1, True)])
def test_dc_step_puts_the_measured_lines_back(stages, final_dc):
    """With mu -> 1 the bins after the last DC step hold exactly the measured lines, whatever
    the stages (and, with final_dc, the encoder's image correction) did."""
    spec = liif.AcquisitionSpec(R=12, T_low=4, T_high=8, T_query=6)  # about half the lines per bin
    s = liif.make_sample(liif.subjects(None, "test", 16, 1)[0], spec, seed=0, train=False)
    model = _cascade([4, 8], dc_stages=stages, final_dc=final_dc)
    with torch.no_grad():
        model.dc_logits.fill_(30.0)
        for p in [*model.dc_cnns.parameters(), *(liif.output_conv(model.encoder).parameters() if final_dc else [])]:
            p.add_(0.05 * torch.randn_like(p))  # the stages (and the encoder's image channels) change the bins
        b = liif.collate([s])
        _, scale, skip = model.features(model.input_of(b), b.kspace, b.mask)
        x2 = b.vs / scale + skip  # without final_dc the output conv's image channels are still zero
    k = fft2c(torch.complex(x2[0, 0], x2[0, 1]))
    m = b.mask[0].bool()[:, None, :].expand_as(k)
    assert 0 < m.float().mean() < 0.9
    assert torch.allclose(k[m], (b.kspace[0] / scale[0, 0])[m], atol=1e-5)
    vs = fft2c(torch.complex(b.vs[0, 0], b.vs[0, 1]) / scale[0, 0])
    assert (k[~m] - vs[~m]).abs().max() > 1e-2  # the lines not measured keep the learned change
    with pytest.raises(ValueError, match="kspace and mask"):
        model(model.input_of(b), b.bin_times, b.t_query)


def test_dc_options_are_checked():
    kw = {"encoder_kwargs": {"channels": [4, 8]}, "residual": True}
    with pytest.raises(ValueError, match="image_skip"):
        liif.LiifCine(mc("unet3d", 4, 4, dc_cascade=[4], **kw))
    with pytest.raises(ValueError, match="image_skip"):
        liif.LiifCine(mc("unet3d", 4, 4, final_dc=True, **kw))
    with pytest.raises(ValueError, match="dc_stages"):
        liif.LiifCine(mc("unet3d", 4, 4, image_skip=True, dc_cascade=[4], dc_stages=0, **kw))


def test_bf16_autocast_changes_only_the_cnn_precision(tmp_path, monkeypatch):
    """bf16=True runs the convolutional networks in bfloat16 autocast: same weights give the
    float32 output to bfloat16 accuracy (but not bit for bit). The setting is saved; loading
    keeps it where the device has fast bfloat16 and falls back to float32 elsewhere (emulated
    bfloat16 is many times slower), unless asked for."""
    s = liif.make_sample(liif.subjects(None, "test", 16, 1)[0], SPEC, seed=0, train=False)
    f32, b16 = _cascade([4, 8], final_dc=True), _cascade([4, 8], final_dc=True, bf16=True)
    with torch.no_grad():
        for p in [*f32.dc_cnns.parameters(), *liif.output_conv(f32.encoder).parameters(), *f32.decoder.net[-1].parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    b16.load_state_dict(f32.state_dict())
    want, got = liif.predict(f32, s)[0], liif.predict(b16, s)[0]
    err = np.abs(got - want).max() / np.abs(want).max()
    assert 1e-6 < err < 3e-2
    liif.save_model(b16, tmp_path / "b16.pt")
    liif.save_model(f32, tmp_path / "f32.pt")
    for supported in (True, False):
        monkeypatch.setattr("inr_utils.liif.training.bf16_supported", lambda device: supported)
        back = liif.load_model(tmp_path / "b16.pt")
        assert back.bf16 is supported and back.config.bf16 is supported
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert liif.load_model(tmp_path / "b16.pt", bf16=True).bf16 is True
        # bfloat16 forced where it is emulated is warned about, and only there
        assert any("does not have fast" in str(w.message) for w in caught) is (not supported)
        assert liif.load_model(tmp_path / "f32.pt").bf16 is False  # float32 stays float32
    assert np.allclose(liif.predict(back, s)[0], want, atol=1e-5 * np.abs(want).max())  # float32: f32's output


def test_decoder_split_into_feature_and_time_parts_equals_the_mlp_with_and_without_autograd():
    """finish(feature_part(F), t) is the sine MLP on [F, t]: the same values in inference (in-place
    path) and in training, and the same gradients for the features and every weight."""
    torch.manual_seed(0)
    dec = liif.SineDecoder(7, hidden=16, layers=3).double()  # 6 feature channels and t; float64: omega0 = 30
    F = torch.randn(2, 6, 40, dtype=torch.float64)  # (B, C, P)                 amplifies float32 rounding
    t = torch.rand(2, 5, 1, dtype=torch.float64) * 2 - 1  # (B, Tq, 1)
    full = torch.cat([F.movedim(1, -1)[:, None].expand(2, 5, 40, 6), t[..., None].expand(2, 5, 40, 1)], -1)
    ref = dec(full)  # (B, Tq, P, 2)
    with torch.no_grad():
        torch.testing.assert_close(dec.finish(dec.feature_part(F)[:, None], t), ref.detach(), rtol=1e-9, atol=1e-10)
    F1, F2 = F.clone().requires_grad_(), F.clone().requires_grad_()
    out = dec.finish(dec.feature_part(F1)[:, None], t)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-10)
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), [F1, *dec.parameters()])
    full2 = torch.cat([F2.movedim(1, -1)[:, None].expand(2, 5, 40, 6), t[..., None].expand(2, 5, 40, 1)], -1)
    grads_ref = torch.autograd.grad((dec(full2) * g).sum(), [F2, *dec.parameters()])
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
