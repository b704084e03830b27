"""How do notebook 05's shipped models do on data they were not trained on?

Each shipped 05 model pair (UNet, RDN; ``inr_utils/data/liif_models/05_liif_architecture_search``)
is evaluated on the other data (real-trained models on phantom test subjects and the other way
round), at acceleration rates and k-space noise levels other than the training ones, beside
temporal TV tuned on the validation subjects of that same setting and zero filling. Relative L1
at 64 query times, mean over the test subjects (the real test patient SCD0000501: its 11 slices;
phantom: 4 test seeds). Writes ``benchmarks/results/liif_generalisation.md``.

Besides the shipped models, ``--run-dirs`` takes finished notebook-05 run folders (their
``models/`` hold the trained models and the settings they were trained on), e.g. the phantom
runs of ``make reproduce``, whose models do not ship.

``--cines`` scores the models on your own fully sampled cines instead, e.g. another vendor's
(the shipped models saw only the Sunnybrook slices, one GE scanner): each is simulated with the
models' acquisition at every rate and noise level, beside TV with its lambda chosen on those same
cines (an oracle, so the margin is conservative) and, measured in the same run, the training
setting's ratio to compare with. Writes ``benchmarks/results/liif_generalisation_cines.md``.

    .venv/bin/python benchmarks/liif_generalisation.py
    .venv/bin/python benchmarks/liif_generalisation.py --R 4 6 8 --noise 0 0.02
    .venv/bin/python benchmarks/liif_generalisation.py --runs none --run-dirs outputs/05_liif_architecture_search/R6_T8 \
        --name liif_generalisation_phantom_trained
    .venv/bin/python benchmarks/liif_generalisation.py --runs R6_T8_sunnybrook --R 6 --noise 0 \
        --cines "ocmr_cine.h5::0" "ocmr_cine.h5::1" --cines-label "OCMR, Siemens 1.5 T"
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import numpy as np
import torch

from inr_utils import liif
from inr_utils.io import data_label
from inr_utils.report import BENCHMARK_RESULTS, BESIDE, HEADLINE, write_benchmark

SHIPPED_05 = liif.SHIPPED_MODELS / "05_liif_architecture_search"
TV_LOG_LAMBDAS = (-3.0, -2.5, -2.0, -1.5, -1.0)
#: query times per evaluated cine
T_EVAL = 64


def evaluate(models: dict, data, R: float, T_low: int, noise: float, N: int, seed: int = 0, cines=None) -> dict:
    """Mean relative L1 of each model, ZF and tuned TV at one setting. TV's lambda comes from the
    validation subjects of ``data``; with ``cines`` (``liif.cine_subjects``) the models are scored
    on those instead, and TV's lambda is the one best on those same cines (an oracle: it favours TV)."""
    if cines is None:
        cfg = liif.DataConfig(data, N, liif.AcquisitionSpec(R, T_low, 32, 16, noise_std=noise), T_EVAL, n_train=1, n_val=4,
                              n_test=4, seed=seed)
        _, tune_set, test_set = liif.datasets(cfg)
    else:  # as the test set of ``datasets``: T_EVAL uniform query times, seed + 2
        test_set = tune_set = liif.LiifDataset(cines, liif.AcquisitionSpec(R, T_low, 32, T_EVAL, noise_std=noise),
                                               train=False, seed=seed + 2)
    tv_ll, _ = liif.tune_tv(tune_set, TV_LOG_LAMBDAS)
    samples, recons, _ = liif.evaluate_all(models, test_set)
    recons["TV"] = [liif.tv_at_queries(s, tv_ll) for s in samples]
    targets = [s.target.numpy() for s in samples]
    return {name: liif.mean_metrics(x, targets)["rel_l1"] for name, x in recons.items()}


#: columns of the per-setting table (its rows are also what ``--summary-only`` reads back)
COLUMNS = ("models trained on", "evaluated on", "R", "noise", "RDN", "UNet", "TV", "ZF", "best LIIF / TV")


