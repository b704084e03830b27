"""The original system's SIREN at its full scale, for a GPU (a script, not a test).

    .venv/bin/python benchmarks/siren_original.py --device cuda                   # test patient's mid slice, R = 6
    .venv/bin/python benchmarks/siren_original.py --device cuda --data None --R 3 # embedded phantom

The original: a sine MLP (omega_0 = 30, 256 wide, 16 hidden layers, last layer linear) on
(t, y, x), loss 0.5 ||A f - y||^2 on whole frames plus temporal TV on batches of temporal
pixel lines, AdamW at 1e-4 with step decay, batch 512, 500 epochs. Here one epoch visits
every frame once in random order; each step takes one whole frame's data term (times T,
an estimate of the whole) plus lambda times the circular temporal TV of 512 random pixel
lines (times H W / 512). Prints PSNR against wall time (rendering for the PSNR is not
counted) and writes ``benchmarks/results/siren_original_<data>_R<R>.md``.

On a CPU it measures a few steps, prints the estimated hours of the full run and refuses
(``--allow-cpu`` runs anyway).
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="sunnybrook", help="DATA spec ('None' for the phantom)")
    ap.add_argument("--R", type=float, default=6)
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--batch", type=int, default=512, help="temporal pixel lines per step for the TV term")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--lr-step", type=int, default=100, help="epochs between learning-rate halvings (step decay)")
    ap.add_argument("--log-lambda", type=float, default=-3.0, help="absolute log10 of the temporal-TV weight")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--log-every", type=int, default=10, help="epochs between PSNR checks")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--allow-cpu", action="store_true", help="run the full training on a CPU anyway")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.epochs < 1 or args.batch < 1 or args.lr <= 0 or not math.isfinite(args.lr):
        raise SystemExit("epochs and batch must be >= 1 and lr finite and > 0")

    import numpy as np
    import torch

    from inr_utils import inr, io, metrics
    from inr_utils.fourier import SenseOp
    from inr_utils.report import write_benchmark

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available: measuring on the CPU instead")
        args.device = "cpu"
    data = None if args.data in ("None", "none", "phantom") else args.data
    acq = io.load_case(data, R=args.R, seed=args.seed, T=20, N=128, coils=4)
    T, H, W = acq.target.shape
    dev = torch.device(args.device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = inr.Siren((T, H, W), hidden=args.hidden, layers=args.layers).to(dev)
    op = SenseOp(acq.smaps, acq.mask).to(dev)
    y = torch.from_numpy(acq.kspace).to(dev)
    lam = 10.0 ** args.log_lambda
    ys, xs = 2 * (torch.arange(H, device=dev) + 0.5) / H - 1, 2 * (torch.arange(W, device=dev) + 0.5) / W - 1
    grid_yx = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    times = inr.frame_times(T).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=args.lr_step * T, gamma=0.5)

    def step(k):
        coords = torch.cat([times[k].expand(H * W, 1), grid_yx], 1)
        v = model(coords)
        frame = torch.complex(v[:, 0], v[:, 1]).view(1, H, W)
        loss = op.data_term(frame, y, frames=slice(k, k + 1)) * T  # frame k's data term, scaled to the cine
        pix = torch.from_numpy(rng.choice(H * W, size=min(args.batch, H * W), replace=False)).to(dev)
        lines = torch.cat([times.repeat_interleave(len(pix))[:, None], grid_yx[pix].repeat(T, 1)], 1)
        v = model(lines)
        x = torch.complex(v[:, 0], v[:, 1]).view(T, len(pix))
        loss = loss + lam * (torch.roll(x, -1, 0) - x).abs().sum() * (H * W / len(pix))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return loss

    total_steps = args.epochs * T
    if dev.type == "cpu" and not args.allow_cpu:
        step(0)
        t0 = time.perf_counter()
        for k in range(3):
            step(k)
        per_step = (time.perf_counter() - t0) / 3
        raise SystemExit(f"refusing the full run on a CPU: {per_step:.2f} s per step here x {total_steps} steps "
                         f"({args.epochs} epochs x {T} frames) = about {per_step * total_steps / 3600:.1f} hours "
                         "(plus the PSNR renders). Run it with --device cuda on a GPU, or pass --allow-cpu.")
    points, clock, excluded = [], time.perf_counter(), 0.0
    for epoch in range(1, args.epochs + 1):
        for k in rng.permutation(T):
            loss = step(int(k))
        if not torch.isfinite(loss):
            raise SystemExit(f"loss became {loss.item()} at epoch {epoch}: lower --lr")
        if epoch % args.log_every == 0 or epoch == args.epochs:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t_render = time.perf_counter()
            with torch.no_grad():
                value = metrics.psnr(model.render().cpu().numpy(), acq.target)
            elapsed = t_render - clock - excluded
            excluded += time.perf_counter() - t_render
            points.append((epoch, elapsed, value))
            print(f"epoch {epoch:4d}  {elapsed:8.1f} s  PSNR {value:6.2f} dB", flush=True)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    lines = [f"The original's SIREN ({args.layers} x {args.hidden}, omega_0 = 30) on {args.data} at R = {args.R:g} "
             f"(20 x 128 x 128, 4 coils), AdamW lr {args.lr:g} halved every {args.lr_step} epochs, TV batch {args.batch}, "
             f"log10 lambda {args.log_lambda:g}, on {device_name}. Command: "
             f"`{' '.join(['.venv/bin/python', 'benchmarks/siren_original.py'] + sys.argv[1:])}`", "",
             "| epoch | seconds (PSNR renders excluded) | PSNR (dB) |", "|---|---|---|"]
    lines += [f"| {e} | {s:.1f} | {p:.2f} |" for e, s, p in points]
    name = f"siren_original_{(args.data or 'phantom').split(':')[0]}_R{args.R:g}"
    print(f"wrote {write_benchmark(name, chr(10).join(lines))}")


if __name__ == "__main__":
    main()
