"""Plots for flows (notebooks 04–06): Jacobians, learned densities, samples, transport, losses.

Every helper takes an optional matplotlib ``Axes`` (``ax=None`` draws on a new figure) and
returns the ``Axes`` it drew on (:func:`plot_transport` takes and returns a sequence of them),
so that notebooks can compose figures with ``plt.subplots`` and tests can inspect what was
drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from torch import Tensor

from coursekit._validation import check_positive_int
from coursekit.device import module_dtype_device
from coursekit.grid import Grid2D, log_prob_on_grid, make_grid
from coursekit.plots._arrays import as_numpy


def _axes(ax: Axes | None, figsize: tuple[float, float] = (4.0, 4.0)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_jacobian(
    jac: Tensor | np.ndarray,
    ax: Axes | None = None,
    kept: int | None = None,
    annotate: bool = True,
    title: str = "Jacobian ∂z/∂x",
    labels: Sequence[str] | None = None,
) -> Axes:
    """Draw a ``(d, d)`` Jacobian matrix as a picture with a diverging colour map (0 = white).

    Args:
        jac: the matrix ``J[i, j] = ∂z_i/∂x_j``, (d, d).
        kept: if given, the number ``k`` of kept coordinates (rows/columns ordered as
            ``[x1, x2]``); dashed lines then mark the blocks ``[[I_k, 0], [∂z2/∂x1, diag]]``.
        annotate: write each entry's value (2 decimals) in its cell.
        labels: names of the d coordinates for the tick labels (default ``x_1 … x_d``).
    """
    m = as_numpy(jac, "jac", ndim=2)
    d = m.shape[0]
    if m.shape != (d, d):
        raise ValueError(f"jac: expected a square (d, d) matrix, got shape {m.shape}")
    if kept is not None and not 0 < kept < d:
        raise ValueError(f"kept: expected an integer in 1..{d - 1}, got {kept}")
    ax = _axes(ax)
    vmax = max(float(np.abs(m).max()), 1e-12)
    image = ax.imshow(m, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -vmax, vmax))
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if annotate:
        for i in range(d):
            for j in range(d):
                value = m[i, j]
                text = "0" if value == 0 else f"{value:.2f}"
                color = "white" if abs(value) > 0.6 * vmax else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    if kept is not None:
        ax.axhline(kept - 0.5, color="k", ls="--", lw=1)
        ax.axvline(kept - 0.5, color="k", ls="--", lw=1)
    names = list(labels) if labels is not None else [f"$x_{{{j + 1}}}$" for j in range(d)]
    if len(names) != d:
        raise ValueError(f"labels: expected {d} names, got {len(names)}")
    ax.set_xticks(range(d), names)
    ax.set_yticks(range(d), [n.replace("x", "z") for n in names])
    ax.set_xlabel("input coordinate j (x)")
    ax.set_ylabel("output coordinate i (z)")
    ax.set_title(title)
    return ax


def plot_density(
    density: Callable[[Tensor], Tensor] | Tensor,
    grid: Grid2D | None = None,
    ax: Axes | None = None,
    title: str = "density",
    log: bool = False,
    cmap: str = "viridis",
    colorbar: bool = False,
) -> Axes:
    """Draw a 2-D density on a grid (:mod:`coursekit.grid`) as an image.

    Args:
        density: a ``log_prob`` callable mapping (batch, 2) points to (batch,) log densities
            (evaluated without gradients in the grid's dtype, or in float32 when the
            callable is a module with float32 parameters), or precomputed (n·n,) log
            densities on ``grid``.
        grid: the grid (default: 200 × 200 on [−4, 4]²).
        log: show ``log p`` instead of ``p``.
    """
    grid = grid if grid is not None else make_grid()
    if isinstance(density, Tensor):
        values = density.detach()
        if values.shape != (grid.n * grid.n,):
            raise ValueError(
                f"density: expected {grid.n * grid.n} log densities (one per grid point), "
                f"got shape {tuple(values.shape)}"
            )
    elif callable(density):
        owner = getattr(density, "__self__", None)
        model_dtype = module_dtype_device(owner)[0] if isinstance(owner, torch.nn.Module) else None
        dtype = model_dtype or grid.points.dtype
        values = log_prob_on_grid(lambda p: density(p.to(dtype)), grid)
    else:
        raise ValueError(
            f"density: expected a log_prob callable or a tensor, got {type(density).__name__}"
        )
    values = values.double().cpu()
    image = values if log else values.exp()
    ax = _axes(ax)
    im = ax.imshow(
        grid.as_image(image).numpy(), origin="lower", extent=grid.extent, cmap=cmap, aspect="equal"
    )
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="log p" if log else "p")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    return ax


def plot_samples(
    x: Tensor | np.ndarray,
    ax: Axes | None = None,
    title: str = "samples",
    label: str | None = None,
    color: str | None = None,
    size: float = 2.0,
    alpha: float = 0.5,
    lim: float | None = 4.0,
) -> Axes:
    """Scatter (n, 2) points; ``lim`` sets a square window ``[−lim, lim]²`` (None: automatic)."""
    pts = as_numpy(x, "x", ndim=2)
    if pts.shape[1] != 2:
        raise ValueError(f"x: expected shape (n, 2), got {pts.shape}")
    ax = _axes(ax)
    ax.scatter(pts[:, 0], pts[:, 1], s=size, alpha=alpha, color=color, label=label, rasterized=True)
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    if label is not None:
        ax.legend(loc="upper right", markerscale=4)
    return ax


def plot_transport(
    steps: Sequence[Tensor],
    axes: Sequence[Axes] | None = None,
    colors: Tensor | np.ndarray | None = None,
    names: Sequence[str] | None = None,
    lim: float = 4.0,
    size: float = 1.5,
    cmap: str = "coolwarm",
) -> list[Axes]:
    """One scatter panel per intermediate of a flow (``RealNVP.trajectory`` or
    ``inverse_trajectory``): how the points move layer by layer.

    Args:
        steps: the list ``[x_0, x_1, …, x_n]`` of (n, 2) tensors.
        axes: as many Axes as steps (default: a new row of panels).
        colors: (n,) values that colour every point the same way in every panel, so one can
            follow points (e.g. which mode of the data they came from).
        names: one title per panel (default ``x_0 = x``, ``x_1``, …, ``x_n = z``).
    """
    if len(steps) == 0:
        raise ValueError("steps: expected at least one (n, 2) tensor, got an empty sequence")
    pts = [as_numpy(s, f"steps[{i}]", ndim=2) for i, s in enumerate(steps)]
    n = len(pts)
    if axes is None:
        _, axes_arr = plt.subplots(1, n, figsize=(2.2 * n, 2.4), squeeze=False)
        axes = list(axes_arr[0])
    axes = list(axes)
    if len(axes) != n:
        raise ValueError(f"axes: expected {n} Axes (one per step), got {len(axes)}")
    if names is None:
        names = [f"$x_{{{i}}}$" for i in range(n)]
        names[0], names[-1] = "$x_0 = x$", f"$x_{{{n - 1}}} = z$"
    if len(names) != n:
        raise ValueError(f"names: expected {n} titles, got {len(names)}")
    c = None if colors is None else as_numpy(colors, "colors", ndim=1)
    for ax, p, name in zip(axes, pts, names, strict=True):
        ax.scatter(
            p[:, 0],
            p[:, 1],
            s=size,
            c=c,
            cmap=cmap if c is not None else None,
            alpha=0.6,
            rasterized=True,
        )
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel("second coordinate")
    for ax in axes:
        ax.set_xlabel("first coordinate")
    return axes


def plot_losses(
    histories: dict[str, object] | Sequence[float] | Tensor | np.ndarray,
    ax: Axes | None = None,
    window: int = 50,
    title: str = "training loss (NLL, nats)",
    reference: float | None = None,
    reference_label: str = "entropy of the data H(p)",
) -> Axes:
    """Loss curves: one per ``{label: History or sequence of losses}`` (running mean over
    ``window`` steps); ``reference`` draws a horizontal line (e.g. the data entropy, the
    lowest achievable NLL).
    """
    window = check_positive_int(window, "window")
    if not isinstance(histories, dict):
        histories = {"loss": histories}
    if not histories:
        raise ValueError("histories: expected at least one curve, got an empty dict")
    ax = _axes(ax, figsize=(6.0, 3.5))
    for label, h in histories.items():
        losses = getattr(h, "losses", h)
        values = as_numpy(np.asarray(losses, dtype=float), f"histories[{label!r}]", ndim=1)
        if len(values) >= window:
            values = np.convolve(values, np.ones(window) / window, mode="valid")
            steps = np.arange(window, window + len(values))
        else:
            steps = np.arange(1, len(values) + 1)
        ax.plot(steps, values, label=label)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if len(histories) > 1 or reference is not None:
        ax.legend()
    return ax
