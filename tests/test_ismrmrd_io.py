"""The ISMRMRD reader on small files written with the ismrmrd package the way scanners'
converters write them: noise-adjustment scans first, readout oversampling 2, lines ordered by
acquisition (not by frame), a phase counter per line, several slices, repeated lines."""
import numpy as np
import pytest

ismrmrd = pytest.importorskip("ismrmrd")
import ismrmrd.xsd as xsd  # noqa: E402

from inr_utils import io, ismrmrd_io  # noqa: E402
from inr_utils.acquisition import coil_maps, make_masks  # noqa: E402
from inr_utils.fourier import fft2c  # noqa: E402
from inr_utils.phantom import phantom_cine  # noqa: E402
from reference_numpy import assert_float32_close, zero_filled  # noqa: E402

T, C, H, W, SLICES = 6, 4, 32, 24, 2


def _fft1c(x, inverse=False):
    f = np.fft.ifft if inverse else np.fft.fft
    return np.fft.fftshift(f(np.fft.ifftshift(x, axes=-1), axis=-1, norm="ortho"), axes=-1)


def _header(n_readout, centre, trajectory="cartesian"):
    space = lambda nx: xsd.encodingSpaceType(matrixSize=xsd.matrixSizeType(x=nx, y=W, z=1),
                                             fieldOfView_mm=xsd.fieldOfViewMm(x=nx * 2.0, y=W * 2.0, z=8.0))
    limits = xsd.encodingLimitsType(kspace_encoding_step_1=xsd.limitType(minimum=0, maximum=W - 1, center=centre),
                                    phase=xsd.limitType(minimum=0, maximum=T - 1, center=0),
                                    slice=xsd.limitType(minimum=0, maximum=SLICES - 1, center=0))
    enc = xsd.encodingType(encodedSpace=space(n_readout), reconSpace=space(H), encodingLimits=limits,
                           trajectory=xsd.trajectoryType(trajectory))
    return xsd.ToXML(xsd.ismrmrdHeader(experimentalConditions=xsd.experimentalConditionsType(H1resonanceFrequency_Hz=63897000),
                                       encoding=[enc]))


