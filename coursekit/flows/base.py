"""Bijections, their composition, and a flow = bijection + standard normal base.

Direction convention (the slides' one): a bijection maps **data to noise**,
``forward(x) -> (z, log_det)`` with ``z = f(x)`` and ``log_det = log|det ∂f/∂x|`` of shape
``(batch,)``; ``inverse(z) -> (x, log_det)`` with ``log_det = log|det ∂f⁻¹/∂z|``, i.e. minus
the forward one at the matching point. ``torch.distributions`` and TensorFlow Probability
use the opposite convention (their ``forward`` maps noise to data).

Public ``forward``/``inverse`` validate their input and cast it to the module's floating
dtype (a float32 model accepts the float64 toy data and computes in float32; a ``.double()``
model accepts float32 input and computes in float64); the private ``_forward``/``_inverse``
do the maths without checks and are what compositions call internally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import (
    check_generator,
    check_positive_float,
    check_positive_int,
    check_tensor,
)
from coursekit.device import module_dtype_device

#: ``log(2π)``, the constant of every Gaussian log-density in the package
LOG_2PI = math.log(2 * math.pi)


def as_module_dtype(module: nn.Module, x: Tensor) -> Tensor:
    """``x`` cast to the dtype of ``module`` (:func:`~coursekit.device.module_dtype_device`;
    unchanged if it has none)."""
    dtype, _ = module_dtype_device(module)
    return x if dtype is None or x.dtype == dtype else x.to(dtype)


def check_input(module: nn.Module, value: object, name: str, event_shape) -> Tensor:
    """The public input check of a bijection: a floating tensor of shape
    ``(batch, *event_shape)`` (or at least 2-D when ``event_shape`` is ``None``), finite while
    the value checks are on, cast to the module's dtype."""
    x = check_tensor(value, name, event_shape=event_shape)
    if event_shape is None and x.dim() < 2:
        raise ValueError(
            f"{name}: expected shape (batch, ...) with at least one dimension after the "
            f"batch, got {tuple(x.shape)}; a single example x needs x[None]"
        )
    return as_module_dtype(module, x)


class Bijection(nn.Module):
    """Base class of invertible maps ``f: R^event_shape -> R^event_shape``.

    Subclasses implement ``_forward`` and ``_inverse``; both return ``(output, log_det)``
    with ``log_det`` of shape ``(batch,)``.
    """

    #: shape of one example, without the batch dimension; ``None`` = any shape.
    event_shape: tuple[int, ...] | None = None

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (batch, *event_shape) -> ``(z, log|det ∂z/∂x|)`` with shapes as x and (batch,)."""
        return self._forward(check_input(self, x, "x", self.event_shape))

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z`` (batch, *event_shape) -> ``(x, log|det ∂x/∂z|)`` with shapes as z and (batch,)."""
        return self._inverse(check_input(self, z, "z", self.event_shape))


def compose(
    layers: Sequence[Bijection], x: Tensor, log_det: Tensor, inverse: bool = False
) -> tuple[Tensor, Tensor]:
    """Apply ``layers`` in order (their inverses in reverse order when ``inverse``), adding
    each layer's log-determinant to ``log_det`` (eq. 13); returns ``(output, log_det)``."""
    if inverse:
        for layer in reversed(layers):
            x, ld = layer._inverse(x)
            log_det = log_det + ld
    else:
        for layer in layers:
            x, ld = layer._forward(x)
            log_det = log_det + ld
    return x, log_det


def _check_chain(layers: Sequence[Bijection]) -> None:
    """Two adjacent layers that both declare an event shape must declare the same one (a
    layer with an event shape keeps the shape of its input; shape-changing layers such as
    :class:`~coursekit.flows.image_coupling.Squeeze` declare none)."""
    for i in range(len(layers) - 1):
        a, b = layers[i].event_shape, layers[i + 1].event_shape
        if a is not None and b is not None and tuple(a) != tuple(b):
            raise ValueError(
                f"layers: the layers do not chain: item {i} acts on event shape {tuple(a)} "
                f"but item {i + 1} on {tuple(b)}"
            )


