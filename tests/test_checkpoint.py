"""Checkpoint files: atomic saves, and a named error (path + what is wrong) for every file that
cannot be a model: missing, empty, truncated, random bytes, not a dict, other weights."""

from __future__ import annotations

import pytest
import torch

from coursekit.flows import CheckpointError, ImageRealNVP
from coursekit.flows.checkpoint import atomic_save, read_checkpoint

TINY = dict(image_shape=(1, 4, 4), n_scales=2, hidden=4, n_blocks=1, n_checker=1, n_channel=1)


@pytest.fixture
def saved(tmp_path):
    model = ImageRealNVP(**TINY, n_final=1)
    path = tmp_path / "model.pt"
    model.save(path, note="tiny")
    return model, path


def test_save_and_load_round_trip_exactly(saved, tmp_path):
    model, path = saved
    loaded = ImageRealNVP.load(path)
    assert loaded.config == model.config and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert read_checkpoint(path)["note"] == "tiny"
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed


def test_truncated_empty_and_random_files_raise_a_named_error(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    cases = {
        "truncated.pt": (data[: len(data) // 2], "truncated or corrupt"),
        "empty.pt": (b"", "empty"),
        "random.pt": (
            bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0))),
            "corrupt",
        ),
    }
    for name, (content, what) in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        for load in (read_checkpoint, ImageRealNVP.load):
            with pytest.raises(CheckpointError, match=what) as excinfo:
                load(bad)
            assert str(bad) in str(excinfo.value)
            assert "PytorchStreamReader" not in str(excinfo.value)
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        ImageRealNVP.load(tmp_path / "missing.pt")
    assert issubclass(CheckpointError, ValueError)


def test_wrong_content_raises_a_named_error(saved, tmp_path):
    model, _ = saved
    not_a_dict = tmp_path / "list.pt"
    torch.save([1, 2], not_a_dict)
    with pytest.raises(CheckpointError, match="expected a checkpoint dict"):
        ImageRealNVP.load(not_a_dict)
    no_config = tmp_path / "no_config.pt"
    torch.save({"state_dict": model.state_dict()}, no_config)
    with pytest.raises(CheckpointError, match="'config'"):
        ImageRealNVP.load(no_config)
    bad_config = tmp_path / "bad_config.pt"
    torch.save({"config": dict(model.config, n_scales=0), "state_dict": {}}, bad_config)
    with pytest.raises(CheckpointError, match="config does not build a model.*n_scales"):
        ImageRealNVP.load(bad_config)
    other = tmp_path / "other.pt"
    torch.save(
        {"config": dict(model.config, hidden=[6, 6]), "state_dict": model.state_dict()}, other
    )
    with pytest.raises(CheckpointError, match="do not match the architecture"):
        ImageRealNVP.load(other)


def test_atomic_save_leaves_the_old_file_when_saving_fails(tmp_path):
    path = tmp_path / "c.pt"
    atomic_save({"a": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_save({"a": Unpicklable()}, path)
    assert torch.load(path, weights_only=True)["a"].sum() == 2
    assert not list(tmp_path.glob("*.tmp"))
