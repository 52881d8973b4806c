"""Run a student's function under a CPU-time limit that it can neither swallow nor outlive.

:func:`run_limited` calls the function in the calling thread while a watchdog thread measures
two clocks from the start of the call:

* the **CPU time** of this process (``time.process_time``: every thread, so a function that
  runs torch on 4 cores spends it 4 times as fast as the wall clock) against ``cpu_limit``,
  the limit the checkers state;
* the **wall-clock time** against ``wall_limit`` (a backstop, several times longer), which only
  a function that waits without computing (``time.sleep``, ``input()``) can reach.

When a clock runs out the watchdog interrupts the function: in the main thread (a script,
pytest, a Jupyter kernel) by a signal sent to that thread, which also wakes a blocking call;
elsewhere by an asynchronous exception. The interruption raises :class:`TimeLimitReached`, a
``BaseException``, and from then on every line the student's code runs raises it again (a
trace function is installed on the student's frames), so ``while True: try: … except: pass``
is stopped too: the ``except`` line itself raises, outside its ``try``. Python switches a trace
function off once it has raised; a profile hook switches it back on at the next call, and the
watchdog repeats the interruption every 50 ms, so a loop that swallows one stop meets the next.
(The one loop this cannot stop is one that calls no function at all and catches
``BaseException`` in two nested handlers: only a separate process could.)

Nothing outlives a call: the watchdog is joined before :func:`run_limited` returns, the trace
function is removed (a previous one, e.g. a coverage tool's, is put back), and the signal
handler, installed once, ignores any interruption that arrives after its call has finished,
so no ``TimeLimitReached`` and no signal can reach later code — whatever the limit (even
1e-9 s) and however close to it the function ends. A function that ends after its limit ran
out is reported as stopped: it did use that time.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from types import FrameType
from typing import Any

#: the signal that interrupts the main thread (never sent by anything else in the course).
_SIGNAL = getattr(signal, "SIGUSR2", None)


class TimeLimitReached(BaseException):
    """Raised inside the student's code when its time is up (a BaseException, so that a
    student's ``except Exception`` cannot swallow it). ``clock`` is ``"cpu"`` or ``"wall"``;
    ``cpu`` and ``wall`` are the seconds used on each clock when it was stopped."""

    def __init__(self, clock: str = "cpu", cpu: float = 0.0, wall: float = 0.0) -> None:
        super().__init__(clock, cpu, wall)
        self.clock, self.cpu, self.wall = clock, cpu, wall


class _Run:
    """The state of one limited call, shared by the caller, the watchdog and the handler."""

    def __init__(self, cpu_limit: float, wall_limit: float) -> None:
        self.cpu_limit, self.wall_limit = cpu_limit, wall_limit
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.active = True
        # True only while the student's function runs: a stop is raised there and nowhere
        # else (raised inside threading's own code, e.g. while the watchdog starts, it would
        # leave a lock held and the watchdog hanging)
        self.in_call = False
        self.expired: str | None = None  # "cpu" or "wall" once a clock ran out
        self.thread = threading.get_ident()
        self.main = threading.current_thread() is threading.main_thread()
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        self.cpu_used = self.wall_used = 0.0

    def stop(self) -> TimeLimitReached:
        return TimeLimitReached(self.expired or "cpu", self.cpu_used, self.wall_used)

    def tracer(self, frame: FrameType, event: str, arg: Any) -> Any:
        """Trace function on the student's frames once time is up: every new line or call
        raises. An ``exception`` event does not: a trace function that raises is switched
        off by Python, and the ``except`` line that follows must still see it and raise
        there, outside the ``try`` whose handler would swallow the stop."""
        if (
            self.active
            and self.in_call
            and event in ("line", "call")
            and frame.f_code.co_filename != __file__
            and not _inside_a_hook(frame)
        ):
            raise self.stop()
        return self.tracer

    def profiler(self, frame: FrameType, event: str, arg: Any) -> None:
        """Profile function once time is up: never raises (so Python keeps it), and switches
        the trace back on at every call or return, after a raise of :meth:`tracer` turned it
        off — so a handler that swallows one stop meets the next at its next line."""
        if self.active and self.in_call and sys.gettrace() != self.tracer:
            sys.settrace(self.tracer)
            _trace_stack(self, frame)


def _hook_codes() -> set[Any]:
    """The code objects of the interpreter's error hooks now installed (pytest and IPython
    replace them): Python runs them for an exception it cannot raise (in a ``__del__``, a
    weakref callback), and a stop raised inside one would only feed it another."""
    codes = set()
    for hook in (sys.unraisablehook, sys.excepthook, threading.excepthook):
        func = getattr(hook, "func", hook)  # a functools.partial
        code = getattr(func, "__code__", None)
        if code is not None:
            codes.add(code)
    return codes


def _inside_a_hook(frame: FrameType | None, depth: int = 64) -> bool:
    """Whether ``frame`` runs inside one of the error hooks (:func:`_hook_codes`)."""
    codes = _hook_codes()
    while frame is not None and depth > 0:
        if frame.f_code in codes:
            return True
        frame, depth = frame.f_back, depth - 1
    return False


#: the limited call in progress in the main thread (None between calls).
_MAIN_RUN: _Run | None = None
_PREVIOUS_HANDLER: Any = None
_HANDLER_INSTALLED = False


def _trace_stack(run: _Run, frame: FrameType | None) -> None:
    """Make every line of the student's frames (above :func:`run_limited`) raise."""
    while frame is not None and frame.f_code.co_filename != __file__:
        frame.f_trace = run.tracer
        frame.f_trace_lines = True
        frame = frame.f_back


