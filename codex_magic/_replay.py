"""Record and replay: a notebook run again replays its recorded turns without calling the model.

Like vcrpy's record modes, ``CodexMagic.replay`` (or a cell's ``--replay``) is one of

- ``off``: every turn calls the model; nothing is recorded (the default);
- ``auto``: a turn with a recording is replayed; any other runs live, and is recorded
  once it completed;
- ``only``: every turn is replayed; one without a recording fails (for CI).

A recording is one JSON-lines file in ``CodexMagic.recordings`` (``codex-recordings``
beside the kernel's working directory, the notebook's folder in Jupyter), named by its
key: a hash of the request as sent (text and images), the options that change the turn,
and the key and answer of the turn before it on the same thread. Editing a cell, or a
cell before it, so gives new keys and the turns run live again.

The files are safe to commit: secrets are hidden as in every output, the home directory
is written as ``~``, and each string is cut at MAX_CHARS with a note saying so.

This module imports neither IPython nor the SDK; the result is built by the caller.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from ._provenance import home_relative, iso
from ._text import redact_json

MODES = ("off", "auto", "only")
FORMAT = 1
MAX_CHARS = 20_000  # of any one string in a recording (a command's output, a message)
MAX_ITEMS = 500  # of one turn

Json = dict[str, Any]


def turn_key(previous: str, prompt: str, images: tuple[str, ...], options: Json) -> str:
    """The key of a turn: its request, the options that change it, and the turn before it."""
    request = {
        "format": FORMAT,
        "previous": previous,
        "prompt": prompt,
        "images": [_digest(image) for image in images],
        "options": options,
    }
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def _digest(image: str) -> str:
    """An image's digest: of the file's bytes for a local path, so a changed picture is a new request."""
    try:
        with open(image, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except (OSError, ValueError):  # a data: URL
        return hashlib.sha256(image.encode()).hexdigest()


def after(key: str, status: str, answer: str | None) -> str:
    """What the next turn's key builds on: this turn's key and how it ended."""
    return hashlib.sha256(json.dumps([key, status, answer or ""]).encode()).hexdigest()


class History:
    """The kernel's thread as replay sees it: what its next turn's key builds on, and the
    replayed turns not yet in its model-visible history (the session puts them there
    before the thread's next live turn, with ``thread/inject_items``)."""

    def __init__(self) -> None:
        self.key = ""
        self.pending: list[Json] = []

    def reset(self, key: str = "") -> None:
        """A new thread (or another one, resumed or forked): nothing to build on."""
        self.key, self.pending = key, []

    def replayed(self, items: list[Json], key: str) -> None:
        self.pending.extend(items)
        self.key = key


HISTORY = History()


@dataclass(frozen=True)
class Recording:
    """One recorded turn, as read back."""

    path: str
    header: Json
    items: list[Json]
    result: Json

    @property
    def recorded_at(self) -> str:
        return str(self.header.get("recorded_at") or "")

    def history(self) -> list[Json]:
        """The turn as the model saw it, to put in the thread's model-visible history.

        The request's text and the agent's messages (images and commands are not
        replayed to the model; the answers that describe them are).
        """
        texts = [("user", "input_text", str(self.header.get("prompt") or ""))]
        for item in self.items:
            if item.get("type") == "agentMessage" and item.get("text"):
                texts.append(("assistant", "output_text", str(item["text"])))
        return [
            {"type": "message", "role": role, "content": [{"type": kind, "text": text}]} for role, kind, text in texts
        ]


class Recordings:
    """The recordings directory: find a turn's recording, write one."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, key: str) -> str:
        return os.path.join(self.directory, f"{key[:24]}.jsonl")

    def find(self, key: str) -> Recording | None:
        """The recording of ``key``, or None (also for a file that is not a whole recording)."""
        try:
            with open(self.path(key), encoding="utf-8") as file:
                lines = [json.loads(line) for line in file if line.strip()]
        except (OSError, ValueError):
            return None
        if len(lines) < 2 or not isinstance(lines[0], dict) or lines[0].get("key") != key:
            return None
        header, *rest = lines
        items = [line["item"] for line in rest if isinstance(line, dict) and isinstance(line.get("item"), dict)]
        result = next(
            (line["result"] for line in rest if isinstance(line, dict) and isinstance(line.get("result"), dict)), None
        )
        if result is None:
            return None
        return Recording(self.path(key), header, items, result)

    def write(
        self, key: str, *, previous: str, prompt: str, options: Json, result: Json, items: list[Json], provenance: Json
    ) -> str:
        """Record a completed turn; the file's path. Written whole, then renamed into place."""
        os.makedirs(self.directory, exist_ok=True)
        cut: list[int] = []
        shown = items[:MAX_ITEMS]
        header = {
            "codex_magic_recording": FORMAT,
            "key": key,
            "previous": previous,
            "recorded_at": iso(time.time()),
            "prompt": _portable(prompt, cut),
            "options": options,
            "provenance": _portable(provenance, cut),
        }
        lines = [{"item": _portable(item, cut)} for item in shown]
        if len(items) > len(shown):
            cut.append(len(items) - len(shown))
            header["items_left_out"] = len(items) - len(shown)
        lines.append({"result": _portable(result, cut)})
        if cut:
            header["note"] = (
                f"cut: {len(cut)} strings were longer than {MAX_CHARS:,} characters and end in a note "
                "saying how much was left out"
                + (
                    f"; {len(items) - len(shown)} items after the first {MAX_ITEMS} are left out"
                    if len(items) > len(shown)
                    else ""
                )
            )
        path = self.path(key)
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "w", encoding="utf-8") as file:
            for line in (header, *lines):
                file.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
        os.replace(partial, path)
        return path


def _portable(value: Any, cut: list[int]) -> Any:
    """A JSON value fit to commit: secrets hidden, home as ``~``, long strings cut with a note."""
    return _bounded(redact_json(value), cut, os.path.expanduser("~"))


def _bounded(value: Any, cut: list[int], home: str) -> Any:
    if isinstance(value, str):
        if home not in ("", "/") and home in value:
            value = value.replace(home + os.sep, "~" + os.sep)
            value = home_relative(value) or value
        if len(value) > MAX_CHARS:
            cut.append(len(value) - MAX_CHARS)
            if value.startswith("data:"):
                return "data:,left%20out%20of%20the%20recording"
            return value[:MAX_CHARS] + f"\n[… {len(value) - MAX_CHARS:,} more characters left out of the recording]"
        return value
    if isinstance(value, dict):
        return {key: _bounded(item, cut, home) for key, item in value.items()}
    if isinstance(value, list):
        return [_bounded(item, cut, home) for item in value]
    return value
