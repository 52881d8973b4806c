"""Checkers never raise, whatever the student's function returns or does.

Tables: every checker against answers a student can return (None, strings, complex values,
integers too large for a float, NaN, tensors of the wrong kind, functions that raise or
mutate their inputs in place): each must print one ❌ line and return False. Then specific
answers with the hint they must get (float32 → "float64", in-place mask changes, inf
samples, complex results), the chapter and time-limit arguments, and the time limit itself
(main thread, worker thread, Jupyter kernel).
"""

from __future__ import annotations

import inspect
import math
import signal
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _bad_inputs import Bad, assert_named_error, ids

from coursekit import changevar, checkers
from coursekit.checkers import _common, _hints
from coursekit.flows import standard_normal_log_prob

CHECKERS: dict[str, Callable[..., bool]] = {
    name: getattr(checkers, name) for name in checkers.__all__ if name.startswith("check_")
}


@pytest.fixture(autouse=True)
def _restore_checker_state():
    results, status, limit = dict(_common.RESULTS), dict(_common.STATUS), _common.TIME_LIMIT
    wall = _common.WALL_LIMIT
    yield
    _common.WALL_LIMIT = wall
    _common.RESULTS.clear()
    _common.RESULTS.update(results)
    _common.STATUS.clear()
    _common.STATUS.update(status)
    _common.TIME_LIMIT = limit


def _mutate_inputs(*args):
    """Change every tensor argument in place, then return garbage."""
    for a in args:
        if isinstance(a, torch.Tensor):
            if a.dtype == torch.bool:
                a.logical_not_()
            elif a.is_floating_point():
                a.mul_(-3.0).add_(1.0)
    return None


def _raise(err: Exception) -> Callable[..., object]:
    def fn(*args, **kwargs):
        raise err

    return fn


#: (name, the student's function): answers no checker may raise on.
ANSWERS: list[tuple[str, Callable[..., object]]] = [
    ("None", lambda *a, **k: None),
    ("a string", lambda *a, **k: "1568"),
    ("bytes", lambda *a, **k: b"1"),
    ("a complex number", lambda *a, **k: 1 + 2j),
    ("an integer too large for a float", lambda *a, **k: 101**784),
    ("10**400", lambda *a, **k: 10**400),
    ("NaN", lambda *a, **k: math.nan),
    ("-inf", lambda *a, **k: -math.inf),
    ("True", lambda *a, **k: True),
    ("a complex tensor", lambda *a, **k: torch.ones(3, dtype=torch.complex64)),
    ("an int tensor", lambda *a, **k: torch.arange(3)),
    ("an empty tensor", lambda *a, **k: torch.zeros(0)),
    ("a numpy string array", lambda *a, **k: np.array(["a", "b"])),
    ("an object", lambda *a, **k: object()),
    ("a triple", lambda *a, **k: (torch.zeros(1), torch.zeros(1), torch.zeros(1))),
    ("a dict", lambda *a, **k: {"z": 1}),
    ("mutates its inputs", _mutate_inputs),
    ("raises ValueError", _raise(ValueError("boom"))),
    ("raises an empty KeyError", _raise(KeyError())),
    ("raises ZeroDivisionError", lambda *a, **k: 1 / 0),
]


def _run(check: Callable[..., bool], fn: Callable[..., object]) -> bool:
    n_args = len(inspect.signature(check).parameters)
    return check(*([fn] * n_args))


@pytest.mark.parametrize("answer", [a for _, a in ANSWERS], ids=[n for n, _ in ANSWERS])
@pytest.mark.parametrize("name", list(CHECKERS))
def test_no_checker_raises(name: str, answer: Callable[..., object], capsys) -> None:
    ok = _run(CHECKERS[name], answer)
    out = capsys.readouterr().out
    assert ok is False
    assert out.count("\n") == 1 and out.startswith("❌ Exercise "), out


# ------------------------------------------------------- specific answers, specific hints


def _density_neg_log_uniform(z):
    return torch.where(z >= 0, torch.exp(-z), torch.zeros_like(z))


