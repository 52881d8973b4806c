"""The 1-D map catalogue: bijections, exact laws of Z = f(X), eq. (9) to float64 precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from coursekit.changevar import derivative, pushforward_density
from coursekit.maps1d import MAPS, Map1D, get_map, map_names

NAMES = map_names()


def _settings(m: Map1D) -> list[dict[str, float]]:
    """Defaults and both ends of every slider range (a = 0 skipped: not a bijection)."""
    lo = {p.name: p.lo for p in m.params}
    hi = {p.name: p.hi for p in m.params}
    return [{}, lo, hi]


def test_catalogue_has_the_required_maps():
    assert {"exp", "affine", "exp_neg", "normal_cdf", "logit"} <= set(NAMES)
    assert len(NAMES) >= 5
    assert not MAPS["exp_neg"].is_increasing()
    assert MAPS["affine"].is_increasing(a=2.0) and not MAPS["affine"].is_increasing(a=-2.0)


@pytest.mark.parametrize("name", NAMES)
def test_inverse_undoes_forward(name):
    m = get_map(name)
    for params in _settings(m):
        x, z = m.sample(500, generator=torch.Generator().manual_seed(0), **params)
        assert torch.allclose(m.inverse(z, **params), x, rtol=1e-10, atol=1e-12)
        assert torch.allclose(m.forward(x, **params), z)


@pytest.mark.parametrize("name", NAMES)
def test_pushforward_matches_scipy(name):
    m = get_map(name)
    for params in _settings(m):
        lo, hi = m.z_range(q=1e-4, **params)
        z = torch.linspace(lo, hi, 300, dtype=torch.float64)
        p_z = pushforward_density(
            lambda x, p=params: m.base_log_prob(x, **p), lambda t, p=params: m.inverse(t, **p), z
        )
        exact = m.target_dist(**params).pdf(z.numpy())
        assert np.max(np.abs(p_z.numpy() - exact) / exact) <= 1e-10, params


@pytest.mark.parametrize("name", NAMES)
def test_monotonicity_flag_matches_the_derivative(name):
    m = get_map(name)
    for params in _settings(m):
        x, _ = m.sample(200, generator=torch.Generator().manual_seed(1), **params)
        x = x.clamp(1e-6, 1 - 1e-6) if m.base == "uniform" else x
        sign = derivative(lambda t, p=params: m.forward(t, **p), x)
        assert bool((sign > 0).all()) == m.is_increasing(**params)
        assert bool((sign < 0).all()) == (not m.is_increasing(**params))


@pytest.mark.parametrize("name", NAMES)
def test_samples_follow_the_target_law(name):
    m = get_map(name)
    _, z = m.sample(4000, generator=torch.Generator().manual_seed(2))
    result = stats.kstest(z.numpy(), m.target_dist().cdf)
    assert result.pvalue > 1e-3


def test_base_log_prob():
    m = get_map("exp")
    x = torch.linspace(-2, 2, 11, dtype=torch.float64)
    want = stats.norm(0.3, 0.7).logpdf(x.numpy())
    got = m.base_log_prob(x, mu=0.3, sigma=0.7).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-13)
    u = get_map("logit").base_log_prob(torch.tensor([-0.5, 0.5, 1.5], dtype=torch.float64))
    assert u[1] == 0 and math.isinf(u[0]) and math.isinf(u[2]) and u[0] < 0


def test_ranges_and_distributions():
    m = get_map("exp")
    lo, hi = m.x_range(q=0.025, mu=1.0, sigma=0.5)
    assert lo == pytest.approx(1.0 - 1.959964 * 0.5, abs=1e-5)
    assert hi == pytest.approx(1.0 + 1.959964 * 0.5, abs=1e-5)
    zlo, zhi = m.z_range(q=0.025, mu=1.0, sigma=0.5)
    assert zlo == pytest.approx(math.exp(lo), rel=1e-9) and zhi == pytest.approx(math.exp(hi))
    assert m.base_dist().mean() == 0
    assert "lognormal" in repr(m)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="name"):
        get_map("nope")
    with pytest.raises(ValueError, match="^a:"):
        get_map("affine").forward(torch.zeros(3, dtype=torch.float64), a=0.0)
    with pytest.raises(ValueError, match="^sigma:"):
        get_map("exp").resolve(sigma=-1.0)
    with pytest.raises(ValueError, match="^scale:"):
        get_map("logit").resolve(scale=0.0)
    with pytest.raises(ValueError, match="^bogus:"):
        get_map("exp").resolve(bogus=1.0)
    with pytest.raises(ValueError, match="^mu:"):
        get_map("exp").resolve(mu=float("nan"))
    with pytest.raises(ValueError, match="^x:"):
        get_map("exp").forward(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="^z:"):
        get_map("exp").inverse([1.0])
    with pytest.raises(ValueError, match="^n:"):
        get_map("exp").sample(0)
