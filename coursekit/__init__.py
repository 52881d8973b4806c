"""coursekit: the companion package of the course on normalizing flows and INNs.

Modules: :mod:`coursekit.flows` (bijections, affine coupling, RealNVP),
:mod:`coursekit.changevar` (change of variable by autograd), :mod:`coursekit.datasets`
(toy 2-D distributions, MNIST), :mod:`coursekit.training` (``fit``),
:mod:`coursekit.metrics` (NLL, bits/dim, KL).
"""

from coursekit._validation import set_validation, validation, validation_enabled

__version__ = "0.1.0"

__all__ = ["set_validation", "validation", "validation_enabled"]
