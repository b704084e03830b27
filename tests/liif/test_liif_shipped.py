"""Training to a plateau or a budget, shipped models (provenance, float16, evaluated instead of
training when every setting matches), and reconstructing one's own binned k-space."""
import json
import warnings

import numpy as np
import pytest
import torch

from inr_utils import figures, liif
from inr_utils.acquisition import binned_acquisition
from inr_utils.liif.model import bf16_supported
from inr_utils.phantom import BeatingHeartPhantom
from inr_utils.runs import RunOutputs
from liif_helpers import SPEC, mc


def test_stop_reason_plateau_budget_and_most_epochs():
    cfg = liif.TrainConfig(20, plateau=0.01, min_epochs=4)
    falling = [1.0 * 0.9 ** k for k in range(8)]
    assert cfg.stop_reason(falling, [1.0] * 8) == ""  # still 10 % better per epoch
    flat = falling[:4] + [falling[3] * 0.999] * 4  # last quarter (2 epochs) improves by 0.1 %
    assert cfg.stop_reason(flat, [1.0] * 8).startswith("plateau after 8 epochs")
    assert cfg.stop_reason(flat[:3], [1.0] * 3) == ""  # before min_epochs
    assert liif.TrainConfig(20, max_seconds=5).stop_reason(falling[:3], [2.0] * 3).startswith("time budget")
    assert liif.TrainConfig(8).stop_reason(falling, [1.0] * 8).startswith("reached the most epochs")
    for bad in (0.0, 1.0, float("nan"), True):
        with pytest.raises(ValueError, match="PLATEAU"):
            liif.TrainConfig(4, plateau=bad)
    # two epochs have no quarter before the last one: the rule waits instead of failing
    assert liif.TrainConfig(20, plateau=0.01, min_epochs=2).stop_reason(flat[:2], [1.0] * 2) == ""


def test_last_quarter_gain_is_what_the_plateau_rule_compares():
    from inr_utils.liif.config import last_quarter_gain

    val = [1.0, 0.5, 0.4, 0.45, 0.38, 0.39, 0.37, 0.36]  # q = 2: best of the last two 0.36, before them 0.38
    gain, q, recent, before = last_quarter_gain(val)
    assert q == 2 and (recent, before) == (0.36, 0.38) and gain == pytest.approx(1 - 0.36 / 0.38)
    assert last_quarter_gain([1.0, 0.5, 0.6, 0.7])[0] == pytest.approx(-0.2)  # a worse last quarter is negative
    assert last_quarter_gain(list(np.linspace(1, 0.5, 40)))[1] == 10
    cfg = lambda p: liif.TrainConfig(20, plateau=p, min_epochs=4)
    assert cfg(0.06).stop_reason(val, [1.0] * 8).startswith("plateau") and cfg(0.05).stop_reason(val, [1.0] * 8) == ""
    with pytest.raises(ValueError, match="at least 3 epochs"):
        last_quarter_gain([1.0, 0.9])


def _tiny_sets():
    train_set = liif.LiifDataset(liif.subjects(None, "train", 16, 2), SPEC, train=True, seed=0)
    val_set = liif.LiifDataset(liif.subjects(None, "val", 16, 1), SPEC, train=False, seed=1)
    return train_set, val_set


def _tiny_model():
    return liif.LiifCine(mc("unet3d", 4, 4, hidden=8, layers=2, encoder_kwargs={"channels": [4, 8]}))


def test_training_stops_at_a_plateau_and_a_resumed_run_stays_stopped(tmp_path):
    train_set, val_set = _tiny_sets()
    cfg = liif.TrainConfig(30, lr=1e-12, plateau=0.01, min_epochs=3)  # no learning: flat validation error
    ck = tmp_path / "ck.pt"
    torch.manual_seed(0)
    h = liif.train(_tiny_model(), train_set, val_set, cfg, checkpoint=ck, progress=False)
    assert h["epoch"] == [1, 2, 3] and h["stop"].startswith("plateau after 3 epochs")
    again = liif.train(_tiny_model(), train_set, val_set, cfg, checkpoint=ck, progress=False)
    assert again["epoch"] == [1, 2, 3] and again["stop"] == h["stop"]


