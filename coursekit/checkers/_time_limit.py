"""Run a student's function for at most a given number of seconds, then stop it.

In the main thread (a script, pytest, a Jupyter kernel) SIGALRM interrupts the function
itself; elsewhere it runs in a worker thread that receives the interruption asynchronously.

Once the time is up, every line the student's code runs raises :class:`TimeLimitReached`
again (a trace function is set on its frames), so ``while True: try: … except: pass`` is
stopped too: the ``pass`` of the ``except`` clause raises outside its ``try``. Nothing outlives
a call: the timer is disarmed and the tracing removed before :func:`run_limited` returns, and
an alarm that arrives after its call has finished is ignored, whatever the limit.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch

#: the shortest timer the operating system is asked for (a shorter one would round to zero,
#: which disarms the timer instead of firing it).
_SHORTEST_TIMER = 1e-3


class TimeLimitReached(BaseException):
    """Raised inside the student's code when its time is up (a BaseException, so that a
    student's ``except Exception`` cannot swallow it)."""


class _Call:
    """One limited call: ``expired`` once its time is up, ``active`` until it has ended."""

    def __init__(self) -> None:
        self.active = True
        self.expired = False

    def tracer(self, frame: FrameType, event: str, arg: Any) -> Any:
        """Trace function on the student's frames: once time is up, any line or opcode run
        while an ``except`` clause handles the interruption raises it again, from where no
        ``try`` of that clause can catch it (CPython stops tracing after a trace function
        raises, so it raises only there; the next alarm turns tracing on again)."""
        if (
            self.active
            and self.expired
            and event in ("line", "opcode")
            and frame.f_code.co_filename != __file__
            and isinstance(sys.exc_info()[1], TimeLimitReached)
        ):
            raise TimeLimitReached
        return self.tracer

    def trace_frames(self, frame: FrameType | None) -> None:
        """Make every line of ``frame`` and its callers (up to this module) raise."""
        while frame is not None and frame.f_code.co_filename != __file__:
            frame.f_trace = self.tracer
            frame.f_trace_lines = True
            frame.f_trace_opcodes = True  # raise between opcodes of an `except` clause too
            frame = frame.f_back


#: the limited call running in the main thread (None between calls).
_MAIN_CALL: _Call | None = None


def _alarm_handler(signum: int, frame: FrameType | None) -> None:
    call = _MAIN_CALL
    if call is None or not call.active:
        return  # an alarm that arrived after its call ended: nothing to stop
    call.expired = True
    sys.settrace(call.tracer)
    call.trace_frames(frame)
    if frame is not None and frame.f_code.co_filename == __file__:
        return  # inside run_limited itself: it sees `expired` and reports the stop
    raise TimeLimitReached


def _disarm(
    call: _Call, outer: tuple[_Call | None, Any, tuple[float, float]], old_trace: Any
) -> None:
    """End ``call``: later alarms are ignored, the timer is cancelled, the handler, the
    trace function and an enclosing limited call's timer put back. Retried if an alarm
    interrupts it before ``active`` is False."""
    global _MAIN_CALL
    outer_call, previous, (old_delay, old_interval) = outer
    while True:
        try:
            call.active = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            sys.settrace(old_trace)
            _MAIN_CALL = outer_call
            if old_delay > 0:
                signal.setitimer(signal.ITIMER_REAL, old_delay, old_interval)
            return
        except TimeLimitReached:
            continue


def _run_with_alarm(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> Any:
    """Main thread (a script, pytest, a Jupyter kernel): SIGALRM interrupts ``fn`` itself.

    After the limit the timer repeats every 0.25 s, so that a blocking call (``time.sleep``)
    is woken; the trace function stops code that catches the interruption."""
    global _MAIN_CALL
    call = _Call()
    old_trace = sys.gettrace()
    outer_call, previous = _MAIN_CALL, signal.getsignal(signal.SIGALRM)
    _MAIN_CALL = call
    signal.signal(signal.SIGALRM, _alarm_handler)
    old_timer = signal.setitimer(signal.ITIMER_REAL, max(limit, _SHORTEST_TIMER), 0.25)
    outer = (outer_call, previous, old_timer)
    try:
        result = fn(*args, **kwargs)
    except TimeLimitReached:
        _disarm(call, outer, old_trace)
        raise
    finally:
        _disarm(call, outer, old_trace)
    if call.expired:  # it ended, but only after its time was up
        raise TimeLimitReached
    return result


def _run_in_thread(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> Any:
    """Elsewhere (no SIGALRM, or not the main thread): run ``fn`` in a worker thread, and
    when time is up raise :class:`TimeLimitReached` inside it (between two Python bytecodes),
    and again on every line it runs after that."""
    out: dict[str, Any] = {}
    grad = torch.is_grad_enabled()
    call = _Call()

    def light_tracer(frame: FrameType, event: str, arg: Any) -> Any:
        # tracing on in the worker (so that its frames can be traced later); no line
        # events until time is up
        return call.tracer if call.expired else None

    def target() -> None:
        sys.settrace(light_tracer)
        try:
            with torch.set_grad_enabled(grad):
                out["value"] = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - handed back to the caller below
            out["error"] = err
        finally:
            call.active = False
            sys.settrace(None)

    worker = threading.Thread(target=target, daemon=True, name="coursekit-student-code")
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        call.expired = True
        call.trace_frames(sys._current_frames().get(worker.ident or 0))
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(worker.ident or 0), ctypes.py_object(TimeLimitReached)
        )
        worker.join(5.0)
        raise TimeLimitReached
    if "error" in out:
        raise out["error"]
    return out["value"]


def run_limited(fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float) -> Any:
    """``fn(*args, **kwargs)``, stopped by :class:`TimeLimitReached` after ``limit`` seconds."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _run_with_alarm(fn, args, kwargs, limit)
    return _run_in_thread(fn, args, kwargs, limit)
