"""The runner behind notebook 02: every scan-specific method on one acquisition, each with its
weights chosen by the same search (``selection``), and the run's record.

    study = GlobalStudy(acq, GlobalStudyConfig(representation="lowrank"))
    study.classical()      # TV and TV+S on explicit voxels
    study.inrs()           # the INR rows (the default representation searched, the others reuse its weights)
    study.siren()          # the original's SIREN, time-boxed
    result = study.result()   # record (metrics.json), reconstructions, histories

Rows: ``ZF``, ``TV`` (temporal), ``TV+S`` (temporal + spatial), ``SIREN`` and one per INR
representation; ``INR`` in the record is the row of ``config.representation``.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import h5py
import numpy as np
import torch

from . import inr, metrics, selection, tv
from .acquisition import Acquisition
from .io import data_label
from .runs import check_device, check_int


@dataclass
class SirenBudget:
    """The original's SIREN (16 hidden layers of 256 sines), trained on blocks of ``frames``
    frames per step within ``seconds`` of fit time (PSNR monitoring not counted)."""

    hidden: int = 256
    layers: int = 16
    lr: float = 1e-4
    frames: int = 2
    seconds: float = 60.0
    steps: int = 100000
    log_every: int = 8

    def __post_init__(self):
        self.hidden, self.layers = check_int("SIREN_HIDDEN", self.hidden), check_int("SIREN_LAYERS", self.layers)
        self.frames, self.steps = check_int("SIREN_FRAMES", self.frames), check_int("SIREN_STEPS", self.steps)
        self.log_every = check_int("SIREN_LOG_EVERY", self.log_every)
        if not (np.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"SIREN_SECONDS must be finite and > 0, got {self.seconds!r}")


@dataclass
class GlobalStudyConfig:
    """Notebook 02's settings (its parameters cell documents each; messages name those parameters)."""

    representation: str = selection.DEFAULT_REPRESENTATION
    inr_rows: Sequence[str] = ("hashgrid", "lowrank")
    steps: Optional[int] = None  # None: each representation's default (inr.default_settings)
    lr: Optional[float] = None
    rank: Optional[int] = None
    map_grid: Optional[int] = None  # coil-map refinement grid of the TV and INR rows; None: inr.map_grid_for(acq)
    log_lambdas: Optional[Sequence[float]] = None  # starting relative log10 candidates; None: per method
    log_mus: Optional[Sequence[float]] = None
    search_step: float = 0.5
    max_extend: int = 4
    search_extra_rows: bool = False
    tv_iters: int = 1000
    siren: SirenBudget = field(default_factory=SirenBudget)
    holdout: float = 0.1
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self):
        self.seed, self.tv_iters = check_int("SEED", self.seed, 0), check_int("TV_ITERS", self.tv_iters)
        self.device = check_device(self.device)
        self.steps = None if self.steps is None else check_int("STEPS", self.steps)
        self.rank = None if self.rank is None else check_int("RANK", self.rank)
        self.map_grid = None if self.map_grid is None else inr.check_map_grid(self.map_grid, "MAP_GRID")
        self.max_extend = check_int("MAX_EXTEND", self.max_extend, 0)
        fixed = sorted(r for r in inr.REPRESENTATIONS if not r.endswith("-lambda"))
        for name, reps in (("REPRESENTATION", [self.representation]), ("INR_ROWS", list(self.inr_rows))):
            bad = [r for r in reps if r not in fixed]
            if bad or not reps:
                raise ValueError(f"{name} {reps!r}: choose from {fixed}")
        self.inr_rows = list(self.inr_rows) + ([] if self.representation in self.inr_rows else [self.representation])

    def search_for(self, method: str) -> selection.SearchSpec:
        """The method's default starting grid (``selection.DEFAULT_SEARCH``) with these overrides."""
        spec = selection.DEFAULT_SEARCH[method]
        return dataclasses.replace(spec, log_lambdas=tuple(self.log_lambdas or spec.log_lambdas),
                                   log_mus=tuple(self.log_mus or spec.log_mus) if spec.log_mus else None,
                                   step=self.search_step, max_extend=self.max_extend)


@dataclass
class GlobalStudyResult:
    record: dict  # metrics.json
    recons: dict  # row -> (T, H, W) complex
    histories: dict  # row -> FitHistory (PSNR / loss against fit seconds)


