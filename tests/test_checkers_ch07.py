"""Chapter 7 checkers: for each exercise a table of correct-but-different answers that must pass
and of typical wrong answers, each rejected with a hint naming that mistake (one printed line,
no traceback); the 7.5 cell finds its benchmark from any folder."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from _checker_runs import accepts, rejects, run

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.checkers.ch07 import (
    AutoregressiveConditioner,
    maf_inverse_reference,
    measured_passes,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]


def test_chapter_7_has_five_exercises_and_not_done_is_reported(capsys):
    assert _common.chapter_exercises(7) == ["7.1", "7.2", "7.3", "7.4", "7.5"]

    def untouched(*args):
        raise NotImplementedError("Exercise 7.1")

    ok, out = run(capsys, ck.check_maf_inverse, untouched)
    assert ok is False and out.startswith("Exercise 7.1: not done yet")
    ok, out = run(capsys, ck.check_maf_inverse, lambda c, z: 1 / 0)
    assert ok is False and "ZeroDivisionError" in out


def _table(checker, right, wrong, exercise):
    @pytest.mark.parametrize("name", list(right))
    def test_right(capsys, name):
        accepts(capsys, checker, right[name], exercise=exercise)

    @pytest.mark.parametrize("name", list(wrong))
    def test_wrong(capsys, name):
        answer, hint = wrong[name]
        rejects(capsys, checker, answer, hint=hint, exercise=exercise)

    return test_right, test_wrong


# ---------------------------------------------------------------- 7.1 the MAF inverse


def _maf(cond, z, mode="ok", passes=None):
    x = torch.zeros_like(z)
    for i in range(z.shape[1] if passes is None else passes):
        a, b = cond(x)
        x = x.clone()
        if mode == "exp_plus":
            x[:, i] = (z[:, i] - b[:, i]) * torch.exp(a[:, i])
        elif mode == "order":
            x[:, i] = z[:, i] * torch.exp(-a[:, i]) - b[:, i]
        else:
            x[:, i] = (z[:, i] - b[:, i]) * torch.exp(-a[:, i])
    a, _ = cond(x)
    return x, (a.sum(1) if mode == "ld_sign" else -a.sum(1))


def _maf_fixed_point(cond, z):
    x = z.clone()  # any start: after D sweeps of the whole vector, x is exact
    for _ in range(z.shape[1]):
        a, b = cond(x)
        x = (z - b) * torch.exp(-a)
    return x, -cond(x)[0].sum(1)


def _maf_columns(cond, z):
    cols, log_det = [], 0.0
    for i in range(z.shape[1]):
        known = torch.cat(cols + [torch.zeros_like(z[:, i:])], dim=1)
        a, b = cond(known)
        cols.append(((z[:, i] - b[:, i]) / a[:, i].exp())[:, None])
        log_det = log_det - a[:, i]  # a_i needs only x_<i: known in this pass
    return torch.cat(cols, dim=1), log_det


def _maf_one_pass(cond, z):
    a, b = cond(z)
    return (z - b) * torch.exp(-a), -a.sum(1)


def _maf_too_many(cond, z):
    x, _ = _maf(cond, z)
    for _ in range(3):
        cond(x)
    return _maf(cond, z)


MAF_RIGHT = {
    "one coordinate per pass": _maf,
    "fixed point, D sweeps": _maf_fixed_point,
    "columns, log-det on the way (D passes)": _maf_columns,
}
MAF_WRONG = {
    "one pass on z": (_maf_one_pass, "one pass cannot invert"),
    "exp(+a)": (lambda c, z: _maf(c, z, "exp_plus"), "exp(−a_i)"),
    "reverse order": (lambda c, z: _maf(c, z, "order"), "reverse order"),
    "D − 1 passes": (lambda c, z: _maf(c, z, passes=z.shape[1] - 1), "one per coordinate"),
    "log-det sign": (lambda c, z: _maf(c, z, "ld_sign"), "sign"),
    "far more passes than needed": (_maf_too_many, "one pass per coordinate suffices"),
}
test_7_1_right, test_7_1_wrong = _table(ck.check_maf_inverse, MAF_RIGHT, MAF_WRONG, "7.1")


def test_7_1_conditioner_is_autoregressive_and_reference_inverts_the_maf():
    cond = AutoregressiveConditioner(5, 0)
    x = torch.randn(8, 5, dtype=torch.float64)
    for i in range(5):
        moved = x.clone()
        moved[:, i:] += 1.0  # change x_i … x_D: a_j, b_j for j ≤ i must not move
        a0, b0 = cond(x)
        a1, b1 = cond(moved)
        assert torch.equal(a0[:, : i + 1], a1[:, : i + 1]) and torch.equal(
            b0[:, : i + 1], b1[:, : i + 1]
        )
    a, b = cond(x)
    z = x * torch.exp(a) + b  # the MAF layer, data -> noise
    back, log_det = maf_inverse_reference(cond, z)
    assert float((back - x).abs().max()) < 1e-12
    assert float((log_det + a.sum(1)).abs().max()) < 1e-12


# ---------------------------------------------------------------- 7.2 zuko sampling


def _inv_by_layers(dist, eps):
    x = eps
    for t in reversed(dist.transform.transforms):
        x = t.inv(x)
    return x


ZUKO_RIGHT = {
    "transform.inv": lambda dist, eps: dist.transform.inv(eps),
    "layer by layer": _inv_by_layers,
    "numpy": lambda dist, eps: dist.transform.inv(eps).detach().numpy(),
}
ZUKO_WRONG = {
    "forward transform": (lambda d, e: d.transform(e), "wrong direction"),
    "the noise": (lambda d, e: e.clone(), "noise itself"),
    "fresh draws": (lambda d, e: d.sample((len(e),)), "draws its own noise"),
    "a string": (lambda d, e: "x", "torch.Tensor"),
}
test_7_2_right, test_7_2_wrong = _table(ck.check_zuko_sample, ZUKO_RIGHT, ZUKO_WRONG, "7.2")


# ---------------------------------------------------------------- 7.3 gap mass


def gap(x, log_prob, threshold, half_width, box=True, se="binomial"):
    inside = (x.abs() <= half_width).all(dim=1) if box else torch.ones(len(x), dtype=bool)
    mask = (inside & (log_prob(x) < math.log(threshold))).double()
    m = mask.mean().item()
    if se == "binomial":
        return m, math.sqrt(m * (1 - m) / len(x))
    if se == "sample":
        return m, mask.std().item() / math.sqrt(len(x))
    return m, math.sqrt(m * (1 - m))


def _gap_float32(x, log_prob, threshold, half_width):
    hit = (x.abs().amax(dim=1) <= half_width) & (log_prob(x).exp() < threshold)
    m = hit.float().mean().item()  # float32: the student's answer of issue 27
    return m, math.sqrt(m * (1 - m) / len(x))


def _gap_numpy(x, log_prob, threshold, half_width):
    hit = np.all(np.abs(x.numpy()) <= half_width, axis=1) & (
        log_prob(x).numpy() < np.log(threshold)
    )
    return np.mean(hit), np.std(hit, ddof=1) / np.sqrt(len(hit))


def _complement(*a):
    m, s = gap(*a)
    return 1 - m, s


GAP_RIGHT = {
    "binomial SE": gap,
    "sample SE": lambda *a: gap(*a, se="sample"),
    "float32 mean, p < threshold": _gap_float32,
    "numpy": _gap_numpy,
}
GAP_WRONG = {
    "no box": (lambda *a: gap(*a, box=False), "inside the box"),
    "SE without √n": (lambda *a: gap(*a, se="std"), "divide by √n"),
    "complement": (_complement, "complement"),
    "log p against the threshold": (
        lambda x, lp, th, w: gap(x, lambda v: lp(v).exp(), th, w),
        "compare it with log(threshold)",
    ),
    "one number": (lambda *a: gap(*a)[0], "pair"),
}
test_7_3_right, test_7_3_wrong = _table(ck.check_gap_mass, GAP_RIGHT, GAP_WRONG, "7.3")


# ---------------------------------------------------------------- 7.4 passes


def passes(kind, operation, dim):
    if kind == "coupling":
        return 1
    fast = (kind == "MAF") == (operation == "density")
    return 1 if fast else dim


def test_sequential_passes_are_measured():
    assert measured_passes("MAF", "density", 5) == 1
    assert measured_passes("MAF", "sample", 5) == 5
    assert measured_passes("IAF", "sample", 5) == 1
    assert measured_passes("IAF", "density", 5) == 6  # 5 to invert, 1 for the log-det
    assert measured_passes("coupling", "sample", 5) == 1


PASSES_RIGHT = {
    "ints": passes,
    "IAF density with the log-det pass, tensor": lambda k, o, d: torch.tensor(
        d + 1 if (k, o) == ("IAF", "density") else passes(k, o, d)
    ),
    "floats": lambda k, o, d: float(passes(k, o, d)),
}
PASSES_WRONG = {
    "MAF and IAF swapped": (
        lambda k, o, d: passes({"MAF": "IAF", "IAF": "MAF"}.get(k, k), o, d),
        "all the inputs are known at once",
    ),
    "D everywhere": (lambda k, o, d: d, "MAF, density, D = 3: not 3"),
    "coupling sampling in D": (
        lambda k, o, d: d if (k, o) == ("coupling", "sample") else passes(k, o, d),
        "kept half is known in both directions",
    ),
    "MAF sampling in one pass": (lambda k, o, d: 1, "OUTPUTS 1 … i − 1"),
    "a string": (lambda k, o, d: "one", "number"),
}
test_7_4_right, test_7_4_wrong = _table(
    ck.check_sequential_passes, PASSES_RIGHT, PASSES_WRONG, "7.4"
)


# ---------------------------------------------------------------- 7.5 mean ± SE


def _mean_se(values):
    t = torch.tensor(values, dtype=torch.float64)
    return t.mean().item(), t.std().item() / math.sqrt(len(values))


MEAN_RIGHT = {
    "torch": _mean_se,
    "statistics": lambda v: (statistics.mean(v), statistics.stdev(v) / math.sqrt(len(v))),
    "numpy, float32": lambda v: (
        np.float32(np.mean(v)),
        np.float32(np.std(v, ddof=1) / np.sqrt(len(v))),
    ),
}
MEAN_WRONG = {
    "the standard deviation": (
        lambda v: (_mean_se(v)[0], float(torch.tensor(v).double().std())),
        "s/√k",
    ),
    "k instead of k − 1": (
        lambda v: (_mean_se(v)[0], float(np.std(v)) / math.sqrt(len(v))),
        "k − 1",
    ),
    "variance over √k": (
        lambda v: (_mean_se(v)[0], float(np.var(v, ddof=1)) / math.sqrt(len(v))),
        "square root",
    ),
    "wrong mean": (lambda v: (0.0, 1.0), "the mean"),
    "no pair": (lambda v: None, "pair"),
}
test_7_5_right, test_7_5_wrong = _table(ck.check_mean_and_se, MEAN_RIGHT, MEAN_WRONG, "7.5")


def test_7_5_cell_finds_the_benchmark_through_coursekit():
    nb = json.loads((ROOT / "solutions" / "07_flows_in_practice.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert '"..") / "benchmarks"' not in code and "../benchmarks" not in code
    assert 'benchmark_results("flows_in_practice")' in code