def _experiment(shipped=None, seed=0, bf16=False):
    data = liif.DataConfig(None, 16, SPEC, 6, n_train=2, n_val=1, n_test=1, seed=seed)
    return liif.LiifExperiment(data, liif.TrainConfig(2, batch=2), {"3D": mc("unet3d", 4, 4, hidden=8, layers=2, bf16=bf16,
                                                                           encoder_kwargs={"channels": [4, 8]})},
                               shipped=shipped)


@pytest.mark.filterwarnings("ignore:models .* run their CNNs in bfloat16")  # the bfloat16 run below, on a CPU without it
def test_a_shipped_model_is_evaluated_instead_of_trained_only_when_every_setting_matches(tmp_path, capsys):
    run_dir = tmp_path / "04_liif_2d_vs_3d" / "R6"
    trained = liif.LiifRunner(_experiment()).run(out := RunOutputs(run_dir))
    out.write_json("metrics.json", trained.record)
    out.commit()
    dest = liif.ship(run_dir, tmp_path / "shipped")
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["split"]["test"] == ["phantom-9000"] and manifest["models"]["3D"]["epochs"] == 2
    state = torch.load(dest / "3D.pt", weights_only=False)
    assert all(v.dtype == torch.float16 for v in state["model"].values() if v.is_floating_point())

    reused = liif.LiifRunner(_experiment(shipped=dest)).run(RunOutputs(tmp_path / "again"))
    m = reused.record["methods"]["3D"]
    assert m["shipped"] == str(dest / "3D.pt") and m["epochs"] == 2
    assert m["train_seconds"] == pytest.approx(trained.record["methods"]["3D"]["train_seconds"])
    assert not (tmp_path / "again" / "checkpoints" / "3D.pt").exists()  # nothing trained
    # float16 weights: the same reconstructions to about 1e-3
    a, b = trained.recons["3D"][0], reused.recons["3D"][0]
    assert np.linalg.norm(a - b) < 3e-3 * np.linalg.norm(a)

    other = liif.LiifRunner(_experiment(shipped=dest, seed=1)).run(RunOutputs(tmp_path / "other"))  # another seed
    assert "shipped" not in other.record["methods"]["3D"]
    assert "was trained with other data; training it here" in capsys.readouterr().out

    # bfloat16 says how the CNNs run, not what the weights are: a run in the other precision
    # (a device with or without fast bfloat16) evaluates the shipped model in its own precision
    b16 = liif.LiifRunner(_experiment(shipped=dest, bf16=True)).run(RunOutputs(tmp_path / "b16"))
    assert b16.record["methods"]["3D"]["shipped"] == str(dest / "3D.pt") and b16.record["bf16"] is True
    assert "trained with bf16=False; this run evaluates it with bf16=True" in capsys.readouterr().out
    c = b16.recons["3D"][0]
    assert 0 < np.linalg.norm(c - b) < 3e-2 * np.linalg.norm(b)  # bfloat16 CNNs: close, not equal


def test_a_shipped_model_matches_whatever_min_epochs_when_no_plateau_rule_was_set(tmp_path):
    """min_epochs only says when the plateau rule may stop training: without the rule the
    weights do not depend on it, with the rule they do."""
    from inr_utils.liif.shipped import find

    def prov(plateau, min_epochs):
        return {"model": {"T_low": 8, "bf16": False}, "data": {"N": 16}, "split": {"test": ["a"]},
                "training": {"epochs": 32, "plateau": plateau, "min_epochs": min_epochs}}

    for plateau, matches in ((None, True), (0.01, False)):
        torch.save({"config": {}, "model": {}, "extra": {"provenance": prov(plateau, 8)}}, tmp_path / "UNet.pt")
        assert (find(tmp_path, "UNet", prov(plateau, 40)) is not None) is matches
        assert find(tmp_path, "UNet", prov(plateau, 8)) is not None


