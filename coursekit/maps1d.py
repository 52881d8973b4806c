"""A small catalogue of 1-D bijections ``f`` with the exact law of ``Z = f(X)`` (notebook 02).

Each entry knows the law of ``X`` (a normal ``N(μ, σ²)`` or the uniform ``U(0, 1)``), the map
``f``, its inverse ``f⁻¹``, and the ``scipy.stats`` distribution that ``Z = f(X)`` follows, so
that the change-of-variable formula (slides eq. 9)

    ``p_Z(z) = p_X(f⁻¹(z)) · |d f⁻¹(z)/dz|``

computed by :mod:`coursekit.changevar` can be checked against an independent closed form.

=============  ===========  =========================  ======================================
name           X            f(x)                       Z = f(X)
=============  ===========  =========================  ======================================
``exp``        N(μ, σ²)     exp(x)                     lognormal(s=σ, scale=e^μ)
``affine``     N(μ, σ²)     a·x + b   (a ≠ 0)          N(aμ + b, (aσ)²)
``exp_neg``    N(μ, σ²)     exp(−x)   (decreasing)     lognormal(s=σ, scale=e^{−μ})
``normal_cdf`` N(μ, σ²)     Φ((x − μ)/σ)               U(0, 1)   (probability integral transform)
``logit``      U(0, 1)      loc + scale·log(x/(1−x))   logistic(loc, scale)
``sinh``       N(μ, σ²)     sinh(x)                    Johnson S_U(a=−μ/σ, b=1/σ)
=============  ===========  =========================  ======================================

All functions take and return float tensors of shape (batch,); parameters are keyword
arguments (defaults in :attr:`Map1D.params`). ``forward`` accepts points of
:attr:`Map1D.domain` and ``inverse`` points of :attr:`Map1D.image` (closed intervals, where
the boundary gives ``±inf``); any other value raises ``ValueError`` instead of returning NaN.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from scipy import stats
from torch import Tensor

from coursekit._validation import check_generator, check_positive_int, check_tensor
from coursekit.flows.base import LOG_2PI

Params = Mapping[str, float]


@dataclass(frozen=True)
class Param:
    """A numeric parameter of a map: default value and a slider range for the widgets."""

    name: str
    default: float
    lo: float
    hi: float
    step: float
    description: str


@dataclass(frozen=True)
class Map1D:
    """A 1-D bijection with the law of its input ``X`` and of its output ``Z = f(X)``.

    Attributes:
        name: the catalogue key.
        formula: ``f`` written out (plain text, for titles).
        base: ``"normal"`` (``X ~ N(μ, σ²)``, parameters ``mu`` and ``sigma``) or
            ``"uniform"`` (``X ~ U(0, 1)``).
        params: every parameter (of the law of ``X`` and of ``f``) with its default.
        target_name: the name of the law of ``Z``.
    """

    name: str
    formula: str
    base: str
    params: tuple[Param, ...]
    target_name: str
    _forward: Callable[[Tensor, Params], Tensor]
    _inverse: Callable[[Tensor, Params], Tensor]
    _target: Callable[[Params], object]
    _increasing: Callable[[Params], bool]
    _check: Callable[[Params], None] | None = None
    #: closed interval holding every valid input of ``f`` (outside it ``f`` is undefined).
    domain: tuple[float, float] = (-math.inf, math.inf)
    #: closed interval holding every value of ``f`` (the valid inputs of ``f⁻¹``).
    image: tuple[float, float] = (-math.inf, math.inf)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def resolve(self, **params: float) -> dict[str, float]:
        """Fill in defaults and validate: unknown names, non-finite values, ``σ ≤ 0`` etc."""
        unknown = sorted(set(params) - set(self.param_names))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: not a parameter of the map {self.name!r}; expected one of "
                f"{list(self.param_names)}"
            )
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{key}: expected a number, got {value!r}")
        out = {p.name: float(params.get(p.name, p.default)) for p in self.params}
        for key, value in out.items():
            if not math.isfinite(value):
                raise ValueError(f"{key}: expected a finite number, got {value!r}")
        for key in ("sigma", "scale"):
            if key in out and out[key] <= 0:
                raise ValueError(f"{key}: expected a positive number, got {out[key]!r}")
        if self._check is not None:
            self._check(out)
        return out

    def forward(self, x: Tensor, **params: float) -> Tensor:
        """``z = f(x)``, elementwise; (batch,) -> (batch,).

        Raises ``ValueError`` naming ``x`` when a value lies outside :attr:`domain`.
        """
        x = _check_in(_check_1d(x, "x"), "x", self.domain, f"the domain of {self.formula}")
        return self._forward(x, self.resolve(**params))

    def inverse(self, z: Tensor, **params: float) -> Tensor:
        """``x = f⁻¹(z)``, elementwise; (batch,) -> (batch,).

        Raises ``ValueError`` naming ``z`` when a value lies outside :attr:`image`.
        """
        z = _check_in(_check_1d(z, "z"), "z", self.image, f"the values of {self.formula}")
        return self._inverse(z, self.resolve(**params))

    def base_log_prob(self, x: Tensor, **params: float) -> Tensor:
        """``log p_X(x)`` in torch (differentiable); ``−inf`` outside the support."""
        x = _check_1d(x, "x", allow_nonfinite=True)
        p = self.resolve(**params)
        if self.base == "normal":
            u = (x - p["mu"]) / p["sigma"]
            return -0.5 * u**2 - math.log(p["sigma"]) - 0.5 * LOG_2PI
        inside = (x > 0) & (x < 1)
        return torch.where(inside, x.new_zeros(()), x.new_full((), -math.inf))

    def base_dist(self, **params: float):
        """The law of ``X`` as a frozen ``scipy.stats`` distribution."""
        p = self.resolve(**params)
        if self.base == "normal":
            return stats.norm(loc=p["mu"], scale=p["sigma"])
        return stats.uniform(loc=0.0, scale=1.0)

    def target_dist(self, **params: float):
        """The exact law of ``Z = f(X)`` as a frozen ``scipy.stats`` distribution."""
        return self._target(self.resolve(**params))

    def is_increasing(self, **params: float) -> bool:
        """``True`` if ``f`` is increasing (eq. 5–6), ``False`` if decreasing (eq. 7–8)."""
        return self._increasing(self.resolve(**params))

    def x_range(self, q: float = 1e-3, **params: float) -> tuple[float, float]:
        """An interval holding all but ``2q`` of the mass of ``X`` (for plots), ``0 < q < 0.5``."""
        q = _check_tail(q)
        d = self.base_dist(**params)
        return float(d.ppf(q)), float(d.ppf(1 - q))

    def z_range(self, q: float = 1e-3, **params: float) -> tuple[float, float]:
        """An interval holding all but ``2q`` of the mass of ``Z``, ``0 < q < 0.5`` (for plots)."""
        q = _check_tail(q)
        d = self.target_dist(**params)
        return float(d.ppf(q)), float(d.ppf(1 - q))

    def sample(
        self, n: int, generator: torch.Generator | None = None, **params: float
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` points ``x ~ p_X`` (float64) and return ``(x, f(x))``."""
        n = check_positive_int(n, "n")
        check_generator(generator, "generator")
        p = self.resolve(**params)
        if self.base == "normal":
            x = p["mu"] + p["sigma"] * torch.randn(n, generator=generator, dtype=torch.float64)
        else:
            x = torch.rand(n, generator=generator, dtype=torch.float64)
        return x, self._forward(x, p)

    def __repr__(self) -> str:
        return f"Map1D({self.name!r}: z = {self.formula}, X ~ {self.base}, Z ~ {self.target_name})"


