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

import numpy as np
import torch
from torch import nn

from coursekit._files import atomic_write
from coursekit.device import check_map_location


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or does not fit the model it describes."""


def atomic_save(obj: object, path: str | Path) -> None:
    """``torch.save(obj)`` to a temporary file next to ``path``, then ``os.replace`` it."""
    atomic_write(path, lambda f: torch.save(obj, f))


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` as a dict, on ``map_location``.

    Raises:
        TypeError, ValueError: naming ``map_location`` when it is not a device this machine
            has (:func:`coursekit.device.check_map_location`), before the file is read, so that
            a good file is never called corrupt because its device is missing.
        CheckpointError: naming ``path`` when the file does not exist, is empty, is truncated
            or corrupt (torch cannot read it), holds objects other than tensors and plain
            containers, or is not a dict.
    """
    map_location = check_map_location(map_location)
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
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"{path}: the checkpoint file ({size:,} bytes) is truncated or corrupt: torch "
            f"cannot read it ({type(err).__name__}); save it again or copy it again"
        ) from err
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: expected a checkpoint dict, the file holds a {type(state).__name__}"
        )
    return state


def plain_metadata(value: object, name: str) -> object:
    """``value`` as something ``torch.load(..., weights_only=True)`` reads back: numbers,
    strings, bools, ``None``, tensors, and lists / tuples / dicts of them. NumPy scalars
    become Python numbers; anything else raises ``ValueError`` naming ``name``."""
    if isinstance(value, np.generic):  # np.float64 is a float subclass, but not loadable
        if isinstance(value.item(), (bool, int, float, str)):
            return value.item()
    elif value is None or isinstance(value, (bool, int, float, str, bytes, torch.Tensor)):
        return value
    if isinstance(value, (list, tuple)):
        items = [plain_metadata(v, f"{name}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: plain_metadata(v, f"{name}[{k!r}]") for k, v in value.items()}
    raise ValueError(
        f"{name}: expected numbers, strings, bools, None, tensors or lists/dicts of them (what "
        f"a weights_only checkpoint can hold), got {type(value).__name__}; convert it, e.g. "
        "str(path) or torch.as_tensor(array)"
    )


def save_checkpoint(model: nn.Module, path: str | Path, **metadata: object) -> None:
    """Write ``{"config": model.config, "state_dict": model.state_dict(), **metadata}``.

    ``metadata`` goes through :func:`plain_metadata` first, so that the file always loads
    with ``weights_only=True`` (a ``ValueError`` names a value it could not hold). ``path``
    must be a ``str`` or ``Path`` whose folder can be written.
    """
    if not isinstance(path, (str, Path)):
        raise ValueError(f"path: expected a file path (str or Path), got {type(path).__name__}")
    extra = {key: plain_metadata(value, key) for key, value in metadata.items()}
    atomic_save({"config": model.config, "state_dict": model.state_dict(), **extra}, path)


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
