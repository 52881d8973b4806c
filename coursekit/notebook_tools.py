"""Refresh the stored outputs of the course notebooks.

``python -m coursekit.notebook_tools execute NOTEBOOK [NOTEBOOK ...]`` runs each notebook top
to bottom in a fresh kernel (working directory: the notebook's folder) and writes it back
with its outputs, without per-cell timing metadata so that diffs stay small. ``make
notebooks`` calls it on every lecture notebook and solution. A path that is not an existing
``.ipynb`` file stops the call before anything runs (exit status 2); a notebook that fails
gives exit status 1 after the others ran.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def clean_metadata(nb: nbformat.NotebookNode) -> None:
    """Drop volatile metadata (execution timings, widget state) that changes every run."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)


def execute_notebook(path: Path, timeout: int = 1200, kernel_name: str = "python3") -> float:
    """Execute ``path`` in place; returns the wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    clean_metadata(nb)
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.notebook_tools")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="execute notebooks in place and store their outputs")
    ex.add_argument("notebooks", nargs="+", type=Path)
    ex.add_argument("--timeout", type=int, default=1200, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)
    missing = [p for p in args.notebooks if not p.is_file() or p.suffix != ".ipynb"]
    if missing:  # a typo fails the whole call before anything runs
        for path in missing:
            why = "not an .ipynb file" if path.is_file() else "no such notebook"
            print(f"error: {path}: {why}", file=sys.stderr)
        print("nothing was executed", file=sys.stderr)
        return 2
    os.environ.setdefault("TQDM_DISABLE", "1")
    failed = 0
    for path in args.notebooks:
        try:
            seconds = execute_notebook(path, timeout=args.timeout)
        except Exception as err:  # report every notebook, then fail
            failed += 1
            print(f"FAILED {path}: {type(err).__name__}: {str(err)[-2000:]}", file=sys.stderr)
        else:
            print(f"executed {path} in {seconds:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
