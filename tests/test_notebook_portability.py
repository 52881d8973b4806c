"""Stored outputs that hold on every machine (README, "Portable outputs").

Strict nbval compares the lecture notebooks' stored outputs digit for digit; a cell whose
figures depend on a training's rounding is excluded (``nbval-ignore-output``) and must say why
and assert its figure inside a band. These tests bound how many cells may be excluded, so
that the strict part stays strict, and print the table (also shown at the end of every test
run, ``tests/conftest.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tests._portability import NOTEBOOKS, comparison, is_ignored, table

_ASSERT = re.compile(r"^\s*assert\b|\bassert\s", re.M)


def _reason(source: str) -> bool:
    """A ``#`` comment (not nbval's own marker) that says why the output may differ."""
    comments = [line.split("#", 1)[1] for line in source.splitlines() if "#" in line]
    return any(len(c.split()) >= 4 and "NBVAL_" not in c for c in comments)


def test_the_table_is_printed_and_every_notebook_keeps_its_compared_share(capsys):
    print(table())
    out = capsys.readouterr().out
    assert all(path.stem in out for path in NOTEBOOKS)
    low = [
        f"{c.name}: {len(c.compared)}/{c.outputs} = {c.share:.2f} < floor {c.floor:.2f}"
        for c in map(comparison, NOTEBOOKS)
        if c.share < c.floor - 1e-12
    ]
    assert not low, "too few output cells compared:\n" + "\n".join(low)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_an_excluded_output_says_why_and_asserts_what_it_shows(path: Path):
    nb = nbformat.read(path, as_version=4)
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.get("outputs") or not is_ignored(cell):
            continue
        if not _reason(cell.source):
            problems.append(f"cell {index}: no comment saying why its output may differ")
        code = "\n".join(line.split("#", 1)[0] for line in cell.source.splitlines())
        if not _ASSERT.search(code):
            problems.append(f"cell {index}: its output is not compared and nothing is asserted")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_the_checks_themselves(tmp_path):
    code = nbformat.v4.new_code_cell
    out = [nbformat.v4.new_output("stream", name="stdout", text="0.5\n")]
    cells = [
        code("print(0.5)", outputs=out),
        code("print(0.5)", outputs=out, metadata={"tags": ["nbval-ignore-output"]}),
        code("# NBVAL_IGNORE_OUTPUT\nprint(0.5)", outputs=out),
        code("x = 1"),
    ]
    path = tmp_path / "t.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    c = comparison(path)
    assert (c.compared, c.ignored, c.outputs) == ([0], [1, 2], 3)
    assert c.share == pytest.approx(1 / 3) and c.floor == pytest.approx(0.75)
    assert _reason("# the digits depend on the rounding of the training\nprint(1)")
    assert not _reason("# NBVAL_IGNORE_OUTPUT\nprint(1)") and not _reason("print(1)  # x")
