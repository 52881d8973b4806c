"""Build the course website from the committed, executed notebooks (``make book``).

Sphinx with MyST-NB and the sphinx-book-theme renders the STORED outputs (no notebook is
executed: ``nb_execution_mode = "off"`` in ``book/conf.py``). The committed notebooks are
never modified; the build works on copies in a staging tree::

    <out>/src/          staged sources: book/*.md, and copies of notebooks/, exercises/,
                        solutions/ with the navigation boxes below added
    <out>/html/         the site (open <out>/html/index.html)
    <out>/doctrees/     Sphinx's cache; <out>/jupyter_execute/ MyST-NB's output files

What the staging adds to the copies (so lectures and exercises link both ways):

* a lecture ``notebooks/NN_*.ipynb``: a box under its title and one at its end linking to
  ``exercises/NN_*.ipynb`` and ``solutions/NN_*.ipynb`` when they exist (a lecture without
  exercises gets no box);
* an exercise notebook: a box under its title linking back to its lecture and to its
  solutions;
* a solution notebook: a warning box saying these are the solutions, with links to the
  lecture and to the untouched exercises;
* a solution notebook's title says "Solutions N — ..." instead of "Exercises N — ...";
* an ipywidgets output (its live view needs a Jupyter kernel): replaced by a one-line note
  saying so; the static figure stored under the widget stays as it is;
* an HTML output: stylesheets linked from other sites are dropped (the site works offline);
* a Markdown link to a repository file that the site does not show (``../benchmarks/``):
  its text followed by the path, instead of a dead link; a relative image is staged too.

The table of contents picks the notebooks up by glob (``book/index.md``), so a new
``notebooks/07_*.ipynb`` appears without editing anything here.

Usage: ``python tools/build_book.py [--out build/book] [--jobs 1] [--overwrite]``; exits
with Sphinx's status (warnings are errors, all of them are reported first) and writes them
to ``<out>/warnings.txt``. It writes only into build/book, a new or empty folder, or one an
earlier build made; it removes only files an earlier staging wrote (``--overwrite``: build
into another non-empty folder anyway); a refused ``--out`` exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
#: The three notebook folders the site shows, in the order of its parts.
PARTS = ("notebooks", "exercises", "solutions")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: A ``<link rel="stylesheet" href="http...">`` (matplotlib's animation HTML loads an icon font
#: from a CDN; the theme bundles Font Awesome already).
REMOTE_STYLESHEET = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^>]*>\s*", re.I)
#: A Markdown link or image ``[text](target "title")`` (no brackets inside the text).
MARKDOWN_LINK = re.compile(r"(!?)\[([^\[\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
WIDGET_NOTE = (
    "*Interactive widget: its sliders need a running Jupyter kernel. Open this notebook in "
    "JupyterLab (`make lab`) to use it.*"
)


def chapter_number(path: Path) -> str | None:
    """The two-digit chapter prefix of ``NN_name.ipynb``, or None."""
    m = re.match(r"(\d+)_", path.name)
    return m.group(1) if m else None


def notebook_title(path: Path) -> str:
    """The text of the first ``# `` heading of the notebook at ``path`` (its file stem if
    it has none)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def solution_title(title: str) -> str:
    """The title a solution notebook gets on the site: "Exercises 1 — x" -> "Solutions 1 — x"
    (any other title gets a "Solutions: " prefix)."""
    new = re.sub(r"^Exercises\b", "Solutions", title)
    return new if new.startswith("Solutions") else "Solutions: " + title


def shown_title(path: Path) -> str:
    """The title of notebook ``path`` on the site (see :func:`solution_title`)."""
    title = notebook_title(path)
    return solution_title(title) if path.parent.name == "solutions" else title


def _link(path: Path) -> str:
    """A MyST link from a staged notebook to the staged notebook ``path`` (same depth)."""
    title = shown_title(path).replace("[", r"\[").replace("]", r"\]")
    return f"[{title}](../{path.parent.name}/{path.name})"


def _admonition(cell_id: str, kind: str, title: str, body: str) -> dict:
    """A markdown cell holding a MyST admonition titled ``title``, styled as ``kind`` (note,
    tip, warning)."""
    text = f"```{{admonition}} {title}\n:class: {kind} book-nav\n\n{body}\n```\n"
    return {
        "cell_type": "markdown",
        "id": cell_id,
        "metadata": {},
        "source": text.splitlines(keepends=True),
    }


def _siblings(repo: Path, number: str | None) -> dict[str, Path]:
    """The notebooks of chapter ``number`` in each part, e.g. {"notebooks": Path(...)}."""
    found: dict[str, Path] = {}
    if number is None:
        return found
    for part in PARTS:
        matches = sorted((repo / part).glob(f"{number}_*.ipynb"))
        if matches:
            found[part] = matches[0]
    return found


