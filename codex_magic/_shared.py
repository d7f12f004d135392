"""One ``codex app-server`` per user and CODEX_HOME, shared by the kernels that choose it.

The server listens on a unix socket (WebSocket, one JSON-RPC message per text frame) and
runs in its own session, detached from the kernel that started it: it outlives kernels.
Each kernel talks to it through its own ``_bridge`` process, so the SDK sees stdio as usual.
This module imports neither IPython nor ipywidgets.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._errors import AppServerError

# AF_UNIX paths are limited to 108 bytes (104 on macOS), with the terminating NUL.
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class SharedServer:
    """A shared app-server that answers on ``socket``; ``pid`` from its pid file."""

    socket: str
    pid: int | None

    @property
    def log(self) -> str:
        return self.socket + ".log"


def socket_path(*, codex_bin: str, codex_home: str, config: Sequence[str] = ()) -> str:
    """Where the shared server of this CODEX_HOME, codex binary and ``--config`` listens."""
    from jupyter_core.paths import jupyter_runtime_dir

    key = "\0".join([os.path.realpath(codex_home), os.path.realpath(codex_bin), *config])
    name = hashlib.sha256(key.encode()).hexdigest()[:16] + ".sock"
    path = os.path.join(jupyter_runtime_dir(), "codex-magic", name)
    if len(path.encode()) > _MAX_SOCKET_PATH:
        path = os.path.join(tempfile.gettempdir(), f"codex-magic-{os.getuid()}", name)
    return path


def codex_home(env: Mapping[str, str]) -> str:
    """The CODEX_HOME a server started with ``env`` uses."""
    return env.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex")


def _answers(path: str) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1.0)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def read_pid(path: str) -> int | None:
    """The pid in the pid file beside the socket, or None."""
    try:
        with open(path + ".pid", encoding="ascii") as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def log_tail(path: str, size: int = 2000) -> str:
    """The end of the shared server's log."""
    try:
        with open(path + ".log", "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - size))
            return file.read().decode("utf-8", "replace")
    except OSError:
        return ""


def ensure_server(*, launch: Sequence[str], path: str, env: Mapping[str, str], timeout: float) -> SharedServer:
    """Connect to the server on ``path`` if one answers, else start ``launch`` there and wait for it.

    Kernels starting at once take turns on a lock file: the first starts the server, the
    others find it answering. ``launch`` is the codex command without ``--listen``.
    """
    import fcntl  # posix only, as unix sockets are: imported here so the module imports anywhere

    if _answers(path):
        return SharedServer(path, read_pid(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    deadline = time.monotonic() + timeout
    with open(path + ".lock", "w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AppServerError(f"another kernel is starting the shared codex app-server at {path}") from None
                time.sleep(0.05)
        if _answers(path):  # another kernel won the race
            return SharedServer(path, read_pid(path))
        with open(path + ".log", "ab") as log:
            process = subprocess.Popen(
                [*launch, "app-server", "--listen", "unix://" + path],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # outlives the kernel and its interrupts
            )
        with open(path + ".pid", "w", encoding="ascii") as pid_file:
            pid_file.write(str(process.pid))
        while not _answers(path):
            code = process.poll()
            if code is not None and not _answers(path):
                tail = " ".join(log_tail(path, 300).split())
                raise AppServerError(f"the shared codex app-server exited with code {code}: {tail}")
            if time.monotonic() > deadline:
                raise AppServerError(f"the shared codex app-server did not listen on {path} within {timeout:.0f} s")
            time.sleep(0.05)
        return SharedServer(path, process.pid)
