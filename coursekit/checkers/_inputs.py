"""Input-safety helper of the checkers: a student's function must not modify its inputs.

:func:`coursekit.checkers._common.call` already checks every argument after every call
(policy 4); :func:`check_unchanged` is the same test for a checker that compares by hand.
"""

from __future__ import annotations

from typing import Any

from coursekit.checkers._common import Hint, _changed, _snapshot, in_place_hint


def check_unchanged(before: Any, after: Any, name: str) -> None:
    """Raise :class:`Hint` when the student's function changed its input ``name`` in place.

    ``before`` is a private copy taken before the call, ``after`` the object that was passed.
    Tensors are compared exactly (NaNs in the same places count as equal), lists item by item.
    """
    kind = _changed(_snapshot(before), after)
    if kind:
        raise Hint(in_place_hint(name, kind))
