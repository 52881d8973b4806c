"""coursekit: the companion package of the course on normalizing flows and INNs.

Modules: :mod:`coursekit.flows` (bijections, affine coupling, RealNVP),
:mod:`coursekit.changevar` (change of variable by autograd), :mod:`coursekit.datasets`
(toy 2-D distributions, MNIST), :mod:`coursekit.training` (``fit``),
:mod:`coursekit.metrics` (NLL, bits/dim, KL), :mod:`coursekit.practice` (zuko's flows with the
course's interface, KL with its standard error, the gap mass of filaments).
"""

__version__ = "0.1.0"
