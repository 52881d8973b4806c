"""Run a student's function for at most a given number of seconds, then stop it.

In the main thread (a script, pytest, a Jupyter kernel) SIGALRM interrupts the function
itself; elsewhere it runs in a worker thread that receives the interruption asynchronously.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable
from typing import Any

import torch


class TimeLimitReached(BaseException):
    """Raised inside the student's code when its time is up (a BaseException, so that a
    student's ``except Exception`` cannot swallow it)."""


def _alarm_handler(signum: int, frame: object) -> None:
    raise TimeLimitReached


def _run_with_alarm(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> Any:
    """Main thread (a script, pytest, a Jupyter kernel): SIGALRM interrupts ``fn`` itself.

    After the limit the timer repeats every 0.25 s, so that code which catches one
    interruption with a bare ``except:`` still gets the next ones.
    """
    previous = signal.signal(signal.SIGALRM, _alarm_handler)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, limit, 0.25)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:
            signal.setitimer(signal.ITIMER_REAL, old_delay, old_interval)


def _run_in_thread(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> Any:
    """Elsewhere (no SIGALRM, or not the main thread): run ``fn`` in a worker thread, and
    when time is up raise :class:`TimeLimitReached` inside it (between two Python bytecodes)."""
    out: dict[str, Any] = {}
    grad = torch.is_grad_enabled()

    def target() -> None:
        try:
            with torch.set_grad_enabled(grad):
                out["value"] = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - handed back to the caller below
            out["error"] = err

    worker = threading.Thread(target=target, daemon=True, name="coursekit-student-code")
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(worker.ident or 0), ctypes.py_object(TimeLimitReached)
        )
        worker.join(1.0)
        raise TimeLimitReached
    if "error" in out:
        raise out["error"]
    return out["value"]


def run_limited(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> Any:
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _run_with_alarm(fn, args, kwargs, limit)
    return _run_in_thread(fn, args, kwargs, limit)
