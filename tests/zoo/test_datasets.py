"""Datasets: registry vs spec, shapes, disjoint seeded splits, train-only scaling, file formats."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from core.spec import catalogue
from core.spec.datasets import DATASETS
from worker.engine import data
from zoo.datasets.base import DatasetInfo, RawData, split_and_normalise
from zoo.datasets.errors import DatasetUnavailable
from zoo.datasets.synthetic import adding_problem

# Every registration that needs no files: generated or bundled with a package.
OFFLINE = [n for n, cls in DATASETS.by_name().items() if "download" not in cls.model_fields]


def _spec(name: str, **fields):
    return DATASETS.get(name)(name=name, **fields)


def test_every_registration_describes_itself() -> None:
    rows = {r["name"]: r for r in catalogue.datasets()}
    assert set(rows) == set(DATASETS.names())
    for row in rows.values():
        assert row["task"] in ("classification", "regression") and row["description"]
        assert row["input_shape"] and isinstance(row["classes"], int)
    assert rows["mnist1d"]["input_shape"] == [40] and rows["mnist1d"]["classes"] == 10
    assert rows["adding"]["task"] == "regression"


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_datasets_load_with_declared_shapes(name: str, data_dir: Path) -> None:
    small = {"num_samples": 400} if "num_samples" in DATASETS.get(name).model_fields else {}
    spec = _spec(name) if name == "mnist1d" else _spec(name, **small)
    splits = data.load(spec, data_dir=data_dir, seed=0)
    info = spec.info()
    for x, y in splits.arrays().values():
        assert x.shape[1:] == info.input_shape and x.dtype == np.float32 and len(x) == len(y)
    if info.task == "classification":
        assert set(np.unique(splits.y_train)) <= set(range(info.num_classes))
    n_pool = len(splits.x_train) + len(splits.x_val)
    assert len(splits.x_val) == round(spec.val_fraction * n_pool)
    # What the API computes without loading (the spec preview's steps per epoch).
    assert len(splits.x_train) == spec.train_size()
    assert (n_pool, len(splits.x_test)) == spec.split_sizes()


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("mnist1d", {"num_samples": 1234, "train_split": 0.7, "val_fraction": 0.15}),
        ("digits", {"test_fraction": 0.33, "val_fraction": 0.0}),
        ("moons", {"num_samples": 101, "test_fraction": 0.25, "val_fraction": 0.05}),
        ("spirals", {"num_samples": 333, "arms": 3}),
        ("adding", {"num_samples": 99, "seq_len": 4, "test_fraction": 0.5}),
        ("parity", {"num_samples": 77, "seq_len": 3, "val_fraction": 0.5}),
    ],
)
def test_train_size_matches_the_loaded_split(name: str, fields: dict, data_dir: Path) -> None:
    spec = _spec(name, **fields)
    splits = data.load(spec, data_dir=data_dir, seed=3)
    assert len(splits.x_train) == spec.train_size()
    assert len(splits.x_test) == spec.split_sizes()[1]


def test_files_of_another_size_are_refused(tmp_path: Path) -> None:
    """A file set whose sizes differ from the spec's would make the preview wrong: refuse it."""
    folder = tmp_path / "datasets" / "mnist"
    folder.mkdir(parents=True)
    for prefix, n in (("train", 50), ("t10k", 20)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", np.zeros((n, 28, 28)), False)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, False)
    with pytest.raises(DatasetUnavailable, match="loaded 50 training and 20 test examples"):
        data.load(_spec("mnist", download=False), data_dir=tmp_path, seed=0)


def test_splits_are_disjoint_and_seeded() -> None:
    x = np.arange(100, dtype=np.float32)[:, None]
    raw = RawData(x, np.zeros(100), x[:10] + 1000, np.zeros(10), normalise="none")
    info = DatasetInfo("t", "classification", (1,), 2)
    a = split_and_normalise(raw, info, val_fraction=0.2, seed=0)
    b = split_and_normalise(raw, info, val_fraction=0.2, seed=0)
    c = split_and_normalise(raw, info, val_fraction=0.2, seed=1)
    train, val = set(a.x_train[:, 0]), set(a.x_val[:, 0])
    assert not train & val and len(train | val) == 100 and len(val) == 20
    assert np.array_equal(a.x_val, b.x_val) and not np.array_equal(a.x_val, c.x_val)


def test_normalisation_uses_training_statistics_only() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (200, 4)).astype(np.float32)
    test = rng.normal(50.0, 9.0, (50, 4)).astype(np.float32)  # a shifted test set stays shifted
    raw = RawData(x, np.zeros(200), test, np.zeros(50), normalise="feature")
    s = split_and_normalise(
        raw, DatasetInfo("t", "classification", (4,), 2), val_fraction=0.25, seed=0
    )
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(s.x_train.std(axis=0), 1.0, atol=1e-4)
    assert abs(s.x_val.mean()) > 1e-3 and s.x_test.mean() > 10


