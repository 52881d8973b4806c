"""The course as a student sees it: JupyterLab in headless Chromium, widgets included.

1. ``notebooks/02_change_of_variable_1d.ipynb``: Run All Cells, wait for the live
   change-of-variable widget (:func:`coursekit.widgets.build_change_of_variable_1d_widget`),
   move a slider with the keyboard and check that the picture in its Output is redrawn; then
   choose another map in its dropdown and check that sliders and picture follow.
2. ``exercises/02_change_of_variable_1d.ipynb``: Run All Cells (the checker says "not done"),
   type the reference answer of exercise 2.1 (read from ``solutions/``) into the CodeMirror
   editor in place of ``raise NotImplementedError(...)``, run the cell and see the checker's
   ``✅ Exercise 2.1 passed`` line, then the progress cell count it.

Screenshots: ``test-output/e2e/``. Self-test of the widget check: with
``COURSEKIT_E2E_BREAK_WIDGET=1`` the temporary copy of notebook 02 gets one extra cell, right
after the widget's, that makes the widget's redraw callback raise; the widget test must then
fail with a message naming the widget (its initial picture is drawn, slider moves are not).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import textwrap
import time
from pathlib import Path

import pytest

from coursekit.maps1d import get_map

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
LECTURE = "notebooks/02_change_of_variable_1d.ipynb"
EXERCISE = "exercises/02_change_of_variable_1d.ipynb"
SOLUTION = "solutions/02_change_of_variable_1d.ipynb"
WIDGET_CALL = "build_change_of_variable_1d_widget("
EXERCISE_ID = "2.1"
REDRAW_TIMEOUT = 60.0

BREAK_ENV = "COURSEKIT_E2E_BREAK_WIDGET"
SABOTAGE_CELL = """\
# Inserted by the e2e test (COURSEKIT_E2E_BREAK_WIDGET=1): the widget's callback now raises.
import coursekit.widgets as _cw


def _broken_state(*args, **kwargs):
    raise RuntimeError("redraw sabotaged by COURSEKIT_E2E_BREAK_WIDGET")


_cw.change_of_variable_1d_state = _broken_state
"""


def _cell_sources(path: Path) -> list[tuple[str, str]]:
    nb = json.loads(path.read_text())
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def _require(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path.relative_to(REPO)} does not exist (yet)")


def _sabotage_widget(notebook: Path) -> None:
    """Insert :data:`SABOTAGE_CELL` after the widget's cell in ``notebook`` (a temp copy)."""
    nb = json.loads(notebook.read_text())
    index = next(i for i, c in enumerate(nb["cells"]) if WIDGET_CALL in "".join(c["source"]))
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": SABOTAGE_CELL.splitlines(keepends=True),
    }
    nb["cells"].insert(index + 1, cell)
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False))


def _img_src(output) -> str | None:
    img = output.locator("img")
    return img.first.get_attribute("src") if img.count() else None


def _wait_new_picture(output, old: str | None, what: str) -> str:
    """Wait until the Output widget shows an <img> different from ``old``; fail naming
    ``what`` (the widget and the action) when the Output shows a traceback or nothing new
    comes within :data:`REDRAW_TIMEOUT`."""
    deadline = time.monotonic() + REDRAW_TIMEOUT
    while True:
        src = _img_src(output)
        if src and src != old:
            return src
        text = output.inner_text().strip()
        if "Traceback" in text:
            pytest.fail(
                f"{what}: the widget's Python callback raised instead of redrawing the plot; "
                f"its Output shows:\n...{text[-900:]}"
            )
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    pytest.fail(
        f"{what}: the plot was not redrawn within {REDRAW_TIMEOUT:.0f} s (the <img> in the "
        f"widget's Output is {'unchanged' if _img_src(output) else 'missing'}); the Output "
        f"shows: {text[-900:] or '<no text>'!r}. The widget's Python callback is broken or "
        "its JavaScript did not send the change to the kernel."
    )


