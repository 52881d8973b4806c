"""Interactive demos for notebooks 02–03, built from plain functions that tests call directly.

Each demo is split in two:

* a *state* function (``change_of_variable_1d_state``; ``transport_2d_state``, from
  :mod:`coursekit.transport2d`) that computes
  everything a picture needs as NumPy arrays (densities by :mod:`coursekit.changevar`, the
  exact ones from ``scipy.stats``), with no widget and no figure;
* a *builder* (``build_change_of_variable_1d_widget``, ``build_transport_2d_widget``) that
  wires ipywidgets controls to a redraw of that state with :mod:`coursekit.plots.density`
  into an ``ipywidgets.Output``.

The builders return an ``ipywidgets.VBox`` (display it as a cell's last expression). The box
carries ``controls`` (a dict name -> widget), ``output`` (the Output widget), ``redraw()``
and ``last_state`` (the state behind the current picture, or the error message when the
parameters are invalid) so that tests can drive it without a browser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from coursekit import changevar
from coursekit._validation import check_positive_int
from coursekit.maps1d import get_map, map_names
from coursekit.plots.density import plot_change_of_variable_1d, plot_transport_2d
from coursekit.transport2d import MAPS_2D, transport_2d_state

_STYLE = {"description_width": "initial"}
_LAYOUT = {"width": "420px"}


# --------------------------------------------------------------------------------------------
# 1-D: Z = f(X) (slides eq. 5–10)
# --------------------------------------------------------------------------------------------


def change_of_variable_1d_state(
    map_name: str = "exp", n_points: int = 401, **params: float
) -> dict[str, Any]:
    """Everything the three panels ``p_X``, ``f``, ``p_Z`` need, for one map of
    :mod:`coursekit.maps1d` and its parameters.

    ``p_Z`` is computed by eq. (9) with :func:`coursekit.changevar.pushforward_density`
    (autograd derivative of ``f⁻¹``), and ``p_Z_exact`` by ``scipy.stats``.

    Returns:
        a dict with float64 arrays ``x`` (n,), ``p_x`` (n,), ``f_x`` (n,) (the map on the
        x grid), ``z`` (n,), ``p_z`` (n,), ``p_z_exact`` (n,), the scalar ``max_rel_error``
        (max over z of ``|p_z − p_z_exact| / p_z_exact``), and ``map``, ``formula``,
        ``target_name``, ``increasing``, ``params`` (the resolved parameters).

    Raises:
        ValueError: unknown map or parameter, or parameters that make ``f`` not a bijection
            (e.g. ``a = 0`` for the affine map).
    """
    m = get_map(map_name)
    n_points = check_positive_int(n_points, "n_points")
    if n_points < 3:
        raise ValueError(f"n_points: expected at least 3 points, got {n_points}")
    p = m.resolve(**params)
    x_lo, x_hi = m.x_range(q=1e-3, **p)
    z_lo, z_hi = m.z_range(q=2e-3, **p)
    x = torch.linspace(x_lo, x_hi, n_points, dtype=torch.float64)
    z = torch.linspace(z_lo, z_hi, n_points, dtype=torch.float64)
    log_p_x = lambda t: m.base_log_prob(t, **p)
    f_inv = lambda t: m.inverse(t, **p)
    p_z = changevar.pushforward_density(log_p_x, f_inv, z).detach().numpy()
    p_z_exact = m.target_dist(**p).pdf(z.numpy())
    rel = np.abs(p_z - p_z_exact) / p_z_exact
    return {
        "map": m.name,
        "formula": m.formula,
        "target_name": m.target_name,
        "increasing": m.is_increasing(**p),
        "params": p,
        "x": x.numpy(),
        "p_x": torch.exp(log_p_x(x)).numpy(),
        "f_x": m.forward(x, **p).numpy(),
        "z": z.numpy(),
        "p_z": p_z,
        "p_z_exact": p_z_exact,
        "max_rel_error": float(rel.max()),
    }


def _show(fig: plt.Figure) -> None:
    """Display ``fig`` in the current output (inside an ipykernel) and close it."""
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(fig)
    finally:
        plt.close(fig)


def _redraw_into(
    box: widgets.VBox, compute: Callable[[], dict[str, Any]], draw: Callable[[dict], plt.Figure]
) -> None:
    """Recompute the state and replace the picture in ``box.output`` (an error message is
    shown instead when the parameters are invalid)."""
    with box.output:
        box.output.clear_output(wait=True)
        try:
            state = compute()
        except ValueError as err:
            box.last_state = {"error": str(err)}
            print(f"Invalid parameters: {err}")
            return
        box.last_state = state
        _show(draw(state))


def _slider(name: str, value: float, lo: float, hi: float, step: float, description: str):
    return widgets.FloatSlider(
        value=value,
        min=lo,
        max=hi,
        step=step,
        description=description,
        continuous_update=False,
        readout_format=".2f",
        style=_STYLE,
        layout=_LAYOUT,
    )


def draw_change_of_variable_1d(state: dict[str, Any]) -> plt.Figure:
    """The 1-D widget's picture (``p_X``, ``f``, ``p_Z``) for a state of
    :func:`change_of_variable_1d_state`; the widget draws with it, so the default state gives
    its first picture where no kernel runs (a notebook read on the web)."""
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.6))
    plot_change_of_variable_1d(state, axes)
    params = ", ".join(f"{k} = {v:g}" for k, v in state["params"].items())
    fig.suptitle(f"Z = f(X) with f(x) = {state['formula']}   ({params})", fontsize=11)
    fig.tight_layout()
    return fig


def build_change_of_variable_1d_widget(map_name: str = "exp") -> widgets.VBox:
    """A dropdown to choose ``f`` (:mod:`coursekit.maps1d`), one slider per parameter of the
    chosen map, and three panels ``p_X``, ``f``, ``p_Z`` that are redrawn on every change.

    Returns:
        a ``VBox`` with attributes ``controls`` (``"map"`` and one slider per parameter),
        ``output``, ``redraw()`` and ``last_state``.
    """
    get_map(map_name)  # validate
    dropdown = widgets.Dropdown(
        options=[(f"{name}: z = {get_map(name).formula}", name) for name in map_names()],
        value=map_name,
        description="map f",
        style=_STYLE,
        layout=_LAYOUT,
    )
    sliders_box = widgets.VBox()
    output = widgets.Output()
    box = widgets.VBox([dropdown, sliders_box, output])
    box.output = output
    box.last_state = {}
    box.controls = {}

    def params() -> dict[str, float]:
        return {k: w.value for k, w in box.controls.items() if k != "map"}

    def redraw(*_: object) -> None:
        state = lambda: change_of_variable_1d_state(dropdown.value, **params())  # noqa: E731
        _redraw_into(box, state, draw_change_of_variable_1d)

    def make_sliders(name: str) -> None:
        for key, w in list(box.controls.items()):
            if key != "map":
                w.unobserve(redraw, names="value")
        sliders = {
            p.name: _slider(p.name, p.default, p.lo, p.hi, p.step, p.description)
            for p in get_map(name).params
        }
        box.controls = {"map": dropdown, **sliders}
        sliders_box.children = tuple(sliders.values())
        for w in sliders.values():
            w.observe(redraw, names="value")

    def on_map(change: dict) -> None:
        make_sliders(change["new"])
        redraw()

    dropdown.observe(on_map, names="value")
    make_sliders(map_name)
    box.redraw = redraw
    redraw()
    return box


# --------------------------------------------------------------------------------------------
# d = 2: the picture of coursekit.transport2d's state (slides eq. 11)
# --------------------------------------------------------------------------------------------


#: Points per axis of the 2-D widget's grid (smaller than the default, for speed).
WIDGET_GRID_N = 101


def draw_transport_2d(state: dict[str, Any]) -> plt.Figure:
    """The 2-D widget's picture (``p_X`` with a grid, ``p_Z`` warped) for a state of
    :func:`transport_2d_state`; the widget draws with it (states with ``WIDGET_GRID_N``)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.4))
    plot_transport_2d(state, axes)
    fig.suptitle(
        f"∫ p_Z on the grid = {state['integral']:.4f},   "
        f"log|det J_f(0)| = {state['log_abs_det']:.3f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def build_transport_2d_widget(map_name: str = "linear") -> widgets.VBox:
    """Sliders for the entries of ``A`` (``"linear"``) or a shear strength (``"shear"``), and
    the panels ``p_X`` with a regular grid / ``p_Z`` with the warped grid, redrawn on change.

    Returns:
        a ``VBox`` with attributes ``controls`` (one slider per parameter), ``output``,
        ``redraw()`` and ``last_state``.
    """
    if map_name not in MAPS_2D:
        raise ValueError(f"map_name: expected one of {list(MAPS_2D)}, got {map_name!r}")
    controls = {k: _slider(k, *v) for k, v in MAPS_2D[map_name].items()}
    output = widgets.Output()
    box = widgets.VBox([*controls.values(), output])
    box.controls = controls
    box.output = output
    box.last_state = {}

    def redraw(*_: object) -> None:
        values = {k: w.value for k, w in controls.items()}
        state = lambda: transport_2d_state(map_name, grid_n=WIDGET_GRID_N, **values)  # noqa: E731
        _redraw_into(box, state, draw_transport_2d)

    for w in controls.values():
        w.observe(redraw, names="value")
    box.redraw = redraw
    redraw()
    return box
