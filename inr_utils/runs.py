"""Safe run outputs: a run writes into a hidden staging folder inside OUT_DIR and
moves its files into place only when it finishes (``commit``). A run that fails or
is interrupted therefore leaves every file already in OUT_DIR untouched.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from . import OUTPUTS, REPO_ROOT
from .io import is_phantom


def data_tag(DATA) -> str:
    """Short folder-safe name of a DATA parameter ('' for the embedded phantom)."""
    if is_phantom(DATA):
        return ""
    text = str(DATA)
    if not text.lower().startswith("sunnybrook"):
        text = Path(text).stem
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def default_out_dir(notebook: str, R, DATA=None, SEED: int = 0, **more) -> Path:
    """outputs/<notebook>/R<R>[_<K><V>...][_<data>][_seed<S>]/ with numbers written without a
    trailing .0 (R6, R2.5, R6_T8, R6_sunnybrook, R6_seed3): runs on other data, seeds or
    grid values never share a folder."""
    parts = [f"R{float(R):g}"] + [f"{k}{v:g}" for k, v in more.items()]
    parts += [data_tag(DATA)] if data_tag(DATA) else []
    parts += [f"seed{int(SEED)}"] if SEED else []
    return OUTPUTS / notebook / "_".join(parts)


class RunOutputs:
    """Stage a run's files, then publish them atomically file by file.

    >>> out = RunOutputs(OUT_DIR); save(out.path("case.h5")); out.commit()
    """

    #: a staging folder's owner (pid and host), so that a later run can tell a killed run's folder
    OWNER = ".owner"
    #: age after which a staging folder without an owner file counts as abandoned
    ORPHAN_SECONDS = 24 * 3600

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.remove_abandoned(self.out_dir)
        self.staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.out_dir))
        (self.staging / self.OWNER).write_text(f"{os.getpid()} {socket.gethostname()}\n")

    @classmethod
    def remove_abandoned(cls, out_dir) -> list[Path]:
        """Delete the staging folders in ``out_dir`` of runs that were killed: their owner process
        is gone from this host (or, with no owner file, the folder is over a day old). A running
        run's folder, or one owned on another host, is left alone. Returns the folders removed."""
        removed = []
        for folder in Path(out_dir).glob(".partial-*"):
            owner = folder / cls.OWNER
            try:
                if owner.is_file():
                    pid, host = owner.read_text().split()
                    if host != socket.gethostname() or _alive(int(pid)):
                        continue
                elif time.time() - folder.stat().st_mtime < cls.ORPHAN_SECONDS:
                    continue
            except (OSError, ValueError):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        return removed

    def path(self, name) -> Path:
        """Where to write ``name`` (relative to OUT_DIR) during the run."""
        p = self.staging / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name, obj) -> Path:
        p = self.path(name)
        p.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")
        return p

    def commit(self) -> list[Path]:
        """Move every staged file into OUT_DIR (os.replace per file) and drop the staging folder."""
        moved = []
        for src in sorted(p for p in self.staging.rglob("*") if p.is_file() and p != self.staging / self.OWNER):
            dst = self.out_dir / src.relative_to(self.staging)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            moved.append(dst)
        shutil.rmtree(self.staging, ignore_errors=True)
        return moved


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """End this process within about ``poll_seconds`` of the process that started it going away
    (killed, say), so that an orphaned worker does not go on fitting on cores whose results
    nobody will read. Call it first in a worker process (a pool's ``initializer``, a
    ``multiprocessing.Process`` target); a daemon thread watches the parent's id, which changes
    when the parent dies and the worker is handed to another."""
    import threading

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)  # no clean-up needed: a run's files stay staged until it commits (RunOutputs)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def write_if_changed(path, text: str) -> bool:
    """Write ``text`` to ``path`` (folders made) unless it holds exactly that; returns whether it wrote."""
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def check_int(name: str, value, lo: int = 1) -> int:
    """Return ``value`` as int, or raise one clear error naming the parameter."""
    try:  # text that is no number, None or a complex number is refused with the same message
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer() or number < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value) if isinstance(value, numbers.Integral) else int(number)


