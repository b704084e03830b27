import h5py
import numpy as np
import pytest

from inr_utils import io
from inr_utils.acquisition import simulate
from inr_utils.fourier import fft2c
from inr_utils.phantom import phantom_cine


def _write_kspace(path, **override):
    """A k-space file in the project's layout, with any dataset replaced or dropped (None)."""
    acq = simulate(phantom_cine(4, 16, 16, seed=0), R=2, seed=0, coils=2)
    data = {"kspace": acq.kspace, "mask": acq.mask, "smaps": acq.smaps, "target": acq.target}
    data.update(override)
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            if v is not None:
                f[k] = v
        f.attrs.update(acceleration=2.0, noise_std=1e-3, seed=0)
    return acq


def test_kspace_roundtrip(tmp_path, tiny_acq):
    path = io.save_kspace(tmp_path / "case.h5", tiny_acq)
    back = io.load_kspace(path)
    for k in ("kspace", "mask", "smaps", "target"):
        assert np.array_equal(getattr(back, k), getattr(tiny_acq, k))
    assert back.acceleration == 3 and back.noise_std == 1e-3 and back.seed == 1
    with h5py.File(path) as f:
        assert f["kspace"].dtype == np.complex64 and f["mask"].dtype == np.uint8
        assert f["kspace"].shape == (8, 3, 32, 32) and f["mask"].shape == (8, 32) and f["smaps"].shape == (3, 32, 32)


def test_kspace_without_target_loads(tmp_path):
    _write_kspace(tmp_path / "k.h5", target=None)
    assert io.load_kspace(tmp_path / "k.h5").target is None


@pytest.mark.parametrize("override,message", [
    ({"mask": None}, "missing dataset 'mask'"),
    ({"kspace": None}, "missing dataset 'kspace'"),
    ({"kspace": np.ones((4, 2, 16, 16), np.float32)}, "'kspace' must be complex .*lost its phase"),
    ({"kspace": np.zeros((4, 16, 16), np.complex64)}, "must be \\(T, C, H, W\\)"),
    ({"mask": np.ones((4, 15), np.uint8)}, "'mask' must be \\(T, W\\)"),
    ({"smaps": np.ones((3, 16, 16), np.complex64)}, "'smaps' must be \\(C, H, W\\)"),
    ({"target": np.ones((4, 16, 8), np.complex64)}, "'target' must be"),
    ({"mask": np.full((4, 16), 2, np.uint8)}, "only 0 and 1"),
])
def test_broken_kspace_files(tmp_path, override, message):
    _write_kspace(tmp_path / "bad.h5", **override)
    with pytest.raises(io.DataFormatError, match=message):
        io.load_kspace(tmp_path / "bad.h5")


