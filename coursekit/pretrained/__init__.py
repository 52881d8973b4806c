"""Pretrained models shipped with the package.

``realnvp_mnist.pt`` holds the configuration and the (EMA) weights of an
:class:`~coursekit.flows.image.ImageRealNVP` trained on MNIST by
``python -m coursekit.train_mnist``; ``realnvp_mnist.json`` records how: the exact command,
data, seed, steps, wall time, hardware and the test bits/dim it reached.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from coursekit.flows.checkpoint import CheckpointError, read_checkpoint
from coursekit.flows.image import ImageRealNVP

HERE = Path(__file__).resolve().parent
MNIST_CHECKPOINT = HERE / "realnvp_mnist.pt"
MNIST_METADATA = HERE / "realnvp_mnist.json"


def pretrained_mnist_metadata() -> dict:
    """The training record of the shipped MNIST model (command, data, bits/dim, …)."""
    return json.loads(MNIST_METADATA.read_text())


def load_pretrained_mnist(
    path: str | Path | None = None, map_location: str | torch.device = "cpu"
) -> ImageRealNVP:
    """Load the shipped MNIST RealNVP (``torch.load(..., weights_only=True)``), in eval mode.

    Checks that the stored weights match the architecture in the stored config and, for the
    shipped file, that this config is the one in ``realnvp_mnist.json``; raises
    :class:`~coursekit.flows.checkpoint.CheckpointError` (a ``ValueError``) naming the file
    and what is wrong otherwise (missing, empty, truncated or corrupt file, other weights).

    Args:
        path: another checkpoint saved by :meth:`ImageRealNVP.save` (default: the shipped one).
        map_location: device to load the weights on: one this machine has, checked before the
            file is read (:func:`coursekit.device.check_map_location`).
    """
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(f"path: expected a file path (str or Path), got {type(path).__name__}")
    target = Path(path) if path is not None else MNIST_CHECKPOINT
    if not target.is_file():
        raise CheckpointError(f"path: no checkpoint file at {target}")
    checkpoint = read_checkpoint(target, map_location)
    if path is None and MNIST_METADATA.is_file():
        expected = pretrained_mnist_metadata().get("config")
        if expected is not None and checkpoint.get("config") != expected:
            raise CheckpointError(
                f"{target}: architecture {checkpoint.get('config')} differs from the one "
                f"recorded in {MNIST_METADATA.name}: {expected}"
            )
    return ImageRealNVP.from_checkpoint(checkpoint, source=str(target))
