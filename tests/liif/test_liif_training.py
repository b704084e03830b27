import warnings

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
def test_training_on_cuda_takes_the_cpu_steps_and_the_model_loads_on_the_cpu(tmp_path, monkeypatch):
    sub = liif.subjects(None, "train", 16, 2)
    train_set = liif.LiifDataset(sub, SPEC, train=True, seed=0)
    val_set = liif.LiifDataset(liif.subjects(None, "val", 16, 1), SPEC, train=False, seed=1)
    torch.manual_seed(0)
    cpu = liif.LiifCine(mc("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]}))
    # cuDNN convolutions run in TF32 by default (about 1e-3 relative): float32 throughout to compare
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
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


def test_keep_best_ends_with_the_lowest_validation_epoch_also_when_resumed(tmp_path, monkeypatch):
    """keep_best: the model ends with the weights it had at its lowest validation error (epoch 2
    of the scripted errors), also across a resume from the checkpoint; without it, the last epoch's."""
    from inr_utils.liif import training

    sub = liif.subjects(None, "train", 16, 2)
    train_set = liif.LiifDataset(sub, SPEC, train=True, seed=0)
    val_set = liif.LiifDataset(liif.subjects(None, "val", 16, 1), SPEC, train=False, seed=1)
    make = lambda: liif.LiifCine(mc("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]}))
    scripted, snapshots = [0.5, 0.3, 0.4, 0.6], []

    def fake_validation(model, dataset, batch=4):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return scripted[len(snapshots) - 1]

    monkeypatch.setattr(training, "evaluate_loss", fake_validation)
    same = lambda model, snap: all(torch.equal(v, snap[k]) for k, v in model.state_dict().items())
    last = make()
    h = liif.train(last, train_set, val_set, liif.TrainConfig(4), progress=False)
    assert h["kept_epoch"] == 4 and same(last, snapshots[3])
    snapshots.clear()
    best = make()
    h = liif.train(best, train_set, val_set, liif.TrainConfig(4, keep_best=True), progress=False)
    assert h["kept_epoch"] == 2 and same(best, snapshots[1]) and not same(best, snapshots[3])
    snapshots.clear()
    ck = tmp_path / "ck.pt"
    liif.train(make(), train_set, val_set, liif.TrainConfig(3, keep_best=True), checkpoint=ck, progress=False)
    resumed = make()
    h = liif.train(resumed, train_set, val_set, liif.TrainConfig(4, keep_best=True), checkpoint=ck, progress=False)
    assert h["epoch"] == [1, 2, 3, 4] and h["kept_epoch"] == 2 and same(resumed, snapshots[1])
    with pytest.raises(ValueError, match="KEEP_BEST"):
        liif.TrainConfig(4, keep_best="yes")


def test_provenance_leaves_out_keep_best_only_when_off():
    """Models shipped before keep_best existed (trained on the last epoch's weights) still match a
    run with keep_best=False; a keep_best run asks for other models."""
    from inr_utils.liif.shipped import provenance

    data = liif.DataConfig(None, 16, SPEC, 6, 1, 1, 1, 0)
    config = mc("unet3d", 4)
    off = provenance(config, data, liif.TrainConfig(4), {})
    on = provenance(config, data, liif.TrainConfig(4, keep_best=True), {})
    assert "keep_best" not in off["training"] and on["training"]["keep_best"] is True


def test_training_or_loading_in_emulated_bf16_is_warned_about(tmp_path, monkeypatch):
    """A model set to bfloat16 on a device without fast bfloat16 warns when it is trained or
    loaded (a direct user of ``liif.train``, not only notebooks 04/05); float32 does not."""
    monkeypatch.setattr("inr_utils.liif.training.bf16_supported", lambda device: False)
    train_set = liif.LiifDataset(liif.subjects(None, "train", 16, 1), SPEC, train=True, seed=0)
    val_set = liif.LiifDataset(liif.subjects(None, "val", 16, 1), SPEC, train=False, seed=1)
    make = lambda bf16: liif.LiifCine(mc("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]}, bf16=bf16))
    with warnings.catch_warnings():  # as an error: the warning comes before any (emulated, slow) step
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(RuntimeWarning, match=r"tiny: the model runs its CNNs in bfloat16, which cpu does not have fast"):
            liif.train(make(True), train_set, val_set, liif.TrainConfig(1), progress=False, desc="tiny")
    liif.save_model(make(True), tmp_path / "m.pt")
    with pytest.warns(RuntimeWarning, match="m.pt: the model runs its CNNs in bfloat16"):
        liif.load_model(tmp_path / "m.pt", bf16=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        liif.train(make(False), train_set, val_set, liif.TrainConfig(1), progress=False, desc="tiny")
        assert liif.load_model(tmp_path / "m.pt").bf16 is False  # None on such a device: float32
