"""Plots for density estimation and the change of variable (notebooks 01–03).

Every helper takes an optional matplotlib ``Axes`` (``ax=None`` draws on a new figure) and
returns the ``Axes`` it drew on (the multi-panel helpers take and return a list of them),
always with a title, labelled axes, and a legend when there is more than one curve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from torch import Tensor

from coursekit._validation import check_positive_int
from coursekit.plots._arrays import as_numpy


def _axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 3.5)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _axes_list(axes: Sequence[Axes] | None, n: int, figsize: tuple[float, float]) -> list[Axes]:
    if axes is None:
        _, arr = plt.subplots(1, n, figsize=figsize, squeeze=False)
        return list(arr[0])
    axes = list(axes)
    if len(axes) != n:
        raise ValueError(f"axes: expected {n} Axes, got {len(axes)}")
    return axes


def plot_density_1d(
    x: Tensor | np.ndarray,
    p: Tensor | np.ndarray,
    ax: Axes | None = None,
    label: str | None = None,
    title: str = "density",
    xlabel: str = "x",
    ylabel: str = "density",
    fill: bool = False,
    **style: object,
) -> Axes:
    """Draw a 1-D density ``p`` (n,) over the points ``x`` (n,); ``label`` adds a legend entry."""
    xs, ps = as_numpy(x, "x", ndim=1, sequences=True), as_numpy(p, "p", ndim=1, sequences=True)
    if xs.shape != ps.shape:
        raise ValueError(f"p: expected the shape of x {xs.shape}, got {ps.shape}")
    ax = _axes(ax)
    (line,) = ax.plot(xs, ps, label=label, **style)
    if fill:
        ax.fill_between(xs, ps, alpha=0.2, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if label is not None:
        ax.legend()
    return ax


def plot_histogram_vs_density(
    samples: Tensor | np.ndarray,
    z: Tensor | np.ndarray,
    density: Tensor | np.ndarray,
    ax: Axes | None = None,
    bins: int = 60,
    reference: Tensor | np.ndarray | None = None,
    title: str = "samples against the formula",
    xlabel: str = "z",
    density_label: str = "change of variable (9)",
    reference_label: str = "scipy.stats",
) -> Axes:
    """Histogram (normalised to a density) of ``samples`` against the curve ``density(z)``.

    Samples outside ``[z.min(), z.max()]`` are dropped from the histogram but still count
    in its normalisation, so that the bars estimate the true density on the window.

    Args:
        samples: (n,) draws of ``Z``.
        z: (m,) increasing points where ``density`` (m,) was evaluated.
        reference: optional (m,) second curve (e.g. the scipy.stats pdf), drawn dashed.
    """
    s = as_numpy(samples, "samples", ndim=1, sequences=True)
    zs, ps = (
        as_numpy(z, "z", ndim=1, sequences=True),
        as_numpy(density, "density", ndim=1, sequences=True),
    )
    bins = check_positive_int(bins, "bins")
    if zs.shape != ps.shape:
        raise ValueError(f"density: expected the shape of z {zs.shape}, got {ps.shape}")
    if len(s) == 0:
        raise ValueError("samples: expected at least one sample")
    ax = _axes(ax)
    edges = np.linspace(zs.min(), zs.max(), bins + 1)
    counts, _ = np.histogram(s, bins=edges)
    heights = counts / (len(s) * np.diff(edges))
    ax.bar(
        edges[:-1],
        heights,
        width=np.diff(edges),
        align="edge",
        alpha=0.4,
        color="tab:gray",
        label=f"histogram of {len(s):,} samples",
    )
    ax.plot(zs, ps, color="tab:red", lw=2, label=density_label)
    if reference is not None:
        ref = as_numpy(reference, "reference", ndim=1, sequences=True)
        if ref.shape != zs.shape:
            raise ValueError(f"reference: expected the shape of z {zs.shape}, got {ref.shape}")
        ax.plot(zs, ref, color="k", ls="--", lw=1, label=reference_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_change_of_variable_1d(
    state: Mapping[str, object], axes: Sequence[Axes] | None = None
) -> list[Axes]:
    """Three panels for ``Z = f(X)``: ``p_X``, the map ``f``, and ``p_Z`` by eq. (9).

    Args:
        state: the dict of :func:`coursekit.widgets.change_of_variable_1d_state` (keys
            ``x, p_x, f_x, z, p_z, p_z_exact, formula, map, increasing``).
        axes: three Axes (default: a new 1×3 figure).
    """
    needed = ("x", "p_x", "f_x", "z", "p_z", "p_z_exact", "formula", "increasing")
    missing = [k for k in needed if k not in state]
    if missing:
        raise ValueError(
            f"state: missing keys {missing}; build it with change_of_variable_1d_state"
        )
    ax_x, ax_f, ax_z = _axes_list(axes, 3, figsize=(13.0, 3.6))
    x, p_x, f_x = state["x"], state["p_x"], state["f_x"]
    z, p_z, p_exact = state["z"], state["p_z"], state["p_z_exact"]
    labels_x = dict(title="input density $p_X$", xlabel="x", ylabel="$p_X(x)$")
    plot_density_1d(x, p_x, ax=ax_x, fill=True, color="tab:blue", **labels_x)
    direction = "increasing" if state["increasing"] else "decreasing"
    ax_f.plot(
        as_numpy(x, "x", sequences=True), as_numpy(f_x, "f_x", sequences=True), color="tab:purple"
    )
    ax_f.set_xlabel("x")
    ax_f.set_ylabel("z = f(x)")
    ax_f.set_title(f"map z = {state['formula']} ({direction})")
    ax_f.grid(alpha=0.3)
    labels_z = dict(title="output density $p_Z$", xlabel="z", ylabel="$p_Z(z)$")
    plot_density_1d(
        z, p_z, ax=ax_z, fill=True, color="tab:red", label="$p_Z$ by eq. (9)", **labels_z
    )
    plot_density_1d(
        z,
        p_exact,
        ax=ax_z,
        color="k",
        ls="--",
        lw=1,
        label=f"scipy.stats ({state.get('target_name', 'exact')})",
        xlabel="z",
        ylabel="$p_Z(z)$",
        title="output density $p_Z$",
    )
    return [ax_x, ax_f, ax_z]


def plot_density_2d(
    image: Tensor | np.ndarray,
    extent: Sequence[float],
    ax: Axes | None = None,
    title: str = "density",
    xlabel: str = "$x_1$",
    ylabel: str = "$x_2$",
    cmap: str = "viridis",
    colorbar: bool = False,
) -> Axes:
    """Show an (n, n) density image (rows = second coordinate) on ``extent = (x0, x1, y0, y1)``."""
    img = as_numpy(image, "image", ndim=2, sequences=True)
    if len(extent) != 4:
        raise ValueError(f"extent: expected (x0, x1, y0, y1), got {extent!r}")
    ax = _axes(ax, figsize=(4.0, 4.0))
    im = ax.imshow(img, origin="lower", extent=tuple(extent), cmap=cmap, aspect="equal")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="density")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return ax


def grid_lines(
    lo: float | Sequence[float],
    hi: float | Sequence[float],
    n_lines: int = 11,
    n_points: int = 200,
    dtype: torch.dtype = torch.float64,
) -> list[Tensor]:
    """Horizontal and vertical lines of a regular grid on the box ``[lo, hi]`` in R².

    Returns ``2·n_lines`` tensors of shape (n_points, 2): first the lines of constant
    first coordinate, then those of constant second coordinate.
    """
    n_lines = check_positive_int(n_lines, "n_lines")
    n_points = check_positive_int(n_points, "n_points")
    lo2 = np.broadcast_to(np.asarray(lo, dtype=float), (2,))
    hi2 = np.broadcast_to(np.asarray(hi, dtype=float), (2,))
    if not bool(np.all(hi2 > lo2)):
        raise ValueError(f"hi: expected hi > lo in both coordinates, got lo={lo}, hi={hi}")
    lines = []
    for axis in (0, 1):
        other = 1 - axis
        fixed = torch.linspace(float(lo2[axis]), float(hi2[axis]), n_lines, dtype=dtype)
        run = torch.linspace(float(lo2[other]), float(hi2[other]), n_points, dtype=dtype)
        for c in fixed:
            pts = torch.empty(n_points, 2, dtype=dtype)
            pts[:, axis] = c
            pts[:, other] = run
            lines.append(pts)
    return lines


def plot_warped_grid(
    f: Callable[[Tensor], Tensor] | None,
    lo: float | Sequence[float] = -3.0,
    hi: float | Sequence[float] = 3.0,
    ax: Axes | None = None,
    n_lines: int = 11,
    n_points: int = 200,
    title: str = "image of a regular grid",
    xlabel: str = "$z_1$",
    ylabel: str = "$z_2$",
    color: str = "tab:blue",
    lw: float = 0.8,
) -> Axes:
    """Draw the image ``f(line)`` of every line of a regular grid on ``[lo, hi]`` (``f=None``:
    the grid itself). ``f`` maps (batch, 2) float64 tensors to (batch, 2).

    Lines of constant first coordinate are solid, those of constant second coordinate dashed,
    so one can follow the two families through the map.
    """
    if f is not None and not callable(f):
        raise ValueError(f"f: expected a callable (batch, 2) -> (batch, 2) or None, got {f!r}")
    ax = _axes(ax, figsize=(4.0, 4.0))
    lines = grid_lines(lo, hi, n_lines, n_points)
    for i, pts in enumerate(lines):
        with torch.no_grad():
            out = pts if f is None else f(pts)
        if not isinstance(out, Tensor) or out.shape != pts.shape:
            raise ValueError("f: expected it to return a (batch, 2) tensor like its input")
        arr = out.detach().cpu().double().numpy()
        ax.plot(arr[:, 0], arr[:, 1], color=color, lw=lw, ls="-" if i < n_lines else "--")
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return ax


def plot_transport_2d(
    state: Mapping[str, object], axes: Sequence[Axes] | None = None
) -> list[Axes]:
    """Two panels for ``Z = f(X)`` in R²: ``p_X`` with a regular grid, and ``p_Z`` (eq. 11)
    with the image of that grid under ``f``.

    Args:
        state: the dict of :func:`coursekit.widgets.transport_2d_state` (keys ``extent,
            p_x, p_z, lines_x, lines_z, title``).
        axes: two Axes (default: a new 1×2 figure).
    """
    needed = ("extent", "p_x", "p_z", "lines_x", "lines_z", "title")
    missing = [k for k in needed if k not in state]
    if missing:
        raise ValueError(f"state: missing keys {missing}; build it with transport_2d_state")
    ax_x, ax_z = _axes_list(axes, 2, figsize=(9.0, 4.2))
    extent = state["extent"]
    plot_density_2d(
        state["p_x"],
        extent,
        ax=ax_x,
        title="$p_X$ and a regular grid",
        xlabel="$x_1$",
        ylabel="$x_2$",
    )
    plot_density_2d(
        state["p_z"],
        extent,
        ax=ax_z,
        title=f"$p_Z$ (eq. 11), {state['title']}",
        xlabel="$z_1$",
        ylabel="$z_2$",
    )
    for ax, key in ((ax_x, "lines_x"), (ax_z, "lines_z")):
        lines = state[key]
        half = len(lines) // 2
        for i, line in enumerate(lines):
            arr = as_numpy(line, key, ndim=2, sequences=True)
            ax.plot(
                arr[:, 0], arr[:, 1], color="white", lw=0.6, alpha=0.8, ls="-" if i < half else "--"
            )
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    return [ax_x, ax_z]


def plot_grid_cost(
    dims: Sequence[int],
    points_per_axis: int = 100,
    ax: Axes | None = None,
    budget: float | None = 1e12,
    title: str = "cost of a normalisation grid",
) -> Axes:
    """``log10`` of the number of grid points ``m^D`` against the dimension ``D``.

    ``m^D`` overflows floating point long before ``D = 784`` (MNIST), so the exponent
    ``D · log10(m)`` is drawn. ``budget`` adds a horizontal line (default: 10¹² evaluations).
    """
    m = check_positive_int(points_per_axis, "points_per_axis")
    d = np.asarray(list(dims), dtype=float)
    if d.ndim != 1 or len(d) == 0 or bool(np.any(d <= 0)):
        raise ValueError(f"dims: expected positive dimensions, got {dims!r}")
    ax = _axes(ax)
    ax.plot(d, d * np.log10(m), marker="o", label=f"m = {m} points per axis")
    if budget is not None:
        ax.axhline(
            np.log10(budget),
            color="tab:red",
            ls="--",
            label=f"10^{np.log10(budget):.0f} evaluations",
        )
    ax.set_xscale("log")
    ax.set_xlabel("dimension D")
    ax.set_ylabel("log10(number of grid points m^D)")
    ax.set_title(title)
    ax.legend()
    return ax
