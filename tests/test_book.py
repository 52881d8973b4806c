"""The course website (``make book``): a clean build, every internal link resolving, the
chapters in order, lectures and exercises linked both ways, every stored figure shown.

The site is built once per session by the ``built_book`` fixture (tests/conftest.py); the
browser checks (typeset maths, loaded figures, search) are in tests/e2e/test_book_browser.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_build_book():
    spec = importlib.util.spec_from_file_location("build_book", REPO / "tools" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_book = _load_build_book()


class _Page(HTMLParser):
    """The ids (anchors) of an HTML page and the URLs it refers to."""

    #: (tag, attribute) pairs whose value is a URL the browser follows or loads.
    URL_ATTRS = {
        ("a", "href"),
        ("link", "href"),
        ("script", "src"),
        ("img", "src"),
        ("source", "src"),
        ("iframe", "src"),
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            if (tag, name) in self.URL_ATTRS:
                self.urls.append((tag, value))


def _parse(path: Path, cache: dict[Path, _Page]) -> _Page:
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def _notebooks(part: str) -> list[Path]:
    return sorted((REPO / part).glob("*.ipynb"))


def _html_of(built_book, notebook: Path) -> Path:
    return built_book.html / notebook.parent.name / (notebook.stem + ".html")


# ------------------------------------------------------------------------------ the build


def test_book_builds_without_warnings(built_book):
    """Warnings are errors (``-W --keep-going``): a broken cross-reference, a missing
    document or an unknown role fails the build and is listed here."""
    assert built_book.status == 0 and not built_book.warnings.strip(), (
        f"the book build failed (status {built_book.status}) with these warnings:\n"
        f"{built_book.warnings}\n--- output:\n{built_book.output[-3000:]}"
    )
    assert (built_book.html / "index.html").is_file()


def test_every_internal_link_and_resource_resolves(built_book):
    """Every href/src of every page that stays on the site points at a file that exists,
    and its #fragment at an id on that page; scripts, stylesheets and images all come from
    the site itself (it must work offline)."""
    site = built_book.html.resolve()
    # _static/ holds the theme's template fragments, not pages
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)
    assert len(pages) >= 10, f"only {len(pages)} pages were built"
    cache: dict[Path, _Page] = {}
    broken, remote = [], []
    n_links = 0
    for page in pages:
        for tag, url in _parse(page, cache).urls:
            parts = urlsplit(url)
            if parts.scheme in ("mailto", "data", "javascript"):
                continue
            if parts.scheme or url.startswith("//"):
                if tag != "a":
                    remote.append(f"{page.relative_to(site)}: <{tag}> loads {url}")
                continue
            n_links += 1
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            where = f"{page.relative_to(site)}: {url}"
            if site not in target.parents and target != site:
                broken.append(f"{where} (leaves the site)")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{where} (no file {target.relative_to(site)})")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in _parse(target, cache).ids:
                broken.append(f"{where} (no id {fragment!r} in {target.relative_to(site)})")
    assert n_links > 500, f"only {n_links} internal links checked: is the site complete?"
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:40])
    assert not remote, "pages load resources from other sites:\n" + "\n".join(remote[:20])


# ------------------------------------------------------------------------------ the contents


def _sidebar_links(built_book) -> list[str]:
    """The page links of the landing page, in document order (sidebar and body)."""
    page = _Page()
    page.feed((built_book.html / "index.html").read_text(encoding="utf-8"))
    return [url.split("#")[0] for tag, url in page.urls if tag == "a"]


def test_every_notebook_has_a_page_in_the_navigation_in_order(built_book):
    links = _sidebar_links(built_book)
    for part in build_book.PARTS:
        notebooks = _notebooks(part)
        assert notebooks, f"no notebooks in {part}/"
        expected = [f"{part}/{nb.stem}.html" for nb in notebooks]
        for nb, url in zip(notebooks, expected, strict=True):
            assert _html_of(built_book, nb).is_file(), f"no page for {part}/{nb.name}"
            assert url in links, f"the landing page's navigation lacks {url}"
        firsts = [links.index(url) for url in expected]
        assert firsts == sorted(firsts), f"{part}: pages not in chapter order: {expected}"
    for page in ("glossary.html", "references.html", "search.html", "genindex.html"):
        assert (built_book.html / page).is_file(), f"no {page}"
    assert "glossary.html" in links and "references.html" in links


def test_lectures_and_exercises_link_both_ways(built_book):
    lectures = {build_book.chapter_number(nb): nb for nb in _notebooks("notebooks")}
    exercises = {build_book.chapter_number(nb): nb for nb in _notebooks("exercises")}
    solutions = {build_book.chapter_number(nb): nb for nb in _notebooks("solutions")}
    assert set(exercises) <= set(lectures), "an exercise notebook has no lecture"
    for number, exercise in exercises.items():
        lecture = lectures[number]
        lecture_html = _html_of(built_book, lecture).read_text(encoding="utf-8")
        exercise_html = _html_of(built_book, exercise).read_text(encoding="utf-8")
        assert f'href="../exercises/{exercise.stem}.html"' in lecture_html, (
            f"the page of {lecture.name} does not link to its exercises"
        )
        assert f'href="../notebooks/{lecture.stem}.html"' in exercise_html, (
            f"the page of exercises/{exercise.name} does not link back to its lecture"
        )
        if number in solutions:
            sol_html = _html_of(built_book, solutions[number]).read_text(encoding="utf-8")
            assert f'href="../exercises/{exercise.stem}.html"' in sol_html
            assert '<div class="warning book-nav admonition"' in sol_html, (
                f"the page of solutions/{solutions[number].name} has no warning box"
            )
            title = re.search(r"<title>(.*?)</title>", sol_html, re.S).group(1)
            assert title.startswith("Solutions"), f"solutions page titled {title!r}"


def _stored_png_count(notebook: Path) -> int:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return sum(
        "image/png" in out.get("data", {})
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
    )


@pytest.mark.parametrize("part", ["notebooks", "solutions"])
def test_every_stored_figure_is_on_its_page(built_book, part):
    """Each image/png output of a notebook is an <img> of its page (a file in _images)."""
    for nb in _notebooks(part):
        n_png = _stored_png_count(nb)
        page = _Page()
        page.feed(_html_of(built_book, nb).read_text(encoding="utf-8"))
        images = [u for tag, u in page.urls if tag == "img" and "_images/" in u]
        assert len(images) >= n_png, (
            f"{part}/{nb.name}: {n_png} stored figures, {len(images)} on its page"
        )


def test_widget_views_become_a_note(built_book):
    """A live ipywidgets view cannot run on a static page: no `VBox(children=...)` text,
    a note saying how to use the widget instead."""
    found = 0
    for nb in _notebooks("notebooks"):
        raw = nb.read_text(encoding="utf-8")
        html = _html_of(built_book, nb).read_text(encoding="utf-8")
        assert "VBox(children" not in html, f"{nb.name}: the widget's repr is on its page"
        if build_book.WIDGET_MIME in raw:
            found += 1
            assert "Interactive widget" in html, f"{nb.name}: no note where the widget was"
    assert found, "no lecture notebook shows a widget: the note is untested"


# ------------------------------------------------------------------------------ the staging


def _write_notebook(path: Path, title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cell = {"cell_type": "markdown", "id": "t", "metadata": {}, "source": [f"# {title}\n"]}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def test_staging_links_chapters_and_tolerates_a_lecture_without_exercises(tmp_path):
    _write_notebook(tmp_path / "notebooks" / "01_a.ipynb", "01 — A")
    _write_notebook(tmp_path / "exercises" / "01_a.ipynb", "Exercises 1 — a")
    _write_notebook(tmp_path / "solutions" / "01_a.ipynb", "Exercises 1 — a")
    _write_notebook(tmp_path / "notebooks" / "07_new.ipynb", "07 — New")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "index.md").write_text("# Index\n")
    src = tmp_path / "src"
    staged = build_book.stage(tmp_path, src)
    assert sorted(p.relative_to(src).as_posix() for p in staged) == [
        "exercises/01_a.ipynb",
        "index.md",
        "notebooks/01_a.ipynb",
        "notebooks/07_new.ipynb",
        "solutions/01_a.ipynb",
    ]

    def text(rel: str) -> str:
        nb = json.loads((src / rel).read_text())
        return "".join("".join(c["source"]) for c in nb["cells"])

    lecture = text("notebooks/01_a.ipynb")
    assert "[Exercises 1 — a](../exercises/01_a.ipynb)" in lecture
    assert "[Solutions 1 — a](../solutions/01_a.ipynb)" in lecture
    assert "[01 — A](../notebooks/01_a.ipynb)" in text("exercises/01_a.ipynb")
    solution = text("solutions/01_a.ipynb")
    assert solution.startswith("# Solutions 1 — a") and ":class: warning" in solution
    assert text("notebooks/07_new.ipynb") == "# 07 — New\n"  # no exercises: no box
    # the committed notebooks are untouched; a removed source leaves the staging tree
    assert "Exercises" not in (tmp_path / "notebooks" / "01_a.ipynb").read_text()
    (tmp_path / "notebooks" / "07_new.ipynb").unlink()
    build_book.stage(tmp_path, src)
    assert not (src / "notebooks" / "07_new.ipynb").exists()


def test_staging_replaces_widget_views_and_remote_stylesheets(tmp_path):
    path = tmp_path / "notebooks" / "02_w.ipynb"
    _write_notebook(path, "02 — W")
    nb = json.loads(path.read_text())
    widget = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb["cells"].append(
        {
            "cell_type": "code",
            "id": "c",
            "metadata": {},
            "execution_count": 1,
            "source": ["w"],
            "outputs": [
                {
                    "output_type": "execute_result",
                    "execution_count": 1,
                    "metadata": {},
                    "data": {build_book.WIDGET_MIME: widget, "text/plain": ["VBox(children=...)"]},
                },
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {
                        "text/html": [
                            '<link rel="stylesheet"\nhref="https://cdn.example/x.css">\n',
                            "<p>kept</p>",
                        ]
                    },
                },
            ],
        }
    )
    path.write_text(json.dumps(nb))
    out = build_book.transform_notebook(tmp_path, "notebooks", path)
    note = {"text/markdown": build_book.WIDGET_NOTE, "text/plain": build_book.WIDGET_NOTE}
    widget_out, html_out = out["cells"][-1]["outputs"]
    assert widget_out["output_type"] == "display_data" and widget_out["data"] == note
    assert html_out["data"]["text/html"] == "<p>kept</p>"
    # a widget output that also stores a picture keeps the picture, after the note
    png = {build_book.WIDGET_MIME: widget, "text/plain": "VBox()", "image/png": "iVBOR"}
    stored = {"output_type": "display_data", "metadata": {}, "data": png}
    assert [o["data"] for o in build_book._site_outputs(stored)] == [note, {"image/png": "iVBOR"}]


def test_links_to_repository_files_outside_the_site_become_text(tmp_path):
    for rel in (
        "notebooks/01_a.ipynb",
        "exercises/01_a.ipynb",
        "benchmarks/README.md",
        "notebooks/fig.png",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "coursekit").mkdir()
    source = (
        "[the exercises](../exercises/01_a.ipynb), [results](../benchmarks/README.md), "
        "[`benchmarks/README.md`](../benchmarks/README.md), [code](../coursekit/), "
        "[missing](../exercises/09_x.ipynb), [paper](https://arxiv.org/abs/1605.08803), "
        "[up](#goals), ![a figure](fig.png)"
    )
    notebook = tmp_path / "notebooks" / "x.ipynb"
    new, images = build_book.rewrite_local_links(tmp_path, notebook, source)
    assert new == (
        "[the exercises](../exercises/01_a.ipynb), results (`benchmarks/README.md`), "
        "`benchmarks/README.md`, code (`coursekit/`), "
        "[missing](../exercises/09_x.ipynb), [paper](https://arxiv.org/abs/1605.08803), "
        "[up](#goals), ![a figure](fig.png)"
    )
    assert images == [Path("notebooks/fig.png")]


def test_build_rejects_a_bad_number_of_jobs(tmp_path):
    with pytest.raises(ValueError, match="jobs must be a positive number"):
        build_book.build(tmp_path, jobs=0)
