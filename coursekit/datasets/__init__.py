"""Data: 2-D toy distributions with exact densities, the four modes in d dimensions, and MNIST."""

from coursekit.datasets.in_dimension import PlaneFourModes
from coursekit.datasets.mnist import (
    MNIST,
    MNISTFallbackWarning,
    MNISTIntegrityError,
    load_mnist,
)
from coursekit.datasets.toy import (
    MODE_CENTRES,
    Checkerboard,
    GaussianMixture,
    Rings,
    ToyDistribution,
    TwoMoons,
    four_modes,
    gallery,
    modes,
)

__all__ = [
    "MNIST",
    "MNISTFallbackWarning",
    "MNISTIntegrityError",
    "MODE_CENTRES",
    "PlaneFourModes",
    "Checkerboard",
    "GaussianMixture",
    "Rings",
    "ToyDistribution",
    "TwoMoons",
    "four_modes",
    "gallery",
    "load_mnist",
    "modes",
]
