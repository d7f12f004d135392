"""Plain-text helpers shared by the renderer: reading untrusted wire dicts, sizes and counts.

Nothing here builds markup or escapes anything; that is :mod:`codex_magic._html`'s job.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Any

Json = dict[str, Any]

_FIELD_BYTES = 200


# -- reading untrusted wire dicts ------------------------------------------------------------


def _s(value: object) -> str:
    """A field as display text, whatever its wire type."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return _json(value)


def _d(value: object) -> Json:
    return value if isinstance(value, dict) else {}


def _l(value: object) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _n(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if value == value else None  # NaN is no number


def _json(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    except (TypeError, ValueError):
        return repr(value)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _one_line(text: str, limit: int = _FIELD_BYTES) -> str:
    return _cut(" ".join(text.split()), limit)


def _duration(ms: object) -> str:
    n = _n(ms)
    if n is None or n < 0:
        return ""
    if n < 1000:
        return f"{n:.0f} ms"
    seconds = n / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s"


def _seconds(ms: object) -> str:
    n = _n(ms)
    if n is None or n < 0:
        return "?"
    return f"{n / 1000:.1f}".rstrip("0").rstrip(".") + " s"


def _lines(text: str) -> int:
    return text.count("\n") + (0 if not text or text.endswith("\n") else 1)


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


_SHELLS = ("bash", "sh", "zsh", "dash")


def shown_command(command: str) -> str:
    """The command as the model wrote it: without the ``bash -lc '...'`` Codex wraps it in."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if len(words) == 3 and os.path.basename(words[0]) in _SHELLS and words[1] in ("-c", "-lc"):
        return words[2]
    return command