def _slider_labels(widget) -> list[str]:
    return [t.strip() for t in widget.locator(".widget-slider .widget-label").all_inner_texts()]


def test_change_of_variable_widget_in_jupyterlab(lab, lab_server):
    """Notebook 02 runs in JupyterLab and its widget redraws when a slider or the map moves."""
    _require(REPO / LECTURE)
    sources = [s for kind, s in _cell_sources(REPO / LECTURE) if kind == "code"]
    calls = [s for s in sources if WIDGET_CALL in s]
    assert calls, f"{LECTURE}: no cell calls {WIDGET_CALL}...)"
    match = re.search(r"build_change_of_variable_1d_widget\(\s*[\"'](\w+)[\"']", calls[0])
    map_name = match.group(1) if match else "exp"
    name = (
        f"change-of-variable widget build_change_of_variable_1d_widget({map_name!r}) of {LECTURE}"
    )
    if os.environ.get(BREAK_ENV):
        _sabotage_widget(lab_server.root / LECTURE)

    panel = lab.open_notebook(LECTURE)
    try:
        lab.run_all(panel)
        cell = lab.code_cell(panel, WIDGET_CALL)
        widget = cell.locator(".jp-OutputArea .widget-vbox").first
        try:
            widget.locator(".widget-slider").first.wait_for(timeout=60_000)
        except Exception:
            pytest.fail(
                f"{name}: no slider rendered in the cell output (the ipywidgets JavaScript "
                f"did not render the widget); the output shows: {lab.output_text(cell)[:800]!r}; "
                f"browser console errors: {lab.console_errors[-5:]}"
            )
        output = widget.locator(".widget-output").first
        picture = _wait_new_picture(output, None, f"{name}: initial picture")
        labels = _slider_labels(widget)
        expected = [p.description for p in get_map(map_name).params]
        assert labels == expected, f"{name}: slider labels {labels}, expected {expected}"
        cell.scroll_into_view_if_needed()
        lab.screenshot("02_widget_before.png", widget)

        # Move the last slider one step to the right with the keyboard.
        label = labels[-1]
        slider = widget.locator(".widget-slider").filter(
            has=lab.page.locator(".widget-label", has_text=label)
        )
        readout = slider.locator(".widget-readout")
        before = readout.inner_text().strip()
        slider.locator(".noUi-handle").focus()
        lab.page.keyboard.press("ArrowRight")
        after = readout.inner_text().strip()
        assert after != before, (
            f"{name}: slider {label!r} did not move with the ArrowRight key (readout {before})"
        )
        picture = _wait_new_picture(
            output, picture, f"{name}: after moving slider {label!r} from {before} to {after}"
        )
        lab.log(f"{label!r}: {before} -> {after}, picture redrawn")
        lab.screenshot("02_widget_after_slider.png", widget)

        # Choose another map: the sliders are rebuilt and the picture redrawn.
        select = widget.locator(".widget-dropdown select")
        options = [o.strip() for o in select.locator("option").all_inner_texts()]
        other = next((o for o in options if o.startswith("affine")), None) or next(
            o for o in options if not o.startswith(f"{map_name}:")
        )
        select.select_option(label=other)
        other_map = other.split(":")[0]
        shown = other.replace("\xa0", " ")
        picture = _wait_new_picture(output, picture, f"{name}: after choosing map {shown!r}")
        expected = [p.description for p in get_map(other_map).params]
        deadline = time.monotonic() + 10
        while _slider_labels(widget) != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _slider_labels(widget) == expected, (
            f"{name}: after choosing {shown!r} the sliders are {_slider_labels(widget)}, "
            f"expected {expected}"
        )
        lab.log(f"map {shown!r}: picture and sliders redrawn")
        lab.screenshot("02_widget_after_map.png", widget)
        lab.screenshot("02_notebook.png")
        assert not lab.error_outputs(panel)
    finally:
        lab.close_notebook()


