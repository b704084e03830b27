import pytest
import torch

from inr_utils import liif
from inr_utils.io import SUNNYBROOK_FILE, SUNNYBROOK_SPLIT
from liif_helpers import SPEC, samples_equal


def test_sample_shapes_and_determinism():
    subj = liif.subjects(None, "train", 16, 1)[0]
    a, b = liif.make_sample(subj, SPEC, seed=3, train=True), liif.make_sample(subj, SPEC, seed=3, train=True)
    assert a.zf.shape == (2, 4, 16, 16) and a.target.shape == (6, 16, 16) and a.mask.shape == (4, 16)
    assert samples_equal(a, b)
    ev = liif.make_sample(subj, SPEC, seed=3, train=False)
    assert torch.allclose(ev.t_query, (torch.arange(6) + 0.5) / 6)


def test_splits_never_share_a_patient_or_seed():
    names = {s: {x.name.split("/")[0] for x in liif.subjects(SUNNYBROOK_FILE, s, 16)} for s in ("train", "val", "test")}
    assert names["train"] == set(SUNNYBROOK_SPLIT["train"]) and names["test"] == set(SUNNYBROOK_SPLIT["test"])
    assert not (names["train"] & names["val"] or names["train"] & names["test"] or names["val"] & names["test"])
    seeds = {s: {x.name for x in liif.subjects(None, s, 16, 50)} for s in ("train", "val", "test")}
    assert not (seeds["train"] & seeds["val"] or seeds["train"] & seeds["test"] or seeds["val"] & seeds["test"])


def test_augmentation_is_deterministic_and_only_in_training():
    sub = liif.subjects(None, "train", 16, 2)
    plain = liif.LiifDataset(sub, SPEC, train=True, seed=0)
    aug, aug2 = (liif.LiifDataset(sub, SPEC, train=True, seed=0, augment=True) for _ in range(2))
    a, b = aug[1], aug2[1]
    assert samples_equal(a, b)
    assert not torch.equal(a.target, plain[1].target)
    ev = liif.LiifDataset(sub, SPEC, train=False, seed=0, augment=True)  # evaluation is never augmented
    assert torch.equal(ev[0].target, liif.LiifDataset(sub, SPEC, train=False, seed=0)[0].target)


def test_sample_cache_returns_the_same_samples_within_its_memory_cap():
    sub = liif.subjects(None, "train", 16, 2)
    plain = liif.LiifDataset(sub, SPEC, train=True, seed=0, augment=True)
    cached = liif.LiifDataset(sub, SPEC, train=True, seed=0, augment=True, cache_bytes=1e9)
    tiny = liif.LiifDataset(sub, SPEC, train=True, seed=0, augment=True, cache_bytes=1000)
    for _ in range(2):  # the second pass reads the cache
        for epoch in (0, 1):
            for ds in (plain, cached, tiny):
                ds.set_epoch(epoch)
            for i in range(2):
                a, b = plain[i], cached[i]
                assert samples_equal(a, b)
    assert len(cached._cache) == 4 and cached[1] is cached[1]  # (epoch, index) keys
    assert not tiny._cache  # a sample is larger than its cap
    with pytest.raises(ValueError, match="SAMPLE_CACHE_GB"):
        liif.DataConfig(None, 16, liif.AcquisitionSpec(3, 4, 16, 4), 4, 1, 1, 1, 0, cache_gb=-1)
