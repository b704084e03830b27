"""The runner behind notebook 03: one network trained over a range of lambda (a conditional
representation), separately fitted networks at the shown lambdas, the dense curve, the
automatic lambda from held-out lines, and the run's record and summary block.

    study = LambdaStudy(acq, LambdaStudyConfig(representation="hashgrid-lambda"), DATA)
    study.conditional(); study.separate(); study.dense_curve(); study.auto_lambda()
    record = study.record()      # metrics.json (with the summary block, ``run_summary``)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from . import inr, metrics, selection, summary
from .acquisition import Acquisition
from .inr.fitting import LAMBDA_DRAWS
from .io import data_label
from .runs import check_device, check_int
from .targets import LAMBDA_AUTO_GAP_DB, LAMBDA_COND_GAP_DB, LAMBDA_TIME_RATIO
from .tv import temporal_tv

#: conditional representation -> the form fitted at one fixed lambda
CONDITIONAL_FORMS = {"hashgrid-lambda": "hashgrid-lambda", "lowrank-lambda": "lowrank"}


@dataclass
class LambdaStudyConfig:
    """Notebook 03's settings (its parameters cell documents each; messages name those parameters)."""

    representation: str = "hashgrid-lambda"
    steps: int = 2000  # Adam steps of one fixed-lambda fit
    cond_steps: int = 3400  # Adam steps of the conditional fit
    frame_fraction: float = 0.5  # each step fits a random contiguous (circular) block of this fraction of the frames
    lr: float = 1e-2
    balance_log_lambda: Optional[float] = -2.0  # each conditional step's objective / (1 + lambda / 10**this)
    lambda_beta: float = 0.5  # conditional fit: log10(lambda) drawn from Beta(this, this) over the range (1: uniform)
    lambda_draws: str = "quasi"  # "random": independent draws; "quasi": a quasi-random sequence (inr.fitting.quasi_log_lambdas)
    rank: int = 16  # lowrank-lambda only
    lambda_anchors: int = 5  # lowrank-lambda only
    log_lambda_range: tuple = (-5.0, 0.0)
    show: Sequence[float] = (-5.0, -2.5, 0.0)  # the table's lambdas (and the separate fits)
    dense: int = 41  # points of the dense curve
    holdout: float = 0.1
    device: str = "cpu"
    seed: int = 0
    model_kwargs: dict = field(default_factory=dict)  # the representation's sizes beyond its defaults (e.g. hidden)
    # hashgrid-lambda's conditional network: the log10(lambda) where its temporal detail passes
    # from one spatio-temporal encoding to a second (None: one encoding)
    lambda_split: Optional[float] = -1.5

    def __post_init__(self):
        self.seed, self.steps = check_int("SEED", self.seed, 0), check_int("STEPS", self.steps)
        self.device = check_device(self.device)
        self.cond_steps, self.rank = check_int("COND_STEPS", self.cond_steps), check_int("RANK", self.rank)
        self.lambda_anchors, self.dense = check_int("LAMBDA_ANCHORS", self.lambda_anchors, 2), check_int("DENSE", self.dense, 2)
        if self.representation not in CONDITIONAL_FORMS:
            raise ValueError(f"REPRESENTATION must be one of {sorted(CONDITIONAL_FORMS)}, got {self.representation!r}")
        lo, hi = self.log_lambda_range
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"need finite LOG_LAMBDA_MIN < LOG_LAMBDA_MAX, got {lo}, {hi}")
        self.log_lambda_range = (lo, hi)
        if not (isinstance(self.frame_fraction, (int, float)) and 0 < self.frame_fraction <= 1):  # NaN fails too
            raise ValueError(f"FRAME_FRACTION must be in (0, 1] (1: every frame at every step), got {self.frame_fraction!r}")
        if self.balance_log_lambda is not None and not np.isfinite(self.balance_log_lambda):
            raise ValueError(f"BALANCE_LOG_LAMBDA must be finite or None, got {self.balance_log_lambda}")
        if not (isinstance(self.lambda_beta, (int, float)) and np.isfinite(self.lambda_beta) and self.lambda_beta > 0):
            raise ValueError(f"LAMBDA_BETA must be a finite number > 0 (1: log10 lambda drawn uniformly), got {self.lambda_beta!r}")
        if self.lambda_draws not in LAMBDA_DRAWS:
            raise ValueError(f"LAMBDA_DRAWS must be one of {list(LAMBDA_DRAWS)}, got {self.lambda_draws!r}")
        split = self.lambda_split
        if split is not None and (isinstance(split, bool) or not isinstance(split, (int, float)) or not lo < split < hi):
            raise ValueError(f"LAMBDA_SPLIT must be None or a log10(lambda) inside ({lo:g}, {hi:g}), got {split!r}")
        if not all(lo <= ll <= hi for ll in self.show):
            raise ValueError(f"every SHOW value must lie in [{lo:g}, {hi:g}], got {list(self.show)}")


