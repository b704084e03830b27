"""Benchmark of the scan-specific reconstructions against BART (a script, not a test).

    .venv/bin/python benchmarks/global_recon.py                        # embedded phantom, R = 6
    .venv/bin/python benchmarks/global_recon.py --data sunnybrook      # the test patient's mid slice
    .venv/bin/python benchmarks/global_recon.py path/to/case.h5        # any file in the k-space layout
    .venv/bin/python benchmarks/global_recon.py --slices default --R 4 6 8   # many real slices
    .venv/bin/python benchmarks/global_recon.py --slices tune --R 6    # training / validation slices
    .venv/bin/python benchmarks/global_recon.py --slices default --R 4 6 8 --workers 2 --retime   # then time side by side
    .venv/bin/python benchmarks/global_recon.py --data sunnybrook --scaling-only   # time per step vs voxels

Every method runs in a fresh process per case (peak memory = that process's peak resident
set, torch included) and chooses its weights by the same search (``inr_utils.selection``:
relative weights, coordinate-wise, extended past an edge, PSNR against the target), from its
own starting grid (``selection.DEFAULT_SEARCH``): ZF; our temporal TV (``TV``) and temporal +
spatial TV (``TV+S``), each also refining the coil maps (``TV+maps``, ``TV+S+maps``; only
``TV+S+maps`` runs by default); the INRs (``lowrank``, ``hashgrid``); and, when ``bart`` is on PATH
(Debian package ``bart``), BART ``pics -S`` with temporal TV (``-R T:1024:0:lt``), with
l1-wavelet + temporal TV (``-R W:3:0:lw -R T:1024:0:lt``) and with locally low rank + temporal
TV (``-b 8 -R L:3:3:ll -R T:1024:0:lt``), each at ``-i 100`` and ``-i 300``, on the same
k-space and coil maps. ``seconds`` is the chosen setting's run (the search's
total is kept in the JSON). Per-case rows, then per R the margins of the default INR over
BART's best (any regulariser, any budget) and over our best TV (any of the TV rows run), their
median and worst slice, the time ratio (median over slices of INR seconds / seconds of
BART's best run) and the peak memory. The searches' seconds come from runs whose neighbours
differ; ``--retime`` (after the searches) fits each slice's default INR, BART's best and our
best TV once more at their chosen weights, the slice's fits started together, and the ratios
then come from that one run.

Simulated cases are reconstructed with coil maps estimated from their undersampled data
(``--maps espirit``, as a user's scan must be; ``--maps true`` gives the known-map numbers,
the inverse crime of a simulation) at noise std 1e-3 of a peak-1 image or, with
``--snr-db``, at a given image SNR (30 dB is a realistic scan); both settings enter the
results' name. With estimated maps the INRs refine them jointly with the image
(``inr.CoilMapRefinement``, grid ``inr.default_map_grid``; ``--map-grid 0`` turns it off),
and so do the ``+maps`` TV rows; ``TV``, ``TV+S`` and BART use them as estimated. ``--maps inr`` gives every method the ESPIRiT maps as
the INR's fit refined them (its chosen weights in the ESPIRiT results): what the refined
maps are worth to BART and to our TV. ``--maps nlinv`` gives every method BART's own joint
estimate of the maps (``nlinv``; the INRs refine it further). Results are kept per (case, R, method) in ``benchmarks/results/<name>.json`` so an
interrupted run resumes; the table goes to ``benchmarks/results/<name>.md`` and the README.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from inr_utils import REPO_ROOT  # noqa: E402
from inr_utils.summary import counted  # noqa: E402

BART_METHODS = tuple(f"BART {terms} -i {iters}" for terms in ("T", "W+T", "L+T") for iters in (100, 300))
#: ``+maps``: our TV refining the coil maps jointly with the image, as the INRs do (``tv.tv_recon``'s ``map_grid``)
MAPS = "+maps"
TV_METHODS = ("TV", "TV+S", "TV" + MAPS, "TV+S" + MAPS)
INR_METHODS = ("lowrank", "hashgrid")
OUR_METHODS = ("ZF",) + TV_METHODS + INR_METHODS


def _plain(method: str) -> str:
    """The row ``method`` refines the maps of (``TV+S+maps`` -> ``TV+S``); itself otherwise."""
    return method.removesuffix(MAPS)


def _reconstructor(method: str, opts: dict):
    from inr_utils import bart, inr, tv

    if method in TV_METHODS:
        return tv.reconstructor(opts["tv_iters"], map_grid=opts["map_grid"] if method != _plain(method) else 0)
    if method.startswith("BART"):
        terms = method.split()[1]  # "T", "W+T" or "L+T": temporal TV and the second term
        return bart.reconstructor(int(method.split()[-1]), second=terms[0] if "+" in terms else None)
    return inr.reconstructor(inr.default_settings(method, opts["shape"], steps=opts.get("inr_steps"),
                                                  map_grid=opts.get("map_grid")), progress=False)


def _map_lr(method: str, opts: dict):
    """The learning rate of the coil maps' correction for a row that refines them, else None."""
    from inr_utils import inr, tv

    if not opts["map_grid"] or method == "ZF" or method.startswith("BART"):
        return None
    if method in TV_METHODS:  # only the +maps rows refine
        return tv.MAP_LR if method != _plain(method) else None
    settings = inr.default_settings(method, opts["shape"])
    return settings.map_lr or settings.lr