def test_an_experiment_in_emulated_bf16_warns_once_not_per_trained_model(tmp_path):
    """Where bfloat16 is emulated (a CPU without AVX512-BF16) an experiment forced to it says so
    once, at set-up, naming its models; the training of each model adds no second warning.
    Where bfloat16 is fast nothing is said."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        liif.LiifRunner(_experiment(bf16=True)).run(RunOutputs(tmp_path / "b16"))
    emulated = [str(w.message) for w in caught if "does not have fast" in str(w.message)]
    if bf16_supported("cpu"):
        assert emulated == []
    else:
        assert len(emulated) == 1 and emulated[0].startswith("models ['3D'] run their CNNs in bfloat16")


def test_ship_refuses_a_folder_without_a_finished_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the notebook there first"):
        liif.ship(tmp_path)
    (tmp_path / "models").mkdir()
    liif.save_model(_tiny_model(), tmp_path / "models" / "m.pt")  # saved by hand: no provenance
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="carries no provenance"):
        liif.ship(tmp_path, tmp_path / "dest")
    assert not (tmp_path / "dest").exists() and not (tmp_path / "dest.partial").exists()


def test_reconstruct_own_binned_kspace_matches_the_sample_path():
    ph = BeatingHeartPhantom(3)
    acq = binned_acquisition(lambda t: ph(t, 16, 16).astype(np.complex64), 3, 4, 8, seed=2)
    tq = (np.arange(6) + 0.5) / 6
    sample = liif.sample_from_bins(acq.kspace[:, 0], acq.mask, acq.bin_times, tq)
    zf = torch.complex(sample.zf[0], sample.zf[1]).numpy()
    assert np.allclose(zf, acq.zero_filled, atol=1e-5)  # single coil: the adjoint is the inverse FFT of the lines
    torch.manual_seed(0)
    model = liif.LiifCine(mc("unet3d", 4, 4, hidden=8, layers=2, input="vs", encoder_kwargs={"channels": [4, 8]})).eval()
    cine = liif.reconstruct(model, acq.kspace[:, 0], acq.mask, acq.bin_times, tq)
    assert cine.shape == (6, 16, 16) and np.iscomplexobj(cine)
    with torch.no_grad():
        direct = model.apply_to(liif.collate([sample]))[0].numpy()
    assert np.allclose(cine, direct)
    with pytest.raises(ValueError, match="reads 4 bins"):
        liif.reconstruct(model, acq.kspace[:3, 0], acq.mask[:3])
    with pytest.raises(ValueError, match="complex"):
        liif.sample_from_bins(np.abs(acq.kspace[:, 0]), acq.mask)
    with pytest.raises(ValueError, match="mask must be"):
        liif.sample_from_bins(acq.kspace[:, 0], acq.mask[:, :-1])
    bad = acq.kspace[:, 0].copy(); bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        liif.sample_from_bins(bad, acq.mask)
    with pytest.raises(ValueError, match="t_query"):
        liif.sample_from_bins(acq.kspace[:, 0], acq.mask, t_query=[0.5, 1.5])
    with pytest.raises(ValueError, match="t_query"):
        liif.sample_from_bins(acq.kspace[:, 0], acq.mask, t_query=[])
    for T_query in (0, -1, 2.5, True, "eight", None):
        with pytest.raises(ValueError, match="T_query must be an integer >= 1"):
            liif.reconstruct(model, acq.kspace[:, 0], acq.mask, T_query=T_query)
    with pytest.raises(ValueError, match=r"complex array \(T_low, H, W\), got complex64 of shape"):  # one frame: named as a shape, not as a bin count
        liif.reconstruct(model, acq.kspace[0, 0], acq.mask[0])


def test_learning_curves_figure(tmp_path):
    h = {"epoch": [1, 2, 3], "val": [0.5, 0.3, 0.29], "seconds": [1.0, 1.0, 1.2], "stop": "plateau after 3 epochs"}
    path = figures.learning_curves(tmp_path / "lc.png", {"a": h, "b": {**h, "stop": ""}}, reference={"ZF": 0.4})
    img = plt_read(path)
    assert img.shape[0] > 200 and img.shape[1] > 600


def plt_read(path):
    import matplotlib.pyplot as plt

    return plt.imread(path)
