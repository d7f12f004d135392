"""Helpers for the real-browser test: a JupyterLab server in temp dirs, and headless Chromium.

The recipe (Debian chromium driven by Python Playwright through ``executable_path``, the
flags, the JupyterLab command line) is the one known to work on these machines; never run
``playwright install``, which downloads a browser.

The same server serves Jupyter Notebook 7 when the ``notebook`` package is installed: its
server extension, enabled by installing it, adds ``/tree`` and ``/notebooks/NAME.ipynb`` to
whichever of ``jupyter lab`` and ``jupyter notebook`` starts the server, with the same server
extensions loaded either way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from codex_magic._shared import alive

from .conftest import processes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# JupyterLab user settings for the test: no news or update checks (their toasts would cover
# the page), the notebook's kernel started without asking (no "Select Kernel" dialog), and
# every cell kept in the DOM (no windowing), so cells can be read and measured. Notebook 7
# builds its pages from the same plugins and reads their settings from the same dir (the
# server's /lab/api/settings), so these apply there too.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
}


def missing_requirements(*, notebook7: bool = False) -> str | None:
    """Why the browser test cannot run here (in Notebook 7 too, if asked), or None when it can."""
    problems = []
    if not os.access(CHROMIUM, os.X_OK):
        problems.append(f"{CHROMIUM} not found (install it: apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("Python playwright is not installed (pip install -e '.[test]')")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        problems.append("jupyterlab is not installed (pip install -e '.[test]')")
    if notebook7:
        try:
            from notebook import __version__ as notebook_version
        except ImportError:
            problems.append("Jupyter Notebook 7 is not installed (pip install -e '.[test]')")
        else:
            if int(notebook_version.split(".")[0]) < 7:
                problems.append(f"notebook {notebook_version} is not Notebook 7 (pip install -e '.[test]')")
    return "; ".join(problems) or None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every live process below pid (children first found, then theirs), read from /proc."""
    children: dict[int, list[int]] = {}
    for process in processes():
        children.setdefault(process.ppid, []).append(process.pid)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until the processes have ended; return those still alive."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 with a token, every Jupyter dir in ``base``.

    With Notebook 7 installed, it serves Notebook 7's pages too (``/notebooks/NAME.ipynb``).
    """

    def __init__(self, root_dir: Path, base: Path) -> None:
        self.root_dir = root_dir
        self.base = base
        self.token = os.urandom(16).hex()
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = base / "jupyterlab.log"
        self.killed: list[int] = []  # processes that needed SIGKILL at the end

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
        for name in (
            "JUPYTER_RUNTIME_DIR",
            "JUPYTER_DATA_DIR",
            "JUPYTER_CONFIG_DIR",
            "IPYTHONDIR",
            "JUPYTERLAB_SETTINGS_DIR",
            "JUPYTERLAB_WORKSPACES_DIR",
            "TMPDIR",  # the demo's CODEX_HOME (tempfile.mkdtemp) lands here
        ):
            path = self.base / name.lower()
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        settings = Path(env["JUPYTERLAB_SETTINGS_DIR"])
        for relative, values in LAB_SETTINGS.items():
            target = settings / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values), encoding="utf-8")
        return env

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.news_url=None",
            "--ServerApp.port_retries=0",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        return command

    def start(self, timeout: float = 90.0) -> None:
        """Start the server and wait until its API answers (a new port if one was taken)."""
        env = self.env()
        for _attempt in range(3):
            self.port = free_port()
            log = open(self.log_path, "ab")
            try:
                self.process = subprocess.Popen(
                    self.command(),
                    cwd=self.root_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                log.close()
            if self._wait_ready(timeout):
                return
            if self.process.poll() is None:
                raise AssertionError(f"JupyterLab did not answer within {timeout} s\n{self.log_tail()}")
        raise AssertionError(f"JupyterLab did not start\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with self.request("/api/status", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def request(self, path: str, method: str = "GET", timeout: float = 5) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        return urllib.request.urlopen(request, timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no JupyterLab log)"
        return "JupyterLab log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Shut the server and its kernels down; kill whatever is left, the app-server too."""
        process = self.process
        if process is None:
            return
        self.process = None
        family = descendants(process.pid)  # kernels and their children (the codex app-server)
        if process.poll() is None:
            try:
                self.request("/api/shutdown", method="POST", timeout=5).close()
            except (urllib.error.URLError, OSError):
                pass
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._signal_group(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
        for pid in wait_gone(family, timeout=10):
            try:
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
            except ProcessLookupError:
                pass
        wait_gone(family, timeout=5)

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass


@contextmanager
def jupyterlab(root_dir: Path, base: Path) -> Iterator[JupyterLab]:
    lab = JupyterLab(root_dir, base)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@contextmanager
def chromium_page(width: int = 1200, height: int = 900) -> Iterator[Any]:
    """A page in headless Debian Chromium; the browser and Playwright end on exit."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            yield page
        finally:
            browser.close()
    finally:
        playwright.stop()
