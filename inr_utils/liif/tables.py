"""Tables of LIIF runs: the original's table (ours beside its published numbers) from every
notebook-05 run, and one run's methods as text."""
from __future__ import annotations

import json
from pathlib import Path

from .. import summary
from ..targets import LIIF_INFER_S, LIIF_STATIC_TCORR, LIIF_TRAIN_S, LIIF_TV_RATIO, ORIGINAL_LIIF_TABLE
from .config import stopped_by
from .evaluation import best_to_tv


def summary_table(runs_dir: Path) -> str:
    """The original's table (R, T_low, RDN, UNet, TV, ZF) in relative L1, ours beside the
    original's published numbers: the rows of ``run_summary`` of every ``R*_T*/metrics.json``
    under ``runs_dir``."""
    tables = [run_summary(json.loads(p.read_text()))["tables"][0] for p in sorted(Path(runs_dir).glob("R*_T*/metrics.json"))]
    if not tables:
        return ""
    head = ["| " + " | ".join(tables[0]["columns"]) + " |", "|" + "---|" * len(tables[0]["columns"])]
    return "\n".join(head + ["| " + " | ".join(row) + " |" for t in tables for row in t["rows"]])


def run_summary(record: dict) -> dict:
    """The summary block of a notebook-05 record (``inr_utils.summary``): its row of the
    original's table and its LIIF target verdicts (the TV ratio judged on real data only)."""
    m = record["methods"]
    key = (int(round(record["R"])), int(record["T_low"]))
    pub = ORIGINAL_LIIF_TABLE.get(key, (float("nan"),) * 4)
    cells = [f"{m[k]['rel_l1']:.3f} ({p:.3f})" for k, p in zip(("RDN", "UNet", "TV", "ZF"), pub)]
    ratio = best_to_tv(record)
    row = [f"{record['R']:g}", str(record["T_low"]), record.get("data", ""), *cells, f"{ratio:.2f}"]
    tables = [summary.table("LIIF: relative L1 on held-out subjects (the original's published value in brackets)",
                            ["R", "T_low", "data", "RDN", "UNet", "temporal TV", "ZF", "best LIIF / TV"], [row],
                            headline=True)]
    targets = []
    if record.get("data") == "sunnybrook":
        targets.append(summary.target(f"best LIIF / tuned TV <= {LIIF_TV_RATIO} on the real held-out patient",
                                      f"{ratio:.3f}", ratio <= LIIF_TV_RATIO))
    train = [m[k]["train_seconds"] for k in ("RDN", "UNet")]
    targets.append(summary.target(f"training <= {LIIF_TRAIN_S} s per model", f"{min(train):.0f}-{max(train):.0f} s",
                                  max(train) <= LIIF_TRAIN_S))
    infer = max(m[k]["infer_seconds"] for k in ("RDN", "UNet"))
    targets.append(summary.target(f"inference of one cine < {LIIF_INFER_S:g} s", f"{infer:.2f} s", infer < LIIF_INFER_S))
    return summary.block(tables, targets)


def results_table(result: dict) -> str:
    """One run's methods (relative L1, PSNR, SSIM, NRMSE, temporal fidelity, seconds) as fixed-width text."""
    rows = [f"{'method':8s} {'relL1':>6s} {'PSNR':>6s} {'SSIM':>6s} {'NRMSE':>6s} {'tfid':>5s} {'tcorr':>6s} {'train s':>8s} "
            f"{'epochs':>6s} {'infer s':>8s}"]
    for name, m in result["methods"].items():
        rows.append(f"{name:8s} {m['rel_l1']:6.3f} {m['psnr']:6.2f} {m['ssim']:6.3f} {m['nrmse']:6.3f} "
                    f"{m['temporal_fidelity']:5.2f} {m.get('temporal_correlation', float('nan')):6.3f} "
                    f"{m['train_seconds']:8.0f} {m.get('epochs', '-')!s:>6s} {m['infer_seconds']:8.3f}")
    return "\n".join(rows)


