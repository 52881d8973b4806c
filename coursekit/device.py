"""Device choice: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch


def default_device(preference: str = "auto") -> torch.device:
    """The device to train on.

    Args:
        preference: ``"auto"`` (CUDA if available, else MPS, else CPU) or an explicit
            device string such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.
    """
    if preference != "auto":
        try:
            device = torch.device(preference)
        except RuntimeError as err:
            raise ValueError(
                f"preference: expected 'auto', 'cpu', 'cuda[:N]' or 'mps', got {preference!r}"
            ) from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"preference: {preference!r} asked for CUDA, which is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"preference: {preference!r} asked for MPS, which is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
