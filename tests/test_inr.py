"""The INR representations and their fitting on a tiny case: they beat zero filling; lambda behaves as a TV weight."""
import numpy as np
import pytest
import torch

from inr_utils import inr, metrics, tv
from inr_utils.tv import temporal_diff


@pytest.mark.parametrize("name,kw,steps,lr", [("lowrank", {"rank": 8}, 300, 1e-2),
                                              ("siren", {"hidden": 64, "layers": 3}, 300, 1e-3)])
def test_inr_fit_improves_on_zf(case, name, kw, steps, lr):
    acq, op, y = case
    model = inr.build(name, acq.target.shape, **kw)
    res = inr.fit(model, op, y, log_lambda=-2.5, steps=steps, lr=lr, target=acq.target, progress=False, seed=0)
    assert res.recon.shape == acq.target.shape and not res.diverged
    assert metrics.psnr(res.recon, acq.target) > metrics.psnr(acq.zero_filled(), acq.target) + 2


def test_fit_time_leaves_out_the_psnr_monitoring(case, monkeypatch):
    """The reported fit time and the time box count training only: a monitoring step that
    takes 0.5 s at each of 5 logs (2.5 s in all) must not show up in them (the margin leaves
    room for a loaded machine: 5 steps of this tiny fit take milliseconds)."""
    import time

    acq, op, y = case
    real_psnr = inr.fitting.psnr
    monkeypatch.setattr(inr.fitting, "psnr", lambda x, t: (time.sleep(0.5), real_psnr(x, t))[1])
    model = inr.build("lowrank", acq.target.shape, rank=4)
    res = inr.fit(model, op, y, log_lambda=-3, steps=5, log_every=1, target=acq.target, max_seconds=2.0,
                  progress=False)
    assert res.steps == 5 and len(res.history.psnr) == 5  # the time box did not cut the fit short
    assert res.seconds < 2.0


def test_fit_is_deterministic(case):
    acq, op, y = case
    runs = [inr.fit(inr.build("lowrank", acq.target.shape, rank=4), op, y, log_lambda=-3, steps=20, progress=False).recon
            for _ in range(2)]
    assert np.array_equal(*runs)


def test_query_matches_render_and_continuous_in_t(case):
    acq, op, y = case
    model = inr.build("lowrank", acq.target.shape, rank=4)
    inr.fit(model, op, y, log_lambda=-3, steps=30, progress=False)
    T, H, W = acq.target.shape
    with torch.no_grad():
        cine = model.render()
        iy, ix = torch.tensor([3, 17, 30]), torch.tensor([1, 16, 31])
        coords = torch.stack([inr.frame_times(T)[2].expand(3), 2 * (iy + 0.5) / H - 1, 2 * (ix + 0.5) / W - 1], 1)
        v = model(coords)
        assert torch.allclose(torch.complex(v[:, 0], v[:, 1]), cine[2, iy, ix], atol=1e-5)
        t = torch.tensor([0.1, 0.1 + 1e-4])
        a, b = model.render(t)
        assert (a - b).abs().max() < 1e-2 * cine.abs().max()


@pytest.mark.parametrize("map_grid", [0, 4])
def test_divergence_stops_with_last_good_state(case, map_grid):
    acq, op, y = case
    model = inr.build("lowrank", acq.target.shape, rank=4)
    with pytest.warns(RuntimeWarning, match="restored the last good parameters"):
        res = inr.fit(model, op, y * float("nan"), log_lambda=-3, steps=10, progress=False, map_grid=map_grid)
    assert res.diverged and np.all(np.isfinite(res.recon))
    if map_grid:  # the maps' correction is restored too
        assert np.allclose(res.smaps, op.smaps.numpy(), atol=1e-6)


@pytest.mark.parametrize("name,kw,balance", [("lowrank-lambda", {"rank": 8}, None), ("hashgrid-lambda", {}, -3.0),
                                             ("hashgrid-lambda", {}, None)])
