"""Checkers for chapter 7, flows in practice (beyond the slides): sampling a MAF layer by its
inverse, one coordinate per pass (7.1); sampling a zuko flow by inversion (7.2); the gap
(filament) mass with its standard error (7.3); the passes of MAF / IAF / coupling flows (7.4);
mean ± standard error over seeds (7.5)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from coursekit.checkers._answers import as_float, as_pair, as_tensor, close, fmt, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.datasets import four_modes
from coursekit.practice import gap_region, summarise


def random_zuko_flow(name: str = "NSF", dim: int = 2, seed: int = 0) -> Any:
    """A float64 zuko flow (``"RealNVP"``, ``"MAF"`` or ``"NSF"``) with random, non-identity
    weights; returns the distribution ``flow()``."""
    from coursekit.practice import zuko_flow

    torch.manual_seed(seed)
    flow = zuko_flow(name, dim).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return flow()


def _points(n: int, dim: int, seed: int) -> Tensor:
    return 1.5 * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)).double()


class AutoregressiveConditioner:
    """A fixed random MADE-like conditioner ``x -> (a, b)``, each (n, D): ``a_i`` and ``b_i``
    depend on ``x_1 … x_{i−1}`` only (strictly lower-triangular masks); ``calls`` counts its
    passes. ``a = 0.7·tanh(·)`` keeps the scales moderate."""

    def __init__(self, dim: int, seed: int, hidden: int = 16):
        g = torch.Generator().manual_seed(seed)
        self.dim, self.calls = dim, 0
        degree_in = torch.arange(1, dim + 1)
        degree_hidden = torch.arange(hidden) % max(dim - 1, 1) + 1
        self.mask1 = (degree_hidden[:, None] >= degree_in[None, :]).double()  # (hidden, D)
        self.mask2 = (degree_in[:, None] > degree_hidden[None, :]).double()  # (D, hidden)
        self.w1 = torch.randn(hidden, dim, generator=g, dtype=torch.float64)
        self.w_a = 0.8 * torch.randn(dim, hidden, generator=g, dtype=torch.float64)
        self.w_b = 0.8 * torch.randn(dim, hidden, generator=g, dtype=torch.float64)
        self.c_a = 0.3 * torch.randn(dim, generator=g, dtype=torch.float64)
        self.c_b = 0.5 * torch.randn(dim, generator=g, dtype=torch.float64)

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.calls += 1
        h = torch.tanh(x @ (self.w1 * self.mask1).T)
        a = 0.7 * torch.tanh(h @ (self.w_a * self.mask2).T + self.c_a)
        b = h @ (self.w_b * self.mask2).T + self.c_b
        return a, b


def maf_inverse_reference(conditioner: Callable, z: Tensor) -> tuple[Tensor, Tensor]:
    """The inverse of the MAF layer ``z_i = exp(a_i(x_<i))·x_i + b_i(x_<i)``, one coordinate
    per pass: ``x_i = (z_i − b_i(x_<i))·exp(−a_i(x_<i))``; returns ``(x, log|det ∂x/∂z|)`` with
    ``log|det| = −Σ_i a_i(x_<i)``, D + 1 passes in all."""
    x = torch.zeros_like(z)
    for i in range(z.shape[1]):
        a, b = conditioner(x)
        x = x.clone()
        x[:, i] = (z[:, i] - b[:, i]) * torch.exp(-a[:, i])
    a, _ = conditioner(x)
    return x, -a.sum(1)


@checker("7.1", "sampling a MAF layer: the inverse, one coordinate per pass")
def check_maf_inverse(fn: Callable) -> str:
    """``fn(conditioner, z) -> (x, log_det)``: :func:`maf_inverse_reference`, with at most
    D + 1 passes of the conditioner (the text asks for D passes, plus one for the log-det)."""
    for dim, seed in ((3, 1), (5, 2)):
        z = torch.randn(16, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        conditioner = AutoregressiveConditioner(dim, seed)
        x, log_det = as_pair(call(fn, conditioner, z.clone()), "your maf_inverse")
        passes = conditioner.calls
        x = as_tensor(x, (16, dim), "x")
        reference = AutoregressiveConditioner(dim, seed)
        want_x, want_ld = maf_inverse_reference(reference, z)
        if not matches(x, want_x):
            a_z, b_z = reference(z)
            one_pass = (z - b_z) * torch.exp(-a_z)
            if passes == 1 or matches(x, one_pass):
                raise Hint(
                    "one pass cannot invert a MAF layer: a_i and b_i depend on x_1 … x_(i−1), "
                    "which you only know once computed — compute x one coordinate per pass, "
                    f"D = {dim} passes of the conditioner, each on the x built so far"
                )
            signs = {
                "exp(+a)": "x_i = (z_i − b_i)·exp(−a_i): the forward multiplied by exp(a_i)",
                "order": "undo in reverse order: subtract b_i first, then divide by exp(a_i)",
            }
            for kind, hint in signs.items():
                probe = AutoregressiveConditioner(dim, seed)
                xs = torch.zeros_like(z)
                for i in range(dim):
                    a, b = probe(xs)
                    xs = xs.clone()
                    xs[:, i] = (
                        (z[:, i] - b[:, i]) * torch.exp(a[:, i])
                        if kind == "exp(+a)"
                        else z[:, i] * torch.exp(-a[:, i]) - b[:, i]
                    )
                if matches(x, xs):
                    raise Hint(hint)
            wrong_cols = (~torch.isclose(x, want_x, rtol=1e-5, atol=1e-8)).any(0)
            if bool(wrong_cols[-1]) and not bool(wrong_cols[:-1].any()):
                raise Hint(
                    "only the last coordinate is wrong: coordinate i needs the outputs 1 … i − 1, "
                    f"so it takes D = {dim} passes, one per coordinate, to compute x_{dim}"
                )
            raise Hint(
                "x is wrong: for i = 1 … D, (a, b) = conditioner(x so far), then "
                "x_i = (z_i − b_i)·exp(−a_i)"
            )
        if passes > dim + 1:
            raise Hint(
                f"x is right, but you called the conditioner {passes} times for D = {dim}: one "
                f"pass per coordinate suffices (D = {dim}, plus one for the log-det) — the "
                "point of the exercise is that sampling a MAF costs D passes, not more"
            )
        ld = as_tensor(log_det, (16,), "log_det")
        if matches(ld, want_ld):
            continue
        if matches(ld, -want_ld):
            raise Hint("sign: log|det ∂x/∂z| = −Σ_i a_i, minus the forward layer's Σ_i a_i (eq 12)")
        raise Hint("log_det should be log|det ∂x/∂z| = −Σ_i a_i(x_<i), with a from the final x")
    return (
        "x_i = (z_i − b_i(x_<i))·exp(−a_i(x_<i)), one coordinate per pass: sampling a MAF costs "
        "D sequential passes, its density one."
    )


@checker("7.2", "sampling a zuko flow by inversion")
def check_zuko_sample(fn: Callable) -> str:
    """``fn(dist, eps)`` = ``f⁻¹(eps)``: zuko's ``dist.transform.inv(eps)``."""
    for name, dim, seed in (("NSF", 2, 3), ("MAF", 3, 4)):
        dist = random_zuko_flow(name, dim, seed)
        eps = _points(16, dim, seed + 20) / 1.5
        with torch.no_grad():
            got = as_tensor(call(fn, dist, eps.clone()), (16, dim), "your samples")
            want = dist.transform.inv(eps)
            if matches(got, want):
                continue
            if matches(got, dist.transform(eps)):
                raise Hint(
                    "wrong direction: dist.transform maps data to noise; samples need its "
                    "inverse, dist.transform.inv"
                )
            if matches(got, eps):
                raise Hint("you returned the noise itself: push it through the inverse transform")
        raise Hint(
            f"wrong samples for zuko's {name} in {dim}-D: x = f⁻¹(ε) of the ε you were given "
            "(dist.sample draws its own noise)"
        )
    return "x = f⁻¹(ε) = dist.transform.inv(ε): generation runs the flow backwards."


