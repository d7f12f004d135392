"""The one place that reaches into the Codex SDK's private attributes.

The public API (``Codex``, ``Thread``, ``TurnHandle``, ``CodexClient``) lacks a few hooks the
package needs; each is read here, with why, so that an SDK upgrade has one module to check.
Written for ``openai-codex`` 0.163 (pinned in pyproject.toml).
"""

from __future__ import annotations

import queue
import subprocess
from typing import Any


def process(client: Any) -> subprocess.Popen[bytes] | None:
    """The app-server process a client started (``CodexClient._proc``), or None.

    For its pid (``%codex status``, stopping a turn's commands) and its exit status and log
    when it is lost: the SDK exposes neither.
    """
    return getattr(client, "_proc", None) if client is not None else None


def stderr_tail(client: Any) -> str:
    """The last lines the app-server logged (``CodexClient._stderr_tail()``), for a lost one.

    The SDK keeps them but has no public accessor.
    """
    tail = getattr(client, "_stderr_tail", None)
    return str(tail()) if callable(tail) else ""


def client_of(thread: Any) -> Any:
    """The client a ``Thread`` talks through (``Thread._client``).

    A thread object outlives its app-server when that restarts; comparing clients tells
    whether the thread must be resumed in the new one.
    """
    return getattr(thread, "_client", None)


def close_turn_stream(handle: Any) -> None:
    """Close a turn's notification subscription (``TurnHandle._subscription``).

    Ends the thread that waits in ``handle.stream()`` for a turn that will not report back
    (interrupted and not settled): the generator cannot be closed from another thread.
    """
    subscription = getattr(handle, "_subscription", None)
    if subscription is not None:
        subscription.close()


def discard_stray_notifications(client: Any) -> None:
    """Drop the notifications no turn takes (``CodexClient._router._global_notifications``).

    The SDK keeps thread status, rate-limit and thread-warning notifications in a global
    queue for ``next_notification()``, which nothing here reads: about five a turn, kept for
    the kernel's life. The SDK has no call that takes them without blocking.
    """
    router = getattr(client, "_router", None)
    stray = getattr(router, "_global_notifications", None)
    if stray is None:
        return
    while True:
        try:
            stray.get_nowait()
        except queue.Empty:
            return
