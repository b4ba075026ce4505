"""File-backed datasets: MNIST and Fashion-MNIST (IDX) and CIFAR-10 (python pickles).

Files live in `data_dir/datasets/<name>/`. When missing and the spec allows it they are
fetched from the canonical URLs with a short timeout and an MD5 check; otherwise
DatasetUnavailable names the files expected and where.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from zoo.datasets.base import RawData
from zoo.datasets.download import fetch, require
from zoo.datasets.errors import DatasetUnavailable

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# (url base, md5 of each .gz) as published by torchvision's dataset classes.
IDX_SOURCES = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ),
    "fashion_mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ),
}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_FILES = (*tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic, big-endian dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DatasetUnavailable(f"{path.name}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _load_idx(name: str, spec: Any, data_dir: Path) -> RawData:
    folder = data_dir / "datasets" / name
    paths = [_find_idx(folder, stem) for stem in IDX_FILES]
    if any(p is None for p in paths) and spec.download:
        base, md5s = IDX_SOURCES[name]
        for stem, md5 in zip(IDX_FILES, md5s, strict=False):
            if _find_idx(folder, stem) is None:
                fetch(f"{base}{stem}.gz", folder / f"{stem}.gz", md5=md5)
        paths = [_find_idx(folder, stem) for stem in IDX_FILES]
    found = require(name, folder, paths, [f"{s}[.gz]" for s in IDX_FILES])
    xtr, ytr, xte, yte = (read_idx(p) for p in found)
    shape = (-1, 784) if spec.flatten else (-1, 1, 28, 28)
    prep = lambda x: (x.astype(np.float32) / 255.0).reshape(shape)  # noqa: E731
    return RawData(
        prep(xtr),
        ytr.astype(np.int64),
        prep(xte),
        yte.astype(np.int64),
        normalise="global" if spec.flatten else "channel",
    )


def load_mnist(spec: Any, data_dir: Path) -> RawData:
    return _load_idx("mnist", spec, data_dir)


def load_fashion_mnist(spec: Any, data_dir: Path) -> RawData:
    return _load_idx("fashion_mnist", spec, data_dir)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(batch[b"labels"], dtype=np.int64)


def load_cifar10(spec: Any, data_dir: Path) -> RawData:
    folder = data_dir / "datasets" / "cifar10"
    inner = folder / "cifar-10-batches-py"

    def paths() -> list[Path | None]:
        return [inner / f if (inner / f).exists() else None for f in CIFAR_FILES]

    if any(p is None for p in paths()) and spec.download:
        fetch(CIFAR_URL, folder / "cifar-10-python.tar.gz", md5=CIFAR_MD5, extract_to=folder)
    found = require("cifar10", inner, paths(), list(CIFAR_FILES))
    batches = [_read_cifar_batch(p) for p in found]
    xtr = np.concatenate([b[0] for b in batches[:-1]])
    ytr = np.concatenate([b[1] for b in batches[:-1]])
    xte, yte = batches[-1]
    shape = (-1, 3072) if spec.flatten else (-1, 3, 32, 32)

    def prep(x: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) / 255.0).reshape(shape)

    return RawData(
        prep(xtr), ytr, prep(xte), yte, normalise="feature" if spec.flatten else "channel"
    )
