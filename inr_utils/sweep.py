"""Parameter sweeps of a numbered notebook on this machine or a Dask cluster.

    python -m inr_utils.pipeline sweep notebooks/01_data.py -p R 3 6 8 -p SEED 0 1 --workers 2
    python -m inr_utils.pipeline sweep notebooks/02_global_inr.py -p R 4 6 -p DATA sunnybrook \\
        --executor dask --scheduler tcp://10.0.0.5:8786

``sweep_many`` runs several notebooks' sweeps in one pool (``make reproduce``), longest run first.

The Cartesian product of the values; each point is one papermill execution
(``pipeline.execute``) into its own folder under ``out_root`` (default
``outputs/<notebook>/``, named like ``make reproduce``'s runs plus every other swept
parameter). A point whose ``metrics.json`` exists beside a ``run_info.json`` with the same
parameters and the same code (``runs.code_version``) is skipped, so a stopped sweep
resumes. A failing point is recorded (its failed notebook kept as ``<notebook>.failed.ipynb``)
and the others go on. At the end: a summary table gathered from the ``metrics.json`` files
(``out_root/sweep_summary.md``) and the list of failures.

Executors: ``local`` (a process pool on this machine) and ``dask`` (``dask.distributed``:
a ``LocalCluster`` of ``workers`` processes, or the running cluster at ``scheduler``, e.g.
one that dask-jobqueue's ``SLURMCluster`` started). Each run's kernel gets
``threads`` = cores // workers threads (``OMP_NUM_THREADS`` and friends, which torch
reads at start), so concurrent runs do not oversubscribe the cores.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from . import OUTPUTS
from .runs import code_version, default_out_dir, exit_with_parent

EXECUTORS = ("local", "dask")
#: grid parameters that ``default_out_dir`` names already (besides the OUT_DIR_KEYS)
NAMED = ("R", "DATA", "SEED", "OUT_DIR")
#: parameters that do not change a run's results, so they do not name its folder either
UNNAMED = ("RETRAIN",)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class SweepRun:
    """One point of a sweep: the notebook, its parameters (OUT_DIR aside) and its folder."""

    notebook: str
    parameters: dict = field(hash=False)
    out_dir: str

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.parameters.items())


@dataclass
class SweepResult:
    runs: list  # every SweepRun of the grid
    executed: list  # the runs executed now
    skipped: list  # the runs found complete (same parameters and code)
    failed: list  # [(SweepRun, message)]
    table: str  # the summary table (markdown)
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failed


def notebook_parameters(notebook) -> set:
    """The names in a notebook's parameters cell."""
    import jupytext
    from papermill.translators import PythonTranslator

    cell = next((c for c in jupytext.read(notebook).cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise ValueError(f"{notebook} has no parameters cell")
    return {p.name for p in PythonTranslator.inspect(cell)}


def _tag(value) -> str:
    text = f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "none"


def plan(notebook, grid: dict, out_root=None) -> list[SweepRun]:
    """The runs of the Cartesian product of ``grid`` ({name: [values]}); one clear error for an
    unknown parameter name or an empty list of values."""
    from .pipeline import OUT_DIR_KEYS

    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook not found: {notebook}")
    known = notebook_parameters(notebook)
    unknown = sorted(set(grid) - known)
    if unknown:
        raise ValueError(f"{notebook.name} has no parameter {', '.join(unknown)} (it has {', '.join(sorted(known))})")
    if "OUT_DIR" in grid:
        raise ValueError("OUT_DIR is set by the sweep (--out-root); do not sweep it")
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"parameter {name}: give at least one value, got {values!r}")
    root = Path(out_root) if out_root else OUTPUTS / notebook.stem
    runs = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        more = {OUT_DIR_KEYS[k]: params[k] for k in OUT_DIR_KEYS if k in params}
        name = default_out_dir(notebook.stem, params.get("R", 6), params.get("DATA"), params.get("SEED", 0), **more).name
        extra = [f"{k}{_tag(v)}" for k, v in params.items() if k not in NAMED + UNNAMED and k not in OUT_DIR_KEYS]
        runs.append(SweepRun(str(notebook.resolve()), params, str((root / "_".join([name] + extra)).resolve())))
    folders = [r.out_dir for r in runs]
    if len(set(folders)) != len(folders):
        raise ValueError("two points of the grid map to one folder; give distinct values")
    return runs


def is_complete(run: SweepRun, code) -> bool:
    """``metrics.json`` exists and ``run_info.json`` records these parameters and this code."""
    out = Path(run.out_dir)
    info_path = out / "run_info.json"
    if not (out / "metrics.json").is_file() or not info_path.is_file():
        return False
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError:
        return False
    recorded = {k: v for k, v in info.get("parameters", {}).items() if k != "OUT_DIR"}
    return recorded == json.loads(json.dumps(run.parameters)) and info.get("code") == code


def execute_run(run: SweepRun, threads: Optional[int] = None) -> dict:
    """Execute one run (in this process; its kernel inherits the thread settings)."""
    from .pipeline import execute

    if threads:
        for var in THREAD_VARIABLES:
            os.environ[var] = str(int(threads))
    t0 = time.perf_counter()
    execute(run.notebook, run.parameters, run.out_dir)
    return {"out_dir": run.out_dir, "seconds": time.perf_counter() - t0}


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # papermill's message holds the cell's traceback: its last line names the error
    return f"{type(error).__name__}: {lines[-1] if lines else text}"


def _metric_columns(records: list) -> list:
    """(method, metric) columns: PSNR where a method has it, else relative L1."""
    columns = []
    for rec in records:
        for method, values in (rec or {}).get("methods", {}).items():
            metric = "psnr" if "psnr" in values else "rel_l1" if "rel_l1" in values else None
            if metric and (method, metric) not in columns:
                columns.append((method, metric))
    return columns


def summary_table(runs: Sequence[SweepRun], failed: dict) -> str:
    """Markdown table: one row per run, its parameters and status, then each method's PSNR
    (or relative L1) from its metrics.json."""
    records = []
    for run in runs:
        path = Path(run.out_dir) / "metrics.json"
        records.append(json.loads(path.read_text()) if path.is_file() and run.out_dir not in failed else None)
    names = list(runs[0].parameters) if runs else []
    columns = _metric_columns(records)
    head = "| " + " | ".join(names + ["status"] + [f"{m} {k}" for m, k in columns]) + " |"
    lines = [head, "|" + "---|" * (len(names) + 1 + len(columns))]
    for run, rec in zip(runs, records):
        status = "failed" if run.out_dir in failed else "done" if rec is not None else "missing"
        cells = [str(run.parameters[n]) for n in names] + [status]
        for method, metric in columns:
            value = (rec or {}).get("methods", {}).get(method, {}).get(metric)
            cells.append("" if value is None or not math.isfinite(value) else f"{value:.4g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def recorded_seconds(folder) -> Optional[float]:
    """What the run in ``folder`` took when it last ran (its ``run_info.json``, whatever code ran
    it), or None: papermill's seconds, or, when more, the training seconds its ``metrics.json``
    records (a LIIF run that resumed from its checkpoints ran only the rest, so this is the
    better estimate of a run from scratch)."""
    folder = Path(folder)
    try:
        seconds = float(json.loads((folder / "run_info.json").read_text()).get("seconds") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    try:
        methods = json.loads((folder / "metrics.json").read_text()).get("methods", {})
        trained = sum(float(m.get("train_seconds") or 0) for m in methods.values() if isinstance(m, dict))
    except (OSError, ValueError, TypeError, AttributeError):
        trained = 0.0
    return max(seconds, trained)


def longest_first(runs: Sequence[SweepRun]) -> list:
    """``runs`` by the ``recorded_seconds`` of their folders, longest first and runs never recorded before them (so a
    pool of workers ends together as far as it can: the longest-processing-time rule); ties keep
    their order."""
    def key(run):
        seconds = recorded_seconds(run.out_dir)
        return -math.inf if seconds is None else -seconds

    return sorted(runs, key=key)


def pool_seconds(durations: Sequence[float], workers: int) -> float:
    """When a pool of ``workers`` that starts jobs of these durations longest first, each on the
    next free worker, finishes (the schedule ``sweep_many`` follows, were each job's time fixed)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    free = [0.0] * workers
    for d in sorted(durations, reverse=True):
        i = free.index(min(free))
        free[i] += d
    return max(free)


def sweep(notebook, grid: dict, out_root=None, executor: str = "local", workers: Optional[int] = None,
          scheduler: Optional[str] = None, threads: Optional[int] = None, progress: bool = True) -> SweepResult:
    """Run the sweep (module docstring); returns what ran, what was skipped and what failed."""
    return sweep_many([(notebook, grid)], out_root, executor, workers, scheduler, threads, progress)[0]


def sweep_many(plans: Sequence, out_root=None, executor: str = "local", workers: Optional[int] = None,
               scheduler: Optional[str] = None, threads: Optional[int] = None, progress: bool = True) -> list:
    """Several sweeps, ``plans`` = [(notebook, grid), ...], in one pool of workers (one
    ``SweepResult`` each, in order): every run still to do starts longest first
    (``longest_first``), whichever notebook it belongs to, so no worker idles at the end of one
    notebook while another has runs left. ``out_root`` (None: ``outputs/<notebook>/``) holds
    one folder per notebook when there are several."""
    from tqdm.auto import tqdm

    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose from {EXECUTORS}")
    if scheduler and executor != "dask":
        raise ValueError("--scheduler needs --executor dask")
    if not plans:
        return []

    def root_of(notebook) -> Path:
        if not out_root:
            return OUTPUTS / Path(notebook).stem
        return Path(out_root) / Path(notebook).stem if len(plans) > 1 else Path(out_root)

    roots = [root_of(nb) for nb, _ in plans]
    planned = [plan(nb, grid, root) for (nb, grid), root in zip(plans, roots)]
    code = code_version()
    todo = longest_first([r for runs in planned for r in runs if not is_complete(r, code)])
    cores = os.cpu_count() or 1
    workers = max(1, int(workers or min(len(todo) or 1, cores)))
    if threads is None and not scheduler:  # a remote cluster's workers know their own cores
        threads = max(1, cores // workers)
    t0 = time.perf_counter()
    failed: dict = {}
    name = Path(plans[0][0]).stem if len(plans) == 1 else f"{len(plans)} notebooks"
    bar = tqdm(total=len(todo), desc=f"sweep {name} ({executor}, {workers} workers)", disable=not progress)

    def finished(run, error):
        bar.update()
        if error is not None:
            failed[run.out_dir] = _error_text(error)
            bar.write(f"FAILED {run.label}: {failed[run.out_dir]} (notebook kept in {run.out_dir})")

    if todo and executor == "local":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # the pool hands the runs to its workers in the order they were submitted
        # a worker ends with this process (exit_with_parent), so a killed sweep leaves no notebook running
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=exit_with_parent) as pool:
            futures = {pool.submit(execute_run, r, threads): r for r in todo}
            for future in as_completed(futures):
                finished(futures[future], future.exception())
    elif todo:
        from distributed import Client, LocalCluster, as_completed

        # a LocalCluster's worker processes end with this process too: distributed starts each
        # with a pipe to its parent and exits it when that pipe closes (a killed sweep included)
        cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                      dashboard_address=None)
        client = Client(scheduler or cluster)
        try:  # a higher priority starts first
            futures = [client.submit(execute_run, r, threads, pure=False, key=f"run-{i}", priority=len(todo) - i)
                       for i, r in enumerate(todo)]
            owner = {f.key: r for f, r in zip(futures, todo)}
            for future in as_completed(futures):
                finished(owner[future.key], future.exception() if future.status == "error" else None)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    bar.close()
    seconds = time.perf_counter() - t0
    results = []
    for runs, root in zip(planned, roots):
        table = summary_table(runs, failed)
        root.mkdir(parents=True, exist_ok=True)
        failures = [f"- {r.label}: {failed[r.out_dir]}" for r in runs if r.out_dir in failed]
        (root / "sweep_summary.md").write_text(f"# Sweep of {Path(runs[0].notebook).name if runs else root.name}\n\n"
                                               f"{table}\n" + ("\nFailures:\n" + "\n".join(failures) + "\n"
                                                               if failures else ""))
        ran = [r for r in runs if r in todo]
        results.append(SweepResult(runs, [r for r in ran if r.out_dir not in failed], [r for r in runs if r not in ran],
                                   [(r, failed[r.out_dir]) for r in runs if r.out_dir in failed], table, seconds))
    return results
