"""Fixtures for the end-to-end browser tests: a real JupyterLab driven by headless Chromium.

``nbval`` runs the notebooks' Python but never the widgets' JavaScript; these tests open the
course the way a student does: JupyterLab in a browser, "Run All Cells", sliders moved with
the keyboard, code typed into the CodeMirror editor.

* ``lab_server`` (module scope): ``python -m jupyterlab`` from the test's own interpreter (the
  venv), on a free loopback port with a random token, ``--allow-root`` (CI runs as root),
  serving a TEMPORARY COPY of ``notebooks/`` and ``exercises/`` (the committed notebooks are
  never touched), with its own config/data/runtime dirs (no news or update checks, all cells
  attached to the DOM). Stopped (kernels, then the process group) even when a test fails.
* ``browser`` (module scope): Debian's ``/usr/bin/chromium`` (``COURSEKIT_E2E_CHROMIUM``
  overrides) through Playwright's Python package with a fresh ``--user-data-dir`` and the
  closed-network flags of :data:`CHROMIUM_FLAGS`. No browser is downloaded.
* ``lab`` (module scope): one JupyterLab page, wrapped in :class:`LabPage`.
* ``chromium_context`` (module scope): the same Chromium without JupyterLab, for tests that
  serve their own pages (the course website).

Everything skips with a clear reason when Chromium, Playwright or JupyterLab is missing
(install them with ``bash .ci/install-chromium.sh`` and ``pip install playwright``).
Screenshots go to ``test-output/e2e/`` (git-ignored); a failing test leaves
``FAILED-<test>.png`` and the server log ``jupyterlab.log`` there.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
OUTPUT_DIR = REPO / "test-output" / "e2e"
CHROMIUM = os.environ.get("COURSEKIT_E2E_CHROMIUM", "/usr/bin/chromium")

#: Chromium start-up flags for a closed network (Playwright also passes ``--headless`` for
#: ``headless=True``; the fresh ``--user-data-dir`` comes from ``launch_persistent_context``).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]

#: Seconds to wait for the server to answer, and for a notebook's kernel to become idle.
SERVER_START_TIMEOUT = 120.0
KERNEL_IDLE_TIMEOUT = 120.0

#: JupyterLab user settings: no news/update prompts (closed network, nothing covering the
#: page), every cell attached to the DOM (windowing would detach off-screen cells).
LAB_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


# ------------------------------------------------------------------------------ helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n_chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n_chars:]
    except OSError:
        return "<no log>"


def _api(url: str, method: str = "GET", timeout: float = 5.0) -> Any:
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback only)
        body = resp.read()
    return json.loads(body) if body else None


def _chromium_version() -> str:
    """``Chromium 1xx...`` or skip the test with the reason."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(
            f"Chromium not found at {CHROMIUM} (install it with `bash .ci/install-chromium.sh`, "
            "or point COURSEKIT_E2E_CHROMIUM at a Chromium binary)"
        )
    try:
        out = subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"Chromium at {CHROMIUM} does not run: {err}")
    return out.stdout.strip()


@dataclass
class LabServer:
    """A running JupyterLab: its base URL, token and the temporary root it serves."""

    url: str
    token: str
    root: Path
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        sep = "&" if "?" in path else "?"
        return _api(f"{self.url}{path}{sep}token={self.token}", method=method)


def _prepare_root(root: Path) -> None:
    """Copy the course's notebooks/ and exercises/ into ``root`` (a temp dir)."""
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    for name in ("notebooks", "exercises"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=ignore)


def _write_user_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_USER_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _descendants(pid: int) -> list[Any]:
    try:
        import psutil
    except ImportError:
        return []
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).children(recursive=True)
    return []


def _stop_server(proc: subprocess.Popen, server: LabServer | None) -> None:
    """Shut the kernels down, then the server's process group; kill what is left."""
    children = _descendants(proc.pid)  # kernels run in their own sessions: remember them
    if server is not None and proc.poll() is None:
        with contextlib.suppress(Exception):
            for kernel in server.api("/api/kernels"):
                with contextlib.suppress(Exception):
                    server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    for child in children:
        with contextlib.suppress(Exception):
            if child.is_running():
                child.kill()


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def chromium_version() -> str:
    return _chromium_version()


