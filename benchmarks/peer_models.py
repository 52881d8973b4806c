"""The same flow built with coursekit and with each peer library (zuko, nflows, normflows).

Every builder returns a :class:`torch.nn.Module` with one interface, so that one training
loop, one KL estimate and one timing routine serve every library:

* ``log_prob(x) -> (batch,)``: the model's log-density of the *data* ``x`` in nats (each
  adapter checks the library's direction convention, see below);
* ``sample(n) -> (n, *event_shape)``: draws without gradients.

Direction conventions (the slides', and coursekit's, ``f`` maps data ``x`` to noise ``z``):

* zuko: ``Flow.transform`` maps data to noise; ``flow().log_prob(x)`` is the data density.
* nflows: ``Flow._transform`` maps data to noise; ``Flow.log_prob(x)`` is the data density.
* normflows: the layers map noise to data (``forward`` = generation, like
  ``torch.distributions``); ``NormalizingFlow.log_prob(x)`` runs the layers' ``inverse``
  from ``x`` back to the base, so it is the data density too.

Toy models (2-D): RealNVP-style affine couplings with alternating halves, matched to
``coursekit.flows.RealNVP``'s defaults read *at run time* from its signature (number of
couplings, conditioner widths). Every library gets the *same* conditioner network,
``coursekit.flows.mlp(k, 2(d - k), hidden)`` (SiLU, zero-initialised last layer), so the
comparison is about each library's coupling machinery and not about its default MLP. Each
library keeps its own parametrisation of the scale (library design):

* coursekit: ``exp(B·tanh(ŝ/B))`` with ``B = scale_bound``;
* zuko: ``exp(ŝ / (1 + |ŝ / log 1e-3|))`` (soft-clipped log-scale);
* nflows: ``sigmoid(ŝ + 2) + 1e-3`` (a scale in (0, 1.001) in the data → noise direction);
* normflows: ``exp(ŝ)`` (unbounded, ``AffineCouplingBlock(scale_map="exp")``).

Image models (1×28×28): see :class:`ImageConfig` and :func:`image_models`.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from coursekit.flows import RealNVP, mlp

PEERS = ("zuko", "nflows", "normflows")
LIBRARIES = ("coursekit", *PEERS)


def library_version(name: str) -> str | None:
    """The installed version of library ``name``, or ``None`` when it cannot be imported."""
    try:
        module = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None
    version = getattr(module, "__version__", None)
    if version is None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            version = dist_version(name)
        except PackageNotFoundError:
            version = "?"
    return str(version)


def available_libraries() -> dict[str, str]:
    """``{library: version}`` for coursekit and every importable peer."""
    out = {}
    for name in LIBRARIES:
        version = library_version(name)
        if version is not None:
            out[name] = version
    return out


# --------------------------------------------------------------------------- toy (2-D)


@dataclass(frozen=True)
class ToyConfig:
    """Architecture shared by every library's 2-D flow."""

    dim: int = 2
    n_layers: int = 8
    hidden: tuple[int, ...] = (128, 128)
    scale_bound: float = 3.0

    @classmethod
    def from_coursekit(cls, dim: int = 2) -> ToyConfig:
        """Read ``n_layers``, ``hidden`` and ``scale_bound`` from ``RealNVP``'s defaults now."""
        params = inspect.signature(RealNVP.__init__).parameters
        return cls(
            dim=dim,
            n_layers=int(params["n_layers"].default),
            hidden=tuple(int(h) for h in params["hidden"].default),
            scale_bound=float(params["scale_bound"].default),
        )

    def describe(self) -> str:
        return (
            f"{self.n_layers} affine couplings on d={self.dim}, alternating halves, "
            f"conditioner MLP {self.dim // 2}→{'→'.join(map(str, self.hidden))}→"
            f"{2 * (self.dim - self.dim // 2)} (SiLU, zero-initialised last layer)"
        )


class _Adapter(nn.Module):
    """Common interface around a peer model: ``log_prob(x)`` and ``sample(n)``."""

    def __init__(self, model: nn.Module, event_shape: Sequence[int]):
        super().__init__()
        self.model = model
        self.event_shape = tuple(event_shape)

    def log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        raise NotImplementedError


