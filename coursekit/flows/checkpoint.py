"""Saving and loading models as ``{"config", "state_dict", …}`` files, with named errors.

A checkpoint is a dict of tensors and plain Python values written by ``torch.save`` and read
back with ``torch.load(..., weights_only=True)`` (no arbitrary code runs on loading).
Writes are atomic (:func:`atomic_save`: a temporary file in the same folder, then
``os.replace``), so a run killed while saving leaves the previous file intact. A file that
cannot be read (missing, empty, truncated, corrupt) or whose weights do not fit its config
raises :class:`CheckpointError`, naming the path and what is wrong.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from coursekit._files import atomic_write


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or does not fit the model it describes."""


def atomic_save(obj: object, path: str | Path) -> None:
    """``torch.save(obj)`` to a temporary file next to ``path``, then ``os.replace`` it."""
    atomic_write(path, lambda f: torch.save(obj, f))


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` as a dict.

    Raises:
        CheckpointError: naming ``path`` when the file does not exist, is empty, is truncated
            or corrupt (torch cannot read it), holds objects other than tensors and plain
            containers, or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint file there")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the checkpoint file is empty (0 bytes)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):
            raise CheckpointError(
                f"{path}: the checkpoint holds objects other than tensors and plain Python "
                "containers, which weights_only=True refuses to load"
            ) from err
        raise CheckpointError(
            f"{path}: the checkpoint file ({size:,} bytes) is corrupt: it is not a file written "
            "by torch.save"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"{path}: the checkpoint file ({size:,} bytes) is truncated or corrupt: torch "
            f"cannot read it ({type(err).__name__}); save it again or copy it again"
        ) from err
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: expected a checkpoint dict, the file holds a {type(state).__name__}"
        )
    return state


def save_checkpoint(model: nn.Module, path: str | Path, **metadata: object) -> None:
    """Write ``{"config": model.config, "state_dict": model.state_dict(), **metadata}``."""
    atomic_save({"config": model.config, "state_dict": model.state_dict(), **metadata}, path)


def model_from_checkpoint(cls: type, checkpoint: dict, source: str = "checkpoint") -> Any:
    """``cls(**checkpoint["config"])`` with the weights of ``checkpoint["state_dict"]``.

    The model is returned in eval mode.

    Raises:
        CheckpointError: naming ``source`` when ``checkpoint`` is not a dict with a config,
            the config does not build a model, or the weights miss keys, have extra keys or
            other shapes.
    """
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("config"), dict):
        raise CheckpointError(f"{source}: expected a dict with 'config' and 'state_dict'")
    try:
        model = cls(**checkpoint["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: its config does not build a model: {err}") from err
    state = checkpoint.get("state_dict", {})
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{source}: the weights do not match the architecture {checkpoint['config']}: "
            f"{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:2]}), {len(wrong)} with another shape (e.g. {wrong[:2]})"
        )
    model.load_state_dict(state)
    model.eval()
    return model
