"""Widget callbacks are plain functions: test the states they compute and drive the builders
the way a student's slider would, without a browser."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from coursekit.maps1d import map_names
from coursekit.transport2d import MAPS_2D, transport_2d_state
from coursekit.widgets import (
    build_change_of_variable_1d_widget,
    build_transport_2d_widget,
    change_of_variable_1d_state,
)


@pytest.mark.parametrize("name", map_names())
def test_1d_state_matches_scipy(name):
    s = change_of_variable_1d_state(name, n_points=101)
    for key in ("x", "p_x", "f_x", "z", "p_z", "p_z_exact"):
        assert s[key].shape == (101,) and s[key].dtype == np.float64, key
    assert s["max_rel_error"] <= 1e-10
    np.testing.assert_allclose(s["p_z"], s["p_z_exact"], rtol=1e-10)
    assert np.all(np.diff(s["z"]) > 0) and np.all(s["p_x"] >= 0)
    # f on the x grid is monotone in the direction the state reports
    assert np.all(np.diff(s["f_x"]) > 0) == s["increasing"]


def test_1d_state_parameters_and_values():
    s = change_of_variable_1d_state("affine", mu=1.0, sigma=0.5, a=-2.0, b=3.0)
    assert s["params"] == {"mu": 1.0, "sigma": 0.5, "a": -2.0, "b": 3.0}
    assert not s["increasing"]
    np.testing.assert_allclose(s["p_z"], stats.norm(1.0, 1.0).pdf(s["z"]), rtol=1e-12)
    np.testing.assert_allclose(s["f_x"], -2.0 * s["x"] + 3.0)
    np.testing.assert_allclose(s["p_x"], stats.norm(1.0, 0.5).pdf(s["x"]), rtol=1e-12)


def test_1d_state_rejects_bad_input():
    with pytest.raises(ValueError, match="^a:"):
        change_of_variable_1d_state("affine", a=0.0)
    with pytest.raises(ValueError, match="name"):
        change_of_variable_1d_state("cube")
    with pytest.raises(ValueError, match="n_points"):
        change_of_variable_1d_state("exp", n_points=2)
    with pytest.raises(ValueError, match="^a:"):
        change_of_variable_1d_state("exp", a=1.0)


def test_1d_widget_redraws_on_slider_and_map_change():
    box = build_change_of_variable_1d_widget("exp")
    assert set(box.controls) == {"map", "mu", "sigma"}
    assert all(w.description for w in box.controls.values())
    assert box.children[-1] is box.output
    assert box.last_state["params"] == {"mu": 0.0, "sigma": 0.5}
    box.controls["mu"].value = 1.0
    assert box.last_state["params"]["mu"] == 1.0
    box.controls["map"].value = "affine"
    assert set(box.controls) == {"map", "mu", "sigma", "a", "b"}
    assert box.last_state["map"] == "affine" and box.last_state["increasing"]
    box.controls["a"].value = -1.0
    assert not box.last_state["increasing"]
    box.controls["a"].value = 0.0  # not a bijection: a message, no exception
    assert "error" in box.last_state and box.last_state["error"].startswith("a:")
    with pytest.raises(ValueError):
        build_change_of_variable_1d_widget("nope")


def test_2d_linear_state_matches_multivariate_normal():
    s = transport_2d_state("linear", a11=1.2, a12=0.6, a21=-0.3, a22=0.8, grid_n=81)
    assert s["p_x"].shape == (81, 81) and s["p_z"].shape == (81, 81)
    assert s["max_rel_error"] <= 1e-10
    assert abs(s["integral"] - 1) < 1e-2
    assert s["log_abs_det"] == pytest.approx(np.log(1.2 * 0.8 + 0.6 * 0.3), rel=1e-12)
    assert len(s["lines_x"]) == len(s["lines_z"]) == 2 * 9
    a = np.array([[1.2, 0.6], [-0.3, 0.8]])
    np.testing.assert_allclose(s["lines_z"][3], s["lines_x"][3] @ a.T, atol=1e-12)


def test_2d_shear_state_integrates_to_one():
    s = transport_2d_state("shear", strength=0.3, lim=7.0, grid_n=141)
    assert s["max_rel_error"] is None
    assert s["log_abs_det"] == pytest.approx(0.0, abs=1e-12)
    assert abs(s["integral"] - 1) < 1e-4


def test_2d_state_rejects_bad_input():
    with pytest.raises(ValueError, match="^A:"):
        transport_2d_state("linear", a11=1.0, a12=2.0, a21=0.5, a22=1.0)
    with pytest.raises(ValueError, match="map_name"):
        transport_2d_state("polar")
    with pytest.raises(ValueError, match="^strength:"):
        transport_2d_state("linear", strength=1.0)
    with pytest.raises(ValueError, match="lim"):
        transport_2d_state("linear", lim=-1.0)


@pytest.mark.parametrize("name", list(MAPS_2D))
def test_2d_widget_redraws_on_slider(name):
    box = build_transport_2d_widget(name)
    assert set(box.controls) == set(MAPS_2D[name])
    assert all(w.description for w in box.controls.values())
    key = next(iter(box.controls))
    before = box.last_state["p_z"].copy()
    box.controls[key].value = box.controls[key].value - 0.3
    assert box.last_state["params"][key] == pytest.approx(box.controls[key].value)
    assert not np.allclose(before, box.last_state["p_z"])
    with pytest.raises(ValueError):
        build_transport_2d_widget("nope")


def test_2d_widget_reports_singular_matrix():
    box = build_transport_2d_widget("linear")
    box.controls["a11"].value = 0.0
    box.controls["a21"].value = 0.0  # first column zero: det A = 0
    assert box.last_state["error"].startswith("A:")
