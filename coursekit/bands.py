"""Bands for trained figures, and the committed benchmark results they come from.

A training's result is not reproducible digit for digit across machines: Adam amplifies the
round-off of the CPU's kernels (another BLAS code path, torch's scalar kernels, another thread
count), so after a few hundred steps two machines follow different trajectories from the same
seed — as if they had used different seeds. A figure printed by a live training is therefore
shown with its **band**: the spread of the same run over many seeds, measured by a committed
benchmark (``benchmarks/<name>.json``), and asserted inside it.

The band of one run is ``mean ± k·sd`` over the seeds (the standard deviation ``sd``, not the
standard error: a run on another machine is one more draw, not an average). With ``k = 4`` a
normally distributed figure leaves its band with probability 6·10⁻⁵, and by Chebyshev's
inequality any distribution with that mean and spread does so with probability at most 1/16.

:func:`benchmark_results` reads a committed result file from the repository, so that a
notebook copied elsewhere (or run from another folder) still finds it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BENCHMARKS_DIR", "Band", "benchmark_results"]

#: the repository's ``benchmarks/`` folder (coursekit is installed editable from the repository).
BENCHMARKS_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_results(name: str) -> dict[str, Any]:
    """The committed results ``benchmarks/<name>.json`` (``name`` without ``.json``)."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if not name or "/" in name or "\\" in name or name.endswith(".json"):
        raise ValueError(f"name: expected a file name in benchmarks/ without .json, got {name!r}")
    path = BENCHMARKS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"name: no committed results {path} (run the benchmark's command from "
            "benchmarks/README.md to make them)"
        )
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Band:
    """The range ``[low, high]`` in which one run of a trained figure falls on any machine."""

    low: float
    high: float
    mean: float
    sd: float
    k: float
    runs: int
    source: str = ""

    @classmethod
    def from_runs(cls, values: Iterable[float], k: float = 4.0, source: str = "") -> Band:
        """``mean ± k·sd`` of ``values`` (one figure per seed; ``sd`` with ``n − 1``)."""
        try:
            data = [float(v) for v in values]
        except (TypeError, ValueError) as err:
            raise TypeError(f"values: expected real numbers, got {values!r}") from err
        if len(data) < 3:
            raise ValueError(f"values: expected at least 3 runs, got {len(data)}")
        if not all(math.isfinite(v) for v in data):
            raise ValueError(f"values: expected finite numbers, got {data}")
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not k > 0:
            raise ValueError(f"k: expected a positive number, got {k!r}")
        mean = sum(data) / len(data)
        sd = math.sqrt(sum((v - mean) ** 2 for v in data) / (len(data) - 1))
        return cls(mean - k * sd, mean + k * sd, mean, sd, float(k), len(data), source)

    def __contains__(self, value: object) -> bool:
        try:
            v = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return self.low <= v <= self.high

    def format(self, digits: int = 4) -> str:
        """``"[low, high]"`` with ``digits`` significant digits."""
        return f"[{self.low:.{digits}g}, {self.high:.{digits}g}]"

    def __str__(self) -> str:
        where = f" of {self.source}" if self.source else ""
        return (
            f"{self.format()} (mean {self.mean:.4g} ± {self.k:g} sd, sd {self.sd:.2g}, "
            f"{self.runs} seeds{where})"
        )
