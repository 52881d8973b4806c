"""Shared machinery of the exercise checkers: one printed line per check, never a traceback.

A checker is a function ``check_xxx(fn, ...) -> bool`` decorated with :func:`checker`. Its
body calls the student's code through :func:`call` and raises :class:`Hint` with a short,
specific message when the answer is wrong; the decorator turns that into one printed line:

* ``✅ Exercise 4.2 passed: …``                      (returns True)
* ``❌ Exercise 4.2: <hint> (see notebook 04, section '…')``   (returns False)
* ``Exercise 4.2: not done yet — …``                 (the exercise still raises
  ``NotImplementedError``; returns False)

Every ❌ line and the "not done yet" line point to the lecture notebook and section that
teach the idea (the table :data:`coursekit.checkers._sections.SECTIONS`); a hint that already
names a notebook keeps its own pointer.

Results are recorded per exercise so that :func:`show_progress` can print a summary and
:func:`assert_all_passed` can fail the solution notebooks when a reference solution breaks.

A checker never raises for any answer: a student function that runs longer than
:data:`TIME_LIMIT` seconds is stopped (:func:`set_time_limit` changes it), every input is
passed as a fresh copy (so in-place changes cannot corrupt the reference), values that are
not real numbers (strings, complex, integers too large for a float) get a hint, a float32
answer gets the hint "compute in float64", and an unexpected failure inside the checker
itself is printed as one line.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from coursekit.checkers._sections import pointer, with_pointer
from coursekit.checkers._time_limit import TimeLimitReached, run_limited

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


class StudentTimeout(Hint):
    """The student's code ran longer than :data:`TIME_LIMIT` seconds and was stopped."""


#: seconds one call of a student function may run before the checker stops it.
TIME_LIMIT: float = 60.0

#: answers seen during the current check that are in a precision below float64.
_LOW_PRECISION: list[str] = []

_LOW_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def set_time_limit(seconds: float) -> None:
    """Let each student function run at most ``seconds`` (default 60) before it is stopped."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"seconds: expected a positive number, got {seconds!r}")
    if not 0 < seconds < math.inf:
        raise ValueError(f"seconds: expected a positive finite number, got {seconds!r}")
    global TIME_LIMIT
    TIME_LIMIT = float(seconds)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the student's ``fn``; exceptions become :class:`NotDone` / :class:`StudentError`."""
    if not callable(fn):
        raise Hint(f"expected a function, got {type(fn).__name__}")
    limit = TIME_LIMIT
    grad = torch.is_grad_enabled()
    try:
        return run_limited(fn, args, kwargs, limit)
    except TimeLimitReached:
        raise StudentTimeout(
            f"your function did not return within {limit:g} s and was stopped (an endless "
            "loop, or far more work than needed?); if it really needs longer, call "
            "coursekit.checkers.set_time_limit(seconds)"
        ) from None
    except NotImplementedError as err:
        raise NotDone(str(err)) from None
    except (Exception, SystemExit, GeneratorExit) as err:  # the student's bug, in one line
        raise StudentError(f"{type(err).__name__}: {_one_line(err)}") from None
    finally:
        torch.set_grad_enabled(grad)  # a torch.set_grad_enabled(False) inside fn stays there


def checker(exercise: str, title: str) -> Callable[[Callable[..., str]], Callable[..., bool]]:
    """Decorator: ``body(*args) -> pass message`` becomes a printing checker returning a bool."""
    EXERCISES[exercise] = title

    def decorate(body: Callable[..., str]) -> Callable[..., bool]:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> bool:
            ok, status = False, "wrong"
            _LOW_PRECISION.clear()
            try:
                with torch.enable_grad():  # a no-grad mode left on by earlier code stays out
                    message = body(*args, **kwargs)
            except NotDone:
                status = "not done"
                where = pointer(exercise)
                print(
                    f"Exercise {exercise}: not done yet — {title}. Replace the line "
                    "`raise NotImplementedError(...)` with your code and re-run the cell."
                    + (f" The idea: {where}." if where else "")
                )
            except StudentError as err:
                print(
                    f"❌ Exercise {exercise}: {with_pointer(exercise, f'your code raised {err}')}"
                )
            except StudentTimeout as err:
                print(f"❌ Exercise {exercise}: {with_pointer(exercise, _one_line(err, 400))}")
            except Hint as err:
                hint = _one_line(err, 400)
                if _LOW_PRECISION:
                    hint = (
                        f"{_LOW_PRECISION[0]}: float32 keeps about 7 significant digits and "
                        "this answer is off by more than float32 rounding explains — compute "
                        "in float64 (the inputs are float64: avoid .float() and "
                        f"dtype=torch.float32). If it is still wrong in float64: {hint}"
                    )
                print(f"❌ Exercise {exercise}: {with_pointer(exercise, hint)}")
            except Exception as err:  # a checker never raises, whatever the answer
                print(
                    f"❌ Exercise {exercise}: the checker could not evaluate your answer "
                    f"({type(err).__name__}: {_one_line(err)}); check the type and shape "
                    "of what your function returns"
                    + (f" ({pointer(exercise)})" if pointer(exercise) else "")
                )
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
    """The exercise ids of one chapter, in order (``["4.1", "4.2", …]``).

    ``chapter`` is a number (``4``) or its digits (``"4"``, ``"04"``); ``ValueError`` naming
    ``chapter`` when that chapter has no exercises.
    """
    number: int | None = None
    if isinstance(chapter, int) and not isinstance(chapter, bool):
        number = chapter
    elif isinstance(chapter, str) and chapter.strip().isdigit():
        number = int(chapter)
    prefix = f"{number}."
    ids = [e for e in EXERCISES if e.startswith(prefix)] if number is not None else []
    if not ids:
        chapters = sorted({int(e.split(".")[0]) for e in EXERCISES})
        raise ValueError(
            f"chapter: expected the number of a chapter with exercises, one of {chapters}, "
            f"got {chapter!r}"
        )
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