def _solution_code(exercise_id: str) -> list[str]:
    """The code lines (comments dropped, dedented) of the reference answer of ``exercise_id``."""
    for kind, source in _cell_sources(REPO / SOLUTION):
        m = re.search(
            rf"### BEGIN SOLUTION Exercise {re.escape(exercise_id)}\b.*?\n(.*?)### END SOLUTION",
            source,
            re.S,
        )
        if kind == "code" and m:
            code = textwrap.dedent(m.group(1))
            lines = [ln.rstrip() for ln in code.splitlines()]
            return [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    pytest.skip(f"{SOLUTION}: no solution cell for exercise {exercise_id}")


def test_exercise_solved_in_jupyterlab_editor(lab, lab_server):
    """Exercise 2.1: type the answer into the editor, run it, see the checker pass."""
    _require(REPO / EXERCISE)
    _require(REPO / SOLUTION)
    committed = hashlib.sha256((REPO / EXERCISE).read_bytes()).hexdigest()
    raise_marker = f'raise NotImplementedError("Exercise {EXERCISE_ID}'
    raise_lines = [
        ln for _, s in _cell_sources(REPO / EXERCISE) for ln in s.splitlines() if raise_marker in ln
    ]
    assert len(raise_lines) == 1, f"{EXERCISE}: expected one line with {raise_marker!r}"
    indent = raise_lines[0][: len(raise_lines[0]) - len(raise_lines[0].lstrip())]
    code = _solution_code(EXERCISE_ID)
    what = f"exercise {EXERCISE_ID} of {EXERCISE}"

    panel = lab.open_notebook(EXERCISE)
    try:
        lab.run_all(panel)
        cell = lab.code_cell(panel, raise_marker)
        lab.wait_output(cell, rf"Exercise {re.escape(EXERCISE_ID)}\b", what, timeout=30)
        assert "✅" not in lab.output_text(cell), f"{what}: passes before it is solved"

        # Select the `raise NotImplementedError(...)` line (from its indentation to its end)
        # and type the answer over it.
        line = cell.locator(".cm-line", has_text=raise_marker)
        line.click()
        lab.page.keyboard.press("Home")
        lab.page.keyboard.press("Shift+End")
        if len(code) == 1:
            lab.page.keyboard.type(code[0], delay=5)
        else:  # a multi-line answer: insert as a paste would (no auto-indent on Enter)
            lab.page.keyboard.insert_text(code[0] + "".join(f"\n{indent}{ln}" for ln in code[1:]))
        editor_text = cell.locator(".cm-content").inner_text()
        assert code[0] in editor_text and "NotImplementedError" not in editor_text, (
            f"{what}: the editor holds {editor_text!r} after typing"
        )
        lab.page.keyboard.press("Shift+Enter")
        text = lab.wait_output(
            cell, rf"(✅|❌) Exercise {re.escape(EXERCISE_ID)}\b", what, timeout=60
        )
        assert f"✅ Exercise {EXERCISE_ID} passed" in text, f"{what}: the checker says {text!r}"
        lab.log(f"{what}: typed, ran, checker passed")
        cell.scroll_into_view_if_needed()
        lab.screenshot("02_exercise_solved.png", cell)

        progress = lab.code_cell(panel, "show_progress(")
        lab.run_cell(progress)
        chapter = EXERCISE_ID.split(".")[0]
        text = lab.wait_output(
            progress, rf"Chapter {chapter}: 1/\d+ exercises passed", f"progress of {what}"
        )
        assert re.search(rf"✅ {re.escape(EXERCISE_ID)} ", text), text
        lab.screenshot("02_exercise_progress.png", progress)
        lab.screenshot("02_exercise_notebook.png")
        assert not lab.error_outputs(panel)
    finally:
        lab.close_notebook()
    # the committed exercise notebook is untouched: only the temporary copy was edited
    assert hashlib.sha256((REPO / EXERCISE).read_bytes()).hexdigest() == committed
