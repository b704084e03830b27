"""How much faster could LIIF training run on this CPU? Its convolutions against the core's rate.

Most of `make reproduce` is LIIF training (notebooks 04 and 05). For each default LIIF model (the
configurations of the shipped models, run in float32 as on a CPU without fast bfloat16) at its
run's settings (batch, pixels per step, query times, T_low, N), on one thread, this measures

* the training step (forward, relative-L1 loss, backward, Adam), median of ``--steps`` steps;
* the convolutions' share of it (``torch.profiler``: self CPU time of the convolution kernels);
* the convolutions' floating-point operations per step, counted from the layers' shapes
  (forward: 2 x output elements x input channels per group x kernel volume; the weight
  gradient as many again, and the input gradient as many again where the input needs one), and
  the rate they run at;
* the fastest float32 rate measured on the core (``fastest_rates``: matrix multiply, and one
  large 3D convolution through oneDNN; before and after the models): the ceiling.

A step cannot take less than its convolutions' operations at the ceiling, unless some kernel
could beat the fastest one measured. That bound over the
measured step scales each LIIF model's training seconds in the runs' records
(``outputs/0[45]_*/*/metrics.json``); with every other second of the records kept, the runs
scheduled longest first on 2 workers give the least time `make reproduce` could take at
today's epochs and model sizes however fast everything but the convolutions became. Writes
``benchmarks/results/liif_compute_bound.md`` and refreshes the README.

    .venv/bin/python benchmarks/liif_compute_bound.py
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from inr_utils import REPO_ROOT, liif
from inr_utils.liif.data import collate, datasets
from inr_utils.liif.encoders import Conv3d
from inr_utils.liif.shipped import SHIPPED_MODELS
from inr_utils.liif.training import rel_l1_loss
from inr_utils.runs import cpu_model
from inr_utils.report import HEADLINE, machine, run_records, write_benchmark
from inr_utils.sweep import pool_seconds, recorded_seconds
from inr_utils.targets import REPRODUCE_MINUTES

LIIF_NOTEBOOKS = ("04_liif_2d_vs_3d", "05_liif_architecture_search")
PROFILED_STEPS = 2  # training steps under torch.profiler (after the timed ones)


def conv_flops(model: torch.nn.Module, run) -> int:
    """Floating-point operations of ``model``'s convolutions in one training step ``run()``:
    forward, weight gradient, and input gradient where the layer's input requires one."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        w = module.weight
        forward = 2 * output.numel() * w.shape[1] * math.prod(w.shape[2:])
        total += forward * (1 + w.requires_grad + inputs[0].requires_grad)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return total