class ZukoAdapter(_Adapter):
    """zuko ``Flow``: ``flow()`` builds the distribution ``p_θ`` (transform = data → noise)."""

    def log_prob(self, x: Tensor) -> Tensor:
        return self.model().log_prob(x)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.model().sample((n,))


class NflowsAdapter(_Adapter):
    """nflows ``Flow``: ``_transform`` maps data → noise."""

    def log_prob(self, x: Tensor) -> Tensor:
        return self.model.log_prob(x)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.model.sample(n)


class NormflowsAdapter(_Adapter):
    """normflows ``NormalizingFlow``: layers map noise → data, ``log_prob`` inverts them."""

    def log_prob(self, x: Tensor) -> Tensor:
        return self.model.log_prob(x)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.model.sample(n)[0]


class CoursekitAdapter(_Adapter):
    """coursekit ``Flow`` (already has ``log_prob`` and ``sample``); kept thin for timing."""

    def log_prob(self, x: Tensor) -> Tensor:
        return self.model.log_prob(x)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.model.sample(n)


class _NflowsNet(nn.Module):
    """nflows calls ``transform_net(inputs, context)``; forward the inputs only."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.net(x)


def _halves(dim: int, i: int) -> Tensor:
    """Boolean mask of the *kept* coordinates of coupling ``i``: first half, then second."""
    half = (dim + 1) // 2
    first = torch.arange(dim) < half
    return first if i % 2 == 0 else ~first


def coursekit_toy(cfg: ToyConfig) -> nn.Module:
    """``coursekit.flows.RealNVP`` with the config (its own defaults when read from it)."""
    return CoursekitAdapter(
        RealNVP(cfg.dim, n_layers=cfg.n_layers, hidden=cfg.hidden, scale_bound=cfg.scale_bound),
        (cfg.dim,),
    )


def zuko_toy(cfg: ToyConfig) -> nn.Module:
    """``zuko.flows.RealNVP`` couplings (affine ``MonotonicAffineTransform``), shared MLP."""
    import zuko

    transforms = []
    for i in range(cfg.n_layers):
        kept = _halves(cfg.dim, i)  # zuko: mask = the conditioning features x_a
        t = zuko.flows.GeneralCouplingTransform(cfg.dim, mask=kept)
        t.hyper = mlp(int(kept.sum()), 2 * int((~kept).sum()), cfg.hidden)
        transforms.append(t)
    base = zuko.flows.UnconditionalDistribution(
        zuko.distributions.DiagNormal,
        torch.zeros(cfg.dim),
        torch.ones(cfg.dim),
        buffer=True,
    )
    return ZukoAdapter(zuko.flows.Flow(transforms, base), (cfg.dim,))


def nflows_toy(cfg: ToyConfig) -> nn.Module:
    """``nflows`` ``AffineCouplingTransform`` stack with a ``StandardNormal`` base."""
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.coupling import AffineCouplingTransform

    layers = []
    for i in range(cfg.n_layers):
        kept = _halves(cfg.dim, i)
        # nflows: mask > 0 = transformed features, mask <= 0 = identity (conditioning).
        layers.append(
            AffineCouplingTransform(
                (~kept).int(),
                transform_net_create_fn=lambda k, out: _NflowsNet(mlp(k, out, cfg.hidden)),
            )
        )
    return NflowsAdapter(Flow(CompositeTransform(layers), StandardNormal([cfg.dim])), (cfg.dim,))


def normflows_toy(cfg: ToyConfig) -> nn.Module:
    """``normflows`` ``AffineCouplingBlock`` + ``Permute(mode="swap")``, the README RealNVP."""
    import normflows as nf

    if cfg.dim % 2:
        raise ValueError(f"cfg.dim: normflows' swap permutation needs an even dim, got {cfg.dim}")
    half = cfg.dim // 2
    flows = []
    for _ in range(cfg.n_layers):
        flows.append(nf.flows.AffineCouplingBlock(mlp(half, 2 * half, cfg.hidden)))
        flows.append(nf.flows.Permute(cfg.dim, mode="swap"))
    base = nf.distributions.DiagGaussian(cfg.dim, trainable=False)
    return NormflowsAdapter(nf.NormalizingFlow(base, flows), (cfg.dim,))


TOY_BUILDERS: dict[str, Callable[[ToyConfig], nn.Module]] = {
    "coursekit": coursekit_toy,
    "zuko": zuko_toy,
    "nflows": nflows_toy,
    "normflows": normflows_toy,
}


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageConfig:
    """Image architecture shared by every library: squeeze, then channel couplings.

    ``1×28×28 → 4×14×14`` by the squeeze, then ``n_couplings`` affine couplings that keep
    two of the four channels (alternating halves) and predict a log-scale and a shift for
    the other two. Every library gets the same conditioner, coursekit's
    ``ConvConditioner(2, 4, hidden, n_blocks)`` (3×3 convs, residual blocks, SiLU,
    zero-initialised last conv); ``hidden``, ``n_blocks`` and ``scale_bound`` are read from
    ``ImageRealNVP``'s defaults by :meth:`from_coursekit`. This is the part of coursekit's
    multi-scale RealNVP that every peer can express with its own layers (zuko has no image
    flow; nflows has no checkerboard mask), so it is the "same architecture" comparison.
    """

    channels: int = 1
    size: int = 28
    n_couplings: int = 4
    hidden_channels: int = 64
    n_blocks: int = 2
    scale_bound: float = 3.0

    @classmethod
    def from_coursekit(cls, n_couplings: int = 4) -> ImageConfig:
        try:
            from coursekit.flows.image import ImageRealNVP
        except ImportError:
            return cls(n_couplings=n_couplings)
        params = inspect.signature(ImageRealNVP.__init__).parameters
        hidden = params["hidden"].default
        return cls(
            n_couplings=n_couplings,
            hidden_channels=int(hidden if isinstance(hidden, int) else hidden[0]),
            n_blocks=int(params["n_blocks"].default),
            scale_bound=float(params["scale_bound"].default),
        )

    def describe(self) -> str:
        c = 4 * self.channels
        return (
            f"squeeze {self.channels}×{self.size}×{self.size} → {c}×{self.size // 2}×"
            f"{self.size // 2}, {self.n_couplings} channel couplings (alternating halves), "
            f"conditioner ConvConditioner({c // 2}→{self.hidden_channels} channels, "
            f"{self.n_blocks} residual blocks →{c})"
        )


def image_conditioner(in_channels: int, out_channels: int, cfg: ImageConfig) -> nn.Module:
    """coursekit's ``ConvConditioner`` when available, else an equivalent local one."""
    try:
        from coursekit.flows.nets import ConvConditioner
    except ImportError:
        return _conv_conditioner(in_channels, out_channels, cfg.hidden_channels)
    return ConvConditioner(in_channels, out_channels, cfg.hidden_channels, cfg.n_blocks)


