"""The package docstring: its equation → code index names real, importable functions in the
files it says, the README carries the same index, and every module of coursekit is listed."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import coursekit

ROOT = Path(__file__).resolve().parents[1]


def index_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| (") or line.startswith("| —")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def test_every_indexed_name_exists_in_the_file_the_index_gives():
    rows = index_rows(coursekit.__doc__)
    assert len(rows) >= 14
    covered: set[int] = set()
    for eq in (row[0] for row in rows if row[0] != "—"):
        first, _, last = eq.partition("–")
        covered.update(range(int(first.strip("()")), int((last or first).strip("()")) + 1))
    assert covered == set(range(1, 15))  # every slide equation (1)–(14) has a home
    for _, _, name, file in rows:
        obj = resolve(f"coursekit.{name}")
        assert callable(obj), name
        source = Path(inspect.getsourcefile(inspect.unwrap(obj))).resolve()
        assert source == (ROOT / "coursekit" / file).resolve(), (name, source)


def test_readme_has_the_same_index():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert index_rows(readme) == index_rows(coursekit.__doc__)


def test_package_docstring_lists_every_module():
    names = [
        info.name
        for info in pkgutil.walk_packages(coursekit.__path__, prefix="coursekit.")
        if info.name.count(".") >= 1
    ]
    assert len(names) > 20
    doc = coursekit.__doc__
    missing = [n for n in names if f":mod:`{n}`" not in doc and f":mod:`~{n}`" not in doc]
    assert not missing, f"modules missing from coursekit's docstring: {missing}"