def _job(method, path, opts, queue, weights=None):
    """One method on one case in this (fresh) process: its search, or with ``weights`` (relative
    log10 lambda, log10 mu) only one fit on all the data at them, timed without PSNR monitoring."""
    try:
        import os

        import torch

        from inr_utils.runs import exit_with_parent

        exit_with_parent()  # a killed benchmark leaves no fit running
        torch.set_num_threads(opts["threads"])
        os.environ["OMP_NUM_THREADS"] = str(opts["threads"])  # BART's OpenMP threads: the same budget
        from inr_utils import io, metrics, selection

        acq = io.load_kspace(path)
        opts["shape"] = acq.target.shape
        if opts.get("map_grid") is None:  # refine estimated maps; the simulation's own or the INR's are used as they are
            from inr_utils import inr

            opts["map_grid"] = 0 if opts.get("fixed_maps") else inr.map_grid_for(acq)
        if weights is not None:
            y = torch.from_numpy(acq.kspace)
            lam, mu = selection.absolute(*weights, selection.data_scale(acq.zero_filled()))
            reconstruct = _reconstructor(method, opts)
            t0 = time.perf_counter()
            x, *_ = reconstruct(acq.op, y, lam, mu, None)
            queue.put({"seconds": time.perf_counter() - t0, "psnr": metrics.psnr(x, acq.target)})
            return
        t0 = time.perf_counter()
        if method == "ZF":
            x, row = acq.zero_filled(), {}
            row["seconds"] = row["seconds_total"] = time.perf_counter() - t0
        else:
            sel = selection.select_weights(_reconstructor(method, opts), acq, selection.DEFAULT_SEARCH[_plain(method).split(" -i")[0]])
            x = sel.recon
            row = {"log_lambda": sel.log_lambda, "log_mu": sel.log_mu, "at_edge": sel.at_edge, "trials": sel.trials,
                   "seconds": sel.seconds_final, "seconds_total": sel.seconds_total}
            map_lr = _map_lr(method, opts)
            if map_lr is not None:
                row["map_lr"] = map_lr  # the maps' learning rate these results were fitted with
            if method in INR_METHODS:  # and the INR's steps
                from inr_utils import inr

                row["steps"] = inr.default_settings(method, opts["shape"], steps=opts.get("inr_steps")).steps
        row.update(psnr=metrics.psnr(x, acq.target), ssim=metrics.ssim(x, acq.target),
                   peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        queue.put(row)
    except BaseException as e:  # report, so the parent never waits on a dead child
        queue.put({"error": f"{type(e).__name__}: {e}"})


def run_isolated(method, path, opts, weights=None):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_job, args=(method, str(path), dict(opts), q, weights))
    p.start()
    res = q.get()
    p.join()
    if "error" in res:
        raise RuntimeError(f"{method} on {path}: {res['error']}")
    return res


def scaling(threads: int, name: str = "lowrank"):
    """Seconds per INR step against the number of voxels, on the real cine resampled."""
    import torch

    torch.set_num_threads(threads)
    from inr_utils import inr, io

    def seconds_per_step(model, op, y, map_grid):
        inr.fit(model, op, y, log_lambda=-3.5, mu=1e-4, steps=5, progress=False, map_grid=map_grid)  # warm-up
        res = inr.fit(model, op, y, log_lambda=-3.5, mu=1e-4, steps=40, log_every=10**6, progress=False, map_grid=map_grid)
        return res.seconds / res.steps

    rows = []
    for T, N in [(10, 64), (20, 64), (20, 96), (20, 128), (40, 128), (20, 192)]:
        acq = io.load_case("sunnybrook", R=6, seed=0, T=T, N=N, coils=4)
        settings = inr.default_settings(name, acq.target.shape)
        op, y = acq.op, torch.from_numpy(acq.kspace)
        plain, refined = (seconds_per_step(inr.build(name, acq.target.shape, **settings.model), op, y, grid)
                          for grid in (0, inr.default_map_grid(acq.target.shape)))
        vox = T * N * N
        rows.append((f"{T} x {N} x {N}", vox, plain, plain / vox * 1e6, refined, refined / vox * 1e6))
    lines = [f"`{name}` time per step (spatial and temporal TV on; with the coil maps as given, and refined jointly on "
             f"the default grid N/8) against cine size (real cine resampled, R = 6, 4 coils), {counted(threads, 'thread')}. "
             f"Command: `{shlex.join(['.venv/bin/python', 'benchmarks/global_recon.py'] + sys.argv[1:])}`",
             "", "| cine (T x H x W) | voxels | s / step | microseconds / step / voxel | s / step, maps refined | "
                 "microseconds / step / voxel, maps refined |", "|---|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.3f} | {r[4]:.4f} | {r[5]:.3f} |" for r in rows]
    return "\n".join(lines)