#: notebook 04's models, in the original's order
MODELS_2D_VS_3D = ("2D-C8", "2D-C64", "3D-C16")


def run_summary_2d_vs_3d(record: dict) -> dict:
    """The summary block of a notebook-04 record: relative L1 and temporal correlation of ZF and
    the three models (epochs trained), the 3D-vs-2D verdict, and the targets: on every data set
    (when the record keeps how training stopped) every model trained to a plateau; on real data
    every model below ZF's relative L1, and 2D C = 64 static (temporal correlation below
    ``LIIF_STATIC_TCORR``) while 3D C = 16 keeps at least ZF's."""
    m = record["methods"]
    names = [n for n in MODELS_2D_VS_3D if n in m]
    cell = lambda n: f"{m[n]['rel_l1']:.3f} / {m[n]['temporal_correlation']:.2f}" + (f" ({m[n]['epochs']} ep)" if "epochs" in m[n] else "")
    row = [f"{record['R']:g}", record.get("data", ""), cell("ZF"), *[cell(n) for n in names]]
    row.append(verdict_3d(m))
    tables = [summary.table("LIIF 2D vs 3D: relative L1 / temporal correlation on held-out subjects (epochs trained)",
                            ["R", "data", "ZF", *names, "3D vs the best 2D"], [row], headline=True)]
    targets = [plateau_target(m, names)] if any("stop" in m[n] for n in names) else []
    if record.get("data") == "sunnybrook":
        worst = max(names, key=lambda n: m[n]["rel_l1"] / m["ZF"]["rel_l1"])
        targets.append(summary.target("every LIIF model below ZF's relative L1",
                                      f"worst {worst} {m[worst]['rel_l1']:.3f} vs ZF {m['ZF']['rel_l1']:.3f}",
                                      all(m[n]["rel_l1"] < m["ZF"]["rel_l1"] for n in names)))
        if {"2D-C64", "3D-C16"} <= set(m):
            c64, c3d, czf = (m[n]["temporal_correlation"] for n in ("2D-C64", "3D-C16", "ZF"))
            targets.append(summary.target(f"2D C = 64 static (temporal correlation < {LIIF_STATIC_TCORR:g}) while 3D C = 16 "
                                          "keeps at least ZF's", f"2D C = 64 {c64:.2f}, 3D C = 16 {c3d:.2f}, ZF {czf:.2f}",
                                          c64 < LIIF_STATIC_TCORR and c3d >= czf))
    return summary.block(tables, targets)


def plateau_target(methods: dict, names) -> dict:
    """Whether every model was trained to a plateau: stopped by the plateau rule, not by the epoch
    cap or a time budget. The value names each model's stop and, where recorded, how much its last
    quarter of epochs still improved the best validation error."""
    def how(n):
        m = methods[n]
        gain = m.get("last_quarter_gain")
        stop = m.get("stop", "").split(":")[0].replace("reached the most epochs", "epoch cap") or "no stop recorded"
        return f"{n} {stop}" + (f", last quarter {100 * gain:+.1f}%" if gain is not None else "")
    reached = [n for n in names if stopped_by(methods[n]) == "plateau"]
    return summary.target("every model trained to a plateau (stopped by the plateau rule, not the epoch cap)",
                          f"{len(reached)} of {len(names)}: " + "; ".join(how(n) for n in names),
                          len(reached) == len(names))


def verdict_3d(methods: dict) -> str:
    """Whether 3D C = 16 beats the better 2D model in relative L1, with the numbers."""
    two_d = [n for n in MODELS_2D_VS_3D[:2] if n in methods]
    if not two_d or "3D-C16" not in methods:
        return "-"
    best = min(two_d, key=lambda n: methods[n]["rel_l1"])
    d = methods[best]["rel_l1"] - methods["3D-C16"]["rel_l1"]
    return f"3D {'better' if d > 0 else 'worse'} by {abs(d):.3f} (vs {best})"
