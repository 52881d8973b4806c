"""Optimisation pieces of :func:`coursekit.training.fit`: Adam on one flat vector, and the
learning-rate schedule.

* :class:`FlatAdam`: Adam (Kingma & Ba, 2015) with gradient-norm clipping, all parameters
  updated as one flat vector.
* :func:`make_adam`: ``FlatAdam`` (where every parameter shares one dtype and device) or
  ``torch.optim.Adam``; :func:`clip_gradients`: gradient-norm clipping for either.
* :func:`learning_rate`: linear warm-up, then a cosine decay to 0 (or a constant rate) over
  the steps or a time budget, whichever ends first.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _like(segment: Tensor, p: Tensor) -> Tensor:
    """``segment`` (1-D, ``p.numel()`` elements) viewed with ``p``'s shape and, where ``p`` is
    dense (e.g. a transposed matrix), ``p``'s strides, so autograd accumulates into it without
    a layout warning. The same mapping is used for gradients and updates, element by element.
    """
    if not p.is_contiguous() and torch.empty_like(p).stride() == p.stride():
        return segment.as_strided(p.shape, p.stride())
    return segment.view_as(p)


class FlatAdam:
    """Adam with gradient-norm clipping, run on all parameters at once as one flat vector.

    The update is Adam's (Kingma & Ba, 2015), step ``t`` with gradient ``g`` (after clipping
    and the L2 term ``g + λθ``)::

        m ← β₁ m + (1 − β₁) g,    v ← β₂ v + (1 − β₂) g²
        θ ← θ − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    and clipping scales every gradient by ``min(1, max_norm / (‖g‖₂ + 1e-6))`` where ``‖g‖₂``
    is the norm of all gradients together, as ``torch.nn.utils.clip_grad_norm_`` does.

    Every ``p.grad`` is a view into one flat gradient vector (autograd accumulates into it in
    place), so clipping, the moments and the update are a handful of whole-vector operations
    and one ``_foreach_add_`` back into the parameters, instead of a Python loop over the
    dozens of small parameter tensors of a toy flow (72 for ``RealNVP(2)``). Its gain over
    ``torch.optim.Adam`` is measured in benchmarks/README.md ("FlatAdam").

    All parameters must share one dtype and device (:func:`make_adam` falls back to
    ``torch.optim.Adam`` otherwise). A parameter that receives no gradient in a step is
    treated as having gradient 0 (its moments decay; ``torch.optim.Adam`` would skip it).
    """

    def __init__(
        self,
        params: list[Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if not params:
            raise ValueError("params: expected at least one parameter")
        first = params[0]
        if any(p.dtype != first.dtype or p.device != first.device for p in params):
            raise ValueError("params: expected parameters of one dtype and device")
        self.params = params
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.step_count = 0
        numels = [p.numel() for p in params]
        n = sum(numels)
        like_params = dict(dtype=first.dtype, device=first.device)
        self.grad = torch.zeros(n, **like_params)
        self.exp_avg = torch.zeros(n, **like_params)
        self.exp_avg_sq = torch.zeros(n, **like_params)
        self._update = torch.zeros(n, **like_params)
        self._grad_views = [
            _like(g, p) for g, p in zip(self.grad.split(numels), params, strict=True)
        ]
        self._update_views = [
            _like(u, p) for u, p in zip(self._update.split(numels), params, strict=True)
        ]
        self.zero_grad()

    def zero_grad(self) -> None:
        """Zero the flat gradient and (re)attach its views as the parameters' ``.grad``."""
        self.grad.zero_()
        for p, g in zip(self.params, self._grad_views, strict=True):
            p.grad = g

    def _gather_detached_grads(self) -> None:
        """If something replaced or removed a ``p.grad`` since ``zero_grad``, copy it back in."""
        for p, g in zip(self.params, self._grad_views, strict=True):
            if p.grad is not g:
                if p.grad is None:
                    g.zero_()
                else:
                    g.copy_(p.grad)
                p.grad = g

    @torch.no_grad()
    def clip_grad_norm(self, max_norm: float) -> Tensor:
        """Scale the gradients so their joint 2-norm is at most ``max_norm``; return the norm."""
        self._gather_detached_grads()
        total = torch.linalg.vector_norm(self.grad)
        self.grad.mul_(torch.clamp(max_norm / (total + 1e-6), max=1.0))
        return total

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter from the current gradients."""
        self._gather_detached_grads()
        beta1, beta2 = self.betas
        self.step_count += 1
        g = self.grad
        if self.weight_decay:
            torch._foreach_add_(self._grad_views, self.params, alpha=self.weight_decay)
        self.exp_avg.lerp_(g, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.step_count)
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        torch.div(self.exp_avg, denom, out=self._update)
        torch._foreach_add_(self.params, self._update_views, alpha=-self.lr / bias_correction1)

    def state_dict(self) -> dict[str, object]:
        """The optimizer's state (step count and moments), e.g. for a checkpoint."""
        return {
            "step_count": self.step_count,
            "exp_avg": self.exp_avg.clone(),
            "exp_avg_sq": self.exp_avg_sq.clone(),
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore a state from :meth:`state_dict` (same parameters in the same order)."""
        if set(state) != {"step_count", "exp_avg", "exp_avg_sq"} or not isinstance(
            state["exp_avg"], Tensor
        ):
            raise ValueError(
                "state: expected a FlatAdam state (step_count, exp_avg, exp_avg_sq), got keys "
                f"{sorted(state)}"
            )
        if state["exp_avg"].shape != self.exp_avg.shape:
            raise ValueError(
                f"state: expected moments of {self.exp_avg.numel()} values, got "
                f"{state['exp_avg'].numel()}"
            )
        self.step_count = int(state["step_count"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])


def make_adam(
    params: list[Tensor], lr: float, weight_decay: float, kind: str = "flat"
) -> FlatAdam | torch.optim.Adam:
    """Adam over ``params``: :class:`FlatAdam` (``kind="flat"``, where the parameters share
    one dtype and device) or ``torch.optim.Adam`` (``kind="torch"``, fused where torch offers
    it)."""
    first = params[0]
    if kind == "flat" and all(p.dtype == first.dtype and p.device == first.device for p in params):
        return FlatAdam(params, lr=lr, weight_decay=weight_decay)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def clip_gradients(
    optimizer: FlatAdam | torch.optim.Optimizer, params: list[Tensor], max_norm: float | None
) -> Tensor:
    """Scale the gradients of ``params`` so their joint 2-norm is at most ``max_norm``
    (``None``: no limit); return the norm before scaling."""
    limit = math.inf if max_norm is None else max_norm
    if isinstance(optimizer, FlatAdam):
        return optimizer.clip_grad_norm(limit)
    return torch.nn.utils.clip_grad_norm_(params, limit)


def set_learning_rate(optimizer: FlatAdam | torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group to ``lr``."""
    if isinstance(optimizer, FlatAdam):
        optimizer.lr = lr
    else:
        for group in optimizer.param_groups:
            group["lr"] = lr


def learning_rate(
    step: int,
    steps: int,
    peak: float,
    warmup: int = 0,
    schedule: str = "cosine",
    elapsed: float = 0.0,
    max_seconds: float | None = None,
) -> float:
    """The learning rate of step ``step`` (0-based) of ``steps``.

    Warm-up: ``peak · (step + 1) / warmup`` for ``step < warmup``. Then ``"constant"``:
    ``peak``; ``"cosine"``: ``peak · (1 + cos(π f)) / 2`` with
    ``f = (step − warmup) / (steps − warmup)``, or ``elapsed / max_seconds`` when that is
    larger (a time budget ends the decay at the budget), ``f`` capped at 1.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    frac = (step - warmup) / max(1, steps - warmup)
    if max_seconds is not None:
        frac = max(frac, elapsed / max_seconds)
    return 0.5 * peak * (1 + math.cos(math.pi * min(frac, 1.0)))
