"""SIGINT while Codex's code runs on the main thread, whichever thread the OS delivers it to."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import nullcontext

import pytest

from codex_magic._interrupts import InterruptLatch, ToMainThread


def _interrupt_another_thread_after(seconds: float) -> threading.Thread:
    """A thread that sleeps, and gets SIGINT delivered to it (as a process-wide signal may be)."""
    other = threading.Thread(target=time.sleep, args=(1.0,), daemon=True)
    other.start()
    threading.Timer(seconds, lambda: signal.pthread_kill(other.ident or 0, signal.SIGINT)).start()
    return other


def _sleep_while_another_thread_takes_sigint(seconds: float, *, watcher: bool) -> float:
    """Sleep on the main thread while SIGINT goes to another; the seconds until it was raised."""
    latch = InterruptLatch()
    with latch:
        latch.hold = False
        _interrupt_another_thread_after(0.1)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt), ToMainThread(latch) if watcher else nullcontext():
            time.sleep(seconds)
    assert latch.raised == 1
    return time.monotonic() - started


def test_a_sigint_another_thread_takes_wakes_the_main_threads_blocking_call() -> None:
    assert _sleep_while_another_thread_takes_sigint(5, watcher=True) < 2  # without the watcher: the full 5 s


def test_without_the_watcher_the_blocking_call_goes_on() -> None:
    # The defect the watcher fixes: the handler runs only once the main thread runs bytecode.
    assert _sleep_while_another_thread_takes_sigint(0.8, watcher=False) >= 0.75


def test_a_sigint_the_main_thread_takes_is_raised_once() -> None:
    latch = InterruptLatch()
    with latch:
        latch.hold = False
        threading.Timer(0.1, lambda: signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt), ToMainThread(latch):
            time.sleep(5)
        time.sleep(2 * ToMainThread.GRACE)  # no second SIGINT follows
    assert latch.raised == 1


def _sigint_main_after(seconds: float) -> None:
    threading.Timer(seconds, lambda: signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)).start()


def test_the_latch_raises_only_inside_its_window_and_holds_around_it() -> None:
    latch = InterruptLatch()
    with latch:
        _sigint_main_after(0.05)
        time.sleep(0.3)  # the set-up before the run: recorded, not raised
        assert latch.hit and latch.raised == 0
        # It came for the run before the run started: the run stops at once.
        with pytest.raises(KeyboardInterrupt), latch.raising(hit_before=False):
            pytest.fail("the window ran although an interrupt was waiting")
        assert not latch.hit and latch.hold
        with latch.raising(hit_before=False):  # nothing waiting: the code runs
            pass
        _sigint_main_after(0.05)
        with pytest.raises(KeyboardInterrupt), latch.raising(hit_before=False):
            time.sleep(5)  # the run itself: raised, and the latch holds again after
        assert latch.hold and latch.raised == 1


def test_an_interrupt_recorded_before_the_run_was_asked_for_is_not_the_runs() -> None:
    latch = InterruptLatch()
    with latch:
        latch.hit = True  # the turn's own interrupt, not yet acted on
        with latch.raising(hit_before=True):
            pass
        assert latch.hit


def test_a_run_interrupted_in_its_window_reports_the_interrupt_and_gives_the_streams_back() -> None:
    import sys

    from codex_magic._kernel_tools import run_python

    latch = InterruptLatch()
    stdout = sys.stdout
    with latch:
        _sigint_main_after(0.2)
        reply = run_python(
            {}, "import time\nprint('started')\ntime.sleep(5)", interruptible=lambda: latch.raising(hit_before=False)
        )
    assert sys.stdout is stdout
    assert "started" in reply.text and "KeyboardInterrupt" in reply.text and not reply.success
    assert "_interrupts.py" not in reply.text  # the traceback starts in the run's code
    latch.hit = True  # an interrupt before the code started: only the exception's line
    reply = run_python({}, "print('never')", interruptible=lambda: latch.raising(hit_before=False))
    assert "never" not in reply.text and "KeyboardInterrupt" in reply.text and "Traceback" not in reply.text
