"""The exercise generator (coursekit.exercises), the sync of exercises/ with solutions/, and
the untouched exercise notebooks running top to bottom with a "not done yet" line each."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import coursekit.checkers as ck
from coursekit.checkers import _common
from coursekit.exercises import (
    SolutionMarkupError,
    build,
    main,
    make_exercise,
    strip_solutions,
)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
NOTEBOOKS = sorted(SOLUTIONS.glob("*.ipynb"))


# ---------------------------------------------------------------- generator unit tests


def test_strip_solutions_keeps_indentation_and_labels():
    src = (
        "def f(x):\n"
        '    """doc"""\n'
        "    ### BEGIN SOLUTION Exercise 4.2: coupling inverse\n"
        "    y = x + 1\n"
        "    return y\n"
        "    ### END SOLUTION\n"
        "\n"
        "check(f);"
    )
    out = strip_solutions(src)
    assert out == (
        "def f(x):\n"
        '    """doc"""\n'
        '    raise NotImplementedError("Exercise 4.2: coupling inverse")\n'
        "\n"
        "check(f);"
    )
    compile(out, "cell", "exec")


def test_strip_solutions_several_blocks_and_top_level():
    src = (
        "### BEGIN SOLUTION Exercise 1.1: a\nx = 1\n### END SOLUTION\n"
        'def g():\n\t### BEGIN SOLUTION Exercise 1.2: b "quoted"\n\treturn 2\n'
        "\t### END SOLUTION"
    )
    out = strip_solutions(src)
    assert out.splitlines() == [
        'raise NotImplementedError("Exercise 1.1: a")',
        "def g():",
        '\traise NotImplementedError("Exercise 1.2: b \\"quoted\\"")',
    ]


@pytest.mark.parametrize(
    "src, message",
    [
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "expected '### BEGIN SOLUTION Exercise"),
        ("### BEGIN SOLUTION Exercise 1.1: a\nx = 1", "without END"),
        ("x = 1\n### END SOLUTION", "without BEGIN"),
        (
            "### BEGIN SOLUTION Exercise 1.1: a\n### BEGIN SOLUTION Exercise 1.2: b\n"
            "### END SOLUTION",
            "nested",
        ),
    ],
)
def test_strip_solutions_rejects_bad_markup(src, message):
    with pytest.raises(SolutionMarkupError, match=re.escape(message)):
        strip_solutions(src, "sol.ipynb, cell 3")


def _solution_notebook() -> nbformat.NotebookNode:
    code = new_code_cell(
        "def f():\n    ### BEGIN SOLUTION Exercise 9.1: f\n    return 1\n    ### END SOLUTION",
        execution_count=4,
        outputs=[new_output("stream", name="stdout", text="✅ passed\n")],
    )
    code.metadata["execution"] = {"iopub.status.busy": "2024"}
    only = new_code_cell("assert_all_passed(9)", execution_count=5)
    only.metadata["tags"] = ["solution-only"]
    return new_notebook(cells=[new_markdown_cell("# Title"), code, only])


def test_make_exercise_clears_outputs_and_drops_solution_only_cells():
    nb = nbformat.reads(make_exercise(_solution_notebook()), as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]
    code = nb.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert "execution" not in code.metadata
    assert 'raise NotImplementedError("Exercise 9.1: f")' in code.source
    assert "return 1" not in code.source


def test_build_and_check_report_missing_extra_and_different(tmp_path, capsys):
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    sol.mkdir()
    nbformat.write(_solution_notebook(), sol / "09_a.ipynb")
    nbformat.write(_solution_notebook(), sol / "10_b.ipynb")
    assert build(sol, ex, check=True) == [
        f"{ex / '09_a.ipynb'}: missing",
        f"{ex / '10_b.ipynb'}: missing",
    ]
    assert build(sol, ex) == []
    assert build(sol, ex, check=True) == []
    args = ["build", "--solutions", str(sol), "--exercises", str(ex)]
    assert main([*args, "--check"]) == 0

    (ex / "09_a.ipynb").write_text((ex / "09_a.ipynb").read_text() + " ")
    (ex / "11_extra.ipynb").write_text("{}")
    (ex / "10_b.ipynb").unlink()
    capsys.readouterr()
    assert main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert "09_a.ipynb: differs from what the generator makes" in err
    assert "10_b.ipynb: missing" in err
    assert "11_extra.ipynb: extra" in err
    assert main(args) == 0
    assert sorted(p.name for p in ex.glob("*.ipynb")) == ["09_a.ipynb", "10_b.ipynb"]
    assert main([*args, "--check"]) == 0


def test_cli_reports_markup_errors_with_the_file(tmp_path, capsys):
    sol = tmp_path / "solutions"
    sol.mkdir()
    nb = new_notebook(cells=[new_code_cell("### BEGIN SOLUTION Exercise 1.1: a\nx = 1")])
    nbformat.write(nb, sol / "01_x.ipynb")
    assert main(["build", "--solutions", str(sol), "--exercises", str(tmp_path / "ex")]) == 2
    assert "01_x.ipynb, cell 0" in capsys.readouterr().err


# ---------------------------------------------------------------- the course's notebooks


def test_one_solution_notebook_per_lecture():
    lectures = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert [p.name for p in NOTEBOOKS] == [p.name for p in lectures]
    assert [p.name[:2] for p in NOTEBOOKS][:8] == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solution_code_finds_files_through_coursekit_not_relative_paths(path):
    # issue 27: a copied notebook, or one run from another folder, must still find data and
    # benchmark results (7.5 read ../benchmarks/flows_in_practice.json)
    relative = re.compile(r"""Path\(\s*["']\.\.["']|["']\.\./""")
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            assert not relative.search(cell.source), (path.name, cell.source[:200])


def test_exercises_directory_is_in_sync_with_the_generator():
    problems = build(SOLUTIONS, EXERCISES, check=True)
    assert problems == [], "run `python -m coursekit.exercises build`:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solution_blocks_match_the_chapter_checkers(path):
    """Every checker of the chapter is called in the notebook, and every labelled block is
    one of the chapter's exercises."""
    chapter = int(path.name[:2])
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    labels = set(re.findall(r"### BEGIN SOLUTION Exercise (\d+\.\d+):", source))
    ids = _common.chapter_exercises(chapter)
    assert labels == set(ids)
    assert 4 <= len(ids) <= 7
    for name in ck.__all__:
        fn = getattr(ck, name)
        if name.startswith("check_") and getattr(fn, "exercise", "").startswith(f"{chapter}."):
            assert f"{name}(" in source, f"{name} is not called in {path.name}"
    assert f"assert_all_passed({chapter})" in source


@pytest.mark.parametrize("path", sorted(EXERCISES.glob("*.ipynb")), ids=lambda p: p.name)
def test_untouched_exercise_notebook_runs_and_says_not_done(path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError on any error
    text = "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream"
    )
    chapter = int(path.name[:2])
    ids = _common.chapter_exercises(chapter)
    for e in ids:
        assert f"Exercise {e}: not done yet — " in text, text
    assert "✅" not in text and "❌" not in text and "Traceback" not in text
    assert f"Chapter {chapter}: 0/{len(ids)} exercises passed." in text
    assert text.count("(not done)") == len(ids)