def _conv_conditioner(in_channels: int, out_channels: int, hidden: int) -> nn.Sequential:
    """``3×3 conv → SiLU → 3×3 conv → SiLU → 3×3 conv`` with the last conv zero-initialised."""
    last = nn.Conv2d(hidden, out_channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=1),
        nn.SiLU(),
        nn.Conv2d(hidden, hidden, 3, padding=1),
        nn.SiLU(),
        last,
    )


def coursekit_image_same(cfg: ImageConfig) -> tuple[nn.Module | None, str]:
    """The shared image architecture from coursekit's layers (``Squeeze``, ``ChannelCoupling``)."""
    try:
        from coursekit.flows.image_coupling import ChannelCoupling, Squeeze, squeeze, unsqueeze
    except ImportError as exc:
        return None, f"coursekit.flows.image not importable ({exc})"
    from coursekit.flows import Bijection, Flow, FlowSequence

    class Unsqueeze(Bijection):
        # coursekit's Flow draws its noise in the data's shape: end on 1×28×28 (a copy).
        def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            return unsqueeze(x), x.new_zeros(x.shape[0])

        def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
            return squeeze(z), z.new_zeros(z.shape[0])

    c, s = 4 * cfg.channels, cfg.size // 2
    layers = [Squeeze()] + [
        ChannelCoupling(
            (c, s, s),
            hidden=cfg.hidden_channels,
            n_blocks=cfg.n_blocks,
            parity=i % 2,
            scale_bound=cfg.scale_bound,
        )
        for i in range(cfg.n_couplings)
    ]
    layers.append(Unsqueeze())
    model = Flow(FlowSequence(layers), event_shape=(cfg.channels, cfg.size, cfg.size))
    return CoursekitAdapter(model, model.event_shape), cfg.describe()


