"""Fake data sets on disk for the tests: the layouts the loaders read, filled with seeded random pixels."""

import pickle

import numpy as np


def fake_cifar10(root, n=40):
    """``root/cifar-10-batches-py`` with five training batches and a test batch of ``n`` random images each
    (the python archive's layout); returns the batches' directory."""
    d = root / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        with (d / name).open("wb") as fh:
            pickle.dump(batch, fh)
    return d
