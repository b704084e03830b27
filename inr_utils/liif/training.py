"""LIIF training: Adam + reduce-on-plateau on the relative-L1 magnitude loss, resumable
checkpoints, saved models that carry their ``ModelConfig``, and the same loop across several
processes (``World``; PyTorch DDP, launched by ``inr_utils.liif.ddp``).
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .config import ModelConfig, TrainConfig
from .data import LiifDataset, collate
from .model import LiifCine, bf16_supported
from .shipped import find as find_shipped


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one distributed training
    (``torch.distributed`` initialised): its rank and how many there are."""

    rank: int
    size: int

    @classmethod
    def current(cls) -> "World":
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def lead(self) -> bool:
        return self.rank == 0


def rel_l1_loss(pred, target):
    """sum | |x_hat| - |x| | / sum |x| (the original's loss), per batch."""
    return (pred.abs() - target.abs()).abs().sum() / target.abs().sum().clamp_min(1e-8)


def _atomic_save(obj, path: Path):
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def warn_emulated_bf16(subject: str, device, setting: str = "bf16=None"):
    """The RuntimeWarning that ``subject`` (e.g. "the model runs its CNNs") runs in bfloat16 on a
    ``device`` without fast bfloat16 (a CPU without AVX512-BF16 emulates it many times slower than
    float32); the caller decides that it does."""
    warnings.warn(f"{subject} in bfloat16, which {device} does not have fast (emulated, many times slower than "
                  f"float32); {setting} uses it only where it is fast", RuntimeWarning)


def warn_if_emulated_bf16(model: LiifCine, device, what: str):
    """``warn_emulated_bf16`` when ``model`` is set to run its CNNs in bfloat16 on ``device``."""
    if model.bf16 and not bf16_supported(str(device)):
        warn_emulated_bf16(f"{what}: the model runs its CNNs", device)


