"""Tests of the flow plotting helpers (coursekit.plots.flows) and the transport animation."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from coursekit.animation import (  # noqa: E402
    FIXED_ID,
    animation_to_html,
    interpolate_steps,
    transport_animation,
)
from coursekit.datasets import four_modes  # noqa: E402
from coursekit.flows import RealNVP  # noqa: E402
from coursekit.grid import log_prob_on_grid, make_grid  # noqa: E402
from coursekit.plots.flows import (  # noqa: E402
    plot_density,
    plot_jacobian,
    plot_losses,
    plot_samples,
    plot_transport,
)
from coursekit.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_jacobian_draws_the_matrix_blocks_and_values():
    jac = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-0.25, 0.0, 0.5]])
    fig, ax = plt.subplots()
    out = plot_jacobian(jac, ax=ax, kept=1, title="J")
    assert out is ax
    image = ax.images[0]
    np.testing.assert_allclose(np.asarray(image.get_array()), jac.numpy())
    # diverging colour map centred at 0: white for the zero entries
    assert image.norm.vcenter == 0.0 and image.norm.vmax == pytest.approx(2.0)
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["1.00", "0", "0", "0.50", "2.00", "0", "-0.25", "0", "0.50"]
    assert len(ax.lines) == 2  # the block separators
    assert ax.get_title() == "J" and ax.get_xlabel() and ax.get_ylabel()


def test_plot_jacobian_rejects_bad_input():
    with pytest.raises(ValueError, match="jac"):
        plot_jacobian(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="kept"):
        plot_jacobian(torch.eye(3), kept=3)
    with pytest.raises(ValueError, match="labels"):
        plot_jacobian(torch.eye(3), labels=["a", "b"])
    with pytest.raises(ValueError, match="jac"):
        plot_jacobian([[1.0]])


def test_plot_density_from_callable_and_from_values_agree():
    grid = make_grid(-4, 4, 20)
    target = four_modes()
    ax1 = plot_density(target.log_prob, grid)
    values = log_prob_on_grid(target.log_prob, grid)
    ax2 = plot_density(values, grid, log=True, colorbar=True)
    img1 = np.asarray(ax1.images[0].get_array())
    img2 = np.asarray(ax2.images[0].get_array())
    assert img1.shape == (20, 20)
    np.testing.assert_allclose(img1, np.exp(img2), rtol=1e-12)
    np.testing.assert_allclose(img1, grid.as_image(values.exp()).numpy(), rtol=1e-12)
    assert tuple(ax1.images[0].get_extent()) == grid.extent
    # row 0 is y = lo (origin="lower"): the mode at (-2, -2) is in the lower-left quarter
    assert img1[:10, :10].sum() == pytest.approx(img1[10:, 10:].sum(), rel=1e-6)


def test_plot_density_uses_the_model_dtype_for_float32_modules():
    model = RealNVP(2, n_layers=2, hidden=(8,))
    grid = make_grid(-3, 3, 10)
    ax = plot_density(model.log_prob, grid)  # float64 grid, float32 model: must not fail
    img = np.asarray(ax.images[0].get_array())
    # an untrained RealNVP is the identity: its density is N(0, I)
    expected = np.exp(-0.5 * (grid.points**2).sum(1).numpy()) / (2 * np.pi)
    np.testing.assert_allclose(img.ravel(), expected, rtol=1e-5)


def test_plot_density_rejects_wrong_values():
    grid = make_grid(-1, 1, 5)
    with pytest.raises(ValueError, match="density"):
        plot_density(torch.zeros(24), grid)
    with pytest.raises(ValueError, match="density"):
        plot_density("not a density", grid)


def test_plot_samples_scatters_points_with_legend():
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    ax = plot_samples(x, label="data", lim=3.0)
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.asarray(offsets), x.numpy(), rtol=1e-6)
    assert ax.get_xlim() == (-3.0, 3.0)
    assert ax.get_legend() is not None
    with pytest.raises(ValueError, match="x"):
        plot_samples(torch.zeros(5, 3))


def test_plot_transport_one_panel_per_step():
    model = RealNVP(2, n_layers=3, hidden=(8,))
    x = torch.randn(30, 2, generator=torch.Generator().manual_seed(1))
    steps = model.trajectory(x)
    axes = plot_transport(steps, colors=torch.arange(30.0))
    assert len(axes) == 4
    assert [ax.get_title() for ax in axes] == ["$x_0 = x$", "$x_{1}$", "$x_{2}$", "$x_{3} = z$"]
    for ax, s in zip(axes, steps, strict=True):
        np.testing.assert_allclose(
            np.asarray(ax.collections[0].get_offsets()), s.detach().numpy(), rtol=1e-6
        )
    _, given = plt.subplots(1, 4)
    assert plot_transport(steps, axes=given, names=list("abcd"))[3] is given[3]
    with pytest.raises(ValueError, match="axes"):
        plot_transport(steps, axes=given[:2])
    with pytest.raises(ValueError, match="names"):
        plot_transport(steps, names=["a"])
    with pytest.raises(ValueError, match="steps"):
        plot_transport([])


def test_plot_losses_smooths_and_draws_reference():
    history = History(losses=[float(v) for v in range(100)])
    ax = plot_losses({"a": history, "b": [1.0, 2.0, 3.0]}, window=10, reference=0.5)
    line_a, line_b, ref = ax.lines
    np.testing.assert_allclose(line_a.get_ydata(), np.arange(91) + 4.5)
    np.testing.assert_allclose(line_a.get_xdata(), np.arange(10, 101))
    np.testing.assert_allclose(line_b.get_ydata(), [1.0, 2.0, 3.0])  # shorter than the window
    np.testing.assert_allclose(ref.get_ydata(), [0.5, 0.5])
    assert len(ax.get_legend().get_texts()) == 3
    single = plot_losses([3.0, 2.0, 1.0])
    assert single.get_legend() is None
    with pytest.raises(ValueError, match="window"):
        plot_losses([1.0], window=0)
    with pytest.raises(ValueError, match="histories"):
        plot_losses({})


def test_interpolate_steps_is_linear_between_layers():
    a, b, c = torch.zeros(4, 2), torch.ones(4, 2), 3 * torch.ones(4, 2)
    frames = interpolate_steps([a, b, c], frames_per_step=2)
    assert len(frames) == 5
    np.testing.assert_allclose([f[0, 0] for f in frames], [0.0, 0.5, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="steps"):
        interpolate_steps([a])
    with pytest.raises(ValueError, match="steps"):
        interpolate_steps([a, torch.zeros(3, 2)])
    with pytest.raises(ValueError, match="frames_per_step"):
        interpolate_steps([a, b], frames_per_step=0)


@pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")
def test_animation_html_is_deterministic_and_small():
    model = RealNVP(2, n_layers=2, hidden=(8,))
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(2))
    steps = model.trajectory(x)

    def html():
        anim = transport_animation(steps, colors=torch.arange(40.0), size_inches=1.5, dpi=30)
        return animation_to_html(anim)

    first, second = html(), html()
    assert first == second  # no random ids left
    assert FIXED_ID in first and "_anim_img" in first
    assert first.count("data:image/png;base64") == 5  # 2 steps x 2 frames + the last
    assert len(first) < 200_000
    with pytest.raises(ValueError, match="colors"):
        transport_animation(steps, colors=torch.arange(3.0))
    anim = transport_animation(steps, size_inches=1.5, dpi=30)
    with pytest.raises(ValueError, match="default_mode"):
        animation_to_html(anim, default_mode="bounce")
    assert FIXED_ID in animation_to_html(anim)  # rendered after all (no "deleted" warning)
