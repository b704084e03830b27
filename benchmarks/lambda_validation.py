"""Notebook 03's two fits on a validation case, for choosing its defaults away from the test data.

Builds the notebook's acquisition (``io.load_case`` at its defaults) and runs, through
``LambdaStudy``, either the lambda-conditional fit, rendered at several log10(lambda), or one
separate fit at a fixed log10(lambda); prints one JSON line with PSNR (dB) against the target.
Validation cases: the phantom's training subjects (``--data phantom --subject 1``) and the
Sunnybrook training and validation patients (``--data sunnybrook:SCD0000401``); never the test
patient SCD0000501 or phantom seed 0. Defaults are notebook 03's.

    .venv/bin/python benchmarks/lambda_validation.py --data phantom --subject 1 --R 3 --beta 2
    .venv/bin/python benchmarks/lambda_validation.py --data phantom --subject 1 --R 3 --separate -2.5
    .venv/bin/python benchmarks/lambda_validation.py --data phantom --subject 1 --R 6 --range -5 -2.5  # a sub-range
    .venv/bin/python benchmarks/lambda_validation.py --data sunnybrook:SCD0000401 --R 3 --beta 1 --fit-seed 1
    .venv/bin/python benchmarks/lambda_validation.py --summarise runs/*.jsonl   # the table of gaps

``--summarise`` reads the printed JSON lines (one run per line, collected in files) and writes
``benchmarks/results/lambda_validation.md``: per setting of the conditional fit and validation
case, the conditional network's PSNR minus the separate fit's (same case and sizes) at each
log10(lambda) where both exist, the worst two-sided gap and the worst shortfall; and, for runs
that recorded them (``terms``: the data term and TV_t of each render), the objective each
separate fit minimises evaluated on both forms.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from inr_utils import inr, io, metrics
from inr_utils.inr.fitting import LAMBDA_DRAWS
from inr_utils.inr.hashgrid import SPLIT_WIDTH
from inr_utils.lambda_study import LambdaStudy, LambdaStudyConfig, objective_terms

RENDER_AT = (-5, -4, -3.5, -3, -2.75, -2.5, -2.25, -2, -1.5, -1, 0)
#: notebook 03's defaults: the settings its fits run with and the tables single out
NOTEBOOK = LambdaStudyConfig()


def _case(run: dict) -> tuple:
    """What a conditional run and its separate fits must share: data, subject, R, fit seed, sizes."""
    return run["data"], run.get("subject"), run["R"], run.get("fit_seed", 0), json.dumps(run.get("model", {}), sort_keys=True)


def _labels(run: dict) -> tuple:
    """The case (with its fit seed when not 0) and the sizes as the tables print them."""
    label = run["data"] + (f" subject {run['subject']}" if run.get("subject") is not None else "") + \
        (f", fit seed {run['fit_seed']}" if run.get("fit_seed") else "")
    return label, ", ".join(f"{k}={v}" for k, v in run.get("model", {}).items()) or "defaults"


def _draws(run: dict) -> str:
    """How a conditional run drew log10(lambda); runs that do not say drew independently."""
    return run.get("draws", "random")


#: how the split networks of this code hand over between their encodings (records say it beside the split)
HANDOVER = f"linear {SPLIT_WIDTH:g}"


def _split(run: dict) -> str:
    """The conditional network's ``lambda_split`` and hand-over ("none": one encoding; runs that
    do not say had one)."""
    split = run.get("lambda_split")
    return "none" if split is None else f"{split:g} ({run.get('split_handover', HANDOVER)})"


def trained_range(run: dict) -> str:
    """The log10(lambda) range a conditional run drew from ("[-5, 0]": notebook 03's)."""
    lo, hi = run.get("range", NOTEBOOK.log_lambda_range)
    return f"[{lo:g}, {hi:g}]"


def _setting_cells(run: dict, separate_steps: int) -> str:
    """The cells both tables open a conditional run's row with: its range, sampling (Beta and
    draws), balance, split, steps, the separate fits' steps, sizes, case and R."""
    label, sizes = _labels(run)
    return (f"| {trained_range(run)} | {run['beta']:g} | {_draws(run)} | {run['balance']:g} | {_split(run)} | {run['steps']} | "
            f"{separate_steps} | {sizes} | {label} | {run['R']:g} |")


def gap_table(runs: list, separate_steps: int | None = None) -> list:
    """Markdown rows: for each conditional run (with its number of steps), its PSNR minus the
    separate fit's at the lambdas both have (same data, subject, R, fit seed and sizes; separate
    fits of ``separate_steps``, default notebook 03's ``STEPS``, as the notebook compares), the
    worst |gap|, the worst |gap| without notebook 03's smallest lambda (where those separate fits
    are still rising) and the worst shortfall. Separate fits with other steps are left to
    ``convergence_table``; of repeated separate fits with the same steps, the last one in the
    files counts."""
    separate_steps = NOTEBOOK.steps if separate_steps is None else separate_steps
    separate = {(*_case(r), r["steps"], float(r["log10_lambda"])): r["psnr"] for r in runs
                if r["form"] == "separate" and r["steps"] == separate_steps}
    rows = []
    for r in runs:
        if r["form"] != "conditional":
            continue
        c = _case(r)
        for steps in sorted({k[-2] for k in separate if k[:-2] == c}):
            gaps = {ll: r["psnr"][key] - separate[(*c, steps, ll)] for key in r["psnr"]
                    for ll in [float(key)] if (*c, steps, ll) in separate}
            if not gaps:
                continue
            cells = ", ".join(f"{ll:g}: {g:+.2f}" for ll, g in sorted(gaps.items()))
            worst = max(abs(g) for g in gaps.values())
            above = [abs(g) for ll, g in gaps.items() if ll > NOTEBOOK.log_lambda_range[0]]
            above_cell = f"{max(above):.2f}" if above else ""
            rows.append(f"{_setting_cells(r, steps)} {cells} | {worst:.2f} | {above_cell} | "
                        f"{max(0.0, -min(gaps.values())):.2f} | {r['seconds']:.0f} |")
    return sorted(rows)


def objective_table(runs: list) -> list:
    """Markdown rows, for the runs that recorded ``terms``: at each log10(lambda) of a separate fit,
    the data term and TV_t of the conditional network rendered there and of the separate fit,
    and the objective J_lambda = data + lambda TV_t of the conditional over the separate fit's
    (above 1: the conditional network reaches a worse value of that lambda's objective)."""
    separate = {(*_case(r), r["steps"], float(r["log10_lambda"])): r["terms"] for r in runs
                if r["form"] == "separate" and "terms" in r and r["steps"] == NOTEBOOK.steps}
    rows = []
    for r in runs:
        if r["form"] != "conditional" or "terms" not in r:
            continue
        c = _case(r)
        for (*k, steps, ll), sep in sorted(separate.items()):
            cond = r["terms"].get(f"{ll:g}")
            if tuple(k) != c or cond is None:
                continue
            j = lambda t: t["data"] + 10.0 ** ll * t["tv_t"]
            rows.append(f"{_setting_cells(r, steps)} {ll:g} | {cond['data']:.4g} / {sep['data']:.4g} | "
                        f"{cond['tv_t']:.5g} / {sep['tv_t']:.5g} | {j(cond) / j(sep):.2f} |")
    return sorted(rows)


def _notebook_setting(run: dict) -> bool:
    """Whether a conditional run is notebook 03's fit: its sampling (distribution and draws), balance, split, steps,
    range and sizes."""
    return (run["beta"] == NOTEBOOK.lambda_beta and run["balance"] == NOTEBOOK.balance_log_lambda
            and _draws(run) == NOTEBOOK.lambda_draws and _split(run) == _split({"lambda_split": NOTEBOOK.lambda_split})
            and run["steps"] == NOTEBOOK.cond_steps            and "range" not in run and not run.get("model"))


def convergence_table(runs: list) -> list:
    """Markdown rows for the cases whose separate fits ran with more than one number of steps:
    per case and log10(lambda), the separate fit's PSNR at each number of steps, the conditional
    network's at notebook 03's setting (the last such run of the case) and its gap to the
    longest separate fit, i.e. the gap measured against a reference closer to convergence."""
    separate = {}
    for r in runs:
        if r["form"] == "separate":
            separate.setdefault((*_case(r), float(r["log10_lambda"])), {})[r["steps"]] = r
    conditional = {_case(r): r for r in runs if r["form"] == "conditional" and _notebook_setting(r)}
    all_steps = sorted({st for fits in separate.values() for st in fits if len(fits) > 1})
    rows = []
    for key, fits in sorted(separate.items(), key=lambda kv: (str(kv[0][:-1]), kv[0][-1])):
        if len(fits) < 2:
            continue
        case, ll, longest = key[:-1], key[-1], fits[max(fits)]
        label, sizes = _labels(longest)
        cells = " | ".join(f"{fits[st]['psnr']:.2f}" if st in fits else "" for st in all_steps)
        cond = conditional.get(case, {}).get("psnr", {}).get(f"{ll:g}")
        tail = (f"{cond:.2f} | {cond - longest['psnr']:+.2f}" if cond is not None else " | ")
        rows.append(f"| {label} | {longest['R']:g} | {sizes} | {ll:g} | {cells} | {tail} |")
    if not rows:
        return []
    return ["| case | R | sizes | log10 lambda | " + " | ".join(f"separate, {st} steps" for st in all_steps)
            + " | conditional (notebook's setting) | conditional - longest separate |",
            "|" + "---|" * (6 + len(all_steps)), *rows]


def summarise(files: list) -> Path:
    from inr_utils.report import write_benchmark

    runs = [json.loads(line) for f in files for line in Path(f).read_text().splitlines() if line.startswith("{")]
    rows = gap_table(runs)
    if not rows:
        raise SystemExit("no conditional run with a separate fit of the same case in " + ", ".join(map(str, files)))
    lowest = f"{NOTEBOOK.log_lambda_range[0]:g}"
    text = "\n".join([
        "Notebook 03's conditional network against separately fitted networks on validation cases (never the test "
        "patient or phantom seed 0): PSNR of the conditional network minus the separate fit's (dB) at each log10(lambda), "
        f"the worst |gap| (the target: within 0.5 dB either way), the same without log10 lambda = {lowest} (where the separate "
        "fits have not converged: the convergence table below; notebook 03's defaults were chosen on this column) and "
        "the worst shortfall. Each row is one run of "
        "`benchmarks/lambda_validation.py` (one thread); the table: `.venv/bin/python benchmarks/lambda_validation.py "
        f"--summarise {' '.join(map(str, files))}`.", "",
        "| trained log10 lambda | beta | lambda draws | balance | split | conditional steps | separate steps | sizes | case | R | gap at "
        f"log10 lambda (dB) | worst abs gap | worst abs gap above log10 lambda = {lowest} | worst shortfall | conditional s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", *rows])
    convergence = convergence_table(runs)
    if convergence:
        text += "\n".join([
            "", "", f"How far the separate fits are from convergence: the separate fit's PSNR (dB) after each number of "
            f"Adam steps (notebook 03 runs {NOTEBOOK.steps}), the conditional network's at notebook 03's setting, and its "
            "gap to the longest separate fit.", "", *convergence])
    objective = objective_table(runs)
    if objective:
        text += "\n".join([
            "", "", "The objective each separate fit minimises, J_lambda = 0.5 ||A x - y||^2 + lambda TV_t(x), for the "
            "conditional network rendered at that lambda and for the separate fit (runs that recorded the two terms): a "
            "ratio above 1 means the conditional network reaches a worse value of that lambda's objective than the separate fit.", "",
            "| trained log10 lambda | beta | lambda draws | balance | split | conditional steps | separate steps | sizes | case | R | "
            "log10 lambda | data term, conditional / separate | TV_t, conditional / separate | J_lambda conditional / separate |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", *objective])
    return write_benchmark("lambda_validation", text)


def main(argv=None):
    d = NOTEBOOK
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="phantom", help="'phantom' or 'sunnybrook:<patient>[/<slice>]' (not the test patient)")
    p.add_argument("--subject", type=int, default=1, help="phantom subject seed (0 is the test subject)")
    p.add_argument("--R", type=float, default=3.0)
    p.add_argument("--separate", type=float, default=None, help="fit at this fixed log10(lambda) instead of the conditional fit")
    p.add_argument("--beta", type=float, default=d.lambda_beta, help="conditional fit: Beta(beta, beta) draw of log10(lambda)")
    p.add_argument("--balance", type=float, default=d.balance_log_lambda)
    p.add_argument("--draws", choices=LAMBDA_DRAWS, default=d.lambda_draws,
                   help="conditional fit: independent or quasi-random draws of log10(lambda) (notebook 03's LAMBDA_DRAWS)")
    p.add_argument("--range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="conditional fit: draw log10(lambda) from [LO, HI] instead of notebook 03's range (a "
                        "sub-range shows what the rest of the range costs the lambdas inside it)")
    p.add_argument("--lambda-split", type=lambda v: None if v.lower() == "none" else float(v), default=d.lambda_split,
                   help="conditional fit: notebook 03's LAMBDA_SPLIT ('none': one spatio-temporal encoding)")
    p.add_argument("--steps", type=int, default=None, help="Adam steps (default: notebook 03's STEPS or COND_STEPS)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--frame-fraction", type=float, default=d.frame_fraction, help="notebook 03's FRAME_FRACTION")
    p.add_argument("--fit-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--summarise", nargs="+", metavar="FILE", help="write the table of gaps from printed runs; fit nothing")
    p.add_argument("--model-kw", nargs="*", default=[], metavar="KEY=VALUE",
                   help="sizes of the representation, e.g. hidden=32 gate_hidden=32 (both fits take them)")
    a = p.parse_args(argv)
    if a.summarise:
        print(f"wrote {summarise(a.summarise)}")
        return
    if a.data == "phantom" and a.subject == 0:
        p.error("phantom subject 0 is the test subject: use a training seed (1, 2, ...)")
    torch.set_num_threads(a.threads)
    phantom = a.data == "phantom"  # a real slice's mask and noise use seed 0, as notebook 03 at SEED = 0
    acq = io.load_case(None if phantom else a.data, R=a.R, seed=a.subject if phantom else 0)
    # judged on the patient loaded, so "sunnybrook" (the test patient by default) and "sunnybrook:501" are refused too
    if acq.meta.get("patient") in io.SUNNYBROOK_SPLIT["test"]:
        p.error(f"{acq.meta['patient']} is the test patient: choose defaults on the training and validation patients")
    model_kwargs = {}
    for item in a.model_kw:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--model-kw takes KEY=VALUE, got {item!r}")
        try:
            model_kwargs[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            p.error(f"--model-kw takes numbers, got {item!r}")
    lo, hi = tuple(a.range) if a.range else d.log_lambda_range
    if a.lambda_split is not None and not lo < a.lambda_split < hi:
        p.error(f"--lambda-split {a.lambda_split:g} lies outside the range ({lo:g}, {hi:g}): give one inside, or none")
    config = LambdaStudyConfig(lr=a.lr, model_kwargs=model_kwargs, balance_log_lambda=a.balance, lambda_beta=a.beta,
                               lambda_draws=a.draws, lambda_split=a.lambda_split, frame_fraction=a.frame_fraction,
                               seed=a.fit_seed, steps=a.steps or d.steps, cond_steps=a.steps or d.cond_steps,
                               show=[lo if a.separate is None else a.separate], log_lambda_range=(lo, hi))
    study = LambdaStudy(acq, config, None if phantom else a.data)
    out = {"data": a.data, "subject": a.subject if phantom else None, "R": a.R, "fit_seed": a.fit_seed, "model": model_kwargs}
    y = torch.from_numpy(acq.kspace)
    if a.separate is not None:
        study.separate()
        x = study.separate_recons[a.separate]
        out.update(form="separate", log10_lambda=a.separate, steps=config.steps, seconds=round(study.seconds_separate, 1),
                   psnr=round(metrics.psnr(x, acq.target), 3), terms=objective_terms(acq.op, x, y))
    else:
        r = study.conditional()
        renders = {f"{ll:g}": inr.render_numpy(r.model, ll) for ll in RENDER_AT if lo <= ll <= hi}
        if a.range:
            out["range"] = [lo, hi]
        out.update(form="conditional", beta=a.beta, balance=a.balance, draws=a.draws, lambda_split=a.lambda_split,
                   **({"split_handover": HANDOVER} if a.lambda_split is not None else {}), steps=r.steps, seconds=round(r.seconds, 1),
                   psnr={k: round(metrics.psnr(x, acq.target), 3) for k, x in renders.items()},
                   terms={k: objective_terms(acq.op, x, y) for k, x in renders.items()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
