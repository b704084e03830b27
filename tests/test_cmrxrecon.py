"""CMRxRecon readers on tiny files written in the challenge's real layouts (MATLAB v7.3 = HDF5:
k-space (kx, ky, coil, slice, t) appears reversed to h5py, complex as a real/imag compound)."""
import h5py
import numpy as np
import pytest

from inr_utils import cmrxrecon, io
from inr_utils.fourier import fft2c
from inr_utils.phantom import phantom_cine
from reference_numpy import assert_float32_close, zero_filled

NT, NZ, NC, NY, NX = 6, 3, 4, 24, 28  # frames, slices, coils, ky (our W), kx (our H)


def _compound(arr):
    out = np.empty(arr.shape, dtype=[("real", "<f4"), ("imag", "<f4")])
    out["real"], out["imag"] = arr.real, arr.imag
    return out


@pytest.fixture(scope="module")
def kspace_mat():
    """Fully sampled k-space in h5py order (t, slice, coil, ky, kx); slice z holds subject z."""
    from inr_utils.acquisition import coil_maps

    smaps = coil_maps(NC, NX, NY, seed=5)
    per_slice = []
    for z in range(NZ):
        img = phantom_cine(NT, NX, NY, seed=z)  # our (T, H = kx, W = ky)
        k = fft2c(img[:, None] * smaps[None]).astype(np.complex64)  # (t, coil, kx, ky)
        per_slice.append(np.transpose(k, (0, 1, 3, 2)))  # (t, coil, ky, kx)
    return np.stack(per_slice, axis=1)