class GlobalStudy:
    """Notebook 02's stages on ``acq`` (``data``: the DATA parameter it came from, for the
    record); call ``classical``, ``inrs``, ``siren``, then ``result``."""

    def __init__(self, acq: Acquisition, config: GlobalStudyConfig, data=None):
        self.acq, self.config, self.data = acq, config, data_label(data)
        self.op, self.y = acq.op, torch.from_numpy(acq.kspace)
        t0 = time.perf_counter()
        self.zf = acq.zero_filled()
        self.zf_seconds = time.perf_counter() - t0
        self.selections: dict = {}
        shape = acq.kspace[:, 0].shape
        c = config
        self.map_grid = inr.map_grid_for(acq) if c.map_grid is None else c.map_grid
        self.settings = {rep: inr.default_settings(rep, shape, steps=c.steps, lr=c.lr, map_grid=self.map_grid,
                                                   **({"rank": c.rank} if "rank" in inr.default_settings(rep, shape).model else {}))
                         for rep in c.inr_rows}
        self.siren_result = None

    def describe(self) -> str:
        a = self.acq
        maps = a.meta.get("coil_maps", {"method": "simulated"})
        return (f"source {a.meta.get('source')} | kspace {a.kspace.shape} | achieved R {a.achieved_acceleration:.2f} | "
                f"target: {a.target is not None} | data scale {selection.data_scale(self.zf):.4g} | coil maps: "
                f"{maps['method']}" + (f" ({maps['calibration_lines']} calibration lines)" if maps.get("calibration_lines")
                                      else "")
                + (f", refined jointly with every row's image (TV, TV+S, the INRs) on a {self.map_grid} x {self.map_grid} grid" if self.map_grid
                   else "") + "\n"
                f"rule: {selection.rule_text(a.target is not None, self.config.holdout)}")

    def _print(self, name, extra=""):
        sel = self.selections[name]
        print(f"{name}{extra}: log10 lambda = {sel.log_lambda}, log10 mu = {sel.log_mu}"
              + ("  (still at an edge)" if sel.at_edge else ""))

    def classical(self):
        """Temporal TV and temporal + spatial TV on explicit voxels (``tv``), each searched; they
        refine estimated coil maps as the INR rows do (``map_grid``)."""
        c = self.config
        for name in ("TV", "TV+S"):
            fit_tv = tv.reconstructor(c.tv_iters, map_grid=self.map_grid)
            self.selections[name] = sel = selection.select_weights(fit_tv, self.acq,
                                                                   c.search_for(name), c.holdout, c.seed)
            print(f"{name}: tried {[(t['log_lambda'], t['log_mu'], round(t['score'], 4)) for t in sel.trials]}")
            self._print(name)

    def inrs(self):
        """The INR rows: ``representation`` searched; the others reuse its weights unless
        ``search_extra_rows``."""
        c = self.config

        def on_fit(res):
            if res.diverged:
                print(res.message)

        for rep in [c.representation] + [r for r in c.inr_rows if r != c.representation]:
            fit_rep = inr.reconstructor(self.settings[rep], c.device, c.seed, on_result=on_fit)
            if rep == c.representation or c.search_extra_rows:
                self.selections[rep] = selection.select_weights(fit_rep, self.acq, c.search_for(rep), c.holdout, c.seed)
            else:  # one fit at the searched row's weights
                chosen = self.selections[c.representation]
                self.selections[rep] = selection.fit_at(fit_rep, self.acq, chosen.log_lambda, chosen.log_mu)
            s = self.settings[rep]
            self._print(rep, f" ({s.steps} steps, lr {s.lr:g}, {s.model})")

    def siren(self):
        """The original's SIREN at the default INR's weights, within ``config.siren.seconds``."""
        c, b = self.config, self.config.siren
        model = inr.build("siren", self.acq.kspace[:, 0].shape, hidden=b.hidden, layers=b.layers).to(c.device)
        lam, mu = self.selections[c.representation].weights
        self.siren_result = res = inr.fit(model, self.op, self.y, log_lambda=float(np.log10(lam)), mu=mu, steps=b.steps,
                                          lr=b.lr, frames_per_step=b.frames, max_seconds=b.seconds, target=self.acq.target,
                                          log_every=b.log_every, seed=c.seed, desc="SIREN")
        print(f"SIREN: {res.steps} steps in {res.seconds:.0f} s" + (f" ({res.message})" if res.diverged else ""))

    def result(self) -> GlobalStudyResult:
        """The record: per row its metrics (with a target), fit seconds, chosen weights, search cost and sizes."""
        c, acq, sels, siren = self.config, self.acq, self.selections, self.siren_result
        target = acq.target
        rows = ["TV", "TV+S", "SIREN"] + list(c.inr_rows)
        recons = {"ZF": self.zf, **{k: siren.recon if k == "SIREN" else sels[k].recon for k in rows}}
        seconds = {"ZF": self.zf_seconds, **{k: siren.seconds if k == "SIREN" else sels[k].seconds_final for k in rows}}
        inr_sel = sels[c.representation]
        record = {"R": acq.acceleration, "achieved_R": acq.achieved_acceleration, "seed": c.seed,
                  "data": self.data, "coil_maps": acq.meta.get("coil_maps", {"method": "simulated"}),
                  "lambda_rule": selection.rule_text(target is not None, c.holdout),
                  "data_scale": inr_sel.scale, "default_representation": c.representation, "methods": {}}
        for name, x in recons.items():
            entry = metrics.all_metrics(x, target) if target is not None else {}
            entry["seconds"] = seconds[name]
            record["methods"][name] = entry
        for name, sel in sels.items():
            record["methods"][name].update(log10_lambda=sel.log_lambda, log10_mu=sel.log_mu, at_edge=sel.at_edge,
                                           seconds_sweep=sel.seconds_total)
            if name in self.settings:
                s = self.settings[name]
                record["methods"][name].update(representation=name, steps=s.steps, lr=s.lr, size=s.model,
                                               map_grid=s.map_grid, start=s.start)
        for name in ("TV", "TV+S"):
            record["methods"][name].update(iterations=c.tv_iters, map_grid=self.map_grid)
        record["methods"]["INR"] = dict(record["methods"][c.representation])
        record["methods"]["SIREN"].update(log10_lambda=inr_sel.log_lambda, log10_mu=inr_sel.log_mu, steps=siren.steps,
                                          hidden=c.siren.hidden, layers=c.siren.layers)
        record["sweep"] = {k: v.trials for k, v in sels.items()}
        histories = {**{k: v.history for k, v in sels.items()}, "SIREN": siren.history}
        return GlobalStudyResult(record, recons, histories)


def write_recons(path, recons: dict, default: str, target: Optional[np.ndarray], R: float):
    """``recon.h5``: one (T, H, W) complex64 dataset per row, ``INR`` (a hard link to the
    default representation's) and ``target`` when known."""
    with h5py.File(path, "w") as f:
        for name, x in recons.items():
            f.create_dataset(name, data=x.astype(np.complex64))
        f["INR"] = f[default]
        if target is not None:
            f.create_dataset("target", data=target)
        f.attrs["R"] = R
