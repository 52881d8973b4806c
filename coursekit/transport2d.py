"""The transport of ``X ~ N(0, I)`` by a 2-D map (slides eq. 11), as the arrays a picture needs.

The state function of the 2-D demo of :mod:`coursekit.widgets` (notebook 03): ``p_Z`` by the
change of variable with the autograd Jacobian of ``f⁻¹``, the image of a regular grid, and the
exact density where one exists. No widget and no figure here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import stats

from coursekit import changevar
from coursekit._validation import check_positive_float, check_positive_int
from coursekit.flows.base import standard_normal_log_prob
from coursekit.grid import make_grid
from coursekit.plots.density import grid_lines


def _linear_matrix(p: dict[str, float]) -> torch.Tensor:
    a = torch.tensor([[p["a11"], p["a12"]], [p["a21"], p["a22"]]], dtype=torch.float64)
    det = float(torch.linalg.det(a))
    if abs(det) < 1e-3:
        raise ValueError(
            f"A: the matrix is (nearly) singular (det A = {det + 0.0:.3g}); a linear map is a "
            "bijection only when det A ≠ 0"
        )
    return a


#: The 2-D maps of the transport demo: parameter -> (default, lo, hi, step, description).
MAPS_2D: dict[str, dict[str, tuple[float, float, float, float, str]]] = {
    "linear": {
        "a11": (1.0, -2.0, 2.0, 0.1, "A[1,1]"),
        "a12": (0.5, -2.0, 2.0, 0.1, "A[1,2]"),
        "a21": (0.0, -2.0, 2.0, 0.1, "A[2,1]"),
        "a22": (1.0, -2.0, 2.0, 0.1, "A[2,2]"),
    },
    "shear": {
        "strength": (0.5, -1.0, 1.0, 0.05, "shear strength c"),
    },
}


def _map_2d(name: str, p: dict[str, float]):
    """``(f, f_inverse, exact log p_Z or None, title)`` for a map of :data:`MAPS_2D`."""
    if name == "linear":
        a = _linear_matrix(p)
        a_inv = torch.linalg.inv(a)
        # broadcasting rather than ``x @ a.T``: much faster for (batch, 2) @ (2, 2) on CPU
        f = lambda x: (x[:, None, :] * a.to(x)).sum(-1)
        f_inv = lambda z: (z[:, None, :] * a_inv.to(z)).sum(-1)
        exact = stats.multivariate_normal(mean=np.zeros(2), cov=(a @ a.T).numpy())
        title = "z = A x"
        return f, f_inv, (lambda z: exact.logpdf(z)), title
    c = p["strength"]
    f = lambda x: torch.stack([x[:, 0], x[:, 1] + c * (x[:, 0] ** 2 - 1.0)], dim=1)
    f_inv = lambda z: torch.stack([z[:, 0], z[:, 1] - c * (z[:, 0] ** 2 - 1.0)], dim=1)
    return f, f_inv, None, f"z = (x1, x2 + c(x1² − 1)), c = {c:g}"


def transport_2d_state(
    map_name: str = "linear",
    lim: float = 4.0,
    grid_n: int = 121,
    n_lines: int = 9,
    **params: float,
) -> dict[str, Any]:
    """Transport of ``X ~ N(0, I)`` by a map of :data:`MAPS_2D` (``"linear"``: ``z = A x``
    with sliders for the entries of ``A``; ``"shear"``: ``z = (x₁, x₂ + c(x₁² − 1))``).

    ``p_Z`` is computed on a ``grid_n × grid_n`` grid of ``[−lim, lim]²`` by eq. (9)/(11)
    with the autograd Jacobian of ``f⁻¹`` (:func:`coursekit.changevar.pushforward_density`).

    Returns:
        a dict with ``extent``, images ``p_x`` and ``p_z`` (grid_n, grid_n) (rows = second
        coordinate), ``lines_x`` and ``lines_z`` (lists of (200, 2) arrays: a regular grid on
        ``[−2.5, 2.5]²`` and its image under ``f``), ``integral`` (midpoint rule of ``p_z``
        on the grid), ``log_abs_det`` (``log|det J_f|`` at the origin), ``max_rel_error``
        against the exact density (``scipy.stats.multivariate_normal(0, A Aᵀ)`` for the
        linear map, ``None`` for the shear), ``title``, ``map`` and ``params``.
    """
    if map_name not in MAPS_2D:
        raise ValueError(f"map_name: expected one of {list(MAPS_2D)}, got {map_name!r}")
    lim = check_positive_float(lim, "lim")
    grid_n = check_positive_int(grid_n, "grid_n")
    n_lines = check_positive_int(n_lines, "n_lines")
    spec = MAPS_2D[map_name]
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ValueError(
            f"{unknown[0]}: not a parameter of the map {map_name!r}; expected one of {list(spec)}"
        )
    p = {k: float(params.get(k, v[0])) for k, v in spec.items()}
    f, f_inv, exact_log_prob, title = _map_2d(map_name, p)
    grid = make_grid(-lim, lim, grid_n)
    log_p_z = changevar.pushforward_log_prob(standard_normal_log_prob, f_inv, grid.points).detach()
    p_z = log_p_z.exp()
    p_x = standard_normal_log_prob(grid.points).exp()
    lines_x = grid_lines(-2.5, 2.5, n_lines)
    with torch.no_grad():
        lines_z = [f(line) for line in lines_x]
    log_det = changevar.log_abs_det_jacobian(f, grid.points.new_zeros(1, 2))
    max_rel = None
    if exact_log_prob is not None:
        ref = exact_log_prob(grid.points.numpy())
        max_rel = float(np.max(np.abs(np.expm1(log_p_z.numpy() - ref))))
    return {
        "map": map_name,
        "params": p,
        "title": title,
        "extent": grid.extent,
        "p_x": grid.as_image(p_x).numpy(),
        "p_z": grid.as_image(p_z).numpy(),
        "lines_x": [line.numpy() for line in lines_x],
        "lines_z": [line.numpy() for line in lines_z],
        "integral": float(p_z.sum() * grid.cell_area),
        "log_abs_det": float(log_det[0]),
        "max_rel_error": max_rel,
    }