def _write(path, kspace_by_slice, mask, centre=W // 2, repeat_line=None, header_centre=None):
    """kspace_by_slice: (slices, T, C, H, W) in our layout; lines written with readout
    oversampling 2 (the object padded with empty field of view along the readout)."""
    dset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    dset.write_xml_header(_header(2 * H, centre if header_centre is None else header_centre))
    rng = np.random.default_rng(0)
    for _ in range(3):  # noise-adjustment scans come first and carry only noise
        noise = ismrmrd.Acquisition.from_array((rng.standard_normal((C, 2 * H)) * 1j).astype(np.complex64))
        noise.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
        dset.append_acquisition(noise)
    for z, kspace in enumerate(kspace_by_slice):
        image = _fft1c(np.moveaxis(kspace, 2, -1), inverse=True)  # (T, C, W, H): image space along the readout
        padded = np.zeros(image.shape[:-1] + (2 * H,), np.complex64)
        padded[..., H // 2:H // 2 + H] = image
        oversampled = _fft1c(padded)  # (T, C, W, 2H)
        for column in range(W):  # ky-outer, phase-inner, as a segmented cine acquisition is ordered
            for phase in range(T):
                if not mask[phase, column]:
                    continue
                for _ in range(2 if (phase, column) == repeat_line else 1):
                    acq = ismrmrd.Acquisition.from_array(oversampled[phase, :, column].astype(np.complex64))
                    acq.idx.kspace_encode_step_1 = column - W // 2 + centre
                    acq.idx.phase, acq.idx.slice = phase, z
                    dset.append_acquisition(acq)
    dset.close()


@pytest.fixture(scope="module")
def full_kspace():
    smaps = coil_maps(C, H, W, seed=7)
    return np.stack([fft2c(phantom_cine(T, H, W, seed=z)[:, None] * smaps[None]).astype(np.complex64) for z in range(SLICES)])


def test_undersampled_cine_reads_back_exactly(tmp_path, full_kspace):
    mask = make_masks(T, W, 3, seed=1)
    under = full_kspace * mask[None, :, None, None, :]
    _write(tmp_path / "cine.h5", under, mask, centre=W // 2 - 2, repeat_line=(2, W // 2))
    kspace, got_mask, info = ismrmrd_io.read_cine(tmp_path / "cine.h5", slice_index=1)
    assert info["skipped_acquisitions"] == 3 and info["readout_oversampling"] == 2 and info["slices"] == SLICES
    assert np.array_equal(got_mask, mask)
    assert np.allclose(kspace, under[1], atol=1e-5 * np.abs(under).max())  # oversampling removed, repeats averaged
    acq = ismrmrd_io.load(tmp_path / "cine.h5", slice_index=0, coil_maps="lowres", verbose=False)
    assert acq.target is None and acq.acceleration == pytest.approx(T * W / mask.sum())
    assert acq.meta["coil_maps"]["method"] == "lowres"


def test_fully_sampled_cine_becomes_the_target_and_is_undersampled_at_R(tmp_path, full_kspace):
    _write(tmp_path / "full.h5", full_kspace, np.ones((T, W), bool))
    acq = io.load_case(f"{tmp_path / 'full.h5'}::1", R=3, seed=2)  # through the notebooks' DATA parameter
    assert acq.target is not None and acq.meta["slice_index"] == 1 and acq.meta["coil_maps"]["method"] == "espirit"
    assert np.array_equal(acq.mask, make_masks(T, W, 3, seed=2))
    truth = phantom_cine(T, H, W, seed=1)
    assert np.corrcoef(np.abs(acq.target).ravel(), truth.ravel())[0, 1] > 0.99
    with pytest.raises(ismrmrd_io.ISMRMRDError, match="give R"):
        ismrmrd_io.load(tmp_path / "full.h5", verbose=False)
    with pytest.raises(ismrmrd_io.ISMRMRDError, match="no slice 5"):
        ismrmrd_io.read_cine(tmp_path / "full.h5", slice_index=5)


def test_a_line_outside_the_encoded_matrix_is_refused(tmp_path, full_kspace):
    mask = np.ones((T, W), bool)
    _write(tmp_path / "shifted.h5", full_kspace, mask, centre=W // 2 + 3, header_centre=W // 2)  # header and lines disagree
    with pytest.raises(ismrmrd_io.ISMRMRDError, match="falls outside the 24 encoded columns"):
        ismrmrd_io.read_cine(tmp_path / "shifted.h5")


def test_files_without_a_cartesian_cine_are_refused(tmp_path):
    dset = ismrmrd.Dataset(str(tmp_path / "radial.h5"), "dataset", create_if_needed=True)
    dset.write_xml_header(_header(2 * H, W // 2, trajectory="radial"))
    dset.close()
    with pytest.raises(ismrmrd_io.ISMRMRDError, match="trajectory radial is not Cartesian"):
        ismrmrd_io.read_cine(tmp_path / "radial.h5")
    dset = ismrmrd.Dataset(str(tmp_path / "noise_only.h5"), "dataset", create_if_needed=True)
    dset.write_xml_header(_header(2 * H, W // 2))
    noise = ismrmrd.Acquisition.from_array(np.ones((C, 2 * H), np.complex64))
    noise.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
    dset.append_acquisition(noise)
    dset.close()
    with pytest.raises(ismrmrd_io.ISMRMRDError, match="no imaging lines"):
        ismrmrd_io.read_cine(tmp_path / "noise_only.h5")


def test_zero_filled_image_equals_numpy_on_the_written_arrays(tmp_path, full_kspace):
    mask = make_masks(T, W, 3, seed=1)
    under = full_kspace * mask[None, :, None, None, :]
    _write(tmp_path / "cine.h5", under, mask)
    acq = io.load_case(f"{tmp_path / 'cine.h5'}::1")  # no target: scaled so that the zero-filled image peaks at 1
    want = zero_filled(under[1], mask, acq.smaps)
    assert_float32_close(acq.zero_filled(), want / np.abs(want).max())
