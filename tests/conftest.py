"""Shared fixtures: the scripted model with its CODEX_HOME, an in-process shell, a real kernel."""

from __future__ import annotations

import json
import os
import queue
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from codex_magic._shared import alive
from codex_magic.scripted_model import ScriptedModel, write_codex_config

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Where fault and soak tests keep what they measured, for docs/reliability.md.
NUMBERS = Path(os.environ.get("CODEX_MAGIC_NUMBERS", Path(tempfile.gettempdir()) / "codex-magic-numbers.jsonl"))


def record(test: str, **numbers: Any) -> None:
    """Print measured numbers (seen with -s) and append them to NUMBERS."""
    line = json.dumps({"test": test, **numbers})
    print(f"\n[measured] {line}")
    NUMBERS.parent.mkdir(parents=True, exist_ok=True)
    with NUMBERS.open("a") as numbers_file:
        numbers_file.write(line + "\n")


@dataclass
class Offline:
    """A running scripted model, the CODEX_HOME pointing at it, and a workspace."""

    model: ScriptedModel
    codex_home: Path
    workspace: Path

    @property
    def env(self) -> dict[str, str]:
        return {"CODEX_HOME": str(self.codex_home), "CODEX_APP_SERVER_DISABLE_MANAGED_CONFIG": "1"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that takes the ``kernel`` fixture is in the kernel tier, marked or not."""
    for item in items:
        if "kernel" in getattr(item, "fixturenames", ()) and item.get_closest_marker("kernel") is None:
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(autouse=True)
def _kernels_only_in_the_kernel_tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts a kernel must be marked ``kernel``: ``-m "not kernel"`` starts none."""
    if request.node.get_closest_marker("kernel") is not None:
        return
    from jupyter_client.manager import AsyncKernelManager, KernelManager

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError(f"{request.node.nodeid} starts a kernel: mark it pytest.mark.kernel")

    monkeypatch.setattr(KernelManager, "start_kernel", refuse)
    monkeypatch.setattr(AsyncKernelManager, "start_kernel", refuse)


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[Offline]:
    """A scripted model (empty script: tests add replies) and a CODEX_HOME for it."""
    home, workspace = tmp_path / "codex-home", tmp_path / "work"
    workspace.mkdir()
    with ScriptedModel() as model:
        write_codex_config(home, model.url)
        yield Offline(model, home, workspace)


@pytest.fixture
def jupyter_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep Jupyter's and IPython's files out of the home directory."""
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR"):
        path = tmp_path / name.lower()
        path.mkdir()
        monkeypatch.setenv(name, str(path))


@pytest.fixture
def shell(offline: Offline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process IPython shell with codex_magic loaded, pointed at the scripted model."""
    from IPython.testing.globalipapp import get_ipython

    for key, value in offline.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(offline.workspace)
    ip = get_ipython()
    ip.user_ns.pop("_codex_result", None)
    ip.run_line_magic("load_ext", "codex_magic")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "codex_magic")


@dataclass
class Execution:
    """The iopub messages of one execute request, and what the test wants from them."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    reply: dict[str, Any] = field(default_factory=dict)

    def of(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def counts(self) -> Counter[str]:
        return Counter(m["msg_type"] for m in self.messages)

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of("stream") if m["content"]["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(m["content"]["text"] for m in self.of("stream") if m["content"]["name"] == "stderr")

    @property
    def error(self) -> dict[str, Any] | None:
        errors = self.of("error")
        return errors[0]["content"] if errors else None


class Kernel:
    """A real ipykernel driven through jupyter_client, as a frontend drives it."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        from jupyter_client import KernelManager

        self.manager = KernelManager()
        self.manager.start_kernel(env={**os.environ, **env}, cwd=str(cwd))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(
        self,
        code: str,
        *,
        interrupt_after: float | None = None,
        timeout: float = 60,
        on_message: Any = None,
        shows_widgets: bool = True,
    ) -> Execution:
        """Execute code and collect its iopub messages until the kernel is idle again.

        ``on_message(kernel, execution, message)`` is called for each message of the cell
        as it arrives, so a test can act while the cell runs (click a button, say).
        With ``shows_widgets`` the kernel is told that each displayed widget is shown,
        as JupyterLab does; without, it is a frontend that shows none (nbclient).
        """
        msg_id = self.client.execute(code)
        started = time.monotonic()
        execution = Execution()
        interrupted = False
        while True:
            now = time.monotonic()
            if interrupt_after is not None and not interrupted and now - started > interrupt_after:
                self.manager.interrupt_kernel()
                interrupted = True
            if now - started > timeout:
                raise AssertionError(f"cell did not finish within {timeout} s: {code!r}")
            try:
                message = self.client.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            execution.messages.append(message)
            if shows_widgets and message["msg_type"] in ("display_data", "update_display_data"):
                shown = message["content"]["data"].get("application/vnd.jupyter.widget-view+json")
                if shown:
                    self.update(shown["model_id"], {"_view_count": 1})
            if on_message is not None:
                on_message(self, execution, message)
            content = message["content"]
            if message["msg_type"] == "status" and content["execution_state"] == "idle":
                execution.seconds = time.monotonic() - started
                while execution.reply.get("parent_header", {}).get("msg_id") != msg_id:
                    execution.reply = self.client.get_shell_msg(timeout=10)
                return execution

    def click(self, model_id: str) -> None:
        """Click a button widget, with the message a frontend sends."""
        content = {"comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}
        self.client.shell_channel.send(self.client.session.msg("comm_msg", content))

    def update(self, model_id: str, state: dict[str, Any]) -> None:
        """Set widget state as a frontend does (a view shown, an option picked, text typed)."""
        content = {"comm_id": model_id, "data": {"method": "update", "state": state, "buffer_paths": []}}
        self.client.shell_channel.send(self.client.session.msg("comm_msg", content))

    def value(self, expression: str) -> str:
        """The printed value of an expression in the kernel."""
        execution = self.run(f"print({expression})")
        assert execution.error is None, execution.error
        return execution.stdout.strip()

    def shutdown(self) -> None:
        """Shut the kernel down as a frontend does (once; later calls do nothing)."""
        if self.manager.has_kernel:
            self.client.stop_channels()
            self.manager.shutdown_kernel(now=False)


@pytest.fixture
def kernel(offline: Offline, jupyter_dirs: None) -> Iterator[Kernel]:
    """A real kernel with codex_magic loaded, pointed at the scripted model."""
    kernel = Kernel(offline.env, offline.workspace)
    try:
        loaded = kernel.run("%load_ext codex_magic")
        assert loaded.error is None, loaded.error
        yield kernel
    finally:
        kernel.shutdown()


pid_alive = alive  # whether a process exists and is not a zombie


@dataclass(frozen=True)
class Process:
    """A live process other than this one, as /proc shows it."""

    pid: int
    ppid: int
    cmdline: bytes  # its arguments, each ended by a NUL

    @property
    def argv(self) -> list[bytes]:
        return self.cmdline.split(b"\0")

    def environ(self) -> list[bytes]:
        """Its environment, NAME=value each; empty when it cannot be read."""
        try:
            with open(f"/proc/{self.pid}/environ", "rb") as environ:
                return environ.read().split(b"\0")
        except OSError:
            return []


def processes() -> list[Process]:
    """Every live (not zombie) process but this one, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read()
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[-1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if alive(int(entry)):
            found.append(Process(int(entry), ppid, argv))
    return found


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    """Poll a predicate until it holds or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