class _LogProbTarget:
    """A target object around a log_prob callable, for :func:`gap_region`."""

    def __init__(self, log_prob: Callable[[Tensor], Tensor]):
        self.log_prob = log_prob


def _pair(value: Any, what: str) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Hint(f"{what} should be a pair (mass, standard_error), got {type(value).__name__}")
    return as_float(value[0], "the mass"), as_float(value[1], "the standard error")


@checker("7.3", "the gap (filament) mass and its standard error")
def check_gap_mass(fn: Callable) -> str:
    """``fn(x, log_prob, threshold, half_width)`` = the share of ``x`` in
    ``G = {max|x_i| ≤ w, p(x) < threshold}`` and its standard error ``√(m(1 − m)/n)``."""
    target = four_modes()
    peak = float(target.log_prob(target.means[:1]).exp())
    gen = torch.Generator().manual_seed(5)
    # a blurred copy of the 4 modes: many points in the gaps
    x = target.sample(4_000, generator=gen) + 0.6 * torch.randn(4_000, 2, generator=gen).double()
    for level, width in ((0.01, 2.0), (0.1, 3.0)):
        threshold = level * peak
        mask = gap_region(x, target, threshold, width)
        m = float(mask.double().mean())
        se = float(mask.double().std()) / math.sqrt(len(x))
        got_m, got_se = _pair(call(fn, x.clone(), target.log_prob, threshold, width), "your answer")
        if not matches(got_m, m):
            no_box = float((target.log_prob(x) < math.log(threshold)).double().mean())
            if matches(got_m, no_box):
                raise Hint(
                    f"keep only the points inside the box max(|x1|, |x2|) ≤ {fmt(width)}: "
                    "the gaps lie between the modes"
                )
            if matches(got_m, 1 - m):
                raise Hint(
                    "you counted the complement: the gaps are where p(x) is BELOW the threshold"
                )
            raw = gap_region(
                x, _LogProbTarget(lambda v: target.log_prob(v).exp()), threshold, width
            )
            if matches(got_m, float(raw.double().mean())):
                raise Hint(
                    "log_prob gives log p(x): compare it with log(threshold), or exp(log p) "
                    "with the threshold"
                )
            raise Hint(
                f"mass {fmt(got_m)}, expected {fmt(m)} for threshold {fmt(level)}·p_max and "
                f"half-width {fmt(width)}: the share of the points with p(x) < threshold inside "
                "the box"
            )
        binomial = math.sqrt(m * (1 - m) / len(x))
        if close(got_se, math.sqrt(m * (1 - m)), rtol=1e-3):
            raise Hint("that is the standard deviation of one indicator: divide by √n")
        if not (close(got_se, se, rtol=1e-3) or close(got_se, binomial, rtol=1e-3)):
            raise Hint(
                f"standard error {fmt(got_se)}, expected about {fmt(binomial)} = √(m(1 − m)/n)"
            )
    return "the gap mass is a Bernoulli mean, with standard error √(m(1 − m)/n)."


