"""Run an exercise checker in a test: one printed line, no traceback, and its verdict.

Shared by the checker test files (``from _checker_runs import accepts, rejects, run``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

#: LaTeX source a student should never see in a hint: $…$, \command, ^{…} or _{…}.
LATEX = re.compile(r"\$|\\[A-Za-z]+|[_^]\{")


def run(capsys: Any, checker: Callable[..., bool], *fns: Any) -> tuple[bool, str]:
    """Run a checker; return (result, printed text) and check it printed exactly one line."""
    ok = checker(*fns)
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    assert "Traceback" not in out
    assert not LATEX.search(out), f"LaTeX source in a printed line: {out}"
    return ok, out


def accepts(capsys: Any, checker: Callable[..., bool], *fns: Any, exercise: str = "") -> str:
    """The checker passes (``✅ Exercise <exercise>…``); returns the printed line."""
    ok, out = run(capsys, checker, *fns)
    assert ok is True, out
    assert out.startswith(f"✅ Exercise {exercise}".rstrip()), out
    return out


def rejects(
    capsys: Any, checker: Callable[..., bool], *fns: Any, hint: str, exercise: str = ""
) -> str:
    """The checker fails (``❌ Exercise <exercise>…``) with a line containing ``hint``."""
    ok, out = run(capsys, checker, *fns)
    assert ok is False, out
    assert out.startswith(f"❌ Exercise {exercise}".rstrip()), out
    assert hint in out, out
    return out


def table_tests(
    right: dict[str, Callable[..., Any]],
    wrong: dict[str, tuple[Callable[..., Any], str]],
    checker: Callable[..., bool],
    exercise: str,
) -> tuple[Callable[..., None], Callable[..., None]]:
    """Two parametrized tests for one exercise's table: every ``right[name]`` passes, every
    ``wrong[name] = (answer, hint)`` is rejected with a line containing ``hint``. Bind them to
    module-level names (``test_1_1_right, test_1_1_wrong = table_tests(...)``)."""

    @pytest.mark.parametrize("name", list(right))
    def test_right(capsys: Any, name: str) -> None:
        accepts(capsys, checker, right[name], exercise=exercise)

    @pytest.mark.parametrize("name", list(wrong))
    def test_wrong(capsys: Any, name: str) -> None:
        fn, hint = wrong[name]
        rejects(capsys, checker, fn, hint=hint, exercise=exercise)

    return test_right, test_wrong
