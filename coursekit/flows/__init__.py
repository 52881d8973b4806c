"""Bijections and normalizing flows (direction: data ``x`` → noise ``z``).

Every bijection's ``forward(x)`` returns ``(z, log|det ∂z/∂x|)`` and ``inverse(z)`` returns
``(x, log|det ∂x/∂z|)``, both log-dets of shape ``(batch,)``. This is the slides' direction
(``f`` maps data to noise); ``torch.distributions`` and TFP use the opposite one.
"""

from coursekit.flows.base import (
    Bijection,
    Flow,
    FlowSequence,
    Permutation,
    standard_normal_log_prob,
)
from coursekit.flows.coupling import AffineCoupling, mlp
from coursekit.flows.image import (
    ChannelCoupling,
    CheckerboardCoupling,
    ImageRealNVP,
    InvertibleConv1x1,
    MultiScaleLevel,
    Squeeze,
    checkerboard_mask,
    squeeze,
    unsqueeze,
)
from coursekit.flows.preprocessing import (
    Logit,
    UnitScale,
    bits_per_dim_from_unit_log_prob,
    dequantize,
    image_bits_per_dim,
)
from coursekit.flows.realnvp import RealNVP, alternating_masks

__all__ = [
    "AffineCoupling",
    "Bijection",
    "Flow",
    "FlowSequence",
    "Permutation",
    "RealNVP",
    "alternating_masks",
    "ChannelCoupling",
    "CheckerboardCoupling",
    "ImageRealNVP",
    "InvertibleConv1x1",
    "Logit",
    "MultiScaleLevel",
    "Squeeze",
    "UnitScale",
    "bits_per_dim_from_unit_log_prob",
    "checkerboard_mask",
    "dequantize",
    "image_bits_per_dim",
    "squeeze",
    "unsqueeze",
    "mlp",
    "standard_normal_log_prob",
]