def train(model: LiifCine, train_set: LiifDataset, val_set: LiifDataset, config: TrainConfig,
          checkpoint: Optional[Path] = None, *, progress: bool = True, desc: str = "train", tag: str = "",
          world: Optional[World] = None, warn_bf16: bool = True) -> dict:
    """Train ``model`` under ``config`` (``TrainConfig``), validating every epoch. Each step
    decodes ``config.pixels_per_step`` random pixels of every query frame (None: all).

    With ``world`` (several processes, ``torch.distributed`` initialised), the model is
    wrapped in ``DistributedDataParallel`` and the training subjects are sharded by a
    ``DistributedSampler`` (seeded by ``config.seed`` and the epoch): each process takes
    ``config.batch / world.size`` samples of every global batch and every process draws the
    same pixels. The relative-L1 loss of the global batch, sum |..| / sum |x|, is kept exact:
    the denominator is summed over the processes before the backward pass, and each process's
    loss is scaled by ``world.size`` because DDP averages the gradients. So N processes take
    the steps that one process with the same global batch takes, to float rounding (tested).
    Every process validates on the whole validation set (as the single-process path does);
    only rank 0 writes the checkpoint and prints (and, unless ``warn_bf16`` is False, warns
    when the model would run bfloat16 emulated).

    ``checkpoint`` is written atomically after each epoch (model, optimiser, scheduler,
    epoch, history) and, with ``config.resume``, resumed from when present, only if it was
    written by the same model config, ``tag``, learning rate, batch, pixels per step and seed
    and has not run past ``config.epochs`` (otherwise training starts afresh, with a message).
    NaN/Inf stops with a message, keeping the last checkpointed state. Training ends at
    ``config.epochs`` or earlier by ``config.stop_reason`` (validation plateau, time budget);
    the reason is ``history["stop"]``. With ``config.keep_best`` the model then takes the
    weights of its lowest-validation epoch (kept in memory and in the checkpoint, so a resumed
    run keeps them too; also after a non-finite loss). Returns the history (train/val loss,
    seconds and learning rate per epoch, ``stop``, ``stopped`` for a non-finite loss,
    ``kept_epoch``: the epoch whose weights the model ends with).
    """
    epochs, batch, seed, pixels_per_step = config.epochs, config.batch, config.seed, config.pixels_per_step
    if world is not None and batch % world.size:
        raise ValueError(f"batch {batch} must be a multiple of the number of processes ({world.size})")
    lead = world is None or world.lead
    progress = progress and lead
    device = next(model.parameters()).device
    if lead and warn_bf16:
        warn_if_emulated_bf16(model, device, desc)
    net = model if world is None else torch.nn.parallel.DistributedDataParallel(model)
    if world is not None:  # channels-last conv weights (05's models) make DDP warn about its bucket layout; only speed
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=config.lr_patience)
    history = {"epoch": [], "train": [], "val": [], "seconds": [], "lr": [], "stopped": "", "stop": ""}
    settings = config.checkpoint_key()
    start = 0
    best = None  # keep_best: {"epoch", "val", "model"} of the lowest validation error so far
    if checkpoint is not None and config.resume and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if (state["config"] == model.config.to_dict() and state.get("tag", "") == tag and state.get("settings") == settings
                and state["epoch"] < epochs):
            model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); sched.load_state_dict(state["sched"])
            history, start = state["history"], state["epoch"] + 1
            best = state.get("best") if config.keep_best else None
            if lead:
                print(f"{desc}: resumed from {checkpoint} at epoch {start}")
        elif lead:
            print(f"{desc}: {checkpoint} was written by another model, setting or a longer run; training afresh")
    g = torch.Generator().manual_seed(seed)
    history.setdefault("stop", "")
    for epoch in range(start, epochs):
        history["stop"] = config.stop_reason(history["val"], history["seconds"])
        if history["stop"]:  # a resumed run that had already stopped by the plateau rule or the budget
            break
        t0 = time.perf_counter()
        train_set.set_epoch(epoch)
        g.manual_seed(seed * 1000 + epoch)
        if world is None:
            loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True, generator=g, collate_fn=collate)
        else:
            sampler = torch.utils.data.DistributedSampler(train_set, world.size, world.rank, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(train_set, batch_size=batch // world.size, sampler=sampler,
                                                 collate_fn=collate)
        model.train()
        losses = []
        for b in tqdm(loader, desc=f"{desc} epoch {epoch + 1}/{epochs}", disable=not progress, leave=False):
            b = b.to(device)
            pix = None
            if pixels_per_step:
                n_pix = b.target.shape[-2] * b.target.shape[-1]
                pix = torch.randperm(n_pix, generator=g)[: min(pixels_per_step, n_pix)].to(device)
            target = b.target if pix is None else b.target.flatten(-2)[..., pix]
            if world is None:
                loss = rel_l1_loss(model.apply_to(b, pix), target)
                value = loss
            else:  # the global batch's relative L1 (docstring)
                pred = net(model.input_of(b), b.bin_times, b.t_query, pix, b.kspace, b.mask)
                num = (pred.abs() - target.abs()).abs().sum()
                totals = torch.stack([num.detach(), target.abs().sum()])
                dist.all_reduce(totals)
                loss = num / totals[1].clamp_min(1e-8) * world.size
                value = totals[0] / totals[1].clamp_min(1e-8)
            if not torch.isfinite(value):
                kept = f"epoch {best['epoch']}'s (the best)" if best is not None else "the last finished epoch's"
                history["stopped"] = f"{desc}: loss became {value.item()} in epoch {epoch + 1}; stopped, {kept} parameters kept"
                warnings.warn(history["stopped"], RuntimeWarning)
                if best is not None:
                    _keep(model, best, history, desc, progress)
                elif checkpoint is not None and Path(checkpoint).exists():
                    model.load_state_dict(torch.load(checkpoint, map_location=device, weights_only=False)["model"])
                return history
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(value.item())
        val = evaluate_loss(model, val_set, batch)
        sched.step(val)
        history["epoch"].append(epoch + 1); history["train"].append(float(np.mean(losses))); history["val"].append(val)
        history["seconds"].append(time.perf_counter() - t0); history["lr"].append(opt.param_groups[0]["lr"])
        if progress:
            print(f"{desc} epoch {epoch + 1}/{epochs}: train {history['train'][-1]:.4f} val {val:.4f} ({history['seconds'][-1]:.0f} s)")
        history["stop"] = config.stop_reason(history["val"], history["seconds"])
        if config.keep_best and (best is None or val < best["val"]):
            best = {"epoch": epoch + 1, "val": val, "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        if checkpoint is not None and lead:
            _atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                          "epoch": epoch, "history": history, "config": model.config.to_dict(), "tag": tag, "settings": settings,
                          **({"best": best} if best is not None else {})},
                         Path(checkpoint))
        if history["stop"]:
            if progress and epoch + 1 < epochs:
                print(f"{desc}: stopped, {history['stop']}")
            break
    history["stop"] = history["stop"] or config.stop_reason(history["val"], history["seconds"])  # resumed at the end
    history["kept_epoch"] = len(history["val"])
    if best is not None:
        _keep(model, best, history, desc, progress)
    return history


