"""The runner behind notebooks 04 and 05: build the datasets and models of a ``LiifExperiment``,
train them (resumable), tune temporal TV on the validation subjects, evaluate everything on the
test subjects at their uniform query times, and return the run's record (``LiifResult``).

    exp = LiifExperiment(DataConfig(...), TrainConfig(epochs=32), {"UNet": preset("05-defaults", "unet3d", 8)},
                         tv_log_lambdas=[-3, -2.5, -2])
    runner = LiifRunner(exp)            # datasets and models (seeded)
    result = runner.run(RunOutputs(out_dir))
    result.record                       # what metrics.json holds
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..io import data_label
from ..runs import RunOutputs, check_device, check_int
from .config import DataConfig, ModelConfig, TrainConfig, last_quarter_gain
from .data import datasets
from .evaluation import evaluate_all, mean_metrics, tune_tv, tv_at_queries
from .model import LiifCine, bf16_supported
from .shipped import provenance
from .training import train_all, warn_emulated_bf16


@dataclass
class LiifExperiment:
    """One run: data, training, the named models (trained in this order) and the baselines."""

    data: DataConfig
    training: TrainConfig
    models: dict  # name -> ModelConfig (bf16=None becomes whether ``device`` has fast bfloat16)
    tv_log_lambdas: Optional[Sequence[float]] = None  # temporal-TV candidates tuned on validation (None: no TV row)
    tv_iters: int = 300
    order: Optional[Sequence[str]] = None  # the methods' order in the record (None: ZF, the models, TV)
    extra: dict = field(default_factory=dict)  # more fields for the record (after N)
    shipped: Optional[Path] = None  # a folder of shipped models (liif.shipped_dir) to evaluate instead of training, when they match
    device: str = "cpu"  # where the models train and run ("cuda", "auto": runs.check_device); TV and the data stay on the CPU

    def __post_init__(self):
        if not self.models or not all(isinstance(c, ModelConfig) for c in self.models.values()):
            raise ValueError("models must be a non-empty {name: ModelConfig}")
        T_low = self.data.acquisition.T_low
        bad = [n for n, c in self.models.items() if c.T_low != T_low]
        if bad:
            raise ValueError(f"models {bad} are built for another T_low than the data's ({T_low})")
        if self.tv_log_lambdas is not None:
            if not self.tv_log_lambdas or not all(np.isfinite(self.tv_log_lambdas)):
                raise ValueError(f"TV_LOG_LAMBDAS must be a non-empty list of finite numbers, got {self.tv_log_lambdas!r}")
            self.tv_iters = check_int("TV_ITERS", self.tv_iters)
        self.device = check_device(self.device)
        fast = bf16_supported(self.device)
        self.models = {name: c if c.bf16 is not None else replace(c, bf16=fast) for name, c in self.models.items()}
        emulated = [name for name, c in self.models.items() if c.bf16 and not fast]
        if emulated:  # once here for all of them; the runner's training does not repeat it per model
            warn_emulated_bf16(f"models {emulated} run their CNNs", self.device, "BF16=None")

    @property
    def bf16(self):
        """Whether the models run in bfloat16: one bool when they agree, else {name: bool}."""
        values = {name: c.bf16 for name, c in self.models.items()}
        return next(iter(values.values())) if len(set(values.values())) == 1 else values


@dataclass
class LiifResult:
    record: dict  # metrics.json: the settings, the test subjects and every method's mean metrics
    histories: dict  # name -> training history (train / val loss, seconds, lr per epoch)
    samples: list  # the test samples
    recons: dict  # method -> [cine (T_eval, H, W) per test subject]
    targets: list  # [target (T_eval, H, W) per test subject]


class LiifRunner:
    """Datasets and models of ``exp`` (``torch.manual_seed(seed)`` first, so the models'
    initial weights are a function of the seed, built on the CPU and then moved to
    ``exp.device``, so they are the same on every device); ``run`` does the rest."""

    def __init__(self, exp: LiifExperiment):
        self.exp = exp
        torch.manual_seed(exp.data.seed)
        self.train_set, self.val_set, self.test_set = datasets(exp.data)
        self.models = {name: LiifCine(cfg).to(exp.device) for name, cfg in exp.models.items()}

    def describe(self) -> str:
        a = self.exp.data.acquisition
        return (f"train {len(self.train_set)}, validation {len(self.val_set)}, test {len(self.test_set)} subjects; "
                f"R = {a.R:g}, T_low = {a.T_low}; {self.exp.training.epochs} epochs; models on {self.exp.device}, "
                f"bfloat16: {self.exp.bf16}")

    def run(self, out: RunOutputs) -> LiifResult:
        exp = self.exp
        tv_ll = tv_scores = None
        if exp.tv_log_lambdas is not None:
            t0 = time.perf_counter()
            tv_ll, tv_scores = tune_tv(self.val_set, exp.tv_log_lambdas, exp.tv_iters)
            print("TV validation relative L1:", {k: round(v, 4) for k, v in tv_scores.items()}, "-> log10 lambda", tv_ll,
                  f"({time.perf_counter() - t0:.0f} s)")
        split = {name: [s.name for s in ds.subjects] for name, ds in
                 (("train", self.train_set), ("val", self.val_set), ("test", self.test_set))}
        histories, train_seconds, loaded = train_all(
            self.models, self.train_set, self.val_set, out, exp.training, shipped=exp.shipped, warn_bf16=False,
            provenance=lambda name: provenance(exp.models[name], exp.data, exp.training, split))
        samples, recons, infer_seconds = evaluate_all(self.models, self.test_set)
        targets = [s.target.numpy() for s in samples]
        if tv_ll is not None:
            t0 = time.perf_counter()
            recons["TV"] = [tv_at_queries(s, tv_ll, exp.tv_iters) for s in samples]
            infer_seconds["TV"] = (time.perf_counter() - t0) / len(samples)
        d = exp.data
        record = {"R": d.acquisition.R, "T_low": d.acquisition.T_low, "seed": d.seed,
                  "data": data_label(d.data), "N": d.N, **exp.extra, "bf16": exp.bf16, "device": exp.device,
                  "test_subjects": [s.name for s in self.test_set.subjects]}
        if tv_ll is not None:
            record.update(tv_log10_lambda=tv_ll, tv_validation=tv_scores)
        record["methods"] = {}
        for name in exp.order or recons:
            record["methods"][name] = {**mean_metrics(recons[name], targets), "train_seconds": train_seconds.get(name, 0.0),
                                       "infer_seconds": infer_seconds[name]}
            if name in histories:  # how training ended (the plateau rule, the budget or the most epochs)
                h = histories[name]
                record["methods"][name].update(epochs=len(h["val"]), stop=h.get("stop", ""),
                                               best_val=float(min(h["val"])) if h["val"] else None,
                                               kept_epoch=h.get("kept_epoch", len(h["val"])),
                                               last_quarter_gain=last_quarter_gain(h["val"])[0] if len(h["val"]) >= 3 else None)
                if name in loaded:
                    record["methods"][name]["shipped"] = loaded[name]
        return LiifResult(record, histories, samples, recons, targets)

