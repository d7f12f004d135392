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
from collections.abc import Callable
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

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        if not self.hold:
            raise KeyboardInterrupt
        self.hit = True
        wake = self.wake
        if wake is not None:
            wake()
