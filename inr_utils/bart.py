"""Run the BART toolbox (``bart`` on PATH, Debian package ``bart``) on our k-space files.

Layout mapping (``io.bart_arrays``): BART dims 0 = readout (our H), 1 = phase encode (our W,
the undersampled axis), 3 = coil, 10 = time; ``.cfl`` files (``io.read_cfl`` /
``io.write_cfl``) are complex64 in column-major order with a ``.hdr``. ``pics -S`` keeps our scaling, the
known coil maps and the pattern are passed explicitly, and ``-R T:1024:0:lambda`` is
temporal TV (1024 = bit 10, the time axis); ``REGULARISERS`` names every term the
benchmark uses.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

from .acquisition import Acquisition
from .io import bart_arrays, from_bart_image, read_cfl, write_cfl


def available() -> bool:
    return shutil.which("bart") is not None


def _to_bart(acq: Acquisition, folder: Path):
    for name, array in bart_arrays(acq).items():
        write_cfl(folder / name, array)


def _run(*args):
    proc = subprocess.run(["bart", *map(str, args)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"bart {' '.join(map(str, args))} failed: {proc.stderr.strip()}")
    return proc.stdout


def zero_filled(acq: Acquisition) -> np.ndarray:
    """BART's zero-filled image (fft -i -u, then coil combination with conj maps): (T, H, W)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        _to_bart(acq, d)
        _run("fft", "-i", "-u", 3, d / "ksp", d / "img")
        _run("fmac", "-C", "-s", 8, d / "img", d / "sens", d / "zf")
        return from_bart_image(read_cfl(d / "zf"), acq.kspace.shape[0])


def nlinv_maps(kspace: np.ndarray, mask: np.ndarray, newton_steps: Optional[int] = None) -> np.ndarray:
    """Coil maps (C, H, W) from BART's nonlinear inversion (``nlinv``: image and maps
    estimated jointly, Uecker et al., MRM 2008), run on the time-averaged k-space
    (``coils.time_averaged_kspace`` of kspace (T, C, H, W) and mask (T, W)) with its default
    regularisation, ``newton_steps`` Newton steps (None: BART's default), and normalised to
    sum_c |S_c|^2 = 1 at every pixel, the convention of ``inr_utils.coils``."""
    from .coils import time_averaged_kspace, unit_rss

    k = time_averaged_kspace(kspace, mask)  # (C, H, W)
    C, H, W = k.shape
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_cfl(d / "ksp", np.transpose(k, (1, 2, 0))[:, :, None, :])  # [H W 1 C]
        _run("nlinv", "-d", 0, *(("-i", int(newton_steps)) if newton_steps else ()), d / "ksp", d / "img", d / "sens")
        sens = read_cfl(d / "sens")
    maps = np.ascontiguousarray(np.transpose(sens.reshape(H, W, C), (2, 0, 1)), np.complex64)
    if not np.isfinite(maps).all() or not np.abs(maps).max() > 0:
        raise RuntimeError("bart nlinv returned empty or non-finite coil maps")
    return unit_rss(maps, floor=1e-6)


#: BART's regularisers for a 2-D cine (``pics -R <letter>:<transform flags>:<joint flags>:<weight>``):
#: temporal TV (bit 10 = time), spatial l1-wavelet (bits 0, 1 = the image axes) and locally
#: low rank (8 x 8 spatial blocks, the block's Casorati matrix low rank across time; BART
#: shifts the block grid randomly at every iteration).
REGULARISERS = {"T": "T:1024:0", "W": "W:3:0", "L": "L:3:3"}
LLR_BLOCK = 8


def reconstructor(iters: int = 100, second: Optional[str] = None):
    """A ``selection.Reconstructor`` running ``pics`` at absolute weights: lam for temporal TV
    and, with ``second`` (a key of ``REGULARISERS``, e.g. "W" or "L"), mu for that term (else
    mu is ignored)."""
    if second is not None and second not in REGULARISERS:
        raise ValueError(f"unknown BART regulariser {second!r}; choose from {sorted(REGULARISERS)}")

    def reconstruct(op, y, lam, mu, target):
        acq = Acquisition(kspace=np.asarray(y), mask=op.mask.cpu().numpy().astype(np.uint8), smaps=op.smaps.cpu().numpy())
        weights = {"T": lam, **({second: mu} if second else {})}
        return pics(acq, weights, iters)

    return reconstruct


def pics(acq: Acquisition, weights: dict, iters: int = 100):
    """``bart pics -S -d 0 -i iters -p pat [-b 8] -R <term>:<weight> ...`` for the terms of
    ``weights`` (``REGULARISERS`` keys -> absolute weights; a zero weight drops the term);
    returns (recon (T, H, W) complex64, seconds of the ``pics`` call)."""
    unknown = sorted(set(weights) - set(REGULARISERS))
    if unknown:
        raise ValueError(f"unknown BART regularisers {unknown}; choose from {sorted(REGULARISERS)}")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        _to_bart(acq, d)
        args = ["pics", "-S", "-d", 0, "-i", iters, "-p", d / "pat"]
        if weights.get("L"):
            args += ["-b", LLR_BLOCK]
        for name, weight in weights.items():
            if weight:
                args += ["-R", f"{REGULARISERS[name]}:{weight}"]
        t0 = time.perf_counter()
        _run(*args, d / "ksp", d / "sens", d / "rec")
        seconds = time.perf_counter() - t0
        return from_bart_image(read_cfl(d / "rec"), acq.kspace.shape[0]), seconds