@pytest.fixture(scope="module")
def playwright_api(chromium_version: str):
    """The ``playwright.sync_api`` module, or skip."""
    try:
        import playwright.sync_api as api
    except ImportError as err:
        pytest.skip(
            f"the Python package playwright is not installed ({err}); "
            "`pip install playwright` (no browser download is needed)"
        )
    return api


@pytest.fixture(scope="module")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUTPUT_DIR.glob("FAILED-*.png"):
        old.unlink()
    return OUTPUT_DIR


@pytest.fixture(scope="module")
def lab_server(
    tmp_path_factory: pytest.TempPathFactory, output_dir: Path, playwright_api
) -> Iterator[LabServer]:
    """JupyterLab on a temporary copy of notebooks/ and exercises/ (see the module doc)."""
    if importlib.util.find_spec("jupyterlab") is None:
        pytest.skip("JupyterLab is not installed in this environment")
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    _prepare_root(root)
    config_dir = base / "config"
    _write_user_settings(config_dir / "lab" / "user-settings")
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        TQDM_DISABLE="1",
        PYTHONHASHSEED="0",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.pop("MPLBACKEND", None)  # the notebooks select the inline backend themselves
    token = secrets.token_hex(24)
    port = _free_port()
    log = output_dir / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = None
    try:
        server = LabServer(url=f"http://127.0.0.1:{port}", token=token, root=root, log=log)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{_tail(log)}")
            try:
                server.api("/api/status", method="GET")
                break
            except (urllib.error.URLError, OSError, ValueError):
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"JupyterLab did not answer within {SERVER_START_TIMEOUT:.0f} s:\n"
                        f"{_tail(log)}"
                    )
                time.sleep(0.3)
        yield server
    finally:
        _stop_server(proc, server)


