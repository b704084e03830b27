"""Loaders and writers: the project's k-space HDF5 layout, image cines, the Sunnybrook
cines, BART's ``.cfl`` arrays, and ``load_case`` which turns a notebook's ``DATA`` parameter
into an :class:`~inr_utils.acquisition.Acquisition` (CMRxRecon: ``inr_utils.cmrxrecon``;
ISMRMRD: ``inr_utils.ismrmrd_io``).

K-space HDF5 layout (read and written here; BART and other tools read the same files)::

    kspace   (T, C, H, W) complex64   zeros where not sampled
    mask     (T, W)       uint8       1 = phase-encode line (column along W) sampled
    smaps    (C, H, W)    complex64   optional coil maps, sum_c |S_c|^2 = 1 inside the object
                                      (without them: estimated, ``inr_utils.coils``)
    target   (T, H, W)    complex64   optional ground truth (for metrics)
    attrs    acceleration (float, requested R; NaN if unknown), noise_std (float), seed (int)

FFT convention: centred orthonormal over (H, W): fftshift(fft2(ifftshift(x), norm="ortho")).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Optional

import h5py
import numpy as np
import torch

from . import PACKAGE_DATA, REPO_ROOT
from .coils import CoilEstimate, estimate as estimate_coil_maps
from .acquisition import Acquisition, simulate
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


def load_kspace(path, coil_maps: str = "espirit") -> Acquisition:
    """Read and validate a k-space file; one clear error naming the first problem. Without
    ``smaps`` the coil maps are estimated from the data by ``coil_maps`` (``inr_utils.coils``);
    ``meta["coil_maps"]`` says how they were obtained."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"k-space file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        for key in ("kspace", "mask"):
            _require(key in f, path, f"missing dataset '{key}' (the layout needs kspace and mask; smaps and target optional)")
        kspace, mask = f["kspace"][()], f["mask"][()]
        smaps = f["smaps"][()] if "smaps" in f else None
        target = f["target"][()] if "target" in f else None
        attrs = dict(f.attrs)
    _require(kspace.ndim == 4, path, f"'kspace' must be (T, C, H, W), got shape {kspace.shape}")
    T, C, H, W = kspace.shape
    _require(mask.shape == (T, W), path, f"'mask' must be (T, W) = {(T, W)}, got {mask.shape}")
    if smaps is not None:
        _require(smaps.shape == (C, H, W), path, f"'smaps' must be (C, H, W) = {(C, H, W)}, got {smaps.shape}")
    if target is not None:
        _require(target.shape == (T, H, W), path, f"'target' must be (T, H, W) = {(T, H, W)}, got {target.shape}")
    for name, arr in (("kspace", kspace), ("smaps", smaps), ("target", target)):
        if arr is not None:
            _require(np.iscomplexobj(arr) or (name == "target" and np.issubdtype(arr.dtype, np.floating)), path,
                     f"'{name}' must be complex (complex64), got {arr.dtype}"
                     + (": a real-valued k-space has lost its phase" if name == "kspace" else ""))
            _require(np.all(np.isfinite(arr)), path, f"'{name}' contains NaN or Inf")
    _require(np.isin(mask, (0, 1)).all(), path, "'mask' must hold only 0 and 1")
    unsampled = (mask == 0)[:, None, None, :]
    _require(not np.any((kspace != 0) & unsampled), path, "'kspace' has non-zero samples on lines where 'mask' is 0")
    _require(mask.any(), path, "'mask' samples no line")
    kspace, mask = kspace.astype(np.complex64), mask.astype(np.uint8)
    if smaps is None:
        smaps, how = estimate_coil_maps(kspace, mask, coil_maps)
    else:
        how = CoilEstimate("given")
    return Acquisition(
        kspace=kspace, mask=mask, smaps=smaps.astype(np.complex64),
        target=None if target is None else target.astype(np.complex64),
        acceleration=float(attrs.get("acceleration", np.nan)), noise_std=float(attrs.get("noise_std", 0.0)),
        seed=int(attrs.get("seed", 0)), meta={"source": str(path), "coil_maps": how.as_dict()},
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


# ---------------------------------------------------------------- BART's .cfl / .hdr
def write_cfl(name, array: np.ndarray):
    """``name.cfl`` (complex64, column-major) and ``name.hdr`` (16 dims), BART's array files."""
    array = np.asarray(array)
    if array.ndim > 16:
        raise ValueError(f"BART arrays have at most 16 dims, got {array.ndim}")
    dims = list(array.shape) + [1] * (16 - array.ndim)
    Path(f"{name}.hdr").write_text("# Dimensions\n" + " ".join(map(str, dims)) + "\n")
    np.asarray(array, np.complex64).ravel(order="F").tofile(f"{name}.cfl")


def read_cfl(name) -> np.ndarray:
    """A BART array (``name.cfl`` + ``name.hdr``), trailing singleton dims dropped."""
    hdr, cfl = Path(f"{name}.hdr"), Path(f"{name}.cfl")
    for p in (hdr, cfl):
        if not p.is_file():
            raise FileNotFoundError(f"BART file not found: {p}")
    lines = hdr.read_text().splitlines()
    try:
        dims = [int(d) for d in lines[lines.index("# Dimensions") + 1].split()]
    except (ValueError, IndexError):
        raise DataFormatError(f"{hdr}: no '# Dimensions' line followed by integers") from None
    data = np.fromfile(cfl, np.complex64)
    if data.size != int(np.prod(dims)):
        raise DataFormatError(f"{cfl}: holds {data.size} complex64 values, the header's dims {dims} need {int(np.prod(dims))}")
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    return data.reshape(dims, order="F")


#: BART's axes for a 2-D cine: 0 readout (our H), 1 phase encode (our W), 3 coil, 10 time.
BART_TIME_AXIS = 10


def bart_arrays(acq: Acquisition) -> dict:
    """``acq`` as BART arrays: k-space [H W 1 C .. T], coil maps [H W 1 C], pattern [H W 1 .. T]."""
    T, C, H, W = acq.kspace.shape
    ksp = np.zeros((H, W, 1, C) + (1,) * 6 + (T,), np.complex64)
    ksp[:, :, 0, :, 0, 0, 0, 0, 0, 0, :] = np.transpose(acq.kspace, (2, 3, 1, 0))
    pat = np.zeros((H, W) + (1,) * 8 + (T,), np.complex64)
    pat[:, :, 0, 0, 0, 0, 0, 0, 0, 0, :] = np.broadcast_to(acq.mask.T[None].astype(np.float32), (H, W, T))
    return {"ksp": ksp, "sens": np.transpose(acq.smaps, (1, 2, 0))[:, :, None, :], "pat": pat}


def from_bart_image(rec: np.ndarray, T: int) -> np.ndarray:
    """A BART image [H W 1 .. T] as our (T, H, W) complex64."""
    rec = rec.reshape(rec.shape[0], rec.shape[1], -1)
    return np.ascontiguousarray(np.transpose(rec, (2, 0, 1))).astype(np.complex64)[:T]


def load_bart(kspace_name, sens_name=None, coil_maps: str = "espirit") -> Acquisition:
    """A BART k-space array [H W 1 C .. T] (time on axis 10; coils on 3) as an acquisition;
    the mask is the set of columns with any non-zero sample per frame; coil maps from
    ``sens_name`` [H W 1 C] or estimated (``inr_utils.coils``)."""
    ksp = read_cfl(kspace_name)
    full = np.reshape(ksp, ksp.shape + (1,) * (16 - ksp.ndim))
    if any(full.shape[i] != 1 for i in (2, 4, 5, 6, 7, 8, 9)) or any(d != 1 for d in full.shape[11:]):
        raise DataFormatError(f"{kspace_name}: expected BART dims [H W 1 C 1 1 1 1 1 1 T], got {list(full.shape)}")
    kspace = np.ascontiguousarray(np.transpose(full.reshape(full.shape[:2] + full.shape[3:4] + full.shape[10:11]), (3, 2, 0, 1)))  # (T, C, H, W)
    mask = (np.abs(kspace) > 0).any(axis=(1, 2)).astype(np.uint8)
    if not mask.any():
        raise DataFormatError(f"{kspace_name}: k-space has no non-zero sample")
    meta = {"source": str(kspace_name)}
    if sens_name is not None:
        sens = read_cfl(sens_name)
        smaps = np.ascontiguousarray(np.transpose(np.reshape(sens, sens.shape[:2] + (-1,)), (2, 0, 1))).astype(np.complex64)
        if smaps.shape != kspace.shape[1:]:
            raise DataFormatError(f"{sens_name}: coil maps {smaps.shape[::-1]} do not match the k-space's [H W 1 C]")
        meta["coil_maps"] = CoilEstimate("given").as_dict()
    else:
        smaps, how = estimate_coil_maps(kspace, mask, coil_maps)
        meta["coil_maps"] = how.as_dict()
    return Acquisition(kspace.astype(np.complex64), mask, smaps, meta=meta)


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
              noise_std: float = 1e-3, mask_style: str = "vd", *, coil_model: str = "gaussian",
              snr_db: Optional[float] = None, coil_maps: Optional[str] = None) -> Acquisition:
    """Turn a notebook's ``DATA`` parameter into an acquisition.

    * ``None``: the embedded beating-heart phantom (subject ``seed``), T frames of N x N.
    * ``"sunnybrook"`` or ``"sunnybrook:<patient>/<slice>"``: a real cine (default: the test
      patient's mid-ventricular slice), resampled to T x N x N when they differ.
    * a path to a k-space file (has a 'kspace' dataset): loaded as is; ``R`` is ignored.
    * a CMRxRecon ``.mat`` file or patient folder, optionally ``path::slice``
      (``inr_utils.cmrxrecon.load``; a folder with only fully sampled data is undersampled at ``R``).
    * an ISMRMRD file (an HDF5 file with a ``dataset`` group; ``inr_utils.ismrmrd_io.load``).
    * a BART k-space array ``name.cfl`` (``[H W 1 C 1 1 1 1 1 1 T]``; ``load_bart``, maps estimated).
    * a path to an image cine (.h5/.npy/.npz): normalised to [0, 1], then simulated.

    Simulated data take ``coil_model`` and ``snr_db`` (``acquisition.simulate``); with
    ``coil_maps`` (a method of ``coils.METHODS``) their reconstruction uses maps estimated from the
    undersampled data, as a real scan must, instead of the maps that simulated them.
    """
    acq = _load_case(DATA, R, seed, T, N, coils, noise_std, mask_style, coil_model, snr_db)
    if coil_maps is not None and acq.meta.get("coil_maps", {}).get("method") in (None, "given"):
        acq = with_estimated_maps(acq, coil_maps)
    return acq


