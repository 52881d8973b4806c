"""Shared machinery of the exercise checkers, and the checking policy they all follow.

A checker is a function ``check_xxx(fn, ...) -> bool`` decorated with :func:`checker`. Its
body calls the student's code through :func:`call` and raises :class:`Hint` with a short,
specific message when the answer is wrong; the decorator turns that into one printed line:

* ``✅ Exercise 4.2 passed: …``                      (returns True)
* ``❌ Exercise 4.2: <hint> (see notebook 04, section '…')``   (returns False)
* ``Exercise 4.2: not done yet — …``                 (the exercise still raises
  ``NotImplementedError``; returns False)

Every ❌ line and the "not done yet" line point to the lecture notebook and section that
teach the idea (the table :data:`coursekit.checkers._sections.SECTIONS`).

**The checking policy** (README, "Doing the exercises", says the same to students):

1. *What an answer may return.* A number may be a Python float, a 0-d tensor or a numpy
   scalar; an array may be a tensor or a numpy array, in any float dtype — unless the
   exercise text fixes it (then the checker enforces it and says so). :func:`as_float` and
   :func:`as_tensor` read answers that way.
2. *Tolerances* are relative and sized to what the exercise teaches (:func:`matches`): the
   default :data:`RTOL` = 1e-5 never rejects a right formula computed in float32 or with a
   float32 constant (``torch.log(torch.tensor(2 * torch.pi))``), and still catches every
   conceptual error, which moves the answer by O(1). Where float64 precision *is* the point,
   ``matches(..., float64=True)`` asks for :data:`RTOL_FLOAT64` and tells a float32-close
   answer "right to 1e-7: a float32 value entered, compute in float64".
3. *Time limits* count CPU time (:data:`TIME_LIMIT`, :func:`set_time_limit`), and the message
   says so; a wall-clock backstop (10 times longer) stops only code that waits without
   computing, and says that. Student code cannot swallow the limit (not even with a bare
   ``except:``) nor outlive it (:mod:`coursekit.checkers._time_limit`).
4. *Inputs* are checked for in-place edits after every call (:func:`call`), whatever the
   checker: tensors, numpy arrays, lists, dicts and modules' parameters, named by the
   student's own parameter name. Turning on ``requires_grad`` of an input is allowed (and
   undone). A checker never passes data that it needs afterwards without this check.
5. *The state of torch* the student's code leaves behind does not leak: grad mode and the
   default dtype are restored after each call, and checks run with gradients enabled (a
   leaked ``torch.set_grad_enabled(False)`` cannot make a right answer fail).
6. *No exception escapes a checker* except ``KeyboardInterrupt`` (the stop button): a
   student's ``SystemExit``, ``GeneratorExit`` or any ``Exception`` becomes one ❌ line.
7. *Every requirement the text states is enforced*, or it is not stated. Each exercise has,
   in the tests, ≥ 3 different correct answers that pass and ≥ 3 typical wrong answers, each
   rejected with a hint naming that mistake; hints are plain text (no LaTeX).

Results are recorded per exercise so that :func:`show_progress` can print a summary and
:func:`assert_all_passed` can fail the solution notebooks when a reference solution breaks.
"""

from __future__ import annotations

import functools
import inspect
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

#: the default relative tolerance of :func:`matches`: float32 arithmetic (about 6e-8 per
#: operation, 1e-6 after a few dozen) passes, an O(1) conceptual error never does.
RTOL: float = 1e-5
#: the relative tolerance of ``matches(..., float64=True)``, where float64 is the point.
RTOL_FLOAT64: float = 1e-10

#: chapters whose checkers still use the older rule (1e-9 tolerances, and a "compute in
#: float64" preface on a wrong float32 answer); a chapter module that follows the policy
#: above calls :func:`follow_policy` before defining its checkers.
LEGACY_FLOAT64_CHAPTERS: set[str] = {"1", "2", "3", "4", "5", "6", "7", "8", "9"}


def follow_policy(chapter: int | str) -> None:
    """Declare that ``chapter``'s checkers follow the checking policy (no legacy "compute in
    float64" preface on their wrong answers; tolerances through :func:`matches`)."""
    LEGACY_FLOAT64_CHAPTERS.discard(str(int(chapter)))


class Hint(Exception):
    """A wrong answer; the message is the hint printed for the student."""


class NotDone(Exception):
    """The student's code still raises ``NotImplementedError``."""


class StudentError(Exception):
    """The student's code raised an exception; the message is ``Type: message``."""