def _density_1d(p_x, f_inv, z):
    zz = z.clone().requires_grad_(True)
    x = f_inv(zz)
    (d,) = torch.autograd.grad(x.sum(), zz)
    return p_x(x.detach()) * d.abs()


def _log_logistic(x):
    return F.logsigmoid(x) + F.logsigmoid(-x)


def _coupling(x, mask, scale_net, t_net):
    x1 = x[:, mask]
    sigma, t = F.softplus(scale_net(x1)), t_net(x1)
    z = x.clone()
    z[:, ~mask] = x[:, ~mask] * sigma + t
    return z, sigma.log().sum(1)


def _coupling_mask_negated_in_place(x, mask, s_net, t_net):
    """Right, but flips the caller's mask in place: rejected (policy 4), and the checker's
    reference survives."""
    mask.logical_not_()  # now True = changed part
    x1 = x[:, ~mask]
    sigma, t = F.softplus(s_net(x1)), t_net(x1)
    z = x.clone()
    z[:, mask] = x[:, mask] * sigma + t
    return z, sigma.log().sum(1)


def _nll(flow, x, mean, std):
    z, ld = flow((x - mean) / std)
    return -(standard_normal_log_prob(z) + ld - torch.log(std).sum()).mean()


def _sampler(inverse, n, dim, temperature, generator, dtype=torch.float32):
    eps = torch.randn(n, dim, generator=generator, dtype=dtype)
    return inverse(temperature * eps)[0]


def _f32(fn):
    def wrapped(*args):
        out = fn(*args)
        if isinstance(out, tuple):
            return tuple(o.float() for o in out)
        return out.float()

    return wrapped


def _polar(r, theta):
    return r * torch.exp(-0.5 * r**2) / (2 * math.pi)


def _multiscale(levels, priors, log_det):
    total = log_det + standard_normal_log_prob(levels[-1])
    for z, (mean, log_scale) in zip(levels[:-1], priors, strict=True):
        eps = (z - mean) * torch.exp(-log_scale)
        total = total + standard_normal_log_prob(eps) - log_scale.flatten(1).sum(1)
    return total


def _log_q_of_sigmoid(h, log_q_h):
    return log_q_h - (F.logsigmoid(h) + F.logsigmoid(-h)).flatten(1).sum(1)


def _elbo(flow, dequantizer, images, eps):
    u, log_q = dequantizer.transform(eps, images)
    return flow.log_prob((images + u) / 256) - log_q


def _iw_bound(log_w):
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


def _iw_log_prob(flow, dequantizer, images, eps):
    return _iw_bound(torch.stack([_elbo(flow, dequantizer, images, e) for e in eps], dim=1))