def measured_passes(kind: str, operation: str, dim: int) -> int:
    """Calls of the conditioner network of one zuko transform of ``kind`` (``"MAF"``,
    ``"IAF"``, ``"coupling"``) during ``operation`` (``"density"`` or ``"sample"``) in
    ``dim`` dimensions."""
    import zuko

    torch.manual_seed(0)
    if kind == "coupling":
        flow = zuko.flows.RealNVP(dim, transforms=1)
    else:
        flow = zuko.flows.MAF(dim, transforms=1)
        if kind == "IAF":
            flow = zuko.flows.Flow([t.inv for t in flow.transform.transforms], flow.base)
    nets = [m for name, m in flow.named_modules() if name.endswith("hyper")]
    calls: list[int] = []
    hook = nets[0].register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        dist = flow()
        if operation == "density":
            dist.log_prob(torch.randn(8, dim))
        else:
            dist.sample((8,))
    hook.remove()
    return len(calls)


@checker("7.4", "sequential passes of MAF, IAF and coupling flows")
def check_sequential_passes(fn: Callable) -> str:
    """``fn(kind, operation, dim)``: the number of sequential network passes one transform
    needs, measured with zuko (an IAF's density may be counted as D or D + 1)."""
    for dim in (3, 6):
        for kind in ("MAF", "IAF", "coupling"):
            for operation in ("density", "sample"):
                got = as_float(call(fn, kind, operation, dim), "your number of passes")
                want = measured_passes(kind, operation, dim)
                ok = got == want or (kind == "IAF" and operation == "density" and got == dim)
                if ok:
                    continue
                if kind == "coupling":
                    raise Hint(
                        f"coupling, {operation}, D = {dim}: not {fmt(got)}. The kept half is "
                        "known in both directions, so s and t come from one pass either way"
                    )
                slow = (kind == "MAF") != (operation == "density")
                if slow:
                    raise Hint(
                        f"{kind}, {operation}, D = {dim}: not {fmt(got)}. In this direction "
                        "coordinate i needs the OUTPUTS 1 … i − 1 first: one pass per coordinate"
                    )
                raise Hint(
                    f"{kind}, {operation}, D = {dim}: not {fmt(got)}. In this direction all the "
                    "inputs are known at once, so the masked network gives every a_i, b_i in one "
                    "pass"
                )
    return "MAF: density in 1 pass, sampling in D; IAF: the reverse; coupling: 1 and 1."


@checker("7.5", "mean ± standard error over seeds")
def check_mean_and_se(fn: Callable) -> str:
    """``fn(values)`` = ``(mean, s/√k)`` with ``s`` the sample standard deviation (k − 1)."""
    for values in ([0.0031, 0.0024, 0.0019, 0.0042, 0.0027], [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]):
        k = len(values)
        want = summarise(values)
        got_m, got_se = _pair(call(fn, list(values)), "your answer")
        if not matches(got_m, want.mean):
            raise Hint(f"the mean of {values} is not {fmt(got_m)}")
        t = torch.tensor(values, dtype=torch.float64)
        if close(got_se, float(t.std()), rtol=1e-6):
            raise Hint("that is the standard deviation of the seeds: the standard error is s/√k")
        if close(got_se, float(t.std(unbiased=False)) / math.sqrt(k), rtol=1e-6):
            raise Hint("use the sample standard deviation, with k − 1 in the denominator")
        if not matches(got_se, want.se):
            if close(got_se, float(t.var()) / math.sqrt(k), rtol=1e-6):
                raise Hint("that is the variance over √k: take the square root, s = √(s²)")
            raise Hint(f"standard error {fmt(got_se)}, expected s/√k with k = {k}")
    return "mean ± s/√k: the error bar of an average over k seeds."
