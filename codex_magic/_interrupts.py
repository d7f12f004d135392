"""Kernel interrupts caught where the package can act on them.

Jupyter's interrupt button sends SIGINT. Left to Python's default handler it raises
``KeyboardInterrupt`` wherever the main thread is: inside the SDK's import or the
app-server's start, where it leaves a half-started process and a traceback from
inside the package; and ipykernel turns it into a cancellation that reaches an
awaited cell only at its next suspension, which may come after the turn has
ended. While a ``%%codex`` cell runs, :class:`InterruptLatch` takes SIGINT instead
and only records it: the runner checks it before sending the prompt and at every
step of the turn. This module imports neither the SDK nor IPython.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class InterruptLatch:
    """Records SIGINT on the main thread while entered, instead of raising; re-entrant.

    With ``hold`` off, SIGINT raises ``KeyboardInterrupt`` as Python's default handler
    does: a blocking turn's loop takes it that way, between two steps it can undo.
    """

    def __init__(self) -> None:
        self.hit = False
        self.hold = True
        # Called from the signal handler: it must take no lock (the interrupted code
        # may hold it). loop.call_soon_threadsafe qualifies; threading.Event.set does not.
        self.wake: Callable[[], None] | None = None
        self._depth = 0
        self._previous: Any = None
        self._installed = False
        self.raised = 0  # SIGINTs the handler turned into KeyboardInterrupt

    def __enter__(self) -> InterruptLatch:
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    @contextmanager
    def raising(self, *, hit_before: bool) -> Iterator[None]:
        """Inside, SIGINT raises ``KeyboardInterrupt``; outside, the latch holds as it did.

        For the few lines that run Codex's code: the set-up and tear-down around them (output
        capture, the widget's messages) are never cut in half. A SIGINT recorded since the
        hit flag was ``hit_before`` (it came for this run, before it started) raises at once.
        """
        hold = self.hold
        if self.hit and not hit_before:
            self.hit = False
            raise KeyboardInterrupt
        self.hold = False
        try:
            yield
        finally:
            self.hold = hold

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        if not self.hold:
            self.raised += 1
            raise KeyboardInterrupt
        self.hit = True
        wake = self.wake
        if wake is not None:
            wake()


class ToMainThread:
    """While code runs on the main thread: a SIGINT another thread took reaches it too.

    Jupyter's interrupt button signals the kernel's whole process, and the OS may deliver
    that to any of its threads. Python runs the handler on the main thread, but only once
    that thread runs bytecode again: code blocked in a call such as ``time.sleep`` would go
    on until the call returns. The C handler also writes the signal's number to the wakeup
    fd, whichever thread took it: a watcher thread reads it and, when the latch's handler has
    not run within GRACE, sends SIGINT to the main thread itself, which wakes the call.
    """

    GRACE = 0.05

    def __init__(self, latch: InterruptLatch) -> None:
        self.latch = latch
        self._previous_fd = -1
        self._pipes: tuple[int, int, int, int] | None = None
        self._watcher: threading.Thread | None = None
        self._raised = latch.raised  # KeyboardInterrupts raised before the run

    def __enter__(self) -> ToMainThread:
        import os

        if os.name != "posix" or threading.current_thread() is not threading.main_thread():
            return self
        read, write = os.pipe()
        stop_read, stop_write = os.pipe()
        os.set_blocking(write, False)
        try:
            self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except (ValueError, OSError):
            for fd in (read, write, stop_read, stop_write):
                os.close(fd)
            return self
        self._pipes = (read, write, stop_read, stop_write)
        self._raised = self.latch.raised
        self._watcher = threading.Thread(target=self._watch, name="codex-magic-sigint", daemon=True)
        self._watcher.start()
        return self

    def _watch(self) -> None:
        import os
        import select
        import time

        assert self._pipes is not None
        read, _write, stop_read, _stop_write = self._pipes
        main = threading.main_thread().ident
        while True:
            ready, _, _ = select.select([read, stop_read], [], [])
            if stop_read in ready:
                return
            numbers = os.read(read, 64)
            if signal.SIGINT not in numbers:
                continue
            time.sleep(self.GRACE)
            # Once, and only while the run has raised nothing: a second SIGINT after the run
            # would interrupt the turn, or the kernel itself once the cell has ended.
            if self.latch.raised == self._raised and main is not None:
                ready, _, _ = select.select([stop_read], [], [], 0)
                if not ready:  # still running: wake the main thread's blocking call
                    signal.pthread_kill(main, signal.SIGINT)
            return

    def __exit__(self, *_exc: object) -> None:
        import os

        if self._pipes is None:
            return
        read, write, stop_read, stop_write = self._pipes
        os.write(stop_write, b"x")
        if self._watcher is not None:
            self._watcher.join(1.0)
        signal.set_wakeup_fd(self._previous_fd)
        for fd in (read, write, stop_read, stop_write):
            os.close(fd)
        self._pipes = None