class FlowSequence(Bijection):
    """Composition ``f = l_n ∘ … ∘ l_1`` of bijections (eq. 13 of the slides).

    ``log|det J_f(x)| = Σ_i log|det J_{l_i}(x_{i-1})|`` with ``x_0 = x`` and
    ``x_i = l_i(x_{i-1})``.
    """

    def __init__(self, layers: Sequence[Bijection], event_shape: Sequence[int] | None = None):
        super().__init__()
        if len(layers) == 0:
            raise ValueError("layers: expected at least one bijection, got an empty sequence")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Bijection):
                raise ValueError(
                    f"layers: expected Bijection instances, item {i} is {type(layer).__name__}"
                )
        _check_chain(layers)
        self.layers = nn.ModuleList(layers)
        if event_shape is not None:
            self.event_shape = tuple(event_shape)
        elif layers[0].event_shape is not None:
            # The input enters the first layer, so its event shape is the sequence's.
            self.event_shape = tuple(layers[0].event_shape)

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return compose(self.layers, x, x.new_zeros(x.shape[0]))

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return compose(self.layers, z, z.new_zeros(z.shape[0]), inverse=True)

    def trajectory(self, x: Tensor) -> list[Tensor]:
        """Every intermediate ``[x_0 = x, x_1 = l_1(x_0), …, x_n = z]`` (forward direction)."""
        x = check_input(self, x, "x", self.event_shape)
        steps = [x]
        for layer in self.layers:
            x, _ = layer._forward(x)
            steps.append(x)
        return steps

    def inverse_trajectory(self, z: Tensor) -> list[Tensor]:
        """Every intermediate of the inverse ``[z, l_n⁻¹(z), …, x]`` (generation direction)."""
        z = check_input(self, z, "z", self.event_shape)
        steps = [z]
        for layer in reversed(self.layers):
            z, _ = layer._inverse(z)
            steps.append(z)
        return steps

    def __len__(self) -> int:
        return len(self.layers)


class Permutation(Bijection):
    """Fixed permutation of the features: ``z = x[:, perm]``; volume preserving (log_det = 0).

    Args:
        perm: a permutation of ``range(dim)`` as a sequence or 1-D integer tensor.
    """

    def __init__(self, perm: Sequence[int] | Tensor):
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        dim = perm.numel()
        if perm.dim() != 1 or dim == 0 or not torch.equal(perm.sort().values, torch.arange(dim)):
            raise ValueError(f"perm: expected a permutation of 0..{dim - 1}, got {perm.tolist()}")
        self.event_shape = (dim,)
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    @classmethod
    def reverse(cls, dim: int) -> Permutation:
        """The permutation that reverses the order of ``dim`` features."""
        return cls(list(range(check_positive_int(dim, "dim") - 1, -1, -1)))

    @classmethod
    def random(cls, dim: int, generator: torch.Generator | None = None) -> Permutation:
        """A uniformly random permutation of ``dim`` features."""
        return cls(torch.randperm(check_positive_int(dim, "dim"), generator=generator))

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z[:, self.inverse_perm], z.new_zeros(z.shape[0])

    def extra_repr(self) -> str:
        return f"perm={self.perm.tolist()}"


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` summed over every non-batch dimension; shape ``(batch,)``."""
    d = math.prod(z.shape[1:])
    return -0.5 * z.pow(2).flatten(1).sum(1) - 0.5 * d * LOG_2PI


class Flow(nn.Module):
    """A normalizing flow: a bijection ``f`` (data → noise) and the base ``p_Z = N(0, I)``.

    ``log p_X(x) = log p_Z(f(x)) + log|det J_f(x)|`` (eq. 11/14), and samples are
    ``x = f⁻¹(z)`` with ``z ~ N(0, T² I)`` for temperature ``T``.
    """

    def __init__(self, transform: FlowSequence, event_shape: Sequence[int]):
        super().__init__()
        self.transform = transform
        self.event_shape = tuple(event_shape)
        transform.event_shape = self.event_shape
        # A buffer so that .to(device/dtype) tells sample() where to draw noise.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (z, log|det ∂z/∂x|)``."""
        return self.transform(x)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z -> (x, log|det ∂x/∂z|)``."""
        return self.transform.inverse(z)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p_θ(x) = log N(f(x); 0, I) + log|det ∂f/∂x|`` (eq. 14), through the
        subclass's ``forward`` (its input checks); ``x`` (batch, *event) -> (batch,)."""
        z, log_det = self.forward(x)
        return standard_normal_log_prob(z) + log_det

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``n`` samples ``x = f⁻¹(T·ε)``, ``ε ~ N(0, I)``; returns (n, *event_shape)."""
        n = check_positive_int(n, "n")
        temperature = check_positive_float(temperature, "temperature")
        check_generator(generator, "generator")
        eps = torch.randn(
            (n, *self.event_shape),
            generator=generator,
            dtype=self._anchor.dtype,
            device=self._anchor.device if generator is None else generator.device,
        ).to(self._anchor.device)
        with torch.no_grad():
            x, _ = self.transform._inverse(temperature * eps)
        return x

    def trajectory(self, x: Tensor) -> list[Tensor]:
        """Intermediates ``[x_0 = x, …, x_n = z]`` of ``f = l_n ∘ … ∘ l_1``."""
        return self.transform.trajectory(x)

    def inverse_trajectory(self, z: Tensor) -> list[Tensor]:
        """Intermediates ``[z, …, x]`` of ``f⁻¹ = l_1⁻¹ ∘ … ∘ l_n⁻¹``."""
        return self.transform.inverse_trajectory(z)
