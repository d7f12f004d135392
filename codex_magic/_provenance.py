"""Where a saved ``%%codex`` output came from: its metadata, and reading it back.

A finished turn's output carries, under the metadata key ``codex_magic``, the thread and
turn ids, the status, the model, effort, sandbox and approval policy, the token usage, the
start and end times, and the package's and the app-server's versions. A turn replayed from
a recording (see _replay) keeps the recorded values, times included, and ``replayed``
names the recording file; for a live turn it is None. Nothing secret and
no absolute home path: the working directory is written relative to ``~``. The metadata
survives saving and nbconvert; :func:`provenance` reads it back from a notebook file.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

KEY = "codex_magic"
FIELDS = (
    "cell",
    "thread_id",
    "turn_id",
    "status",
    "model",
    "effort",
    "sandbox",
    "approval",
    "cwd",
    "tokens_turn",
    "tokens_thread",
    "started",
    "ended",
    "seconds",
    "package_version",
    "app_server_version",
    "replayed",
)


def record(
    *,
    thread_id: str | None,
    turn_id: str | None,
    status: str,
    settings: dict[str, Any],
    usage: dict[str, Any] | None,
    turn_tokens: int | None,
    started: float,
    seconds: float,
    app_server_version: str | None,
) -> dict[str, Any]:
    """The provenance of one turn, as saved in its output's metadata (JSON values only)."""
    from . import __version__

    total = (usage or {}).get("total") or {}
    return {
        "thread_id": thread_id,
        "turn_id": turn_id,
        "status": status,
        "model": settings.get("model"),
        "effort": settings.get("effort"),
        "sandbox": settings.get("sandbox"),
        "approval": settings.get("approval"),
        "cwd": home_relative(settings.get("cwd")),
        "tokens_turn": turn_tokens,
        "tokens_thread": total.get("totalTokens"),
        "started": iso(started),
        "ended": iso(started + seconds),
        "seconds": round(seconds, 3),
        "package_version": __version__,
        "app_server_version": app_server_version,
    }


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


def home_relative(path: Any) -> str | None:
    if not isinstance(path, str):
        return None
    home = os.path.expanduser("~")
    if home not in ("", "/") and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home) :]
    return path


def provenance(notebook: str | os.PathLike[str]) -> Any:
    """The ``%%codex`` turns saved in a notebook file, one row each, in cell order.

    Each row is a dict of :data:`FIELDS` (``cell`` is the cell's index in the notebook).
    With pandas installed the rows come as a DataFrame.
    """
    with open(notebook, encoding="utf-8") as file:
        document = json.load(file)
    rows = []
    for index, cell in enumerate(document.get("cells") or []):
        for output in cell.get("outputs") or []:
            found = (output.get("metadata") or {}).get(KEY)
            if isinstance(found, dict):
                rows.append({field: (index if field == "cell" else found.get(field)) for field in FIELDS})
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows, columns=list(FIELDS))