def _handler(signum: int, frame: FrameType | None) -> None:
    """The main thread's interruption: raise only inside a call whose time ran out."""
    run = _MAIN_RUN
    if run is None or not run.active or run.expired is None or not run.in_call:
        if callable(_PREVIOUS_HANDLER):  # not ours: hand it on
            _PREVIOUS_HANDLER(signum, frame)
        return
    sys.settrace(run.tracer)
    sys.setprofile(run.profiler)
    _trace_stack(run, frame)
    if frame is not None and frame.f_code.co_filename == __file__:
        return  # between two lines of run_limited: it sees `expired` and stops the call
    raise run.stop()


def _install_handler() -> bool:
    """Install :func:`_handler` once (it stays: a late interruption must find it)."""
    global _HANDLER_INSTALLED, _PREVIOUS_HANDLER
    if _HANDLER_INSTALLED:
        return True
    if _SIGNAL is None or not hasattr(signal, "pthread_kill"):
        return False
    try:
        previous = signal.signal(_SIGNAL, _handler)
    except (ValueError, OSError):  # not the main thread of the main interpreter
        return False
    _PREVIOUS_HANDLER = previous
    _HANDLER_INSTALLED = True
    return True


def _interrupt(run: _Run) -> None:
    """Called by the watchdog, holding ``run.lock``, while ``run`` is active; does nothing
    until the student's function runs (the watchdog tries again at its next poll)."""
    if not run.in_call:
        return
    if run.main:
        signal.pthread_kill(run.thread, _SIGNAL)  # type: ignore[arg-type]
        return
    frames = sys._current_frames().get(run.thread)
    _trace_stack(run, frames)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(run.thread), ctypes.py_object(TimeLimitReached)
    )


def _watch(run: _Run) -> None:
    """The watchdog: poll both clocks; once one ran out, interrupt, and repeat while the
    student's code is still running (a blocking C call may have missed the first one)."""
    poll = min(0.02, max(0.001, run.cpu_limit / 4))
    while not run.done.wait(poll):
        run.cpu_used = time.process_time() - run.cpu0
        run.wall_used = time.perf_counter() - run.wall0
        clock = (
            "cpu"
            if run.cpu_used > run.cpu_limit
            else "wall"
            if run.wall_used > run.wall_limit
            else None
        )
        if clock is None:
            continue
        with run.lock:
            if not run.active:
                return
            if run.expired is None:
                run.expired = clock
            _interrupt(run)
        poll = 0.05


def _idle_tracer(frame: FrameType, event: str, arg: Any) -> None:
    """Keeps tracing switched on in a non-main thread (so that the watchdog can set the
    raising trace on its running frames); traces nothing itself."""
    return None


def run_limited(
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    limit: float,
    wall_limit: float | None = None,
) -> Any:
    """``fn(*args, **kwargs)``, stopped by :class:`TimeLimitReached` once it has used
    ``limit`` seconds of CPU time or ``wall_limit`` seconds of wall-clock time (default
    ``10 * limit + 10``)."""
    global _MAIN_RUN
    wall = 10.0 * limit + 10.0 if wall_limit is None else wall_limit
    run = _Run(limit, wall)
    old_trace, old_profile = sys.gettrace(), sys.getprofile()
    outer = None
    if run.main:
        run.main = _install_handler()
        outer, _MAIN_RUN = _MAIN_RUN, run
    if not run.main:
        # the stop of a worker thread works through frame.f_trace, which only a trace
        # function written in Python consults (a C tracer such as coverage's ignores it)
        python_tracer = isinstance(old_trace, (types.FunctionType, types.MethodType))
        sys.settrace(old_trace if python_tracer else _idle_tracer)
    watchdog = threading.Thread(target=_watch, args=(run,), daemon=True, name="coursekit-limit")
    try:
        try:
            watchdog.start()
            if run.expired is None:  # a tiny limit may have run out already
                run.in_call = True
                result = fn(*args, **kwargs)
        finally:
            run.in_call = False
            _finish(run, watchdog, old_trace, old_profile)
    except TimeLimitReached:
        _finish(run, watchdog, old_trace, old_profile)
        raise run.stop() from None
    finally:
        _finish(run, watchdog, old_trace, old_profile)
        if threading.current_thread() is threading.main_thread():
            _MAIN_RUN = outer
    if run.expired is not None:
        raise run.stop()
    return result


def _finish(run: _Run, watchdog: threading.Thread, old_trace: Any, old_profile: Any) -> None:
    """Stop the watchdog and the tracing (idempotent: called again if interrupted)."""
    try:
        with run.lock:
            run.active = False
        if not run.main and run.expired is not None:
            # an asynchronous stop sent before `active` went False is raised at the next
            # check of the eval loop (a call or a backward jump), here at the latest; it is
            # absorbed (the call is reported as stopped anyway). Clearing it with
            # PyThreadState_SetAsyncExc(id, NULL) instead would leave CPython 3.11's eval
            # breaker set and spin the thread.
            for _ in range(2):
                pass
    except TimeLimitReached:
        pass
    run.done.set()
    sys.settrace(old_trace)
    sys.setprofile(old_profile)
    if watchdog.is_alive() and watchdog is not threading.current_thread():
        watchdog.join()
    run.cpu_used = time.process_time() - run.cpu0
    run.wall_used = time.perf_counter() - run.wall0
