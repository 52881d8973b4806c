"""The change-of-variable theorem, computed with autograd (slides: TRANSPORT DE MESURES).

For a differentiable bijection ``f`` and ``Z = f(X)``:

* eq. (9), 1-D:   ``p_Z(z) = p_X(f⁻¹(z)) · |d f⁻¹(z) / dz|``
* eq. (10), 1-D:  ``p_X(x) = p_Z(f(x)) · |f'(x)|``
* eq. (11), d-D:  ``p_X(x) = p_Z(f(x)) · |det J_f(x)|``  (and eq. 9's d-D form with f⁻¹)

Everything works in log space (``log p``) for stability. Functions accept points of shape
``(batch,)`` for 1-D maps and ``(batch, d)`` for d-D maps; ``f`` must act row-wise on a
batch (``f(x)`` has the shape of ``x``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from coursekit._validation import check_tensor

Map = Callable[[Tensor], Tensor]
LogDensity = Callable[[Tensor], Tensor]


def _check_points(x: object, name: str) -> Tensor:
    x = check_tensor(x, name)
    if x.dim() not in (1, 2):
        raise ValueError(
            f"{name}: expected shape (batch,) for 1-D maps or (batch, d) for d-D maps, "
            f"got {tuple(x.shape)}"
        )
    return x


def _call_map(f: Map, x: Tensor, name: str) -> Tensor:
    if not callable(f):
        raise ValueError(f"{name}: expected a callable mapping a tensor to a tensor, got {f!r}")
    y = f(x)
    if not isinstance(y, Tensor) or y.shape != x.shape:
        shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(
            f"{name}: expected it to return a tensor of the input's shape {tuple(x.shape)}, "
            f"got {shape}"
        )
    return y


def _check_unconnected(
    f: Map,
    x: Tensor,
    y: Tensor,
    name: str,
    columns: list[int] | None = None,
    slope: float | None = None,
) -> None:
    """Outputs of ``f`` (``columns`` of it, or all) have no gradient: right only if constant.

    A map built with ``math.exp`` per element, ``.detach()``, ``.item()`` or numpy returns
    values autograd cannot differentiate; its derivative would silently read as 0 and the
    log-density as −inf. ``f`` is evaluated at ``x + δ`` with ``δ = 10⁻³(1 + |x|)``: if the
    values move (exactly, or by more than ``slope · δ`` when ``slope`` is given), ``f`` is not
    constant there and this raises ``ValueError`` naming ``name``.
    """
    xd = x.detach()
    delta = 1e-3 * (1 + xd.abs())
    try:
        with torch.no_grad():
            shifted = f(xd + delta)
        if not isinstance(shifted, Tensor) or shifted.shape != y.shape:
            moved = True
        else:
            new, old = shifted, y.detach()
            if columns is not None:
                new, old = new[:, columns], old[:, columns]
            if slope is None:
                moved = not torch.equal(new, old)
            else:
                moved = bool(((new - old).abs() > slope * float(delta.max())).any())
    except Exception:  # noqa: BLE001 - any failure means f is not a plain constant map
        moved = True
    if moved:
        raise ValueError(
            f"{name}: its output is not connected to its input by autograd (built with "
            "math.* on elements, .item(), .detach(), .tolist() or numpy?), so its derivative "
            "cannot be computed; write it with torch operations on the whole tensor"
        )


def _call_log_density(log_prob: LogDensity, points: Tensor, batch: int, name: str) -> Tensor:
    if not callable(log_prob):
        raise ValueError(
            f"{name}: expected a callable mapping points to log-densities, got {log_prob!r}"
        )
    out = log_prob(points)
    if not isinstance(out, Tensor) or out.shape != (batch,):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"{name}: expected it to return one log-density per point, shape (batch,) = "
            f"({batch},), got {shape}; for d-D points sum over the coordinates "
            "(.sum(1), without keepdim)"
        )
    return out


def derivative(f: Map, x: Tensor) -> Tensor:
    """Elementwise derivative ``f'(x)`` of a 1-D map applied to a batch ``x`` (batch,).

    Uses one backward pass: since ``f`` acts elementwise, ``∂(Σ_i f(x_i))/∂x_j = f'(x_j)``.
    Raises ``ValueError`` naming ``f`` when ``f(x)`` is not connected to ``x`` by autograd
    and ``f`` is not constant (its derivative cannot be computed; 0 would be wrong).
    """
    return _derivative(f, x, "f", "x")


def _derivative(f: Map, x: Tensor, f_name: str, x_name: str) -> Tensor:
    x = _check_points(x, x_name)
    if x.dim() != 1:
        raise ValueError(f"{x_name}: expected shape (batch,) for a 1-D map, got {tuple(x.shape)}")
    with torch.enable_grad():
        # Keep the graph to ``x`` when it requires grad (so f'(x) can be differentiated).
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        y = _call_map(f, xg, f_name)
        grad = None
        if y.requires_grad:
            (grad,) = torch.autograd.grad(
                y.sum(), xg, create_graph=x.requires_grad, allow_unused=True
            )
    if grad is None:  # y is not connected to x: right (zero) only for a constant map
        _check_unconnected(f, x, y, f_name)
        return torch.zeros_like(x)
    return grad


def jacobian(f: Map, x: Tensor) -> Tensor:
    """Batched Jacobian ``J_f(x)[b, i, j] = ∂f_i/∂x_j`` at every row of ``x`` (batch, d).

    Returns a tensor of shape (batch, d, d). ``f`` must act row-wise (no mixing between
    examples), which is what a batched bijection does: then
    ``∂(Σ_b f_i(x_b))/∂x_{b,j} = ∂f_i/∂x_j (x_b)``, so ``d`` backward passes through one
    batched evaluation of ``f`` give every row's Jacobian exactly. Plain autograd (no
    ``vmap``), so ``f`` may validate its input or branch on values, like the public
    ``forward`` of a bijection does. Raises ``ValueError`` naming ``f`` when an output of
    ``f`` is not connected to ``x`` by autograd and ``f`` is not constant.
    """
    return _jacobian(f, x, "f", "x")


def _jacobian(f: Map, x: Tensor, f_name: str, x_name: str) -> Tensor:
    x = _check_points(x, x_name)
    if x.dim() != 2:
        raise ValueError(f"{x_name}: expected shape (batch, d), got {tuple(x.shape)}")
    with torch.enable_grad():
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        y = _call_map(f, xg, f_name)
        if not y.requires_grad:  # y is not connected to x: right only for a constant map
            _check_unconnected(f, x, y, f_name)
            return x.new_zeros(x.shape[0], x.shape[1], x.shape[1])
        rows = [
            torch.autograd.grad(
                y[:, i].sum(),
                xg,
                retain_graph=True,
                create_graph=x.requires_grad,
                allow_unused=True,
            )[0]
            for i in range(x.shape[1])
        ]
    unconnected = [i for i, r in enumerate(rows) if r is None]
    if unconnected:  # outputs not connected to x at all: right only if they are constant
        _check_unconnected(f, x, y, f_name, columns=unconnected)
    # an output whose gradient is 0 at every point went through a cut in the graph
    # (e.g. torch.stack of a numpy result) unless f really is flat there
    flat = [i for i, r in enumerate(rows) if r is not None and not bool(r.any())]
    if flat:
        _check_unconnected(f, x, y, f_name, columns=flat, slope=1e-2)
    rows = [torch.zeros_like(x) if r is None else r for r in rows]
    return torch.stack(rows, dim=1)


def log_abs_det_jacobian(f: Map, x: Tensor) -> Tensor:
    """``log|det J_f(x)|`` for each point, by autograd.

    ``x`` of shape (batch,) is treated as a batch of scalars (``log|f'(x)|``); ``x`` of
    shape (batch, d) uses the full d×d Jacobian and ``slogdet``. Returns shape (batch,).
    """
    return _log_abs_det(f, x, "f", "x")


def _log_abs_det(f: Map, x: Tensor, f_name: str, x_name: str) -> Tensor:
    x = _check_points(x, x_name)
    if x.dim() == 1:
        return torch.log(torch.abs(_derivative(f, x, f_name, x_name)))
    return torch.linalg.slogdet(_jacobian(f, x, f_name, x_name)).logabsdet


def pullback_log_prob(log_prob_z: LogDensity, f: Map, x: Tensor) -> Tensor:
    """``log p_X(x) = log p_Z(f(x)) + log|det J_f(x)|`` (eq. 10 in 1-D, eq. 11 in d-D).

    Args:
        log_prob_z: log density of ``Z``, mapping points like ``x`` to (batch,).
        f: the bijection ``x -> z``.
        x: points, (batch,) or (batch, d).
    """
    x = _check_points(x, "x")
    log_p = _call_log_density(log_prob_z, _call_map(f, x, "f"), x.shape[0], "log_prob_z")
    return log_p + _log_abs_det(f, x, "f", "x")


def pushforward_log_prob(log_prob_x: LogDensity, f_inverse: Map, z: Tensor) -> Tensor:
    """``log p_Z(z) = log p_X(f⁻¹(z)) + log|det J_{f⁻¹}(z)|`` for ``Z = f(X)`` (eq. 9).

    Args:
        log_prob_x: log density of ``X``.
        f_inverse: the inverse map ``z -> x``.
        z: points, (batch,) or (batch, d).
    """
    z = _check_points(z, "z")
    x = _call_map(f_inverse, z, "f_inverse")
    log_p = _call_log_density(log_prob_x, x, z.shape[0], "log_prob_x")
    return log_p + _log_abs_det(f_inverse, z, "f_inverse", "z")


def pushforward_density(log_prob_x: LogDensity, f_inverse: Map, z: Tensor) -> Tensor:
    """``p_Z(z)`` of ``Z = f(X)`` by eq. (9): ``exp`` of :func:`pushforward_log_prob`."""
    return torch.exp(pushforward_log_prob(log_prob_x, f_inverse, z))


def pullback_density(log_prob_z: LogDensity, f: Map, x: Tensor) -> Tensor:
    """``p_X(x)`` by eq. (10)/(11): ``exp`` of :func:`pullback_log_prob`."""
    return torch.exp(pullback_log_prob(log_prob_z, f, x))
