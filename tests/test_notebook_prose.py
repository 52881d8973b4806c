"""The prose rule of the lecture notebooks, enforced.

1. A decimal number typed in a markdown cell (``0.014``, ``1.05``, ``2e-3``; plain integers are
   exempt) must appear in a *compared* stored text output of the same notebook — the same
   digits, or an output number that rounds to it — unless it is a literature figure: a parenthesised
   reference containing a year follows it on the same line, e.g. ``1.05 bits/dim (Grathwohl
   et al., 2019, Table 2)``. Numbers inside inline code or fenced code blocks (settings quoted
   from the code), link targets, exercise and section numbers ("Exercise 1.5", "section 2.1")
   are not figures. An output that strict nbval does not compare (``nbval-ignore-output``: a
   figure that depends on a training's rounding, README "Portable outputs") does not count:
   another machine prints other digits there, and the prose would then disagree with it.
2. A code cell whose stored output prints a decimal number contains an ``assert`` or is marked
   illustrative (the cell tag ``illustrative``, a ``# illustrative`` comment, or a printed
   "(illustrative)" label).
3. No development history in a lecture notebook (a list of banned phrases), and every lecture
   notebook has a "## Summary" and a "## References" section.

The checking functions are tested on synthetic notebooks written to ``tmp_path`` (a test of
the test), then applied to every ``notebooks/*.ipynb``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest

from tests._portability import is_ignored

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# A decimal number: 0.014, 1.05, .5, 2e-3, 1.2e+05 (not part of a longer word or version).
_NUMBER = re.compile(r"(?<![\w.])(?:\d+\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\.\d+)(?![\w]|\.\d)")
_VERSION = re.compile(r"\d+\.\d+\.\d+")
_FENCE = re.compile(r"```.*?```", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_HTML_TAG = re.compile(r"<[^>\n]*>")
_EXERCISE = re.compile(
    r"\b(?:[Ee]xercises?|[Ss]ections?|[Cc]hapters?|[Tt]ables?|[Ff]igures?|§)\s*\d+(?:\.\d+)+"
)
_REFERENCE = re.compile(r"\([^()\n]*\b(?:1[89]|20)\d\d[a-z]?\b[^()\n]*\)")
_ASSERT = re.compile(r"^\s*assert\b|\bassert\s", re.M)

BANNED_PHRASES = [
    r"first version",
    r"earlier version",
    r"previous version",
    r"older version",
    r"\bprob(?:e|es|ed|ing)\b",
    r"faster machine",
    r"slower machine",
    r"\bAMD\b",
    r"\bXeon\b",
    r"\bEPYC\b",
    r"\bIntel\b",
    r"images/s\b",
    r"images_per_s",
    r"this course used to",
    r"we used to",
    # test, machine and path words: a lecture teaches flows, not our engineering
    r"load average",
    r"\bnbval\b",
    r"not compared",
    r"\b\d+ cores\b",
    r"x86_64",
    r"shared machine",
    r"quiet moment",
    r"--data-dir",
    r"(?<![\w.~])/(?:work|home|tmp|root|Users|mnt)/",
]


# --------------------------------------------------------------------------------------------
# Reading numbers
# --------------------------------------------------------------------------------------------


def _numbers(text: str) -> list[str]:
    """The decimal numbers in ``text`` as they are written (version strings removed)."""
    text = _VERSION.sub(" ", text)
    return _NUMBER.findall(text)


def _decimals(token: str) -> tuple[float, float]:
    """``(value, half of the last written digit)``: ``"2.44"`` -> (2.44, 0.005)."""
    value = float(token)
    mantissa, _, exponent = token.lower().partition("e")
    places = len(mantissa.partition(".")[2])
    scale = 10.0 ** (int(exponent) if exponent else 0)
    return value, 0.5 * 10.0**-places * scale


def _matches(prose: str, outputs: list[float]) -> bool:
    """Whether a prose number equals (rounding allowed) one of the output numbers."""
    value, half_ulp = _decimals(prose)
    tol = half_ulp * (1 + 1e-9) + 1e-15
    return any(abs(abs(out) - abs(value)) <= tol for out in outputs)


def _output_texts(cell) -> list[str]:
    """Stored text outputs of a code cell (stdout, results, plain displays; not figures,
    widgets or stderr)."""
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            if out.get("name") == "stdout":
                texts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            data = out.get("data", {})
            if any(k.startswith("image/") or "widget" in k for k in data):
                continue
            text = data.get("text/plain", "")
            texts.append("".join(text) if isinstance(text, list) else text)
    return texts


def _output_numbers(nb) -> list[float]:
    """Numbers of the outputs that every machine reproduces (the compared ones)."""
    numbers = []
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_ignored(cell):
            for text in _output_texts(cell):
                for token in _numbers(text.replace(",", "")):
                    value = float(token)
                    if math.isfinite(value):
                        numbers.append(value)
    return numbers


def _prose_lines(source: str) -> list[str]:
    """Markdown lines with code, link targets and tags blanked out."""
    source = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), source)
    lines = []
    for line in source.splitlines():
        line = _INLINE_CODE.sub(" ", line)
        line = _LINK_TARGET.sub("]", line)
        line = _HTML_TAG.sub(" ", line)
        line = _EXERCISE.sub(" ", line)
        lines.append(line)
    return lines


# --------------------------------------------------------------------------------------------
# The three checks: each returns a list of human-readable problems (empty = pass)
# --------------------------------------------------------------------------------------------


def unsupported_prose_numbers(nb) -> list[str]:
    """Decimal numbers in markdown that no stored output shows and that carry no reference."""
    outputs = _output_numbers(nb)
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for line in _prose_lines(cell.source):
            references = [m.end() for m in _REFERENCE.finditer(line)]
            stripped = _VERSION.sub(lambda m: " " * len(m.group(0)), line)
            for match in _NUMBER.finditer(stripped):
                if any(end > match.start() for end in references):
                    continue  # a literature figure, referenced on the same line
                if not _matches(match.group(0), outputs):
                    problems.append(
                        f"markdown cell {index}: {match.group(0)!r} appears in no stored output "
                        f"(line: {line.strip()[:100]!r})"
                    )
    return problems


def _is_illustrative(cell) -> bool:
    if "illustrative" in cell.get("metadata", {}).get("tags", []):
        return True
    if re.search(r"#\s*illustrative\b", cell.source):
        return True
    return any("(illustrative)" in text for text in _output_texts(cell))


def unchecked_printed_numbers(nb) -> list[str]:
    """Code cells that print a decimal number without an assert or the illustrative mark."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        printed = [t for text in _output_texts(cell) for t in _numbers(text.replace(",", ""))]
        if not printed:
            continue
        code = "\n".join(line.split("#", 1)[0] for line in cell.source.splitlines())
        if _ASSERT.search(code) or _is_illustrative(cell):
            continue
        problems.append(
            f"code cell {index} prints {printed[:3]} but has no assert and is not tagged "
            "'illustrative'"
        )
    return problems


