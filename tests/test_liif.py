
import numpy as np
import pytest
import torch

from inr_utils import liif
from inr_utils.io import SUNNYBROOK_SPLIT, SUNNYBROOK_FILE


SPEC = liif.AcquisitionSpec(R=3, T_low=4, T_high=8, T_query=6)


def test_sample_shapes_and_determinism():
    subj = liif.subjects(None, "train", 16, 1)[0]
    a, b = liif.make_sample(subj, SPEC, seed=3, train=True), liif.make_sample(subj, SPEC, seed=3, train=True)
    assert a["zf"].shape == (2, 4, 16, 16) and a["target"].shape == (6, 16, 16) and a["mask"].shape == (4, 16)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ev = liif.make_sample(subj, SPEC, seed=3, train=False)
    assert torch.allclose(ev["t_query"], (torch.arange(6) + 0.5) / 6)


def test_splits_never_share_a_patient_or_seed():
    names = {s: {x.name.split("/")[0] for x in liif.subjects(SUNNYBROOK_FILE, s, 16)} for s in ("train", "val", "test")}
    assert names["train"] == set(SUNNYBROOK_SPLIT["train"]) and names["test"] == set(SUNNYBROOK_SPLIT["test"])
    assert not (names["train"] & names["val"] or names["train"] & names["test"] or names["val"] & names["test"])
    seeds = {s: {x.name for x in liif.subjects(None, s, 16, 50)} for s in ("train", "val", "test")}
    assert not (seeds["train"] & seeds["val"] or seeds["train"] & seeds["test"] or seeds["val"] & seeds["test"])


@pytest.mark.parametrize("encoder,C", [("unet2d", 8), ("unet3d", 8), ("rdn3d", 8)])
@pytest.mark.parametrize("residual,input", [(False, "zf"), (True, "vs"), (True, "zfvs")])
def test_decoder_shapes(encoder, C, residual, input):
    kw = {"channels": [4, 8]} if encoder.startswith("unet") else {"channels": 4, "blocks": 1, "layers": 2, "growth": 4}
    model = liif.LiifCine(encoder, 4, C, hidden=16, layers=2, encoder_kwargs=kw, residual=residual, input=input)
    channels = 4 if input == "zfvs" else 2
    zf, bins, tq = torch.randn(2, channels, 4, 16, 16), torch.tensor([[0.1, 0.35, 0.6, 0.85]] * 2), torch.rand(2, 5)
    out = model(zf, bins, tq)
    assert out.shape == (2, 5, 16, 16) and out.is_complex()
    pix = torch.tensor([0, 17, 255])
    assert torch.allclose(model(zf, bins, tq, pix), out.flatten(-2)[..., pix], atol=1e-5)


def test_residual_model_starts_near_zero_filling():
    torch.manual_seed(0)
    model = liif.LiifCine("unet3d", 4, 4, hidden=16, layers=2, encoder_kwargs={"channels": [4, 8]}, residual=True).eval()
    s = liif.make_sample(liif.subjects(None, "test", 16, 1)[0], SPEC, seed=0, train=False)
    pred = liif.predict(model, s)[0]
    zf = liif.zf_at_queries(s)
    assert np.allclose(pred, zf, atol=1e-5 * np.abs(zf).max())


def test_query_between_bins_blends_them():
    """At a bin centre the 3D model decodes that bin alone; halfway it is the mean of the
    two neighbours' decodings; in between it moves continuously."""
    torch.manual_seed(0)
    model = liif.LiifCine("unet3d", 4, 8, hidden=16, layers=2, encoder_kwargs={"channels": [4, 8]}).eval()
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


def _overfit(encoder, kw):
    torch.manual_seed(0)
    ds = liif.LiifDataset(liif.subjects(None, "train", 16, 1), SPEC, train=False, seed=0)
    model = liif.LiifCine(encoder, 4, 8, hidden=32, layers=3, encoder_kwargs=kw)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    b = liif.collate([ds[0]])
    first = None
    for _ in range(150):
        loss = liif.rel_l1_loss(model(b["zf"], b["bin_times"], b["t_query"]), b["target"])
        first = first if first is not None else loss.item()
        opt.zero_grad(); loss.backward(); opt.step()
    return first, loss.item()


@pytest.mark.parametrize("encoder,kw", [("unet2d", {"channels": [8, 16]}), ("unet3d", {"channels": [8, 16]})])
def test_encoders_overfit_one_sample(encoder, kw):
    first, last = _overfit(encoder, kw)
    assert last < 0.5 * first


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

    make = lambda he: liif.ENCODERS["unet3d" if dims == 3 else "unet2d"](4, 8, 2, channels=[16, 32, 64], he=he)
    he = last_features(make(True))
    assert 0.2 < he < 5
    assert last_features(make(False)) < 0.1 * he


