"""Where each exercise's idea is taught: one row per exercise, (lecture notebook, section
heading, key term).

The checker decorator (:func:`coursekit.checkers._common.checker`) appends
``(see notebook NN, section 'Title')`` to every ❌ hint, so that each hint sends the student
back to the lecture. ``Title`` is a markdown heading of ``notebooks/NN_*.ipynb`` (without its
``#`` marks) as the student sees it rendered: :func:`plain` drops the LaTeX and code marks
(``$f$ decreasing`` is printed ``f decreasing``), so hints stay plain text. The key term is
the idea the exercise practises; a test checks that the section's own text (from its heading
to the next heading of the same or a higher level) contains it, so that a pointer cannot
drift to a section that does not teach the idea.
"""

from __future__ import annotations

import re

#: exercise id -> (two-digit lecture notebook, exact heading of the section, key term that
#: the section's text must contain, case-insensitive).
SECTIONS: dict[str, tuple[str, str, str]] = {
    "1.1": ("01", "1. The KL divergence and its decomposition (1)", "KL"),
    "1.2": ("01", "1. The KL divergence and its decomposition (1)", "Monte Carlo"),
    "1.3": ("01", "3. Fitting a Gaussian by gradient descent on the NLL", "gradient"),
    "1.4": ("01", "3. Fitting a Gaussian by gradient descent on the NLL", "NLL"),
    "1.5": (
        "01",
        r"(b) An affordable normaliser: a Monte Carlo estimate of $Z_\theta$",
        "Monte Carlo",
    ),
    "1.6": ("01", "6. Over 5 seeds: the two normalisers compared", "paired"),
    "1.7": (
        "01",
        "5. Equation (3) on a finite data set: overfitting and early stopping",
        "early stopping",
    ),
    "2.1": ("02", "3. $f$ decreasing: eq. (7)–(8)", "decreasing"),
    "2.2": ("02", "4. The theorem (9), checked against `scipy.stats`", "(9)"),
    "2.3": ("02", "2. $f$ increasing: eq. (5)–(6)", "increasing"),
    "2.4": ("02", "6. The direction used by flows: eq. (10)", "(10)"),
    "2.5": ("02", "4. The theorem (9), checked against `scipy.stats`", "theorem"),
    "2.6": ("02", "6. The direction used by flows: eq. (10)", "chain rule"),
    "3.1": ("03", "The Jacobian by autograd", "Jacobian"),
    "3.2": ("03", "2. A linear map of a Gaussian", "det"),
    "3.3": ("03", "3. A nonlinear map: Box–Muller", "Box"),
    "3.4": ("03", "The Jacobian by autograd", "Jacobian"),
    "3.5": ("03", "5. The transported density integrates to 1", "integrat"),
    "3.6": ("03", "1. The theorem in $\\mathbb R^d$ and eq. (11)", "(11)"),
    "4.1": ("04", "2. The affine coupling layer (slide INN – REALNVP: LAYER)", "exp"),
    "4.2": ("04", "The inverse layer (slide INN – REALNVP: INVERSE LAYER)", "inverse"),
    "4.3": (
        "04",
        "4. A stack of layers: the chain rule (slide CALCUL DU JACOBIEN (RÉSEAU TOTAL))",
        "chain rule",
    ),
    "4.4": ("04", "5. Why the masks must alternate", "alternate"),
    "4.5": ("04", "3. The Jacobian of one layer (slide CALCUL DU JACOBIEN (1 COUCHE))", "Jacobian"),
    "5.1": ("05", "Checking (14) by hand", "(14)"),
    "5.2": ("05", "3. Training by hand (slide ENTRAÎNEMENT)", "NLL"),
    "5.3": ("05", "9. Sampling temperature", "temperature"),
    "5.4": ("05", "6. Generation by inversion (slide INN – GÉNÉRATION)", "inverse"),
    "5.5": (
        "05",
        "5. How good is it? KL with its standard error, and the density on a grid",
        "standard error",
    ),
    "5.6": (
        "05",
        "2. A RealNVP from our own layers (slides INN – REALNVP and ENTRAÎNEMENT)",
        "RealNVP",
    ),
    "6.1": ("06", "2. From integer pixels to a density: dequantize, scale, logit", "dequantiz"),
    "6.2": ("06", "2. From integer pixels to a density: dequantize, scale, logit", "logit"),
    "6.3": ("06", "Bits per dimension, every term counted", "bits"),
    "6.4": ("06", "Squeeze", "block"),
    "6.5": ("03", "2. A linear map of a Gaussian", "det"),
    "6.6": ("06", "Checkerboard coupling", "mask"),
    "7.1": ("07", "5. Which flow when: density or sampling speed", "autoregressive"),
    "7.2": ("07", "1. A zuko flow, read with the course's vocabulary", "sample"),
    "7.3": ("07", "4. Filaments, measured", "filament"),
    "7.4": ("07", "5. Which flow when: density or sampling speed", "sampling"),
    "7.5": ("07", "Five seeds, four flows, three targets, one CPU budget", "seeds"),
    "8.1": ("08", "1. The multi-scale split and its log-determinant", "split prior"),
    "8.2": ("08", "3. Variational dequantization", "dequantization"),
    "8.3": ("08", "Training a flow with variational dequantization, live", "dequantization"),
    "8.4": ("08", "4. Importance-weighted bits/dim: $K = 1, 8, 32$", "importance"),
    "8.5": ("08", "4. Importance-weighted bits/dim: $K = 1, 8, 32$", "importance"),
    "9.1": ("09", "2. Reverse KL: sampling a density known only up to a constant", "reverse KL"),
    "9.2": ("09", "2. Reverse KL: sampling a density known only up to a constant", "importance"),
    "9.3": ("09", "3. Conditional flows: one density per context", "context"),
    "9.4": ("09", "1. Why flows are universal: the triangular map, in view", "triangular"),
    "9.5": ("09", "5. Where the field went: continuous-time flows and flow matching", "Hutchinson"),
}

