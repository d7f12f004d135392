"""CodexMagic.app_server = "shared": two real kernels on one app-server, each on its own thread.

Turns, results, interrupts and command environments stay with their kernel; a killed
server fails the running cell in one line and the next cell starts a new one.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from codex_magic.scripted_model import Reply, ScriptedRequest, exec_command, message

from .conftest import Kernel, Offline, pid_alive, processes, wait_until

pytestmark = [pytest.mark.kernel, pytest.mark.appserver]

SLOW = "tick " * 60


def _route(request: ScriptedRequest) -> Any:
    """Answer by the Q-word of the turn's prompt, so the two kernels' turns never mix."""
    items = request.input
    last_user = max(i for i, item in enumerate(items) if item.get("role") == "user")
    outputs = [item for item in items[last_user:] if item.get("type") == "function_call_output"]
    if outputs:
        return message(f"ran: {outputs[-1].get('output')}")
    found = re.findall(r"Q-(\w+)", " ".join(request.input_texts("user")))
    word = found[-1] if found else "none"
    if word.startswith("slow"):
        return Reply([message(f"{word} {SLOW}", deltas=True)], delay=0.05)
    if word == "env":
        return exec_command("echo TAG=$KERNEL_TAG")
    return message(f"answer for {word}")


@dataclass
class Pair:
    a: Kernel
    b: Kernel
    socket: str

    def servers(self) -> list[int]:
        """Live app-server processes listening on the shared socket."""
        listen = b"unix://" + self.socket.encode()
        return [p.pid for p in processes() if {b"app-server", b"--listen", listen} <= set(p.argv)]

    def server_pid(self) -> int:
        with open(self.socket + ".pid") as pid_file:
            return int(pid_file.read())


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def pair(offline: Offline, jupyter_dirs: None) -> Iterator[Pair]:
    """Two kernels set to the shared app-server, each with its own KERNEL_TAG."""
    from codex_magic import _session, _shared

    offline.model.add(*[_route] * 100)
    socket = _shared.socket_path(codex_bin=_session.bundled_codex()[0], codex_home=str(offline.codex_home))
    kernels = []
    pair = None
    try:
        for tag in ("kernel-a", "kernel-b"):
            kernel = Kernel({**offline.env, "KERNEL_TAG": tag}, offline.workspace)
            kernels.append(kernel)
            setup = kernel.run('%load_ext codex_magic\n%config CodexMagic.app_server = "shared"')
            assert setup.error is None, setup.error
        pair = Pair(kernels[0], kernels[1], socket)
        yield pair
    finally:
        for kernel in kernels:
            kernel.shutdown()
        if pair is not None:
            for pid in pair.servers():
                _kill(pid)
            assert wait_until(lambda: not pair.servers(), 5)


def _answer(kernel: Kernel, prompt: str) -> str:
    execution = kernel.run(f"%%codex\n{prompt}")
    assert execution.error is None, execution.error
    return kernel.value("_codex_result.final_response")


def test_two_kernels_share_one_server(pair: Pair) -> None:
    assert _answer(pair.a, "Say Q-alpha") == "answer for alpha"
    assert _answer(pair.b, "Say Q-beta") == "answer for beta"
    assert _answer(pair.a, "Say Q-gamma") == "answer for gamma"
    assert _answer(pair.b, "Say Q-delta") == "answer for delta"

    servers = pair.servers()
    assert servers == [pair.server_pid()]
    status = pair.a.run("%codex status")
    assert f"pid {servers[0]}" in status.stdout
    threads = {
        k.value("__import__('codex_magic._session').__dict__['_session'].current_thread_id()") for k in (pair.a, pair.b)
    }
    assert len(threads) == 2

    # A command Codex runs for kernel B sees B's environment, not the server's (A's).
    assert "TAG=kernel-b" in _answer(pair.b, "Run Q-env")

    # %codex stop in A leaves the shared server running for B.
    stopped = pair.a.run("%codex stop")
    assert "left running" in stopped.stdout
    assert pid_alive(servers[0])
    assert _answer(pair.b, "Say Q-epsilon") == "answer for epsilon"
    assert _answer(pair.a, "Say Q-zeta") == "answer for zeta"
    assert pair.servers() == servers


def test_interrupt_stops_only_its_kernel(pair: Pair) -> None:
    assert _answer(pair.a, "Say Q-warm") == "answer for warm"  # the server is up
    done: dict[str, Any] = {}
    b_turn = threading.Thread(target=lambda: done.update(b=pair.b.run("%%codex\nTalk Q-slowb")))
    b_turn.start()
    interrupted = pair.a.run("%%codex\nTalk Q-slowa", interrupt_after=1.5)
    b_turn.join(60)

    assert interrupted.error is not None and interrupted.error["ename"] == "TurnInterruptedError"
    assert pair.a.value("_codex_result.status.value") == "interrupted"
    assert done["b"].error is None, done["b"].error
    assert pair.b.value("_codex_result.status.value") == "completed"
    assert pair.b.value("_codex_result.final_response").split() == ["slowb", *SLOW.split()]


def test_killed_server_fails_the_cell_and_the_next_starts_one(pair: Pair) -> None:
    assert _answer(pair.a, "Say Q-first") == "answer for first"
    first = pair.server_pid()

    def kill_soon() -> None:
        time.sleep(1.0)
        os.kill(first, signal.SIGKILL)

    threading.Thread(target=kill_soon, daemon=True).start()
    failed = pair.a.run("%%codex\nTalk Q-slowkill")
    assert failed.error is not None and failed.error["ename"] == "TurnFailedError", failed.error
    assert "lost the codex app-server" in failed.error["evalue"]
    assert "\n" not in failed.error["evalue"].strip()

    assert _answer(pair.a, "Say Q-again") == "answer for again"
    assert _answer(pair.b, "Say Q-bee") == "answer for bee"
    second = pair.server_pid()
    assert second != first and pair.servers() == [second]


def test_an_idle_shared_server_stops_and_a_later_kernel_starts_another(pair: Pair) -> None:
    for kernel in (pair.a, pair.b):  # set by the kernel that starts the server
        assert kernel.run("%config CodexMagic.shared_idle_timeout = 1").error is None
    assert _answer(pair.a, "Say Q-one") == "answer for one"
    assert _answer(pair.b, "Say Q-two") == "answer for two"
    first = pair.server_pid()
    time.sleep(2.5)
    assert pair.servers() == [first]  # two kernels connected: never idle
    assert pair.a.run("%codex stop").error is None
    time.sleep(2.5)
    assert pair.servers() == [first]  # one kernel still connected
    # A kernel that ends without leaving (its process exits) frees the server all the same.
    pair.b.manager.shutdown_kernel(now=True)  # SIGKILL: no %codex stop, no atexit
    assert wait_until(lambda: not pair.servers(), 8), pair.servers()
    assert wait_until(lambda: not os.path.exists(pair.socket + ".pid"), 2)  # the watchdog tidied up
    # The next cell of a kernel starts a new server, and the thread goes on.
    assert _answer(pair.a, "Say Q-three") == "answer for three"
    assert pair.servers() == [pair.server_pid()] != [first]
