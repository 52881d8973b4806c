"""Value checks (finite entries, pixels in [0, 1]) are switchable; structure checks are not."""

from __future__ import annotations

import pytest
import torch

from coursekit import set_validation, validation, validation_enabled
from coursekit.flows import ImageRealNVP, Logit, RealNVP


def test_value_checks_switch_off_and_back_on():
    flow = RealNVP(2, n_layers=2).double()
    bad = torch.tensor([[float("nan"), 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="x: expected finite values"):
        flow.log_prob(bad)
    assert validation_enabled()
    with validation(False):
        assert not validation_enabled()
        assert torch.isnan(flow.log_prob(bad)).all()  # no check: NaN goes through
        with pytest.raises(ValueError, match=r"x: expected shape \(batch, 2\)"):
            flow.log_prob(torch.zeros(3, 5, dtype=torch.float64))  # shapes: always checked
    assert validation_enabled()
    with pytest.raises(ValueError, match="x: expected values in \\[0, 1\\]"):
        Logit(0.05)(torch.full((1, 3), 2.0))
    set_validation(False)
    try:
        y, _ = Logit(0.05)(torch.full((1, 3), 0.5))
        assert torch.allclose(y, torch.zeros(1, 3))
        Logit(0.05)(torch.full((1, 3), 2.0))  # out of range, not checked
    finally:
        set_validation(True)
    with pytest.raises(ValueError, match="enabled: expected True or False"):
        set_validation("no")  # type: ignore[arg-type]


def test_what_the_switch_buys_a_log_prob_that_compiles_as_one_graph():
    """The value checks read the data (``bool(...)`` of a reduction), which ``torch.compile``
    cannot trace into one graph; with them off (what ``train_mnist --compile`` does) it can.
    torch's "eager" backend checks the tracing without compiling C++."""
    model = ImageRealNVP(image_shape=(1, 4, 4), n_scales=2, hidden=4, n_blocks=1, n_final=1)
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    expected = model.log_prob(x).mean()
    torch._dynamo.reset()
    with pytest.raises(Exception, match="data-dependent"):
        torch.compile(lambda x: model.log_prob(x).mean(), fullgraph=True, backend="eager")(x)
    torch._dynamo.reset()
    with validation(False):
        got = torch.compile(lambda x: model.log_prob(x).mean(), fullgraph=True, backend="eager")(x)
    assert torch.allclose(got, expected, rtol=1e-6, atol=0)


def test_unchecked_image_log_prob_is_the_checked_one():
    model = ImageRealNVP(image_shape=(1, 4, 4), n_scales=2, hidden=4, n_blocks=1, n_final=1)
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    checked = model.log_prob(x)
    with validation(False):
        assert torch.equal(model.log_prob(x), checked)
    with pytest.raises(ValueError, match="x: expected values in \\[0, 1\\]"):
        model.log_prob(x + 1)