class StudentTimeout(Hint):
    """The student's code used more than :data:`TIME_LIMIT` seconds of CPU time (or waited
    far longer than that) and was stopped."""


#: seconds of CPU time one call of a student function may use before the checker stops it.
TIME_LIMIT: float = 60.0
#: seconds of wall-clock time after which a call is stopped even if it uses no CPU (None:
#: 10 × TIME_LIMIT + 10 s).
WALL_LIMIT: float | None = None

#: answers seen during the current check that are in a precision below float64 (used only
#: by the chapters in LEGACY_FLOAT64_CHAPTERS).
_LOW_PRECISION: list[str] = []

_LOW_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def set_time_limit(seconds: float, wall_seconds: float | None = None) -> None:
    """Let each student function use at most ``seconds`` of CPU time (default 60) before it
    is stopped; ``wall_seconds`` (default 10 × seconds + 10) bounds the wall-clock time of a
    function that waits without computing."""
    for name, value in (("seconds", seconds), ("wall_seconds", wall_seconds)):
        if value is None and name == "wall_seconds":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name}: expected a positive number, got {value!r}")
        if not 0 < value < math.inf:
            raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    global TIME_LIMIT, WALL_LIMIT
    TIME_LIMIT = float(seconds)
    WALL_LIMIT = None if wall_seconds is None else float(wall_seconds)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------ inputs changed in place


def _snapshot(value: Any) -> Any:
    """A private copy of what an in-place edit could change (None: nothing to watch)."""
    if isinstance(value, Tensor):
        return ("tensor", value.detach().clone(), value.requires_grad, value.grad)
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    if isinstance(value, torch.nn.Module):
        return ("module", {k: v.detach().clone() for k, v in value.state_dict().items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, len(value), [_snapshot(v) for v in value], list(value))
    if isinstance(value, dict):
        return ("dict", dict(value), {k: _snapshot(v) for k, v in value.items()})
    return None


def _same_tensor(a: Tensor, b: Any) -> bool:
    return (
        isinstance(b, Tensor)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and bool(torch.equal(torch.nan_to_num(a), torch.nan_to_num(b.detach())))
    )


def _changed(snap: Any, value: Any) -> str | None:
    """The kind of object edited in place ("tensor", "list", …), or None if unchanged."""
    if snap is None:
        return None
    kind = snap[0]
    if kind == "tensor":
        _, copy, requires_grad, grad = snap
        if not _same_tensor(copy, value):
            return "tensor"
        if value.requires_grad != requires_grad and value.is_leaf:
            value.requires_grad_(requires_grad)  # allowed: undone for the checker
        if grad is None and value.grad is not None:
            value.grad = None
        return None
    if kind == "array":
        same = isinstance(value, np.ndarray) and value.shape == snap[1].shape
        return None if same and np.array_equal(value, snap[1], equal_nan=True) else "array"
    if kind == "module":
        now = value.state_dict()
        if now.keys() != snap[1].keys():
            return "module"
        if any(snap[1][k].dtype != now[k].dtype for k in now):
            return "module dtype"
        return None if all(_same_tensor(snap[1][k], now[k]) for k in now) else "module"
    if kind in ("list", "tuple"):
        _, length, items, originals = snap
        if len(value) != length or any(a is not b for a, b in zip(value, originals, strict=True)):
            return kind
        for item_snap, item in zip(items, value, strict=True):
            inner = _changed(item_snap, item)
            if inner:
                return inner
        return None
    if kind == "dict":
        _, original, items = snap
        if value.keys() != original.keys() or any(value[k] is not original[k] for k in value):
            return "dict"
        for key, item_snap in items.items():
            inner = _changed(item_snap, value[key])
            if inner:
                return inner
    return None


_COPY_ADVICE = {
    "tensor": "work on a copy ({name} = {name}.clone()) or use out-of-place operations "
    "(x = x - m, not x -= m; torch.sort, not .sort_())",
    "array": "work on a copy ({name} = {name}.copy()) or use out-of-place operations",
    "list": "work on a copy ({name} = list({name})); sorted() returns a new list, .sort(), "
    ".append() and item assignment change the caller's list",
    "tuple": "a tuple's items were changed in place; work on copies",
    "dict": "work on a copy ({name} = dict({name}))",
    "module": "a layer you are given must not be trained or edited: its parameters changed "
    "(use it as it is, under torch.no_grad() if you only evaluate it)",
    "module dtype": "its parameters changed dtype (.float(), .half() and .to(dtype) convert a "
    "module in place); keep it as given, in float64, and compute in float64",
}


def _parameter_names(fn: Callable[..., Any], n: int) -> list[str]:
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"argument {i + 1}" for i in range(n)]


