"""Chapter 4 checkers (4.1–4.5): for each exercise a table of correct-but-different answers
that must pass (another formula, float32, numpy, another valid order) and of typical wrong
answers, each rejected with a hint naming that mistake (one printed line, no traceback, no
LaTeX)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _checker_runs import accepts, rejects

import coursekit.checkers as ck
from coursekit.changevar import jacobian
from coursekit.checkers import _common
from coursekit.checkers.ch04 import (
    chain_layers,
    coupling_example,
    softplus_coupling_reference,
    two_step_forward,
    two_step_nets,
)
from coursekit.flows import AffineCoupling

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_chapter_4_exercises():
    assert _common.chapter_exercises(4) == ["4.1", "4.2", "4.3", "4.4", "4.5"]


# ---------------------------------------------------------------- 4.1 softplus-scale coupling


def test_4_1_reference_log_det_is_the_autograd_log_det():
    x, mask, scale_net, t_net = coupling_example()

    def layer(v):
        return softplus_coupling_reference(v, mask, scale_net, t_net)[0]

    jac = jacobian(layer, x)
    _, log_det = softplus_coupling_reference(x, mask, scale_net, t_net)
    torch.testing.assert_close(torch.linalg.slogdet(jac).logabsdet, log_det, rtol=0, atol=1e-12)


def _soft(x, mask, scale_net, t_net, mode="ok"):
    x1, x2 = x[:, mask], x[:, ~mask]
    raw, t = scale_net(x1), t_net(x1)
    sigma = F.softplus(raw)
    z = x.clone()
    if mode == "exp scale":
        z[:, ~mask] = x2 * torch.exp(raw) + t
    elif mode == "shift first":
        z[:, ~mask] = (x2 + t) * sigma
    elif mode == "no softplus":
        z[:, ~mask] = x2 * raw + t
    else:
        z[:, ~mask] = x2 * sigma + t
    log_det = {
        "ok": sigma.log().sum(1),
        "sum of raw": raw.sum(1),
        "sum of sigma": sigma.sum(1),
        "det": sigma.prod(1),
        "sign": -sigma.log().sum(1),
        "per feature": sigma.log(),
    }.get(mode, sigma.log().sum(1))
    return z, log_det


def _soft_where(x, mask, scale_net, t_net):
    """No copy: torch.where scatters the changed part back in place of the kept one."""
    x1 = x[:, mask]
    full_sigma = torch.ones_like(x)
    full_t = torch.zeros_like(x)
    full_sigma[:, ~mask] = F.softplus(scale_net(x1))
    full_t[:, ~mask] = t_net(x1)
    z = torch.where(mask, x, x * full_sigma + full_t)
    return z, torch.log(full_sigma).sum(1)


def _soft_log1p_float32(x, mask, scale_net, t_net):
    x1 = x[:, mask]
    raw = scale_net(x1).float()
    sigma = torch.log1p(torch.exp(raw))  # softplus written out, in float32
    z = x.clone().float()
    z[:, ~mask] = x[:, ~mask].float() * sigma + t_net(x1).float()
    return z, torch.log(torch.prod(sigma, 1))


def _soft_numpy(x, mask, scale_net, t_net):
    z, ld = _soft(x, mask, scale_net, t_net)
    return z.numpy(), ld.numpy()


SOFT_RIGHT = {
    "clone + masked assignment": _soft,
    "torch.where, no copy of the kept part": _soft_where,
    "softplus as log1p(exp), float32, log of the product": _soft_log1p_float32,
    "numpy arrays": _soft_numpy,
}
SOFT_WRONG = {
    "Σ ŝ copied from (12)": ("sum of raw", "Σ log σ_j"),
    "Σ σ": ("sum of sigma", "LOGS of the diagonal"),
    "|det| instead of its log": ("det", "Π σ_j"),
    "sign of the log-det": ("sign", "+Σ log σ"),
    "log-det per feature": ("per feature", "sum over the features"),
    "exp(ŝ) as the scale": ("exp scale", "not exp"),
    "shift then scale": ("shift first", "scale first"),
    "softplus forgotten": ("no softplus", "apply softplus"),
}


@pytest.mark.parametrize("name", SOFT_RIGHT)
def test_4_1_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_coupling_forward, SOFT_RIGHT[name], exercise="4.1")


@pytest.mark.parametrize("name", SOFT_WRONG)
def test_4_1_wrong_answers_get_their_hint(capsys, name):
    mode, hint = SOFT_WRONG[name]
    answer = lambda *a: _soft(*a, mode=mode)  # noqa: E731
    rejects(capsys, ck.check_coupling_forward, answer, hint=hint, exercise="4.1")


def test_4_1_kept_part_changed_is_named(capsys):
    def changes_kept(x, mask, scale_net, t_net):
        z, ld = _soft(x, mask, scale_net, t_net)
        return z + 0.1 * mask, ld

    rejects(capsys, ck.check_coupling_forward, changes_kept, hint="unchanged", exercise="4.1")


# ---------------------------------------------------------------- 4.2 two-step coupling inverse


def _two_step_inverse(z, s1, t1, s2, t2, mode="ok"):
    za, zb = z[:, :2], z[:, 2:]
    if mode == "first step first":
        b = (zb - t1(za)) * torch.exp(-s1(za))
        a = (za - t2(b)) * torch.exp(-s2(b))
        return torch.cat([a, b], 1), -s1(za).sum(1) - s2(b).sum(1)
    if mode == "scale before shift":
        a = za * torch.exp(-s2(zb)) - t2(zb)
    else:
        a = (za - t2(zb)) * torch.exp(-s2(zb))
    b = (zb - t1(a)) * torch.exp(-s1(a))
    x = torch.cat([a, b], 1)
    log_det = {
        "ok": -s2(zb).sum(1) - s1(a).sum(1),
        "sign": s2(zb).sum(1) + s1(a).sum(1),
        "only step 2": -s2(zb).sum(1),
        "s1 at z": -s2(zb).sum(1) - s1(za).sum(1),
    }.get(mode, -s2(zb).sum(1) - s1(a).sum(1))
    return x, log_det


def _two_step_division_float32(z, s1, t1, s2, t2):
    za, zb = z[:, :2], z[:, 2:]
    a = (za - t2(zb)) / torch.exp(s2(zb))
    b = (zb - t1(a)) / torch.exp(s1(a))
    x = torch.cat([a, b], 1).float()
    return x, -(torch.cat([s1(a), s2(zb)], 1).sum(1)).float()


def _two_step_by_fixed_point(z, s1, t1, s2, t2):
    """Another valid route: invert numerically (Newton on the forward), log-det by autograd."""
    x = z.clone()
    for _ in range(30):
        fx, _ = two_step_forward(x, s1, t1, s2, t2)
        jac = jacobian(lambda v: two_step_forward(v, s1, t1, s2, t2)[0], x)
        x = x - torch.linalg.solve(jac, (fx - z).unsqueeze(-1)).squeeze(-1)
    jac = jacobian(lambda v: two_step_forward(v, s1, t1, s2, t2)[0], x)
    return x, -torch.linalg.slogdet(jac).logabsdet


INV_RIGHT = {
    "last step first, exp(−s)": _two_step_inverse,
    "division by exp(s), float32": _two_step_division_float32,
    "Newton iterations + autograd log-det": _two_step_by_fixed_point,
}
INV_WRONG = {
    "first step undone first": ("first step first", "undo the LAST step first"),
    "scale undone before the shift": ("scale before shift", "undo the shift before the scale"),
    "sign of the log-det": ("sign", "minus the forward's"),
    "only the last step's log-det": ("only step 2", "BOTH steps"),
    "s1 at z's first half": ("s1 at z", "recovered a"),
}


@pytest.mark.parametrize("name", INV_RIGHT)
def test_4_2_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_coupling_inverse, INV_RIGHT[name], exercise="4.2")


@pytest.mark.parametrize("name", INV_WRONG)
def test_4_2_wrong_answers_get_their_hint(capsys, name):
    mode, hint = INV_WRONG[name]
    answer = lambda *a: _two_step_inverse(*a, mode=mode)  # noqa: E731
    rejects(capsys, ck.check_coupling_inverse, answer, hint=hint, exercise="4.2")


def test_4_2_reference_round_trip():
    nets = two_step_nets()
    x = torch.randn(10, 4, dtype=torch.float64)
    z, ld = two_step_forward(x, *nets)
    x_back, ld_back = _two_step_inverse(z, *nets)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(ld_back, -ld, rtol=0, atol=1e-12)
    jac = jacobian(lambda v: two_step_forward(v, *nets)[0], x)
    torch.testing.assert_close(torch.linalg.slogdet(jac).logabsdet, ld, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- 4.3 the chain rule (13)


def _chain(layers, x, mode="ok"):
    h, total, terms = x, 0, []
    for forward, log_det in reversed(layers) if mode == "reversed" else layers:
        out = forward(h)
        point = {"at x": x, "at output": out}.get(mode, h)
        terms.append(log_det(point))
        h = out
    if mode == "product":
        return h, torch.stack(terms).prod(0)
    if mode == "skip first":
        terms = terms[1:]
    for term in terms:
        total = total + term
    return h, total


def _chain_functools(layers, x):
    import functools

    def step(state, layer):
        h, total = state
        forward, log_det = layer
        return forward(h), total + log_det(h)

    return functools.reduce(step, layers, (x, torch.zeros(len(x), dtype=x.dtype)))


def _chain_inputs_first(layers, x):
    """All intermediate points first, then the log-dets: another valid order of work."""
    points = [x]
    for forward, _ in layers:
        points.append(forward(points[-1]))
    terms = [log_det(p) for (_, log_det), p in zip(layers, points[:-1], strict=True)]
    return points[-1].numpy(), torch.stack(terms).sum(0).float().numpy()


CHAIN_RIGHT = {
    "a loop": _chain,
    "functools.reduce": _chain_functools,
    "points first, numpy and float32": _chain_inputs_first,
}
CHAIN_WRONG = {
    "log-dets at x": ("at x", "not at x"),
    "log-dets at the output": ("at output", "not at its output"),
    "layers reversed": ("reversed", "wrong order"),
    "log-dets multiplied": ("product", "log-dets ADD"),
    "first layer's log-det forgotten": ("skip first", "is missing"),
}


@pytest.mark.parametrize("name", CHAIN_RIGHT)
def test_4_3_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_compose, CHAIN_RIGHT[name], exercise="4.3")


@pytest.mark.parametrize("name", CHAIN_WRONG)
def test_4_3_wrong_answers_get_their_hint(capsys, name):
    mode, hint = CHAIN_WRONG[name]
    answer = lambda *a: _chain(*a, mode=mode)  # noqa: E731
    rejects(capsys, ck.check_compose, answer, hint=hint, exercise="4.3")


def test_4_3_layers_log_dets_are_their_autograd_log_dets():
    x = torch.randn(20, 3, dtype=torch.float64)
    for forward, log_det in chain_layers():
        jac = jacobian(forward, x)
        torch.testing.assert_close(
            torch.linalg.slogdet(jac).logabsdet, log_det(x), rtol=0, atol=1e-12
        )


# ---------------------------------------------------------------- 4.4 never-transformed coords


def _measured(masks):
    """A right answer found by experiment: random coupling layers, what stays put."""
    x = torch.randn(64, masks.shape[1], dtype=torch.float64)
    h = x
    with torch.no_grad():
        for mask in masks:
            layer = AffineCoupling(mask, hidden=(4,)).double()
            for p in layer.parameters():
                p.add_(torch.randn_like(p))
            h, _ = layer(h)
    return (h == x).all(0)


NEVER_RIGHT = {
    "all over the layers": lambda m: m.all(dim=0),
    "a loop, int 0/1": lambda m: torch.tensor(
        [int(all(row[j] for row in m)) for j in range(m.shape[1])]
    ),
    "numpy": lambda m: m.numpy().all(axis=0),
    "a list of bools": lambda m: [bool(v) for v in m.all(0)],
    "measured on random layers": _measured,
}
NEVER_WRONG = {
    "any instead of all": (lambda m: m.any(dim=0), "EVERY layer"),
    "the transformed ones": (lambda m: ~m.all(dim=0), "ARE transformed"),
    "first layer only": (lambda m: m[0], "not only the first"),
    "one answer per layer": (lambda m: m.all(dim=1), "one answer per coordinate"),
    "masks edited in place": (lambda m: m.logical_not_().any(0), "in place"),
}


@pytest.mark.parametrize("name", NEVER_RIGHT)
def test_4_4_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_never_transformed, NEVER_RIGHT[name], exercise="4.4")


@pytest.mark.parametrize("name", NEVER_WRONG)
def test_4_4_wrong_answers_get_their_hint(capsys, name):
    answer, hint = NEVER_WRONG[name]
    rejects(capsys, ck.check_never_transformed, answer, hint=hint, exercise="4.4")


# ---------------------------------------------------------------- 4.5 structural zeros


def _zeros_by_autograd():
    layer = AffineCoupling([1, 1, 0, 0, 0, 0], hidden=(16,)).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p))
    jac = jacobian(lambda v: layer(v)[0], torch.randn(1, 6, dtype=torch.float64))[0]
    return int((jac == 0).sum())


ZEROS_RIGHT = {
    "22": lambda: 22,
    "a float": lambda: 22.0,
    "numpy": lambda: np.int64(2 * 4 + 2 * 1 + 4 * 3),
    "counted on an autograd Jacobian": _zeros_by_autograd,
    "36 minus the entries that can be nonzero": lambda: 36 - (2 + 4 * 2 + 4),
}
ZEROS_WRONG = {
    "only the upper-right block": (lambda: 8, "upper-right block"),
    "identity block forgotten": (lambda: 20, "identity block"),
    "∂z2/∂x1 counted as zero": (lambda: 30, "full block"),
    "a wrong count": (lambda: math.pi, "block by block"),
}


@pytest.mark.parametrize("name", ZEROS_RIGHT)
def test_4_5_correct_answers_pass(capsys, name):
    accepts(capsys, ck.check_jacobian_zeros, ZEROS_RIGHT[name], exercise="4.5")


@pytest.mark.parametrize("name", ZEROS_WRONG)
def test_4_5_wrong_answers_get_their_hint(capsys, name):
    answer, hint = ZEROS_WRONG[name]
    rejects(capsys, ck.check_jacobian_zeros, answer, hint=hint, exercise="4.5")


@pytest.mark.parametrize(
    "checker, answer",
    [
        (ck.check_coupling_forward, _soft),
        (ck.check_coupling_inverse, _two_step_inverse),
        (ck.check_compose, _chain),
    ],
)
def test_chapter_4_in_place_edits_are_caught(capsys, checker, answer):
    def mutates(first, *rest):
        out = answer(first, *rest)
        if isinstance(first, torch.Tensor):
            first.mul_(2.0)
        else:
            first.pop()
        return out

    rejects(capsys, checker, mutates, hint="in place")