class LambdaStudy:
    """Notebook 03's stages on ``acq``; each stage keeps its results as attributes."""

    def __init__(self, acq: Acquisition, config: LambdaStudyConfig, data=None):
        self.acq, self.config, self.data = acq, config, data_label(data)
        self.op, self.y = acq.op, torch.from_numpy(acq.kspace)
        self.shape = acq.kspace[:, 0].shape
        self.target = acq.target
        self.zf = acq.zero_filled()

    def build(self, name, op, y, conditional: bool = False):
        """A fresh model; the low-rank forms start from the temporal mean of the zero-filled cine;
        ``conditional``: the network fitted for every lambda (hashgrid-lambda: with ``lambda_split``)."""
        c = self.config
        if name.startswith("lowrank"):
            kw = dict(rank=c.rank, init=op.adjoint(y).mean(0))
            if name == "lowrank-lambda":
                kw.update(lambda_anchors=c.lambda_anchors, log_lambda_range=c.log_lambda_range)
            return inr.build(name, self.shape, **kw).to(c.device)
        split = conditional and name == "hashgrid-lambda" and c.lambda_split is not None
        return inr.build(name, self.shape, log_lambda_range=c.log_lambda_range, seed=c.seed,
                         **(dict(lambda_split=c.lambda_split) if split else {}), **c.model_kwargs).to(c.device)

    @property
    def frames_per_step(self) -> Optional[int]:
        """Frames of each Adam step's block (None: all), from ``frame_fraction``; at least 2, so
        that the block has a temporal difference."""
        T, f = self.shape[0], self.config.frame_fraction
        n = max(2, int(round(f * T)))
        return None if f >= 1 or n >= T else n

    def _conditional_fit(self, op, y, desc):
        c = self.config
        return inr.fit(self.build(c.representation, op, y, conditional=True), op, y, log_lambda_range=c.log_lambda_range,
                       steps=c.cond_steps, lr=c.lr, seed=c.seed, balance_log_lambda=c.balance_log_lambda,
                       log_lambda_beta=c.lambda_beta, log_lambda_draws=c.lambda_draws, frames_per_step=self.frames_per_step,
                       desc=desc)

    def conditional(self):
        """One fit for every lambda (``self.cond``: its FitResult)."""
        self.cond = self._conditional_fit(self.op, self.y, "conditional fit")
        print(f"conditional fit: {self.cond.steps} steps, {self.cond.seconds:.1f} s")
        return self.cond

    def separate(self):
        """The fixed-lambda form at each shown lambda (``self.separate_recons``, ``self.seconds_separate``).

        With a target, each fit's PSNR is also taken at every eighth of its steps (outside its
        time; ``self.separate_psnr_by_step``), so the record shows whether the reference the
        conditional network is held to had converged: a fit still rising at its last steps
        makes the gap at that lambda partly the fit's own shortfall."""
        c = self.config
        self.separate_recons, self.seconds_separate, self.separate_psnr_by_step = {}, 0.0, {}
        for ll in c.show:
            model = self.build(CONDITIONAL_FORMS[c.representation], self.op, self.y)
            res = inr.fit(model, self.op, self.y, log_lambda=ll, steps=c.steps, lr=c.lr, seed=c.seed,
                          frames_per_step=self.frames_per_step, desc=f"separate log10 lambda={ll:g}",
                          target=self.target, log_every=max(1, c.steps // 8))
            self.separate_recons[ll] = res.recon
            self.seconds_separate += res.seconds
            if self.target is not None:
                self.separate_psnr_by_step[ll] = {"step": res.history.step, "psnr": res.history.psnr}
        print(f"separate fits: {len(c.show)} x {c.steps} steps, {self.seconds_separate:.1f} s in all")

    def dense_curve(self):
        """The conditional network along ``dense`` lambdas: TV_t, PSNR and temporal fidelity (with
        a target), and the intervals where the smoothness measure rises (``self.rises``)."""
        c, target = self.config, self.target
        self.dense = np.linspace(*c.log_lambda_range, c.dense)
        self.curve_tv, self.curve_psnr, self.curve_fidelity = [], [], []
        for ll in self.dense:
            x = inr.render_numpy(self.cond.model, ll)
            self.curve_tv.append(float(temporal_tv(torch.from_numpy(x))))
            self.curve_psnr.append(metrics.psnr(x, target) if target is not None else np.nan)
            self.curve_fidelity.append(metrics.temporal_fidelity(x, target) if target is not None else np.nan)
        self.cond_at = {ll: inr.render_numpy(self.cond.model, ll) for ll in c.show}
        smoothness = np.asarray(self.curve_fidelity if target is not None else self.curve_tv)
        d = self.dense
        self.rises = [(float(d[i]), float(d[i + 1])) for i in range(len(d) - 1) if smoothness[i + 1] > smoothness[i]]
        print(("temporal fidelity" if target is not None else "TV_t") + " against lambda: " +
              ("decreases monotonically over the dense curve" if not self.rises else
               "rises on " + ", ".join(f"[{a:.3g}, {b:.3g}]" for a, b in self.rises)))

    def auto_lambda(self):
        """Lambda without ground truth: one conditional fit on all but ``holdout`` of the lines,
        the lambda whose output best predicts the held-out lines (``self.auto``: the numbers)."""
        c, target = self.config, self.target
        lines = selection.hold_out(self.acq, c.holdout, c.seed)
        ho = self._conditional_fit(lines.op_fit, lines.y_fit, "held-out conditional fit")
        self.heldout_error = [lines.error(inr.render_numpy(ho.model, ll)) for ll in self.dense]
        auto_ll = float(self.dense[int(np.argmin(self.heldout_error))])
        self.auto = {"auto_log10_lambda": auto_ll, "seconds_holdout_fit": ho.seconds}
        if target is not None:
            self.auto.update(oracle_log10_lambda=float(self.dense[int(np.nanargmax(self.curve_psnr))]),
                             psnr_auto=float(np.interp(auto_ll, self.dense, self.curve_psnr)),
                             psnr_oracle=float(np.nanmax(self.curve_psnr)))
            a = self.auto
            print(f"auto log10 lambda {auto_ll:.2f} -> {a['psnr_auto']:.2f} dB; oracle {a['oracle_log10_lambda']:.2f} -> "
                  f"{a['psnr_oracle']:.2f} dB; gap {a['psnr_oracle'] - a['psnr_auto']:.2f} dB")

    def table_rows(self) -> dict:
        """The original's table: ZF and the conditional network at each shown lambda."""
        return {"ZF": self.zf, **{f"log10 lambda={ll:g}": self.cond_at[ll] for ll in self.config.show}}

    def record(self) -> dict:
        """metrics.json: at the shown lambdas, both forms' objective (with its terms) and, with a
        target, PSNR; the times, the dense curve, the automatic and oracle lambdas, the
        monotonicity check, the table's metrics and the summary."""
        c, target = self.config, self.target

        def at_shown(recons):
            out = {}
            for ll in c.show:
                terms = objective_terms(self.op, recons[ll], self.y)
                out[f"{ll:g}"] = {**({"psnr": metrics.psnr(recons[ll], target)} if target is not None else {}),
                                  "objective": terms["data"] + 10.0 ** ll * terms["tv_t"], **terms}
            return out

        methods = ({name: metrics.all_metrics(x, target) for name, x in self.table_rows().items()}
                   if target is not None else {})
        rec = {"R": self.acq.acceleration, "seed": c.seed, "data": self.data,
               "coil_maps": self.acq.meta.get("coil_maps", {"method": "simulated"}), "representation": c.representation,
               "balance_log10_lambda": c.balance_log_lambda, "lambda_beta": c.lambda_beta,
               "lambda_draws": c.lambda_draws, "lambda_split": c.lambda_split if c.representation == "hashgrid-lambda" else None,
               "conditional": at_shown(self.cond_at), "separate": at_shown(self.separate_recons),
               "seconds_conditional": self.cond.seconds, "seconds_separate": self.seconds_separate,
               "steps_fixed": c.steps, "steps_conditional": c.cond_steps, "frames_per_step": self.frames_per_step or self.shape[0],
               **self.auto,
               "dense": {"log10_lambda": self.dense.tolist(), "psnr": self.curve_psnr if target is not None else None,
                         "tv": self.curve_tv, "temporal_fidelity": self.curve_fidelity if target is not None else None,
                         "heldout_error": self.heldout_error},
               "smoothness_monotone": not self.rises, "smoothness_rises_on": self.rises,
               "methods": methods}
        for ll, curve in self.separate_psnr_by_step.items():
            rec["separate"][f"{ll:g}"]["psnr_by_step"] = curve
        rec["summary"] = run_summary(rec)
        return rec


def objective_terms(op, x, y) -> dict:
    """The two terms of the fits' objective for a rendered cine x (T, H, W): the data term
    0.5 ||A x - y||^2 and TV_t(x) (``tv.temporal_tv``), so that J_lambda = data + lambda TV_t
    (``inr.fitting.objective`` without a spatial term) can be compared between the two forms
    at any lambda, with or without ground truth."""
    x = torch.from_numpy(np.ascontiguousarray(x))
    return {"data": float(op.data_term(x, y)), "tv_t": float(temporal_tv(x))}


def psnr_halfway(curve: dict, steps: int) -> float:
    """PSNR of a fit's recorded curve ({"step": [...], "psnr": [...]}) at the recorded step
    nearest half of ``steps``."""
    i = min(range(len(curve["step"])), key=lambda k: abs(curve["step"][k] - steps / 2))
    return float(curve["psnr"][i])


def run_summary(record: dict) -> dict:
    rep = record.get("representation", "lowrank-lambda")  # records without the key come from the low-rank form
    rows, gaps, objective_rows = [], {}, []
    # the separate fits' PSNR half-way (runs that recorded their curves): is the reference converged?
    halfway = all("psnr_by_step" in v for v in record.get("separate", {}).values()) and bool(record.get("separate"))
    for ll, v in record.get("conditional", {}).items():
        sep = record["separate"][ll]
        if "psnr" in v:
            gaps[ll] = v["psnr"] - sep["psnr"]
            rows.append([rep, ll, f"{v['psnr']:.2f}", f"{sep['psnr']:.2f}", f"{v['psnr'] - sep['psnr']:+.2f}"])
            if halfway:
                rows[-1].append(f"{psnr_halfway(sep['psnr_by_step'], record['steps_fixed']):.2f}")
        if "objective" in v:
            objective_rows.append([rep, ll, f"{v['objective']:.4g}", f"{sep['objective']:.4g}",
                                   f"{v['objective'] / sep['objective']:.2f}"])
    tables = [summary.table("Lambda study: one conditional fit against separate fits",
                            ["representation", "log10 lambda", "one conditional fit (dB)", "separate fits (dB)",
                             "conditional - separate (dB)"] + (["separate fit at half its steps (dB)"] if halfway else []),
                            rows)] if rows else []
    if objective_rows:  # the problem each lambda poses, solved by either form (needs no target)
        tables.append(summary.table(
            "Lambda study: the objective J = 0.5 ||A x - y||^2 + lambda TV_t of each form's output (lower: the better "
            "solution of that lambda's problem)",
            ["representation", "log10 lambda", "J conditional", "J separate", "conditional / separate"], objective_rows))
    targets = []
    ratio = record["seconds_conditional"] / (record["seconds_separate"] / max(len(record.get("separate", {})), 1))
    if "psnr_auto" in record:
        if "smoothness_monotone" not in record:
            mono = "not checked"
        elif record["smoothness_monotone"]:
            mono = "yes (every step of the dense curve)"
        else:
            mono = "no: rises on " + ", ".join(f"[{a:.3g}, {b:.3g}]" for a, b in record["smoothness_rises_on"])
        tables.append(summary.table(
            "Lambda study: cost, automatic lambda, the published finding",
            ["conditional fit (s)", "separate fits, all (s)", "ratio to one fixed fit", "auto log10 lambda",
             "oracle log10 lambda", "PSNR auto (dB)", "PSNR oracle (dB)", "temporal fidelity falls with lambda"],
            [[f"{record['seconds_conditional']:.1f}", f"{record['seconds_separate']:.1f}", f"{ratio:.2f}",
              f"{record['auto_log10_lambda']:.2f}", f"{record['oracle_log10_lambda']:.2f}", f"{record['psnr_auto']:.2f}",
              f"{record['psnr_oracle']:.2f}", mono]]))
        gap = record["psnr_oracle"] - record["psnr_auto"]
        targets.append(summary.target(f"automatic lambda within {LAMBDA_AUTO_GAP_DB} dB of the oracle", f"{gap:.2f} dB",
                                      gap <= LAMBDA_AUTO_GAP_DB))
    if gaps:
        # two-sided: a conditional output far above a separate fit is not that lambda's fit either
        # (it follows lambda less than the fixed fits do, e.g. regularises at lambda -> 0)
        far = max(gaps.values(), key=abs)
        each = ", ".join(f"{ll} {g:+.2f}" for ll, g in gaps.items())
        targets.append(summary.target(f"conditional within {LAMBDA_COND_GAP_DB} dB of separate fits (above or below) at every "
                                      "shown lambda", f"largest gap {far:+.2f} dB; by log10 lambda: {each}",
                                      abs(far) <= LAMBDA_COND_GAP_DB))
        targets.append(summary.target(f"conditional fit at most {LAMBDA_TIME_RATIO:g}x one fixed fit", f"{ratio:.2f}x",
                                      ratio <= LAMBDA_TIME_RATIO))
    return summary.block(tables, targets)
