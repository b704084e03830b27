import pytest

from inr_utils import inr, liif
from inr_utils.registry import Registry


def test_register_build_and_a_typo_named():
    reg = Registry("widget")

    @reg.register("round")
    def _round(size, colour="red"):
        return (size, colour)

    assert "round" in reg and reg.build("round", 3, colour="blue") == (3, "blue")
    with pytest.raises(ValueError, match=r"unknown widget 'squre'; registered: \['round'\]"):
        reg.build("squre", 3)
    with pytest.raises(ValueError, match="registered already"):
        reg.register("round")(_round)


def test_representations_and_encoders_share_the_helper():
    assert isinstance(inr.REPRESENTATIONS, Registry) and isinstance(liif.ENCODERS, Registry)
    assert {"lowrank", "hashgrid", "siren"} <= set(inr.REPRESENTATIONS) and set(liif.ENCODERS) == {"unet2d", "unet3d", "rdn3d"}
    with pytest.raises(ValueError, match="unknown representation 'hashgird'"):
        inr.build("hashgird", (4, 8, 8))
