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


def test_operator_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="does not match"):
        SenseOp(coil_maps(2, 16, 16, seed=0), np.ones((3, 20)))
