"""Plot helpers of notebooks 01–03: they take/return Axes, label everything, reject bad input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from coursekit.plots.density import (  # noqa: E402
    grid_lines,
    plot_change_of_variable_1d,
    plot_density_1d,
    plot_density_2d,
    plot_grid_cost,
    plot_histogram_vs_density,
    plot_transport_2d,
    plot_warped_grid,
)
from coursekit.transport2d import transport_2d_state  # noqa: E402
from coursekit.widgets import change_of_variable_1d_state  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labelled(ax):
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_plot_density_1d_returns_given_axes():
    _, ax = plt.subplots()
    x = torch.linspace(-3, 3, 50)
    out = plot_density_1d(x, torch.exp(-(x**2)), ax=ax, label="p", title="t", fill=True)
    assert out is ax
    _labelled(ax)
    assert ax.get_legend() is not None and len(ax.lines) == 1
    assert plot_density_1d(np.zeros(3), np.ones(3)).get_legend() is None
    with pytest.raises(ValueError, match="^p:"):
        plot_density_1d(np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match="^x:"):
        plot_density_1d("abc", np.ones(3))


def test_histogram_vs_density():
    rng = np.random.default_rng(0)
    z = np.linspace(-4, 4, 200)
    p = np.exp(-(z**2) / 2) / np.sqrt(2 * np.pi)
    ax = plot_histogram_vs_density(rng.normal(size=20_000), z, p, bins=40, reference=p)
    _labelled(ax)
    assert len(ax.patches) == 40 and len(ax.lines) == 2
    assert len(ax.get_legend().get_texts()) == 3
    heights = np.array([r.get_height() for r in ax.patches])
    centres = np.array([r.get_x() + r.get_width() / 2 for r in ax.patches])
    assert np.max(np.abs(heights - np.exp(-(centres**2) / 2) / np.sqrt(2 * np.pi))) < 0.03
    with pytest.raises(ValueError, match="^density:"):
        plot_histogram_vs_density(np.zeros(5), z, p[:-1])
    with pytest.raises(ValueError, match="^reference:"):
        plot_histogram_vs_density(np.zeros(5), z, p, reference=p[:-1])
    with pytest.raises(ValueError, match="^bins:"):
        plot_histogram_vs_density(np.zeros(5), z, p, bins=0)
    with pytest.raises(ValueError, match="^samples:"):
        plot_histogram_vs_density(np.zeros(0), z, p)


def test_change_of_variable_1d_panels():
    state = change_of_variable_1d_state("exp_neg", n_points=50)
    axes = plot_change_of_variable_1d(state)
    assert len(axes) == 3
    for ax in axes:
        _labelled(ax)
    assert "decreasing" in axes[1].get_title()
    assert axes[2].get_legend() is not None and len(axes[2].lines) == 2
    _, given = plt.subplots(1, 3)
    assert plot_change_of_variable_1d(state, given) == list(given)
    with pytest.raises(ValueError, match="^axes:"):
        plot_change_of_variable_1d(state, given[:2])
    with pytest.raises(ValueError, match="^state:"):
        plot_change_of_variable_1d({"x": 1})


def test_density_2d_and_transport_panels():
    ax = plot_density_2d(np.ones((5, 5)), (-1, 1, -1, 1), title="d", colorbar=True)
    _labelled(ax)
    assert ax.get_images()[0].get_extent() == [-1, 1, -1, 1]
    with pytest.raises(ValueError, match="^extent:"):
        plot_density_2d(np.ones((5, 5)), (0, 1))
    with pytest.raises(ValueError, match="^image:"):
        plot_density_2d(np.ones(5), (0, 1, 0, 1))
    state = transport_2d_state("shear", grid_n=41, n_lines=5)
    axes = plot_transport_2d(state)
    assert len(axes) == 2 and all(len(ax.lines) == 10 for ax in axes)
    for ax in axes:
        _labelled(ax)
    with pytest.raises(ValueError, match="^state:"):
        plot_transport_2d({})


def test_grid_lines_and_warped_grid():
    lines = grid_lines(0.0, 1.0, n_lines=3, n_points=5)
    assert len(lines) == 6 and all(line.shape == (5, 2) for line in lines)
    assert torch.all(lines[0][:, 0] == 0) and torch.all(lines[5][:, 1] == 1)
    with pytest.raises(ValueError, match="^hi:"):
        grid_lines(1.0, 0.0)
    ax = plot_warped_grid(lambda x: 2 * x, lo=-1, hi=1, n_lines=4, n_points=10)
    _labelled(ax)
    assert len(ax.lines) == 8
    xs = np.concatenate([line.get_xdata() for line in ax.lines])
    assert xs.min() == pytest.approx(-2) and xs.max() == pytest.approx(2)
    assert len(plot_warped_grid(None, lo=(0, 1), hi=(1, 3), n_lines=2).lines) == 4
    with pytest.raises(ValueError, match="^f:"):
        plot_warped_grid(3)
    with pytest.raises(ValueError, match="^f:"):
        plot_warped_grid(lambda x: x[:, :1])


def test_grid_cost():
    ax = plot_grid_cost([1, 2, 784], points_per_axis=100)
    _labelled(ax)
    y = ax.lines[0].get_ydata()
    np.testing.assert_allclose(y, [2, 4, 1568])
    assert ax.get_legend() is not None
    with pytest.raises(ValueError, match="^dims:"):
        plot_grid_cost([0, 2])
    with pytest.raises(ValueError, match="points_per_axis"):
        plot_grid_cost([1], points_per_axis=0)