def _check_inputs(fn: Callable[..., Any], args: tuple, kwargs: dict, snaps: list) -> None:
    names = _parameter_names(fn, len(args)) + list(kwargs)
    for name, value, snap in zip(names, [*args, *kwargs.values()], snaps, strict=True):
        kind = _changed(snap, value)
        if kind:
            raise Hint(in_place_hint(name, kind))


def in_place_hint(name: str, kind: str) -> str:
    """The hint for an input ``name`` of kind ``kind`` (:func:`_changed`) changed in place."""
    var = name if name.isidentifier() else "x"
    return f"your function changed its input {name} in place; " + _COPY_ADVICE[kind].format(
        name=var
    )


# --------------------------------------------------------------- calling student code


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the student's ``fn`` under the time limit and check that it left its inputs as
    they were (:class:`Hint` naming the input otherwise).

    Exceptions become :class:`NotDone` (``NotImplementedError``) or :class:`StudentError`
    (anything else, ``SystemExit`` and ``GeneratorExit`` included; ``KeyboardInterrupt`` is
    the user's stop button and propagates). Grad mode and the default dtype are restored.
    """
    return _call(fn, args, kwargs, check_inputs=True)


def call_mutating(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """:func:`call` for an exercise whose text asks the function to change an input (e.g.
    to train the model it is given): no in-place check."""
    return _call(fn, args, kwargs, check_inputs=False)


def _call(fn: Callable[..., Any], args: tuple, kwargs: dict, check_inputs: bool) -> Any:
    if not callable(fn):
        raise Hint(f"expected a function, got {type(fn).__name__}")
    snaps = [_snapshot(v) for v in (*args, *kwargs.values())] if check_inputs else []
    limit = TIME_LIMIT
    grad, dtype = torch.is_grad_enabled(), torch.get_default_dtype()
    try:
        out = run_limited(fn, args, kwargs, limit, WALL_LIMIT)
    except TimeLimitReached as stop:
        if stop.clock == "wall":
            raise StudentTimeout(
                f"your function was stopped after {stop.wall:.0f} s of wall-clock time in "
                f"which it used only {stop.cpu:.1f} s of CPU: it is waiting, not computing "
                "(time.sleep, input(), a lock?)"
            ) from None
        raise StudentTimeout(
            f"your function used more than {limit:g} s of CPU time (all threads counted) and "
            "was stopped (an endless loop, or far more work than needed?); if it really needs "
            "longer, call coursekit.checkers.set_time_limit(seconds)"
        ) from None
    except NotImplementedError as err:
        raise NotDone(str(err)) from None
    except (Exception, SystemExit, GeneratorExit) as err:  # the student's bug, in one line
        raise StudentError(f"{type(err).__name__}: {_one_line(err)}") from None
    finally:
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
    if check_inputs:
        _check_inputs(fn, args, kwargs, snaps)
    return out


def checker(exercise: str, title: str) -> Callable[[Callable[..., str]], Callable[..., bool]]:
    """Decorator: ``body(*args) -> pass message`` becomes a printing checker returning a bool."""
    EXERCISES[exercise] = title
    chapter = exercise.split(".")[0]

    def decorate(body: Callable[..., str]) -> Callable[..., bool]:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> bool:
            ok, status = False, "wrong"
            _LOW_PRECISION.clear()
            grad, dtype = torch.is_grad_enabled(), torch.get_default_dtype()
            try:
                with torch.enable_grad():
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
                if chapter in LEGACY_FLOAT64_CHAPTERS and _LOW_PRECISION:
                    hint = (
                        f"{_LOW_PRECISION[0]}: float32 keeps about 7 significant digits and "
                        "this answer is off by more than float32 rounding explains — compute "
                        "in float64 (the inputs are float64: avoid .float() and "
                        f"dtype=torch.float32). If it is still wrong in float64: {hint}"
                    )
                print(f"❌ Exercise {exercise}: {with_pointer(exercise, hint)}")
            except KeyboardInterrupt:
                raise
            except BaseException as err:  # noqa: BLE001 - a checker never raises
                print(
                    f"❌ Exercise {exercise}: the checker could not evaluate your answer "
                    f"({type(err).__name__}: {_one_line(err)}); check the type and shape "
                    "of what your function returns"
                    + (f" ({pointer(exercise)})" if pointer(exercise) else "")
                )
            else:
                ok, status = True, "passed"
                print(f"✅ Exercise {exercise} passed: {message}")
            finally:
                torch.set_grad_enabled(grad)
                torch.set_default_dtype(dtype)
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
    """A Python float from a real number, a 0-d/1-element tensor or numpy array; Hint
    otherwise (policy 1: any float dtype is accepted).

    Strings, complex values, ``None``, booleans and integers too large for a float get a
    hint. ``exact`` only matters to the chapters in :data:`LEGACY_FLOAT64_CHAPTERS`.
    """
    if isinstance(value, (bool, np.bool_)) or value is None:
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
        if value.dtype == torch.bool:
            raise Hint(f"{what} should be a number, got a boolean tensor")
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
    if isinstance(value, np.ndarray) and value.size != 1:
        raise Hint(f"{what} should be a single number, got an array of shape {value.shape}")
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind not in "fiu":
        raise Hint(f"{what} should be a number, got a numpy {value.dtype} value")
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
    value: Any,
    shape: tuple[int, ...],
    what: str = "your function",
    exact: bool = True,
    numpy: bool = True,
) -> Tensor:
    """Check that ``value`` is a real array of ``shape``; return it as a detached float64
    tensor.

    Policy 1: a torch tensor or (with ``numpy``, the default) a numpy array, of any real
    dtype. ``numpy=False`` where the exercise text says "return a tensor" (e.g. because the
    result must carry gradients). ``exact`` only matters to the legacy chapters.
    """
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Tensor):
        raise Hint(f"{what} returned a pair; return only the tensor")
    if numpy and isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiub":
            raise Hint(f"{what} returned a numpy array of {value.dtype}; expected real numbers")
        value = torch.from_numpy(np.array(value, dtype=np.float64))
    if not isinstance(value, Tensor):
        kinds = "a torch.Tensor or a numpy array" if numpy else "a torch.Tensor"
        raise Hint(f"{what} should return {kinds}, got {type(value).__name__}")
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
    of at least :data:`RTOL_FLOOR`. For diagnosing a wrong answer (which wrong formula it
    is); whether an answer is right is :func:`matches`."""
    rtol = max(rtol, RTOL_FLOOR)
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        a_t = torch.as_tensor(a, dtype=torch.float64)
        b_t = torch.as_tensor(b, dtype=torch.float64)
        return a_t.shape == b_t.shape and bool(torch.allclose(a_t, b_t, rtol=rtol, atol=atol))
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)


