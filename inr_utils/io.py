"""Loaders and writers: the project's k-space HDF5 layout, image cines, the
Sunnybrook cines, CMRxRecon 2023 cine ``.mat`` files, and ``load_case`` which turns
a notebook's ``DATA`` parameter into an :class:`~inr_utils.acquisition.Acquisition`.

K-space HDF5 layout (read and written here; BART and other tools read the same files)::

    kspace   (T, C, H, W) complex64   zeros where not sampled
    mask     (T, W)       uint8       1 = phase-encode line (column along W) sampled
    smaps    (C, H, W)    complex64   coil maps, sum_c |S_c|^2 = 1 inside the object
    target   (T, H, W)    complex64   optional ground truth (for metrics)
    attrs    acceleration (float, requested R; NaN if unknown), noise_std (float), seed (int)

FFT convention: centred orthonormal over (H, W): fftshift(fft2(ifftshift(x), norm="ortho")).
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Optional

import h5py
import numpy as np
import torch

from . import PACKAGE_DATA, REPO_ROOT
from .acquisition import Acquisition, simulate
from .fourier import ifft2c
from .phantom import phantom_cine


class DataFormatError(ValueError):
    """A data file does not follow the layout it claims."""


# ---------------------------------------------------------------- k-space layout
def save_kspace(path, acq: Acquisition) -> Path:
    """Write ``acq`` in the k-space layout, atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".h5.tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            # gzip: unsampled lines are zeros; h5py and every HDF5 reader decode it transparently
            f.create_dataset("kspace", data=np.asarray(acq.kspace, np.complex64), compression="gzip", compression_opts=4)
            f.create_dataset("mask", data=np.asarray(acq.mask, np.uint8))
            f.create_dataset("smaps", data=np.asarray(acq.smaps, np.complex64))
            if acq.target is not None:
                f.create_dataset("target", data=np.asarray(acq.target, np.complex64))
            f.attrs["acceleration"] = float(acq.acceleration)
            f.attrs["noise_std"] = float(acq.noise_std)
            f.attrs["seed"] = int(acq.seed)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _require(cond, path, msg):
    if not cond:
        raise DataFormatError(f"{path}: {msg}")


