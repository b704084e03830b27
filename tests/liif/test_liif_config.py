import pytest
import torch

from inr_utils import liif
from liif_helpers import mc


def test_encoder_fields_take_the_encoders_defaults_and_refuse_foreign_ones():
    assert liif.EncoderConfig("rdn3d").kwargs() == {"channels": 32, "blocks": 5, "layers": 6, "growth": 32, "circular": False}
    assert liif.EncoderConfig("unet2d", channels=[8, 16]).kwargs() == {"channels": [8, 16], "he": True}
    with pytest.raises(ValueError, match="has no field 'blocks'"):
        liif.EncoderConfig("unet3d", blocks=2)
    with pytest.raises(ValueError, match="unknown encoder 'unet4d'; registered"):
        liif.EncoderConfig("unet4d")
    with pytest.raises(ValueError, match="channels must be an integer >= 1"):
        liif.EncoderConfig("unet3d", channels=[8, 0])


def test_presets_name_the_original_and_notebook_05_settings():
    orig = liif.preset("original", "unet3d", 8)
    assert orig.input == "zf" and not (orig.residual or orig.image_skip or orig.final_dc) and orig.dc_stages == 0
    assert orig.encoder.kwargs() == {"channels": [16, 32, 64], "he": False, "circular": False}
    rdn = liif.preset("05-defaults", "rdn3d", 4, bf16=True)
    assert (rdn.input, rdn.dc_cascade, rdn.dc_stages, rdn.final_dc, rdn.bf16) == ("vs", (8, 16, 32), 4, True, True)
    assert rdn.encoder.kwargs()["circular"] and rdn.encoder.channels == 12
    wide = liif.preset("fair", "unet2d", 8, encoder_fields={"channels": [16, 32]}, C=64)
    assert wide.encoder.kwargs() == {"channels": [16, 32], "he": False} and wide.C == 64 and wide.input == "vs"
    with pytest.raises(ValueError, match="has no field 'blocks'"):
        liif.preset("fair", "unet3d", 8, encoder_fields={"blocks": 2})
    with pytest.raises(ValueError, match="no 'unet2d' encoder"):
        liif.preset("05-defaults", "unet2d", 4)
    with pytest.raises(ValueError, match="unknown preset"):
        liif.preset("paper", "unet3d", 4)


def test_model_config_round_trips_and_the_model_needs_one(tmp_path):
    cfg = liif.preset("05-defaults", "unet3d", 4, dc_cascade=(4,), dc_stages=1)
    assert liif.ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert mc("unet3d", 4, dc_stages=3).dc_stages == 0  # no cascade, no stages
    with pytest.raises(TypeError, match="ModelConfig"):
        liif.LiifCine("unet3d")
    torch.manual_seed(0)
    model = liif.LiifCine(cfg)
    liif.save_model(model, tmp_path / "m.pt")
    assert liif.load_model(tmp_path / "m.pt").config == cfg
    with pytest.raises(FileNotFoundError, match="no saved LIIF model"):
        liif.load_model(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a LIIF model"):
        liif.load_model(tmp_path / "other.pt")


@pytest.mark.parametrize("kw,match", [({"R": 0.5}, "acceleration R"), ({"T_low": 3}, "multiple of T_low"),
                                      ({"T_query": 0}, "T_query must be an integer")])
def test_acquisition_spec_is_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        liif.AcquisitionSpec(**{"R": 3, "T_low": 4, "T_high": 8, **kw})


def test_train_and_data_configs_are_checked():
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        liif.TrainConfig(0)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        liif.TrainConfig(2, lr=float("nan"))
    assert liif.TrainConfig(2, pixels_per_step=0).pixels_per_step is None
    with pytest.raises(ValueError, match="N must be an integer >= 16"):
        liif.DataConfig(None, 8)
    with pytest.raises(ValueError, match="another T_low"):
        liif.LiifExperiment(liif.DataConfig(None, 16, liif.AcquisitionSpec(3, 4, 8, 4)), liif.TrainConfig(1),
                            {"m": mc("unet3d", 8)})


def test_bf16_none_means_where_the_device_has_it(monkeypatch):
    """bf16=None in a model's settings becomes the experiment device's bfloat16 support (the
    record then holds that bool); an explicit value is kept; models that differ are named; an
    explicit bfloat16 on a device without fast bfloat16 is warned about."""
    data = liif.DataConfig(None, 16, liif.AcquisitionSpec(3, 4, 8, 4))
    for supported in (True, False):
        monkeypatch.setattr("inr_utils.liif.experiment.bf16_supported", lambda device: supported)
        exp = liif.LiifExperiment(data, liif.TrainConfig(1), {"a": mc("unet3d", 4, bf16=None), "b": mc("unet3d", 4, bf16=None)})
        assert exp.models["a"].bf16 is supported and exp.bf16 is supported
    with pytest.warns(RuntimeWarning, match=r"models \['b'\] run their CNNs in bfloat16, which cpu does not have fast"):
        mixed = liif.LiifExperiment(data, liif.TrainConfig(1), {"a": mc("unet3d", 4, bf16=None), "b": mc("unet3d", 4, bf16=True)})
    assert mixed.bf16 == {"a": False, "b": True}
