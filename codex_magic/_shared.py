"""One ``codex app-server`` per user and CODEX_HOME, shared by the kernels that choose it.

The server listens on a unix socket (WebSocket, one JSON-RPC message per text frame) and
runs in its own session, detached from the kernel that started it: it outlives kernels.
Each kernel talks to it through its own ``_bridge`` process, so the SDK sees stdio as usual.

Each kernel connected holds a shared lock on ``<socket>.clients`` (the OS drops it when the
kernel's process ends, however it ends). A watchdog started with the server
(``python -m codex_magic._shared watch``) stops it once no kernel has held that lock for the
idle time, and exits when the server does. This module imports neither IPython nor ipywidgets.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import AppServerError

# AF_UNIX paths are limited to 108 bytes (104 on macOS), with the terminating NUL.
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class SharedServer:
    """A shared app-server that answers on ``socket``; ``pid`` from its pid file.

    ``membership`` is this kernel's hold on the server (see :func:`join`): ``leave()`` it
    when the kernel stops using the server.
    """

    socket: str
    pid: int | None
    membership: Membership | None = field(default=None, compare=False)

    @property
    def log(self) -> str:
        return self.socket + ".log"

    def leave(self) -> None:
        """This kernel no longer uses the server (its idle time starts when no kernel does)."""
        if self.membership is not None:
            self.membership.close()


class Membership:
    """A kernel's shared lock on ``<socket>.clients``: the server is in use while any is held."""

    def __init__(self, path: str, timeout: float) -> None:
        import fcntl

        self.path = path + ".clients"
        self._file: Any = open(self.path, "a")  # noqa: SIM115 - held for as long as the kernel uses the server
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:  # the watchdog is stopping the server: wait, then start a new one
                if time.monotonic() > deadline:
                    self._file.close()
                    raise AppServerError(
                        f"the shared codex app-server at {path} is stopping; run the cell again"
                    ) from None
                time.sleep(0.05)
        _touch(self.path)

    def close(self) -> None:
        if not self._file.closed:
            _touch(self.path)  # the idle time counts from the last kernel's leaving
            self._file.close()  # releases the lock


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a killed server its starter has not reaped)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return not os.path.isdir("/proc")  # gone since os.kill; without /proc, os.kill's answer stands


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


def ensure_server(
    *, launch: Sequence[str], path: str, env: Mapping[str, str], timeout: float, idle: float = 0.0
) -> SharedServer:
    """Join the server on ``path`` if one answers, else start ``launch`` there and wait for it.

    Kernels starting at once take turns on a lock file: the first starts the server, the
    others find it answering. ``launch`` is the codex command without ``--listen``. A
    server started here stops after ``idle`` seconds without a kernel (0: never).
    """
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    membership = Membership(path, timeout)  # first: the watchdog then cannot stop the server under us
    try:
        found = _ensure_server(launch, path, env, timeout, idle)
    except BaseException:
        membership.close()
        raise
    return SharedServer(found.socket, found.pid, membership)


def _ensure_server(
    launch: Sequence[str], path: str, env: Mapping[str, str], timeout: float, idle: float
) -> SharedServer:
    import fcntl  # posix only, as unix sockets are: imported here so the module imports anywhere

    if _answers(path):
        return SharedServer(path, read_pid(path))
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
        if idle > 0:
            subprocess.Popen(
                [sys.executable, "-m", "codex_magic._shared", "watch", path, str(process.pid), repr(idle)],
                env={**env, "PYTHONSAFEPATH": "1"},  # not the kernel's cwd on its sys.path
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        return SharedServer(path, process.pid)


def watch(path: str, pid: int, idle: float) -> None:
    """Stop the server ``pid`` once no kernel has held ``<path>.clients`` for ``idle`` seconds.

    Returns when the server has ended, whoever ended it. The exclusive lock is taken
    without waiting and held only while deciding: a kernel joining meanwhile waits for it,
    then starts a new server if this one was stopped.
    """
    import fcntl

    poll = min(5.0, idle / 4)
    idle_since: float | None = None
    with open(path + ".clients", "a") as clients:
        while alive(pid):
            time.sleep(poll)
            try:
                fcntl.flock(clients, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a kernel is connected
                idle_since = None
                continue
            try:
                now = time.time()
                idle_since = idle_since or now
                try:  # a kernel that came and went between two looks
                    idle_since = max(idle_since, os.stat(clients.name).st_mtime)
                except OSError:
                    pass
                if now - idle_since >= idle:
                    _stop(pid)
                    if read_pid(path) == pid:
                        os.unlink(path + ".pid")
                    return
            finally:
                fcntl.flock(clients, fcntl.LOCK_UN)


def _stop(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            return


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "watch":
        watch(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        raise SystemExit("usage: python -m codex_magic._shared watch SOCKET PID IDLE_SECONDS")