@contextlib.contextmanager
def _chromium(playwright_api, tmp_path_factory: pytest.TempPathFactory):
    """Debian's Chromium, headless, with the closed-network flags and a fresh profile."""
    user_data = tmp_path_factory.mktemp("chromium-profile")
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(user_data),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def browser(playwright_api, lab_server: LabServer, tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium context with a fresh user-data dir (closed when the module ends)."""
    with _chromium(playwright_api, tmp_path_factory) as context:
        yield context


@pytest.fixture(scope="module")
def chromium_context(playwright_api, tmp_path_factory: pytest.TempPathFactory):
    """Like ``browser``, without JupyterLab: the same Chromium, flags and fresh profile, for
    tests that serve their own pages (the course website, tests/e2e/test_book_browser.py)."""
    with _chromium(playwright_api, tmp_path_factory) as context:
        yield context


@pytest.fixture(scope="module")
def lab(browser, lab_server: LabServer, output_dir: Path) -> Iterator[LabPage]:
    """One JupyterLab page for the module's tests."""
    page = browser.pages[0] if browser.pages else browser.new_page()
    lab_page = LabPage(page, lab_server, output_dir)
    lab_page.start()
    try:
        yield lab_page
    finally:
        page.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        lab_page = getattr(item, "funcargs", {}).get("lab")
        if isinstance(lab_page, LabPage):
            name = re.sub(r"[^\w.-]+", "_", item.name)
            with contextlib.suppress(Exception):
                lab_page.screenshot(f"FAILED-{name}.png")


# ------------------------------------------------------------------------------ page object


class LabPage:
    """What a student does in JupyterLab, as Playwright actions with waits and clear errors."""

    def __init__(self, page: Any, server: LabServer, output_dir: Path) -> None:
        self.page = page
        self.server = server
        self.output_dir = output_dir
        self.console_errors: list[str] = []
        self.t0 = time.monotonic()
        self.timings = output_dir / "timings.log"
        self.timings.write_text("")
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda err: self.console_errors.append(str(err)))

    def log(self, message: str) -> None:
        """Append ``message`` with the seconds since the page opened to timings.log."""
        with open(self.timings, "a") as f:
            f.write(f"{time.monotonic() - self.t0:7.1f} s  {message}\n")

    # -- app and notebooks

    def start(self) -> None:
        self.page.goto(f"{self.server.url}/lab?reset&token={self.server.token}")
        self.page.locator(".jp-MenuBar, .lm-MenuBar").first.wait_for(timeout=90_000)
        self.page.locator(".jp-DirListing-content").first.wait_for(timeout=90_000)
        self.log("JupyterLab page loaded")

    def menu(self, menu: str, item: str) -> None:
        """Click ``menu`` in the menu bar, then ``item`` in it."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()

    def open_notebook(self, path: str) -> Any:
        """Open ``path`` (relative to the served root) with File > Open from Path…, wait for
        its kernel to be idle; return the notebook panel's locator."""
        self.menu("File", "Open from Path…")
        dialog = self.page.locator(".jp-Dialog")
        dialog.locator("input").fill(path)
        dialog.locator("button.jp-mod-accept").click()
        name = Path(path).name
        tab = self.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=name)
        tab.wait_for(timeout=60_000)
        panel = self.page.locator(".jp-NotebookPanel:visible")
        panel.locator(".jp-Cell").first.wait_for(timeout=60_000)
        self.wait_kernel_idle()
        self.log(f"opened {path}, kernel idle")
        return panel

    def wait_kernel_idle(self, timeout: float = KERNEL_IDLE_TIMEOUT) -> None:
        status = self.page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
        status.first.wait_for(timeout=timeout * 1000)

    def close_notebook(self) -> None:
        """Close the current tab without saving (the outputs are discarded) and shut its
        kernel down; never raises (it runs in the tests' ``finally``)."""
        with contextlib.suppress(Exception):
            dirty = self.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
            was_dirty = dirty.first.evaluate("e => e.classList.contains('jp-mod-dirty')")
            self.menu("File", "Close Tab")
            if was_dirty:
                self.page.locator(".jp-Dialog button", has_text="Discard").click(timeout=10_000)
        with contextlib.suppress(Exception):
            for kernel in self.server.api("/api/kernels"):
                self.server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        self.log("closed the notebook, kernel shut down")

    # -- running cells

    def prompts(self, panel: Any) -> list[str]:
        return [t.strip() for t in panel.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()]

    def run_all(self, panel: Any, timeout: float = 150.0) -> None:
        """Clear all outputs, Run > Run All Cells, and wait until every code cell has run;
        fail with the traceback when a cell raised."""
        self.menu("Edit", "Clear Outputs of All Cells")
        self.menu("Run", "Run All Cells")
        deadline = time.monotonic() + timeout
        while True:
            prompts = self.prompts(panel)
            busy = any("*" in p for p in prompts)
            done = prompts and all(re.search(r"\d", p) for p in prompts)
            errors = self.error_outputs(panel)
            if errors and not busy:
                pytest.fail("a cell raised during Run All Cells:\n" + "\n\n".join(errors))
            if done and not busy:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"Run All Cells did not finish within {timeout:.0f} s: {prompts}")
            time.sleep(0.5)
        self.wait_kernel_idle()
        self.log(f"ran all {len(prompts)} code cells")

    def error_outputs(self, panel: Any) -> list[str]:
        """Texts of the cells' error outputs (tracebacks)."""
        texts = panel.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        ).all_inner_texts()
        failed = re.compile(r"Traceback|^\w*(Error|Exception)\b", re.MULTILINE)
        return [t[-2500:] for t in texts if failed.search(t)]

    def code_cell(self, panel: Any, snippet: str) -> Any:
        """The code cell whose source contains ``snippet`` (exactly one), located by its
        position so that the locator still holds after the cell is edited."""
        sources = panel.locator(".jp-CodeCell .jp-InputArea").all_inner_texts()
        found = [i for i, text in enumerate(sources) if snippet in text]
        assert len(found) == 1, f"expected one code cell containing {snippet!r}, found {found}"
        return panel.locator(".jp-CodeCell").nth(found[0])

    def run_cell(self, cell: Any) -> None:
        """Put the cursor in ``cell`` and press Shift+Enter."""
        cell.locator(".cm-content").click()
        self.page.keyboard.press("Shift+Enter")

    def output_text(self, cell: Any) -> str:
        return cell.locator(".jp-OutputArea").inner_text()

    def wait_output(self, cell: Any, pattern: str, what: str, timeout: float = 60.0) -> str:
        """Wait until the cell's output matches ``pattern``; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.output_text(cell)
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{what}: no output matching {pattern!r} within {timeout:.0f} s; the cell "
                    f"shows:\n{text[-2000:]}"
                )
            time.sleep(0.3)

    # -- evidence

    def screenshot(self, name: str, locator: Any = None) -> Path:
        path = self.output_dir / name
        if locator is None:
            self.page.screenshot(path=str(path), full_page=True)
        else:
            locator.screenshot(path=str(path))
        return path
