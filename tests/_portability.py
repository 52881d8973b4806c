"""Which stored outputs of the lecture notebooks strict nbval compares (issue 26's table).

A code cell with outputs is *compared* unless it is tagged ``nbval-ignore-output`` or
``nbval-skip`` (or carries nbval's ``# NBVAL_IGNORE_OUTPUT`` / ``# NBVAL_SKIP`` comment). Its
outputs then hold on every machine only if they do not depend on a training's rounding: such
cells print their figure with its band instead (``coursekit.bands``), see README, "Portable
outputs".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

_IGNORE_TAGS = {"nbval-ignore-output", "nbval-skip"}
_IGNORE_COMMENTS = re.compile(r"#\s*NBVAL_(IGNORE_OUTPUT|SKIP)\b")

#: Share of output cells compared, per lecture notebook, on main 53d92d8 (before this rule).
SHARE_BEFORE = {
    "01_density_estimation": 16 / 17,
    "02_change_of_variable_1d": 7 / 8,
    "03_change_of_variable_nd": 8 / 10,
    "04_coupling_layers": 12 / 13,
    "05_realnvp_toy": 16 / 17,
    "06_realnvp_mnist": 15 / 23,
    "07_flows_in_practice": 11 / 16,
    "08_image_flows": 6 / 11,
}
#: A notebook may lose at most a fifth of its compared share; a new notebook keeps 3/4.
KEEP = 0.8
NEW_NOTEBOOK_SHARE = 0.75


@dataclass
class Comparison:
    """The output cells of one notebook, by whether nbval compares them."""

    name: str
    compared: list[int] = field(default_factory=list)
    ignored: list[int] = field(default_factory=list)

    @property
    def outputs(self) -> int:
        return len(self.compared) + len(self.ignored)

    @property
    def share(self) -> float:
        return len(self.compared) / self.outputs if self.outputs else 1.0

    @property
    def floor(self) -> float:
        before = SHARE_BEFORE.get(self.name)
        return KEEP * before if before is not None else NEW_NOTEBOOK_SHARE


def is_ignored(cell: nbformat.NotebookNode) -> bool:
    tags = set(cell.get("metadata", {}).get("tags", []))
    return bool(tags & _IGNORE_TAGS) or bool(_IGNORE_COMMENTS.search(cell.source))


def comparison(path: Path) -> Comparison:
    nb = nbformat.read(path, as_version=4)
    result = Comparison(path.stem)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.get("outputs"):
            (result.ignored if is_ignored(cell) else result.compared).append(index)
    return result


def table(paths: list[Path] = NOTEBOOKS) -> str:
    """The per-notebook table that the test run prints."""
    lines = [
        f"{'notebook':28s} {'output cells':>12s} {'compared':>9s} {'share':>6s} "
        f"{'before':>7s} {'floor':>6s}"
    ]
    for path in paths:
        c = comparison(path)
        before = SHARE_BEFORE.get(c.name)
        shown = f"{before:.2f}" if before is not None else "new"
        lines.append(
            f"{c.name:28s} {c.outputs:12d} {len(c.compared):9d} {c.share:6.2f} "
            f"{shown:>7s} {c.floor:6.2f}"
        )
    return "\n".join(lines)
