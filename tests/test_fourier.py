import numpy as np
import pytest
import torch

from inr_utils.acquisition import coil_maps, variable_density_masks
from inr_utils.fourier import SenseOp, fft2c, ifft2c


def _crandn(rng, shape):
    return torch.from_numpy((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64))


@pytest.mark.parametrize("T,C,H,W", [(1, 1, 16, 16), (4, 2, 32, 24), (6, 8, 20, 40), (3, 4, 33, 17)])
def test_sense_adjoint(rng, T, C, H, W):
    op = SenseOp(coil_maps(C, H, W, seed=0), variable_density_masks(T, W, 2.5, seed=0))
    x, y = _crandn(rng, (T, H, W)), _crandn(rng, (T, C, H, W))
    lhs = torch.vdot(op.forward(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), op.adjoint(y).flatten())
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)


def test_full_mask_normal_operator_is_identity(rng):
    op = SenseOp(coil_maps(4, 24, 24, seed=3), np.ones((2, 24), np.uint8))
    x = _crandn(rng, (2, 24, 24))
    assert torch.allclose(op.normal(x), x, atol=1e-5)


def test_fft_is_orthonormal_centred_and_matches_numpy(rng):
    x = (rng.standard_normal((5, 16, 12)) + 1j * rng.standard_normal((5, 16, 12))).astype(np.complex64)
    k = fft2c(x)
    assert np.allclose(np.linalg.norm(k), np.linalg.norm(x), rtol=1e-5)  # Parseval
    assert np.allclose(fft2c(torch.from_numpy(x)).numpy(), k, atol=1e-5)
    assert np.allclose(ifft2c(k), x, atol=1e-5)
    const = np.ones((16, 12))
    assert np.argmax(np.abs(fft2c(const))) == np.ravel_multi_index((8, 6), (16, 12))  # DC at the centre


@pytest.mark.parametrize("H,W", [(16, 12), (18, 16), (6, 10), (15, 16), (9, 7)])
def test_torch_fft_without_shifts_matches_numpy_for_every_size_parity(rng, H, W):
    """Even sizes take the checkerboard form (with the sign (-1)^(H/2 + W/2), odd for 18 x 16
    and 6 x 10), odd sizes the shifts; both must equal numpy's shifted FFT."""
    x = (rng.standard_normal((3, H, W)) + 1j * rng.standard_normal((3, H, W))).astype(np.complex64)
    assert np.allclose(fft2c(torch.from_numpy(x)).numpy(), fft2c(x), atol=1e-5)
    assert np.allclose(ifft2c(torch.from_numpy(x)).numpy(), ifft2c(x), atol=1e-5)
    smaps, mask = coil_maps(3, H, W, seed=1), variable_density_masks(3, W, 2, seed=1)
    explicit = mask[:, None, None, :] * fft2c(x[:, None] * smaps[None])
    assert np.allclose(SenseOp(smaps, mask).forward(torch.from_numpy(x)).numpy(), explicit, atol=1e-5)


@pytest.mark.parametrize("H,W", [(16, 16), (16, 14), (15, 12)])
@pytest.mark.parametrize("lead", [(4,), (9,), (2, 9)])
def test_data_term_value_and_gradient_match_autograd(rng, H, W, lead):
    """Even W takes the signed residual (both signs of (-1)^(W/2)), odd sizes the plain hybrid form;
    9 frames span several blocks of ``FRAMES_PER_BLOCK`` (the last one short), (2, 9) a batch of cines."""
    from inr_utils.fourier import FRAMES_PER_BLOCK

    assert 9 > 2 * FRAMES_PER_BLOCK and 9 % FRAMES_PER_BLOCK
    op = SenseOp(coil_maps(3, H, W, seed=2), variable_density_masks(lead[-1], W, 2, seed=2))
    y = op.forward(_crandn(rng, lead + (H, W)))
    x = _crandn(rng, lead + (H, W)).requires_grad_()
    reference = 0.5 * (op.forward(x) - y).abs().pow(2).sum()
    (g_ref,) = torch.autograd.grad(reference, x)
    value = op.data_term(x, y)
    (g,) = torch.autograd.grad(value, x)
    assert torch.allclose(value, reference, rtol=1e-5)
    assert torch.allclose(g, g_ref, atol=1e-5 * g_ref.abs().max())
    assert torch.allclose(g, op.adjoint(op.forward(x.detach()) - y), atol=1e-6 * g_ref.abs().max())  # A^H (A x - y)