def test_adding_problem_has_two_markers_and_their_sum() -> None:
    x, y = adding_problem(64, 10, np.random.default_rng(0))
    assert x.shape == (64, 10, 2)
    assert np.all(x[:, :, 1].sum(axis=1) == 2)
    np.testing.assert_allclose((x[:, :, 0] * x[:, :, 1]).sum(axis=1), y, rtol=1e-6)
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.06  # predicting 1.0 gives MSE ~0.167


def test_parity_labels() -> None:
    s = data.load(_spec("parity", num_samples=100, seq_len=5), data_dir=Path("."), seed=0)
    assert np.array_equal(s.y_train, s.x_train[:, :, 0].sum(axis=1).astype(int) % 2)


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def _small_files(monkeypatch: pytest.MonkeyPatch, name: str, sizes: tuple[int, int]) -> None:
    """Tiny fixture files: the spec's expected sizes follow them (real files are checked)."""
    monkeypatch.setattr(DATASETS.get(name), "split_sizes", lambda self: sizes)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_files(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _small_files(monkeypatch, name, (50, 20))
    folder = tmp_path / "datasets" / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n, gz in (("train", 50, True), ("t10k", 20, False)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)
    s = data.load(_spec(name, download=False), data_dir=tmp_path, seed=0)
    assert s.x_train.shape == (45, 1, 28, 28) and s.x_val.shape == (5, 1, 28, 28)
    assert s.x_test.shape == (20, 1, 28, 28) and list(s.y_test) == list(np.arange(20) % 10)
    flat = data.load(_spec(name, download=False, flatten=True), data_dir=tmp_path, seed=0)
    assert flat.x_train.shape == (45, 784)


def test_cifar_pickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _small_files(monkeypatch, "cifar10", (40, 8))
    folder = tmp_path / "datasets" / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (8, 3072), dtype=np.uint8),
            b"labels": list(range(8)),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    s = data.load(_spec("cifar10", download=False), data_dir=tmp_path, seed=0)
    assert s.x_train.shape == (36, 3, 32, 32) and s.x_test.shape == (8, 3, 32, 32)
    # Per-channel standardisation from the training split.
    np.testing.assert_allclose(s.x_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_name_what_is_expected(tmp_path: Path, name: str) -> None:
    with pytest.raises(DatasetUnavailable) as info:
        data.load(_spec(name, download=False), data_dir=tmp_path, seed=0)
    message = str(info.value)
    assert f"<data_dir>/datasets/{name}" in message
    assert str(tmp_path) not in message  # API clients read it: no server path
    assert ("train-images-idx3-ubyte" if name != "cifar10" else "data_batch_1") in message


def test_failed_download_raises_dataset_unavailable(tmp_path: Path, monkeypatch) -> None:
    from zoo.datasets import files

    # A refused connection stands in for being offline; nothing reaches the internet.
    monkeypatch.setitem(files.IDX_SOURCES, "mnist", ("http://127.0.0.1:9/", ("0" * 32,) * 4))
    with pytest.raises(DatasetUnavailable, match="download"):
        data.load(_spec("mnist", download=True), data_dir=tmp_path, seed=0)
    assert not list((tmp_path / "datasets" / "mnist").glob("*.part"))
