"""CMRxRecon cine files (MATLAB v7.3, read with h5py) in the layouts the challenge ships.

MATLAB stores k-space as (kx, ky, coil, slice, t); h5py reads the axes reversed,
(t, slice, coil, ky, kx), and complex numbers as a compound of ``real`` / ``imag``. kx is
the readout (our H), ky the phase encode (our W, the undersampled axis).

* 2023: ``FullSample/P001/cine_sax.mat`` (key ``kspace_full``); ``AccFactor04/P001/cine_sax.mat``
  (key ``kspace_sub04``; also 08, 10) with its mask in ``cine_sax_mask.mat`` of the same folder
  (key ``mask04``, MATLAB (kx, ky)).
* 2024 and later: ``cine_sax.mat`` (key ``kspace_full`` or ``kspace``), masks in
  ``cine_sax_mask_<Pattern><R>.mat`` (key ``mask``: 2-D (kx, ky), or k-t (kx, ky, t) for the kt
  patterns) and undersampled data in ``cine_sax_kus_<Pattern><R>.mat`` (key ``kus``), each
  kind in its own folder of the release (``FullSample``, ``Mask_Task*``, ``UnderSample_Task*``).

``load`` takes a file or a patient folder; it looks for the other files of the same patient
in that folder and in the same-named patient folders beside it (``<root>/<any>/P001``), says
which it used, and records them in ``Acquisition.meta``. Only Cartesian line masks fit the
project's layout (a mask that is not constant along kx, e.g. ``ktRadial``, is refused). Coil
maps are estimated from the undersampled data (``inr_utils.coils``); a fully sampled file
without a mask is undersampled by notebook 01's masks at ``R``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import h5py
import numpy as np

from . import coils
from .acquisition import Acquisition, check_acceleration, make_masks

FULL_KEYS = ("kspace_full", "kspace")


class CMRxReconError(ValueError):
    """A CMRxRecon file or folder does not hold what the layout says."""


def read_complex(path: Path, key: str) -> np.ndarray:
    """A complex dataset of a v7.3 ``.mat`` file (compound of real/imag, or complex)."""
    with h5py.File(path, "r") as f:
        if key not in f:
            raise CMRxReconError(f"{path}: no dataset '{key}' (have {sorted(f.keys())})")
        arr = f[key][()]
    if arr.dtype.names and {"real", "imag"} <= set(arr.dtype.names):
        return (arr["real"] + 1j * arr["imag"]).astype(np.complex64)
    if np.iscomplexobj(arr):
        return arr.astype(np.complex64)
    raise CMRxReconError(f"{path}: dataset '{key}' is not complex (expected a compound of real/imag), got {arr.dtype}")


def _read_mask(path: Path, key: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        if key not in f:
            raise CMRxReconError(f"{path}: no dataset '{key}' (have {sorted(f.keys())})")
        return np.asarray(f[key][()])


def _keys(path: Path) -> set:
    try:
        with h5py.File(path, "r") as f:
            return set(f.keys())
    except OSError as e:
        raise CMRxReconError(f"{path}: not a MATLAB v7.3 (HDF5) file ({e})") from None


def patient_folders(folder: Path) -> list[Path]:
    """The patient folder and its same-named siblings under the release's root."""
    folder = Path(folder)
    siblings = sorted(p / folder.name for p in folder.parent.parent.iterdir() if (p / folder.name).is_dir()) \
        if folder.parent.parent.is_dir() else []
    return [folder] + [p for p in siblings if p.resolve() != folder.resolve()]


