"""NNI's hub spaces at CPU size (nni_archscale.nni_glue.spaces): argument errors, seeded sampling, NNI's own
rejections (NasBench101), image-size checks, and (slow) every space's samples training on 3x8x8 digits images."""

from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import pytest
import torch

warnings.filterwarnings("ignore")

from conftest_nni import one_thread  # noqa: E402,F401

from nni_archscale.nni_glue import spaces  # noqa: E402
from nni_archscale.nni_glue.spaces import (SPACE_NAMES, SPACES, SampleRejected, build_space,  # noqa: E402
                                           sample_model)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry_lists_every_space_once():
    assert tuple(SPACES) == SPACE_NAMES
    assert all(spec.name == name and spec.description for name, spec in SPACES.items())


def test_module_imports_neither_nni_nor_torch_at_import_time():
    tree = ast.parse(Path(spaces.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert not names & {"nni", "torch", "numpy"}, names


def test_unknown_space_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown NNI model space 'resnet'.*nb201, nb101, darts"):
        build_space("resnet")
    with pytest.raises(ValueError, match="known spaces"):
        sample_model("resnet", 0)


def test_unknown_override_names_the_valid_arguments():
    with pytest.raises(ValueError, match=r"unknown argument\(s\) widht .*DARTS.*valid arguments: width, num_cells"):
        build_space("darts", widht=16)
    with pytest.raises(ValueError, match="stem_out_channels"):
        sample_model("nb201", 0, stem_channels=4)
    with pytest.raises(ValueError, match="num_classes"):
        build_space("nb201", num_labels=3)


def test_nb201_sampling_is_deterministic_in_the_seed():
    a, model_a = sample_model("nb201", 3)
    b, model_b = sample_model("nb201", 3)
    c, _ = sample_model("nb201", 4)
    assert a == b and a != c
    assert set(a) == {f"cell/{j}_{i}" for i in range(1, 4) for j in range(i)}  # the NB201 adapter's keys
    for (name, p), q in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(p, q), name  # the weights too, without touching the caller's torch RNG
    state = torch.get_rng_state()
    sample_model("nb201", 5)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("name", ["nb201", "darts"])
def test_forward_on_digits_sized_images(name):
    sample, model = sample_model(name, 0)
    out = model(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    json.dumps(sample)  # records store the sample as JSON


def test_darts_family_head_follows_num_classes():
    """NNI's NDS spaces have no num_labels argument (10 classes for CIFAR): the head is re-sized."""
    space = build_space("darts", 3)
    assert space.classifier.out_features == 3
    _, model = sample_model("darts", 1, num_classes=3)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 3)
    assert type(build_space("darts")).__name__ == "DARTS"  # 10 classes: NNI's own class, untouched


def test_nb101_rejection_carries_nnis_reason():
    with pytest.raises(SampleRejected, match="nb101 seed 3: NNI rejects the sample: Expected at most 9 edges") as exc:
        sample_model("nb101", 3)
    assert exc.value.space == "nb101" and exc.value.seed == 3 and "at most 9 edges" in exc.value.reason


def test_image_size_below_what_a_space_takes_names_the_fix():
    build_space("nb201", image_size=8)
    build_space("darts", image_size=8)
    with pytest.raises(ValueError, match=r"cannot take 5x5 images.*multiple of 4.*to 8x8"):
        build_space("nb201", image_size=5)
    with pytest.raises(ValueError, match=r"cannot take 2x2 images.*at least 4"):
        sample_model("nb101", 0, image_size=2, num_stacks=3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", SPACE_NAMES)
def test_every_space_samples_and_trains_on_8x8(name, seed):
    try:
        sample, model = sample_model(name, seed, image_size=8)
    except SampleRejected as exc:
        if name != "nb101":
            raise
        pytest.skip(f"NNI rejects this NasBench101 sample: {exc.reason}")
    assert sample
    json.dumps(sample)
    model.train()
    out = model(torch.randn(4, 3, 8, 8))
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.arange(4)).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    # NNI's frozen NasBench101 cell keeps a projection to the output vertex that its forward never calls
    assert not unused or (name == "nb101" and all(".projections." in n for n in unused)), unused
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
