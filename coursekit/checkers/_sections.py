"""Where each exercise's idea is taught: exercise id -> (lecture notebook, section heading).

The checker decorator (:func:`coursekit.checkers._common.checker`) appends
``(see notebook NN, section 'Title')`` to a ❌ hint that does not already name a notebook, so
that every hint sends the student back to the lecture. ``Title`` is the exact text of a
markdown heading of ``notebooks/NN_*.ipynb`` (without its ``#`` marks), so it can be found with
the notebook's search.
"""

from __future__ import annotations

import re

#: exercise id -> (two-digit lecture notebook number, exact heading of the section).
SECTIONS: dict[str, tuple[str, str]] = {
    "1.1": ("01", "1. The KL divergence and its decomposition (1)"),
    "1.2": ("01", "1. The KL divergence and its decomposition (1)"),
    "1.3": ("01", "2. Why argmin KL = argmin NLL, eq. (2)–(4)"),
    "1.4": ("01", "3. Fitting a Gaussian by gradient descent on the NLL"),
    "1.5": ("01", r"(b) An affordable normaliser: a Monte Carlo estimate of $Z_\theta$"),
    "1.6": (
        "01",
        r"How close is each model? $D_{\mathrm{KL}}(p\,\|\,p_\theta)$ with its standard error",
    ),
    "1.7": ("01", "5. Equation (3) on a finite data set: overfitting and early stopping"),
    "2.1": ("02", "3. $f$ decreasing: eq. (7)–(8)"),
    "2.2": ("02", "4. The theorem (9), checked against `scipy.stats`"),
    "2.3": ("02", "2. $f$ increasing: eq. (5)–(6)"),
    "2.4": ("02", "6. The direction used by flows: eq. (10)"),
    "2.5": ("02", "4. The theorem (9), checked against `scipy.stats`"),
    "2.6": ("02", "6. The direction used by flows: eq. (10)"),
    "3.1": ("03", "The Jacobian by autograd"),
    "3.2": ("03", "2. A linear map of a Gaussian"),
    "3.3": ("03", "3. A nonlinear map: Box–Muller"),
    "3.4": ("03", "The Jacobian by autograd"),
    "3.5": ("03", "5. The transported density integrates to 1"),
    "3.6": ("03", "2. A linear map of a Gaussian"),
    "4.1": ("04", "2. The affine coupling layer (slide INN – REALNVP: LAYER)"),
    "4.2": ("04", "The inverse layer (slide INN – REALNVP: INVERSE LAYER)"),
    "4.3": ("04", "4. A stack of layers: the chain rule (slide CALCUL DU JACOBIEN (RÉSEAU TOTAL))"),
    "4.4": ("04", "5. Why the masks must alternate"),
    "4.5": ("04", "3. The Jacobian of one layer (slide CALCUL DU JACOBIEN (1 COUCHE))"),
    "5.1": ("05", "Checking (14) by hand"),
    "5.2": ("05", "3. Training by hand (slide ENTRAÎNEMENT)"),
    "5.3": ("05", "9. Sampling temperature"),
    "5.4": ("05", "6. Generation by inversion (slide INN – GÉNÉRATION)"),
    "5.5": ("05", "5. How good is it? KL with its standard error, and the density on a grid"),
    "5.6": ("05", "2. A RealNVP from our own layers (slides INN – REALNVP and ENTRAÎNEMENT)"),
    "6.1": ("06", "2. From integer pixels to a density: dequantize, scale, logit"),
    "6.2": ("06", "2. From integer pixels to a density: dequantize, scale, logit"),
    "6.3": ("06", "Bits per dimension, every term counted"),
    "6.4": ("06", "3. The image RealNVP"),
    "6.5": ("08", "2. Glow's additions"),
    "6.6": ("06", "7. Are the samples copies of training images?"),
    "7.1": ("07", "1. A zuko flow, read with the course's vocabulary"),
    "7.2": ("07", "1. A zuko flow, read with the course's vocabulary"),
    "7.3": ("07", "4. Filaments, measured"),
    "7.4": ("07", "5. Which flow when: density or sampling speed"),
    "7.5": ("07", "Five seeds, four flows, three targets, one CPU budget"),
    "8.1": ("08", "1. The multi-scale split and its log-determinant"),
    "8.2": ("08", "3. Variational dequantization"),
    "8.3": ("08", "Training a flow with variational dequantization, live"),
    "8.4": ("08", "4. Importance-weighted bits/dim: $K = 1, 8, 32$"),
    "8.5": ("08", "4. Importance-weighted bits/dim: $K = 1, 8, 32$"),
    "9.1": ("09", "2. Reverse KL: sampling a density known only up to a constant"),
    "9.2": ("09", "2. Reverse KL: sampling a density known only up to a constant"),
    "9.3": ("09", "3. Conditional flows: one density per context"),
    "9.4": ("09", "1. Why flows are universal: the triangular map, in view"),
    "9.5": ("09", "5. Where the field went: continuous-time flows and flow matching"),
}

_NAMES_A_NOTEBOOK = re.compile(r"\bnotebook\s+\d{2}\b", re.IGNORECASE)


def pointer(exercise: str) -> str:
    """``"see notebook NN, section 'Title'"`` for ``exercise``; ``""`` if it has no entry."""
    where = SECTIONS.get(exercise)
    if where is None:
        return ""
    notebook, title = where
    return f"see notebook {notebook}, section '{title}'"


def with_pointer(exercise: str, hint: str) -> str:
    """``hint`` followed by `` (see notebook NN, section 'Title')``, unless it already names a
    notebook (then it is returned unchanged, so pointers are never doubled)."""
    where = pointer(exercise)
    if not where or _NAMES_A_NOTEBOOK.search(hint):
        return hint
    return f"{hint} ({where})"
