"""Sphinx configuration of the course website (built by ``tools/build_book.py``).

Sphinx + MyST-NB render the stored outputs of the committed notebooks (never re-executed);
the sphinx-book-theme gives the sidebar navigation and the search page. MathJax 3 is served
from the site itself (copied from the pinned ``django-static-mathjax`` package), so the pages
typeset their equations with no network.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

project = "Normalizing flows and invertible neural networks"
language = "en"

# githubpages writes .nojekyll, so the site also works when published from a branch
extensions = ["myst_nb", "sphinx.ext.githubpages"]
root_doc = "index"
exclude_patterns: list[str] = []
# Warnings are errors (tools/build_book.py); a heading that skips a level in a notebook is a
# matter of style, not a broken page, so it is not one of them.
suppress_warnings = ["myst.header"]

# --- notebooks: stored outputs only
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# --- HTML
html_theme = "sphinx_book_theme"
html_title = "Normalizing flows & INNs"
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "footer_content_items": [],
}
# light by default (the figures have white backgrounds); the theme's switch still offers dark
html_context = {"default_mode": "light"}
html_show_sourcelink = False
html_copy_source = True
html_last_updated_fmt = None

# --- MathJax 3 from the site itself (no CDN): copied into _static/mathjax after the build.
#: The parts of MathJax's es5 tree that tex-chtml.js loads: the component itself, the TeX
#: extensions it may autoload, the CHTML output with its fonts, the menu and a11y helpers.
MATHJAX_PARTS = ("tex-chtml.js", "input/tex", "output/chtml", "ui", "a11y", "adaptors")
mathjax_path = "mathjax/tex-chtml.js"


def mathjax_source() -> Path:
    """The es5 folder of MathJax 3 inside the installed ``django-static-mathjax`` package."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "MathJax is not installed: `pip install django-static-mathjax` (pinned in "
            "requirements.lock) ships the MathJax 3 files the site serves"
        )
    es5 = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    if not (es5 / "tex-chtml.js").is_file():
        raise RuntimeError(f"no tex-chtml.js in {es5}: the mathjax package is not MathJax 3")
    return es5


def copy_mathjax(app, exception) -> None:
    """After an HTML build: copy :data:`MATHJAX_PARTS` into ``_static/mathjax``."""
    if exception is not None or app.builder.format != "html":
        return
    es5 = mathjax_source()
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        src, dst = es5 / part, target / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def setup(app) -> dict:
    # MathJax on every page, not only on pages with equations: the sidebar shows chapter
    # titles with maths (e.g. "dimension $d > 1$") on the search page and the landing page too.
    app.set_html_assets_policy("always")
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