def load_kspace(path) -> Acquisition:
    """Read and validate a k-space file; one clear error naming the first problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"k-space file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        for key in ("kspace", "mask", "smaps"):
            _require(key in f, path, f"missing dataset '{key}' (the layout needs kspace, mask, smaps; target optional)")
        kspace, mask, smaps = f["kspace"][()], f["mask"][()], f["smaps"][()]
        target = f["target"][()] if "target" in f else None
        attrs = dict(f.attrs)
    _require(kspace.ndim == 4, path, f"'kspace' must be (T, C, H, W), got shape {kspace.shape}")
    T, C, H, W = kspace.shape
    _require(mask.shape == (T, W), path, f"'mask' must be (T, W) = {(T, W)}, got {mask.shape}")
    _require(smaps.shape == (C, H, W), path, f"'smaps' must be (C, H, W) = {(C, H, W)}, got {smaps.shape}")
    if target is not None:
        _require(target.shape == (T, H, W), path, f"'target' must be (T, H, W) = {(T, H, W)}, got {target.shape}")
    for name, arr in (("kspace", kspace), ("smaps", smaps), ("target", target)):
        if arr is not None:
            _require(np.iscomplexobj(arr) or np.issubdtype(arr.dtype, np.floating), path, f"'{name}' must be complex, got {arr.dtype}")
            _require(np.all(np.isfinite(arr)), path, f"'{name}' contains NaN or Inf")
    _require(np.isin(mask, (0, 1)).all(), path, "'mask' must hold only 0 and 1")
    unsampled = (mask == 0)[:, None, None, :]
    _require(not np.any((kspace != 0) & unsampled), path, "'kspace' has non-zero samples on lines where 'mask' is 0")
    _require(mask.any(), path, "'mask' samples no line")
    return Acquisition(
        kspace=kspace.astype(np.complex64), mask=mask.astype(np.uint8), smaps=smaps.astype(np.complex64),
        target=None if target is None else target.astype(np.complex64),
        acceleration=float(attrs.get("acceleration", np.nan)), noise_std=float(attrs.get("noise_std", 0.0)),
        seed=int(attrs.get("seed", 0)), meta={"source": str(path)},
    )


# ---------------------------------------------------------------- image cines
def normalise(cine: np.ndarray) -> np.ndarray:
    """Scale a magnitude cine to [0, 1] by its own min and max (the original's rule)."""
    cine = np.asarray(cine, dtype=np.float32)
    lo, hi = float(cine.min()), float(cine.max())
    if not hi > lo:
        raise DataFormatError("cine is constant: cannot normalise it")
    return (cine - lo) / (hi - lo)


def _check_cine(cine, where) -> np.ndarray:
    cine = np.asarray(cine)
    if cine.ndim != 3:
        raise DataFormatError(f"{where}: image cine must be (T, H, W), got shape {cine.shape}")
    if not np.all(np.isfinite(cine)):
        raise DataFormatError(f"{where}: image cine contains NaN or Inf")
    return cine


def load_image_cine(path, key: Optional[str] = None) -> np.ndarray:
    """Load a (T, H, W) image cine from .h5/.hdf5 (dataset ``key``, else 'cine', else the
    only 3-D dataset), .npy, or .npz ('cine' or the only array). Returns it unscaled."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image cine file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".npy",):
        return _check_cine(np.load(path), path)
    if suffix == ".npz":
        with np.load(path) as z:
            names = [key] if key else (["cine"] if "cine" in z else list(z.keys()))
            if len(names) != 1 or names[0] not in z:
                raise DataFormatError(f"{path}: name the array to load (have {list(z.keys())})")
            return _check_cine(z[names[0]], path)
    with h5py.File(path, "r") as f:
        if key is None:
            if "cine" in f:
                key = "cine"
            else:
                found = []
                f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 3 else None)
                if len(found) != 1:
                    raise DataFormatError(f"{path}: expected one 3-D dataset or a 'cine' dataset, found {found or 'none'}")
                key = found[0]
        if key not in f:
            raise DataFormatError(f"{path}: no dataset '{key}'")
        return _check_cine(f[key][()], path)


def resample_cine(cine: np.ndarray, T: Optional[int] = None, N: Optional[int] = None) -> np.ndarray:
    """Periodic linear interpolation in time to T frames, antialiased bilinear resize to N x N."""
    cine = np.asarray(cine, dtype=np.float32)
    T0 = cine.shape[0]
    if T is not None and T != T0:
        pos = np.arange(T) * T0 / T
        i0 = np.floor(pos).astype(int)
        w = (pos - i0)[:, None, None].astype(np.float32)
        cine = (1 - w) * cine[i0 % T0] + w * cine[(i0 + 1) % T0]
    if N is not None and cine.shape[-2:] != (N, N):
        x = torch.from_numpy(np.ascontiguousarray(cine))[:, None]
        cine = torch.nn.functional.interpolate(x, size=(N, N), mode="bilinear", antialias=True, align_corners=False)[:, 0].numpy()
    return cine


# ---------------------------------------------------------------- Sunnybrook
#: Fixed patient-wise split (never split by slice: slices of one patient are correlated).
SUNNYBROOK_SPLIT = {"train": ("SCD0000101", "SCD0000201", "SCD0000301"), "val": ("SCD0000401",), "test": ("SCD0000501",)}
#: The full Sunnybrook cine file (57 slices of 5 patients, CC0) shipped in the package.
SUNNYBROOK_FILE = PACKAGE_DATA / "sunnybrook_cine.h5"


def sunnybrook_path() -> Path:
    """``$INR_SUNNYBROOK`` when set (a file in the same layout), else the shipped file."""
    override = os.environ.get("INR_SUNNYBROOK")
    if override:
        if not Path(override).is_file():
            raise FileNotFoundError(f"$INR_SUNNYBROOK names {override!r}, which is not a file")
        return Path(override)
    return SUNNYBROOK_FILE


def sunnybrook_slices(path=None) -> dict:
    """{patient: [slice names sorted]} of a file in the Sunnybrook layout."""
    path = Path(path or sunnybrook_path())
    if not path.is_file():
        raise FileNotFoundError(f"Sunnybrook file not found: {path}")
    with h5py.File(path, "r") as f:
        return {p: sorted(k for k in f[p].keys() if isinstance(f[p][k], h5py.Group)) for p in sorted(f.keys())}


def _patient_name(p: str) -> str:
    p = str(p)
    return p if p.startswith("SCD") else f"SCD{int(p):07d}"


def mid_slice(slices) -> str:
    """The middle (mid-ventricular) slice of a patient's sorted slice list."""
    return sorted(slices)[len(slices) // 2]


def load_sunnybrook(patient: Optional[str] = None, slice_name=None, path=None) -> tuple[np.ndarray, dict]:
    """One Sunnybrook cine normalised to [0, 1] and its attributes.

    Defaults: the test patient, its mid-ventricular slice. ``slice_name`` may be
    'slice_049' or 49.
    """
    path = Path(path or sunnybrook_path())
    index = sunnybrook_slices(path)
    patient = _patient_name(patient or SUNNYBROOK_SPLIT["test"][0])
    if patient not in index:
        raise DataFormatError(f"{path}: no patient {patient} (have {list(index)})")
    if slice_name is None:
        slice_name = mid_slice(index[patient])
    elif not str(slice_name).startswith("slice_"):
        slice_name = f"slice_{int(slice_name):03d}"
    if slice_name not in index[patient]:
        raise DataFormatError(f"{path}: patient {patient} has no {slice_name} (have {index[patient]})")
    with h5py.File(path, "r") as f:
        g = f[patient][slice_name]
        if "cine" not in g:
            raise DataFormatError(f"{path}: {patient}/{slice_name} has no 'cine' dataset")
        cine = _check_cine(g["cine"][()], f"{path}:{patient}/{slice_name}")
        attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in g.attrs.items()}
    attrs.update(patient=patient, slice=slice_name, file=str(path))
    return normalise(cine), attrs


# ---------------------------------------------------------------- CMRxRecon 2023 cine (.mat v7.3)
def _read_complex(ds) -> np.ndarray:
    arr = ds[()]
    if arr.dtype.names and {"real", "imag"} <= set(arr.dtype.names):
        return (arr["real"] + 1j * arr["imag"]).astype(np.complex64)
    if np.iscomplexobj(arr):
        return arr.astype(np.complex64)
    raise DataFormatError(f"dataset '{ds.name}' is not complex (expected a compound of real/imag)")


def estimate_smaps(kspace: np.ndarray, calib: int = 24) -> np.ndarray:
    """Coil maps from the central ``calib`` lines (along W) of (T, C, H, W) k-space:
    Hann-windowed low-resolution coil images of the time-averaged k-space, divided by
    their root sum of squares (so sum_c |S_c|^2 = 1)."""
    k = kspace.mean(0)
    W = k.shape[-1]
    calib = min(calib, W)
    window = np.zeros(W, np.float32)
    lines = np.arange(W // 2 - calib // 2, W // 2 + calib - calib // 2)
    window[lines] = np.hanning(len(lines) + 2)[1:-1]
    low = ifft2c(k * window)
    rss = np.sqrt((np.abs(low) ** 2).sum(0, keepdims=True))
    return (low / np.maximum(rss, 1e-12 * rss.max())).astype(np.complex64)


def load_cmrxrecon(path, acceleration: Optional[int] = None, slice_index: Optional[int] = None,
                   calib: int = 24) -> Acquisition:
    """Read one slice of a CMRxRecon 2023 cine file (MATLAB v7.3 = HDF5).

    Keys: ``kspace_full`` and/or ``kspace_sub04/08/10`` with ``mask04/08/10``; complex
    stored as a compound of real/imag; h5py axis order (t, kz, coil, ky, kx), masks
    (ky, kx). ky (phase encode) becomes our W axis, kx our H axis. Coil maps are
    estimated from the ``calib`` central lines; k-space is scaled so that the
    zero-filled (or fully sampled) image peaks at 1. ``target`` is the fully sampled
    coil combination when ``kspace_full`` is present.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CMRxRecon file not found: {path}")
    with h5py.File(path, "r") as f:
        keys = set(f.keys())
        if acceleration is None:
            subs = sorted(k for k in keys if re.fullmatch(r"kspace_sub\d\d", k))
            if subs:
                acceleration = int(subs[0][-2:])
        full = _read_complex(f["kspace_full"]) if "kspace_full" in keys else None
        if acceleration:
            kkey, mkey = f"kspace_sub{int(acceleration):02d}", f"mask{int(acceleration):02d}"
            for k in (kkey, mkey):
                if k not in keys:
                    raise DataFormatError(f"{path}: missing '{k}' (have {sorted(keys)})")
            sub = _read_complex(f[kkey])
            m = f[mkey][()]
        elif full is None:
            raise DataFormatError(f"{path}: no 'kspace_full' or 'kspace_subXX' dataset (have {sorted(keys)})")
    ref = sub if acceleration else full
    if ref.ndim != 5:
        raise DataFormatError(f"{path}: k-space must be (t, kz, coil, ky, kx), got shape {ref.shape}")
    nt, nz, nc, ny, nx = ref.shape
    z = nz // 2 if slice_index is None else int(slice_index)
    if not 0 <= z < nz:
        raise DataFormatError(f"{path}: slice_index {z} outside 0..{nz - 1}")
    to_layout = lambda k: np.ascontiguousarray(np.transpose(k[:, z], (0, 1, 3, 2)))  # (t, coil, kx, ky)
    if acceleration:
        if m.shape != (ny, nx):
            raise DataFormatError(f"{path}: mask must be (ky, kx) = {(ny, nx)}, got {m.shape}")
        line = m.astype(bool).any(axis=1)
        mask = np.tile(line.astype(np.uint8), (nt, 1))
        kspace = to_layout(sub) * mask[:, None, None, :]
    else:
        mask = np.ones((nt, ny), np.uint8)
        kspace = to_layout(full)
    smaps = estimate_smaps(kspace, calib)
    op_full = Acquisition(kspace, mask, smaps)
    target = None
    if full is not None:
        target = Acquisition(to_layout(full), np.ones_like(mask), smaps).zero_filled()
    scale = float(np.abs(target if target is not None else op_full.zero_filled()).max()) or 1.0
    return Acquisition(
        kspace=(kspace / scale).astype(np.complex64), mask=mask, smaps=smaps,
        target=None if target is None else (target / scale).astype(np.complex64),
        acceleration=float(acceleration) if acceleration else 1.0, meta={"source": str(path), "slice_index": z},
    )


# ---------------------------------------------------------------- DATA parameter -> Acquisition
def is_phantom(DATA) -> bool:
    """Whether a ``DATA`` parameter names the embedded phantom (None, "", "none" or "phantom")."""
    return DATA is None or str(DATA).strip().lower() in ("", "none", "phantom")


def data_label(DATA) -> str:
    """``DATA`` as the records write it: "phantom" for the embedded phantom, else the text given."""
    return "phantom" if is_phantom(DATA) else str(DATA)


def _resolve_path(data: str) -> Path:
    p = Path(data).expanduser()
    if not p.is_absolute() and not p.exists():
        p = REPO_ROOT / p
    return p


def load_case(DATA=None, R: float = 6, seed: int = 0, T: Optional[int] = 20, N: Optional[int] = 128, coils: int = 4,
              noise_std: float = 1e-3, mask_style: str = "vd") -> Acquisition:
    """Turn a notebook's ``DATA`` parameter into an acquisition.

    * ``None``: the embedded beating-heart phantom (subject ``seed``), T frames of N x N.
    * ``"sunnybrook"`` or ``"sunnybrook:<patient>/<slice>"``: a real cine (default: the test
      patient's mid-ventricular slice), resampled to T x N x N when they differ.
    * a path to a k-space file (has a 'kspace' dataset): loaded as is; ``R`` is ignored.
    * a path to a CMRxRecon ``.mat`` file: see :func:`load_cmrxrecon`.
    * a path to an image cine (.h5/.npy/.npz): normalised to [0, 1], then simulated.
    """
    if is_phantom(DATA):
        N = N or 128
        acq = simulate(phantom_cine(T or 20, N, N, seed=seed), R, seed, coils, noise_std, mask_style)
        acq.meta = {"source": "phantom", "subject_seed": seed}
        return acq
    DATA = str(DATA)
    if DATA.lower().startswith("sunnybrook"):
        patient = slice_name = None
        if ":" in DATA:
            spec = DATA.split(":", 1)[1]
            patient, _, slice_name = spec.partition("/")
            slice_name = slice_name or None
        cine, attrs = load_sunnybrook(patient, slice_name)
        acq = simulate(resample_cine(cine, T, N), R, seed, coils, noise_std, mask_style)
        acq.meta = {"source": "sunnybrook", **{k: attrs[k] for k in ("patient", "slice", "file")}}
        return acq
    path = _resolve_path(DATA)
    if not path.is_file():
        raise FileNotFoundError(f"DATA file not found: {DATA} (looked at {path})")
    if path.suffix.lower() == ".mat":
        return load_cmrxrecon(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        with h5py.File(path, "r") as f:
            is_kspace = "kspace" in f
        if is_kspace:
            return load_kspace(path)
    cine = normalise(np.abs(load_image_cine(path)))
    acq = simulate(resample_cine(cine, T, N), R, seed, coils, noise_std, mask_style)
    acq.meta = {"source": str(path)}
    return acq