def line_mask(mask: np.ndarray, nt: int, ny: int, nx: int, where: str) -> np.ndarray:
    """A CMRxRecon mask (h5py order: (ky, kx) or (t, ky, kx)) as our (T, W) line mask."""
    mask = np.asarray(mask)
    if mask.shape == (ny, nx):
        mask = np.broadcast_to(mask, (nt, ny, nx))
    if mask.shape != (nt, ny, nx):
        raise CMRxReconError(f"{where}: mask must be (ky, kx) = {(ny, nx)} or (t, ky, kx) = {(nt, ny, nx)}, "
                             f"got {mask.shape}")
    sampled = mask != 0
    lines = sampled.any(axis=2)
    if not np.array_equal(sampled, np.broadcast_to(lines[:, :, None], sampled.shape)):
        raise CMRxReconError(f"{where}: the mask is not made of whole phase-encode lines (it varies along kx, e.g. "
                             "a radial pattern); only Cartesian line masks fit the k-space layout")
    return lines.astype(np.uint8)


def _find(folders, name: str) -> Optional[Path]:
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    return None


def _full_file(folders) -> Optional[tuple[Path, str]]:
    for folder in folders:
        path = folder / "cine_sax.mat"
        if path.is_file():
            key = next((k for k in FULL_KEYS if k in _keys(path)), None)
            if key:
                return path, key
    return None


def _undersampled(folders, R, pattern) -> Optional[tuple[Path, str, Path, str, str]]:
    """(data file, key, mask file, key, label) of the undersampled data at R (and pattern)."""
    for folder in folders:  # 2024+: separate kus and mask files per pattern and R
        for kus in sorted(folder.glob("cine_sax_kus_*.mat")):
            m = re.fullmatch(r"cine_sax_kus_([A-Za-z]+?)(\d+)\.mat", kus.name)
            if not m or (pattern and m.group(1) != pattern) or (R and int(m.group(2)) != int(R)):
                continue
            mask = _find(folders, f"cine_sax_mask_{m.group(1)}{m.group(2)}.mat")
            if mask is None:
                raise CMRxReconError(f"{kus}: no cine_sax_mask_{m.group(1)}{m.group(2)}.mat beside it or in "
                                     f"the patient's other folders {[str(f) for f in folders]}")
            return kus, "kus", mask, "mask", f"{m.group(1)}{m.group(2)}"
    for folder in folders:  # 2023: kspace_subXX in cine_sax.mat, maskXX in cine_sax_mask.mat
        path = folder / "cine_sax.mat"
        if not path.is_file() or pattern:
            continue
        subs = sorted(k for k in _keys(path) if re.fullmatch(r"kspace_sub\d\d", k))
        subs = [k for k in subs if not R or int(k[-2:]) == int(R)]
        if subs:
            mask = folder / "cine_sax_mask.mat"
            if not mask.is_file():
                raise CMRxReconError(f"{path}: has {subs[0]} but no cine_sax_mask.mat in {folder}")
            return path, subs[0], mask, f"mask{subs[0][-2:]}", f"AccFactor{subs[0][-2:]}"
    return None


