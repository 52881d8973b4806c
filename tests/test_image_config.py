"""``ImageFlowConfig``: its defaults are the shipped model, it round-trips through a model, and
the keyword construction of ``ImageRealNVP`` (what the notebooks use) is unchanged."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from coursekit import train_mnist as tm
from coursekit.flows import ImageFlowConfig, ImageRealNVP
from coursekit.flows.checkpoint import read_checkpoint
from coursekit.pretrained import MNIST_CHECKPOINT, MNIST_METADATA

FIELDS = [f.name for f in dataclasses.fields(ImageFlowConfig)]


def test_the_defaults_are_the_config_stored_in_the_shipped_checkpoint_field_by_field():
    stored = read_checkpoint(MNIST_CHECKPOINT)["config"]
    default = ImageFlowConfig()
    assert list(stored) == FIELDS  # every field recorded, in the dataclass's order
    for name in FIELDS:
        value = getattr(default, name)
        value = list(value) if isinstance(value, tuple) else value
        assert value == stored[name] and type(value) is type(stored[name]), name
    assert default.as_dict() == stored
    assert json.loads(MNIST_METADATA.read_text())["config"] == stored
    assert tm.DEFAULT_CONFIG == stored


def test_the_shipped_architecture_built_from_the_config_takes_the_shipped_weights():
    model = ImageRealNVP.from_config(ImageFlowConfig())
    state = read_checkpoint(MNIST_CHECKPOINT)["state_dict"]
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in state.items()
    }


CONFIGS = [
    ImageFlowConfig(),
    ImageFlowConfig(hidden=8, n_channel=2, n_final=3, n_final_checker=0, activation="relu"),
    ImageFlowConfig(
        image_shape=(3, 8, 8),
        n_scales=2,
        hidden=(4, 6),
        n_blocks=2,
        n_checker=(1,),
        n_channel=(2,),
        scale_bound=2.0,
        alpha=0.05,
        actnorm=False,
        invconv=False,
        block_kernel=3,
        split_prior=False,
    ),
    ImageFlowConfig(
        image_shape=(1, 4, 4), n_scales=1, hidden=4, n_checker=1, n_channel=(), n_final=1
    ),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["shipped", "relu", "plain", "one_scale"])
def test_config_model_config_round_trip(config):
    with torch.device("meta"):  # no memory, no initialisation
        model = ImageRealNVP.from_config(config)
    assert model.architecture == config
    assert ImageFlowConfig(**model.config) == config
    assert model.config == config.as_dict() and list(model.config) == FIELDS
    with torch.device("meta"):
        assert ImageRealNVP(**model.config).config == model.config


def test_fields_are_normalised_and_frozen():
    config = ImageFlowConfig(hidden=16, n_final_checker=2)
    assert config.hidden == (16, 16, 16) and config.n_final_checker is None  # = n_final
    assert ImageFlowConfig(n_checker=[1, 2]).n_checker == (1, 2)
    assert ImageFlowConfig(n_checker=1).n_checker == 1  # an int stays an int, as recorded
    assert config.checker_counts() == [0, 0, 2] and config.channel_counts() == [6, 8, 2]
    assert ImageFlowConfig(n_final_checker=0).checker_counts() == [0, 0, 0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden = (8, 8, 8)  # type: ignore[misc]
    changed = dataclasses.replace(ImageFlowConfig(), hidden=[32, 64, 64])
    assert changed.hidden == (32, 64, 64) and changed != ImageFlowConfig()


def test_keyword_construction_is_unchanged():
    """The keyword defaults are RealNVP's plain model (notebook 06 builds on them), not the
    shipped one; the config the notebooks print keeps its fields, values and order."""
    with torch.device("meta"):
        plain = ImageRealNVP()
        demo = ImageRealNVP(
            hidden=(8, 24, 32), n_blocks=1, n_checker=2, n_channel=2, n_final=2, alpha=1e-5
        )
    assert plain.config == {
        "image_shape": [1, 28, 28],
        "n_scales": 3,
        "hidden": [64, 64, 64],
        "n_blocks": 2,
        "n_checker": 3,
        "n_channel": 3,
        "n_final": 4,
        "scale_bound": 3.0,
        "alpha": 0.05,
        "actnorm": False,
        "invconv": False,
        "block_kernel": 3,
        "split_prior": False,
        "n_final_checker": None,
        "activation": "silu",
    }
    assert str(demo.config) == (
        "{'image_shape': [1, 28, 28], 'n_scales': 3, 'hidden': [8, 24, 32], 'n_blocks': 1, "
        "'n_checker': 2, 'n_channel': 2, 'n_final': 2, 'scale_bound': 3.0, 'alpha': 1e-05, "
        "'actnorm': False, 'invconv': False, 'block_kernel': 3, 'split_prior': False, "
        "'n_final_checker': None, 'activation': 'silu'}"
    )


def test_from_config_takes_only_a_config():
    with pytest.raises(TypeError, match=r"^config: expected an ImageFlowConfig, got dict"):
        ImageRealNVP.from_config(ImageFlowConfig().as_dict())  # type: ignore[arg-type]
