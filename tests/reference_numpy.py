"""Independent numpy (complex128) reference of the zero-filled image, for the readers' round trips."""
import numpy as np


def zero_filled(kspace, lines, smaps):
    """sum_c conj(S_c) F^H (M y_c) with the centred orthonormal 2-D FFT over (H, W).

    kspace (T, C, H, W), lines (T, W) 0/1 per phase-encode column, smaps (C, H, W) -> (T, H, W)."""
    k = np.asarray(kspace, np.complex128) * np.asarray(lines, bool)[:, None, None, :]
    axes = (-2, -1)
    coil_images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=axes), axes=axes, norm="ortho"), axes=axes)
    return (np.conj(np.asarray(smaps, np.complex128))[None] * coil_images).sum(axis=1)


def assert_float32_close(got, want):
    """Equal to float32 rounding, relative to the image's peak."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want)), np.max(np.abs(got - want)) / np.max(np.abs(want))
