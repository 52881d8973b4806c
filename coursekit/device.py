"""Device choice (CUDA, then Apple MPS, then CPU), where a model lives, and a description of
the machine."""

from __future__ import annotations

import itertools
import os
import platform
from pathlib import Path

import torch
from torch import nn


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


def module_dtype_device(module: nn.Module) -> tuple[torch.dtype | None, torch.device | None]:
    """The dtype and device of the first floating parameter or buffer of ``module``: where
    its inputs and noise belong (``(None, None)``: it has none)."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return None, None


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The processor's model name from ``cpuinfo`` (Linux), or ``None`` where it is not known."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model") and value.strip():
            return value.strip()
    return None


def hardware() -> str:
    """``"Linux x86_64 (AMD EPYC …), 2 CPUs, torch 2.13.0+cpu"``: where a run's speed comes from.

    The processor model is part of it: machines with the same number of cores can differ
    several-fold in speed.
    """
    machine = platform.processor() or platform.machine()
    model = cpu_model()
    cpu = f"{machine} ({model})" if model else machine
    return f"{platform.system()} {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}"


def check_map_location(value: object, name: str = "map_location") -> torch.device:
    """``value`` (a device name such as ``"cpu"`` or ``"cuda:0"``, or a ``torch.device``) as a
    ``torch.device`` that this machine has: ``TypeError`` for another type, ``ValueError``
    naming ``name`` for an unknown name or a device that is not available here (so that a
    good file is never called corrupt because the device is missing)."""
    if not isinstance(value, str | torch.device):
        raise TypeError(
            f"{name}: expected a device name such as 'cpu' or 'cuda', or a torch.device, "
            f"got {type(value).__name__}"
        )
    try:
        device = torch.device(value)
    except RuntimeError:
        raise ValueError(
            f"{name}: expected a device name such as 'cpu' or 'cuda:0', got {value!r}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{name}: {value!r} asks for CUDA, which this machine does not have; load with "
            "map_location='cpu' (the default)"
        )
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise ValueError(
                f"{name}: {value!r}, but this machine has {torch.cuda.device_count()} CUDA "
                "device(s)"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name}: {value!r} asks for MPS, which this machine does not have")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{name}: expected 'cpu', 'cuda' or 'mps', got {value!r}")
    return device
