"""A continuous-time flow trained by flow matching (Lipman et al., 2023; Liu et al., 2023).

The flow is an ODE ``dx/dt = v_θ(x, t)`` from noise at ``t = 0`` to data at ``t = 1``. Flow
matching trains ``v_θ`` without simulating it: draw ``x₀ ~ N(0, I)``, ``x₁ ~ p`` and
``t ~ U(0, 1)``, form the straight-line interpolant ``x_t = (1 − t) x₀ + t x₁`` (whose velocity
is ``x₁ − x₀``) and regress

    L(θ) = E ‖v_θ(x_t, t) − (x₁ − x₀)‖²;

the minimiser is the average velocity of the lines through each ``(x, t)``, whose ODE carries
``N(0, I)`` to ``p``. Sampling integrates the ODE from ``t = 0`` to 1 (:func:`integrate`, RK4).
The density follows from the instantaneous change of variables (Chen et al., 2018):

    d/dt log p_t(x_t) = −div v_θ(x_t, t) = −tr ∂v_θ/∂x,

so ``log p(x) = log N(x₀; 0, I) − ∫₀¹ tr ∂v_θ/∂x (x_t, t) dt`` along the path from ``x₁ = x``
back to ``x₀``: eq. (14) with ``log|det ∂z/∂x| = −∫ tr`` (:class:`FlowMatchingModel`). The trace
is exact here (d backward passes, :func:`divergence`); FFJORD (Grathwohl et al., 2019)
replaces it by Hutchinson's unbiased estimate ``εᵀ (∂v/∂x) ε`` (:func:`hutchinson_divergence`),
one backward pass in any dimension.

Shapes: ``x`` (batch, d); ``t`` a number or (batch,); log-densities (batch,).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_positive_int, check_tensor
from coursekit.device import module_dtype_device
from coursekit.flows.base import standard_normal_log_prob
from coursekit.flows.nets import mlp

Velocity = Callable[[Tensor, Tensor], Tensor]


class VelocityField(nn.Module):
    """``v_θ(x, t)``: an MLP on ``[x, t]`` (d + 1 inputs, d outputs, SiLU, last layer zero)."""

    def __init__(self, dim: int = 2, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.net = mlp(self.dim + 1, self.dim, hidden)

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        return self.net(torch.cat([x, t[:, None]], dim=1))


class InterpolantPairs:
    """Training rows ``[x₁, x₀, t]`` (n, 2d + 1): ``x₁ ~ target``, ``x₀ ~ N(0, I)``,
    ``t ~ U(0, 1)``, all from one generator — the data that :func:`coursekit.training.fit`
    draws each step when it minimises :func:`flow_matching_loss`."""

    def __init__(self, target: object, dim: int = 2):
        if not callable(getattr(target, "sample", None)):
            raise ValueError(f"target: expected a distribution with sample(n), got {target!r}")
        self.target = target
        self.dim = check_positive_int(dim, "dim")

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        n = check_positive_int(n, "n")
        x1 = self.target.sample(n, generator=generator).double()
        x0 = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        t = torch.rand(n, 1, generator=generator, dtype=torch.float64)
        return torch.cat([x1, x0, t], dim=1)


def flow_matching_loss(velocity: nn.Module, batch: Tensor) -> Tensor:
    """``mean ‖v_θ(x_t, t) − (x₁ − x₀)‖²`` with ``x_t = (1 − t) x₀ + t x₁``, for rows
    ``[x₁, x₀, t]`` (:class:`InterpolantPairs`)."""
    d = (batch.shape[1] - 1) // 2
    x1, x0, t = batch[:, :d], batch[:, d : 2 * d], batch[:, 2 * d]
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    return ((velocity(xt, t) - (x1 - x0)) ** 2).sum(1).mean()


def integrate(velocity: Velocity, x: Tensor, t0: float, t1: float, steps: int) -> Tensor:
    """Solve ``dx/dt = v(x, t)`` from ``t0`` to ``t1`` with ``steps`` RK4 steps; returns x(t1)."""
    steps = check_positive_int(steps, "steps")
    h = (t1 - t0) / steps
    t = t0
    for _ in range(steps):
        k1 = velocity(x, t)
        k2 = velocity(x + 0.5 * h * k1, t + 0.5 * h)
        k3 = velocity(x + 0.5 * h * k2, t + 0.5 * h)
        k4 = velocity(x + h * k3, t + h)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t = t + h
    return x


def divergence(velocity: Velocity, x: Tensor, t: Tensor | float) -> Tensor:
    """Exact ``tr ∂v/∂x`` at each point, one backward pass per dimension; (batch,)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = velocity(x, t)
        return sum(
            torch.autograd.grad(v[:, i].sum(), x, retain_graph=i < x.shape[1] - 1)[0][:, i]
            for i in range(x.shape[1])
        )