def _check_tail(q: object) -> float:
    if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0 < float(q) < 0.5:
        raise ValueError(
            f"q: expected a tail probability 0 < q < 0.5 (the interval holds 1 − 2q of the "
            f"mass), got {q!r}"
        )
    return float(q)


def _check_in(x: Tensor, name: str, interval: tuple[float, float], what: str) -> Tensor:
    lo, hi = interval
    outside = (x < lo) | (x > hi)
    if bool(outside.any()):
        first = float(x[outside][0])
        raise ValueError(
            f"{name}: expected values in [{lo:g}, {hi:g}] ({what}), got {int(outside.sum())} "
            f"outside, e.g. {first:g}"
        )
    return x


def _check_1d(x: object, name: str, allow_nonfinite: bool = False) -> Tensor:
    x = check_tensor(x, name, allow_nonfinite=allow_nonfinite)
    if x.dim() != 1:
        raise ValueError(f"{name}: expected shape (batch,), got {tuple(x.shape)}")
    return x


_MU = Param("mu", 0.0, -2.0, 2.0, 0.1, "μ (mean of X)")
_SIGMA = Param("sigma", 1.0, 0.2, 2.0, 0.05, "σ (std of X)")


def _check_affine(p: Params) -> None:
    if p["a"] == 0:
        raise ValueError("a: expected a ≠ 0 (f(x) = a·x + b is not a bijection when a = 0)")


