"""The architecture of an :class:`~coursekit.flows.image.ImageRealNVP`, as one frozen object.

:class:`ImageFlowConfig`'s defaults *are* the shipped pretrained MNIST model
(:mod:`coursekit.pretrained`, trained by ``python -m coursekit.train_mnist``): Glow-like steps
(ActNorm, 1×1 convolution, channel coupling) at each of 3 scales, a learned prior for each
factored-out half, the logit with ``α = 1e-5``. Change a field with
``dataclasses.replace(ImageFlowConfig(), hidden=(32, 64, 64))``; build the model with
``ImageRealNVP.from_config(config)``; ``ImageFlowConfig(**model.config)`` gives it back.

Every field is checked when the object is made: a wrong type raises a ``TypeError``
(:class:`~coursekit._validation.ArgumentTypeError`, also a ``ValueError``), a wrong value a
``ValueError``, both naming the field. Fields are normalised: ``hidden`` becomes one width per
scale, sequences become tuples, ``n_final_checker`` equal to ``n_final`` becomes ``None``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields

from coursekit._validation import (
    ArgumentTypeError,
    check_image_shape,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    per_scale,
)
from coursekit.flows.nets import activation_module
from coursekit.flows.preprocessing import check_alpha

#: The fields that hold one count per scale but the last: kept as an int when given as one.
_PER_SCALE = ("n_checker", "n_channel")
#: The switches of Glow's additions.
_FLAGS = ("actnorm", "invconv", "split_prior")


def _check_flag(value: object, name: str) -> bool:
    """``value`` must be ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name}: expected True or False, got {value!r}")
    return value


def _check_kernel(value: object) -> int:
    """``block_kernel``: 1 or 3."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"block_kernel: expected 1 or 3, got {value!r}")
    if value not in (1, 3):
        raise ValueError(f"block_kernel: expected 1 or 3, got {value!r}")
    return int(value)


def _check_activation(value: object) -> str:
    """``activation``: the name of a conditioner nonlinearity ("silu" or "relu")."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"activation: expected a name such as 'silu', got {value!r}")
    activation_module(value)
    return value


@dataclass(frozen=True)
class ImageFlowConfig:
    """The sizes and options of an :class:`~coursekit.flows.image.ImageRealNVP`.

    Attributes:
        image_shape: ``(C, H, W)``; ``H`` and ``W`` divisible by ``2^(n_scales − 1)``.
        n_scales: number of scales (each but the last squeezes and factors out half).
        hidden: conditioner widths, one per scale (an int: the same at every scale).
        n_blocks: residual blocks per conditioner.
        n_checker, n_channel: checkerboard / channel couplings of each scale but the last (an
            int: the same at each; a sequence: one per scale but the last).
        n_final: channel couplings (and, unless ``n_final_checker``, checkerboard couplings)
            of the last scale.
        scale_bound: ``B`` of every coupling's bounded log-scale.
        alpha: ``α`` of the logit preprocessing, in ``(0, 0.5)``.
        actnorm, invconv, split_prior: Glow's ActNorm, 1×1 convolutions, learned split prior.
        block_kernel: 3 or 1, the kernel of the conditioners' residual blocks.
        n_final_checker: checkerboard couplings of the last scale (``None``: ``n_final``).
        activation: the conditioners' nonlinearity, "silu" or "relu".
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    n_scales: int = 3
    hidden: int | tuple[int, ...] = (64, 128, 128)
    n_blocks: int = 1
    n_checker: int | tuple[int, ...] = 0
    n_channel: int | tuple[int, ...] = (6, 8)
    n_final: int = 2
    scale_bound: float = 3.0
    alpha: float = 1e-5
    actnorm: bool = True
    invconv: bool = True
    block_kernel: int = 1
    split_prior: bool = True
    n_final_checker: int | None = None
    activation: str = "silu"

    def __post_init__(self) -> None:
        checked = {
            "image_shape": self._image_shape(),
            "n_scales": check_positive_int(self.n_scales, "n_scales"),
            "n_blocks": check_positive_int(self.n_blocks, "n_blocks"),
            "n_final": check_positive_int(self.n_final, "n_final"),
            "scale_bound": check_positive_float(self.scale_bound, "scale_bound"),
            "alpha": check_alpha(self.alpha),
            "block_kernel": _check_kernel(self.block_kernel),
            "activation": _check_activation(self.activation),
            **{name: _check_flag(getattr(self, name), name) for name in _FLAGS},
        }
        n = checked["n_scales"]
        checked["hidden"] = tuple(per_scale(self.hidden, "hidden", n, minimum=1, each="scale"))
        for name in _PER_SCALE:  # an int stays an int (the same at each scale but the last)
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                checked[name] = check_nonnegative_int(value, name)
            else:
                checked[name] = tuple(per_scale(value, name, n - 1))
        final = self.n_final_checker
        if final is not None and check_nonnegative_int(final, "n_final_checker") != self.n_final:
            checked["n_final_checker"] = int(final)
        else:
            checked["n_final_checker"] = None
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def _image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` checked, ``H`` and ``W`` divisible by ``2^(n_scales − 1)``."""
        c, h, w = check_image_shape(self.image_shape, "image_shape")
        factor = 2 ** (check_positive_int(self.n_scales, "n_scales") - 1)
        if h % factor or w % factor:
            raise ValueError(
                f"image_shape: height and width must be divisible by 2^(n_scales-1) = "
                f"{factor}, got {tuple(self.image_shape)}"
            )
        return c, h, w

    def checker_counts(self) -> list[int]:
        """Checkerboard couplings of each scale, the last included."""
        last = self.n_final if self.n_final_checker is None else self.n_final_checker
        return [*_counts(self.n_checker, self.n_scales - 1), last]

    def channel_counts(self) -> list[int]:
        """Channel couplings of each scale, the last included."""
        return [*_counts(self.n_channel, self.n_scales - 1), self.n_final]

    def as_dict(self) -> dict[str, object]:
        """The fields in order, tuples as lists: ``ImageRealNVP.config``, a checkpoint's
        ``"config"`` (``ImageFlowConfig(**config.as_dict()) == config``)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in fields(self)
        }


def _counts(value: int | tuple[int, ...], n: int) -> list[int]:
    """A normalised per-scale field as ``n`` counts."""
    return [value] * n if isinstance(value, int) else list(value)