def load(path, R: Optional[float] = None, pattern: Optional[str] = None, slice_index: Optional[int] = None,
         coil_maps: str = "espirit", seed: int = 0, verbose: bool = True) -> Acquisition:
    """One slice of a CMRxRecon cine (module docstring) as an ``Acquisition``.

    ``path``: a ``.mat`` file or a patient folder. A named undersampled file is read at its own
    R and pattern; otherwise ``R`` / ``pattern`` choose the undersampled data of the patient
    (None: the first found), and with none at that R the fully sampled data are undersampled
    by notebook 01's variable-density masks at ``R`` (seed ``seed``). ``slice_index``: default
    the middle slice. ``target`` is the fully sampled image when a fully sampled file is found
    (coil-combined with the same estimated maps). k-space is scaled so that the target (or the
    zero-filled image) peaks at 1.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"CMRxRecon path not found: {path}")
    folders = patient_folders(path if path.is_dir() else path.parent)
    if path.is_file():  # the named file first
        keys = _keys(path)
        if "kus" in keys or any(re.fullmatch(r"kspace_sub\d\d", k) for k in keys):
            # a named undersampled file is read at its own pattern and R
            m = re.fullmatch(r"cine_sax_kus_([A-Za-z]+?)(\d+)\.mat", path.name)
            pattern = m.group(1) if m else None
            R = int(m.group(2)) if m else next(int(k[-2:]) for k in sorted(keys) if k.startswith("kspace_sub"))
        elif not any(k in keys for k in FULL_KEYS):
            raise CMRxReconError(f"{path}: no CMRxRecon k-space key ({', '.join(FULL_KEYS)}, kspace_subXX, kus); "
                                 f"have {sorted(keys)}")
    full = _full_file(folders)
    under = _undersampled(folders, R, pattern)
    if full is None and under is None:
        other = _undersampled(folders, None, None)
        if other is not None:
            raise CMRxReconError(f"no undersampled data at R = {R}{f', pattern {pattern}' if pattern else ''} and no fully "
                                 f"sampled file to undersample; found {other[4]} ({other[0]})")
        raise CMRxReconError(f"no CMRxRecon cine data (cine_sax.mat, cine_sax_kus_*.mat) in {[str(f) for f in folders]}")
    used = {}
    ref = None
    if under is not None:
        ref = read_complex(under[0], under[1])
        used["undersampled"] = f"{under[0]}:{under[1]}"
    k_full = None
    if full is not None:
        k_full = read_complex(*full)
        used["fully_sampled"] = f"{full[0]}:{full[1]}"
        ref = k_full if ref is None else ref
    if ref.ndim != 5:
        raise CMRxReconError(f"k-space must be (t, slice, coil, ky, kx) in h5py order (MATLAB (kx, ky, coil, slice, t)), "
                             f"got shape {ref.shape}")
    nt, nz, nc, ny, nx = ref.shape
    if k_full is not None and k_full.shape != ref.shape:
        raise CMRxReconError(f"fully sampled {k_full.shape} and undersampled {ref.shape} k-space differ in shape")
    z = nz // 2 if slice_index is None else int(slice_index)
    if not 0 <= z < nz:
        raise CMRxReconError(f"slice index {z} outside 0..{nz - 1}")

    def ours(k):  # (t, coil, ky, kx) of slice z -> (T, C, H = kx, W = ky)
        return np.ascontiguousarray(np.transpose(k[:, z], (0, 1, 3, 2)))

    if under is not None:
        mask = line_mask(_read_mask(under[2], under[3]), nt, ny, nx, str(under[2]))
        used["mask"] = f"{under[2]}:{under[3]}"
        kspace, label = ours(ref) * mask[:, None, None, :], under[4]
        acceleration = mask.size / max(int(mask.sum()), 1)
    else:
        if R is None:
            raise CMRxReconError(f"{full[0]} is fully sampled and no undersampled file was found: give R to "
                                 "undersample it with notebook 01's masks")
        R = check_acceleration(R)
        mask = make_masks(nt, ny, R, seed)
        kspace, label, acceleration = ours(k_full) * mask[:, None, None, :], f"simulated R{R:g}", R
        used["mask"] = f"notebook 01's variable-density masks, R = {R:g}, seed {seed}"
    smaps, how = coils.estimate(kspace, mask, coil_maps)
    target = None
    if k_full is not None:
        target = Acquisition(ours(k_full), np.ones_like(mask), smaps).zero_filled()
    unscaled = Acquisition(kspace.astype(np.complex64), mask, smaps)
    scale = float(np.abs(target if target is not None else unscaled.zero_filled()).max()) or 1.0
    if verbose:
        print(f"CMRxRecon ({label}, slice {z} of {nz}): " + "; ".join(f"{k} {v}" for k, v in used.items())
              + f"; coil maps {how.method} from {how.calibration_lines} calibration lines")
    return Acquisition(
        kspace=(kspace / scale).astype(np.complex64), mask=mask, smaps=smaps,
        target=None if target is None else (target / scale).astype(np.complex64), acceleration=float(acceleration),
        seed=seed, meta={"source": "cmrxrecon", "files": used, "slice_index": z, "coil_maps": how.as_dict()})