def slice_specs(which: str) -> list[str]:
    """``default``: every slice of the test patient and the mid-ventricular slice of each
    other patient; ``tune``: the mid-ventricular slices of the training and validation patients."""
    from inr_utils import io

    index = io.sunnybrook_slices()
    mids = {p: io.mid_slice(s) for p, s in index.items()}
    if which == "tune":
        return [f"sunnybrook:{p}/{mids[p]}" for g in ("train", "val") for p in io.SUNNYBROOK_SPLIT[g]]
    if which == "default":
        test = io.SUNNYBROOK_SPLIT["test"][0]  # the test patient first (its mid slice, then the others)
        specs = [f"sunnybrook:{test}/{mids[test]}"] + [f"sunnybrook:{test}/{s}" for s in index[test] if s != mids[test]]
        return specs + [f"sunnybrook:{p}/{mids[p]}" for p in index if p != test]
    return [which]


def case_specs(slices: str, first=None, cases=None) -> list[str]:
    """The cases of ``slice_specs(slices)`` to run: the first ``first``, and the ones labelled
    in ``cases`` (e.g. "SCD0000101/slice_006"); all without either."""
    specs = slice_specs(slices)
    if first is not None and first < 1:
        raise ValueError(f"--first must be >= 1, got {first}")
    unknown = set(cases or ()) - {_label(s) for s in specs}
    if unknown:
        raise ValueError(f"--cases {sorted(unknown)} are not cases of --slices {slices}")
    if first is None and not cases:
        return specs
    head = specs[:first] if first is not None else []
    return head + [s for s in specs if _label(s) in (cases or ()) and s not in head]


def simulated_case(spec, R, snr_db=None, coil_maps=None):
    """A benchmark case: ``spec`` simulated at R with 4 coils, per-frame VD masks, seed 0, 20 x
    128 x 128, noise 1e-3 or ``snr_db``; reconstructed with the simulation's maps or, with
    ``coil_maps``, maps estimated from its undersampled data."""
    from inr_utils import io

    return io.load_case(spec, R=R, seed=0, T=20, N=128, coils=4, snr_db=snr_db, coil_maps=coil_maps)


def _label(spec) -> str:
    return (spec or "phantom").replace("sunnybrook:", "")


def _key(spec, R, method) -> str:
    return f"{_label(spec)}|{R:g}|{method}"


def _fmt(v, f="{:.2f}"):
    return "" if v is None else f.format(v)


def _best(results: dict, case: str, R, candidates):
    """The name of the row of ``candidates`` with the highest PSNR on (case, R), or None."""
    rows = {m: results.get(f"{case}|{R:g}|{m}") for m in candidates}
    return max((m for m, r in rows.items() if r), key=lambda m: rows[m]["psnr"], default=None)


def retime_jobs(results: dict, specs, Rs, methods, default: str) -> list[tuple]:
    """(spec, R, method, (log10 lambda, log10 mu)) for each case with every method's result:
    the default INR, BART's best and our best TV at the weights their searches chose, case by
    case, so that a case's fits start together."""
    jobs = []
    for R in Rs:
        for spec in specs:
            case = _label(spec)
            if default not in methods or any(f"{case}|{R:g}|{m}" not in results for m in methods):
                continue
            chosen = [default, _best(results, case, R, [m for m in BART_METHODS if m in methods]),
                      _best(results, case, R, [m for m in TV_METHODS if m in methods])]
            for m in dict.fromkeys(c for c in chosen if c):
                r = results[_key(spec, R, m)]
                jobs.append((spec, R, m, (r["log_lambda"], r.get("log_mu"))))
    return jobs


def outdated_rows(results: dict, inr_methods, steps_override=None, refines=True) -> list[str]:
    """A line naming how many INR rows were fitted with other steps or another maps' learning
    rate than today's defaults (``inr.default_settings`` for a 20 x 128 x 128 case; a row
    without the record predates it and counts as other), so that a table kept across default
    changes says which of its rows are out of date; [] when none are."""
    from inr_utils import inr

    lines = []
    for m in inr_methods:
        now = inr.default_settings(m, (20, 128, 128), steps=steps_override)
        rows = [r for k, r in results.items() if k.endswith("|" + m)]
        old = [r for r in rows if r.get("steps") != now.steps
               or (refines and r.get("map_lr") != (now.map_lr or now.lr))]
        if old:
            lines += ["", f"**Out of date:** {len(old)} of {len(rows)} `{m}` rows were fitted with settings other than "
                      f"today's defaults ({now.steps} steps" + (f", maps' learning rate {now.map_lr or now.lr:g}" if refines else "")
                      + "; rows that predate the record count as other): delete their keys from the JSON and rerun the "
                      "command above for current numbers."]
    return lines


def _time_ratio(inr_row: dict, bart_row: dict) -> tuple:
    """INR seconds / BART seconds, and whether both come from one side-by-side retiming run."""
    a, b = inr_row.get("retimed"), bart_row.get("retimed")
    if a and b and a["run"] == b["run"]:
        return a["seconds"] / b["seconds"], True
    return inr_row["seconds"] / bart_row["seconds"], False


