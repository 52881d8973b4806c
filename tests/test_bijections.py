"""Exactness of every vector bijection, in float64 with random non-identity weights.

One table (``CASES``) lists every bijection; each property test runs on every row:
round trip, log-dets of forward and inverse summing to zero, log-det against ``slogdet`` of
the autograd Jacobian (eq. 11-13), gradcheck, a non-zero gradient for every parameter, and
identity at initialisation. Coupling-specific (eq. 12), serialisation, dtype, repr and
input-validation tests follow.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from coursekit.changevar import jacobian
from coursekit.flows import (
    AffineCoupling,
    Bijection,
    FlowSequence,
    Permutation,
    RealNVP,
    standard_normal_log_prob,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TOL = 1e-10


def randomise(module: nn.Module, seed: int, std: float = 0.4) -> nn.Module:
    """Give every parameter random values (the last conditioner layer starts at zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def points(dim: int, n: int = 16, seed: int = 0) -> torch.Tensor:
    return 1.5 * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)).double()


@dataclass(frozen=True)
class Case:
    name: str
    dim: int
    build: Callable[[], Bijection]
    identity_at_init: bool = True


def _coupling(mask: list[int], hidden: tuple[int, ...] = (8, 8)) -> Callable[[], Bijection]:
    return lambda: AffineCoupling(mask, hidden=hidden)


def _sequence() -> Bijection:
    gen = torch.Generator().manual_seed(5)
    return FlowSequence(
        [
            AffineCoupling([1, 0, 1], hidden=(8,)),
            Permutation.random(3, generator=gen),
            AffineCoupling([0, 1, 0], hidden=(8, 8)),
            Permutation([2, 0, 1]),
            AffineCoupling([1, 1, 0], hidden=(6,)),
        ]
    )


def _realnvp(dim: int, permutation: str) -> Callable[[], Bijection]:
    def build() -> Bijection:
        gen = torch.Generator().manual_seed(3)
        flow = RealNVP(dim, n_layers=4, hidden=(8, 8), permutation=permutation, generator=gen)
        return flow.transform

    return build


CASES = [
    Case("coupling d=2 [1,0]", 2, _coupling([1, 0])),
    Case("coupling d=2 [0,1]", 2, _coupling([0, 1])),
    Case("coupling d=3 [1,0,1]", 3, _coupling([1, 0, 1])),
    Case("coupling d=3 [0,0,1] one hidden", 3, _coupling([0, 0, 1], hidden=(5,))),
    Case("coupling d=5 [0,1,1,0,1]", 5, _coupling([0, 1, 1, 0, 1])),
    Case("coupling d=5 [1,0,0,0,0] bool", 5, _coupling([True, False, False, False, False])),
    Case("coupling d=5 no hidden", 5, _coupling([1, 1, 0, 0, 1], hidden=())),
    Case("permutation d=3", 3, lambda: Permutation([2, 0, 1]), identity_at_init=False),
    Case("permutation reverse d=4", 4, lambda: Permutation.reverse(4), identity_at_init=False),
    Case("sequence couplings+permutations", 3, _sequence, identity_at_init=False),
    Case("realnvp d=2 alternate", 2, _realnvp(2, "alternate")),
    Case("realnvp d=3 alternate", 3, _realnvp(3, "alternate")),
    Case("realnvp d=3 random", 3, _realnvp(3, "random"), identity_at_init=False),
    Case("realnvp d=5 random", 5, _realnvp(5, "random"), identity_at_init=False),
]
IDS = [c.name for c in CASES]


def random_bijection(case: Case, seed: int = 1) -> Bijection:
    return randomise(case.build().double(), seed)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_round_trip(case: Case) -> None:
    bij = random_bijection(case)
    x = points(case.dim)
    z, _ = bij.forward(x)
    x_back, _ = bij.inverse(z)
    assert (x_back - x).abs().max() < TOL
    z2 = points(case.dim, seed=1)
    z_back, _ = bij.forward(bij.inverse(z2)[0])
    assert (z_back - z2).abs().max() < TOL


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_log_dets_cancel(case: Case) -> None:
    bij = random_bijection(case)
    x = points(case.dim)
    z, ld_forward = bij.forward(x)
    _, ld_inverse = bij.inverse(z)
    assert ld_forward.shape == ld_inverse.shape == (x.shape[0],)
    assert ld_forward.dtype == torch.float64
    assert (ld_forward + ld_inverse).abs().max() < TOL


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_log_det_matches_autograd_slogdet(case: Case) -> None:
    bij = random_bijection(case)
    x = points(case.dim)
    z, ld_forward = bij.forward(x)
    sign, logabs = torch.linalg.slogdet(jacobian(lambda v: bij.forward(v)[0], x))
    assert bool((sign != 0).all())
    assert (logabs - ld_forward).abs().max() < TOL
    _, ld_inverse = bij.inverse(z)
    logabs_inv = torch.linalg.slogdet(jacobian(lambda v: bij.inverse(v)[0], z)).logabsdet
    assert (logabs_inv - ld_inverse).abs().max() < TOL
    if isinstance(bij, AffineCoupling) or any(isinstance(m, AffineCoupling) for m in bij.modules()):
        # non-trivial weights: the test would be vacuous with a volume-preserving map
        assert ld_forward.abs().max() > 1e-2


