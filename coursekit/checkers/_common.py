"""Shared machinery of the exercise checkers: one printed line per check, never a traceback.

A checker is a function ``check_xxx(fn, ...) -> bool`` decorated with :func:`checker`. Its
body calls the student's code through :func:`call` and raises :class:`Hint` with a short,
specific message when the answer is wrong; the decorator turns that into one printed line:

* ``✅ Exercise 4.2 passed: …``                      (returns True)
* ``❌ Exercise 4.2: <hint>``                         (returns False)
* ``Exercise 4.2: not done yet — …``                 (the exercise still raises
  ``NotImplementedError``; returns False)

Results are recorded per exercise so that :func:`show_progress` can print a summary and
:func:`assert_all_passed` can fail the solution notebooks when a reference solution breaks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

#: exercise id ("4.2") -> title, for every checker defined (filled at import time).
EXERCISES: dict[str, str] = {}
#: exercise id -> result of the last check in this Python session.
RESULTS: dict[str, bool] = {}
#: exercise id -> "passed", "wrong" or "not done" (the last check in this session).
STATUS: dict[str, str] = {}


class Hint(Exception):
    """A wrong answer; the message is the hint printed for the student."""


class NotDone(Exception):
    """The student's code still raises ``NotImplementedError``."""


class StudentError(Exception):
    """The student's code raised an exception; the message is ``Type: message``."""


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the student's ``fn``; exceptions become :class:`NotDone` / :class:`StudentError`."""
    if not callable(fn):
        raise Hint(f"expected a function, got {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise NotDone(str(err)) from None
    except Exception as err:  # the student's bug: report it in one line
        raise StudentError(f"{type(err).__name__}: {_one_line(err)}") from None


def checker(exercise: str, title: str) -> Callable[[Callable[..., str]], Callable[..., bool]]:
    """Decorator: ``body(*args) -> pass message`` becomes a printing checker returning a bool."""
    EXERCISES[exercise] = title

    def decorate(body: Callable[..., str]) -> Callable[..., bool]:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> bool:
            ok, status = False, "wrong"
            try:
                message = body(*args, **kwargs)
            except NotDone:
                status = "not done"
                print(
                    f"Exercise {exercise}: not done yet — {title}. Replace the line "
                    "`raise NotImplementedError(...)` with your code and re-run the cell."
                )
            except StudentError as err:
                print(f"❌ Exercise {exercise}: your code raised {err}")
            except Hint as err:
                print(f"❌ Exercise {exercise}: {_one_line(err, 400)}")
            else:
                ok, status = True, "passed"
                print(f"✅ Exercise {exercise} passed: {message}")
            RESULTS[exercise] = ok
            STATUS[exercise] = status
            return ok

        wrapper.exercise = exercise  # type: ignore[attr-defined]
        wrapper.title = title  # type: ignore[attr-defined]
        return wrapper

    return decorate


def chapter_exercises(chapter: int | str) -> list[str]:
    """The exercise ids of one chapter, in order (``["4.1", "4.2", …]``)."""
    prefix = f"{chapter}."
    ids = [e for e in EXERCISES if e.startswith(prefix)]
    return sorted(ids, key=lambda e: int(e.split(".")[1]))


def show_progress(chapter: int | str) -> None:
    """Print which exercises of ``chapter`` passed in this session."""
    ids = chapter_exercises(chapter)
    done = sum(RESULTS.get(e, False) for e in ids)
    print(f"Chapter {chapter}: {done}/{len(ids)} exercises passed.")
    marks = {"passed": "✅", "wrong": "❌", "not done": "…"}
    for e in ids:
        status = STATUS.get(e, "not checked")
        print(f"  {marks.get(status, '·')} {e} {EXERCISES[e]} ({status})")


def assert_all_passed(chapter: int | str) -> None:
    """Raise AssertionError unless every exercise of ``chapter`` was checked and passed."""
    ids = chapter_exercises(chapter)
    missing = [e for e in ids if not RESULTS.get(e)]
    if missing:
        raise AssertionError(f"exercises not passed in chapter {chapter}: {missing}")


# --------------------------------------------------------------------------- helpers


def as_float(value: Any, what: str = "your answer") -> float:
    """A Python float from a number, a 0-d/1-element tensor or array; Hint otherwise."""
    if isinstance(value, bool) or value is None:
        raise Hint(f"{what} should be a number, got {value!r}")
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise Hint(
                f"{what} should be a single number, got a tensor of shape {tuple(value.shape)}"
            )
        return float(value.detach())
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise Hint(f"{what} should be a number, got {type(value).__name__}") from None
    return out


def as_tensor(value: Any, shape: tuple[int, ...], what: str = "your function") -> Tensor:
    """Check that ``value`` is a tensor of ``shape``; return it detached in float64."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Tensor):
        raise Hint(f"{what} returned a pair; return only the tensor")
    if not isinstance(value, Tensor):
        raise Hint(f"{what} should return a torch.Tensor, got {type(value).__name__}")
    if tuple(value.shape) != tuple(shape):
        raise Hint(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value.detach().to(torch.float64)


def as_pair(value: Any, what: str = "your function") -> tuple[Any, Any]:
    """Unpack a ``(output, log_det)`` pair or give a hint."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Hint(f"{what} should return a pair (output, log_det), got {type(value).__name__}")
    return value[0], value[1]


def close(a: Tensor | float, b: Tensor | float, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    """``torch.allclose`` for tensors or floats (NaN never close)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        a_t = torch.as_tensor(a, dtype=torch.float64)
        b_t = torch.as_tensor(b, dtype=torch.float64)
        return a_t.shape == b_t.shape and bool(torch.allclose(a_t, b_t, rtol=rtol, atol=atol))
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)


def fmt(x: float) -> str:
    """A short representation of a number for messages."""
    return f"{x:.4g}"
