"""Benchmark of the scan-specific reconstructions on one k-space file (a script, not a test).

    .venv/bin/python benchmarks/global_recon.py                       # embedded phantom, R = 6
    .venv/bin/python benchmarks/global_recon.py --data sunnybrook     # real mid-ventricular slice, R = 6
    .venv/bin/python benchmarks/global_recon.py path/to/case.h5       # any file in the k-space layout
    .venv/bin/python benchmarks/global_recon.py --data sunnybrook --scaling   # time against voxels

Prints method, log10 lambda, PSNR, SSIM, seconds and peak memory (peak resident set of a
fresh process running that one method, torch included) for ZF, temporal TV (our solver),
the fast INR, the original's SIREN (time-boxed) and, when ``bart`` is on PATH (Debian
package ``bart``), BART ``pics -S`` with temporal TV on the same k-space and coil maps.
Every lambda of each sweep is a row; * marks each method's best. The table is written to
``benchmarks/results/`` and into the README by ``inr_utils.report``.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from inr_utils import REPO_ROOT  # noqa: E402


def _job(kind, path, ll, opts, queue):
    import torch

    torch.set_num_threads(opts["threads"])
    from inr_utils import bart, inr, io, metrics
    from inr_utils.tv import tv_recon

    acq = io.load_kspace(path)
    op, y = acq.op, torch.from_numpy(acq.kspace)
    t0 = time.perf_counter()
    if kind == "ZF":
        x = acq.zero_filled()
    elif kind == "TV":
        x, _ = tv_recon(op, y, 10.0 ** ll, iters=opts["tv_iters"])
    elif kind == "INR":
        model = inr.build("lowrank", acq.target.shape, rank=opts["rank"], init=op.adjoint(y).mean(0))
        x = inr.fit(model, op, y, log_lambda=ll, steps=opts["inr_steps"], lr=1e-2, progress=False).recon
    elif kind == "SIREN":
        model = inr.build("siren", acq.target.shape)
        x = inr.fit(model, op, y, log_lambda=ll, steps=10**6, lr=1e-4, frames_per_step=2,
                    max_seconds=opts["siren_seconds"], log_every=10**6, progress=False).recon
    elif kind.startswith("BART"):
        x, _ = bart.pics_tv(acq, 10.0 ** ll, iters=opts["bart_iters"])
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"psnr": metrics.psnr(x, acq.target), "ssim": metrics.ssim(x, acq.target), "seconds": seconds, "peak_mb": peak_mb})


def run_isolated(kind, path, ll, opts):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_job, args=(kind, str(path), ll, opts, q))
    p.start()
    res = q.get()
    p.join()
    return res


def scaling(opts):
    """Seconds per INR step against the number of voxels, on the real cine resampled."""
    import torch

    torch.set_num_threads(opts["threads"])
    from inr_utils import inr, io

    rows = []
    for T, N in [(10, 64), (20, 64), (20, 96), (20, 128), (40, 128), (20, 192)]:
        acq = io.load_case("sunnybrook", R=6, seed=0, T=T, N=N, coils=4)
        model = inr.build("lowrank", acq.target.shape, rank=opts["rank"])
        op, y = acq.op, torch.from_numpy(acq.kspace)
        inr.fit(model, op, y, log_lambda=-3.5, steps=5, progress=False)  # warm-up
        res = inr.fit(model, op, y, log_lambda=-3.5, steps=40, log_every=10**6, progress=False)
        vox = T * N * N
        rows.append((f"{T} x {N} x {N}", vox, res.seconds / res.steps, res.seconds / res.steps / vox * 1e6))
    lines = ["| cine (T x H x W) | voxels | s / step | microseconds / step / voxel |", "|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.3f} |" for r in rows]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kspace", nargs="?", help="k-space file in the project's layout (with target)")
    ap.add_argument("--data", default=None, help="instead of a file: DATA spec (None/phantom, sunnybrook, ...)")
    ap.add_argument("--R", type=float, default=6)
    ap.add_argument("--log-lambdas", type=float, nargs="+", default=[-4.0, -3.5, -3.0, -2.5, -2.0])
    ap.add_argument("--bart-log-lambdas", type=float, nargs="+", default=[-3.0, -2.5, -2.0, -1.5])
    ap.add_argument("--tv-iters", type=int, default=1000)
    ap.add_argument("--bart-iters", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--inr-steps", type=int, default=1000)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--siren-seconds", type=float, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scaling", action="store_true", help="also time the INR against the number of voxels")
    ap.add_argument("--name", default=None, help="results file name (default from the data)")
    args = ap.parse_args()

    from inr_utils import bart, io
    from inr_utils.report import write_benchmark

    tmp = tempfile.TemporaryDirectory()
    if args.kspace:
        path, label = Path(args.kspace), Path(args.kspace).name
    else:
        acq = io.load_case(args.data, R=args.R, seed=0, T=20, N=128, coils=4)
        path = io.save_kspace(Path(tmp.name) / "case.h5", acq)
        label = f"{args.data or 'phantom'} (20 x 128 x 128, 4 coils, R = {args.R:g}, seed 0)"
    acq = io.load_kspace(path)
    if acq.target is None:
        raise SystemExit(f"{path} has no 'target': the benchmark needs ground truth")
    opts = dict(tv_iters=args.tv_iters, inr_steps=args.inr_steps, rank=args.rank, siren_seconds=args.siren_seconds,
                threads=args.threads, bart_iters=None)
    plan = [("ZF", None, "")] + [("TV", ll, f"{args.tv_iters} it") for ll in args.log_lambdas]
    plan += [("INR", ll, f"lowrank, {args.inr_steps} steps") for ll in args.log_lambdas]
    if bart.available():
        plan += [(f"BART pics -i {it}", ll, f"-R T:1024:0:lambda, -i {it}") for it in args.bart_iters for ll in args.bart_log_lambdas]
    rows = []
    for kind, ll, note in plan:
        if kind.startswith("BART"):
            opts["bart_iters"] = int(kind.split()[-1])
        res = run_isolated(kind, path, ll, opts)
        rows.append((kind, ll, note, res))
        print(f"{kind:18s} {'' if ll is None else f'{ll:5.2f}':>6s} PSNR {res['psnr']:6.2f} SSIM {res['ssim']:.3f} "
              f"{res['seconds']:7.1f} s {res['peak_mb']:7.0f} MB", flush=True)
    inr_best = max((r for r in rows if r[0] == "INR"), key=lambda r: r[3]["psnr"])
    res = run_isolated("SIREN", path, inr_best[1], opts)
    rows.append(("SIREN", inr_best[1], f"16 x 256, time-boxed {args.siren_seconds:g} s", res))
    print(f"SIREN              {inr_best[1]:5.2f} PSNR {res['psnr']:6.2f} SSIM {res['ssim']:.3f} {res['seconds']:7.1f} s {res['peak_mb']:7.0f} MB")

    best = {}
    for r in rows:
        if r[0] not in best or r[3]["psnr"] > best[r[0]][3]["psnr"]:
            best[r[0]] = r
    lines = [f"Data: {label}. Machine: {platform.machine()}, {args.threads} torch threads. "
             f"Command: `{' '.join(['.venv/bin/python', 'benchmarks/global_recon.py'] + sys.argv[1:])}`", "",
             "| method | log10 lambda | setting | PSNR (dB) | SSIM | seconds | peak memory (MB) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = " *" if best[r[0]] is r and r[0] != "ZF" else ""
        lines.append(f"| {r[0]}{mark} | {'' if r[1] is None else f'{r[1]:g}'} | {r[2]} | {r[3]['psnr']:.2f} | "
                     f"{r[3]['ssim']:.3f} | {r[3]['seconds']:.1f} | {r[3]['peak_mb']:.0f} |")
    if not bart.available():
        lines += ["", "BART was not on PATH (`apt-get install bart` adds it)."]
    if args.scaling:
        lines += ["", "Fast INR time per step against cine size (real cine resampled, R = 6, 4 coils):", "", scaling(opts)]
    table = "\n".join(lines)
    print("\n" + table)
    name = args.name or ("global_" + (Path(args.kspace).stem if args.kspace else (args.data or "phantom").split(":")[0]) + f"_R{args.R:g}")
    print(f"\nwrote {write_benchmark(name, table).relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