#: (checker, student function, True if it must pass, a pattern of the printed line)
SPECIFIC = [
    (
        "2.1 float32: a right formula in float32 passes",
        "check_density_neg_log_uniform",
        _f32(_density_neg_log_uniform),
        True,
        "passed",
    ),
    ("2.1 float64", "check_density_neg_log_uniform", _density_neg_log_uniform, True, "passed"),
    (
        "2.2 float32: a right formula in float32 passes",
        "check_density_1d",
        _f32(_density_1d),
        True,
        "passed",
    ),
    ("2.2 float64", "check_density_1d", _density_1d, True, "passed"),
    (
        "2.4 float32: a right formula in float32 passes",
        "check_log_density_logistic",
        _f32(_log_logistic),
        True,
        "passed",
    ),
    ("2.4 float64", "check_log_density_logistic", _log_logistic, True, "passed"),
    (
        "3.1 float32: a right formula in float32 passes",
        "check_log_abs_det_jacobian",
        _f32(changevar.log_abs_det_jacobian),
        True,
        "passed",
    ),
    ("3.1 float64", "check_log_abs_det_jacobian", changevar.log_abs_det_jacobian, True, "passed"),
    (
        "3.3 complex result",
        "check_polar_density",
        lambda r, t: _polar(r, t).to(torch.complex128),
        False,
        "complex",
    ),
    ("3.3 real result", "check_polar_density", _polar, True, "passed"),
    (
        "4.1 float32: a right formula in float32 passes",
        "check_coupling_forward",
        _f32(_coupling),
        True,
        "passed",
    ),
    ("4.1 float64", "check_coupling_forward", _coupling, True, "passed"),
    (
        "4.1 mask negated in place",
        "check_coupling_forward",
        _coupling_mask_negated_in_place,
        False,
        "changed its input mask in place",
    ),
    ("4.1 mask mutated, wrong", "check_coupling_forward", _mutate_inputs, False, "in place"),
    (
        "5.2 float32: a right loss returned in float32 passes",
        "check_standardised_nll",
        lambda *a: _nll(*a).float(),
        True,
        "passed",
    ),
    ("5.2 float64", "check_standardised_nll", _nll, True, "passed"),
    (
        "5.3 inf samples",
        "check_sample_with_temperature",
        lambda inv, n, d, t, g: torch.full((n, d), math.inf),
        False,
        "NaN or infinite",
    ),
    (
        "5.3 NaN samples",
        "check_sample_with_temperature",
        lambda inv, n, d, t, g: torch.full((n, d), math.nan),
        False,
        "NaN or infinite",
    ),
    (
        "5.3 right, float32 noise as the text says",
        "check_sample_with_temperature",
        _sampler,
        True,
        "passed",
    ),
    (
        "5.3 float64 noise: the text fixes float32 (a float32 flow would fail on it)",
        "check_sample_with_temperature",
        lambda *a: _sampler(*a, dtype=torch.float64),
        False,
        "draw ε in float32",
    ),
    (
        "6.1 float32 answer (the text fixes no dtype)",
        "check_dequantize",
        lambda x, g: (x + torch.rand(x.shape, generator=g)) / 256,
        True,
        "passed",
    ),
    ("8.1 float32", "check_multiscale_log_prob", _f32(_multiscale), True, "passed"),
    ("8.1 float64", "check_multiscale_log_prob", _multiscale, True, "passed"),
    (
        "8.1 NaN",
        "check_multiscale_log_prob",
        lambda lv, pr, ld: torch.full_like(ld, math.nan),
        False,
        "wrong log p(x)",
    ),
    (
        "8.2 float32: a right formula in float32 passes",
        "check_log_q_of_sigmoid",
        _f32(_log_q_of_sigmoid),
        True,
        "passed",
    ),
    ("8.2 float64", "check_log_q_of_sigmoid", _log_q_of_sigmoid, True, "passed"),
    (
        "8.3 float32: a right formula in float32 passes",
        "check_dequantized_elbo",
        _f32(_elbo),
        True,
        "passed",
    ),
    ("8.3 float64", "check_dequantized_elbo", _elbo, True, "passed"),
    (
        "8.3 converts the given flow to float32 in place (.float()): an edit of an input",
        "check_dequantized_elbo",
        lambda f, d, k, e: _elbo(f.float(), d.float(), k, e.float()),
        False,
        "changed dtype",
    ),
    (
        "8.4 float32: a right formula in float32 passes",
        "check_iw_bound",
        _f32(_iw_bound),
        True,
        "passed",
    ),
    ("8.4 float64", "check_iw_bound", _iw_bound, True, "passed"),
    (
        "8.4 inf",
        "check_iw_bound",
        lambda lw: torch.full(lw.shape[:1], math.inf, dtype=torch.float64),
        False,
        "not finite",
    ),
    (
        "8.5 float32: a right formula in float32 passes",
        "check_iw_log_prob",
        _f32(_iw_log_prob),
        True,
        "passed",
    ),
    ("8.5 float64", "check_iw_log_prob", _iw_log_prob, True, "passed"),
]


@pytest.mark.parametrize("case", SPECIFIC, ids=[c[0] for c in SPECIFIC])
def test_specific_answers_get_the_right_hint(case, capsys) -> None:
    _, name, fn, should_pass, pattern = case
    ok = getattr(checkers, name)(fn)
    out = capsys.readouterr().out
    assert ok is should_pass, out
    assert pattern in out, out
    if not should_pass:
        assert out.startswith("❌"), out