def _keep(model, best: dict, history: dict, desc: str, progress: bool):
    """Load the lowest-validation epoch's weights (``keep_best``) and record which epoch that is."""
    if best["epoch"] != len(history["val"]) and progress:
        print(f"{desc}: keeping epoch {best['epoch']}'s weights (validation {best['val']:.4f}; "
              f"the last epoch's: {history['val'][-1]:.4f})")
    model.load_state_dict(best["model"])
    history["kept_epoch"] = best["epoch"]


@torch.no_grad()
def evaluate_loss(model, dataset, batch: int = 4) -> float:
    model.eval()
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, collate_fn=collate)
    num = den = 0.0
    for b in loader:
        b = b.to(device)
        pred = model.apply_to(b)
        num += float((pred.abs() - b.target.abs()).abs().sum()); den += float(b.target.abs().sum())
    return num / max(den, 1e-12)


def save_model(model: LiifCine, path, extra: Optional[dict] = None):
    """Write the model's config (``ModelConfig.to_dict``), weights and ``extra`` (e.g. the
    training tag and history) atomically to ``path``."""
    _atomic_save({"config": model.config.to_dict(), "model": model.state_dict(), "extra": extra or {}}, Path(path))


def load_model(path, device: str = "cpu", bf16: Optional[bool] = None) -> LiifCine:
    """A saved model, rebuilt from the config it carries, in eval mode, on ``device``.

        model = liif.load_model("outputs/05_liif_architecture_search/R6_T8_sunnybrook/models/UNet.pt")
        cine = model.apply_to(liif.collate([sample]))[0]   # (T_query, H, W) complex

    ``bf16``: bfloat16 autocast of the CNNs. None: a model saved with bfloat16 (True or None)
    runs in it where ``device`` has fast bfloat16 (``bf16_supported``) and in float32 elsewhere
    (a CPU without AVX512-BF16 emulates bfloat16 many times slower than float32); a model saved
    with float32 stays in it. True / False: that.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved LIIF model at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)  # a model trained on a GPU loads anywhere
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise ValueError(f"{path} is not a LIIF model written by save_model (keys: config, model, extra)")
    config = ModelConfig.from_dict(state["config"])
    if bf16 is None:
        bf16 = config.bf16 is not False and bf16_supported(str(device))
    model = LiifCine(replace(config, bf16=bool(bf16)))
    model.load_state_dict(state["model"])  # copies into the float32 parameters (shipped weights are float16)
    warn_if_emulated_bf16(model, device, str(path))
    return model.to(device).eval()


def train_all(models: dict, train_set, val_set, out, config: TrainConfig, *, provenance=None,
              shipped=None, warn_bf16: bool = True) -> tuple[dict, dict, dict]:
    """Train each named model (checkpoints in OUT_DIR/checkpoints/, final models staged in
    models/ of the run, with ``provenance(name)`` when given). With ``shipped`` (a folder of
    shipped models, ``liif.shipped``), a model whose shipped provenance equals the run's is
    loaded instead of trained. Returns (histories, training seconds = the epochs' wall time,
    also across resumed sessions or of the shipped training, the shipped file per loaded model).
    ``warn_bf16``: ``train``'s (False for a caller that has already warned for these models)."""
    ckpt_dir = out.out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    spec = train_set.spec
    tag = f"R{spec.R:g}-T{spec.T_low}-{spec.T_high}-{[s.name for s in train_set.subjects[:3]]}-{len(train_set)}-seed{config.seed}"
    histories, seconds, loaded = {}, {}, {}
    for name, model in models.items():
        prov = provenance(name) if provenance else None
        state = find_shipped(shipped, name, prov) if prov is not None else None
        if state is not None:
            model.load_state_dict(state["model"])
            histories[name], loaded[name] = state["extra"]["history"], state["path"]
            seconds[name] = float(sum(histories[name]["seconds"]))
            print(f"{name}: evaluated from the shipped model {state['path']} (trained {len(histories[name]['val'])} epochs, "
                  f"{seconds[name]:.0f} s; RETRAIN=True trains it again)")
            continue
        t0 = time.perf_counter()
        histories[name] = train(model, train_set, val_set, config, ckpt_dir / f"{name}.pt", desc=name, tag=tag,
                                warn_bf16=warn_bf16)
        # epochs' wall time summed over every (resumed) session, so a resumed run reports the real cost
        seconds[name] = float(sum(histories[name]["seconds"])) or time.perf_counter() - t0
        save_model(model, out.path(f"models/{name}.pt"), {"tag": tag, "history": histories[name], "provenance": prov})
        print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, {seconds[name]:.0f} s"
              + (f"; {histories[name]['stop']}" if histories[name].get("stop") else ""))
    return histories, seconds, loaded
