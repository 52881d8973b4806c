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
   exercise text fixes it (then the checker enforces it and says so).
   :mod:`coursekit.checkers._answers` reads answers that way.
2. *Tolerances* are relative and sized to what the exercise teaches
   (:func:`~coursekit.checkers._answers.matches`): the default relative error 1e-5 never
   rejects a right formula computed in float32 or with a float32 constant
   (``torch.log(torch.tensor(2 * torch.pi))``), and still catches every conceptual error,
   which moves the answer by O(1). Where float64 precision *is* the point,
   ``matches(..., float64=True)`` asks for 1e-10 and tells a float32-close answer "right to
   1e-7: a float32 value entered, compute in float64".
3. *Time limits* count CPU time (:data:`TIME_LIMIT`, :func:`set_time_limit`), and the message
   says so; a wall-clock backstop (10 times longer) stops only code that waits without
   computing, and says that. Student code cannot swallow the limit (not even with a bare
   ``except:``) nor outlive it (:mod:`coursekit.checkers._time_limit`).
4. *Inputs* are checked for in-place edits after every call (:func:`call`,
   :mod:`coursekit.checkers._inputs`), whatever the
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
import math
from collections.abc import Callable
from typing import Any

import torch

from coursekit.checkers._hints import Hint, NotDone, StudentError, StudentTimeout, one_line
from coursekit.checkers._inputs import changed_input, snapshot
from coursekit.checkers._sections import pointer, with_pointer
from coursekit.checkers._time_limit import TimeLimitReached, run_limited

#: exercise id ("4.2") -> title, for every checker defined (filled at import time).
EXERCISES: dict[str, str] = {}


#: exercise id -> result of the last check in this Python session.
RESULTS: dict[str, bool] = {}


#: exercise id -> "passed", "wrong" or "not done" (the last check in this session).
STATUS: dict[str, str] = {}


#: seconds of CPU time one call of a student function may use before the checker stops it.
TIME_LIMIT: float = 60.0


#: seconds of wall-clock time after which a call is stopped even if it uses no CPU (None:
#: 10 × TIME_LIMIT + 10 s).
WALL_LIMIT: float | None = None


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
    snaps = [snapshot(v) for v in (*args, *kwargs.values())] if check_inputs else []
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
        raise StudentError(f"{type(err).__name__}: {one_line(err)}") from None
    finally:
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
    if check_inputs:
        hint = changed_input(fn, args, kwargs, snaps)
        if hint:
            raise Hint(hint)
    return out


def checker(exercise: str, title: str) -> Callable[[Callable[..., str]], Callable[..., bool]]:
    """Decorator: ``body(*args) -> pass message`` becomes a printing checker returning a bool."""
    EXERCISES[exercise] = title

    def decorate(body: Callable[..., str]) -> Callable[..., bool]:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> bool:
            ok, status = False, "wrong"
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
                print(f"❌ Exercise {exercise}: {with_pointer(exercise, one_line(err, 400))}")
            except Hint as err:
                hint = one_line(err, 400)
                print(f"❌ Exercise {exercise}: {with_pointer(exercise, hint)}")
            except KeyboardInterrupt:
                raise
            except BaseException as err:  # noqa: BLE001 - a checker never raises
                print(
                    f"❌ Exercise {exercise}: the checker could not evaluate your answer "
                    f"({type(err).__name__}: {one_line(err)}); check the type and shape "
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