class _Direction(nn.Module):
    """``inner.forward`` or ``inner.inverse`` as a module, for ``functional_call``."""

    def __init__(self, inner: Bijection, direction: str) -> None:
        super().__init__()
        self.inner = inner
        self.direction = direction

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner(v) if self.direction == "forward" else self.inner.inverse(v)


@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_inputs_and_parameters(case: Case, direction: str) -> None:
    """Autograd derivatives of ``(output, log_det)`` (input and weights) vs finite differences."""
    wrapper = _Direction(random_bijection(case), direction)
    names = [name for name, _ in wrapper.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in wrapper.parameters())
    if sum(p.numel() for p in params) > 200:  # weights too: only on small layers (fast)
        names, params = [], ()
    x = points(case.dim, n=3).requires_grad_(True)

    def fn(x_in: torch.Tensor, *ps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.func.functional_call(wrapper, dict(zip(names, ps, strict=True)), (x_in,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_parameter_gets_a_gradient_from_the_nll(case: Case) -> None:
    bij = random_bijection(case)
    params = list(bij.parameters())
    if not params:
        assert isinstance(bij, Permutation)
        return
    z, ld = bij.forward(points(case.dim, n=64))
    nll = -(standard_normal_log_prob(z) + ld).mean()
    nll.backward()
    for name, p in bij.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().max() > 0, name


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_identity_at_initialisation(case: Case) -> None:
    bij = case.build().double()
    x = points(case.dim)
    z, ld = bij.forward(x)
    if case.identity_at_init:
        assert torch.equal(z, x)
        assert torch.equal(ld, torch.zeros_like(ld))
        x_back, ld_inv = bij.inverse(x)
        assert torch.equal(x_back, x)
        assert torch.equal(ld_inv, torch.zeros_like(ld_inv))
    else:
        # a permutation of the features with unit volume change
        assert torch.equal(z.sort(dim=1).values, x.sort(dim=1).values)
        assert torch.equal(ld, torch.zeros_like(ld))


# --------------------------------------------------------------------------- eq. (12)

COUPLING_MASKS = [[1, 0], [0, 1], [1, 0, 1], [0, 1, 1, 0, 1], [1, 0, 0, 0, 0]]


@pytest.mark.parametrize("mask", COUPLING_MASKS, ids=str)
def test_coupling_jacobian_is_block_lower_triangular(mask: list[int]) -> None:
    layer = randomise(AffineCoupling(mask, hidden=(8, 8)).double(), seed=2)
    x = points(len(mask), n=8)
    order = torch.cat([layer.kept, layer.changed])
    k = layer.kept.numel()
    jac = jacobian(lambda v: layer(v)[0], x)[:, order][:, :, order]
    s, _ = layer.scale_and_shift(x[:, layer.kept])
    assert torch.equal(jac[:, :k, k:], torch.zeros_like(jac[:, :k, k:]))  # upper right: 0
    eye = torch.eye(k, dtype=torch.float64).expand(x.shape[0], k, k)
    assert torch.equal(jac[:, :k, :k], eye)  # kept block: identity
    changed_block = jac[:, k:, k:]
    assert torch.equal(changed_block, torch.diag_embed(torch.diagonal(changed_block, 0, 1, 2)))
    assert (torch.diagonal(changed_block, 0, 1, 2) - s.exp()).abs().max() < TOL
    assert jac[:, k:, :k].abs().max() > 1e-3  # the lower-left block is where the coupling is
    _, ld = layer(x)
    assert (ld - s.sum(1)).abs().max() < TOL  # eq. (12): log det = Σ s


def test_coupling_log_scale_is_bounded() -> None:
    layer = AffineCoupling([1, 0], hidden=(4,), scale_bound=0.5).double()
    with torch.no_grad():
        layer.conditioner[-1].bias.fill_(100.0)
    s, _ = layer.scale_and_shift(torch.zeros(3, 1, dtype=torch.float64))
    assert bool((s.abs() <= 0.5).all())


def test_custom_conditioner_and_wrong_output_shape() -> None:
    layer = AffineCoupling([1, 0, 0], conditioner=nn.Linear(1, 4)).double()
    z, ld = layer(points(3))
    assert z.shape == (16, 3) and ld.shape == (16,)
    bad = AffineCoupling([1, 0, 0], conditioner=nn.Linear(1, 3)).double()
    with pytest.raises(ValueError, match="conditioner"):
        bad(points(3))


def test_flow_sequence_log_det_is_the_sum_of_layer_log_dets() -> None:
    """Eq. (13): log|det J| of a composition is the sum along the trajectory."""
    seq = randomise(_sequence().double(), seed=4)
    x = points(3)
    steps = seq.trajectory(x)
    total = sum(layer(x_i)[1] for layer, x_i in zip(seq.layers, steps[:-1], strict=True))
    z, ld = seq(x)
    assert torch.equal(steps[-1], z)
    assert (ld - total).abs().max() < TOL
    back = seq.inverse_trajectory(z)
    assert len(back) == len(seq) + 1
    assert (back[-1] - x).abs().max() < TOL


# --------------------------------------------------------------- RealNVP as a model


@pytest.mark.parametrize("permutation", ["alternate", "random"])
def test_state_dict_round_trip_reproduces_log_prob(permutation: str) -> None:
    gen = torch.Generator().manual_seed(0)
    flow = randomise(RealNVP(3, n_layers=4, hidden=(8,), permutation=permutation, generator=gen), 6)
    buffer = io.BytesIO()
    torch.save(flow.state_dict(), buffer)
    buffer.seek(0)
    other_gen = torch.Generator().manual_seed(123)  # different random permutations
    fresh = RealNVP(3, n_layers=4, hidden=(8,), permutation=permutation, generator=other_gen)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    x = points(3).float()
    assert torch.equal(fresh.log_prob(x), flow.log_prob(x))
    assert torch.equal(
        fresh.sample(5, generator=torch.Generator().manual_seed(1)),
        flow.sample(5, generator=torch.Generator().manual_seed(1)),
    )


def test_to_dtype_round_trip_and_sample_follows_dtype() -> None:
    flow = randomise(RealNVP(2, n_layers=2, hidden=(8,)), seed=7)
    assert flow.sample(4).dtype == torch.float32
    flow64 = flow.to(torch.float64)
    assert flow64.sample(4).dtype == torch.float64
    assert flow64.log_prob(points(2)).dtype == torch.float64
    x, _ = flow64.inverse(points(2))
    assert x.dtype == torch.float64
    flow32 = flow64.to(torch.float32)
    samples = flow32.sample(4, temperature=0.5, generator=torch.Generator().manual_seed(0))
    assert samples.dtype == torch.float32 and samples.shape == (4, 2)
    assert flow32.log_prob(samples).dtype == torch.float32


def test_sample_is_the_inverse_of_tempered_noise() -> None:
    flow = randomise(RealNVP(2, n_layers=2, hidden=(8,)).double(), seed=8)
    x = flow.sample(6, temperature=0.7, generator=torch.Generator().manual_seed(2))
    eps = torch.randn(6, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert (flow(x)[0] - 0.7 * eps).abs().max() < TOL


def test_realnvp_structure() -> None:
    flow = RealNVP(4, n_layers=3, hidden=(8,))
    assert len(flow.couplings) == 3
    masks = [c.mask.int().tolist() for c in flow.couplings]
    assert masks == [[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 0, 0]]
    rnd = RealNVP(4, n_layers=3, hidden=(8,), permutation="random")
    assert len(rnd.transform) == 6
    assert len(rnd.couplings) == 3


def test_repr_is_readable() -> None:
    layer = AffineCoupling([1, 0, 1], hidden=(4,))
    text = repr(layer)
    assert "mask=[1, 0, 1]" in text and "dim=3" in text and "scale_bound=3" in text
    assert "perm=[2, 0, 1]" in repr(Permutation([2, 0, 1]))
    flow_text = repr(RealNVP(2, n_layers=2, hidden=(4,)))
    assert "dim=2" in flow_text and "n_layers=2" in flow_text and "mask=[1, 0]" in flow_text
    assert "0x" not in flow_text  # no memory addresses


# ---------------------------------------------------------------- input validation


def _models() -> list[tuple[str, Callable[[torch.Tensor], object]]]:
    layer = AffineCoupling([1, 0, 1], hidden=(4,))
    flow = RealNVP(3, n_layers=2, hidden=(4,))
    seq = FlowSequence([AffineCoupling([1, 0, 1], hidden=(4,)), Permutation([2, 1, 0])])
    return [
        ("x", layer.forward),
        ("z", layer.inverse),
        ("x", Permutation([2, 1, 0]).forward),
        ("x", seq.forward),
        ("z", seq.inverse),
        ("x", flow.log_prob),
        ("x", flow.forward),
        ("z", flow.inverse),
        ("x", flow.trajectory),
        ("z", flow.inverse_trajectory),
    ]


BAD_INPUTS = {
    "wrong feature dimension": (torch.zeros(4, 2), "shape"),
    "no batch dimension": (torch.zeros(3), "shape"),
    "integer dtype": (torch.zeros(4, 3, dtype=torch.int64), "floating"),
    "NaN": (torch.tensor([[0.0, float("nan"), 1.0]]), "finite"),
    "Inf": (torch.tensor([[0.0, float("inf"), 1.0]]), "finite"),
    "not a tensor": ([[0.0, 1.0, 2.0]], "torch.Tensor"),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_inputs_raise_value_error_naming_the_argument(bad: str) -> None:
    value, what = BAD_INPUTS[bad]
    for name, fn in _models():
        with pytest.raises(ValueError, match=rf"^{name}: .*{what}"):
            fn(value)


@pytest.mark.parametrize(
    "mask, what",
    [
        ([1, 1, 1], "keeps everything"),
        ([0, 0], "keeps nothing"),
        ([1, 2, 0], "0/1"),
        ([], "non-empty"),
        ([[1, 0], [0, 1]], "1-D"),
    ],
)
def test_bad_masks(mask: list, what: str) -> None:
    with pytest.raises(ValueError, match=rf"^mask: .*{what}"):
        AffineCoupling(mask)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"scale_bound": 0.0}, "scale_bound"),
        ({"scale_bound": float("nan")}, "scale_bound"),
        ({"hidden": (0,)}, "hidden"),
        ({"hidden": 64}, "hidden"),
    ],
)
def test_bad_coupling_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: "):
        AffineCoupling([1, 0], **kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"dim": 1}, "dim"),
        ({"dim": 0}, "dim"),
        ({"dim": -3}, "dim"),
        ({"dim": 2.5}, "dim"),
        ({"dim": "2"}, "dim"),
        ({"dim": True}, "dim"),
        ({"dim": 2, "n_layers": 0}, "n_layers"),
        ({"dim": 2, "permutation": "reverse"}, "permutation"),
        ({"dim": 2, "scale_bound": -1.0}, "scale_bound"),
    ],
)
def test_bad_realnvp_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: "):
        RealNVP(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n": 0}, "n"),
        ({"n": -1}, "n"),
        ({"n": 2.5}, "n"),
        ({"n": True}, "n"),
        ({"n": 3, "temperature": 0.0}, "temperature"),
        ({"n": 3, "temperature": -1.0}, "temperature"),
        ({"n": 3, "temperature": float("nan")}, "temperature"),
        ({"n": 3, "temperature": float("inf")}, "temperature"),
        ({"n": 3, "temperature": "hot"}, "temperature"),
    ],
)
def test_bad_sample_arguments(kwargs: dict, name: str) -> None:
    flow = RealNVP(2, n_layers=2, hidden=(4,))
    with pytest.raises(ValueError, match=rf"^{name}: "):
        flow.sample(**kwargs)


@pytest.mark.parametrize("perm", [[0, 0, 1], [1, 2, 3], [], [[0, 1]]], ids=str)
def test_bad_permutations(perm: list) -> None:
    with pytest.raises(ValueError, match="^perm: "):
        Permutation(perm)


def test_bad_sequences() -> None:
    with pytest.raises(ValueError, match="^layers: "):
        FlowSequence([])
    with pytest.raises(ValueError, match="^layers: "):
        FlowSequence([nn.Linear(2, 2)])  # type: ignore[list-item]


@pytest.mark.parametrize("mask", [[1, 0], [0, 1], [1, 1, 0, 0, 0], [0, 0, 0, 1, 1]], ids=str)
def test_block_masks_take_the_slicing_path_and_agree_with_gathering(mask: list[int]) -> None:
    layer = randomise(AffineCoupling(mask, hidden=(8,)).double(), seed=2)
    assert layer._blocks in ("kept_first", "changed_first")
    x = points(len(mask))
    z, ld = layer(x)
    layer._blocks = None  # the general gather path
    z_gather, ld_gather = layer(x)
    assert torch.equal(z, z_gather) and torch.equal(ld, ld_gather)