_NAMES_A_NOTEBOOK = re.compile(r"\bnotebook\s+\d{2}\b", re.IGNORECASE)

_LATEX = [
    (r"\mathrm{KL}", "KL"),
    (r"\,\|\,", " ‖ "),
    (r"\|", "‖"),
    (r"\theta", "θ"),
    (r"\mathbb R", "R"),
    (r"\,", " "),
]


def plain(text: str) -> str:
    """``text`` as it reads rendered: no ``$``, backslash commands, braces or code marks."""
    for latex, shown in _LATEX:
        text = text.replace(latex, shown)
    text = re.sub(r"_\{([^{}]*)\}", r"_\1", text)
    text = re.sub(r"\\[A-Za-z]+\s*", "", text)
    for mark in ("$", "`", "{", "}", "*"):
        text = text.replace(mark, "")
    return " ".join(text.split())


def pointer(exercise: str) -> str:
    """``"see notebook NN, section 'Title'"`` for ``exercise``; ``""`` if it has no entry."""
    where = SECTIONS.get(exercise)
    if where is None:
        return ""
    notebook, title = where[0], where[1]
    return f"see notebook {notebook}, section '{plain(title)}'"


def with_pointer(exercise: str, hint: str) -> str:
    """``hint`` followed by `` (see notebook NN, section 'Title')``, unless it already names a
    notebook (then it is returned unchanged, so pointers are never doubled)."""
    where = pointer(exercise)
    if not where or _NAMES_A_NOTEBOOK.search(hint):
        return hint
    return f"{hint} ({where})"


def section_text(cells: list[dict], title: str) -> str:
    """The text of the section headed ``title`` in a notebook's ``cells`` (markdown and code),
    from its heading to the next heading of the same or a higher level; ``""`` if absent."""
    level: int | None = None
    parts: list[str] = []
    for cell in cells:
        source = "".join(cell.get("source", ""))
        lines = source.splitlines() if cell.get("cell_type") == "markdown" else [source]
        for line in lines:
            heading = (
                re.match(r"(#{1,6}) (.*)", line) if cell.get("cell_type") == "markdown" else None
            )
            if heading:
                depth, text = len(heading.group(1)), heading.group(2).strip()
                if level is not None and depth <= level:
                    return "\n".join(parts)
                if level is None and text == title:
                    level = depth
                    continue
            if level is not None:
                parts.append(line)
    return "\n".join(parts)