def test_lambda_coordinate_controls_temporal_smoothness(case, name, kw, balance):
    """One conditional fit: larger lambda -> monotonically smaller temporal variation (with
    and without the per-lambda balancing of the objective)."""
    acq, op, y = case
    model = inr.build(name, acq.target.shape, **kw)
    inr.fit(model, op, y, log_lambda_range=(-5, 0), steps=600, progress=False, seed=0, balance_log_lambda=balance)
    tv = [float(temporal_diff(torch.from_numpy(inr.render_numpy(model, ll))).abs().sum()) for ll in (-5, -3.75, -2.5, -1.25, 0)]
    assert all(a > b for a, b in zip(tv, tv[1:])), tv
    with pytest.raises(ValueError, match="pass log_lambda"):
        model.render()


def test_spatial_term_in_the_inr_objective(case):
    acq, op, y = case
    x = torch.from_numpy(acq.zero_filled()).requires_grad_(True)
    lam, mu = 1e-3, 2e-3
    obj = inr.objective(op, x, y, lam, mu=mu)
    ref = 0.5 * (op.forward(x) - y).abs().pow(2).sum() + lam * tv.temporal_tv(x) + mu * tv.spatial_tv(x)
    assert torch.allclose(obj, ref.to(obj.dtype), rtol=1e-5)
    (g,) = torch.autograd.grad(obj, x)
    (g_ref,) = torch.autograd.grad(ref, x)
    assert torch.allclose(g, g_ref, atol=1e-5)


def _pixel_coords(T, H, W, t=None):
    t = inr.frame_times(T) if t is None else t
    ys, xs = 2 * (torch.arange(H, dtype=t.dtype) + 0.5) / H - 1, 2 * (torch.arange(W, dtype=t.dtype) + 0.5) / W - 1
    return torch.stack(torch.meshgrid(t, ys, xs, indexing="ij"), -1).reshape(-1, 3)


def _randomised_hashgrid(shape, **kw):
    model = inr.build("hashgrid", shape, **kw)
    with torch.no_grad():
        for g in model.grids:
            g.uniform_(-1, 1)
    return model


def test_hashgrid_has_dense_and_hashed_levels_and_render_matches_queries():
    shape = (6, 24, 20)
    model = _randomised_hashgrid(shape, log2_table=10, coarsest=4)
    assert any(model.hashed) and not all(model.hashed)
    assert model.resolutions[-1][1:] == (24, 20)  # the finest level has a node per pixel
    with torch.no_grad():
        cine = model.render()
        v = model(_pixel_coords(*shape))
    assert cine.shape == shape
    assert torch.allclose(torch.complex(v[:, 0], v[:, 1]).view(shape), cine, atol=1e-5)


@pytest.mark.parametrize("name", ["hashgrid", "hashgrid+init", "hashgrid-lambda", "hashgrid-lambda+split"])
def test_hashgrid_render_of_a_block_of_frames_matches_the_queries_and_their_gradients(name):
    """A block of frame times (wrapping around the cycle: the time nodes it touches only) renders
    the per-point forward's values, and gives every grid table and weight (and the static image
    of ``init``) the gradient that the per-point forward gives (float64)."""
    shape = (6, 24, 20)
    kw = {"log_lambda_range": (-5, 0)} if "lambda" in name else {}
    if name == "hashgrid-lambda+split":  # rendered at the split, where both encodings weigh in
        name, kw = "hashgrid-lambda", {**kw, "lambda_split": -1.5}
    if name == "hashgrid+init":
        name, kw = "hashgrid", {"init": torch.randn(24, 20, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))}
    model = inr.build(name, shape, log2_table=10, coarsest=4, **kw)
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2 and p.shape[1] <= 2:  # the grid tables (features per node)
                p.uniform_(-1, 1)
    encodings = [model.encoding] if name == "hashgrid" else [model.dynamic] + ([model.dynamic_high] if model.dynamic_high else [])
    assert any(e.hashed[-1] for e in encodings) and any(not h for e in encodings for h in e.hashed)
    t = inr.frame_times(6).double()[torch.tensor([4, 5, 0])]
    coords = _pixel_coords(*shape, t=t)
    ll = -1.5 if "lambda" in name else None
    v = model(coords, ll)
    block = model.render(t, ll)
    assert torch.allclose(torch.complex(v[:, 0], v[:, 1]).view(block.shape), block, atol=1e-10)
    grads_q = torch.autograd.grad(v.pow(2).sum(), list(model.parameters()), allow_unused=True)
    grads_r = torch.autograd.grad(torch.view_as_real(model.render(t, ll)).pow(2).sum(), list(model.parameters()),
                                  allow_unused=True)
    for a, b in zip(grads_q, grads_r):
        if a is None:
            assert b is None or not b.any()
        else:
            assert torch.allclose(a, b, atol=1e-9 * max(1.0, float(a.abs().max())))
    used_all = [e._time_matrix(inr.frame_times(6).double(), r[0])[1] for e in encodings for r in e.resolutions]
    assert all(u is None for u in used_all)  # the full cine touches every time node: no selection
    assert any(e._time_matrix(t, r[0])[1] is not None for e in encodings for r in e.resolutions)