def summary(results: dict, Rs, default: str, methods, bart_ok: bool) -> list[str]:
    """Per R, over the cases where every method has a result: the default INR's margins over
    BART's best and over our best TV (median, worst slice), the median time ratio to BART's
    best run, the peak memory, which BART setting was best how often, and the targets."""
    lines, verdicts, retimed, slices_at = [], [], {}, {}
    inr_only = not any(m in methods for m in (*BART_METHODS, *TV_METHODS))  # e.g. a tuning run
    for R in Rs:
        cases = sorted({k.split("|")[0] for k in results if k.split("|")[1] == f"{R:g}"})
        rows, best_bart, best_tv = [], {}, {}
        for case in cases:
            get = lambda m: results.get(f"{case}|{R:g}|{m}")
            if default not in methods or any(get(m) is None for m in methods):
                continue  # a case still running would compare against an incomplete set of methods
            inr_row = get(default)
            tv_name = _best(results, case, R, [m for m in TV_METHODS if m in methods])
            tv_best = get(tv_name) if tv_name else None
            best_tv[tv_name] = best_tv.get(tv_name, 0) + 1
            bart = [m for m in BART_METHODS if m in methods]
            bart_name = _best(results, case, R, bart)
            bart_best = get(bart_name) if bart_name else None
            best_bart[bart_name] = best_bart.get(bart_name, 0) + 1
            ratio, side_by_side = _time_ratio(inr_row, bart_best) if bart_best else (None, False)
            retimed[R] = retimed.get(R, 0) + side_by_side
            rows.append((inr_row["psnr"] - bart_best["psnr"] if bart_best else None,
                         inr_row["psnr"] - tv_best["psnr"] if tv_best else None,
                         ratio, inr_row["peak_mb"], case, inr_row["psnr"]))
        if not rows:
            continue
        slices_at[R] = len(rows)

        def stat(i, fn):
            vals = [r[i] for r in rows if r[i] is not None]
            return fn(vals) if vals else None

        if inr_only:
            lines.append(f"| {R:g} | {len(rows)} | {_fmt(stat(5, statistics.median))} | {_fmt(stat(5, min))} | "
                         f"{_fmt(stat(3, max), '{:.0f}')} |")
            continue
        lines.append(f"| {R:g} | {len(rows)} | {_fmt(stat(0, statistics.median))} | {_fmt(stat(0, min))} | "
                     f"{_fmt(stat(1, statistics.median))} | {_fmt(stat(1, min))} | {_fmt(stat(2, statistics.median))} | "
                     f"{_fmt(stat(3, max), '{:.0f}')} | {_counts(best_bart)} | {_counts(best_tv)} |")
        if R == 6 and stat(0, min) is not None and stat(1, min) is not None:
            checks = [("median margin over BART's best >= +1 dB", stat(0, statistics.median) >= 1),
                      ("no slice below BART's best", stat(0, min) >= 0),
                      ("median margin over our best TV >= +1 dB", stat(1, statistics.median) >= 1),
                      ("median time ratio <= 1", stat(2, statistics.median) <= 1),
                      ("peak memory < 4 GB", stat(3, max) < 4096)]
            verdicts = ["", f"Targets at R = 6 over these {len(rows)} slices: "
                        + "; ".join(f"{name}: {'met' if ok else '**missed**'}" for name, ok in checks) + "."]
            verdicts += by_patient(rows)
    head = [f"Summary (default INR `{default}`; margins in dB, PSNR of the INR minus the other's, per slice; only "
            "slices with every method's result):", "",
            "| R | slices | median margin over BART's best | worst slice | median margin over our best TV | worst slice | "
            "median time ratio INR / BART's best | INR peak memory (MB, max) | BART's best setting | our best TV |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    if inr_only:
        head = [f"Summary (`{default}`: no BART or TV row to take a margin over; PSNR in dB over the slices):", "",
                "| R | slices | median PSNR | worst slice | peak memory (MB, max) |", "|---|---|---|---|---|"]
    runs = sorted({r["retimed"]["run"] for r in results.values() if r.get("retimed")})
    timing = ["", "Time ratios: " + "; ".join(
        f"R = {R:g}: {retimed.get(R, 0)} of {counted(n, 'slice')}" for R, n in slices_at.items())
        + " from one run that timed each slice's INR and BART's best side by side, one fit each at the chosen weights, "
        f"started together (`--retime`, {', '.join(runs)}); the others from the seconds of each method's own search run."
        ] if runs and slices_at else []
    return head + lines + verdicts + other_representations(results, Rs, default, methods) + timing + ([] if bart_ok else ["", "BART was not on PATH (`apt-get install bart` adds it): no BART rows."])


def other_representations(results: dict, Rs, default: str, methods) -> list[str]:
    """Per INR of ``methods`` other than the default and per R, over the cases with both results:
    its PSNR minus the default INR's (median and range, and the test patient's slices apart when
    the cases hold other patients' too) and the median ratio of the chosen settings' seconds
    (other / default). Says how far the default representation is ahead, slice by slice."""
    lines = []
    for other in (m for m in methods if m in INR_METHODS and m != default):
        for R in Rs:
            cases = sorted(k.split("|")[0] for k in results if k.endswith(f"|{R:g}|{other}"))
            pairs = [(case, results[f"{case}|{R:g}|{other}"], results[f"{case}|{R:g}|{default}"])
                     for case in cases if f"{case}|{R:g}|{default}" in results]
            if not pairs:
                continue
            diffs = [a["psnr"] - b["psnr"] for _, a, b in pairs]
            ratio = statistics.median(a["seconds"] / b["seconds"] for _, a, b in pairs)
            test_diffs = [d for (case, _, _), d in zip(pairs, diffs) if _on_test_patient(case)]
            split = (f"; the test patient's {counted(len(test_diffs), 'slice')}, median {statistics.median(test_diffs):+.2f} dB"
                     if test_diffs and len(test_diffs) < len(diffs) else "")
            lines += ["", f"`{other}` against `{default}` at R = {R:g} (PSNR of `{other}` minus `{default}`'s, per slice, "
                      f"each at the weights its own search chose): {counted(len(diffs), 'slice')}, median {statistics.median(diffs):+.2f} dB "
                      f"(from {min(diffs):+.2f} to {max(diffs):+.2f}), `{other}` higher on {sum(d > 0 for d in diffs)}"
                      f"{split}; median time ratio {other} / {default} {ratio:.2f} (seconds of each chosen setting's fit)."]
    return lines


def _counts(best: dict) -> str:
    """"name xN" per method that was best on N slices, most often first."""
    return ", ".join(f"{m} x{n}" for m, n in sorted(best.items(), key=lambda kv: -kv[1]) if m)


def _on_test_patient(case: str) -> bool:
    """Whether a case label (``"<patient>/<slice>"``) is a slice of the Sunnybrook test patient."""
    from inr_utils import io

    return case.startswith(io.SUNNYBROOK_SPLIT["test"][0] + "/")


def by_patient(rows) -> list[str]:
    """The R = 6 margins over BART's best and over our best TV, each split into the test
    patient's slices and the other (training and validation) patients' slices, when the
    cases hold both."""
    lines = []
    for index, other in ((0, "BART's best"), (1, "our best TV")):
        groups = {"the test patient's": [r[index] for r in rows if _on_test_patient(r[4]) and r[index] is not None],
                  "the training and validation patients'": [r[index] for r in rows if not _on_test_patient(r[4])
                                                            and r[4].startswith("SCD") and r[index] is not None]}
        if all(groups.values()):
            lines += ["", f"Margin over {other} at R = 6 by patient: " + "; ".join(
                f"{name} {counted(len(v), 'slice')}, median {statistics.median(v):+.2f} dB (from {min(v):+.2f} to {max(v):+.2f})"
                for name, v in groups.items()) + "."]
    return lines


def refined_by_inr(acq, spec, R, args, source_name):
    """``acq`` (ESPIRiT maps) with the maps that the default INR's fit refines at the weights
    it chose on the same case in the ``source_name`` results (one fit, ``args.threads`` threads)."""
    import dataclasses

    import torch

    from inr_utils import inr, selection
    from inr_utils.report import BENCHMARK_RESULTS

    store = BENCHMARK_RESULTS / f"{source_name}.json"
    chosen = json.loads(store.read_text()).get(_key(spec, R, args.default_inr)) if store.is_file() else None
    if chosen is None:
        raise SystemExit(f"--maps inr needs {args.default_inr}'s result for {_label(spec)} at R = {R:g} in {store.name}: "
                         "run the benchmark with the ESPIRiT maps first")
    torch.set_num_threads(args.threads)
    shape = acq.target.shape
    settings = inr.default_settings(args.default_inr, shape, steps=args.inr_steps, map_grid=inr.default_map_grid(shape))
    lam, mu = selection.absolute(chosen["log_lambda"], chosen["log_mu"], selection.data_scale(acq.zero_filled()))
    _, _, smaps = inr.reconstructor(settings, progress=False)(acq.op, torch.from_numpy(acq.kspace), lam, mu, None)
    how = {**acq.meta["coil_maps"], "refined_by": args.default_inr, "map_grid": settings.map_grid}
    return dataclasses.replace(acq, smaps=smaps, meta={**acq.meta, "coil_maps": how})


def maps_comparison(estimated: dict, known: dict, Rs, methods, maps: str, known_name: str) -> tuple[list[str], str]:
    """Per method, PSNR with estimated coil maps minus PSNR with the known maps, over the cases
    where both have every method's result (same data, mask and noise), as table lines; and a
    verdict: within 1 dB or not, and whether the methods' ranking by PSNR changes on any case.
    With the known maps a ``+maps`` row has nothing to refine (grid 0), so where the known
    results lack it, its plain row stands in; the ranking leaves the ``+maps`` rows out."""
    known = dict(known)
    for key in list(estimated):
        case_r, m = key.rsplit("|", 1)
        if m != _plain(m) and key not in known and f"{case_r}|{_plain(m)}" in known:
            known[key] = known[f"{case_r}|{_plain(m)}"]
    lines, worst, changed, cases = [], 0.0, [], set()
    for R in Rs:
        both = sorted({k.split("|")[0] for k in estimated if k.split("|")[1] == f"{R:g}"}
                      & {k.split("|")[0] for k in known if k.split("|")[1] == f"{R:g}"})
        both = [c for c in both if all(f"{c}|{R:g}|{m}" in estimated and f"{c}|{R:g}|{m}" in known for m in methods)]
        if not both:
            continue
        cases.update(both)
        for m in methods:
            diffs = [estimated[f"{c}|{R:g}|{m}"]["psnr"] - known[f"{c}|{R:g}|{m}"]["psnr"] for c in both]
            worst = max(worst, max(abs(d) for d in diffs))
            lines.append(f"| {R:g} | {m} | {len(both)} | {statistics.median(diffs):+.2f} | {min(diffs):+.2f} | {max(diffs):+.2f} |")
        # methods ranked as the README compares them: each BART prior by the better of its two budgets;
        # the +maps rows are left out (with known maps they equal their plain rows: a tie, not a rank)
        families = list(dict.fromkeys(m.split(" -i")[0] for m in methods if m == _plain(m)))
        for c in both:
            best = lambda res, f: max(res[f"{c}|{R:g}|{m}"]["psnr"] for m in methods if m.split(" -i")[0] == f)
            rank = lambda res: sorted(families, key=lambda f: -best(res, f))
            if rank(estimated) != rank(known):
                changed.append(f"{c} (R = {R:g}): known {' > '.join(rank(known))}; estimated {' > '.join(rank(estimated))}")
    if not lines:
        return [], f"Coil maps estimated ({maps}) against known (`{known_name}`): no case has every method's result in both."
    return ([f"Coil maps estimated ({maps}) against known (`{known_name}`): PSNR with estimated maps minus PSNR with "
             "the known maps (dB), same data, masks and noise, over the cases with every method's result in both.", "",
             "| R | method | cases | median | min | max |", "|---|---|---|---|---|---|", *lines],
            f"Estimated ({maps}) against known coil maps (`{known_name}`, {counted(len(cases), 'case')}): every method within 1 dB of its known-map PSNR: {'met' if worst <= 1 else '**missed**'} (largest "
            f"difference {worst:.2f} dB). Ranking of the methods by PSNR (each BART prior by its better budget): "
            + ("unchanged on every case." if not changed else "changes on " + "; ".join(changed) + "."))


def _save(results: dict, store: Path):
    from inr_utils.runs import write_text_atomic

    store.parent.mkdir(exist_ok=True)
    write_text_atomic(store, json.dumps(results, indent=1) + "\n")


def retime(jobs, results: dict, store: Path, case_file, opts: dict, workers: int, failures: list):
    """Run ``retime_jobs`` in order, ``workers`` at a time, each in a fresh process; each result
    goes under its row's ``retimed`` (seconds, PSNR, this run's start) and is saved at once."""
    from tqdm.auto import tqdm

    if workers < 2:
        print("note: --retime with --workers 1 times the fits one after another, not side by side")
    run = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with ThreadPoolExecutor(max(1, workers)) as pool:
        futures = {pool.submit(run_isolated, m, case_file(spec, R), opts, w): _key(spec, R, m) for spec, R, m, w in jobs}
        for future in tqdm(as_completed(futures), total=len(futures), desc="retime"):
            key = futures[future]
            try:
                r = future.result()
            except RuntimeError as e:
                failures.append(str(e))
                tqdm.write(f"FAILED {key}: {e}")
                continue
            results[key]["retimed"] = {"seconds": r["seconds"], "psnr": r["psnr"], "run": run}
            tqdm.write(f"{key:45s} retimed {r['seconds']:7.1f} s (search run {results[key]['seconds']:7.1f} s) "
                       f"PSNR {r['psnr']:6.2f} (search run {results[key]['psnr']:6.2f})")
            _save(results, store)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kspace", nargs="?", help="k-space file in the project's layout (with target)")
    ap.add_argument("--data", default=None, help="instead of a file: a DATA spec (None/phantom, sunnybrook, ...)")
    ap.add_argument("--slices", default=None, help="'default' (every benchmark slice), 'tune' (training and validation "
                                                      "mid slices) or one DATA spec")
    ap.add_argument("--first", type=int, default=None, help="only the first N cases of --slices (the test patient's mid "
                                                            "slice comes first)")
    ap.add_argument("--cases", nargs="+", default=None, help="only these cases of --slices, by label "
                                                             "(e.g. SCD0000101/slice_006); with --first, either")
    ap.add_argument("--R", type=float, nargs="+", default=[6])
    ap.add_argument("--methods", nargs="+", default=None, help=f"subset of {OUR_METHODS + BART_METHODS} (default: all "
                                                             "but hashgrid)")
    ap.add_argument("--default-inr", default=None, help="the representation judged in the summary (default: selection.DEFAULT_REPRESENTATION)")
    ap.add_argument("--maps", default="espirit", choices=("espirit", "lowres", "nlinv", "true", "inr"),
                    help="coil maps of every reconstruction: estimated from the undersampled data (espirit, lowres; nlinv: "
                         "BART's joint estimate), "
                         "the maps that simulated it (true: the inverse crime of a known-map benchmark) or the ESPIRiT "
                         "maps as the default INR's fit refined them at the weights it chose in the espirit results "
                         "(inr: every method gets the INR's maps)")
    ap.add_argument("--map-grid", type=int, default=None,
                    help="the INRs' coil-map refinement grid (0: none); default: inr.default_map_grid with estimated "
                         "maps, none with --maps true; when given it enters the results' name")
    ap.add_argument("--snr-db", type=float, default=None, help="image SNR of the simulated noise (30: a realistic "
                                                                "scan); default: noise std 1e-3 of a peak-1 image")
    ap.add_argument("--tv-iters", type=int, default=1000)
    ap.add_argument("--inr-steps", type=int, default=None, help="override the representations' default steps")
    ap.add_argument("--threads", type=int, default=2, help="threads of each method's process (torch and BART's OpenMP)")
    ap.add_argument("--workers", type=int, default=1, help="methods run at a time, each in its own process (threads x "
                                                           "workers should not exceed the cores)")
    ap.add_argument("--scaling", action="store_true", help="also time the default INR against the number of voxels")
    ap.add_argument("--scaling-only", action="store_true", help="only the scaling table")
    ap.add_argument("--fresh", action="store_true", help="ignore results kept from an earlier, interrupted run")
    ap.add_argument("--report-only", action="store_true", help="write the tables from the kept results, run nothing")
    ap.add_argument("--retime", action="store_true", help="time side by side, in one run, each case's default INR, "
                    "BART's best and our best TV: one fit each at its kept chosen weights, the case's fits started together "
                    "(--workers 2 or more); the summary's time ratios then come from this run")
    ap.add_argument("--name", default=None, help="results file name (default from the data)")
    args = ap.parse_args()

    from tqdm.auto import tqdm

    from inr_utils import bart, coils, io, selection
    from inr_utils.report import BENCHMARK_RESULTS, HEADLINE, write_benchmark

    args.default_inr = args.default_inr or selection.DEFAULT_REPRESENTATION

    if args.scaling_only:
        table = scaling(args.threads, args.default_inr)
        print(table)
        print(f"\nwrote {write_benchmark(args.name or 'scaling_' + args.default_inr, table).relative_to(REPO_ROOT)}")
        return
    # hashgrid's search (about ten fits of minutes each on 2 CPU cores) runs only when asked for
    default_methods = ("ZF", "TV", "TV+S", "TV+S+maps", args.default_inr) + (BART_METHODS if bart.available() else ())
    methods = list(args.methods or default_methods)
    unknown = set(methods) - set(OUR_METHODS + BART_METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {OUR_METHODS + BART_METHODS}")
    if any(m.startswith("BART") for m in methods) and not bart.available():
        raise SystemExit("BART methods asked for but `bart` is not on PATH (apt-get install bart)")
    if any(R < 1 for R in args.R):
        raise SystemExit(f"every R must be >= 1, got {args.R}")
    if args.kspace:
        specs, name = [args.kspace], args.name or "global_" + Path(args.kspace).stem
    elif args.slices:
        name = args.name or f"global_slices_{args.slices}"
        try:
            specs = case_specs(args.slices, args.first, args.cases)
        except ValueError as err:
            raise SystemExit(str(err))
    else:
        specs = [args.data]
        name = args.name or "global_" + (args.data or "phantom").split(":")[0].replace("/", "-") + "_R" + "-".join(f"{R:g}" for R in args.R)
    noise_suffix = f"_snr{args.snr_db:g}" if args.snr_db is not None else ""
    known_name = name + "_truemaps" + noise_suffix  # the same cases and noise with the simulation's own maps
    if not args.kspace:  # the simulation settings are part of the results' name
        source_name = name + noise_suffix  # the espirit results (the INR's chosen weights, for --maps inr)
        name += ("_truemaps" if args.maps == "true" else "" if args.maps == "espirit" else "_" + args.maps) + noise_suffix
    if args.map_grid is not None:
        from inr_utils import inr

        try:
            inr.check_map_grid(args.map_grid, "--map-grid")
        except ValueError as err:
            raise SystemExit(str(err))
        name += f"_mapgrid{args.map_grid}"
    store = BENCHMARK_RESULTS / f"{name}.json"
    results = {} if args.fresh or not store.is_file() else json.loads(store.read_text())
    opts = dict(tv_iters=args.tv_iters, inr_steps=args.inr_steps, threads=args.threads, map_grid=args.map_grid,
                fixed_maps=args.maps in ("true", "inr") and not args.kspace)
    tmp = tempfile.TemporaryDirectory()
    jobs = [] if args.report_only else [(spec, R, m) for R in args.R for spec in specs for m in methods]
    todo = [(spec, R, m) for spec, R, m in jobs if _key(spec, R, m) not in results]

    def case_file(spec, R):
        if args.kspace:
            return Path(spec)
        path = Path(tmp.name) / f"{_label(spec).replace('/', '_')}_R{R:g}.h5"
        if not path.exists():  # coil maps estimated once per case, as a user's scan would have them
            estimate = {"true": None, "inr": "espirit"}.get(args.maps, args.maps)
            acq = simulated_case(spec, R, args.snr_db, estimate)
            io.save_kspace(path, refined_by_inr(acq, spec, R, args, source_name) if args.maps == "inr" else acq)
        return path

    failures = []
    if args.retime and not args.report_only:
        retime(retime_jobs(results, specs, args.R, methods, args.default_inr), results, store, case_file, opts,
               args.workers, failures)
        todo = []
    bar = tqdm(total=len(todo), desc="benchmark")
    # --workers jobs at a time, each in its own process with --threads threads; results are
    # written (in the order they finish) by this thread only
    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        futures = {pool.submit(run_isolated, m, case_file(spec, R), opts): _key(spec, R, m) for spec, R, m in todo}
        for future in as_completed(futures):
            key = futures[future]
            bar.update()
            try:
                r = results[key] = future.result()
            except RuntimeError as e:
                failures.append(str(e))
                tqdm.write(f"FAILED {key}: {e}")
                continue
            tqdm.write(f"{key:45s} PSNR {r['psnr']:6.2f} SSIM {r['ssim']:.3f} {r['seconds']:7.1f} s (search {r['seconds_total']:6.1f} s) "
                       f"{r['peak_mb']:6.0f} MB" + (f" log10 lambda {r['log_lambda']:g}" if "log_lambda" in r else "")
                       + (f" log10 mu {r['log_mu']:g}" if r.get("log_mu") is not None else "") + (" AT EDGE" if r.get("at_edge") else ""))
            _save(results, store)
    bar.close()

    data_note = ("real Sunnybrook slices, 20 x 128 x 128" if not args.kspace and specs[0] and str(specs[0]).startswith("sunnybrook")
                 else "20 x 128 x 128" if not args.kspace else Path(args.kspace).name)
    setting = (f"noise {'1e-3' if args.snr_db is None else f'for an image SNR of {args.snr_db:g} dB'}, coil maps "
               + ("known (the simulation's own)" if args.maps == "true" else
                  f"estimated (espirit) and refined by the {args.default_inr} fit at its chosen weights"
                  if args.maps == "inr" else f"estimated ({args.maps}) from the undersampled data")
               + (f", map refinement grid {args.map_grid} of the INRs and the +maps TV rows (0: none)" if args.map_grid is not None
                  else ", refined jointly by the INRs" + (" and the +maps TV rows" if any(m != _plain(m) for m in methods)
                                                          else "") + " (grid N/8; the other rows use them as estimated)"
                  if args.maps in coils.METHODS and not args.kspace else ""))
    lines = [f"Data: {data_note}, 4 coils, per-frame VD masks, {setting}, seed 0. Machine: {platform.machine()}, "
             f"{counted(args.threads, 'thread')} per method (torch and BART's OpenMP). Command: `{shlex.join(['.venv/bin/python', 'benchmarks/global_recon.py'] + [a for a in sys.argv[1:] if a != '--report-only'])}`", ""]
    done = {k.split("|")[0] for k in results if k.endswith("|" + args.default_inr)}
    lines.append(HEADLINE[0])  # the README's results summary shows what lies between the markers
    lines += [f"Setting: {setting}; {len(methods)} methods.", ""]
    if len(done) < len(specs):
        lines += [f"Cases with the default INR's result: {len(done)} of {len(specs)} "
                  f"({', '.join(sorted(done))}); the others were not run (the run resumes from the kept results).", ""]
    known_store = BENCHMARK_RESULTS / f"{known_name}.json"
    maps_label = f"espirit, refined by {args.default_inr}" if args.maps == "inr" else args.maps
    comparison, verdict = (maps_comparison(results, json.loads(known_store.read_text()), args.R, methods, maps_label,
                                           known_name)
                           if args.maps != "true" and not args.kspace and known_store.is_file() else ([], None))
    lines += summary(results, args.R, args.default_inr, methods, bart.available())
    lines += outdated_rows(results, [m for m in methods if m in INR_METHODS], args.inr_steps,
                           refines=args.maps in coils.METHODS and not args.kspace and args.map_grid != 0)
    lines += ["", verdict] if verdict else []  # the verdict in the headline, the table below
    lines += [HEADLINE[1], ""]
    lines += ["Per case: PSNR (dB) / seconds of the chosen setting; [log10 lambda, log10 mu] chosen (relative weights; "
              "* the best of the row's BART, ! still at an edge of the search).", "",
              "| case | R | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for R in args.R:
        for spec in specs:
            label = _label(spec)
            cells = []
            row = {m: results.get(f"{label}|{R:g}|{m}") for m in methods}
            bart_rows = [row[m] for m in methods if m.startswith("BART") and row[m]]
            bart_best = max(bart_rows, key=lambda r: r["psnr"]) if bart_rows else None
            for m in methods:
                r = row[m]
                if r is None:
                    cells.append("")
                    continue
                w = "" if r.get("log_lambda") is None else f" [{r['log_lambda']:g}" + (f", {r['log_mu']:g}" if r.get("log_mu") is not None else "") + "]"
                cells.append(f"{r['psnr']:.2f} / {r['seconds']:.1f}{w}{' *' if r is bart_best else ''}{' !' if r.get('at_edge') else ''}")
            if any(cells):
                lines.append(f"| {label} | {R:g} | " + " | ".join(cells) + " |")
    lines += ["", *comparison] if comparison else []
    if args.scaling:
        lines += ["", scaling(args.threads, args.default_inr)]
    table = "\n".join(lines)
    print("\n" + table)
    print(f"\nwrote {write_benchmark(name, table).relative_to(REPO_ROOT)}")
    if failures:
        raise SystemExit(f"{counted(len(failures), 'method run')} failed:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
