"""LIIF training on several processes (gloo on CPU): 2 processes end with the parameters of 1
process with the same global batch; the torchrun entry point writes a model load_model reads."""
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from inr_utils import liif
from liif_helpers import SPEC, mc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(rank, size, port, out, epochs):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    try:
        torch.set_num_threads(1)
        train_set = liif.LiifDataset(liif.subjects(None, "train", 16, 4), SPEC, train=True, seed=0, augment=True)
        val_set = liif.LiifDataset(liif.subjects(None, "val", 16, 1), SPEC, train=False, seed=1)
        torch.manual_seed(0)
        model = liif.LiifCine(mc("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]}))
        history = liif.train(model, train_set, val_set, liif.TrainConfig(epochs, batch=4, pixels_per_step=64), progress=False,
                             world=liif.World.current())
        if rank == 0:
            torch.save({"state": model.state_dict(), "history": history}, out)
    finally:
        dist.destroy_process_group()


def _run(size, out, epochs=2):
    mp.spawn(_train, args=(size, _free_port(), str(out), epochs), nprocs=size, join=True)
    return torch.load(out, weights_only=False)


def test_two_gloo_processes_take_the_steps_of_one_with_the_same_global_batch(tmp_path):
    one, two = _run(1, tmp_path / "one.pt"), _run(2, tmp_path / "two.pt")
    for name, p in one["state"].items():
        assert torch.allclose(p, two["state"][name], rtol=1e-4, atol=1e-6), name
    assert np.allclose(one["history"]["train"], two["history"]["train"], rtol=1e-4)
    assert one["history"]["val"] == pytest.approx(two["history"]["val"], rel=1e-4)  # validation: the whole set in each
    moved = max((p - q).abs().max().item() for p, q in zip(one["state"].values(), liif.LiifCine(
        mc("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]})).state_dict().values()))
    assert moved > 1e-3  # the steps did change the parameters


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    train_set = liif.LiifDataset(liif.subjects(None, "train", 16, 2), SPEC, train=True, seed=0)
    model = liif.LiifCine(mc("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]}))
    with pytest.raises(ValueError, match="batch 3 must be a multiple of the number of processes \\(2\\)"):
        liif.train(model, train_set, train_set, liif.TrainConfig(1, batch=3), world=liif.World(0, 2))


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="torchrun not installed")
def test_torchrun_entry_point_writes_a_model_the_notebooks_can_load(tmp_path):
    cmd = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc_per_node", "2", "--master_port",
           str(_free_port()), "-m", "inr_utils.liif.ddp", "--out", str(tmp_path), "--encoder", "unet3d", "--preset",
           "original", "--N", "16", "--T-low", "4", "--T-high", "8", "--T-query", "4", "--n-train", "4", "--n-val", "1",
           "--epochs", "1", "--batch", "2", "--pixels-per-step", "64"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 process(es)" in proc.stdout
    model = liif.load_model(tmp_path / "models" / "unet3d.pt")
    state = torch.load(tmp_path / "models" / "unet3d.pt", weights_only=False)
    assert state["extra"]["processes"] == 2 and len(state["extra"]["split"]["train"]) == 4
    sample = liif.LiifDataset(liif.subjects(None, "val", 16, 1), liif.AcquisitionSpec(6, 4, 8, 4), train=False, seed=1)[0]
    assert liif.predict(model, sample)[0].shape[-2:] == (16, 16)
