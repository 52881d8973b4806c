"""Flows in practice: zuko's flows next to the course's, a KL estimate with its standard
error, and the probability mass a model puts in the gaps between modes (notebook 07).

Directions. The course's bijections map data to noise, ``f: x → z`` (the slides' f), and
``log p_θ(x) = log p_Z(f(x)) + log|det ∂f/∂x|`` (eq. 14). zuko uses the same direction: a
zuko flow ``flow()`` is a ``NormalizingFlow(transform, base)`` whose ``transform`` maps x to
z and whose ``log_prob(x)`` is ``base.log_prob(z) + transform.log_abs_det_jacobian(x, z)``;
sampling applies ``transform.inv`` to base draws. (``torch.distributions.
TransformedDistribution`` is the other way round: its transforms map noise to data.)

:class:`ZukoDensity` wraps an unconditional zuko flow so that it has the course's interface
(``forward(x) -> (z, log_det)``, ``inverse(z) -> (x, log_det)``, ``log_prob``, ``sample``)
and trains with :func:`coursekit.training.fit` unchanged.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import (
    check_generator,
    check_positive_float,
    check_positive_int,
    check_tensor,
)
from coursekit.device import module_dtype_device
from coursekit.flows import RealNVP
from coursekit.flows.base import check_input
from coursekit.metrics import Estimate, mean_and_se

#: The four flows that notebook 07 compares, by display name.
FLOW_NAMES: tuple[str, ...] = ("course RealNVP", "zuko RealNVP", "zuko MAF", "zuko NSF")


class ZukoDensity(nn.Module):
    """An unconditional zuko flow with the course's interface.

    Args:
        flow: an unconditional zuko ``LazyDistribution`` (e.g. ``zuko.flows.NSF(2)``) whose
            base is a diagonal normal ``N(μ, diag σ²)`` (zuko's flows build ``N(0, I)``; a
            trainable base, ``μ`` and ``σ`` parameters, is followed as it trains).

    ``forward(x)`` returns ``(z, log|det ∂z/∂x|)`` with ``z = f(x)`` (x → z, the course's
    direction and zuko's own), ``inverse(z)`` returns ``(x, log|det ∂x/∂z|)``, ``log_prob(x)``
    is zuko's ``flow().log_prob(x)`` = ``log N(f(x); μ, σ²) + log|det ∂f/∂x|`` (eq. 14), and
    ``sample(n, generator=...)`` maps ``μ + σ·ε``, ``ε ~ N(0, I)`` drawn from ``generator``,
    through ``f⁻¹``: samples follow ``log_prob`` with the base as it is now. Shapes: ``x`` and
    ``z`` are (batch, d), log-dets and log-densities (batch,).

    It accepts what :class:`~coursekit.flows.RealNVP` accepts: inputs are checked and cast
    to the flow's dtype (float64 toy data into a float32 flow); a conditional flow (built
    with ``context=…``) is refused here, not at the first call.
    """

    def __init__(self, flow: nn.Module):
        super().__init__()
        from zuko.lazy import LazyDistribution

        if not isinstance(flow, LazyDistribution):
            raise TypeError(
                f"flow: expected a zuko flow (an nn.Module such as zuko.flows.NSF(2)), "
                f"got {type(flow).__name__}"
            )
        self.flow = flow
        try:
            dist = flow()
        except Exception as err:  # a lazy flow that cannot be built without its context
            raise ValueError(
                "flow: expected an unconditional zuko flow (built without context=…); "
                f"calling it without a context failed ({type(err).__name__}: {err})"
            ) from None
        self.event_shape = tuple(dist.event_shape)
        base = dist.base
        if not isinstance(base, torch.distributions.Independent | torch.distributions.Normal) or (
            not isinstance(getattr(base, "base_dist", base), torch.distributions.Normal)
        ):
            raise ValueError(
                "flow: expected a zuko flow with a diagonal normal base (zuko's default "
                f"N(0, I)), got a {type(base).__name__} base"
            )
        probe = torch.zeros((1, *self.event_shape), dtype=self._dtype())
        try:
            with torch.no_grad():
                dist.log_prob(probe)
        except RuntimeError as err:
            raise ValueError(
                "flow: expected an unconditional zuko flow (ZukoDensity wraps p(x), not "
                "p(x | c)): its log_prob of one point without a context failed "
                f"({err}); build it without context=…"
            ) from None

    def _dtype(self) -> torch.dtype:
        return module_dtype_device(self)[0] or torch.get_default_dtype()

    def _check(self, x: Tensor, name: str) -> Tensor:
        return check_input(self, x, name, self.event_shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x → (z, log|det ∂z/∂x|)``: zuko's ``transform.call_and_ladj``."""
        return self.flow().transform.call_and_ladj(self._check(x, "x"))

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z → (x, log|det ∂x/∂z|)``: zuko's ``transform.inv.call_and_ladj``."""
        return self.flow().transform.inv.call_and_ladj(self._check(z, "z"))

    def log_prob(self, x: Tensor) -> Tensor:
        """zuko's ``flow().log_prob(x)``, shape (batch,)."""
        return self.flow().log_prob(self._check(x, "x"))

    def sample(
        self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` draws ``x = f⁻¹(μ + T·σ·ε)``, ``ε ~ N(0, I)`` from ``generator``; (n, d)."""
        n = check_positive_int(n, "n")
        temperature = check_positive_float(temperature, "temperature")
        check_generator(generator, "generator")
        dist = self.flow()
        with torch.no_grad():
            loc, scale = dist.base.mean, dist.base.stddev
            eps = torch.randn((n, *self.event_shape), generator=generator, dtype=loc.dtype)
            z = loc + temperature * scale * eps.to(loc.device)
            return dist.transform.inv(z)


def zuko_flow(name: str, dim: int = 2) -> nn.Module:
    """zuko's ``RealNVP``, ``MAF`` or ``NSF`` on ``R^dim`` at zuko's defaults (3 transforms,
    hidden layers (64, 64); NSF: 8 spline bins on [−5, 5])."""
    import zuko

    builders: dict[str, Callable[[int], nn.Module]] = {
        "RealNVP": zuko.flows.RealNVP,
        "MAF": zuko.flows.MAF,
        "NSF": zuko.flows.NSF,
    }
    if not isinstance(name, str):
        raise TypeError(f"name: expected one of {sorted(builders)}, got {type(name).__name__}")
    if name not in builders:
        raise ValueError(f"name: expected one of {sorted(builders)}, got {name!r}")
    return builders[name](check_positive_int(dim, "dim"))


def build_flow(name: str, dim: int = 2, seed: int = 0) -> nn.Module:
    """One of :data:`FLOW_NAMES`, its weights drawn after ``torch.manual_seed(seed)``.

    ``"course RealNVP"`` is ``coursekit.flows.RealNVP(dim)`` at its defaults; the zuko flows
    are :func:`zuko_flow` wrapped in :class:`ZukoDensity`.
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected one of {list(FLOW_NAMES)}, got {type(name).__name__}")
    if name not in FLOW_NAMES:
        raise ValueError(f"name: expected one of {list(FLOW_NAMES)}, got {name!r}")
    dim = check_positive_int(dim, "dim")
    torch.manual_seed(check_seed(seed))
    if name == "course RealNVP":
        return RealNVP(dim)
    return ZukoDensity(zuko_flow(name.removeprefix("zuko "), dim))


def check_seed(seed: object) -> int:
    """``seed`` as an int in ``0..2**63 − 1`` (what ``torch.manual_seed`` takes)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected an integer, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed: expected an integer in 0..2**63 - 1, got {seed}")
    return int(seed)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def gap_region(x: Tensor, target: object, threshold: float, half_width: float) -> Tensor:
    """Boolean mask (batch,) of the points of ``x`` (batch, 2) in the gaps of ``target``:

    ``G = {x : p(x) < threshold and max_i |x_i| ≤ half_width}``, the places inside the box
    ``[−w, w]²`` where the true density is below ``threshold``. For the slides' 4 modes at
    (±2, ±2) with ``w = 2`` this is the space between the modes, where an affine flow draws
    its filaments.
    """
    check_tensor(x, "x", event_shape=(2,))
    if not callable(getattr(target, "log_prob", None)):
        raise TypeError(
            f"target: expected a distribution with log_prob (e.g. four_modes()), "
            f"got {type(target).__name__}"
        )
    threshold = check_positive_float(threshold, "threshold")
    half_width = check_positive_float(half_width, "half_width")
    inside = (x.abs() <= half_width).all(dim=1)
    low = target.log_prob(x.double()) < math.log(threshold)
    return inside & low


def gap_mass(x: Tensor, target: object, threshold: float, half_width: float) -> Estimate:
    """Probability mass in the gaps, ``P(X ∈ G)`` (see :func:`gap_region`), estimated from
    draws ``x`` (batch, 2) of the distribution being measured (a model's samples, or the
    target's for the true mass); the standard error is that of a
    Bernoulli mean, ``≈ √(m(1 − m)/n)``."""
    return mean_and_se(gap_region(x, target, threshold, half_width).double())


def summarise(values: list[float]) -> Estimate:
    """Mean and standard error ``s/√k`` of ``k`` per-seed figures (e.g. KLs over seeds)."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"values: expected a list of per-seed numbers, got {type(values).__name__}")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Real)]
    if bad:
        raise TypeError(f"values: expected numbers, got {bad[0]!r} ({type(bad[0]).__name__})")
    if not values:
        raise ValueError("values: expected at least one figure, got none")
    if len(values) == 1:
        return Estimate(float(values[0]), math.inf, 1)
    return mean_and_se(values)


def summarise_runs(
    runs: list[dict[str, object]], by: tuple[str, ...], value: str
) -> dict[tuple[object, ...], Estimate]:
    """Group benchmark rows (dicts) by the fields ``by`` and summarise ``row[value]`` over
    each group's seeds with :func:`summarise` (mean ± standard error); groups keep the order
    in which they first appear."""
    if isinstance(runs, str | dict) or not isinstance(runs, Sequence):
        raise TypeError(f"runs: expected a list of dicts (rows), got {type(runs).__name__}")
    if isinstance(by, str) or not isinstance(by, Sequence):
        raise TypeError(
            f"by: expected a tuple of field names such as ('flow',), got {type(by).__name__}"
            + (f" {by!r} (write ({by!r},))" if isinstance(by, str) else "")
        )
    if not all(isinstance(k, str) for k in (*by, value)):
        raise TypeError(f"by/value: expected field names (str), got {by!r} and {value!r}")
    if not by:
        raise ValueError("by: expected at least one field to group by")
    groups: dict[tuple[object, ...], list[float]] = {}
    for i, row in enumerate(runs):
        if not isinstance(row, dict):
            raise TypeError(f"runs: row {i} is a {type(row).__name__}, expected a dict")
        missing = [k for k in (*by, value) if k not in row]
        if missing:
            raise ValueError(f"runs: row {i} lacks the field(s) {missing}")
        key = tuple(row[k] for k in by)
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                f"runs: row {i}'s fields {list(by)} are not hashable: {key!r}"
            ) from None
        figure = row[value]
        if isinstance(figure, bool) or not isinstance(figure, numbers.Real):
            raise TypeError(f"runs: row {i}'s {value!r} is {figure!r}, expected a number")
        groups.setdefault(key, []).append(float(figure))
    return {k: summarise(v) for k, v in groups.items()}