def best_seconds(fn, repeats: int = 5) -> float:
    """Fastest of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def fastest_rates() -> dict:
    """Float32 rates (FLOP/s) of this process's fastest kernels: matrix multiply (best over
    512, 1024 and 2048 square) and a 64 -> 64 channel 3 x 3 x 3 convolution's forward pass
    through oneDNN (the models' ``Conv3d``, channels-last, batch 2, 8 x 32 x 32). The larger is
    the ceiling: the core's peak is not known inside a virtual machine, whose clock may boost."""
    def matmul_rate(n: int) -> float:
        a, b = torch.randn(n, n), torch.randn(n, n)
        return 2 * n**3 / best_seconds(lambda: torch.mm(a, b))

    mm = max(matmul_rate(n) for n in (512, 1024, 2048))
    conv = Conv3d(64, 64, 3, padding=1).to(memory_format=torch.channels_last_3d)
    x = torch.randn(2, 64, 8, 32, 32).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        seconds = best_seconds(lambda: conv(x))
    return {"matmul": mm, "conv3d": 2 * x.numel() * 64 * 27 / seconds}


def is_conv_kernel(name: str) -> bool:
    """A profiler event that does a convolution's arithmetic (its wrappers' self time is ~0)."""
    return "conv" in name.lower()


def profile_model(config: liif.ModelConfig, batch, pixels: int | None, steps: int) -> dict:
    """One model's training step on ``batch`` (a collated ``Sample``): median seconds, the
    convolutions' share of it and their operations per step."""
    torch.manual_seed(0)
    model = liif.LiifCine(replace(config, bf16=False)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    n_pix = batch.target.shape[-2] * batch.target.shape[-1]

    def step():
        pix = torch.randperm(n_pix, generator=g)[: min(pixels, n_pix)] if pixels else None
        target = batch.target if pix is None else batch.target.flatten(-2)[..., pix]
        loss = rel_l1_loss(model.apply_to(batch, pix), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    flops = conv_flops(model, step)
    step()  # warm-up: oneDNN builds its kernels on first use
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(PROFILED_STEPS):
            step()
        profiled = time.perf_counter() - t0
    conv_s = sum(e.self_cpu_time_total for e in prof.key_averages() if is_conv_kernel(e.key)) / 1e6
    return {"step_s": statistics.median(times), "conv_share": min(conv_s / profiled, 1.0), "conv_flops": flops,
            "conv_rate": flops * PROFILED_STEPS / conv_s}


def model_settings(notebook: str) -> dict:
    """{T_low: (models {name: ModelConfig}, pixels per step, one training batch)} from the
    shipped default runs of ``notebook`` (one per T_low; the model configs do not depend on R or
    the data, so every run of the notebook at that T_low trains the same models)."""
    out = {}
    for manifest in sorted((SHIPPED_MODELS / notebook).glob("*/manifest.json")):
        m = json.loads(manifest.read_text())
        t_low = m["data"]["acquisition"]["T_low"]
        if t_low in out:
            continue
        d = dict(m["data"])
        data = liif.DataConfig(**{**d, "acquisition": liif.AcquisitionSpec(**d["acquisition"])})
        train_set = datasets(data)[0]
        batch = collate([train_set[i] for i in range(m["training"]["batch"])])
        models = {name: liif.ModelConfig.from_dict(v["config"]) for name, v in m["models"].items()}
        out[t_low] = (models, m["training"]["pixels_per_step"], batch)
    if not out:
        raise FileNotFoundError(f"no shipped default runs of {notebook} under {SHIPPED_MODELS} (their manifest.json "
                                "gives the models and settings this benchmark times)")
    return out


def measure(steps: int) -> dict:
    """Every default model's step (``profile_model``) and the ceiling: the fastest rate of
    ``fastest_rates``, measured before and after the models (the clock of a shared machine moves)."""
    torch.set_num_threads(1)
    before = fastest_rates()
    rows = {}
    for notebook in LIIF_NOTEBOOKS:
        for t_low, (models, pixels, batch) in model_settings(notebook).items():
            for name, config in models.items():
                r = rows[f"{notebook}/T{t_low}/{name}"] = profile_model(config, batch, pixels, steps)
                print(f"{notebook} T_low {t_low} {name}: step {r['step_s']:.3f} s, convolutions "
                      f"{100 * r['conv_share']:.0f}% at {r['conv_rate'] / 1e9:.1f} GFLOP/s")
    after = fastest_rates()
    rates = {k: max(before[k], after[k]) for k in before}
    ceiling = max(rates.values())
    for r in rows.values():
        r["bound_ratio"] = r["conv_flops"] / ceiling / r["step_s"]
    return {"ceiling": ceiling, "rates": rates, "steps": steps, "models": rows}


def reproduce_bound(result: dict, outputs: Path = REPO_ROOT / "outputs") -> dict:
    """The recorded runs' time scheduled on 2 workers, as recorded and with each LIIF model's
    training seconds scaled by its bound ratio (every other second kept)."""
    records = run_records(outputs)
    recorded, bounded, scaled = [], [], {}
    for run in records:
        seconds = recorded_seconds(outputs / run) or 0.0
        recorded.append(seconds)
        notebook = run.split("/")[0]
        if notebook in LIIF_NOTEBOOKS:
            metrics = json.loads((outputs / run / "metrics.json").read_text())
            # (training seconds, bound ratio) of each model this benchmark timed
            trained = [(float(m.get("train_seconds") or 0), result["models"][key]["bound_ratio"])
                       for name, m in metrics["methods"].items()
                       if (key := f"{notebook}/T{metrics['T_low']}/{name}") in result["models"]]
            at_bound = seconds - sum(s * (1 - ratio) for s, ratio in trained)
            scaled[run] = (seconds, sum(s for s, _ in trained), at_bound)
            seconds = at_bound
        bounded.append(seconds)
    return {"runs": len(records), "recorded_min": pool_seconds(recorded, 2) / 60, "bound_min": pool_seconds(bounded, 2) / 60,
            "liif_runs": scaled, "machines": sorted({machine(r) for r in records.values()})}


def markdown(result: dict, bound: dict, when: str, where: str) -> str:
    ceiling = result["ceiling"]
    rates = ", ".join(f"{k} {v / 1e9:.1f}" for k, v in result["rates"].items())
    shares = [r["conv_share"] for r in result["models"].values()]
    of_ceiling = [r["conv_rate"] / ceiling for r in result["models"].values()]
    lines = ["<!-- beside 05_liif_architecture_search -->", HEADLINE[0],
             f"Where LIIF training's time goes on this CPU: the convolutions take {100 * min(shares):.0f}-"
             f"{100 * max(shares):.0f}% of each training step and run at {100 * min(of_ceiling):.0f}-"
             f"{100 * max(of_ceiling):.0f}% of the ceiling, the fastest float32 rate measured on the core, "
             f"{ceiling / 1e9:.1f} GFLOP/s ({rates}; the faster of two measurements, before and after the models). One thread ({where}, {when}); each default model's training step "
             f"at its run's settings (median of {result['steps']}), the convolutions' share of it (profiler), their rate "
             "(operations counted from the layers' shapes), and the least step: its convolutions at the ceiling, "
             "nothing else taking time:", "",
             "| notebook | T_low | model | step s | convolutions' share | their GFLOP/s | of the ceiling | least step s | least / step |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, r in result["models"].items():
        nb, t, name = key.split("/")
        lines.append(f"| {nb[:2]} | {t[1:]} | {name} | {r['step_s']:.3f} | {100 * r['conv_share']:.0f}% | "
                     f"{r['conv_rate'] / 1e9:.1f} | {100 * r['conv_rate'] / ceiling:.0f}% | "
                     f"{r['conv_flops'] / ceiling:.3f} | {r['bound_ratio']:.2f} |")
    margin = REPRODUCE_MINUTES - bound["bound_min"]
    verdict = (f"this best case is {-margin:.1f} min over it: out of reach at these epochs and model sizes for "
               "convolutions no faster than the ceiling" if margin < 0 else
               f"this best case, every convolution at the ceiling and nothing else in the training steps taking time, "
               f"is {margin:.1f} min under it")
    lines += ["", f"`make reproduce` from the {bound['runs']} runs' records ({'; '.join(bound['machines'])}), scheduled "
              f"longest first on 2 workers: {bound['recorded_min']:.1f} min as recorded; with every LIIF model's training "
              f"seconds scaled by its least / step (a ratio measured alone on one thread, applied to runs that trained two at a time) and everything else as recorded, at least {bound['bound_min']:.1f} min, "
              f"against the target of {REPRODUCE_MINUTES} min ({verdict}).", HEADLINE[1], "",
              "Per LIIF run: recorded seconds, of them training, and the run at the bound:", "",
              "| run | recorded s | training s | at the bound s |", "|---|---|---|---|"]
    lines += [f"| {run} | {s:.0f} | {t:.0f} | {b:.0f} |" for run, (s, t, b) in bound["liif_runs"].items()]
    lines += ["", "Command: `.venv/bin/python benchmarks/liif_compute_bound.py"
              + (f" --steps {result['steps']}" if result["steps"] != 5 else "") + "`", ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per model (median)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results and the README")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error(f"--steps must be >= 1, got {args.steps}")
    result = measure(args.steps)
    bound = reproduce_bound(result)
    text = markdown(result, bound, time.strftime("%Y-%m-%d", time.gmtime()), f"{os.cpu_count()} x {cpu_model()}")
    print(text)
    if not args.no_write:
        print(write_benchmark("liif_compute_bound", text))


if __name__ == "__main__":
    main()
