"""The widgets' static pictures (notebooks 02–03 show them under each widget)."""

from __future__ import annotations

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from coursekit import widgets  # noqa: E402


def test_the_1d_picture_is_the_one_the_widget_draws(monkeypatch):
    drawn = []
    original = widgets.draw_change_of_variable_1d

    def spy(state):
        drawn.append(state)
        return original(state)

    monkeypatch.setattr(widgets, "draw_change_of_variable_1d", spy)
    widgets.build_change_of_variable_1d_widget("exp")
    assert len(drawn) == 1
    static = widgets.change_of_variable_1d_state("exp")
    assert np.array_equal(drawn[0]["p_z"], static["p_z"])
    fig = original(static)
    assert len(fig.axes) == 3
    plt.close(fig)


def test_the_2d_picture_is_the_one_the_widget_draws(monkeypatch):
    drawn = []
    original = widgets.draw_transport_2d

    def spy(state):
        drawn.append(state)
        return original(state)

    monkeypatch.setattr(widgets, "draw_transport_2d", spy)
    widgets.build_transport_2d_widget("shear")
    static = widgets.transport_2d_state("shear", grid_n=widgets.WIDGET_GRID_N)
    assert len(drawn) == 1 and np.array_equal(drawn[0]["p_z"], static["p_z"])
    fig = original(static)
    assert len(fig.axes) >= 2
    plt.close(fig)
