"""The course website in a real browser: the landing page and the lecture chapters typeset
their equations, load their figures and search works, with the network closed.

The site is built once per session (``built_book`` in tests/conftest.py) and served from a
loopback HTTP server; every request to another address is aborted and reported, so these
checks also prove that the site works offline (MathJax is served by the site itself).
Chromium is the one of the JupyterLab test (``chromium_context`` in tests/e2e/conftest.py).
Screenshots: ``test-output/e2e/book-*.png``.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
LOAD_TIMEOUT_MS = 60_000

#: Equations typeset? Every math element of the article holds a MathJax container, none an
#: error; what is left of the visible text (code and text outputs aside) has no TeX
#: delimiters.
MATH_STATE_JS = """() => {
  const article = document.querySelector('article') || document.body;
  const maths = [...article.querySelectorAll('.math')];
  const bare = maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent);
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, mjx-container, script, style').forEach(e => e.remove());
  const text = clone.innerText || clone.textContent;
  return {
    maths: maths.length,
    containers: document.querySelectorAll('mjx-container').length,
    errors: document.querySelectorAll('mjx-merror').length,
    bare: bare.slice(0, 5),
    raw: ['$$', '\\\\(', '\\\\[', '\\\\begin{'].filter(d => text.includes(d)),
  };
}"""

#: Figures loaded? (src, naturalWidth) of every <img> of the article, once all are complete.
IMAGES_JS = """() => [...(document.querySelector('article') || document.body)
  .querySelectorAll('img')].map(i => [i.getAttribute('src'), i.naturalWidth])"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        pass


@pytest.fixture(scope="module")
def book_url(built_book) -> Iterator[str]:
    """The built site served on a free loopback port (stopped when the module ends)."""
    if built_book.status != 0:
        pytest.fail(f"the book did not build (see test_book.py):\n{built_book.warnings}")
    handler = functools.partial(_QuietHandler, directory=str(built_book.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Traffic:
    """What the page asked for that it should not have: other sites, missing files, errors."""

    remote: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.remote.clear()
        self.missing.clear()
        self.console.clear()


@pytest.fixture(scope="module")
def site(chromium_context, book_url: str, output_dir: Path) -> Iterator[tuple[Any, Traffic]]:
    """One browser page on the site with the network closed: requests that leave the site
    are aborted and recorded."""
    page = chromium_context.new_page()
    traffic = Traffic()

    def route(r) -> None:
        if r.request.url.startswith(book_url):
            r.continue_()
        else:
            traffic.remote.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on(
        "response",
        lambda resp: (
            traffic.missing.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None
        ),
    )
    page.on("console", lambda m: traffic.console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda err: traffic.console.append(str(err)))
    try:
        yield page, traffic
    finally:
        page.close()


def _open(page: Any, url: str) -> None:
    page.goto(url, wait_until="load", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
        timeout=LOAD_TIMEOUT_MS,
    )
    page.evaluate("() => MathJax.startup.promise")


def _check_page(page: Any, traffic: Traffic, what: str, min_maths: int, min_images: int) -> None:
    math = page.evaluate(MATH_STATE_JS)
    assert math["maths"] >= min_maths, f"{what}: only {math['maths']} equations on the page"
    assert not math["bare"], f"{what}: equations left untypeset by MathJax: {math['bare']}"
    assert math["errors"] == 0, f"{what}: {math['errors']} MathJax errors (bad TeX)"
    assert not math["raw"], f"{what}: raw TeX delimiters {math['raw']} in the visible text"
    page.evaluate("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete)", timeout=LOAD_TIMEOUT_MS
    )
    images = page.evaluate(IMAGES_JS)
    empty = [src for src, width in images if not width]
    assert len(images) >= min_images, f"{what}: {len(images)} images, expected {min_images}"
    assert not empty, f"{what}: figures that did not load (naturalWidth 0): {empty[:5]}"
    assert not traffic.remote, f"{what}: requests to other sites: {traffic.remote[:5]}"
    assert not traffic.missing, f"{what}: failed requests: {traffic.missing[:5]}"
    assert not traffic.console, f"{what}: browser console errors: {traffic.console[:5]}"


def _stored_pngs(notebook: Path) -> int:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return sum(
        "image/png" in out.get("data", {}) for c in nb["cells"] for out in c.get("outputs", [])
    )


def test_landing_page_in_the_browser(site, book_url, output_dir):
    page, traffic = site
    traffic.clear()
    _open(page, book_url + "index.html")
    assert "Normalizing flows" in page.title()
    body = page.locator("article").inner_text()
    for command in ("make lab", "make test"):
        assert command in body, f"the landing page does not say how to run `{command}`"
    nav = page.locator("nav.bd-links").inner_text()
    for caption in ("Lectures", "Exercises", "Solutions", "Reference"):
        assert caption in nav, f"the navigation has no {caption!r} part"
    # the sidebar's chapter titles carry maths ("dimension $d > 1$"): typeset on every page
    assert page.locator("nav.bd-links mjx-container").count() >= 1
    _check_page(page, traffic, "index.html", min_maths=0, min_images=0)
    page.screenshot(path=str(output_dir / "book-index.png"))


LECTURES = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", LECTURES, ids=[nb.stem for nb in LECTURES])
def test_chapter_in_the_browser(site, book_url, output_dir, notebook):
    """Each lecture chapter: equations typeset, every stored figure loaded, no request off
    the site, no console error."""
    page, traffic = site
    traffic.clear()
    what = f"notebooks/{notebook.stem}.html"
    _open(page, book_url + what)
    _check_page(page, traffic, what, min_maths=1, min_images=_stored_pngs(notebook))
    page.screenshot(path=str(output_dir / f"book-{notebook.stem}.png"))


def test_search_finds_a_chapter_term(site, book_url, output_dir):
    page, traffic = site
    traffic.clear()
    page.goto(book_url + "search.html?q=coupling", wait_until="load", timeout=LOAD_TIMEOUT_MS)
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=LOAD_TIMEOUT_MS)
    hrefs = [a.get_attribute("href") or "" for a in results.all()]
    assert any("notebooks/04_coupling_layers" in h for h in hrefs), (
        f"searching 'coupling' does not find chapter 04; results: {hrefs}"
    )
    assert not traffic.remote and not traffic.missing, (traffic.remote, traffic.missing)
    page.screenshot(path=str(output_dir / "book-search.png"))
