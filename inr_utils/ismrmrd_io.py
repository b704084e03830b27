"""ISMRMRD raw data (the format of OCMR and of the scanners' converters): Cartesian 2-D cine.

An ISMRMRD file is HDF5 with a ``dataset`` group: an XML header and one acquisition per
readout line, each with its coil samples (C, readout) and its counters. The reader (the
``ismrmrd`` package) keeps the imaging lines of one slice and

* skips noise-adjustment scans and the other non-imaging lines (navigators, phase correction,
  dummy scans, ...),
* bins the lines by their cardiac ``phase`` counter (frame T = phase index; repeated lines of
  a frame, e.g. averages, are averaged),
* places a line at column ``kspace_encode_step_1 - centre + W // 2`` (centre and W from the
  header's encoding limits and encoded matrix), so k-space centre is column W // 2 as in the
  project's layout,
* removes readout oversampling (encoded matrix x > recon matrix x): centred inverse FFT along
  the readout, crop to the recon size, FFT back.

Coil maps are estimated from the data (``inr_utils.coils``). A cine whose every frame is fully
sampled becomes the ``target`` (coil-combined with the same maps) and is undersampled by
notebook 01's masks at ``R``; an undersampled cine is read with its own mask and no target.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from . import coils
from .acquisition import Acquisition, check_acceleration, make_masks

#: acquisition flags whose lines are not imaging data of the cine
SKIPPED_FLAGS = ("ACQ_IS_NOISE_MEASUREMENT", "ACQ_IS_NAVIGATION_DATA", "ACQ_IS_PHASECORR_DATA",
                 "ACQ_IS_DUMMYSCAN_DATA", "ACQ_IS_RTFEEDBACK_DATA", "ACQ_IS_HPFEEDBACK_DATA",
                 "ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA", "ACQ_IS_PHASE_STABILIZATION_REFERENCE",
                 "ACQ_IS_PHASE_STABILIZATION")


class ISMRMRDError(ValueError):
    """An ISMRMRD file that this reader cannot turn into a 2-D Cartesian cine."""


def _fft1c(x: np.ndarray, axis: int, inverse: bool) -> np.ndarray:
    f = np.fft.ifft if inverse else np.fft.fft
    return np.fft.fftshift(f(np.fft.ifftshift(x, axes=axis), axis=axis, norm="ortho"), axes=axis)


def remove_readout_oversampling(lines: np.ndarray, n_out: int) -> np.ndarray:
    """(..., n_in) readout k-space -> (..., n_out): image space along the readout, central
    ``n_out`` samples kept (their values unchanged), back to k-space."""
    n_in = lines.shape[-1]
    if n_out == n_in:
        return lines
    if n_out > n_in:
        raise ISMRMRDError(f"recon matrix x ({n_out}) larger than the encoded readout ({n_in})")
    start = (n_in - n_out) // 2
    image = _fft1c(lines, -1, inverse=True)[..., start:start + n_out]
    return _fft1c(image, -1, inverse=False)


def read_cine(path, slice_index: Optional[int] = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(k-space (T, C, H, W) complex64, mask (T, W) uint8, info) of one slice, per the
    module docstring (no coil maps, no scaling)."""
    import ismrmrd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ISMRMRD file not found: {path}")
    try:
        dset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=False)
    except Exception as e:  # the package raises several kinds for a file that is not ISMRMRD
        raise ISMRMRDError(f"{path}: not an ISMRMRD file with a 'dataset' group ({e})") from None
    try:
        header = ismrmrd.xsd.CreateFromDocument(dset.read_xml_header())
        enc = header.encoding[0]
        trajectory = str(getattr(enc.trajectory, "value", enc.trajectory)).lower()  # an enum in the xsd bindings
        if enc.trajectory is not None and trajectory != "cartesian":
            raise ISMRMRDError(f"{path}: trajectory {trajectory} is not Cartesian (only Cartesian cines are read)")
        if enc.encodedSpace.matrixSize.z > 1:
            raise ISMRMRDError(f"{path}: a 3-D encoding (matrix z = {enc.encodedSpace.matrixSize.z}) is not a 2-D cine")
        n_readout_out = int(enc.reconSpace.matrixSize.x)
        W = int(enc.encodedSpace.matrixSize.y)
        limits = enc.encodingLimits
        centre = int(limits.kspace_encoding_step_1.center) if limits.kspace_encoding_step_1 is not None else W // 2
        skip = [getattr(ismrmrd, flag) for flag in SKIPPED_FLAGS]
        lines, skipped = [], 0
        for i in range(dset.number_of_acquisitions()):
            acq = dset.read_acquisition(i)
            if any(acq.is_flag_set(flag) for flag in skip):
                skipped += 1
                continue
            lines.append((int(acq.idx.slice), int(acq.idx.phase), int(acq.idx.kspace_encode_step_1), acq.data.copy()))
    finally:
        dset.close()
    if not lines:
        raise ISMRMRDError(f"{path}: no imaging lines (only {skipped} noise or other non-imaging acquisitions)")
    slices = sorted({s for s, *_ in lines})
    z = slices[len(slices) // 2] if slice_index is None else int(slice_index)
    if z not in slices:
        raise ISMRMRDError(f"{path}: no slice {z} (have {slices})")
    lines = [ln for ln in lines if ln[0] == z]
    T = max(p for _, p, _, _ in lines) + 1
    C, n_readout_in = lines[0][3].shape
    kspace = np.zeros((T, C, n_readout_out, W), np.complex64)
    counts = np.zeros((T, W), np.int32)
    for _, phase, step, data in lines:
        column = step - centre + W // 2
        if not 0 <= column < W:
            raise ISMRMRDError(f"{path}: line kspace_encode_step_1 = {step} falls outside the {W} encoded columns "
                               f"(centre {centre})")
        if data.shape != (C, n_readout_in):
            raise ISMRMRDError(f"{path}: lines differ in shape ({data.shape} vs {(C, n_readout_in)})")
        kspace[phase, :, :, column] += remove_readout_oversampling(data, n_readout_out)
        counts[phase, column] += 1
    mask = (counts > 0).astype(np.uint8)
    kspace /= np.maximum(counts, 1)[:, None, None, :]
    info = {"slice_index": z, "slices": len(slices), "skipped_acquisitions": skipped, "readout_oversampling":
            n_readout_in / n_readout_out, "phases": T, "coils": C}
    return kspace, mask, info


def load(path, R: Optional[float] = None, slice_index: Optional[int] = None, coil_maps: str = "espirit",
         seed: int = 0, verbose: bool = True) -> Acquisition:
    """One slice of an ISMRMRD cine as an ``Acquisition`` (module docstring); k-space scaled
    so that the target (or the zero-filled image) peaks at 1."""
    kspace, mask, info = read_cine(path, slice_index)
    T, C, H, W = kspace.shape
    target_kspace = None
    if mask.all():  # fully sampled: the ground truth, undersampled at R
        if R is None:
            raise ISMRMRDError(f"{path}: the cine is fully sampled; give R to undersample it with notebook 01's masks")
        R = check_acceleration(R)
        target_kspace, mask = kspace, make_masks(T, W, R, seed)
        kspace = target_kspace * mask[:, None, None, :]
        info["mask"] = f"notebook 01's variable-density masks, R = {R:g}, seed {seed}"
    smaps, how = coils.estimate(kspace, mask, coil_maps)
    target = None if target_kspace is None else Acquisition(target_kspace, np.ones_like(mask), smaps).zero_filled()
    scale = float(np.abs(target if target is not None else Acquisition(kspace, mask, smaps).zero_filled()).max()) or 1.0
    if verbose:
        print(f"ISMRMRD {path}: slice {info['slice_index']} of {info['slices']}, {T} phases, {C} coils, "
              f"{info['skipped_acquisitions']} non-imaging acquisitions skipped, readout oversampling "
              f"{info['readout_oversampling']:g} removed; coil maps {how.method} from {how.calibration_lines} lines")
    return Acquisition(kspace=(kspace / scale).astype(np.complex64), mask=mask, smaps=smaps,
                       target=None if target is None else (target / scale).astype(np.complex64),
                       acceleration=mask.size / max(int(mask.sum()), 1), seed=seed,
                       meta={"source": str(path), **info, "coil_maps": how.as_dict()})
