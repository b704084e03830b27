import sys

import numpy as np
import pytest
import torch

from inr_utils import OUTPUTS
from inr_utils.runs import RunOutputs, check_device, check_int, default_out_dir


def test_failed_run_leaves_existing_outputs_untouched(tmp_path):
    (tmp_path / "metrics.json").write_text("old")
    out = RunOutputs(tmp_path)
    out.write_json("metrics.json", {"new": 1})
    out.path("figures/a.txt").write_text("a")
    # the run dies before commit: the old file is intact, the new ones are not visible
    assert (tmp_path / "metrics.json").read_text() == "old"
    assert not (tmp_path / "figures").exists()
    out2 = RunOutputs(tmp_path)
    out2.write_json("metrics.json", {"new": 2})
    moved = out2.commit()
    assert (tmp_path / "metrics.json").read_text().strip().startswith("{") and len(moved) == 1
    assert not out2.staging.exists()


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run_and_a_live_one_is_kept(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import time

    live = RunOutputs(tmp_path)  # this process: alive
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
    killed = tmp_path / ".partial-killed"
    killed.mkdir()
    (killed / "metrics.json").write_text("half")
    (killed / RunOutputs.OWNER).write_text(f"{dead_pid} {socket.gethostname()}\n")
    elsewhere = tmp_path / ".partial-elsewhere"  # owned on another host: its process cannot be checked here
    elsewhere.mkdir()
    (elsewhere / RunOutputs.OWNER).write_text(f"{dead_pid} another-host\n")
    old, recent = tmp_path / ".partial-old", tmp_path / ".partial-recent"  # no owner file: judged by age
    old.mkdir(); recent.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    nxt = RunOutputs(tmp_path)
    assert not killed.exists() and not old.exists()
    assert live.staging.exists() and elsewhere.exists() and recent.exists() and nxt.staging.exists()
    nxt.write_json("metrics.json", {"a": 1})
    assert [p.name for p in nxt.commit()] == ["metrics.json"]  # the owner file is not published


def test_default_out_dir_and_int_checks():
    assert default_out_dir("01_data", 6) == OUTPUTS / "01_data" / "R6"
    assert default_out_dir("01_data", 2.5).name == "R2.5"
    assert default_out_dir("05", 6, "sunnybrook", 0, T=8).name == "R6_T8_sunnybrook"
    assert default_out_dir("02", 3, "sunnybrook:SCD0000101/slice_006", 2).name == "R3_sunnybrook-SCD0000101-slice-006_seed2"
    assert default_out_dir("02", 3, "/data/my case.h5").name == "R3_my-case"
    with pytest.raises(ValueError, match="N must be an integer >= 8"):
        check_int("N", 4, 8)
    for bad in (2.5, "eight", "", None, True, 1j, float("nan"), float("inf")):  # one message, never a conversion error
        with pytest.raises(ValueError, match="T must be an integer >= 1"):
            check_int("T", bad)
    assert check_int("T", 8.0) == 8 and check_int("T", np.int64(3)) == 3 and check_int("T", "8.0") == 8


def test_device_is_checked_once_with_one_clear_error():
    assert check_device("cpu") == "cpu" and check_device(" CPU ") == "cpu"
    assert check_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:x", "", None, 0):
        with pytest.raises(ValueError, match="DEVICE must be 'cpu', 'cuda', 'cuda:<n>' or 'auto'"):
            check_device(bad)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=f"this machine has {count} CUDA device"):
        check_device(f"cuda:{count}")


def test_a_device_name_alone_is_checked_without_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_device("cuda:1", present=False) == "cuda:1" and check_device(" CPU ", present=False) == "cpu"
    with pytest.raises(ValueError, match="this machine has 0 CUDA device"):
        check_device("cuda")
    with pytest.raises(ValueError, match="'auto' depends on the machine"):
        check_device("auto", present=False)
    with pytest.raises(ValueError, match="DEVICE must be"):
        check_device("tpu", present=False)


def test_code_version_counts_code_not_results_or_documentation(tmp_path, monkeypatch):
    """A benchmark that finishes first rewrites the README and the results page while other runs
    still go on: their records stay clean. A change to the code makes them dirty."""
    import subprocess

    from inr_utils import runs

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    for path in ("README.md", "docs/results.md", "outputs/r/metrics.json", "benchmarks/results/b.md",
                 "benchmarks/b.py", "inr_utils/x.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("0\n")
    git("init", "-q"); git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    monkeypatch.setattr(runs, "REPO_ROOT", tmp_path)
    for path in ("README.md", "docs/results.md", "outputs/r/metrics.json", "benchmarks/results/b.md"):
        (tmp_path / path).write_text("1\n")
    assert runs.code_version()["dirty"] is False and runs.code_version()["diff"] is None
    for path in ("benchmarks/b.py", "inr_utils/x.py"):
        (tmp_path / path).write_text("1\n")
        assert runs.code_version()["dirty"] is True


def test_record_run_keeps_the_thread_count(tmp_path, monkeypatch):
    """run_info.json's ``threads`` is the OMP_NUM_THREADS the kernel inherited (None when unset)."""
    import json

    from inr_utils.runs import record_run

    (tmp_path / "nb.ipynb").write_text(json.dumps({"metadata": {"papermill": {"parameters": {}}}, "cells": []}))
    for env, expected in (("1", 1), ("4", 4), (None, None)):
        if env is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", env)
        assert json.loads(record_run(tmp_path / "nb.ipynb").read_text())["threads"] == expected


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_ends_soon_after_its_parent_is_killed(tmp_path):
    """A worker that called exit_with_parent exits within seconds of its parent being killed
    (SIGKILL: no clean-up in the parent), instead of running on as an orphan; while the parent
    lives it keeps running."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "napper.py").write_text(
        "import os, time\nfrom inr_utils.runs import exit_with_parent\n\n"
        "def nap(pidfile):\n    exit_with_parent(poll_seconds=0.2)\n"
        "    open(pidfile, 'w').write(str(os.getpid()))\n    time.sleep(120)\n")
    (tmp_path / "parent.py").write_text(
        "import multiprocessing as mp, sys, time\nimport napper\n\n"
        "if __name__ == '__main__':\n"
        "    mp.get_context('spawn').Process(target=napper.nap, args=(sys.argv[1],)).start()\n"
        "    time.sleep(120)\n")
    pidfile = tmp_path / "worker.pid"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), str(tmp_path)]))
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py"), str(pidfile)], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = int(pidfile.read_text())
        time.sleep(1.0)
        assert not _gone(worker), "the worker should run while its parent lives"
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not _gone(worker):
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed parent by 10 s")