def nflows_image(cfg: ImageConfig) -> nn.Module:
    """``SqueezeTransform`` then channel ``AffineCouplingTransform``s (nflows' image path)."""
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.coupling import AffineCouplingTransform
    from nflows.transforms.reshape import SqueezeTransform

    c = 4 * cfg.channels
    s = cfg.size // 2
    layers: list[nn.Module] = [SqueezeTransform()]
    for i in range(cfg.n_couplings):
        kept = _halves(c, i)
        layers.append(
            AffineCouplingTransform(
                (~kept).int(),
                transform_net_create_fn=lambda k, out: _NflowsNet(image_conditioner(k, out, cfg)),
            )
        )
    flow = Flow(CompositeTransform(layers), StandardNormal([c, s, s]))
    return NflowsAdapter(flow, (cfg.channels, cfg.size, cfg.size))


def normflows_image(cfg: ImageConfig) -> nn.Module:
    """normflows: ``AffineCouplingBlock(split_mode="channel")`` + swap, then ``Squeeze``.

    normflows layers run noise → data, so the ``Squeeze`` (whose ``forward`` un-squeezes
    4×14×14 → 1×28×28) comes last and the base lives on 4×14×14.
    """
    import normflows as nf

    c = 4 * cfg.channels
    s = cfg.size // 2
    flows: list[nn.Module] = []
    for _ in range(cfg.n_couplings):
        flows.append(
            nf.flows.AffineCouplingBlock(image_conditioner(c // 2, c, cfg), split_mode="channel")
        )
        flows.append(nf.flows.Permute(c, mode="swap"))
    flows.append(nf.flows.Squeeze())
    base = nf.distributions.DiagGaussian((c, s, s), trainable=False)
    return NormflowsAdapter(nf.NormalizingFlow(base, flows), (cfg.channels, cfg.size, cfg.size))


def coursekit_image_full() -> tuple[nn.Module | None, str]:
    """coursekit's own MNIST flow, ``ImageRealNVP()`` with its defaults (multi-scale)."""
    try:
        from coursekit.flows.image import ImageRealNVP
    except ImportError as exc:
        return None, f"coursekit.flows.image not importable ({exc})"
    model = ImageRealNVP()
    n = sum(1 for m in model.modules() if type(m).__name__.endswith("Coupling"))
    return CoursekitAdapter(model, model.event_shape), f"ImageRealNVP() defaults, {n} couplings"


def image_models(cfg: ImageConfig) -> dict[str, tuple[nn.Module | None, str]]:
    """``{library: (model or None, description or reason)}``, the shared image architecture."""
    out: dict[str, tuple[nn.Module | None, str]] = {}
    out["coursekit"] = coursekit_image_same(cfg)
    out["zuko"] = (None, "zuko has no convolutional / image flow (vector flows only)")
    for name, builder in (("nflows", nflows_image), ("normflows", normflows_image)):
        if library_version(name) is None:
            out[name] = (None, f"{name} not installed")
        else:
            out[name] = (builder(cfg), cfg.describe())
    return out


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_density(model: nn.Module, dim: int = 2, half_width: float = 6.0, n: int = 301) -> float:
    """``∫ p_θ`` on a ``[-w, w]²`` grid by the midpoint rule (≈ 1 for a true density)."""
    if dim != 2:
        raise ValueError(f"dim: expected 2, got {dim}")
    xs = torch.linspace(-half_width, half_width, n)
    h = float(xs[1] - xs[0])
    grid = torch.cartesian_prod(xs, xs)
    with torch.no_grad():
        logp = model.log_prob(grid)
    return float(torch.exp(logp).sum()) * h * h if math.isfinite(h) else float("nan")
