"""LIIF training on several processes (PyTorch DDP), launched by torchrun:

    torchrun --nproc_per_node 2 -m inr_utils.liif.ddp --out runs/unet --encoder unet3d \\
        --preset 05-defaults --data sunnybrook --R 6 --T-low 8 --epochs 32 --batch 4

gloo on CPU, NCCL on CUDA (one GPU per process, ``LOCAL_RANK``). The training subjects are
sharded by a ``DistributedSampler``; ``--batch`` is the global batch (split evenly over the
processes), so N processes take the steps that one process with that batch takes
(``training.train``). Rank 0 writes the checkpoint (``OUT/checkpoints/<name>.pt``, resumed
from when the settings match) and the model (``OUT/models/<name>.pt``, with its history and
the data split), which ``liif.load_model`` reads and the notebooks can evaluate. Validation is
the single-process path's, on the whole validation set in every process.

``python -m inr_utils.liif.ddp ...`` without torchrun trains in one process through the same
code (a world of one).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import torch.distributed as dist

from .config import AcquisitionSpec, DataConfig, TrainConfig, preset, PRESETS
from .data import datasets
from .model import LiifCine
from .training import World, save_model, train


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="torchrun --nproc_per_node N -m inr_utils.liif.ddp", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for checkpoints/ and models/")
    ap.add_argument("--name", default=None, help="the model's file name (default: the encoder)")
    ap.add_argument("--encoder", default="unet3d", help="unet2d, unet3d or rdn3d")
    ap.add_argument("--preset", default="05-defaults", choices=sorted(PRESETS))
    ap.add_argument("--data", default=None, help="None (phantom subjects), 'sunnybrook', or a Sunnybrook-layout file")
    ap.add_argument("--N", type=int, default=64)
    ap.add_argument("--R", type=float, default=6)
    ap.add_argument("--T-low", type=int, default=8)
    ap.add_argument("--T-high", type=int, default=32)
    ap.add_argument("--T-query", type=int, default=16)
    ap.add_argument("--n-train", type=int, default=36, help="phantom training subjects")
    ap.add_argument("--n-val", type=int, default=4)
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--epochs", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4, help="the global batch (a multiple of the number of processes)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--pixels-per-step", type=int, default=1024, help="0: every pixel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-gb", type=float, default=0.0)
    ap.add_argument("--no-resume", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> Path:
    args = parse_args(argv)
    cuda = torch.cuda.is_available()
    launched = "WORLD_SIZE" in os.environ  # torchrun sets it (and MASTER_ADDR / PORT, RANK, LOCAL_RANK)
    if launched and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    world = World.current() if dist.is_initialized() else World(0, 1)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    try:
        data = DataConfig(args.data, args.N, AcquisitionSpec(args.R, args.T_low, args.T_high, args.T_query),
                          n_train=args.n_train, n_val=args.n_val, seed=args.seed, augment=args.augment,
                          cache_gb=args.cache_gb)
        config = TrainConfig(args.epochs, args.lr, args.batch, args.pixels_per_step or None, args.seed,
                             not args.no_resume)
        train_set, val_set, _ = datasets(data)
        torch.manual_seed(args.seed)  # the same initial weights in every process (DDP also broadcasts rank 0's)
        model = LiifCine(preset(args.preset, args.encoder, args.T_low, bf16=False)).to(device)
        name = args.name or args.encoder
        out = Path(args.out)
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        history = train(model, train_set, val_set, config, out / "checkpoints" / f"{name}.pt", desc=name,
                        world=world if dist.is_initialized() else None)
        path = out / "models" / f"{name}.pt"
        if world.lead:
            path.parent.mkdir(parents=True, exist_ok=True)
            split = {"train": [s.name for s in train_set.subjects], "val": [s.name for s in val_set.subjects]}
            save_model(model, path, {"history": history, "processes": world.size, "data": vars(args), "split": split})
            print(f"{name}: {world.size} process(es), validation relative L1 {history['val'][-1]:.4f}, "
                  f"{sum(history['seconds']) / max(len(history['seconds']), 1):.1f} s per epoch -> {path}")
        return path
    finally:
        if launched and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