# ------------------------------------------------------------------ chapter, time limit

CHECKER_ARGS = [
    Bad(
        "assert_all_passed(10): a chapter without exercises",
        lambda: checkers.assert_all_passed(10),
        ValueError,
        r"^chapter: .*\[1, 2, 3, 4, 5, 6, 7, 8, 9\].*10",
    ),
    Bad("assert_all_passed(0)", lambda: checkers.assert_all_passed(0), ValueError, r"^chapter: "),
    Bad(
        "assert_all_passed('x')", lambda: checkers.assert_all_passed("x"), ValueError, r"^chapter: "
    ),
    Bad(
        "assert_all_passed(1.0)", lambda: checkers.assert_all_passed(1.0), ValueError, r"^chapter: "
    ),
    Bad(
        "assert_all_passed(None)",
        lambda: checkers.assert_all_passed(None),
        ValueError,
        r"^chapter: ",
    ),
    Bad("show_progress(10)", lambda: checkers.show_progress(10), ValueError, r"^chapter: "),
    Bad("set_time_limit(0)", lambda: checkers.set_time_limit(0), ValueError, r"^seconds: "),
    Bad("set_time_limit(-1)", lambda: checkers.set_time_limit(-1), ValueError, r"^seconds: "),
    Bad(
        "set_time_limit(inf)", lambda: checkers.set_time_limit(math.inf), ValueError, r"^seconds: "
    ),
    Bad("set_time_limit('5')", lambda: checkers.set_time_limit("5"), ValueError, r"^seconds: "),
]


@pytest.mark.parametrize("case", CHECKER_ARGS, ids=ids(CHECKER_ARGS))
def test_checker_arguments(case: Bad) -> None:
    assert_named_error(case)


def test_chapter_given_as_digits() -> None:
    ids_4 = _common.chapter_exercises(4)
    assert _common.chapter_exercises("04") == _common.chapter_exercises("4") == ids_4
    with pytest.raises(AssertionError, match="not passed"):
        for e in ids_4:
            _common.RESULTS.pop(e, None)
        checkers.assert_all_passed("04")


def _forever(*args):
    while True:
        pass


def _sleep(*args):
    time.sleep(3600)


def _swallow(*args):
    while True:
        try:
            sum(range(1000))
        except:  # noqa: E722 - the student's bare except must not swallow the limit
            pass


def _swallow_forever(*args):
    while True:
        try:
            while True:
                pass
        except BaseException:
            continue


@pytest.mark.parametrize(
    "fn", [_forever, _swallow, _swallow_forever], ids=["loop", "bare except", "except retry"]
)
def test_a_never_returning_function_is_stopped(fn, capsys) -> None:
    checkers.set_time_limit(0.3)
    ok = checkers.check_peak_density(fn)  # returns at all: the function was stopped
    out = capsys.readouterr().out
    assert ok is False
    assert "used more than 0.3 s of CPU time" in out and "set_time_limit" in out


def test_a_waiting_function_is_stopped_by_the_wall_clock_backstop(capsys) -> None:
    checkers.set_time_limit(0.3, wall_seconds=0.5)
    ok = checkers.check_peak_density(_sleep)
    out = capsys.readouterr().out
    assert ok is False
    assert "wall-clock" in out and "waiting, not computing" in out


@pytest.mark.parametrize("limit", [1e-9, 1e-6, 1e-4, 1e-3])
def test_no_interruption_outlives_a_check(limit, capsys) -> None:
    """Issue 31 item 7: a tiny limit, or a function ending right at its limit, leaves no
    timer or signal behind (200 checks, then 0.1 s of ordinary code)."""
    checkers.set_time_limit(limit)
    for _ in range(50):
        checkers.check_peak_density(lambda: 1.0 / (3.0 * math.sqrt(2 * math.pi)))
    total = 0
    end = time.perf_counter() + 0.1
    while time.perf_counter() < end:
        total += 1
    assert total > 0
    capsys.readouterr()


