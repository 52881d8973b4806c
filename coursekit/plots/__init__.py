"""Plotting helpers; each takes an optional matplotlib ``Axes`` and returns the ``Axes`` used.

:mod:`coursekit.plots.density` draws densities, samples and change-of-variable pictures
(notebooks 01–03); :mod:`coursekit.plots.flows` draws flows: Jacobians, layer-by-layer
transport, learned densities (notebooks 04–06).
"""
