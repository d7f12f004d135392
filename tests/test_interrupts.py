"""SIGINT while Codex's code runs on the main thread, whichever thread the OS delivers it to."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from codex_magic._interrupts import InterruptLatch, ToMainThread


def _interrupt_another_thread_after(seconds: float) -> threading.Thread:
    """A thread that sleeps, and gets SIGINT delivered to it (as a process-wide signal may be)."""
    other = threading.Thread(target=time.sleep, args=(1.0,), daemon=True)
    other.start()
    threading.Timer(seconds, lambda: signal.pthread_kill(other.ident or 0, signal.SIGINT)).start()
    return other


def test_a_sigint_another_thread_takes_wakes_the_main_threads_blocking_call() -> None:
    latch = InterruptLatch()
    with latch:
        latch.hold = False
        _interrupt_another_thread_after(0.1)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt), ToMainThread(latch):
            time.sleep(5)
        assert time.monotonic() - started < 2  # without the watcher: the full 5 s
    assert latch.raised == 1


def test_without_the_watcher_the_blocking_call_goes_on() -> None:
    # The defect the watcher fixes: the handler runs only once the main thread runs bytecode.
    latch = InterruptLatch()
    with latch:
        latch.hold = False
        _interrupt_another_thread_after(0.1)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            time.sleep(0.8)
        assert time.monotonic() - started >= 0.75


def test_a_sigint_the_main_thread_takes_is_raised_once() -> None:
    latch = InterruptLatch()
    with latch:
        latch.hold = False
        threading.Timer(0.1, lambda: signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt), ToMainThread(latch):
            time.sleep(5)
        time.sleep(2 * ToMainThread.GRACE)  # no second SIGINT follows
    assert latch.raised == 1
