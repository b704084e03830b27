"""Small settings shared by the LIIF tests (tests/liif/ is on sys.path under pytest's default import mode)."""
import torch

from inr_utils import liif

#: a small binned acquisition: 8 acquisitions into 4 bins, 6 query times
SPEC = liif.AcquisitionSpec(R=3, T_low=4, T_high=8, T_query=6)


def mc(encoder: str, T_low: int, C: int = 16, hidden: int = 32, layers: int = 4, encoder_kwargs=None, **model):
    """A ModelConfig from the encoder's name and fields (``encoder_kwargs``) and the model's fields."""
    return liif.ModelConfig(liif.EncoderConfig(encoder, **(encoder_kwargs or {})), T_low, C, hidden, layers, **model)


def samples_equal(a: liif.Sample, b: liif.Sample) -> bool:
    ta, tb = a.tensors(), b.tensors()
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