def test_the_time_limit_works_outside_the_main_thread(capsys) -> None:
    checkers.set_time_limit(0.3)
    results: list[bool] = []
    worker = threading.Thread(target=lambda: results.append(checkers.check_peak_density(_forever)))
    worker.start()
    worker.join(60)  # a result at all: the function was stopped
    assert results == [False]
    assert "used more than 0.3 s of CPU time" in capsys.readouterr().out
    # no-grad of the caller reaches the student's code in the worker thread
    seen: list[bool] = []

    def record(*args):
        seen.append(torch.is_grad_enabled())
        return 1.0

    def in_thread():
        with torch.no_grad():
            _common.call(record)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join(10)
    assert seen == [False]


def _swallows_every_interruption(*args):
    while True:
        try:
            sum(range(1000))
        except:  # noqa: E722 - the student's bare except under test
            pass


@pytest.mark.parametrize("in_thread", [False, True], ids=["main thread", "worker thread"])
def test_a_bare_except_cannot_swallow_the_time_limit(in_thread, capsys) -> None:
    # issue 31, item 1: `while True: try: … except: pass` ran on after set_time_limit(3)
    checkers.set_time_limit(0.3)
    results: list[bool] = []
    if in_thread:
        worker = threading.Thread(
            target=lambda: results.append(checkers.check_peak_density(_swallows_every_interruption))
        )
        worker.start()
        worker.join(60)
    else:
        results.append(checkers.check_peak_density(_swallows_every_interruption))
    assert results == [False]
    assert "used more than 0.3 s of CPU time" in capsys.readouterr().out
    assert [t.name for t in threading.enumerate() if t.name == "coursekit-limit"] == []


@pytest.mark.parametrize("limit", [1e-9, 1e-6, 1e-3, 2e-3])
def test_no_timer_outlives_a_check(limit) -> None:
    # issue 31, item 7: a limit <= 1e-6, or a function ending within a fraction of a
    # millisecond of its limit, left the timer armed: later code got TimeLimitReached or the
    # process died by the signal
    _common.call(lambda: None)  # the interruption's handler is installed once, then stays
    handlers = {s: signal.getsignal(s) for s in (signal.SIGALRM, signal.SIGUSR2)}
    trace = sys.gettrace()
    checkers.set_time_limit(limit)
    for _ in range(100):
        try:
            _common.call(lambda: sum(range(2000)))
        except _hints.StudentTimeout:
            pass  # stopped at its limit: the right outcome for a function that long
    time.sleep(0.6)  # several watchdog periods: nothing may fire now
    sum(range(10**5))
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert {s: signal.getsignal(s) for s in handlers} == handlers and sys.gettrace() == trace
    assert [t.name for t in threading.enumerate() if t.name == "coursekit-limit"] == []


def test_a_grad_mode_left_off_does_not_fail_the_next_correct_answer(capsys) -> None:
    # issue 31, item 13: a leaked torch.set_grad_enabled(False) made a correct 2.2 fail
    checkers.set_time_limit(60)

    def leaks(p_x, f_inv, z):
        torch.set_grad_enabled(False)
        return z

    try:
        assert checkers.check_density_1d(leaks) is False
        assert torch.is_grad_enabled()  # restored after the student's call
        torch.set_grad_enabled(False)  # left off by the student's own cell
        assert checkers.check_density_1d(_density_1d) is True
        assert not torch.is_grad_enabled()  # the caller's mode is left as it was
    finally:
        torch.set_grad_enabled(True)
    assert "passed" in capsys.readouterr().out


def _exits(*args):
    raise SystemExit(3)


def _generator_exit(*args):
    raise GeneratorExit


@pytest.mark.parametrize("fn", [_exits, _generator_exit], ids=["SystemExit", "GeneratorExit"])
def test_system_exit_and_generator_exit_do_not_escape_a_checker(fn, capsys) -> None:
    # issue 31, item 13: both escaped the checker (a BaseException, not an Exception)
    assert checkers.check_density_1d(fn) is False
    out = capsys.readouterr().out
    raised = "SystemExit" if fn is _exits else "GeneratorExit"
    assert f"your code raised {raised}" in out