def relative_error(got: Tensor | float, want: Tensor | float, scale: float | None = None) -> float:
    """``max |got − want| / (|want| + scale)`` elementwise (inf on a NaN or a shape mismatch).

    ``scale`` keeps the error relative near a zero of ``want``: by default the root mean
    square of ``want`` for an array (the size of the answer as a whole) and 0 for a number.
    """
    g = torch.as_tensor(got, dtype=torch.float64)
    w = torch.as_tensor(want, dtype=torch.float64)
    if g.shape != w.shape:
        return math.inf
    if g.numel() == 0:
        return 0.0
    finite = torch.isfinite(w)
    if not torch.equal(torch.isfinite(g), finite) or not torch.equal(g[~finite], w[~finite]):
        return math.inf
    g, w = g[finite], w[finite]
    if g.numel() == 0:
        return 0.0
    if scale is None:
        scale = float(w.pow(2).mean().sqrt()) if w.numel() > 1 else 0.0
    denominator = w.abs() + max(scale, 1e-300)
    return float(((g - w).abs() / denominator).max())


def matches(
    got: Tensor | float,
    want: Tensor | float,
    rtol: float = RTOL,
    float64: bool = False,
    scale: float | None = None,
    what: str = "your answer",
) -> bool:
    """Whether ``got`` is the right answer ``want`` (policy 2): relative error
    (:func:`relative_error`) at most ``rtol``.

    With ``float64`` (an exercise whose point needs float64 precision) the bound is
    :data:`RTOL_FLOAT64`, and an answer right only to float32 precision raises the
    :class:`Hint` "right to 1e-7: a float32 value entered, compute in float64".
    """
    err = relative_error(got, want, scale)
    if not float64:
        return err <= rtol
    if err <= RTOL_FLOAT64:
        return True
    if err <= rtol:
        raise Hint(
            f"{what} is right to {err:.0e}: a float32 value entered, compute in float64 "
            "(avoid .float(), dtype=torch.float32 and float32 constants such as "
            "torch.tensor(2.0); the inputs are float64)"
        )
    return False


def fmt(x: float) -> str:
    """A short representation of a number for messages."""
    return f"{x:.4g}"