def _lines(R, seed):
    rng = np.random.default_rng(seed)
    lines = rng.random((NT, NY)) < 1 / R
    lines[:, NY // 2 - 6:NY // 2 + 6] = True  # a calibration band
    return lines


def _write(path, **datasets):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f[k] = v


def test_2023_layout_folders_and_separate_mask_file(tmp_path, kspace_mat):
    lines = _lines(4, 0)[0]  # 2023 masks are one (kx, ky) pattern for every frame
    mask_mat = np.repeat(lines[:, None], NX, axis=1).astype(np.float64)  # h5py (ky, kx)
    _write(tmp_path / "FullSample/P001/cine_sax.mat", kspace_full=_compound(kspace_mat))
    _write(tmp_path / "AccFactor04/P001/cine_sax.mat", kspace_sub04=_compound(kspace_mat * mask_mat[None, None, None]))
    _write(tmp_path / "AccFactor04/P001/cine_sax_mask.mat", mask04=mask_mat)
    acq = cmrxrecon.load(tmp_path / "AccFactor04/P001/cine_sax.mat", slice_index=1, coil_maps="lowres", verbose=False)
    assert acq.kspace.shape == (NT, NC, NX, NY) and acq.mask.shape == (NT, NY)
    assert np.array_equal(acq.mask[3].astype(bool), lines)
    assert acq.meta["files"]["fully_sampled"].endswith("FullSample/P001/cine_sax.mat:kspace_full")
    assert acq.meta["files"]["mask"].endswith("AccFactor04/P001/cine_sax_mask.mat:mask04")
    assert acq.meta["slice_index"] == 1 and acq.meta["coil_maps"]["method"] == "lowres"
    truth = phantom_cine(NT, NX, NY, seed=1)
    assert np.corrcoef(np.abs(acq.target).ravel(), truth.ravel())[0, 1] > 0.99  # slice 1, in our axes
    assert np.abs(acq.target).max() == pytest.approx(1, abs=1e-5)
    # the full data's folder at R = 4 finds the undersampled file beside it; at R = 6 (none) it simulates
    full = cmrxrecon.load(tmp_path / "FullSample/P001", R=4, coil_maps="lowres", verbose=False)
    assert full.meta["files"]["undersampled"].endswith("AccFactor04/P001/cine_sax.mat:kspace_sub04")
    assert "notebook 01" in cmrxrecon.load(tmp_path / "FullSample/P001", R=6, coil_maps="lowres",
                                           verbose=False).meta["files"]["mask"]
    alone = tmp_path / "alone/FullSample/P001"
    _write(alone / "cine_sax.mat", kspace_full=_compound(kspace_mat))
    sim = cmrxrecon.load(alone, R=6, coil_maps="lowres", verbose=False)
    assert "notebook 01" in sim.meta["files"]["mask"] and sim.acceleration == 6
    with pytest.raises(cmrxrecon.CMRxReconError, match="give R"):
        cmrxrecon.load(alone / "cine_sax.mat", coil_maps="lowres", verbose=False)


def test_2024_layout_patterns_and_kt_masks(tmp_path, kspace_mat, capsys):
    lines = _lines(8, 1)
    kt_mask = np.repeat(lines[:, :, None], NX, axis=2).astype(np.float64)  # h5py (t, ky, kx) = MATLAB (kx, ky, t)
    uniform = np.repeat(_lines(4, 2)[0][:, None], NX, axis=1).astype(np.float64)  # (ky, kx)
    _write(tmp_path / "FullSample/P002/cine_sax.mat", kspace=_compound(kspace_mat))
    _write(tmp_path / "Mask_Task2/P002/cine_sax_mask_ktGaussian8.mat", mask=kt_mask)
    _write(tmp_path / "UnderSample_Task2/P002/cine_sax_kus_ktGaussian8.mat", kus=_compound(kspace_mat * kt_mask[:, None, None]))
    _write(tmp_path / "Mask_Task1/P002/cine_sax_mask_Uniform4.mat", mask=uniform)
    _write(tmp_path / "UnderSample_Task1/P002/cine_sax_kus_Uniform4.mat", kus=_compound(kspace_mat * uniform[None, None, None]))
    kt = cmrxrecon.load(tmp_path / "UnderSample_Task2/P002/cine_sax_kus_ktGaussian8.mat", coil_maps="lowres")
    assert np.array_equal(kt.mask.astype(bool), lines) and kt.target is not None
    said = capsys.readouterr().out
    assert "ktGaussian8" in said and "Mask_Task2/P002/cine_sax_mask_ktGaussian8.mat" in said
    uni = cmrxrecon.load(tmp_path / "FullSample/P002", R=4, pattern="Uniform", coil_maps="lowres", verbose=False)
    assert uni.meta["files"]["undersampled"].endswith("cine_sax_kus_Uniform4.mat:kus")
    assert np.array_equal(uni.mask[0].astype(bool), uniform[:, 0].astype(bool))
    # through the notebooks' DATA parameter, with a slice index
    case = io.load_case(f"{tmp_path}/UnderSample_Task1/P002/cine_sax_kus_Uniform4.mat::2", R=6)
    assert case.meta["slice_index"] == 2 and case.meta["coil_maps"]["method"] == "espirit"


def test_refusals_name_the_problem(tmp_path, kspace_mat):
    radial = np.zeros((NT, NY, NX))
    radial[:, NY // 2, :] = 1
    radial[:, :, NX // 2] = 1  # a spoke along ky: not whole lines
    _write(tmp_path / "P003/cine_sax_mask_ktRadial8.mat", mask=radial)
    _write(tmp_path / "P003/cine_sax_kus_ktRadial8.mat", kus=_compound(kspace_mat * radial[:, None, None]))
    with pytest.raises(cmrxrecon.CMRxReconError, match="not made of whole phase-encode lines"):
        cmrxrecon.load(tmp_path / "P003/cine_sax_kus_ktRadial8.mat", verbose=False)
    _write(tmp_path / "P004/cine_sax.mat", kspace_full=kspace_mat.real)
    with pytest.raises(cmrxrecon.CMRxReconError, match="not complex"):
        cmrxrecon.load(tmp_path / "P004", R=4, verbose=False)
    _write(tmp_path / "P005/cine_sax.mat", something=np.zeros(3))
    with pytest.raises(cmrxrecon.CMRxReconError, match="no CMRxRecon k-space key"):
        cmrxrecon.load(tmp_path / "P005/cine_sax.mat", verbose=False)
    _write(tmp_path / "P006/cine_sax.mat", kspace_full=_compound(kspace_mat))
    with pytest.raises(cmrxrecon.CMRxReconError, match="slice index 7 outside"):
        cmrxrecon.load(tmp_path / "P006", R=4, slice_index=7, verbose=False)
    with pytest.raises(FileNotFoundError, match="not found"):
        cmrxrecon.load(tmp_path / "P999")
    with pytest.raises(cmrxrecon.CMRxReconError, match="no undersampled data at R = 4 .* found ktRadial8"):
        cmrxrecon.load(tmp_path / "P003", R=4, verbose=False)


def _ours(kspace_h5py, z):
    """h5py's (t, slice, coil, ky, kx) -> our (T, C, H = kx, W = ky) for slice z."""
    return np.transpose(kspace_h5py[:, z], (0, 1, 3, 2))


@pytest.mark.parametrize("layout", ["2023", "2024-kt"])
def test_zero_filled_image_equals_numpy_on_the_raw_arrays(tmp_path, kspace_mat, layout):
    if layout == "2023":
        mask_mat = np.repeat(_lines(4, 3)[0][:, None], NX, axis=1).astype(np.float64)  # (ky, kx), every frame
        lines = np.repeat(mask_mat[None, :, 0], NT, axis=0)
        _write(tmp_path / "FullSample/P001/cine_sax.mat", kspace_full=_compound(kspace_mat))
        _write(tmp_path / "AccFactor04/P001/cine_sax.mat", kspace_sub04=_compound(kspace_mat * mask_mat[None, None, None]))
        _write(tmp_path / "AccFactor04/P001/cine_sax_mask.mat", mask04=mask_mat)
        path = tmp_path / "AccFactor04/P001/cine_sax.mat"
        with h5py.File(path) as f:
            raw = f["kspace_sub04"][...]
    else:
        kt_mask = np.repeat(_lines(8, 4)[:, :, None], NX, axis=2).astype(np.float64)  # (t, ky, kx)
        lines = kt_mask[:, :, 0]
        _write(tmp_path / "FullSample/P002/cine_sax.mat", kspace=_compound(kspace_mat))
        _write(tmp_path / "Mask_Task2/P002/cine_sax_mask_ktGaussian8.mat", mask=kt_mask)
        _write(tmp_path / "UnderSample_Task2/P002/cine_sax_kus_ktGaussian8.mat", kus=_compound(kspace_mat * kt_mask[:, None, None]))
        path = tmp_path / "UnderSample_Task2/P002/cine_sax_kus_ktGaussian8.mat"
        with h5py.File(path) as f:
            raw = f["kus"][...]
    raw = raw["real"].astype(np.float64) + 1j * raw["imag"]
    acq = io.load_case(f"{path}::2")
    # the reader scales k-space so that the fully sampled image (coil-combined with its maps) peaks at 1
    scale = np.abs(zero_filled(_ours(kspace_mat, 2), np.ones((NT, NY)), acq.smaps)).max()
    assert_float32_close(acq.zero_filled(), zero_filled(_ours(raw, 2), lines, acq.smaps) / scale)