def check_device(value, present: bool = True) -> str:
    """DEVICE as the name torch takes: ``"cpu"``, ``"cuda"`` or ``"cuda:<n>"`` (``"auto"``: ``"cuda"``
    when a GPU is present, else ``"cpu"``); one clear error for anything else or a GPU that is not here.
    ``present=False`` checks the name only (a device other runs used, on another machine), so
    ``"auto"``, which names no device by itself, is refused."""
    import torch  # here, so the output helpers stay light

    text = str(value).strip().lower()
    if text == "auto" and not present:
        raise ValueError("DEVICE 'auto' depends on the machine: name the device ('cpu', 'cuda' or 'cuda:<n>')")
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise ValueError(f"DEVICE must be 'cpu', 'cuda', 'cuda:<n>' or 'auto', got {value!r}")
    if text.startswith("cuda") and present:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(text.partition(":")[2] or 0)
        if index >= count:
            raise ValueError(f"DEVICE={value!r}: this machine has {count} CUDA device(s) "
                             f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use 'cpu' or 'auto'")
    return text


def resolve_out_dir(out_dir, notebook: str, R, DATA=None, SEED: int = 0, **more) -> Path:
    """OUT_DIR as given, or the default outputs/<notebook>/R<R>[...]/ (see default_out_dir)."""
    return Path(out_dir) if out_dir else default_out_dir(notebook, R, DATA, SEED, **more)


def cpu_model() -> str:
    """The CPU model name (/proc/cpuinfo; the platform's processor name elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


#: tracked paths that ``code_version`` does not count as code: results and documentation
NOT_CODE = ("outputs", "benchmarks/results", "README.md", "docs")


def code_version() -> dict | None:
    """The repository's commit, whether tracked files other than the results and the documentation
    (``outputs/``, ``benchmarks/results/``, ``README.md``, ``docs/``: what a finished run or
    benchmark rewrites while others still run, and not code) differ from it (``dirty``) and a
    SHA-1 of that difference (``diff``, None when clean), or None outside a git checkout (or
    without git). Two runs with equal records ran the same code."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != REPO_ROOT.resolve():
            return None  # e.g. an installed copy inside some other repository
        commit = git("rev-parse", "HEAD")
        paths = ("--", ".", *(f":(exclude){p}" for p in NOT_CODE))
        changed = git("status", "--porcelain", "--untracked-files=no", *paths)
        diff = git("diff", "HEAD", *paths) if changed else ""
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(changed), "diff": hashlib.sha1(diff.encode()).hexdigest() if diff else None}


def record_run(executed) -> Path:
    """Write ``run_info.json`` beside an executed notebook: papermill's start, end and
    duration, the parameters, the machine (CPU model and count, and ``threads``: the kernel's
    ``OMP_NUM_THREADS``, which ``pipeline.execute`` names for its kernels; None when unset, i.e.
    torch's default of every core) and the code (``code_version``).
    It is tracked in git (the executed notebooks are not), so the README's wall times survive a
    clean checkout."""
    executed = Path(executed)
    meta = json.loads(executed.read_text()).get("metadata", {}).get("papermill", {})
    params = dict(meta.get("parameters", {}))
    if "OUT_DIR" in params:  # relative to the repository, so the record does not name this machine's paths
        out = Path(str(params["OUT_DIR"])).resolve()
        params["OUT_DIR"] = out.relative_to(REPO_ROOT).as_posix() if out.is_relative_to(REPO_ROOT) else str(out)
    info = {"notebook": executed.stem, "parameters": params, "start_time": meta.get("start_time"),
            "end_time": meta.get("end_time"), "seconds": meta.get("duration"), "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "threads": _threads(), "code": code_version()}
    path = executed.parent / "run_info.json"
    write_text_atomic(path, json.dumps(info, indent=1))
    return path


def _threads():
    """``OMP_NUM_THREADS`` as the kernel inherits it (an int; the raw string if it is not one; None when unset).
    A wall-time budget buys a different amount of training at another thread count."""
    value = os.environ.get("OMP_NUM_THREADS")
    return int(value) if value is not None and value.strip().isdigit() else value


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``<path>.tmp`` beside it, so that a killed run leaves
    the old file or the new one, never a truncated one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