def hutchinson_divergence(velocity: Velocity, x: Tensor, t: Tensor | float, eps: Tensor) -> Tensor:
    """Hutchinson's one-probe estimate ``εᵀ (∂v/∂x) ε`` of ``tr ∂v/∂x`` (unbiased when
    ``E[εεᵀ] = I``, e.g. ε Gaussian or ±1); one backward pass; (batch,)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = velocity(x, t)
        (vjp,) = torch.autograd.grad(v, x, grad_outputs=eps)
        return (vjp * eps).sum(1)


class FlowMatchingModel(nn.Module):
    """A continuous normalizing flow with the course's interface.

    ``forward(x)`` runs the ODE backwards from ``x`` (t = 1) to ``z`` (t = 0) and returns
    ``(z, log|det ∂z/∂x|)`` with ``log|det ∂z/∂x| = −∫₀¹ tr ∂v/∂x dt`` (RK4 on the augmented
    state); ``log_prob(x)`` is eq. (14); ``sample(n)`` integrates forwards from noise.

    Args:
        velocity: the field ``v_θ(x, t)`` (:class:`VelocityField`).
        steps: RK4 steps on [0, 1], for sampling and densities.
    """

    def __init__(self, velocity: nn.Module, steps: int = 20):
        super().__init__()
        self.velocity = velocity
        self.steps = check_positive_int(steps, "steps")
        self.event_shape = (velocity.dim,)

    def _dtype(self) -> torch.dtype:
        return module_dtype_device(self.velocity)[0] or torch.get_default_dtype()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (z, log|det ∂z/∂x|)``, from t = 1 back to t = 0."""
        check_tensor(x, "x", event_shape=self.event_shape)
        x = x.detach().to(self._dtype())
        integral = x.new_zeros(x.shape[0])  # ∫_t^1 tr ∂v/∂x along the path

        def augmented(state: Tensor, t: float) -> Tensor:
            y = state[:, :-1]
            with torch.enable_grad():
                y = y.detach().requires_grad_(True)
                v = self.velocity(y, t)
                div = sum(
                    torch.autograd.grad(v[:, i].sum(), y, retain_graph=i < y.shape[1] - 1)[0][:, i]
                    for i in range(y.shape[1])
                )
            return torch.cat([v.detach(), div.detach()[:, None]], dim=1)

        state = integrate(augmented, torch.cat([x, integral[:, None]], 1), 1.0, 0.0, self.steps)
        # integrating dI/dt = div from t = 1 down to 0 gives I(0) = −∫₀¹ div dt
        return state[:, :-1], state[:, -1]

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p_θ(x) = log N(z; 0, I) − ∫₀¹ tr ∂v/∂x dt`` (eq. 14); (batch,)."""
        z, log_det = self.forward(x)
        return standard_normal_log_prob(z) + log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws: ``z ~ N(0, I)`` carried from t = 0 to 1; (n, d)."""
        n = check_positive_int(n, "n")
        z = torch.randn(n, *self.event_shape, generator=generator, dtype=self._dtype())
        with torch.no_grad():
            return integrate(self.velocity, z, 0.0, 1.0, self.steps)
