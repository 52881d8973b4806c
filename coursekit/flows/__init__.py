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
from coursekit.flows.checkpoint import CheckpointError
from coursekit.flows.coupling import (
    AffineCoupling,
    AffineCouplingBase,
    affine_forward,
    affine_inverse,
    bounded_log_scale,
)
from coursekit.flows.dequantization import (
    DequantizedImageFlow,
    VariationalDequantizer,
    negative_elbo,
)
from coursekit.flows.glow import ActNorm, InvertibleConv1x1
from coursekit.flows.image import ImageRealNVP
from coursekit.flows.image_config import ImageFlowConfig
from coursekit.flows.image_coupling import (
    ChannelCoupling,
    CheckerboardCoupling,
    Squeeze,
    checkerboard_mask,
    squeeze,
    unsqueeze,
)
from coursekit.flows.importance import (
    importance_weighted_bits_per_dim,
    importance_weighted_log_prob,
)
from coursekit.flows.multiscale import MultiScaleLevel
from coursekit.flows.nets import ConvConditioner, mlp
from coursekit.flows.preprocessing import (
    DequantizedImages,
    Logit,
    UnitScale,
    bits_per_dim_from_unit_log_prob,
    dequantize,
    image_bits_per_dim,
)
from coursekit.flows.realnvp import RealNVP, alternating_masks

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "AffineCouplingBase",
    "CheckpointError",
    "ConvConditioner",
    "affine_forward",
    "affine_inverse",
    "bounded_log_scale",
    "Bijection",
    "DequantizedImageFlow",
    "DequantizedImages",
    "VariationalDequantizer",
    "negative_elbo",
    "Flow",
    "FlowSequence",
    "Permutation",
    "RealNVP",
    "alternating_masks",
    "ChannelCoupling",
    "CheckerboardCoupling",
    "ImageFlowConfig",
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
    "importance_weighted_bits_per_dim",
    "importance_weighted_log_prob",
    "squeeze",
    "unsqueeze",
    "mlp",
    "standard_normal_log_prob",
]
