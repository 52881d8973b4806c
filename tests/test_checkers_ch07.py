"""Chapter 7 checkers accept the reference answers and reject typical wrong ones with the
intended hint (one printed line, no traceback)."""

from __future__ import annotations

import math

import pytest
import torch
from _checker_runs import accepts as _accepts
from _checker_runs import rejects as _rejects
from _checker_runs import run

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.checkers.ch07 import measured_passes
from coursekit.flows import standard_normal_log_prob

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def accepts(capsys, checker, *fns):
    return _accepts(capsys, checker, *fns, exercise="7.")


def rejects(capsys, checker, *fns, hint: str):
    return _rejects(capsys, checker, *fns, hint=hint, exercise="7.")


def test_chapter_7_has_five_exercises_and_not_done_is_reported(capsys):
    assert _common.chapter_exercises(7) == ["7.1", "7.2", "7.3", "7.4", "7.5"]

    def untouched(*args):
        raise NotImplementedError("Exercise 7.1")

    ok, out = run(capsys, ck.check_zuko_log_prob, untouched)
    assert ok is False and out.startswith("Exercise 7.1: not done yet")
    ok, out = run(capsys, ck.check_zuko_log_prob, lambda d, x: 1 / 0)
    assert ok is False and "ZeroDivisionError" in out


def test_zuko_log_prob(capsys):
    def right(dist, x):
        z = dist.transform(x)
        return standard_normal_log_prob(z) + dist.transform.log_abs_det_jacobian(x, z)

    accepts(capsys, ck.check_zuko_log_prob, right)
    accepts(capsys, ck.check_zuko_log_prob, lambda dist, x: dist.log_prob(x))

    def no_jacobian(dist, x):
        return standard_normal_log_prob(dist.transform(x))

    def minus(dist, x):
        z = dist.transform(x)
        return standard_normal_log_prob(z) - dist.transform.log_abs_det_jacobian(x, z)

    def inverted(dist, x):
        z = dist.transform.inv(x)
        return standard_normal_log_prob(z) + dist.transform.inv.log_abs_det_jacobian(x, z)

    rejects(capsys, ck.check_zuko_log_prob, no_jacobian, hint="Jacobian term is missing")
    rejects(capsys, ck.check_zuko_log_prob, minus, hint="sign of the log-det")
    rejects(capsys, ck.check_zuko_log_prob, inverted, hint="wrong direction")
    rejects(capsys, ck.check_zuko_log_prob, lambda d, x: x, hint="shape")
    rejects(capsys, ck.check_zuko_log_prob, lambda d, x: x[:, 0], hint="wrong value")


def test_zuko_sample(capsys):
    accepts(capsys, ck.check_zuko_sample, lambda dist, eps: dist.transform.inv(eps))
    rejects(capsys, ck.check_zuko_sample, lambda d, e: d.transform(e), hint="wrong direction")
    rejects(capsys, ck.check_zuko_sample, lambda d, e: e.clone(), hint="noise itself")
    rejects(capsys, ck.check_zuko_sample, lambda d, e: 2 * e + 1, hint="wrong samples")
    rejects(capsys, ck.check_zuko_sample, lambda d, e: "x", hint="torch.Tensor")


def gap(x, log_prob, threshold, half_width, box=True, se="binomial"):
    inside = (x.abs() <= half_width).all(dim=1) if box else torch.ones(len(x), dtype=bool)
    mask = (inside & (log_prob(x) < math.log(threshold))).double()
    m = mask.mean().item()
    if se == "binomial":
        return m, math.sqrt(m * (1 - m) / len(x))
    if se == "sample":
        return m, mask.std().item() / math.sqrt(len(x))
    return m, math.sqrt(m * (1 - m))


def test_gap_mass(capsys):
    accepts(capsys, ck.check_gap_mass, gap)
    accepts(capsys, ck.check_gap_mass, lambda *a: gap(*a, se="sample"))
    rejects(capsys, ck.check_gap_mass, lambda *a: gap(*a, box=False), hint="inside the box")
    rejects(capsys, ck.check_gap_mass, lambda *a: gap(*a, se="std"), hint="divide by √n")

    def complement(*a):
        m, s = gap(*a)
        return 1 - m, s

    rejects(capsys, ck.check_gap_mass, complement, hint="complement")
    rejects(capsys, ck.check_gap_mass, lambda *a: (0.5, 0.01), hint="expected")
    rejects(capsys, ck.check_gap_mass, lambda *a: (gap(*a)[0], 0.1), hint="standard error")
    rejects(capsys, ck.check_gap_mass, lambda *a: gap(*a)[0], hint="pair")


def passes(kind, operation, dim):
    if kind == "coupling":
        return 1
    fast = (kind == "MAF") == (operation == "density")
    return 1 if fast else dim


def test_sequential_passes_are_measured(capsys):
    assert measured_passes("MAF", "density", 5) == 1
    assert measured_passes("MAF", "sample", 5) == 5
    assert measured_passes("IAF", "sample", 5) == 1
    assert measured_passes("IAF", "density", 5) == 6  # 5 to invert, 1 for the log-det
    assert measured_passes("coupling", "sample", 5) == 1
    accepts(capsys, ck.check_sequential_passes, passes)

    def swapped(kind, operation, dim):
        return passes({"MAF": "IAF", "IAF": "MAF"}.get(kind, kind), operation, dim)

    rejects(capsys, ck.check_sequential_passes, swapped, hint="MAF, density, D = 3: not 3")
    rejects(capsys, ck.check_sequential_passes, lambda k, o, d: d, hint="not")
    rejects(capsys, ck.check_sequential_passes, lambda k, o, d: "one", hint="number of passes")


def test_mean_and_se(capsys):
    def right(values):
        t = torch.tensor(values, dtype=torch.float64)
        return t.mean().item(), t.std().item() / math.sqrt(len(values))

    accepts(capsys, ck.check_mean_and_se, right)
    rejects(
        capsys,
        ck.check_mean_and_se,
        lambda v: (right(v)[0], float(torch.tensor(v).double().std())),
        hint="s/√k",
    )
    biased = lambda v: (
        right(v)[0],
        float(torch.tensor(v).double().std(unbiased=False)) / math.sqrt(len(v)),
    )  # noqa: E731
    rejects(capsys, ck.check_mean_and_se, biased, hint="k − 1")
    rejects(capsys, ck.check_mean_and_se, lambda v: (0.0, 1.0), hint="the mean")
    rejects(capsys, ck.check_mean_and_se, lambda v: (right(v)[0], 1.0), hint="standard error")
    rejects(capsys, ck.check_mean_and_se, lambda v: None, hint="pair")
