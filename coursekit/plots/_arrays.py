"""Input conversion shared by the plotting helpers."""

from __future__ import annotations

import numpy as np
from torch import Tensor


def as_numpy(x: object, name: str, ndim: int | None = None, sequences: bool = False) -> np.ndarray:
    """``x`` (a tensor or an array; a list or tuple too when ``sequences``) as a float NumPy
    array, detached and on the CPU.

    Raises ``ValueError`` naming ``name`` for another type or when ``x`` does not have
    ``ndim`` dimensions.
    """
    if isinstance(x, Tensor):
        x = x.detach().cpu().double().numpy()
    elif isinstance(x, np.ndarray) or (sequences and isinstance(x, (list, tuple))):
        x = np.asarray(x, dtype=float)
    else:
        raise ValueError(f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), got shape {tuple(x.shape)}")
    return x
