import numpy as np
import pytest
import torch

from inr_utils import liif
from liif_helpers import SPEC, mc


def _overfit(encoder, kw):
    torch.manual_seed(0)
    ds = liif.LiifDataset(liif.subjects(None, "train", 16, 1), SPEC, train=False, seed=0)
    model = liif.LiifCine(mc(encoder, 4, 8, hidden=32, layers=3, encoder_kwargs=kw))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    b = liif.collate([ds[0]])
    first = None
    for _ in range(150):
        loss = liif.rel_l1_loss(model(b.zf, b.bin_times, b.t_query), b.target)
        first = first if first is not None else loss.item()
        opt.zero_grad(); loss.backward(); opt.step()
    return first, loss.item()


@pytest.mark.parametrize("encoder,kw", [("unet2d", {"channels": [8, 16]}), ("unet3d", {"channels": [8, 16]})])
def test_encoders_overfit_one_sample(encoder, kw):
    first, last = _overfit(encoder, kw)
    assert last < 0.5 * first


def test_train_resume_and_save(tmp_path):
    sub = liif.subjects(None, "train", 16, 2)
    train_set = liif.LiifDataset(sub, SPEC, train=True, seed=0)
    val_set = liif.LiifDataset(liif.subjects(None, "val", 16, 1), SPEC, train=False, seed=1)
    make = lambda: liif.LiifCine(mc("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]}))
    ck = tmp_path / "ck.pt"
    h1 = liif.train(make(), train_set, val_set, liif.TrainConfig(1), checkpoint=ck, progress=False, tag="a")
    m2 = make()
    h2 = liif.train(m2, train_set, val_set, liif.TrainConfig(2), checkpoint=ck, progress=False, tag="a")  # resumes at epoch 2
    assert h1["epoch"] == [1] and h2["epoch"] == [1, 2]
    # another batch size, or fewer epochs than the checkpoint ran, trains afresh
    h3 = liif.train(make(), train_set, val_set, liif.TrainConfig(1, batch=2), checkpoint=ck, progress=False, tag="a")
    assert h3["epoch"] == [1] and h3["seconds"][0] != h1["seconds"][0]
    liif.train(make(), train_set, val_set, liif.TrainConfig(2), checkpoint=ck, progress=False, tag="a")
    h4 = liif.train(make(), train_set, val_set, liif.TrainConfig(1), checkpoint=ck, progress=False, tag="a")
    assert h4["epoch"] == [1]
    liif.save_model(m2, tmp_path / "m.pt")
    back = liif.load_model(tmp_path / "m.pt")
    s = val_set[0]
    assert np.allclose(liif.predict(back, s)[0], liif.predict(m2.eval(), s)[0], atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_takes_the_cpu_steps_and_the_model_loads_on_the_cpu(tmp_path):
    sub = liif.subjects(None, "train", 16, 2)
    train_set = liif.LiifDataset(sub, SPEC, train=True, seed=0)
    val_set = liif.LiifDataset(liif.subjects(None, "val", 16, 1), SPEC, train=False, seed=1)
    torch.manual_seed(0)
    cpu = liif.LiifCine(mc("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]}))
    gpu = liif.LiifCine(cpu.config).to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    h_cpu = liif.train(cpu, train_set, val_set, liif.TrainConfig(2), progress=False)
    h_gpu = liif.train(gpu, train_set, val_set, liif.TrainConfig(2), checkpoint=tmp_path / "ck.pt", progress=False)
    assert np.allclose(h_gpu["val"], h_cpu["val"], rtol=1e-3)  # the same steps, to float rounding
    liif.save_model(gpu, tmp_path / "m.pt")
    back = liif.load_model(tmp_path / "m.pt")  # on the CPU
    s = val_set[0]
    assert next(back.parameters()).device.type == "cpu"
    assert np.allclose(liif.predict(back, s)[0], liif.predict(gpu, s)[0], atol=1e-4)


def test_an_unknown_device_is_refused_by_the_experiment():
    data = liif.DataConfig(None, 16, SPEC, 6, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="DEVICE must be"):
        liif.LiifExperiment(data, liif.TrainConfig(1), {"UNet": mc("unet3d", 4)}, device="tpu")