def as_float(value: Any, what: str = "your answer", exact: bool = True) -> float:
    """A Python float from a real number, a 0-d/1-element tensor or array; Hint otherwise.

    Strings, complex values, ``None``, booleans and integers too large for a float get a
    hint. With ``exact``, a float32/float16 value is remembered for the "use float64" hint.
    """
    if isinstance(value, bool) or value is None:
        raise Hint(f"{what} should be a number, got {value!r}")
    if isinstance(value, (str, bytes)):
        raise Hint(f"{what} should be a number, not a string ({_one_line(repr(value), 60)})")
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise Hint(
                f"{what} should be a single number, got a tensor of shape {tuple(value.shape)}"
            )
        if value.is_complex():
            raise Hint(f"{what} should be a real number, got a complex tensor")
        if exact and value.dtype in _LOW_DTYPES:
            _LOW_PRECISION.append(f"{what} is a {value.dtype} tensor")
        return float(value.detach().to(torch.float64))
    if isinstance(value, complex) or _is_complex_array(value):
        raise Hint(f"{what} should be a real number, got the complex value {value!r}")
    if isinstance(value, int):
        if abs(value).bit_length() > 1023:
            digits = int(abs(value).bit_length() * math.log10(2))
            raise Hint(
                f"{what} is an integer of about {digits + 1} digits, too large for a float "
                "(the largest is about 1.8e308)"
            )
        return float(value)
    if (
        exact
        and isinstance(value, (np.floating, np.ndarray))
        and value.dtype
        in (
            np.float16,
            np.float32,
        )
    ):
        _LOW_PRECISION.append(f"{what} is a {value.dtype} number")
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise Hint(f"{what} should be a number, got {type(value).__name__}") from None
    except Exception as err:  # noqa: BLE001 - an exotic object whose __float__ fails
        raise Hint(f"{what} could not be read as a number ({type(err).__name__})") from None
    return out


def _is_complex_array(value: Any) -> bool:
    try:
        return bool(np.iscomplexobj(value))
    except Exception:  # noqa: BLE001 - not array-like
        return False


def as_tensor(
    value: Any, shape: tuple[int, ...], what: str = "your function", exact: bool = True
) -> Tensor:
    """Check that ``value`` is a real tensor of ``shape``; return it detached in float64.

    With ``exact``, a float32/float16 tensor is remembered for the "use float64" hint.
    """
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Tensor):
        raise Hint(f"{what} returned a pair; return only the tensor")
    if not isinstance(value, Tensor):
        raise Hint(f"{what} should return a torch.Tensor, got {type(value).__name__}")
    if value.is_complex():
        raise Hint(f"{what} returned a complex tensor ({value.dtype}); expected real values")
    if tuple(value.shape) != tuple(shape):
        raise Hint(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    if exact and value.dtype in _LOW_DTYPES:
        _LOW_PRECISION.append(f"{what} returned a {value.dtype} tensor")
    return value.detach().to(torch.float64)


def as_pair(value: Any, what: str = "your function") -> tuple[Any, Any]:
    """Unpack a ``(output, log_det)`` pair or give a hint."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Hint(f"{what} should return a pair (output, log_det), got {type(value).__name__}")
    return value[0], value[1]


#: the smallest relative tolerance :func:`close` applies, whatever a check asks: a right
#: formula computed with a float32 constant or idiom (``torch.tensor(256.)``,
#: ``.float().mean().item()``, a float32 ``log 2π``) is right to about 1e-7 relative, and
#: every conceptual mistake the exercises test (a missing Jacobian term, a sign, a factor,
#: h instead of h², n instead of n − 1 on the sizes used) is off by far more.
RTOL_FLOOR = 2e-6


def close(a: Tensor | float, b: Tensor | float, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    """``torch.allclose`` for tensors or floats (NaN never close), with a relative tolerance
    of at least :data:`RTOL_FLOOR`."""
    rtol = max(rtol, RTOL_FLOOR)
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        a_t = torch.as_tensor(a, dtype=torch.float64)
        b_t = torch.as_tensor(b, dtype=torch.float64)
        return a_t.shape == b_t.shape and bool(torch.allclose(a_t, b_t, rtol=rtol, atol=atol))
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)


def fmt(x: float) -> str:
    """A short representation of a number for messages."""
    return f"{x:.4g}"
