"""Every checker's hint names the lecture notebook and section that teach the idea: the table
``coursekit.checkers._sections.SECTIONS`` covers every exercise, names real headings of real
notebooks whose text mentions the exercise's key term, and the checker decorator appends its
pointer, in plain text (no LaTeX), to a ❌ hint exactly once."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

import coursekit.checkers as ck
from coursekit.checkers._common import EXERCISES
from coursekit.checkers._sections import SECTIONS, plain, pointer, section_text, with_pointer

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def headings(notebook: Path) -> set[str]:
    """The text of every markdown heading of ``notebook``, without its ``#`` marks."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return {
        line.lstrip("#").strip()
        for cell in cells
        if cell["cell_type"] == "markdown"
        for line in "".join(cell["source"]).splitlines()
        if re.match(r"#{1,6} ", line)
    }


def lecture(number: str) -> Path:
    found = sorted((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    assert len(found) == 1, (number, found)
    return found[0]


def test_every_registered_exercise_has_a_section_and_no_entry_is_stale():
    assert len(EXERCISES) >= 46
    assert sorted(EXERCISES) == sorted(SECTIONS)


@pytest.mark.parametrize("exercise", sorted(SECTIONS))
def test_each_section_is_a_heading_of_its_lecture_notebook(exercise):
    number, title, _ = SECTIONS[exercise]
    assert re.fullmatch(r"\d{2}", number), number
    assert title in headings(lecture(number)), (exercise, number, title)


@pytest.mark.parametrize("exercise", sorted(SECTIONS))
def test_each_pointed_section_mentions_the_key_term_of_its_exercise(exercise):
    number, title, term = SECTIONS[exercise]
    cells = json.loads(lecture(number).read_text(encoding="utf-8"))["cells"]
    text = section_text(cells, title)
    assert text.strip(), (exercise, title)
    assert term.lower() in text.lower(), (exercise, title, term)


def test_section_text_stops_at_the_next_heading_of_the_same_level():
    cells = [
        {"cell_type": "markdown", "source": "## A\nalpha\n### A.1\nbeta"},
        {"cell_type": "code", "source": "gamma = 1"},
        {"cell_type": "markdown", "source": "## B\ndelta"},
    ]
    assert section_text(cells, "A").split() == ["alpha", "###", "A.1", "beta", "gamma", "=", "1"]
    assert section_text(cells, "A.1").split() == ["beta", "gamma", "=", "1"]
    assert section_text(cells, "B").split() == ["delta"]
    assert section_text(cells, "C") == ""


def test_pointers_are_plain_text():
    assert plain(r"How close? $D_{\mathrm{KL}}(p\,\|\,p_\theta)$ and `x`") == (
        "How close? D_KL(p ‖ p_θ) and x"
    )
    for exercise in SECTIONS:
        shown = pointer(exercise)
        assert not re.search(r"[$\\`{}]", shown), shown


def test_exercises_point_to_their_own_chapter_or_an_earlier_one():
    for exercise, (number, _, _) in SECTIONS.items():
        assert int(number) <= int(exercise.split(".")[0]), exercise


def run(capsys, checker, *fns) -> str:
    assert checker(*fns) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Traceback" not in out, out
    return out


def expected(exercise: str) -> str:
    number, title, _ = SECTIONS[exercise]
    return f"(see notebook {number}, section '{plain(title)}')"


def test_wrong_answers_print_the_notebook_and_section(capsys):
    out = run(capsys, ck.check_peak_density, lambda: 1.0 / math.sqrt(2.0 * math.pi))
    assert "the Jacobian factor of eq (9) is missing" in out, out
    assert out.rstrip().endswith(expected("2.5")), out
    assert "notebook 02, section '4. The theorem (9)" in out, out

    out = run(capsys, ck.check_kl_gaussians, lambda m1, s1, m2, s2: 0.0)
    assert out.startswith("❌ Exercise 1.1") and expected("1.1") in out, out

    out = run(capsys, ck.check_mean_and_se, lambda values: (sum(values) / len(values), 0.0))
    assert out.startswith("❌ Exercise 7.5") and expected("7.5") in out, out

    out = run(capsys, ck.check_iw_bound, lambda log_w: log_w.mean(1))
    assert out.startswith("❌ Exercise 8.4") and out.rstrip().endswith(expected("8.4")), out

    def no_log_det(f, x):
        return torch.zeros(x.shape[0], dtype=torch.float64)

    out = run(capsys, ck.check_log_abs_det_jacobian, no_log_det)
    assert out.startswith("❌ Exercise 3.1") and expected("3.1") in out, out


def test_a_crash_and_an_unfinished_exercise_also_point_to_the_lecture(capsys):
    def crashes(*args):
        raise ValueError("boom")

    out = run(capsys, ck.check_coupling_forward, crashes)
    assert "your code raised ValueError: boom" in out and expected("4.1") in out, out

    def not_done(*args):
        raise NotImplementedError("Exercise 4.2")

    out = run(capsys, ck.check_coupling_inverse, not_done)
    assert out.startswith("Exercise 4.2: not done yet"), out
    assert pointer("4.2") in out, out


def test_a_hint_that_already_names_a_notebook_keeps_only_its_own_pointer(capsys):
    out = run(capsys, ck.check_never_transformed, lambda masks: [True] * masks.shape[1])
    assert "see notebook 04, section 'Why the masks must alternate'" in out, out
    assert out.count("notebook") == 1, out
    assert with_pointer("4.4", "see notebook 04, section 'x'") == "see notebook 04, section 'x'"
    assert with_pointer("4.4", "wrong") == f"wrong {expected('4.4')}"
    assert with_pointer("99.1", "wrong") == "wrong"
