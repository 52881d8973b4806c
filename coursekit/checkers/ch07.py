"""Checkers for chapter 7, flows in practice (beyond the slides): a zuko flow read with
eq. (14), sampling by inversion, the gap (filament) mass, the passes of MAF / IAF / coupling
flows, and mean ± standard error over seeds."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from coursekit.checkers._common import Hint, as_float, as_tensor, call, checker, close, fmt
from coursekit.datasets import four_modes
from coursekit.flows import standard_normal_log_prob
from coursekit.practice import gap_region, summarise

_NB = "notebook 07"
_SECTION_1 = "section 'A zuko flow, read with the course's vocabulary'"


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


@checker("7.1", "a zuko flow's log-density by eq (14)")
def check_zuko_log_prob(fn: Callable) -> str:
    """``fn(dist, x)`` = ``log N(f(x); 0, I) + log|det J_f(x)|`` with ``f = dist.transform``."""
    for name, dim, seed in (("RealNVP", 2, 0), ("NSF", 2, 1), ("MAF", 3, 2)):
        dist = random_zuko_flow(name, dim, seed)
        x = _points(16, dim, seed + 10)
        with torch.no_grad():
            got = as_tensor(call(fn, dist, x.clone()), (16,), "your log-density")
            z = dist.transform(x)
            ladj = dist.transform.log_abs_det_jacobian(x, z)
            want = standard_normal_log_prob(z) + ladj
            if close(got, want, rtol=1e-9, atol=1e-9):
                continue
            if close(got, want - ladj, rtol=1e-9, atol=1e-9):
                raise Hint(
                    "the Jacobian term is missing: add dist.transform.log_abs_det_jacobian(x, z) "
                    f"(eq 14; see {_NB}, {_SECTION_1})"
                )
            if close(got, want - 2 * ladj, rtol=1e-9, atol=1e-9):
                raise Hint("sign of the log-det: log p(x) = log p_Z(f(x)) + log|det J_f(x)|")
            x_inv = dist.transform.inv(x)
            wrong_way = standard_normal_log_prob(x_inv) + dist.transform.inv.log_abs_det_jacobian(
                x, x_inv
            )
            if close(got, wrong_way, rtol=1e-9, atol=1e-9):
                raise Hint(
                    "wrong direction: zuko's dist.transform already maps data to noise (x → z), "
                    f"like the course's f; do not invert it ({_NB}, {_SECTION_1})"
                )
        raise Hint(
            f"wrong value for zuko's {name} in {dim}-D: z = dist.transform(x), then "
            "log N(z; 0, I) + dist.transform.log_abs_det_jacobian(x, z)"
        )
    return "log p(x) = log N(f(x); 0, I) + log|det J_f(x)|, with f = dist.transform (x → z)."


@checker("7.2", "sampling a zuko flow by inversion")
def check_zuko_sample(fn: Callable) -> str:
    """``fn(dist, eps)`` = ``f⁻¹(eps)``: zuko's ``dist.transform.inv(eps)``."""
    for name, dim, seed in (("NSF", 2, 3), ("MAF", 3, 4)):
        dist = random_zuko_flow(name, dim, seed)
        eps = _points(16, dim, seed + 20) / 1.5
        with torch.no_grad():
            got = as_tensor(call(fn, dist, eps.clone()), (16, dim), "your samples")
            want = dist.transform.inv(eps)
            if close(got, want, rtol=1e-9, atol=1e-9):
                continue
            if close(got, dist.transform(eps), rtol=1e-9, atol=1e-9):
                raise Hint(
                    "wrong direction: dist.transform maps data to noise; samples need its "
                    f"inverse, dist.transform.inv ({_NB}, {_SECTION_1})"
                )
            if close(got, eps, rtol=1e-9, atol=1e-9):
                raise Hint("you returned the noise itself: push it through the inverse transform")
        raise Hint(f"wrong samples for zuko's {name} in {dim}-D: x = f⁻¹(ε)")
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
        if not close(got_m, m, rtol=1e-9, atol=1e-12):
            no_box = float((target.log_prob(x) < math.log(threshold)).double().mean())
            if close(got_m, no_box, rtol=1e-9, atol=1e-12):
                raise Hint(
                    f"keep only the points inside the box max(|x1|, |x2|) ≤ {fmt(width)}: "
                    f"the gaps lie between the modes ({_NB}, section 'Filaments, measured')"
                )
            if close(got_m, 1 - m, rtol=1e-9, atol=1e-12):
                raise Hint(
                    "you counted the complement: the gaps are where p(x) is BELOW the threshold"
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
                got = call(fn, kind, operation, dim)
                if isinstance(got, bool) or not isinstance(got, (int, float)):
                    raise Hint(f"return a number of passes, got {type(got).__name__}")
                want = measured_passes(kind, operation, dim)
                ok = got == want or (kind == "IAF" and operation == "density" and got == dim)
                if not ok:
                    raise Hint(
                        f"{kind}, {operation}, D = {dim}: not {got}. Which direction knows all "
                        "its inputs at once, and which must produce coordinate i before i + 1? "
                        f"({_NB}, section 'Which flow when')"
                    )
    return "MAF: density in 1 pass, sampling in D; IAF: the reverse; coupling: 1 and 1."


@checker("7.5", "mean ± standard error over seeds")
def check_mean_and_se(fn: Callable) -> str:
    """``fn(values)`` = ``(mean, s/√k)`` with ``s`` the sample standard deviation (k − 1)."""
    for values in ([0.0031, 0.0024, 0.0019, 0.0042, 0.0027], [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]):
        k = len(values)
        want = summarise(values)
        got_m, got_se = _pair(call(fn, list(values)), "your answer")
        if not close(got_m, want.mean, rtol=1e-9):
            raise Hint(f"the mean of {values} is not {fmt(got_m)}")
        t = torch.tensor(values, dtype=torch.float64)
        if close(got_se, float(t.std()), rtol=1e-6):
            raise Hint("that is the standard deviation of the seeds: the standard error is s/√k")
        if close(got_se, float(t.std(unbiased=False)) / math.sqrt(k), rtol=1e-6):
            raise Hint("use the sample standard deviation, with k − 1 in the denominator")
        if not close(got_se, want.se, rtol=1e-6):
            raise Hint(f"standard error {fmt(got_se)}, expected s/√k with k = {k}")
    return "mean ± s/√k: the error bar of an average over k seeds."