def test_nan_and_mask_mismatch(tmp_path):
    acq = simulate(phantom_cine(4, 16, 16, seed=0), R=2, seed=0, coils=2)
    k = acq.kspace.copy(); k[0, 0, 0, 0] = np.nan
    _write_kspace(tmp_path / "nan.h5", kspace=k)
    with pytest.raises(io.DataFormatError, match="'kspace' contains NaN or Inf"):
        io.load_kspace(tmp_path / "nan.h5")
    k = acq.kspace.copy(); line = int(np.flatnonzero(acq.mask[0] == 0)[0]); k[0, :, :, line] = 1
    _write_kspace(tmp_path / "mis.h5", kspace=k)
    with pytest.raises(io.DataFormatError, match="non-zero samples on lines where 'mask' is 0"):
        io.load_kspace(tmp_path / "mis.h5")


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        io.load_kspace(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(io.DataFormatError, match="not a readable HDF5"):
        io.load_kspace(tmp_path / "text.h5")


def test_truncated_kspace_file_is_named_as_such(tmp_path, tiny_acq):
    io.save_kspace(tmp_path / "whole.h5", tiny_acq)
    data = (tmp_path / "whole.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[:len(data) // 2])  # a copy interrupted half-way
    with pytest.raises(io.DataFormatError, match="not a readable HDF5 file.*truncated"):
        io.load_case(str(tmp_path / "cut.h5"))


def test_image_cine_loaders(tmp_path):
    cine = np.random.default_rng(0).random((5, 12, 10)).astype(np.float32)
    np.save(tmp_path / "c.npy", cine)
    np.savez(tmp_path / "c.npz", cine=cine)
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["group/images"] = cine
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"], f["b"] = cine, cine
    for name in ("c.npy", "c.npz", "c.h5"):
        assert np.array_equal(io.load_image_cine(tmp_path / name), cine)
    with pytest.raises(io.DataFormatError, match="expected one 3-D dataset"):
        io.load_image_cine(tmp_path / "two.h5")
    np.save(tmp_path / "flat.npy", cine[0])
    with pytest.raises(io.DataFormatError, match="must be \\(T, H, W\\)"):
        io.load_image_cine(tmp_path / "flat.npy")


def _write_sunnybrook(path, patients=("SCD0000101", "SCD0000501"), slices=3, T=4):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        n = 0
        for p in patients:
            for _ in range(slices):
                g = f.create_group(f"{p}/slice_{n:03d}")
                g.create_dataset("cine", data=rng.integers(0, 2900, (T, 16, 16)).astype(np.uint16), compression="gzip")
                g.attrs.update(patient=p, slice_location=float(n), pixel_spacing_mm=[1.3, 1.3],
                               trigger_times_ms=np.linspace(0, 700, T), crop_center_yx=[60, 60])
                n += 1


def test_sunnybrook_loader_on_real_layout(tmp_path):
    _write_sunnybrook(tmp_path / "sb.h5")
    index = io.sunnybrook_slices(tmp_path / "sb.h5")
    assert index == {"SCD0000101": ["slice_000", "slice_001", "slice_002"], "SCD0000501": ["slice_003", "slice_004", "slice_005"]}
    cine, attrs = io.load_sunnybrook(path=tmp_path / "sb.h5")  # default: test patient, mid slice
    assert attrs["patient"] == "SCD0000501" and attrs["slice"] == "slice_004"
    assert cine.shape == (4, 16, 16) and cine.min() == 0 and cine.max() == 1
    assert io.load_sunnybrook("101", 1, path=tmp_path / "sb.h5")[1]["slice"] == "slice_001"
    with pytest.raises(io.DataFormatError, match="no patient SCD0000301"):
        io.load_sunnybrook("301", path=tmp_path / "sb.h5")
    with pytest.raises(io.DataFormatError, match="has no slice_009"):
        io.load_sunnybrook("101", 9, path=tmp_path / "sb.h5")


def test_shipped_file_and_split(monkeypatch):
    monkeypatch.delenv("INR_SUNNYBROOK", raising=False)
    assert io.sunnybrook_path() == io.SUNNYBROOK_FILE
    index = io.sunnybrook_slices()
    assert set(index) == {p for group in io.SUNNYBROOK_SPLIT.values() for p in group}
    assert sum(len(v) for v in index.values()) == 57
    cine, attrs = io.load_sunnybrook(path=io.SUNNYBROOK_FILE)
    assert cine.shape == (20, 128, 128) and attrs["patient"] == "SCD0000501"
    sets = [set(v) for v in io.SUNNYBROOK_SPLIT.values()]
    assert sum(len(s) for s in sets) == len(set.union(*sets))  # no patient in two sets
    monkeypatch.setenv("INR_SUNNYBROOK", "/nonexistent/sb.h5")
    with pytest.raises(FileNotFoundError, match="INR_SUNNYBROOK"):
        io.sunnybrook_path()


def test_load_case_variants(tmp_path, tiny_acq):
    ph = io.load_case(None, R=4, seed=0, T=6, N=24, coils=2)
    assert ph.kspace.shape == (6, 2, 24, 24) and ph.meta["source"] == "phantom"
    sb = io.load_case("sunnybrook", R=4, seed=0, T=10, N=32, coils=2)
    assert sb.target.shape == (10, 32, 32) and sb.meta["patient"] == "SCD0000501"
    path = io.save_kspace(tmp_path / "case.h5", tiny_acq)
    k = io.load_case(str(path), R=12)
    assert k.acceleration == 3  # the file's own mask, R ignored
    np.save(tmp_path / "cine.npy", phantom_cine(6, 20, 20, seed=2) * 300)
    img = io.load_case(str(tmp_path / "cine.npy"), R=2, T=6, N=20)
    assert np.abs(img.target).max() == pytest.approx(1, abs=1e-5)
    with pytest.raises(FileNotFoundError, match="DATA file not found"):
        io.load_case("no/such/file.h5")


def test_kspace_without_smaps_gets_estimated_maps_and_says_so(tmp_path, tiny_acq):
    _write_kspace(tmp_path / "nomaps.h5", smaps=None)
    acq = io.load_kspace(tmp_path / "nomaps.h5", coil_maps="lowres")
    assert acq.smaps.shape == (2, 16, 16) and acq.meta["coil_maps"]["method"] == "lowres"
    assert acq.meta["coil_maps"]["calibration_lines"] >= 2
    assert io.load_kspace(io.save_kspace(tmp_path / "given.h5", tiny_acq)).meta["coil_maps"] == {
        "method": "given", "calibration_lines": None}


def test_a_layout_file_without_kspace_is_not_taken_for_an_image_cine(tmp_path):
    _write_kspace(tmp_path / "nokspace.h5", kspace=None)
    with pytest.raises(io.DataFormatError, match="no 'kspace' dataset"):
        io.load_case(str(tmp_path / "nokspace.h5"))


def test_bart_cfl_round_trip_and_bart_layout_as_an_acquisition(tmp_path, tiny_acq):
    arrays = io.bart_arrays(tiny_acq)
    for name, array in arrays.items():
        io.write_cfl(tmp_path / name, array)
    back = io.load_bart(tmp_path / "ksp", tmp_path / "sens")
    assert np.array_equal(back.kspace, tiny_acq.kspace) and np.array_equal(back.mask, tiny_acq.mask)
    assert np.array_equal(back.smaps, tiny_acq.smaps) and back.meta["coil_maps"]["method"] == "given"
    assert np.allclose(back.zero_filled(), tiny_acq.zero_filled())
    estimated = io.load_bart(tmp_path / "ksp", coil_maps="lowres")
    assert estimated.meta["coil_maps"]["method"] == "lowres"
    (tmp_path / "bad.hdr").write_text("# Dimensions\n2 2\n")
    np.zeros(3, np.complex64).tofile(tmp_path / "bad.cfl")
    with pytest.raises(io.DataFormatError, match="holds 3 complex64 values"):
        io.read_cfl(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="BART file not found"):
        io.read_cfl(tmp_path / "missing")


def test_zero_filled_image_equals_numpy_on_the_raw_arrays_layout_and_bart(tmp_path, tiny_acq):
    from reference_numpy import assert_float32_close, zero_filled

    k, lines, smaps = tiny_acq.kspace, tiny_acq.mask, tiny_acq.smaps
    with h5py.File(tmp_path / "case.h5", "w") as f:  # the k-space layout, written with h5py alone
        f["kspace"], f["mask"], f["smaps"] = k, lines, smaps
    acq = io.load_case(str(tmp_path / "case.h5"))
    assert_float32_close(acq.zero_filled(), zero_filled(k, lines, smaps))
    # BART's .cfl/.hdr: [H W 1 C 1 1 1 1 1 1 T], complex64 in column-major order, written by hand
    T, C, H, W = k.shape
    bart = np.transpose(k, (2, 3, 1, 0)).reshape(H, W, 1, C, 1, 1, 1, 1, 1, 1, T)
    (tmp_path / "ksp.hdr").write_text("# Dimensions\n" + " ".join(map(str, bart.shape + (1,) * 5)) + "\n")
    bart.astype(np.complex64).ravel(order="F").tofile(tmp_path / "ksp.cfl")
    acq = io.load_case(str(tmp_path / "ksp.cfl"))
    assert acq.meta["coil_maps"]["method"] == "espirit" and np.array_equal(acq.mask, lines)
    assert_float32_close(acq.zero_filled(), zero_filled(k, lines, acq.smaps))