MAPS: dict[str, Map1D] = {
    m.name: m
    for m in (
        Map1D(
            name="exp",
            formula="exp(x)",
            base="normal",
            params=(_MU, Param("sigma", 0.5, 0.1, 1.0, 0.05, "σ (std of X)")),
            target_name="lognormal",
            _forward=lambda x, p: torch.exp(x),
            _inverse=lambda z, p: torch.log(z),
            _target=lambda p: stats.lognorm(s=p["sigma"], scale=math.exp(p["mu"])),
            _increasing=lambda p: True,
            image=(0.0, math.inf),
        ),
        Map1D(
            name="affine",
            formula="a·x + b",
            base="normal",
            params=(
                _MU,
                _SIGMA,
                Param("a", 2.0, -3.0, 3.0, 0.25, "a (slope)"),
                Param("b", 1.0, -3.0, 3.0, 0.25, "b (shift)"),
            ),
            target_name="normal",
            _forward=lambda x, p: p["a"] * x + p["b"],
            _inverse=lambda z, p: (z - p["b"]) / p["a"],
            _target=lambda p: stats.norm(
                loc=p["a"] * p["mu"] + p["b"], scale=abs(p["a"]) * p["sigma"]
            ),
            _increasing=lambda p: p["a"] > 0,
            _check=_check_affine,
        ),
        Map1D(
            name="exp_neg",
            formula="exp(−x)",
            base="normal",
            params=(_MU, Param("sigma", 0.5, 0.1, 1.0, 0.05, "σ (std of X)")),
            target_name="lognormal",
            _forward=lambda x, p: torch.exp(-x),
            _inverse=lambda z, p: -torch.log(z),
            _target=lambda p: stats.lognorm(s=p["sigma"], scale=math.exp(-p["mu"])),
            _increasing=lambda p: False,
            image=(0.0, math.inf),
        ),
        Map1D(
            name="normal_cdf",
            formula="Φ((x − μ)/σ)",
            base="normal",
            params=(_MU, _SIGMA),
            target_name="uniform(0, 1)",
            _forward=lambda x, p: torch.special.ndtr((x - p["mu"]) / p["sigma"]),
            _inverse=lambda z, p: p["mu"] + p["sigma"] * torch.special.ndtri(z),
            _target=lambda p: stats.uniform(loc=0.0, scale=1.0),
            _increasing=lambda p: True,
            image=(0.0, 1.0),
        ),
        Map1D(
            name="logit",
            formula="loc + scale·log(x/(1 − x))",
            base="uniform",
            params=(
                Param("loc", 0.0, -2.0, 2.0, 0.1, "loc (shift)"),
                Param("scale", 1.0, 0.2, 2.0, 0.05, "scale"),
            ),
            target_name="logistic",
            _forward=lambda x, p: p["loc"] + p["scale"] * torch.logit(x),
            _inverse=lambda z, p: torch.sigmoid((z - p["loc"]) / p["scale"]),
            _target=lambda p: stats.logistic(loc=p["loc"], scale=p["scale"]),
            _increasing=lambda p: True,
            domain=(0.0, 1.0),
        ),
        Map1D(
            name="sinh",
            formula="sinh(x)",
            base="normal",
            params=(_MU, _SIGMA),
            target_name="Johnson S_U",
            _forward=lambda x, p: torch.sinh(x),
            _inverse=lambda z, p: torch.asinh(z),
            _target=lambda p: stats.johnsonsu(a=-p["mu"] / p["sigma"], b=1.0 / p["sigma"]),
            _increasing=lambda p: True,
        ),
    )
}


def map_names() -> list[str]:
    """The names of the catalogue's maps, in display order."""
    return list(MAPS)


def get_map(name: str) -> Map1D:
    """The map called ``name`` (see :data:`MAPS`); ``ValueError`` listing the choices."""
    if not isinstance(name, str) or name not in MAPS:
        raise ValueError(f"name: expected one of {map_names()}, got {name!r}")
    return MAPS[name]