def test_hashgrid_encoding_is_trilinear_with_the_right_gradients():
    """gradcheck (finite differences) of the encoding with respect to the grid values and the
    coordinates, in float64, at points away from cell boundaries; and the encoding is exact at
    a node of a dense level."""
    model = _randomised_hashgrid((4, 8, 8), log2_table=7, coarsest=4, features=2).double()
    coords = torch.tensor([[0.13, -0.31, 0.42], [-0.77, 0.58, -0.09]], dtype=torch.float64, requires_grad=True)
    grids = [g.detach().clone().requires_grad_(True) for g in model.grids]
    assert torch.autograd.gradcheck(lambda c, *g: model.encode(c, g), (coords, *grids), eps=1e-6, atol=1e-5)
    rt, ry, rx = model.resolutions[0]
    node = torch.tensor([[2 * 1 / rt - 1, 2 * (1 + 0.5) / ry - 1, 2 * (2 + 0.5) / rx - 1]], dtype=torch.float64)
    expected = model.grids[0].detach().view(rt, ry, rx, -1)[1, 1, 2]
    assert torch.allclose(model.encode(node)[0, :model.features], expected)


def test_hashgrid_is_periodic_and_continuous_in_t():
    shape = (8, 16, 16)
    model = _randomised_hashgrid(shape, log2_table=9, coarsest=4)
    with torch.no_grad():
        a, b = model.render(torch.tensor([-1.0, 1.0]))  # the same instant of the cycle
        assert torch.allclose(a, b, atol=1e-6)
        c, d = model.render(torch.tensor([0.3, 0.3 + 1e-4]))
        scale = model.render().abs().max()
        assert (c - d).abs().max() < 1e-2 * scale


def test_hashgrid_fits_start_from_the_zero_filled_mean(case):
    """``inr.reconstructor`` gives hashgrid the zero-filled cine's temporal mean as its static
    image: after one step at a negligible learning rate the model's base is that image, and the
    rendered cine is it plus the (near-zero) initial field; a wrong ``init`` is refused."""
    acq, op, y = case
    fits = []
    settings = inr.default_settings("hashgrid", acq.target.shape, steps=1, lr=1e-12)
    inr.reconstructor(settings, progress=False, on_result=fits.append)(op, y, 1e-3, 0.0, None)
    model = fits[0].model
    zf_mean = op.adjoint(y).mean(0)
    assert torch.allclose(torch.complex(model.base[0], model.base[1]), zf_mean, atol=1e-6)
    with torch.no_grad():
        field = model.render() - zf_mean
    assert field.abs().max() < 1e-2 * zf_mean.abs().max()
    with pytest.raises(ValueError, match=r"init must be a complex \(H, W\)"):
        inr.build("hashgrid", acq.target.shape, init=zf_mean.real)
    with pytest.raises(ValueError, match=r"init must be a complex \(H, W\)"):
        inr.build("hashgrid", acq.target.shape, init=zf_mean[:-1])


def test_start_setting_defaults_and_refusals(case):
    """Low-rank models and hashgrid start from the zero-filled mean unless ``start="none"``; a
    representation without a starting image (SIREN) cannot be asked for one."""
    shape = (8, 32, 32)
    assert [inr.default_settings(n, shape).start for n in ("lowrank", "hashgrid", "siren")] == ["zero-filled", "zero-filled", "none"]
    assert inr.default_settings("hashgrid", shape, start="none").start == "none"
    with pytest.raises(ValueError, match="start must be one of"):
        inr.default_settings("siren", shape, start="zero-filled")
    with pytest.raises(ValueError, match="start must be one of"):
        inr.default_settings("hashgrid", shape, start="zeros")
    acq, op, y = case  # start="none": the field starts near zero, not at the zero-filled mean
    fits = []
    settings = inr.default_settings("hashgrid", acq.target.shape, steps=1, lr=1e-12, start="none")
    inr.reconstructor(settings, progress=False, on_result=fits.append)(op, y, 1e-3, 0.0, None)
    assert fits[0].model.base is None and np.abs(fits[0].recon).max() < 1e-2 * np.abs(acq.zero_filled()).max()


