"""Generate the exercise notebooks from the solution notebooks (the single source).

``python -m coursekit.exercises build`` reads every ``solutions/*.ipynb`` and writes
``exercises/`` with the same names, where in every code cell each block::

        ### BEGIN SOLUTION Exercise 4.2: coupling inverse
        ...reference code...
        ### END SOLUTION

becomes ``raise NotImplementedError("Exercise 4.2: coupling inverse")`` at the indentation
of the ``BEGIN`` line. Outputs and execution counts are cleared, and cells tagged
``solution-only`` are dropped. ``build --check`` writes nothing: it exits with status 1 and
names every exercise notebook that is missing, extra or different from what ``build``
would write. ``build`` never removes or replaces a notebook it did not write (``--overwrite``
replaces them); a folder without solution notebooks, or such a refusal, exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\b[ \t]*(?P<label>.*?)[ \t]*$")
END = re.compile(r"^[ \t]*### END SOLUTION\b")
LABEL = re.compile(r"^Exercise \d+\.\d+: \S.*$")
SOLUTION_ONLY_TAG = "solution-only"


class SolutionMarkupError(ValueError):
    """A ``BEGIN``/``END SOLUTION`` block is malformed; the message names file and cell."""


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace each ``BEGIN … END SOLUTION`` block of ``source`` by a ``raise``.

    Args:
        source: the code of one cell.
        where: a description (file and cell) used in error messages.

    Raises:
        SolutionMarkupError: unlabelled or unterminated block, nested BEGIN, stray END.
    """
    out: list[str] = []
    inside = False
    for lineno, line in enumerate(source.split("\n"), start=1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise SolutionMarkupError(f"{where}, line {lineno}: nested BEGIN SOLUTION")
            label = begin.group("label")
            if not LABEL.match(label):
                raise SolutionMarkupError(
                    f"{where}, line {lineno}: expected '### BEGIN SOLUTION Exercise N.M: "
                    f"<short title>', got {line.strip()!r}"
                )
            literal = json.dumps(label, ensure_ascii=False)  # a valid Python string literal
            out.append(f"{begin.group('indent')}raise NotImplementedError({literal})")
            inside = True
        elif END.match(line):
            if not inside:
                raise SolutionMarkupError(f"{where}, line {lineno}: END SOLUTION without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise SolutionMarkupError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return "\n".join(out)


def make_exercise(solution: nbformat.NotebookNode, name: str = "notebook") -> str:
    """The exercise notebook generated from ``solution``, as the text written to disk."""
    nb = nbformat.from_dict(solution)  # a deep copy
    cells = []
    for index, cell in enumerate(nb.cells):
        if SOLUTION_ONLY_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"{name}, cell {index}")
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    # Keep only the language name: the interpreter version of whoever ran the solutions
    # must not make exercises/ out of date.
    nb.metadata["language_info"] = {
        "name": nb.metadata.get("language_info", {}).get("name", "python")
    }
    return nbformat.writes(nb) + "\n"


#: The record, in an exercises folder other than ``solutions``' sibling ``exercises/``, of
#: the notebooks :func:`build` wrote there (the files it may later replace or remove).
RECORD = ".generated-exercises.json"


class ForeignFileError(FileExistsError):
    """``build`` would replace notebooks it did not write; nothing was written."""


def expected_exercises(solutions: Path) -> dict[str, str]:
    """``{file name: text}`` of every exercise notebook generated from ``solutions``
    (``FileNotFoundError`` naming ``solutions`` if it is not a folder of notebooks)."""
    if not solutions.is_dir():
        raise FileNotFoundError(f"solutions: no such directory {solutions}")
    if not any(solutions.glob("*.ipynb")):
        raise FileNotFoundError(
            f"solutions: no *.ipynb notebook in {solutions}, nothing to build or check "
            "(expected the folder of solution notebooks, e.g. solutions/)"
        )
    result = {}
    for path in sorted(solutions.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        result[path.name] = make_exercise(nb, str(path))
    return result


def _generated_here(solutions: Path, exercises: Path, present: set[str]) -> set[str]:
    """The notebooks of ``exercises`` that the generator wrote: all of them in ``solutions``'
    sibling ``exercises/`` (the course's generated folder), else those in its :data:`RECORD`."""
    if exercises.resolve() == solutions.resolve().parent / "exercises":
        return present
    try:
        names = json.loads((exercises / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def build(
    solutions: Path, exercises: Path, check: bool = False, overwrite: bool = False
) -> list[str]:
    """Write (or, with ``check``, compare) ``exercises/``; returns the problems found.

    Without ``check`` the exercise notebooks are written and stale ones that the generator
    wrote are removed (in ``solutions``' sibling ``exercises/`` every notebook is generated;
    elsewhere the generator records what it wrote in :data:`RECORD`); the list is empty.
    A notebook it did not write is never removed, and never replaced unless ``overwrite``
    (else :class:`ForeignFileError` naming them, before anything is written). With
    ``check`` each problem is a line naming a missing, extra or different file.
    """
    expected = expected_exercises(solutions)
    present = {p.name for p in exercises.glob("*.ipynb")} if exercises.is_dir() else set()
    problems: list[str] = []
    if check:
        for name, text in expected.items():
            path = exercises / name
            if name not in present:
                problems.append(f"{path}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{path}: differs from what the generator makes")
        for name in sorted(present - expected.keys()):
            problems.append(f"{exercises / name}: extra (no solutions/{name})")
        return problems
    ours = _generated_here(solutions, exercises, present)
    foreign = [
        name
        for name, text in expected.items()
        if name in present
        and name not in ours
        and (exercises / name).read_text(encoding="utf-8") != text
    ]
    if foreign and not overwrite:
        raise ForeignFileError(
            f"exercises: {', '.join(str(exercises / n) for n in foreign)} exist and were not "
            "written by this generator; nothing was written (pass --overwrite to replace them, "
            "or choose another --exercises folder)"
        )
    exercises.mkdir(parents=True, exist_ok=True)
    for name, text in expected.items():
        path = exercises / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for name in (present & ours) - expected.keys():
        (exercises / name).unlink()
    if exercises.resolve() != solutions.resolve().parent / "exercises":
        (exercises / RECORD).write_text(json.dumps(sorted(expected)) + "\n", encoding="utf-8")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.exercises")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write exercises/ from solutions/")
    b.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail if exercises/ is not what build would write",
    )
    b.add_argument("--solutions", type=Path, default=Path("solutions"))
    b.add_argument("--exercises", type=Path, default=Path("exercises"))
    b.add_argument(
        "--overwrite",
        action="store_true",
        help="replace notebooks in --exercises that the generator did not write",
    )
    args = parser.parse_args(argv)
    try:
        problems = build(args.solutions, args.exercises, check=args.check, overwrite=args.overwrite)
    except (SolutionMarkupError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        print(
            "exercises/ is out of date: run `python -m coursekit.exercises build` "
            "(or `make exercises`)",
            file=sys.stderr,
        )
        return 1
    n = len(expected_exercises(args.solutions))
    print(f"{'checked' if args.check else 'built'} {n} exercise notebooks in {args.exercises}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