def test_train_resume_and_save(tmp_path):
    sub = liif.subjects(None, "train", 16, 2)
    train_set = liif.LiifDataset(sub, SPEC, train=True, seed=0)
    val_set = liif.LiifDataset(liif.subjects(None, "val", 16, 1), SPEC, train=False, seed=1)
    make = lambda: liif.LiifCine("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]})
    ck = tmp_path / "ck.pt"
    h1 = liif.train(make(), train_set, val_set, 1, checkpoint=ck, progress=False, tag="a")
    m2 = make()
    h2 = liif.train(m2, train_set, val_set, 2, checkpoint=ck, progress=False, tag="a")  # resumes at epoch 2
    assert h1["epoch"] == [1] and h2["epoch"] == [1, 2]
    # another batch size, or fewer epochs than the checkpoint ran, trains afresh
    h3 = liif.train(make(), train_set, val_set, 1, batch=2, checkpoint=ck, progress=False, tag="a")
    assert h3["epoch"] == [1] and h3["seconds"][0] != h1["seconds"][0]
    liif.train(make(), train_set, val_set, 2, checkpoint=ck, progress=False, tag="a")
    h4 = liif.train(make(), train_set, val_set, 1, checkpoint=ck, progress=False, tag="a")
    assert h4["epoch"] == [1]
    liif.save_model(m2, tmp_path / "m.pt")
    back = liif.load_model(tmp_path / "m.pt")
    s = val_set[0]
    assert np.allclose(liif.predict(back, s)[0], liif.predict(m2.eval(), s)[0], atol=1e-6)


def test_interpolate_bins_periodic():
    x = np.arange(4, dtype=np.complex64)[:, None, None] * np.ones((4, 2, 2), np.complex64)
    bins = (np.arange(4) + 0.5) / 4
    out = liif.interpolate_bins(x, bins, np.array([0.125, 0.25, 0.875 + 0.125]))
    assert np.allclose(out[:, 0, 0], [0, 0.5, 1.5])  # t = 1.0 lies halfway between bin 3 (3) and bin 0 (0)


def test_image_skip_starts_from_the_input_and_round_trips(tmp_path):
    torch.manual_seed(0)
    kw = {"channels": 4, "blocks": 1, "layers": 2, "growth": 4}
    model = liif.LiifCine("rdn3d", 4, 4, hidden=16, layers=2, encoder_kwargs=kw, residual=True, input="vs",
                          image_skip=True).eval()
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
        liif.LiifCine(encoder, 4, 4, encoder_kwargs={"channels": [4, 8]}, residual=residual, image_skip=True)


def test_unknown_input_is_named():
    with pytest.raises(ValueError, match="'kspace'"):
        liif.LiifCine("unet3d", 4, 4, encoder_kwargs={"channels": [4, 8]}, input="kspace")


def test_augmentation_is_deterministic_and_only_in_training():
    sub = liif.subjects(None, "train", 16, 2)
    plain = liif.LiifDataset(sub, SPEC, train=True, seed=0)
    aug, aug2 = (liif.LiifDataset(sub, SPEC, train=True, seed=0, augment=True) for _ in range(2))
    a, b = aug[1], aug2[1]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["target"], plain[1]["target"])
    ev = liif.LiifDataset(sub, SPEC, train=False, seed=0, augment=True)  # evaluation is never augmented
    assert torch.equal(ev[0]["target"], liif.LiifDataset(sub, SPEC, train=False, seed=0)[0]["target"])


def test_consistency_floor_is_zero_cost_without_binning_and_grows_with_it():
    """One acquisition per bin: the measured lines ARE the true bins (no extra error);
    several acquisitions mixed into a bin: putting their lines back costs error."""
    subj = liif.subjects(None, "test", 16, 1)[0]
    one = liif.make_sample(subj, liif.AcquisitionSpec(R=3, T_low=4, T_high=4, T_query=6), 0, False, with_bin_truth=True)
    f = liif.consistency_floor(one)
    assert abs(f["true_bins_with_measured_lines"] - f["true_bins"]) < 1e-5
    mixed = liif.make_sample(subj, liif.AcquisitionSpec(R=3, T_low=4, T_high=16, T_query=6), 0, False, with_bin_truth=True)
    g = liif.consistency_floor(mixed)
    assert g["true_bins_with_measured_lines"] > g["true_bins"] + 0.01
    with pytest.raises(ValueError, match="with_bin_truth"):
        liif.consistency_floor(liif.make_sample(subj, SPEC, 0, False))


@pytest.mark.parametrize("encoder,kw", [("unet3d", {"channels": [4, 8]}),
                                        ("rdn3d", {"channels": 4, "blocks": 1, "layers": 2, "growth": 4})])
def test_circular_time_encoders_are_periodic_in_time(encoder, kw):
    """The bins cover one cardiac cycle: with circular time padding, rolling the input bins
    in time rolls the encoder's output the same way; zero padding breaks that at the ends."""
    x = torch.randn(1, 2, 4, 8, 8)
    for circular in (True, False):
        torch.manual_seed(0)
        enc = liif.ENCODERS[encoder](4, 3, 2, **kw, circular=circular).eval()
        with torch.no_grad():
            rolled, plain = enc(x.roll(1, 2)), enc(x).roll(1, 2)
        assert torch.allclose(rolled, plain, atol=1e-5) == circular


