"""Plain-text helpers shared by the renderer: reading untrusted wire dicts, sizes and counts.

Nothing here builds markup or escapes anything; that is :mod:`codex_magic._html`'s job.
The control-sequence filters live here: :func:`plain` for every rendered form
(HTML, Markdown, text), :func:`keep_colour` for text whose colour is kept (command output
in HTML, a colour terminal) and :func:`for_terminal` for what a terminal receives.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable
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


def short_id(thread_id: str) -> str:
    """The part of an id that tells threads apart: its last 8 hex digits.

    Thread ids are time-ordered UUIDv7s: threads started within a minute share their
    first characters, while the last ones are random.
    """
    digits = thread_id.replace("-", "")
    return digits[-8:] if len(digits) > 8 else thread_id


# -- control sequences ---------------------------------------------------------------------------

# One pass over the text: terminal control sequences and control characters. The string
# sequences (OSC, DCS, SOS, PM, APC) end at BEL or ST, or at the end of the line, so an
# unterminated one hides no more than its own line. SGR (colour) is captured in group 1.
_SEQUENCES = (
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI, also cut short
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # CSI, 8-bit
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]?"  # any other escape sequence, or a lone ESC
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # C0 and C1 controls but tab and newline; DEL
)
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
# Every sequence above starts with one of these: text without any (nearly all of it) skips the
# alternation, which costs ten times as much as this one character class to scan.
_ANY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS = re.compile(r"(?!)" + _SEQUENCES)
_CONTROLS_BUT_SGR = re.compile(f"({_SGR.pattern})" + _SEQUENCES)


def _newlines(text: str) -> str:
    # A carriage return ends a line: CRLF is one newline, and a lone CR (progress bars,
    # text that would overwrite itself on a terminal) starts a new line, so nothing hides.
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def plain(text: str) -> str:
    """``text`` without control sequences or control characters (newline and tab stay)."""
    text = _newlines(text)
    return redact(_CONTROLS.sub("", text) if _ANY_CONTROL.search(text) else text)


def keep_colour(text: str) -> str:
    """``text`` without control sequences or control characters but SGR colour sequences.

    Secrets are hidden even where colour splits them (``grep --color`` marking part of one).
    """
    text = _newlines(text)
    if _ANY_CONTROL.search(text):
        text = _CONTROLS_BUT_SGR.sub(r"\1", text)
    return _coloured_secrets.sub(_hide_coloured, text) if _coloured_secrets is not None and text else text


def _hide_coloured(match: re.Match[str]) -> str:
    # The colour changes inside the secret still apply to the text after it.
    return HIDDEN + "".join(_SGR.findall(match.group()))


def for_terminal(text: str, *, colour: bool) -> str:
    """``text`` safe to write to a terminal: only SGR colour sequences pass, and only with ``colour``."""
    return keep_colour(text) if colour else plain(text)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` as one clean line of at most ``limit`` characters (for error messages)."""
    line = " ".join(plain(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


# -- secrets ------------------------------------------------------------------------------------

# The values the session registered as secret (API keys, tokens), longest first; and the
# same values with SGR sequences allowed between their characters.
_secrets: re.Pattern[str] | None = None
_coloured_secrets: re.Pattern[str] | None = None
HIDDEN = "\u2022" * 8  # what a secret reads as wherever a turn is shown
SECRET_MIN_CHARS = 8  # shorter values are too likely to be ordinary words


def hide_secrets(values: Iterable[str]) -> None:
    """Show these values as ``HIDDEN`` in every rendering, terminal output and result item."""
    global _secrets, _coloured_secrets
    kept = sorted({value for value in values if len(value) >= SECRET_MIN_CHARS}, key=len, reverse=True)
    _secrets = re.compile("|".join(map(re.escape, kept))) if kept else None
    between = f"(?:{_SGR.pattern})*"
    coloured = "|".join(between.join(map(re.escape, value)) for value in kept)
    _coloured_secrets = re.compile(coloured) if kept else None


def redact(text: str) -> str:
    """``text`` with the registered secrets hidden."""
    return _secrets.sub(HIDDEN, text) if _secrets is not None and text else text


def redact_json(value: Any) -> Any:
    """A wire value (dicts, lists, strings) with the registered secrets hidden in every string."""
    if _secrets is None:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    return value
