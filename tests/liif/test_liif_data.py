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


def test_own_cines_become_the_same_subjects_as_the_sunnybrook_loader(tmp_path):
    """A Sunnybrook test slice handed in as your own cine (an image file, the same slice zero-padded
    to a rectangle, or its DATA name) gives the subject the Sunnybrook split gives; a file with no
    fully sampled cine, the phantom and an empty list are refused with a message naming the problem."""
    import h5py
    import numpy as np
    from inr_utils.io import DataFormatError, load_sunnybrook, save_kspace
    from inr_utils.acquisition import simulate

    cine, _ = load_sunnybrook("SCD0000501", "slice_051")
    np.save(tmp_path / "square.npy", cine)
    np.save(tmp_path / "wide.npy", np.pad(cine * 7.0 + 3.0, ((0, 0), (0, 0), (32, 32)), constant_values=3.0))
    reference = next(s for s in liif.subjects("sunnybrook", "test", 32) if s.name == "SCD0000501/slice_051")
    own = liif.cine_subjects([tmp_path / "square.npy", tmp_path / "wide.npy", "sunnybrook:SCD0000501/slice_051"], 32)
    t = np.array([0.0, 0.37, 0.9])
    for subject in own:
        assert subject.N == 32
        np.testing.assert_allclose(subject.magnitude(t), reference.magnitude(t), atol=1e-5)
    acq = simulate(cine[:4, :32, :32], 3.0, 0, 2, 0.0)
    acq.target = None
    save_kspace(tmp_path / "no_target.h5", acq)
    with h5py.File(tmp_path / "no_target.h5", "r") as f:
        assert "target" not in f
    with pytest.raises(DataFormatError, match="no fully sampled cine"):
        liif.cine_subjects([tmp_path / "no_target.h5"], 32)
    with pytest.raises(ValueError, match="phantom"):
        liif.cine_subjects(["phantom"], 32)
    with pytest.raises(ValueError, match="non-empty list"):
        liif.cine_subjects([], 32)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        liif.cine_subjects([tmp_path / "missing.npy"], 32)
