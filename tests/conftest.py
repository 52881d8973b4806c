"""Shared pytest fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one torch thread is faster, and fair to a shared 2-core machine.

    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------ the website


@dataclass
class BuiltBook:
    """The course website built once per test session by ``tools/build_book.py``."""

    out: Path  # the build folder; the site is ``out / "html"``
    status: int  # the build command's exit status (warnings are errors)
    warnings: str  # Sphinx's warnings file (empty for a clean build)
    output: str  # the command's stdout and stderr
    seconds: float  # wall-clock time of the whole build command

    @property
    def html(self) -> Path:
        return self.out / "html"


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> BuiltBook:
    """Build the site from the stored outputs (``make book``'s command) into a temporary
    folder, once for every test that needs it."""
    out = tmp_path_factory.mktemp("book")
    cmd = [sys.executable, str(REPO / "tools" / "build_book.py"), "--out", str(out)]
    # The build runs no coursekit code: keep coverage's subprocess measurement (which
    # doubles the build time) out of it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS_")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    warnings = out / "warnings.txt"
    return BuiltBook(
        out=out,
        status=proc.returncode,
        warnings=warnings.read_text() if warnings.is_file() else "<no warnings file>",
        output=proc.stdout + proc.stderr,
        seconds=seconds,
    )


# ------------------------------------------------------------------ portable outputs (issue 26)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the share of the lecture notebooks' output cells that strict nbval compares."""
    from tests._portability import table

    terminalreporter.section("lecture notebooks: output cells compared digit for digit")
    terminalreporter.write_line(table())