def table_rows(text: str) -> list[dict]:
    """The per-setting rows of a results file written by this script, as dicts (numbers as floats)."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or len(cells) != len(COLUMNS) or cells[0] == COLUMNS[0]:  # not a row, or the header
            continue
        row = dict(zip(COLUMNS, cells))
        row["training setting"] = "(training setting)" in row["best LIIF / TV"]
        for k in COLUMNS[2:]:
            row[k] = float(row[k].split()[0])
        rows.append(row)
    return rows


def headline(rows: list[dict]) -> list[str]:
    """Per trained model pair and evaluation data: the range of best LIIF / TV over the settings
    other than the training one, and how many of them are below 1 (LIIF beats TV)."""
    out = ["Notebook 05's trained models on data, rates and noise they were not trained on: best LIIF / tuned "
           "temporal TV (relative L1; below 1: a LIIF model beats TV) over the other settings.", "",
           "| models trained on | at the training setting | evaluated on | other settings | best / TV (range) | below 1 |",
           "|---|---|---|---|---|---|"]
    for trained in dict.fromkeys(r["models trained on"] for r in rows):
        own = [f"{r['best LIIF / TV']:.3f}" for r in rows if r["models trained on"] == trained and r["training setting"]]
        for data in dict.fromkeys(r["evaluated on"] for r in rows if r["models trained on"] == trained):
            ratios = [r["best LIIF / TV"] for r in rows
                      if r["models trained on"] == trained and r["evaluated on"] == data and not r["training setting"]]
            if ratios:
                out.append(f"| {trained} | {', '.join(own)} | {data} | {len(ratios)} | {min(ratios):.3f}-{max(ratios):.3f} | "
                           f"{sum(x < 1 for x in ratios)} of {len(ratios)} |")
    return out


def document(intro: str, table: list[str]) -> str:
    """The results file: the introduction with the command, the README's headline, the table."""
    return "\n".join([intro, "", BESIDE.format("05_liif_architecture_search"), HEADLINE[0],
                      *headline(table_rows("\n".join(table))), HEADLINE[1], "",
                      "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS), *table])


def trained_on(folder: Path) -> dict:
    """The data settings (``DataConfig`` fields) the models in ``folder`` were trained with: a shipped
    run's manifest.json, or the provenance inside a run folder's models/RDN.pt."""
    if (folder / "manifest.json").is_file():
        return json.loads((folder / "manifest.json").read_text())["data"]
    path = folder / "RDN.pt"
    if not path.is_file():
        raise SystemExit(f"{folder.parent if folder.name == 'models' else folder} has no models/RDN.pt: "
                         "run notebook 05 there first")
    prov = torch.load(path, map_location="cpu", weights_only=False).get("extra", {}).get("provenance")
    if prov is None:
        raise SystemExit(f"{path} carries no training settings (not saved by a notebook run)")
    return prov["data"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--R", type=float, nargs="+", default=None, help="rates to evaluate (default: the training R, 4 and 8)")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.02], help="k-space noise std (images peak near 1)")
    ap.add_argument("--runs", nargs="+", default=None,
                    help="shipped run folders to evaluate (default: all, e.g. R6_T8_sunnybrook; 'none': no shipped run)")
    ap.add_argument("--run-dirs", nargs="+", type=Path, default=[], help="finished notebook-05 run folders to evaluate too")
    ap.add_argument("--cines", nargs="+", default=None, metavar="DATA",
                    help="your own fully sampled cines (image cine files, k-space files with a target, CMRxRecon or "
                         "ISMRMRD files, path::slice): the models are scored on these instead of the other data")
    ap.add_argument("--cines-label", default=None, help="what the table calls --cines (default: 'N own cines')")
    ap.add_argument("--name", default=None,
                    help="results file benchmarks/results/<name>.md (default liif_generalisation, with --cines "
                         "liif_generalisation_cines: a run on other folders or cines need not replace the default table)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--summary-only", action="store_true",
                    help="evaluate nothing: rewrite benchmarks/results/<name>.md's headline from the table it holds")
    args = ap.parse_args()
    default_name = "liif_generalisation_cines" if args.cines else "liif_generalisation"
    args.name = args.name or default_name
    if args.summary_only:
        path = BENCHMARK_RESULTS / f"{args.name}.md"
        if not path.is_file():
            raise SystemExit(f"--summary-only: no results file {path}; run the benchmark first")
        text = path.read_text()
        intro = text.split("\n", 1)[0]
        table = [line for line in text.splitlines() if table_rows(line)]
        if not table:
            raise SystemExit(f"--summary-only: {path} holds no table written by this script")
        print(f"wrote {write_benchmark(args.name, document(intro, table))}")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    shipped = [] if args.runs == ["none"] else \
        sorted(d for d in SHIPPED_05.glob("*") if (d / "manifest.json").is_file() and (not args.runs or d.name in args.runs))
    folders = shipped + [d / "models" for d in args.run_dirs]
    if not folders:
        raise SystemExit(f"nothing to evaluate: no shipped notebook-05 models under {SHIPPED_05} match --runs, and no --run-dirs")
    label = args.cines_label or (f"{len(args.cines)} own cine{'s' if len(args.cines) > 1 else ''}" if args.cines else None)
    rows, cines = [], {}
    for folder in folders:
        d = trained_on(folder)
        R0, T_low, N, trained_data = d["acquisition"]["R"], d["acquisition"]["T_low"], d["N"], d["data"]
        noise0 = d["acquisition"]["noise_std"]
        models = {name: liif.load_model(folder / f"{name}.pt") for name in ("RDN", "UNet")}
        rates = args.R or sorted({R0, 4.0, 8.0})
        if args.cines:  # the training setting (measured in this run, for the ratio to compare with), then the cines
            if N not in cines:
                cines[N] = liif.cine_subjects(args.cines, N)
            settings = [(trained_data, R0, noise0, False)] + [(label, R, noise, True) for R in rates for noise in args.noise]
        else:
            settings = [(data, R, noise, False) for data in (trained_data, None if trained_data else "sunnybrook")
                        for R in rates for noise in args.noise]
        for data, R, noise, own in settings:  # own: the --cines
            r = evaluate(models, data, R, T_low, noise, N, cines=cines[N] if own else None)
            best = min(r["RDN"], r["UNet"]) / r["TV"]
            same = not own and data == trained_data and R == R0 and noise == noise0
            rows.append(f"| {data_label(trained_data)}, R {R0:g}, T_low {T_low} | {label if own else data_label(data)} | {R:g} | {noise:g} | "
                        f"{r['RDN']:.4f} | {r['UNet']:.4f} | {r['TV']:.4f} | {r['ZF']:.4f} | {best:.3f}"
                        f"{' (training setting)' if same else ''} |")
            print(rows[-1], flush=True)
    cmd = "`.venv/bin/python benchmarks/liif_generalisation.py" + (f" --runs {' '.join(args.runs)}" if args.runs else "") + \
          (f" --run-dirs {' '.join(map(str, args.run_dirs))}" if args.run_dirs else "") + \
          (f" --R {' '.join(f'{r:g}' for r in args.R)}" if args.R else "") + f" --noise {' '.join(f'{n:g}' for n in args.noise)}" + \
          (f" --cines {shlex.join(args.cines)}" if args.cines else "") + \
          (f" --cines-label {shlex.quote(args.cines_label)}" if args.cines_label else "") + \
          (f" --name {args.name}" if args.name != default_name else "") + "`"
    intro = ("Notebook 05's trained models evaluated on other data, rates and k-space noise than they were trained on, "
             "against temporal TV tuned on the validation subjects of each setting"
             + (f" (on {label}: TV's lambda chosen on those same cines, an oracle that favours TV; each cine's central "
                "square, scaled to [0, 1] and resized to the models' size)" if args.cines else "")
             + ". Relative L1 at 64 query times "
             f"(lower is better); best / TV below 1 means a LIIF model beats TV. Command: {cmd}")
    print(f"wrote {write_benchmark(args.name, document(intro, rows))}")


if __name__ == "__main__":
    main()