def test_hashgrid_is_seeded_and_its_fit_deterministic(case):
    acq, op, y = case
    shape = acq.target.shape
    a, b = inr.build("hashgrid", shape, seed=3), inr.build("hashgrid", shape, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.grids[0], inr.build("hashgrid", shape, seed=4).grids[0])
    runs = [inr.fit(inr.build("hashgrid", shape), op, y, log_lambda=-3, steps=15, progress=False).recon for _ in range(2)]
    assert np.array_equal(*runs)
    res = inr.fit(inr.build("hashgrid", shape), op, y, log_lambda=-2.5, steps=400, lr=1e-2, progress=False)
    assert metrics.psnr(res.recon, acq.target) > metrics.psnr(acq.zero_filled(), acq.target) + 2


@pytest.mark.parametrize("frequencies", [0, 3])
def test_conditional_hashgrid_takes_lambda_as_an_input(frequencies):
    """f(lambda, t, y, x): render equals the per-point forward at any lambda; lambda changes
    the output continuously (an input of the network, no anchors); the static encoding has
    one node in time; the gain starts at 1 (at c = 0). With lambda_frequencies, c enters as
    [c, sin(k pi c), cos(k pi c)]."""
    shape = (6, 16, 12)
    model = inr.build("hashgrid-lambda", shape, log2_table=9, coarsest=4, log_lambda_range=(-5, 0),
                      lambda_frequencies=frequencies)
    c = model._c(-3.0)[0]
    assert c.shape == (1 + 2 * frequencies,) and abs(float(c[0]) + 0.2) < 1e-6
    if frequencies:
        assert torch.allclose(c[1:], torch.tensor([np.sin(np.pi * k * -0.2) for k in (1, 2, 3)]
                                                  + [np.cos(np.pi * k * -0.2) for k in (1, 2, 3)], dtype=c.dtype))
    with torch.no_grad():
        for g in list(model.dynamic.grids) + list(model.static.grids):
            g.uniform_(-1, 1)
        assert all(r[0] == 1 for r in model.static.resolutions) and any(r[0] > 1 for r in model.dynamic.resolutions)
        if not frequencies:  # c = 0 at the middle of the range (the cosines of the other form are 1 there)
            assert torch.allclose(model.gains(-2.5), torch.ones(model.dynamic.out_features), atol=1e-6)
        for ll in (-5.0, -1.7, 0.0):
            v = model(_pixel_coords(*shape), ll)
            assert torch.allclose(torch.complex(v[:, 0], v[:, 1]).view(shape), model.render(None, ll), atol=1e-5)
        a, b, c = model.render(None, -2.0), model.render(None, -2.0 + 1e-4), model.render(None, -1.0)
        assert (a - b).abs().max() < 1e-3 * (a - c).abs().max()
        assert (a - c).abs().max() > 0
    with pytest.raises(ValueError, match="pass log_lambda"):
        model.render()
    with pytest.raises(ValueError, match="log_lambda_range"):
        inr.build("hashgrid-lambda", shape, log_lambda_range=(0, -5))