def navigation_cells(repo: Path, part: str, path: Path) -> tuple[list[dict], list[dict]]:
    """The cells to insert under the title and to append at the end of ``path`` (in
    ``part``), linking it to the other notebooks of its chapter."""
    sib = _siblings(repo, chapter_number(path))
    lecture, exercises, solutions = (sib.get(p) for p in PARTS)
    top: list[dict] = []
    end: list[dict] = []
    if part == "notebooks" and exercises is not None:
        body = f"Exercises for this chapter: {_link(exercises)}."
        if solutions is not None:
            body += f" Their solutions: {_link(solutions)}."
        top.append(_admonition("book-nav-top", "tip", "Exercises", body))
        end_body = (
            f"Practise this chapter with {_link(exercises)}: open it in JupyterLab "
            "(`make lab`), fill in each function and run its checker."
        )
        if solutions is not None:
            end_body += f" Completed versions: {_link(solutions)}."
        end.append(_admonition("book-nav-end", "tip", "Now the exercises", end_body))
    elif part == "exercises":
        links = []
        if lecture is not None:
            links.append(f"the lecture: {_link(lecture)}")
        if solutions is not None:
            links.append(f"the solutions: {_link(solutions)}")
        body = (
            "This page shows the exercise notebook as students get it. To solve it, open "
            "it in JupyterLab (`make lab`): each checker cell prints a pass or a hint."
        )
        if links:
            body += " See also " + " and ".join(links) + "."
        top.append(_admonition("book-nav-top", "note", "Exercise notebook", body))
    elif part == "solutions":
        body = "This page gives the reference answers."
        if exercises is not None:
            body += f" Try {_link(exercises)} first."
        if lecture is not None:
            body += f" The lecture: {_link(lecture)}."
        top.append(_admonition("book-nav-top", "warning", "Solutions", body))
    return top, end


def _site_outputs(out: dict) -> list[dict]:
    """The outputs that stand for the stored output ``out`` on the site: a widget view
    becomes :data:`WIDGET_NOTE` (followed by any picture stored in the same output), an
    HTML output loses its stylesheets from other sites; anything else is kept as it is."""
    data = out.get("data", {})
    if WIDGET_MIME in data:
        note = {
            "output_type": "display_data",
            "metadata": {},
            "data": {"text/markdown": WIDGET_NOTE, "text/plain": WIDGET_NOTE},
        }
        rest = {k: v for k, v in data.items() if k not in (WIDGET_MIME, "text/plain")}
        if not rest:
            return [note]
        return [note, {**out, "output_type": "display_data", "data": rest}]
    if "text/html" in data:
        html = "".join(data["text/html"])
        return [{**out, "data": {**data, "text/html": REMOTE_STYLESHEET.sub("", html)}}]
    return [out]


def _site_page(repo: Path, rel: Path) -> bool:
    """Is the repository file ``rel`` a page of the site (a staged notebook or book page)?"""
    parts = rel.parts
    if len(parts) == 2 and parts[0] in PARTS and rel.suffix == ".ipynb":
        return True
    return len(parts) == 2 and parts[0] == "book" and rel.suffix == ".md"


def rewrite_local_links(repo: Path, path: Path, source: str) -> tuple[str, list[Path]]:
    """Markdown ``source`` of notebook ``path`` with its links to repository files that the
    site does not show (``../benchmarks/README.md``, ``../coursekit/``) turned into their text
    followed by the path; also the repository files its relative images show (to stage
    them). Links to pages of the site, to other sites, to anchors, and links to files that
    do not exist (Sphinx reports those) are left as they are."""
    images: list[Path] = []
    root = repo.resolve()

    def replace(m: re.Match) -> str:
        bang, text, url = m.group(1), m.group(2), m.group(3)
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path:
            return m.group(0)
        target = (path.parent / unquote(parts.path)).resolve()
        if root not in target.parents or not target.exists():
            return m.group(0)
        rel = target.relative_to(root)
        if bang:
            if target.is_file():
                images.append(rel)
            return m.group(0)
        if _site_page(repo, rel):
            return m.group(0)
        shown = rel.as_posix() + ("/" if target.is_dir() else "")
        return text if shown.rstrip("/") in text else f"{text} (`{shown}`)"

    return MARKDOWN_LINK.sub(replace, source), images


def transform_notebook(repo: Path, part: str, path: Path) -> dict:
    """The notebook at ``path`` as the site shows it: navigation boxes added, live widget
    views replaced by a note, stylesheets from other sites dropped from HTML outputs (the
    site works offline), a solution's title saying "Solutions"; outputs otherwise as
    stored."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    retitle = part == "solutions"
    for cell in nb["cells"]:
        if "outputs" in cell:
            cell["outputs"] = [new for out in cell["outputs"] for new in _site_outputs(out)]
        if cell["cell_type"] == "markdown":
            source, _ = rewrite_local_links(repo, path, "".join(cell["source"]))
            cell["source"] = source.splitlines(keepends=True)
        if retitle and cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            if source.startswith("# "):
                title, _, rest = source[2:].partition("\n")
                new = "# " + solution_title(title.strip()) + ("\n" + rest if rest else "")
                cell["source"] = new.splitlines(keepends=True)
                retitle = False  # only the first title
    top, end = navigation_cells(repo, part, path)
    first_md = next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"), None)
    at = 0 if first_md is None else first_md + 1
    nb["cells"][at:at] = top
    nb["cells"].extend(end)
    return nb


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` unless ``path`` already holds it (keeps mtimes for Sphinx's cache)."""
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def staged_list(src: Path) -> Path:
    """The record of the files :func:`stage` wrote into ``src`` (next to it, not in it, so
    that Sphinx never reads it): ``<parent>/.<name>.staged.json``."""
    return src.parent / f".{src.name}.staged.json"