def with_estimated_maps(acq: Acquisition, method: str = "espirit") -> Acquisition:
    """A copy of ``acq`` whose coil maps are estimated from its own undersampled k-space."""
    smaps, how = estimate_coil_maps(acq.kspace, acq.mask, method)
    return dataclasses.replace(acq, smaps=smaps, meta={**acq.meta, "coil_maps": how.as_dict()})


def _load_case(DATA, R, seed, T, N, coils, noise_std, mask_style, coil_model, snr_db) -> Acquisition:
    if is_phantom(DATA):
        N = N or 128
        acq = simulate(phantom_cine(T or 20, N, N, seed=seed), R, seed, coils, noise_std, mask_style,
                       coil_model=coil_model, snr_db=snr_db)
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
        acq = simulate(resample_cine(cine, T, N), R, seed, coils, noise_std, mask_style, coil_model=coil_model,
                       snr_db=snr_db)
        acq.meta = {"source": "sunnybrook", **{k: attrs[k] for k in ("patient", "slice", "file")}}
        return acq
    DATA, _, slice_part = DATA.partition("::")
    path = _resolve_path(DATA)
    if not path.exists():
        raise FileNotFoundError(f"DATA file not found: {DATA} (looked at {path})")
    if slice_part and not slice_part.strip().lstrip("-").isdigit():
        raise ValueError(f"DATA {DATA}::{slice_part}: the part after '::' must be a slice index")
    slice_index = int(slice_part) if slice_part else None
    if path.is_dir() or path.suffix.lower() == ".mat":
        from . import cmrxrecon

        return cmrxrecon.load(path, R=R, slice_index=slice_index, seed=seed)
    if path.suffix.lower() in (".cfl", ".hdr"):  # a BART k-space array; maps estimated (load_bart takes given ones)
        if slice_index is not None:
            raise ValueError(f"DATA {DATA}::{slice_part}: a BART array holds one slice; drop '::{slice_part}'")
        return load_bart(str(path.with_suffix("")))
    keys = set()
    if path.suffix.lower() in (".h5", ".hdf5", ".mrd"):
        try:
            with h5py.File(path, "r") as f:
                keys = set(f.keys())
        except OSError as e:
            raise DataFormatError(f"{path}: not a readable HDF5 file ({e})") from None
    if "dataset" in keys:
        from . import ismrmrd_io

        return ismrmrd_io.load(path, R=R, slice_index=slice_index, seed=seed)
    if slice_index is not None:
        raise ValueError(f"DATA {DATA}::{slice_part}: a slice index applies to CMRxRecon and ISMRMRD files only")
    if "kspace" in keys:
        return load_kspace(path)
    if keys & {"mask", "smaps"}:
        raise DataFormatError(f"{path}: has {sorted(keys & {'mask', 'smaps'})} of the k-space layout but no 'kspace' "
                              "dataset (an image cine holds one 3-D dataset or 'cine')")
    cine = normalise(np.abs(load_image_cine(path)))
    acq = simulate(resample_cine(cine, T, N), R, seed, coils, noise_std, mask_style, coil_model=coil_model,
                   snr_db=snr_db)
    acq.meta = {"source": str(path)}
    return acq
