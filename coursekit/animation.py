"""A small, deterministic animation of a flow's layer-by-layer transport (notebook 05).

:func:`transport_animation` interpolates linearly between consecutive intermediates
``x_i → x_{i+1}`` of ``RealNVP.trajectory`` (or ``inverse_trajectory``) and returns a
matplotlib ``FuncAnimation``; :func:`animation_to_html` turns it into a self-contained
HTML/JavaScript player (``to_jshtml``) whose random element ids are replaced by a fixed one,
so that the same animation gives byte-identical HTML (what nbval compares).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from torch import Tensor

from coursekit._validation import check_positive_int


def interpolate_steps(steps: Sequence[Tensor], frames_per_step: int = 2) -> list[np.ndarray]:
    """Frames ``x_i + (j / m)(x_{i+1} − x_i)``, ``j = 0..m−1`` for each step, then the last one.

    Args:
        steps: ``[x_0, …, x_n]``, each (n_points, 2).
        frames_per_step: ``m``, frames per transition.

    Returns:
        ``n·m + 1`` arrays of shape (n_points, 2).
    """
    m = check_positive_int(frames_per_step, "frames_per_step")
    if len(steps) < 2:
        raise ValueError(f"steps: expected at least two intermediates, got {len(steps)}")
    pts = [
        s.detach().cpu().double().numpy() if isinstance(s, Tensor) else np.asarray(s, float)
        for s in steps
    ]
    shape = pts[0].shape
    if len(shape) != 2 or shape[1] != 2 or any(p.shape != shape for p in pts):
        raise ValueError(
            f"steps: expected tensors of one shape (n_points, 2), got {[p.shape for p in pts]}"
        )
    frames = []
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        frames += [a + (j / m) * (b - a) for j in range(m)]
    frames.append(pts[-1])
    return frames


def transport_animation(
    steps: Sequence[Tensor],
    colors: Tensor | np.ndarray | None = None,
    frames_per_step: int = 2,
    lim: float = 4.0,
    size_inches: float = 3.2,
    dpi: int = 60,
    interval_ms: int = 250,
    title: str = "layer-by-layer transport",
) -> FuncAnimation:
    """Animate points moving through a flow's layers (data → noise or noise → data).

    The figure is closed before returning (so it is not also drawn as a still image);
    display the animation with :func:`animation_to_html`.
    """
    frames = interpolate_steps(steps, frames_per_step)
    m = frames_per_step
    c = None
    if colors is not None:
        c = colors.detach().cpu().numpy() if isinstance(colors, Tensor) else np.asarray(colors)
        if c.shape != (frames[0].shape[0],):
            raise ValueError(
                f"colors: expected shape ({frames[0].shape[0]},), got {tuple(c.shape)}"
            )
    fig, ax = plt.subplots(figsize=(size_inches, size_inches), dpi=dpi)
    scatter = ax.scatter(
        frames[0][:, 0],
        frames[0][:, 1],
        s=2,
        c=c,
        cmap="coolwarm" if c is not None else None,
        alpha=0.7,
    )
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("first coordinate")
    ax.set_ylabel("second coordinate")
    label = ax.set_title(f"{title}: $x_0$", fontsize=9)
    fig.tight_layout()

    def update(k: int):
        scatter.set_offsets(frames[k])
        i, j = divmod(k, m)
        label.set_text(
            f"{title}: $x_{{{i}}}$" if j == 0 else f"{title}: $x_{{{i}}}$ → $x_{{{i + 1}}}$"
        )
        return scatter, label

    anim = FuncAnimation(fig, update, frames=len(frames), interval=interval_ms, blit=False)
    plt.close(fig)
    return anim


_PLAYER_ID = re.compile(r'id="_anim_img([0-9a-f]+)"')
#: the fixed id that replaces the random one
FIXED_ID = "coursekit0transport0animation"


def animation_to_html(anim: FuncAnimation, default_mode: str = "loop") -> str:
    """``anim.to_jshtml()`` with its random (uuid4) player id replaced by :data:`FIXED_ID`.

    The result is deterministic for a deterministic animation (same frames, same
    matplotlib), so a notebook can store it and nbval can compare it.
    """
    if default_mode not in ("loop", "once", "reflect"):
        raise ValueError(
            f"default_mode: expected 'loop', 'once' or 'reflect', got {default_mode!r}"
        )
    html = anim.to_jshtml(default_mode=default_mode)
    for found in set(_PLAYER_ID.findall(html)):
        html = html.replace(found, FIXED_ID)
    return html


__all__ = ["animation_to_html", "interpolate_steps", "transport_animation"]
