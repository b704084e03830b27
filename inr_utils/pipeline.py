"""Headless notebook pipeline: Jupytext ``.py`` notebooks executed by papermill.

    python -m inr_utils.pipeline reproduce            # every numbered notebook, R = 3 and 6
    python -m inr_utils.pipeline run notebooks/01_data.py -p R 4 -p SEED 1
    python -m inr_utils.pipeline sweep notebooks/01_data.py -p R 3 6 -p SEED 0 1 [--executor dask] [--workers 2]
    python -m inr_utils.pipeline lab-settings .venv   # numbered .py notebooks open as notebooks

Each execution writes its executed notebook as ``OUT_DIR/<notebook>.ipynb`` only when
it succeeds (a failed one is kept beside it as ``<notebook>.failed.ipynb``), so a
failing run never replaces a good result, and its wall time and machine as
``OUT_DIR/run_info.json`` (``runs.record_run``).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

from . import REPO_ROOT
from .runs import RunOutputs, default_out_dir, record_run, write_if_changed

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
DEFAULT_R = (3, 6)  # the original's acceleration factors
#: Small parameters for CI (nbval and the papermill tests): seconds per notebook on 2 CPU cores.
SMOKE_PARAMETERS = {
    "01_data": {"R": 4, "T": 6, "N": 32, "COILS": 2},
    "02_global_inr": {"R": 4, "T": 6, "N": 32, "COILS": 2, "STEPS": 60, "TV_ITERS": 60, "LOG_LAMBDAS": [-3.0, -2.0],
                      "LOG_MUS": [-4.0], "MAX_EXTEND": 1,
                      "SIREN_HIDDEN": 32, "SIREN_LAYERS": 3, "SIREN_SECONDS": 2, "SIREN_FRAMES": 3},
    "03_lambda_study": {"R": 4, "T": 6, "N": 32, "COILS": 2, "STEPS": 60, "COND_STEPS": 120, "DENSE": 6},
    "04_liif_2d_vs_3d": {"R": 6, "T_LOW": 4, "N": 16, "T_HIGH": 8, "T_QUERY": 4, "T_EVAL": 8, "N_TRAIN": 4, "N_VAL": 1,
                         "N_TEST": 1, "EPOCHS": 2, "BATCH": 2, "UNET2D_CHANNELS": [4, 8], "UNET3D_CHANNELS": [4, 8]},
    "05_liif_architecture_search": {"R": 6, "T_LOW": 4, "N": 16, "T_HIGH": 8, "T_QUERY": 4, "T_EVAL": 8, "N_TRAIN": 4,
                                    "N_VAL": 1, "N_TEST": 1, "EPOCHS": 2, "BATCH": 2, "UNET_CHANNELS": [4, 8],
                                    "RDN_CHANNELS": 4, "RDN_BLOCKS": 1, "RDN_LAYERS": 2, "RDN_GROWTH": 4,
                                    "DC_CASCADE": [4], "DC_STAGES": 2, "TV_LOG_LAMBDAS": [-2.0], "TV_ITERS": 20},
}


#: extra parameter grids swept by `reproduce` (besides R), and how they name OUT_DIR
#: (DATA=None is the embedded phantom; "sunnybrook" the real test patient, for the issues' real-data targets;
#: RETRAIN=True: the LIIF models train from scratch, not from the shipped ones)
NOTEBOOK_GRID = {
    "02_global_inr": {"DATA": (None, "sunnybrook")},
    "03_lambda_study": {"DATA": (None, "sunnybrook")},
    "04_liif_2d_vs_3d": {"DATA": (None, "sunnybrook"), "RETRAIN": (True,)},
    "05_liif_architecture_search": {"T_LOW": (4, 8), "DATA": (None, "sunnybrook"), "RETRAIN": (True,)},
}
OUT_DIR_KEYS = {"T_LOW": "T"}


def numbered_notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def to_ipynb(notebook: Path):
    import jupytext

    nb = jupytext.read(notebook)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


def kernel_config(folder: Path):
    """Kernel-manager configuration for one execution: on POSIX the kernel talks over
    Unix sockets in ``folder`` (private to this execution) instead of TCP ports.

    With TCP, jupyter_client picks free ports by binding and releasing them before the
    kernel binds them itself; kernels started at the same moment by parallel sweep
    workers can draw the same port and one dies before replying ("Address already in
    use"). Socket files in a private folder cannot collide.
    """
    from traitlets.config import Config

    if os.name == "nt":  # no Unix sockets for zmq's ipc transport on Windows
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(Path(folder) / "kernel")}})


def execute(notebook, parameters: dict | None = None, out_dir=None, progress: bool = False) -> Path:
    """Execute one Jupytext notebook with papermill; returns the executed ``.ipynb``.

    ``out_dir`` defaults to outputs/<stem>/R<R>/ and is passed to the notebook as OUT_DIR,
    made absolute first: the kernel runs in the notebook's folder, where a relative path
    would point elsewhere.
    """
    import nbformat
    import papermill as pm

    from .explorer import HEADLESS_ENV

    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook not found: {notebook}")
    params = dict(parameters or {})
    more = {OUT_DIR_KEYS[k]: params[k] for k in OUT_DIR_KEYS if k in params}
    out_dir = Path(out_dir or params.get("OUT_DIR") or default_out_dir(
        notebook.stem, params.get("R", 6), params.get("DATA"), params.get("SEED", 0), **more)).resolve()
    params["OUT_DIR"] = str(out_dir)
    if isinstance(params.get("DATA"), str):
        params["DATA"] = _absolute_data(params["DATA"])
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{notebook.stem}.ipynb"
    # The kernel inherits the environment: HEADLESS_ENV=1 there, and OMP_NUM_THREADS named even when
    # the caller leaves it unset (torch's default then, which the kernel would take anyway), so that
    # run_info.json records the threads every run trained with: a wall-time budget buys more
    # training on more threads. The caller's environment is restored after.
    kernel_env = {HEADLESS_ENV: "1"}
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        kernel_env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    with mock.patch.dict(os.environ, kernel_env), tempfile.TemporaryDirectory(prefix="nb-") as tmp:
        src, dst = Path(tmp) / "input.ipynb", Path(tmp) / "executed.ipynb"
        nbformat.write(to_ipynb(notebook), src)
        try:
            pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name="python3", language="python",
                                cwd=str(notebook.parent), progress_bar=progress, log_output=False,
                                config=kernel_config(Path(tmp)))
        except BaseException:
            if dst.exists():
                os.replace(dst, out_dir / f"{notebook.stem}.failed.ipynb")
            raise
        os.replace(dst, final)
        record_run(final)  # reads the thread count the kernel inherited
    return final


def prepare(folder, parameters: dict | None = None) -> list[Path]:
    """Write every numbered notebook as ``.ipynb`` with its smoke parameters injected
    (papermill ``prepare_only``), OUT_DIR under ``folder``; nbval then executes them."""
    import nbformat
    import papermill as pm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for nb in numbered_notebooks():
        params = {**SMOKE_PARAMETERS.get(nb.stem, {}), **(parameters or {}), "OUT_DIR": str((folder / "out" / nb.stem).resolve())}
        src = folder / f".{nb.stem}.src.ipynb"
        nbformat.write(to_ipynb(nb), src)
        dst = folder / f"{nb.stem}.ipynb"
        pm.execute_notebook(str(src), str(dst), parameters=params, prepare_only=True, kernel_name="python3",
                            language="python", progress_bar=False)
        src.unlink()
        written.append(dst)
    return written


def parameters_markdown() -> str:
    """docs/parameters.md: every numbered notebook's parameters cell as a table (name, type,
    default, help), as papermill reads it (``papermill --help-notebook``)."""
    import jupytext
    from papermill.translators import PythonTranslator

    lines = ["# Notebook parameters", "",
             "Generated from each notebook's parameters cell by `python -m inr_utils.pipeline parameters-doc` "
             "(also run by `python -m inr_utils.report`); set any of them with `-p NAME VALUE` "
             "(`python -m inr_utils.pipeline run NOTEBOOK -p NAME VALUE`) or papermill.", ""]
    for nb in numbered_notebooks():
        cell = next(c for c in jupytext.read(nb).cells if "parameters" in c.metadata.get("tags", []))
        lines += [f"## {nb.stem}", "", "| parameter | type | default | meaning |", "|---|---|---|---|"]
        for p in PythonTranslator.inspect(cell):
            lines.append(f"| `{p.name}` | {p.inferred_type_name} | `{p.default}` | {p.help.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)


def write_parameters_doc(path: Path = REPO_ROOT / "docs" / "parameters.md") -> Path:
    write_if_changed(path, parameters_markdown())
    return path


def _absolute_data(data: str) -> str:
    """A DATA path relative to the caller made absolute (the kernel runs in notebooks/);
    a ``::slice`` suffix is kept, specs such as ``sunnybrook:...`` are left alone."""
    path, sep, slice_part = data.partition("::")
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or not candidate.exists():
        return data
    return str(candidate.resolve()) + sep + slice_part


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def reproduce(R_values=DEFAULT_R, only: str | None = None, data: str | None = None, workers: int | None = None) -> list:
    """Run every numbered notebook (or those whose name starts with ``only``) for each R and
    each point of its NOTEBOOK_GRID (``data``: keep only DATA = that value, "phantom" for None),
    through the sweep machinery (``inr_utils.sweep``): a run already complete for the same
    parameters and code is skipped, a failing one is reported and the others go on; ``workers``
    runs at a time share the cores (None: as many as there are cores or runs, one thread
    each when they equal; the models here are small, so runs side by side use the cores
    better than one run with several threads). All notebooks' runs share one pool and start
    longest first (by the time each took when it last ran, ``sweep.longest_first``), so the
    cores stay busy to the end. Returns the failures."""
    from .sweep import sweep_many

    notebooks = [nb for nb in numbered_notebooks() if not only or nb.stem.startswith(only)]
    if not notebooks:
        raise SystemExit(f"no notebook matches {only!r} in {NOTEBOOK_DIR}")
    t_all = time.perf_counter()
    plans = []
    for nb in notebooks:
        grid = {"R": list(R_values), **{k: list(v) for k, v in NOTEBOOK_GRID.get(nb.stem, {}).items()}}
        if data is not None and "DATA" in grid:
            grid["DATA"] = [None if data == "phantom" else data]
        elif data not in (None, "phantom"):  # a notebook without a DATA grid runs on the phantom only
            continue
        plans.append((nb, grid))
    failures = []
    for (nb, _), result in zip(plans, sweep_many(plans, workers=workers) if plans else []):
        print(f"[reproduce] {nb.name}: {len(result.executed)} run, {len(result.skipped)} already complete, "
              f"{len(result.failed)} failed", flush=True)
        failures += result.failed
    print(f"[reproduce] all notebooks done in {(time.perf_counter() - t_all) / 60:.1f} min", flush=True)
    from .report import update_readme

    update_readme()
    write_parameters_doc()
    return failures


#: notebook -> "module:function" building a run's ``summary`` block (tables, target verdicts)
#: from its metrics.json record, as the notebook does at the end of a run
SUMMARISERS = {"03_lambda_study": "inr_utils.lambda_study:run_summary",
               "04_liif_2d_vs_3d": "inr_utils.liif:run_summary_2d_vs_3d",
               "05_liif_architecture_search": "inr_utils.liif:run_summary"}


def resummarise(outputs: Path = REPO_ROOT / "outputs") -> list[Path]:
    """Rebuild the ``summary`` block of every finished run of the notebooks in SUMMARISERS from
    its own record with today's code (same numbers; a target's rule may have changed since
    the run), each metrics.json replaced atomically. Returns the files whose summary changed."""
    import importlib

    changed = []
    for notebook, where in SUMMARISERS.items():
        module, name = where.split(":")
        build = getattr(importlib.import_module(module), name)
        for path in sorted((outputs / notebook).glob("R*/metrics.json")):
            record = json.loads(path.read_text())
            new = build(record)
            if json.loads(json.dumps(new)) != record.get("summary"):
                record["summary"] = new
                out = RunOutputs(path.parent)  # the notebooks' own atomic writer and format
                out.write_json(path.name, record)
                out.commit()
                changed.append(path)
    return changed


#: JupyterLab settings written by ``make lab``: a double-click opens a Python file (the numbered
#: Jupytext notebooks) with Jupytext's notebook view instead of the text editor
LAB_SETTINGS = {"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}


def write_lab_settings(prefix) -> Path:
    """Merge LAB_SETTINGS into ``<prefix>/share/jupyter/lab/settings/overrides.json``, the
    defaults JupyterLab installed in the environment ``prefix`` reads (a user's own settings
    still win). Returns the file."""
    path = Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    current = {}
    if path.is_file():
        try:
            current = json.loads(path.read_text() or "{}")
        except json.JSONDecodeError as e:
            raise SystemExit(f"{path} is not valid JSON ({e}); fix or remove it") from None
    for plugin, values in LAB_SETTINGS.items():
        merged = dict(current.get(plugin, {}))
        for key, value in values.items():
            merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
        current[plugin] = merged
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m inr_utils.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    rep = sub.add_parser("reproduce", help="run every numbered notebook headlessly")
    rep.add_argument("--R", type=float, nargs="+", default=list(DEFAULT_R), help="acceleration factors")
    rep.add_argument("--only", help="run only notebooks whose name starts with this (e.g. 01)")
    rep.add_argument("--data", help="run only the grid points with this DATA ('phantom' or 'sunnybrook')")
    rep.add_argument("--workers", type=int, default=None,
                     help="runs at a time (each gets cores / workers threads; default: min(runs, cores))")
    swp = sub.add_parser("sweep", help="run a notebook over the Cartesian product of parameter values")
    swp.add_argument("notebook")
    swp.add_argument("-p", nargs="+", action="append", default=[], metavar="NAME VALUE",
                     help="a parameter and its values (repeat -p for each swept parameter)")
    swp.add_argument("--out-root", help="folder of the runs (default outputs/<notebook>/)")
    swp.add_argument("--executor", default="local", choices=("local", "dask"))
    swp.add_argument("--scheduler", help="address of a running Dask scheduler (with --executor dask)")
    swp.add_argument("--workers", type=int, default=None, help="runs at a time (default: min(runs, cores))")
    swp.add_argument("--threads", type=int, default=None, help="threads per run (default: cores // workers)")
    run = sub.add_parser("run", help="run one notebook with parameters")
    run.add_argument("notebook")
    run.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    run.add_argument("--out-dir")
    prep = sub.add_parser("prepare", help="write the notebooks as .ipynb with smoke parameters (for nbval)")
    prep.add_argument("folder")
    sub.add_parser("parameters-doc", help="write docs/parameters.md from the notebooks' parameters cells")
    lab = sub.add_parser("lab-settings", help="make JupyterLab in an environment open the .py notebooks as notebooks")
    lab.add_argument("prefix", help="the environment's prefix (e.g. .venv)")
    sub.add_parser("resummarise", help="rebuild the finished runs' summaries and target verdicts with today's code")
    ship = sub.add_parser("ship-models", help="ship the trained models of finished LIIF runs (04, 05) with the package")
    ship.add_argument("run_dirs", nargs="+", help="run folders holding models/ and metrics.json")
    args = parser.parse_args(argv)
    if args.cmd == "reproduce":
        R_values = [int(r) if float(r).is_integer() else r for r in args.R]
        if reproduce(R_values, args.only, args.data, args.workers):
            raise SystemExit("some runs failed (listed above); their failed notebooks are kept in their folders")
    elif args.cmd == "sweep":
        from .sweep import sweep

        bad = [p[0] for p in args.p if len(p) < 2]
        if bad:
            parser.error(f"-p {bad[0]}: give the parameter's values after its name")
        grid = {p[0]: [_parse_value(v) for v in p[1:]] for p in args.p}
        result = sweep(args.notebook, grid, args.out_root, args.executor, args.workers, args.scheduler, args.threads)
        print(result.table)
        print(f"{len(result.executed)} run, {len(result.skipped)} already complete, {len(result.failed)} failed "
              f"in {result.seconds:.0f} s")
        for run, message in result.failed:
            print(f"FAILED {run.label}: {message}\n  notebook kept: {Path(run.out_dir) / Path(run.notebook).stem}.failed.ipynb")
        if result.failed:
            raise SystemExit(1)
    elif args.cmd == "parameters-doc":
        print(f"wrote {write_parameters_doc()}")
    elif args.cmd == "lab-settings":
        print(f"wrote {write_lab_settings(args.prefix)}")
    elif args.cmd == "resummarise":
        from .report import update_readme

        changed = resummarise()
        print(f"{len(changed)} run summaries rebuilt" + "".join(f"\n  {p}" for p in changed))
        print("results page and README summary", "rebuilt" if update_readme() else "unchanged")
    elif args.cmd == "ship-models":
        from .liif import ship

        for run_dir in args.run_dirs:
            print(f"shipped {ship(run_dir)}")
    elif args.cmd == "prepare":
        for path in prepare(args.folder):
            print(path)
    else:
        params = {k: _parse_value(v) for k, v in args.p}
        print(execute(args.notebook, params, args.out_dir, progress=True))


if __name__ == "__main__":
    main()