def test_conditional_hashgrid_split_hands_the_temporal_detail_to_a_second_encoding():
    """With lambda_split the other modules start from the same weights as without it; below the
    hand-over the network is the one-encoding network (equal outputs), and a step reaches only
    the encoding its lambda weighs in (below: the first, above: the second, within the 0.2
    decades around the split: both); render equals the per-point forward in the hand-over,
    which is continuous in lambda."""
    shape = (6, 16, 12)
    kw = dict(log2_table=9, coarsest=4, log_lambda_range=(-5, 0), seed=3)
    one, split = inr.build("hashgrid-lambda", shape, **kw), inr.build("hashgrid-lambda", shape, lambda_split=-2.0, **kw)
    shared = one.state_dict()
    assert all(torch.equal(shared[k], v) for k, v in split.state_dict().items() if not k.startswith("dynamic_high"))
    with torch.no_grad():
        for m in (one, split):
            for g in list(m.dynamic.grids) + list(m.static.grids):
                g.copy_(torch.rand(g.shape, generator=torch.Generator().manual_seed(g.numel())) * 2 - 1)
        for g in split.dynamic_high.grids:
            g.uniform_(-1, 1)
        assert torch.equal(one.render(None, -5.0), split.render(None, -5.0))
        assert not torch.equal(one.render(None, -1.0), split.render(None, -1.0))
    for ll, used in ((-5.0, {"dynamic"}), (-2.11, {"dynamic"}), (-2.0, {"dynamic", "dynamic_high"}), (-1.89, {"dynamic_high"}),
                     (0.0, {"dynamic_high"})):
        split.zero_grad(set_to_none=True)
        torch.view_as_real(split.render(None, ll)).pow(2).sum().backward()
        reached = {name for name in ("dynamic", "dynamic_high")
                   if any(g.grad is not None and g.grad.abs().max() > 0 for g in getattr(split, name).grids)}
        assert reached == used, ll
    assert [split.split_weight(ll) for ll in (-5.0, -2.1, -2.05, -2.0, -1.95, -1.9, 0.0)] == pytest.approx(
        [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0])  # linear over the 0.2 decades centred on the split
    with torch.no_grad():
        for ll in (-2.05, -2.0, -1.9):
            v = split(_pixel_coords(*shape), ll)
            assert torch.allclose(torch.complex(v[:, 0], v[:, 1]).view(shape), split.render(None, ll), atol=1e-5)
        a, b, c = split.render(None, -2.0), split.render(None, -2.0 + 1e-5), split.render(None, -1.0)
        assert 0 < (a - b).abs().max() < 1e-3 * (a - c).abs().max()
    for bad in (-5.0, 0.0, 1.0, float("nan")):
        with pytest.raises(ValueError, match="lambda_split must be a log10"):
            inr.build("hashgrid-lambda", shape, lambda_split=bad)
    with pytest.raises(ValueError, match="split_width"):
        inr.build("hashgrid-lambda", shape, lambda_split=-2.0, split_width=0.0)


def test_conditional_hashgrid_gradient_reaches_the_lambda_path():
    """The loss gradient flows into the gate and into the MLP weight of the lambda input
    (autograd against a finite difference of the loss along the gate's bias)."""
    shape = (4, 8, 8)
    model = inr.build("hashgrid-lambda", shape, log2_table=8, coarsest=4).double()
    with torch.no_grad():
        for g in list(model.dynamic.grids) + list(model.static.grids):
            g.uniform_(-1, 1)
    loss = lambda: model.render(None, -1.5).abs().pow(2).sum()
    bias = model.gate[-1].bias
    loss().backward()
    assert bias.grad.abs().max() > 0 and model.mlp[0].weight.grad[:, -1].abs().max() > 0
    direction = torch.randn_like(bias)
    eps = 1e-6
    with torch.no_grad():
        bias += eps * direction
        up = loss()
        bias -= 2 * eps * direction
        down = loss()
        bias += eps * direction
    assert abs(float((up - down) / (2 * eps)) - float((bias.grad * direction).sum())) < 1e-5 * max(1.0, float(bias.grad.abs().sum()))


def test_lambda_draws_follow_the_beta_density():
    """draw_log_lambda stays in the range; beta = 1 is uniform (variance (hi - lo)^2 / 12),
    beta = a has the Beta(a, a) variance (hi - lo)^2 / (4 (2a + 1)), mean at the middle."""
    from inr_utils.inr.fitting import draw_log_lambda

    rng = np.random.default_rng(0)
    for beta in (1.0, 4.0):
        x = np.array([draw_log_lambda(rng, (-5.0, 0.0), beta) for _ in range(20000)])
        assert x.min() >= -5 and x.max() <= 0 and abs(x.mean() + 2.5) < 0.05
        assert abs(x.var() / (25 / (4 * (2 * beta + 1))) - 1) < 0.05
    # within 1 of the middle: 40 % of uniform draws, 75 % of Beta(4, 4) draws
    assert np.mean(np.abs(np.array([draw_log_lambda(rng, (-5.0, 0.0), 4.0) for _ in range(5000)]) + 2.5) < 1) > 0.7
    from inr_utils import io

    case_acq = io.load_case(None, R=4, T=4, N=16, coils=2)
    with pytest.raises(ValueError, match="log_lambda_beta must be a finite number > 0"):
        inr.fit(inr.build("hashgrid-lambda", case_acq.target.shape), case_acq.op, case_acq.kspace,
                log_lambda_range=(-5, 0), steps=1, progress=False, log_lambda_beta=0.0)