def test_operator_rejects_mismatched_shapes_and_weighted_masks():
    with pytest.raises(ValueError, match="does not match"):
        SenseOp(coil_maps(2, 16, 16, seed=0), np.ones((3, 20)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        SenseOp(coil_maps(2, 16, 16, seed=0), np.full((3, 16), 0.5))


@pytest.mark.parametrize("T,C,H,W", [(3, 2, 16, 12), (2, 3, 10, 14), (3, 2, 9, 7)])
def test_hybrid_space_operator_is_adjoint_and_gives_the_full_gradient(rng, T, C, H, W):
    """forward_hybrid / adjoint_hybrid are adjoint, and the hybrid-space gradient equals
    A^H (A x - y) of the 2-D operator, for even (sign -1 and +1) and odd widths."""
    op = SenseOp(coil_maps(C, H, W, seed=3), variable_density_masks(T, W, 2, seed=3))
    x, r = _crandn(rng, (T, H, W)), _crandn(rng, (T, C, H, W))
    lhs = torch.vdot(op.forward_hybrid(x).flatten(), r.flatten())
    rhs = torch.vdot(x.flatten(), op.adjoint_hybrid(r).flatten())
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)
    y = op.forward(_crandn(rng, (T, H, W)))
    reference = op.adjoint(op.forward(x) - y)
    assert torch.allclose(op.data_gradient(x, y), reference, atol=1e-5 * reference.abs().max())


@pytest.mark.parametrize("H,W", [(16, 12), (10, 14), (9, 7)])
def test_a_frames_view_is_the_operator_of_those_frames(rng, H, W):
    """The view a block's data term uses equals an operator built from those mask rows, in
    every form (2-D, hybrid, data term and gradient), for both size parities."""
    T, C = 5, 3
    op = SenseOp(coil_maps(C, H, W, seed=4), variable_density_masks(T, W, 2, seed=4))
    for frames in (torch.tensor([4, 0, 1]), slice(1, 3)):
        view, built = op._frames_view(frames), SenseOp(op.smaps, op.mask[frames])
        n = len(built.mask)
        x, y = _crandn(rng, (n, H, W)), _crandn(rng, (n, C, H, W))
        for name in ("forward", "forward_hybrid"):
            assert torch.allclose(getattr(view, name)(x), getattr(built, name)(x), atol=1e-6)
        for name in ("adjoint", "adjoint_hybrid", "data_gradient"):
            args = (y,) if name != "data_gradient" else (x, y)
            assert torch.allclose(getattr(view, name)(*args), getattr(built, name)(*args), atol=1e-5)
        assert torch.allclose(view.data_term(x, y), built.data_term(x, y))
    assert op.mask.shape == (T, W) and op._hybrid_y is None  # the operator itself is untouched


@pytest.mark.parametrize("W", [16, 15])
def test_data_term_of_a_block_of_frames_matches_autograd_and_reuses_the_hybrid_data(rng, monkeypatch, W):
    """``frames`` (a block that wraps around the cycle, or a slice): value and gradient equal
    autograd's 0.5 ||A_f x - y_f||^2 with y's samples off the mask counted, and the hybrid form
    of y is computed once for every block (its inverse FFT runs on the first block only)."""
    import inr_utils.fourier as fourier

    T, H = 7, 12
    op = SenseOp(coil_maps(2, H, W, seed=5), variable_density_masks(T, W, 2, seed=5))
    y = _crandn(rng, (T, 2, H, W))
    calls = []
    original = fourier._fft1c
    def counted(x, inverse, dim=-1):  # the hybrid form of y is its inverse FFT along H (dim -2)
        calls.append(dim)
        return original(x, inverse, dim)

    monkeypatch.setattr(fourier, "_fft1c", counted)
    for frames in (torch.tensor([5, 6, 0, 1]), slice(2, 5), torch.tensor([3])):
        sub = SenseOp(op.smaps, op.mask[frames])
        x = _crandn(rng, (len(sub.mask), H, W)).requires_grad_()
        reference = 0.5 * (sub.forward(x) - y[frames]).abs().pow(2).sum()
        (g_ref,) = torch.autograd.grad(reference, x)
        value = op.data_term(x, y, frames=frames)
        (g,) = torch.autograd.grad(value, x)
        assert torch.allclose(value, reference, rtol=1e-5)
        assert torch.allclose(g, g_ref, atol=1e-5 * g_ref.abs().max())
    assert calls.count(-2) == 1
    with pytest.raises(ValueError, match="smaps must be None"):
        op.data_term(x, y, op.smaps, frames=slice(0, 1))
    with pytest.raises(ValueError, match=r"x holds 1 frame\(s\), frames selects 2"):
        op.data_term(x, y, frames=slice(0, 2))


def test_data_term_counts_k_space_outside_the_mask_and_follows_a_changed_y(rng):
    """The value is 0.5 ||A x - y||^2 even where y has samples off the mask (a constant the
    hybrid form adds), and editing y in place is seen (the hybrid copy is rebuilt)."""
    op = SenseOp(coil_maps(2, 16, 16, seed=4), variable_density_masks(3, 16, 2, seed=4))
    x, y = _crandn(rng, (3, 16, 16)), _crandn(rng, (3, 2, 16, 16))
    assert ((1 - op.mask[:, None, None, :]) * y).abs().sum() > 0
    reference = 0.5 * (op.forward(x) - y).abs().pow(2).sum()
    assert torch.allclose(op.data_term(x, y), reference, rtol=1e-5)
    y.mul_(2)
    reference = 0.5 * (op.forward(x) - y).abs().pow(2).sum()
    assert torch.allclose(op.data_term(x, y), reference, rtol=1e-5)