def development_history(nb) -> list[str]:
    """Banned phrases (development history, machine comparisons) in any cell or output."""
    problems = []
    for index, cell in enumerate(nb.cells):
        texts = [cell.source, *(_output_texts(cell) if cell.cell_type == "code" else [])]
        for text in texts:
            for phrase in BANNED_PHRASES:
                flags = 0 if phrase in (r"\bAMD\b",) else re.I
                found = re.search(phrase, text, flags)
                if found:
                    problems.append(f"cell {index}: development history {found.group(0)!r}")
    return problems


def missing_sections(nb) -> list[str]:
    headings = {
        line.strip()
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
    }
    return [f"no '{h}' section" for h in ("## Summary", "## References") if h not in headings]


# --------------------------------------------------------------------------------------------
# Tests of the test, on synthetic notebooks
# --------------------------------------------------------------------------------------------


def _notebook(tmp_path: Path, cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    path = tmp_path / "synthetic.ipynb"
    nbformat.write(nb, path)
    return nbformat.read(path, as_version=4)


def _code(source: str, printed: str = "", tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {})
    if printed:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    return cell


def _markdown(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(source)


def test_numbers_are_read_as_written():
    text = "KL 0.014, ratio 1.05, lr 2e-3, 1,000 steps, torch 2.13.0, x1 and 10 nats, .5"
    assert _numbers(text) == ["0.014", "1.05", "2e-3", ".5"]
    assert _decimals("2.44") == (2.44, pytest.approx(0.005))
    assert _decimals("2e-3")[1] == pytest.approx(5e-4)


def test_a_prose_number_absent_from_the_outputs_fails(tmp_path):
    nb = _notebook(
        tmp_path,
        [_markdown("The KL is 0.014 nats."), _code("assert 1\nprint(0.02)", "KL = 0.020\n")],
    )
    problems = unsupported_prose_numbers(nb)
    assert len(problems) == 1 and "'0.014'" in problems[0]


@pytest.mark.parametrize(
    "prose",
    [
        "The KL is 0.014 nats.",  # same digits
        "The KL is 0.01 nats.",  # the output rounds to it
        "The NLL is −2.873 here.",  # unicode minus, output -2.8731
        "It reaches 1.05 bits/dim (Grathwohl et al., 2019, Table 2).",  # literature
        "Use `lr=5e-3` and see [Exercise 1.5](x.ipynb); Exercise 6.7 too.",  # code, exercises
        "See Bishop (Section 2.5) and Table 3.1.",  # section numbers
    ],
)
def test_prose_numbers_shown_by_an_output_or_referenced_pass(tmp_path, prose):
    cell = _code("assert True", "KL = 0.0142 nats\nNLL = -2.8731\n")
    nb = _notebook(tmp_path, [_markdown(prose), cell])
    assert unsupported_prose_numbers(nb) == []


def test_a_number_shown_only_by_an_output_that_is_not_compared_fails(tmp_path):
    trained = _code(
        "# the digits depend on the rounding of the training\nassert True",
        "KL = 0.0142 nats\n",
        tags=("nbval-ignore-output",),
    )
    band = _code("assert True", "band [0.010, 0.030]\n")
    nb = _notebook(tmp_path, [_markdown("The KL is 0.014; its band ends at 0.030."), trained, band])
    problems = unsupported_prose_numbers(nb)
    assert len(problems) == 1 and "'0.014'" in problems[0]


def test_a_reference_must_be_on_the_same_line_and_carry_a_year(tmp_path):
    nb = _notebook(
        tmp_path,
        [_markdown("about 1.05 bits/dim\n(Grathwohl et al., 2019)"), _markdown("1.06 (Table 2)")],
    )
    assert len(unsupported_prose_numbers(nb)) == 2


def test_a_printed_number_needs_an_assert_or_the_illustrative_tag(tmp_path):
    bare = _code("print(0.5)", "0.5\n")
    commented = _code("print(0.5)  # assert later", "0.5\n")
    checked = _code("x = 0.5\nprint(x)\nassert x > 0", "0.5\n")
    tagged = _code("print(0.5)", "0.5\n", tags=("illustrative", "nbval-ignore-output"))
    integers = _code("print(3)", "3 steps\n")
    nb = _notebook(tmp_path, [bare, commented, checked, tagged, integers])
    problems = unchecked_printed_numbers(nb)
    assert [p.split(" prints")[0] for p in problems] == ["code cell 0", "code cell 1"]


def test_development_history_and_missing_sections_are_found(tmp_path):
    nb = _notebook(
        tmp_path,
        [
            _markdown("The first version of this course was slower on an AMD EPYC."),
            _code("print('x')", "654 images/s\n"),
            _markdown("## Summary\n\nThe probability of the data."),
            _code("# not compared by nbval\nprint('x')", "x86_64, 2 cores, load average 4.4\n"),
            _markdown("Run `train --data-dir /work/shared/data` on a shared machine."),
        ],
    )
    found = " ".join(development_history(nb))
    for phrase in (
        "first version",
        "AMD",
        "EPYC",
        "images/s",
        "not compared",
        "nbval",
        "x86_64",
        "2 cores",
        "load average",
        "--data-dir",
        "/work/",
        "shared machine",
    ):
        assert phrase in found
    assert "probability" not in found
    assert missing_sections(nb) == ["no '## References' section"]


# --------------------------------------------------------------------------------------------
# The rule on every lecture notebook
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_lecture_prose_matches_the_outputs(path):
    nb = nbformat.read(path, as_version=4)
    problems = unsupported_prose_numbers(nb) + unchecked_printed_numbers(nb)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_lecture_has_no_development_history_and_ends_with_references(path):
    nb = nbformat.read(path, as_version=4)
    problems = development_history(nb) + missing_sections(nb)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
