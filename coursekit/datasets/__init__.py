"""Data: 2-D toy distributions with exact densities, and MNIST."""

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
    "MODE_CENTRES",
    "Checkerboard",
    "GaussianMixture",
    "Rings",
    "ToyDistribution",
    "TwoMoons",
    "four_modes",
    "gallery",
    "modes",
]