def test_quasi_random_lambdas_follow_the_beta_distribution_and_cover_every_stretch_of_steps():
    """quasi_log_lambdas has the Beta(a, a) distribution over the range (its empirical CDF within
    a few 1/n of the Beta CDF, which independent draws miss by about 1/sqrt(n)), and any m
    consecutive values leave no gap in the uniform variable wider than 3 / m; a fit takes
    "random" or "quasi" draws, refuses anything else, and the two differ."""
    from scipy.special import betainc

    from inr_utils.inr.fitting import quasi_log_lambdas

    n = 4000
    for beta in (1.0, 0.5, 4.0):
        x = quasi_log_lambdas(n, (-5.0, 0.0), beta, offset=0.3)
        assert x.min() >= -5 and x.max() <= 0
        u = (np.sort(x) + 5) / 5
        ecdf_gap = np.abs(betainc(beta, beta, u) - np.arange(1, n + 1) / n).max()
        assert ecdf_gap < 5 / n, (beta, ecdf_gap)
    u = (quasi_log_lambdas(n, (-5.0, 0.0), 1.0, offset=0.7) + 5) / 5
    for m in (8, 50, 300):
        for start in (0, 123, n - m):
            w = np.sort(u[start:start + m])
            gaps = np.diff(np.concatenate([w, [w[0] + 1]]))  # around the circle
            assert gaps.max() < 3 / m, (m, start, gaps.max())
    from inr_utils import io

    acq = io.load_case(None, R=4, T=4, N=16, coils=2)
    with pytest.raises(ValueError, match="log_lambda_draws must be one of"):
        inr.fit(inr.build("hashgrid-lambda", acq.target.shape), acq.op, acq.kspace,
                log_lambda_range=(-5, 0), steps=1, progress=False, log_lambda_draws="sobol")
    recons = [inr.fit(inr.build("hashgrid-lambda", acq.target.shape), acq.op, acq.kspace, log_lambda_range=(-5, 0),
                      steps=6, progress=False, log_lambda_draws=d).recon for d in ("random", "quasi", "quasi")]
    assert not np.allclose(recons[0], recons[1]) and np.array_equal(recons[1], recons[2])


def test_balancing_weights_only_the_conditional_steps(case):
    """balance_log_lambda rescales the objective per drawn lambda; a fixed-lambda fit ignores it
    (identical result), a conditional fit changes."""
    acq, op, y = case
    fixed = [inr.fit(inr.build("hashgrid-lambda", acq.target.shape), op, y, log_lambda=-2, steps=20, progress=False,
                     balance_log_lambda=b).recon for b in (None, -3.0)]
    assert np.array_equal(*fixed)
    cond = [inr.fit(inr.build("hashgrid-lambda", acq.target.shape), op, y, log_lambda_range=(-5, 0), steps=20,
                    progress=False, balance_log_lambda=b).recon for b in (None, -3.0)]
    assert not np.array_equal(*cond)


@pytest.mark.parametrize("mode,align_corners", [("bilinear", False), ("bicubic", True)])
def test_upsampling_matrix_equals_the_interpolation(mode, align_corners):
    """U_H g U_W^T equals F.interpolate (the low-rank model's coarse grids, the coil-map
    correction), with its gradient, for up- and non-integer resampling."""
    from inr_utils.inr.core import upsampling_matrix

    g = torch.randn(1, 3, 7, 5, dtype=torch.float64, requires_grad=True)
    reference = torch.nn.functional.interpolate(g, size=(16, 11), mode=mode, align_corners=align_corners)
    U_h, U_w = upsampling_matrix(7, 16, mode, align_corners), upsampling_matrix(5, 11, mode, align_corners)
    ours = U_h.double() @ g @ U_w.double().T
    assert torch.allclose(ours, reference, atol=1e-6)
    w = torch.randn_like(reference)
    (g_ref,) = torch.autograd.grad((reference * w).sum(), g)
    (g_ours,) = torch.autograd.grad((ours * w).sum(), g)
    assert torch.allclose(g_ours, g_ref, atol=1e-6)