@pytest.mark.parametrize("T,p", [(1, 1), (2, 1), (5, 1), (5, 2)])
def test_circular_time_pad_gradient_matches_autograd_of_the_concatenation(T, p):
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        x = torch.randn(2, 3, T, 4, 5).contiguous(memory_format=layout).requires_grad_()
        weights = torch.randn(2, 3, T + 2 * p, 4, 5)
        padded = liif._CircularTimePad.apply(x, p)
        reference = torch.cat([x[:, :, -p:], x, x[:, :, :p]], 2)
        assert torch.equal(padded, reference)
        (g,) = torch.autograd.grad((padded * weights).sum(), x)
        (g_ref,) = torch.autograd.grad((reference * weights).sum(), x)
        assert torch.allclose(g, g_ref, atol=1e-6)


def test_sample_cache_returns_the_same_samples_within_its_memory_cap():
    sub = liif.subjects(None, "train", 16, 2)
    plain = liif.LiifDataset(sub, SPEC, train=True, seed=0, augment=True)
    cached = liif.LiifDataset(sub, SPEC, train=True, seed=0, augment=True, cache_bytes=1e9)
    tiny = liif.LiifDataset(sub, SPEC, train=True, seed=0, augment=True, cache_bytes=1000)
    for _ in range(2):  # the second pass reads the cache
        for epoch in (0, 1):
            for ds in (plain, cached, tiny):
                ds.set_epoch(epoch)
            for i in range(2):
                a, b = plain[i], cached[i]
                assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(cached._cache) == 4 and cached[1] is cached[1]  # (epoch, index) keys
    assert not tiny._cache  # a sample is larger than its cap
    with pytest.raises(ValueError, match="SAMPLE_CACHE_GB"):
        liif.datasets(None, 16, 3, 4, 16, 4, 4, 1, 1, 1, 0, cache_gb=-1)


def _cascade(dc_cascade, seed=0, **kw):
    torch.manual_seed(seed)
    return liif.LiifCine("unet3d", 4, 4, hidden=16, layers=2, encoder_kwargs={"channels": [4, 8]}, residual=True,
                         input="vs", image_skip=True, dc_cascade=dc_cascade, **kw).eval()


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
    assert loaded.config["dc_stages"] == 2 and loaded.config["final_dc"]
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
        _, scale, skip = model.features(model.input_of(b), b["kspace"], b["mask"])
        x2 = b["vs"] / scale + skip  # without final_dc the output conv's image channels are still zero
    k = liif.fft2c(torch.complex(x2[0, 0], x2[0, 1]))
    m = b["mask"][0].bool()[:, None, :].expand_as(k)
    assert 0 < m.float().mean() < 0.9
    assert torch.allclose(k[m], (b["kspace"][0] / scale[0, 0])[m], atol=1e-5)
    vs = liif.fft2c(torch.complex(b["vs"][0, 0], b["vs"][0, 1]) / scale[0, 0])
    assert (k[~m] - vs[~m]).abs().max() > 1e-2  # the lines not measured keep the learned change
    with pytest.raises(ValueError, match="kspace and mask"):
        model(model.input_of(b), b["bin_times"], b["t_query"])


def test_dc_options_are_checked():
    kw = {"encoder_kwargs": {"channels": [4, 8]}, "residual": True}
    with pytest.raises(ValueError, match="image_skip"):
        liif.LiifCine("unet3d", 4, 4, dc_cascade=[4], **kw)
    with pytest.raises(ValueError, match="image_skip"):
        liif.LiifCine("unet3d", 4, 4, final_dc=True, **kw)
    with pytest.raises(ValueError, match="dc_stages"):
        liif.LiifCine("unet3d", 4, 4, image_skip=True, dc_cascade=[4], dc_stages=0, **kw)


def test_bf16_autocast_changes_only_the_cnn_precision(tmp_path):
    """bf16=True runs the convolutional networks in bfloat16 autocast: same weights give the
    float32 output to bfloat16 accuracy (but not bit for bit), and the setting is saved."""
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
    assert liif.load_model(tmp_path / "b16.pt").bf16


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last_3d])
def test_spatial_upsampling_equals_trilinear_at_the_same_time_axis(layout):
    """The 3D UNet upsamples per frame in 2D (faster); that is trilinear interpolation with T kept."""
    x = torch.randn(2, 3, 5, 6, 7).contiguous(memory_format=layout)
    up = liif.upsample_space(x, (12, 14))
    ref = torch.nn.functional.interpolate(x, size=(5, 12, 14), mode="trilinear", align_corners=False)
    assert up.shape == ref.shape and torch.allclose(up, ref, atol=1e-6)
    assert torch.allclose(liif.upsample_space(x[:, :, 0], (12, 14)), ref[:, :, 0], atol=1e-6)
