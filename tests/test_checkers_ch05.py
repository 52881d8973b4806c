"""Chapter 5 checkers (5.1–5.5; 5.6 in test_checkers_build_train.py): for each exercise a table
of correct-but-different answers that must pass (another formula, float32 constants, torch
distributions, numpy where allowed) and of typical wrong answers, each rejected with a hint
naming that mistake (one printed line, no traceback)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _checker_runs import accepts, rejects, run

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.checkers.ch05 import REPORTED_NLL, STACKS, stack_log_prob_reference
from coursekit.datasets import four_modes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

Normal = torch.distributions.Normal
MVN = torch.distributions.MultivariateNormal


def test_chapter_5_exercises():
    assert _common.chapter_exercises(5) == ["5.1", "5.2", "5.3", "5.4", "5.5", "5.6"]


# ---------------------------------------------------------------- 5.1 a two-layer stack by (14)


def _stack(x, s1, t1, s2, t2, mode="ok"):
    x1, x2 = x[:, 0], x[:, 1]
    h2 = x2 * torch.exp(s1(x1)) + t1(x1)
    at = x2 if mode == "at_x" else h2
    z1 = x1 * torch.exp(s2(at)) + t2(at)
    z = torch.stack([z1, h2], 1)
    log_2pi = torch.log(torch.tensor(2 * torch.pi))  # a float32 constant
    base = -0.5 * (z**2).sum(1) - log_2pi
    lds = {
        "ok": s1(x1) + s2(h2),
        "at_x": s1(x1) + s2(x2),
        "no_ld2": s1(x1),
        "sign": -s1(x1) - s2(h2),
    }
    if mode == "base_at_x":
        return -0.5 * (x**2).sum(1) - log_2pi + s1(x1) + s2(h2)
    if mode == "no_const":
        return -0.5 * (z**2).sum(1) + s1(x1) + s2(h2)
    return base + lds[mode]


def _stack_mvn(x, s1, t1, s2, t2):
    h2 = x[:, 1] * torch.exp(s1(x[:, 0])) + t1(x[:, 0])
    z = torch.stack([x[:, 0] * torch.exp(s2(h2)) + t2(h2), h2], 1)
    return MVN(torch.zeros(2), torch.eye(2)).log_prob(z) + s1(x[:, 0]) + s2(h2)  # float32


def _stack_layers_numpy(x, s1, t1, s2, t2):
    h, log_det = x.clone(), torch.zeros(len(x), dtype=x.dtype)
    for keep, change, s, t in ((0, 1, s1, t1), (1, 0, s2, t2)):
        s_val, t_val = s(h[:, keep]), t(h[:, keep])
        h = h.clone()
        h[:, change] = h[:, change] * torch.exp(s_val) + t_val
        log_det = log_det + s_val
    return (Normal(0.0, 1.0).log_prob(h).sum(1) + log_det).numpy()


STACK_RIGHT = {
    "float32 log(2π) constant": _stack,
    "MultivariateNormal(zeros(2), eye(2)), float32": _stack_mvn,
    "a loop over the layers, Normal, numpy": _stack_layers_numpy,
    "the reference": stack_log_prob_reference,
}
STACK_WRONG = {
    "layer 2 at x2": (lambda *a: _stack(*a, mode="at_x"), "not x2"),
    "layer 2's log-det missing": (lambda *a: _stack(*a, mode="no_ld2"), "log-det of layer 2"),
    "signs of the log-dets": (lambda *a: _stack(*a, mode="sign"), "sign of the log-dets"),
    "base density at x": (lambda *a: _stack(*a, mode="base_at_x"), "evaluated at z = f(x)"),
    "no normalisation": (lambda *a: _stack(*a, mode="no_const"), "normalisation constant"),
    "per coordinate": (lambda x, *f: torch.stack([x[:, 0], x[:, 1]], 1), "shape (batch,)"),
}


@pytest.mark.parametrize("name", STACK_RIGHT)
def test_5_1_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_stack_log_prob, STACK_RIGHT[name], exercise="5.1")


@pytest.mark.parametrize("name", STACK_WRONG)
def test_5_1_wrong_answers_get_their_hint(capsys, name):
    fn, hint = STACK_WRONG[name]
    rejects(capsys, ck.check_stack_log_prob, fn, hint=hint, exercise="5.1")


def test_5_1_reference_is_the_autograd_density():
    x = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for s1, t1, s2, t2 in STACKS:

        def f(v, s1=s1, t1=t1, s2=s2, t2=t2):
            h2 = v[1] * torch.exp(s1(v[0])) + t1(v[0])
            return torch.stack([v[0] * torch.exp(s2(h2)) + t2(h2), h2])

        for row, want in zip(x, stack_log_prob_reference(x, s1, t1, s2, t2), strict=True):
            jac = torch.autograd.functional.jacobian(f, row)
            lp = -0.5 * (f(row) ** 2).sum() - math.log(2 * math.pi) + torch.linalg.slogdet(jac)[1]
            assert abs(float(lp - want)) < 1e-12


# ---------------------------------------------------------------- 5.2 standardised data


def _nll(flow, x, mean, std, mode="ok"):
    u = (x - mean) / std
    if mode == "raw":
        u = x
    z, ld = flow(u)
    if mode == "detach_ld":
        ld = ld.detach()
    if mode == "detach_z":
        z = z.detach()
    log_std = {"no_std": 0.0, "plus_std": -torch.log(std).sum()}.get(mode, torch.log(std).sum())
    lp = -0.5 * (z**2).sum(1) - math.log(2 * math.pi) + ld - log_std
    if mode == "sum":
        return -lp.sum()
    if mode == "item":
        return float(-lp.mean())
    if mode == "detached":
        return (-lp.mean()).detach()
    return -lp.mean()


def _nll_prod(flow, x, mean, std):
    z, ld = flow((x - mean) / std)
    log_px = Normal(0.0, 1.0).log_prob(z).sum(1) + ld - torch.log(std.prod())
    return -log_px.mean()


def _nll_loop(flow, x, mean, std):
    z, ld = flow((x - mean) * (1 / std))
    log_2pi = torch.log(torch.tensor(2 * torch.pi))  # float32
    per_point = 0.5 * (z * z).sum(dim=1) + log_2pi - ld
    return per_point.mean() + sum(math.log(float(s)) for s in std)


NLL_RIGHT = {"the reference": _nll, "log of the product of std": _nll_prod, "loop": _nll_loop}
NLL_WRONG = {
    "standardisation's log-det missing": (lambda *a: _nll(*a, mode="no_std"), "is a bijection too"),
    "its sign": (lambda *a: _nll(*a, mode="plus_std"), "sign of the standardisation"),
    "flow on raw x": (lambda *a: _nll(*a, mode="raw"), "feed it u = (x − mean)/std"),
    "sum over the batch": (lambda *a: _nll(*a, mode="sum"), "average it"),
    "only the log-det detached": (
        lambda *a: _nll(*a, mode="detach_ld"),
        "log-det term is detached",
    ),
    "only z detached": (lambda *a: _nll(*a, mode="detach_z"), "z is detached"),
    ".item()": (lambda *a: _nll(*a, mode="item"), "no .item()"),
    "detached loss": (lambda *a: _nll(*a, mode="detached"), "detached from the flow"),
    "sign": (lambda *a: -_nll(*a), "NEGATIVE mean"),
}


@pytest.mark.parametrize("name", NLL_RIGHT)
def test_5_2_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_standardised_nll, NLL_RIGHT[name], exercise="5.2")


@pytest.mark.parametrize("name", NLL_WRONG)
def test_5_2_wrong_answers_get_their_hint(capsys, name):
    fn, hint = NLL_WRONG[name]
    out = rejects(capsys, ck.check_standardised_nll, fn, hint=hint, exercise="5.2")
    assert "float32" not in out and "float64" not in out  # no precision red herring


# ---------------------------------------------------------------- 5.3 temperature


def _sample(inverse, n, dim, temperature, generator, mode="ok"):
    eps = torch.randn(n, dim) if mode == "nogen" else torch.randn(n, dim, generator=generator)
    scale = {"variance": temperature**2, "ignored": 1.0}.get(mode, temperature)
    if mode == "forward":
        flow = getattr(inverse, "__self__", None)  # the flow of flow.inverse, if any
        return flow(scale * eps)[0] if flow is not None else inverse(scale * eps)[0]
    return inverse(scale * eps)[0]


SAMPLE_RIGHT = {
    "randn then scale": _sample,
    "torch.normal with std T": lambda inv, n, d, t, g: inv(
        torch.normal(0.0, t, (n, d), generator=g)
    )[0],
    "normal_ in place on a fresh tensor": lambda inv, n, d, t, g: inv(
        torch.empty(n, d).normal_(0.0, t, generator=g)
    )[0],
}
SAMPLE_WRONG = {
    "variance scaled": (lambda *a: _sample(*a, mode="variance"), "not the variance"),
    "generator ignored": (lambda *a: _sample(*a, mode="nogen"), "generator"),
    "temperature ignored": (lambda *a: _sample(*a, mode="ignored"), "temperature is ignored"),
    "pair returned": (
        lambda inv, n, d, t, g: inv(t * torch.randn(n, d, generator=g)),
        "return only x",
    ),
    "float64 noise": (
        lambda inv, n, d, t, g: inv(t * torch.randn(n, d, generator=g, dtype=torch.float64))[0],
        "draw ε in float32",
    ),
    "forward instead of inverse": (lambda *a: _sample(*a, mode="forward"), "INVERSE"),
}


@pytest.mark.parametrize("name", SAMPLE_RIGHT)
def test_5_3_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_sample_with_temperature, SAMPLE_RIGHT[name], exercise="5.3")


@pytest.mark.parametrize("name", SAMPLE_WRONG)
def test_5_3_wrong_answers_get_their_hint(capsys, name):
    fn, hint = SAMPLE_WRONG[name]
    rejects(capsys, ck.check_sample_with_temperature, fn, hint=hint, exercise="5.3")


# ---------------------------------------------------------------- 5.4 sample and score


def _sample_lp(flow, z, mode="ok"):
    x, ld = flow.inverse(z)
    log_nz = -0.5 * (z**2).sum(1) - math.log(2 * math.pi)
    if mode == "plus":
        return x, log_nz + ld
    if mode == "at_x":
        return x, -0.5 * (x**2).sum(1) - math.log(2 * math.pi) - ld
    if mode == "no_ld":
        return x, log_nz
    if mode == "forward":
        return x, flow.log_prob(x)
    return x, log_nz - ld


SAMPLE_LP_RIGHT = {
    "by hand": _sample_lp,
    "MultivariateNormal float32": lambda f, z: (
        f.inverse(z)[0],
        MVN(torch.zeros(2), torch.eye(2)).log_prob(z) - f.inverse(z)[1],
    ),
    "Normal, float32 constant, list": lambda f, z: [
        f.inverse(z)[0],
        Normal(torch.tensor(0.0), torch.tensor(1.0)).log_prob(z).sum(-1) - f.inverse(z)[1],
    ],
    "numpy log-density": lambda f, z: (
        f.inverse(z)[0],
        (-0.5 * (z**2).sum(1) - np.log(2 * np.pi) - f.inverse(z)[1]).numpy(),
    ),
}
SAMPLE_LP_WRONG = {
    "sign of the inverse log-det": (lambda f, z: _sample_lp(f, z, "plus"), "subtract it"),
    "base density at x": (lambda f, z: _sample_lp(f, z, "at_x"), "evaluated at z"),
    "no Jacobian": (lambda f, z: _sample_lp(f, z, "no_ld"), "Jacobian term is missing"),
    "a second, forward pass": (lambda f, z: _sample_lp(f, z, "forward"), "forward again"),
    "noise returned as x": (lambda f, z: (z, _sample_lp(f, z)[1]), "latent noise itself"),
}


@pytest.mark.parametrize("name", SAMPLE_LP_RIGHT)
def test_5_4_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_sample_with_log_prob, SAMPLE_LP_RIGHT[name], exercise="5.4")


@pytest.mark.parametrize("name", SAMPLE_LP_WRONG)
def test_5_4_wrong_answers_get_their_hint(capsys, name):
    fn, hint = SAMPLE_LP_WRONG[name]
    rejects(capsys, ck.check_sample_with_log_prob, fn, hint=hint, exercise="5.4")


# ---------------------------------------------------------------- 5.5 KL from a reported NLL


def _entropy(n=100_000, seed=0):
    target = four_modes()
    x = target.sample(n, generator=torch.Generator().manual_seed(seed))
    return float(-target.log_prob(x).mean())


KL_RIGHT = {
    "Monte Carlo": lambda: REPORTED_NLL - _entropy(),
    "closed form, modes apart": lambda: (
        REPORTED_NLL - (math.log(4) + math.log(2 * math.pi * math.e * 0.25))
    ),
    "float32 tensor": lambda: torch.tensor(REPORTED_NLL) - torch.tensor(_entropy(50_000, 1)),
}
KL_WRONG = {
    "sign": (lambda: _entropy() - REPORTED_NLL, "sign"),
    "the NLL alone": (lambda: REPORTED_NLL, "entropy"),
    "entropy added": (lambda: REPORTED_NLL + _entropy(), "instead of subtracting"),
}


@pytest.mark.parametrize("name", KL_RIGHT)
def test_5_5_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_kl_from_nll, KL_RIGHT[name], exercise="5.5")


@pytest.mark.parametrize("name", KL_WRONG)
def test_5_5_wrong_answers_get_their_hint(capsys, name):
    fn, hint = KL_WRONG[name]
    rejects(capsys, ck.check_kl_from_nll, fn, hint=hint, exercise="5.5")


def test_not_done_and_crash_point_to_the_lecture(capsys):
    def untouched(*args):
        raise NotImplementedError("Exercise 5.1")

    ok, out = run(capsys, ck.check_stack_log_prob, untouched)
    assert ok is False and out.startswith("Exercise 5.1: not done yet") and "notebook 05" in out
    ok, out = run(capsys, ck.check_sample_with_log_prob, lambda f, z: 1 / 0)
    assert ok is False and "ZeroDivisionError" in out and "notebook 05" in out