def _previously_staged(src: Path) -> set[Path]:
    """The files an earlier :func:`stage` recorded for ``src`` (none if no record)."""
    record = staged_list(src)
    if not record.is_file():
        return set()
    try:
        names = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(names, list):
        return set()
    return {src / name for name in names if isinstance(name, str) and ".." not in name}


def stage(repo: Path, src: Path, remove_unrecorded: bool = False) -> list[Path]:
    """Fill the staging tree ``src`` with the book pages and the transformed notebooks;
    remove the files an earlier staging wrote (:func:`staged_list`) that no longer have a
    source. A file of ``src`` that no staging wrote is left alone, unless
    ``remove_unrecorded`` (the default build folder, staged before the record existed).
    Returns the staged files."""
    staged: list[Path] = []
    for page in sorted((repo / "book").glob("*.md")):
        _write_if_changed(src / page.name, page.read_bytes())
        staged.append(src / page.name)
    for part in PARTS:
        for path in sorted((repo / part).glob("*.ipynb")):
            nb = transform_notebook(repo, part, path)
            text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
            target = src / part / path.name
            _write_if_changed(target, text.encode("utf-8"))
            staged.append(target)
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    _, images = rewrite_local_links(repo, path, "".join(cell["source"]))
                    for rel in images:  # pictures the notebook's text shows: same place
                        _write_if_changed(src / rel, (repo / rel).read_bytes())
                        staged.append(src / rel)
    keep = set(staged)
    ours = _previously_staged(src)
    for old in list(src.rglob("*")):
        if old.is_file() and old not in keep and (remove_unrecorded or old in ours):
            old.unlink()
    names = sorted({p.relative_to(src).as_posix() for p in staged})
    staged_list(src).write_text(json.dumps(names, indent=0) + "\n", encoding="utf-8")
    return staged


DEFAULT_OUT = REPO / "build" / "book"


class ForeignFolderError(FileExistsError):
    """``--out`` names a non-empty folder that no book build made; nothing was written."""


def check_out(out: Path, overwrite: bool = False) -> Path:
    """``out`` resolved, if the build may write there: the default folder, a new or empty
    folder, a folder an earlier build staged (its :func:`staged_list` record), or any
    folder with ``overwrite``. Otherwise :class:`ForeignFolderError` naming ``--out``."""
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise ForeignFolderError(f"--out: {out} is a file, expected a build folder")
    made_here = out == DEFAULT_OUT.resolve() or staged_list(out / "src").is_file()
    if out.is_dir() and any(out.iterdir()) and not (made_here or overwrite):
        raise ForeignFolderError(
            f"--out: {out} is not empty and no book build made it; the build writes and "
            "removes files under it (src/, html/, doctrees/): choose a new or empty folder, "
            "or pass --overwrite to build there anyway"
        )
    return out


def build(out: Path, jobs: int = 1, repo: Path = REPO, overwrite: bool = False) -> int:
    """Stage the sources under ``out/src`` and run Sphinx into ``out/html``; warnings
    (Sphinx's, MyST's, MyST-NB's) are errors and go to ``out/warnings.txt``. Returns
    Sphinx's exit status. ``out`` must pass :func:`check_out` (``overwrite`` as there)."""
    from sphinx.cmd.build import build_main

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive number of processes, got {jobs}")
    out = check_out(out, overwrite)
    src = out / "src"
    legacy = out == DEFAULT_OUT.resolve() and not staged_list(src).is_file()
    src.mkdir(parents=True, exist_ok=True)
    stage(repo, src, remove_unrecorded=legacy)
    warnings = out / "warnings.txt"
    argv = [
        "-b",
        "html",
        "-c",
        str(repo / "book"),
        "-d",
        str(out / "doctrees"),
        "-j",
        str(jobs),
        "-W",
        "--keep-going",
        "-q",
        "-w",
        str(warnings),
        str(src),
        str(out / "html"),
    ]
    return build_main(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "build" / "book",
        help="build folder (default: build/book; the site is OUT/html)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help="Sphinx processes (default 1: the build is short, and 2 is no faster on 2 cores)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="build into a non-empty --out folder that no book build made (its files under "
        "src/, html/ and doctrees/ may be replaced or removed)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        status = build(args.out, jobs=args.jobs, overwrite=args.overwrite)
    except (ForeignFolderError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    index = (args.out / "html" / "index.html").resolve()
    if status == 0:
        print(f"book built in {seconds:.1f} s: {index}")
    else:
        print(
            f"book build FAILED (status {status}) in {seconds:.1f} s; warnings in "
            f"{(args.out / 'warnings.txt').resolve()} (their paths under {args.out}/src/ are "
            "the staged copies of book/, notebooks/, exercises/ and solutions/)",
            file=sys.stderr,
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
