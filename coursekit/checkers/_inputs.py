"""Input-safety helper of the checkers: a student's function must not modify its inputs."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from coursekit.checkers._common import Hint


def check_unchanged(before: Any, after: Any, name: str) -> None:
    """Raise :class:`Hint` when the student's function changed its input ``name`` in place.

    ``before`` is a private copy taken before the call, ``after`` the object that was passed.
    Tensors are compared exactly (NaNs in the same places count as equal), lists item by item.
    """
    if isinstance(before, Tensor):
        same = (
            isinstance(after, Tensor)
            and before.shape == after.shape
            and bool(torch.equal(torch.nan_to_num(before), torch.nan_to_num(after)))
        )
    else:
        same = before == after
    if not same:
        raise Hint(
            f"your function changed its input {name} in place; work on a copy "
            "(e.g. x = x.clone()) or use out-of-place operations (x = x - m, not x -= m)"
        )
