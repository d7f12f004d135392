"""The shared app-server's watchdog, with a stand-in process for the server (no kernel)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from codex_magic import _shared

from .conftest import wait_until


def test_the_watchdog_stops_the_server_once_no_kernel_has_held_the_lock_for_the_idle_time(tmp_path: Path) -> None:
    path = str(tmp_path / "server.sock")
    server = subprocess.Popen(["sleep", "60"])
    try:
        Path(path + ".pid").write_text(str(server.pid))
        member = _shared.Membership(path, timeout=1.0)
        watcher = threading.Thread(target=_shared.watch, args=(path, server.pid, 0.4), daemon=True)
        watcher.start()
        time.sleep(1.2)
        assert _shared.alive(server.pid)  # a kernel is connected: never idle
        member.close()
        left = time.monotonic()
        assert wait_until(lambda: server.poll() is not None, 3)
        assert time.monotonic() - left >= 0.4  # not before the idle time
        watcher.join(3)
        assert not watcher.is_alive() and not Path(path + ".pid").exists()
    finally:
        server.kill()
        server.wait()


def test_the_watchdog_ends_with_the_server_whoever_stops_it(tmp_path: Path) -> None:
    path = str(tmp_path / "server.sock")
    server = subprocess.Popen(["sleep", "60"])
    member = _shared.Membership(path, timeout=1.0)
    watcher = threading.Thread(target=_shared.watch, args=(path, server.pid, 0.4), daemon=True)
    watcher.start()
    server.kill()
    server.wait()
    watcher.join(3)
    assert not watcher.is_alive()
    member.close()