def test_a_fast_function_is_not_disturbed(capsys) -> None:
    checkers.set_time_limit(0.2)
    assert checkers.check_peak_density(lambda: 1.0 / (3.0 * math.sqrt(2 * math.pi)))
    time.sleep(0.4)  # the alarm is disarmed: nothing fires after the check
    assert "passed" in capsys.readouterr().out


def test_the_time_limit_works_inside_a_jupyter_kernel() -> None:
    jupyter_client = pytest.importorskip("jupyter_client.manager")
    km, kc = jupyter_client.start_new_kernel(kernel_name="python3")
    try:
        code = (
            "from coursekit import checkers\n"
            "checkers.set_time_limit(0.5)\n"
            "def forever():\n"
            "    while True:\n"
            "        pass\n"
            "def swallows():\n"
            "    while True:\n"
            "        try:\n"
            "            sum(range(1000))\n"
            "        except:\n"
            "            pass\n"
            "ok = checkers.check_peak_density(forever)\n"
            "ok_swallowed = checkers.check_peak_density(swallows)\n"
            "print('RESULT', ok, ok_swallowed)\n"
        )
        texts: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                texts.append(msg["content"]["text"])

        reply = kc.execute_interactive(code, timeout=60, output_hook=hook)
        out = "".join(texts)
        assert reply["content"]["status"] == "ok", out
        assert "used more than 0.5 s of CPU time" in out and "RESULT False False" in out, out
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# ------------------------------------------------ float32 constants in a right formula (issue 27)


def _bits_per_dim_f32_constant(log_prob, num_dims):
    log_prob_8bit = log_prob - num_dims * torch.log(torch.tensor(256.0))
    return (-log_prob_8bit.mean() / (num_dims * math.log(2))).item()


def _logit_f32_constant(y, alpha):
    p = alpha + (1 - 2 * alpha) * y
    z = torch.log(p) - torch.log1p(-p)
    log_dz_dy = torch.log(torch.tensor(1 - 2 * alpha)) - torch.log(p) - torch.log1p(-p)
    return z, log_dz_dy.flatten(1).sum(dim=1)


def _gap_mass_float_mean(x, log_prob, threshold, half_width):
    inside = (x.abs() <= half_width).all(dim=1)
    hit = inside & (log_prob(x) < math.log(threshold))
    m = hit.float().mean().item()
    return m, math.sqrt(m * (1 - m) / len(x))


def _iw_bound_f32_log_k(log_w):
    return torch.logsumexp(log_w, dim=1) - torch.log(torch.tensor(log_w.shape[1]))


def _stack_f32_2pi(x, s1, t1, s2, t2):
    h2 = x[:, 1] * torch.exp(s1(x[:, 0])) + t1(x[:, 0])
    z = torch.stack([x[:, 0] * torch.exp(s2(h2)) + t2(h2), h2], 1)
    log_2pi = torch.log(torch.tensor(2 * torch.pi))
    return -0.5 * (z**2).sum(dim=1) - log_2pi + s1(x[:, 0]) + s2(h2)


FLOAT32_CONSTANTS = [
    ("6.3 D * torch.log(torch.tensor(256.))", "check_bits_per_dim", _bits_per_dim_f32_constant),
    ("6.2 torch.log(torch.tensor(1 - 2a))", "check_logit_transform", _logit_f32_constant),
    ("7.3 hit.float().mean().item()", "check_gap_mass", _gap_mass_float_mean),
    ("8.4 torch.log(torch.tensor(K))", "check_iw_bound", _iw_bound_f32_log_k),
    ("5.1 torch.log(torch.tensor(2 * torch.pi))", "check_stack_log_prob", _stack_f32_2pi),
]


@pytest.mark.parametrize("case", FLOAT32_CONSTANTS, ids=[c[0] for c in FLOAT32_CONSTANTS])
def test_a_float32_constant_in_a_right_formula_passes(case, capsys) -> None:
    # issue 27: these right answers were rejected with a message showing the expected value
    _, name, fn = case
    ok = getattr(checkers, name)(fn)
    out = capsys.readouterr().out
    assert ok is True, out
