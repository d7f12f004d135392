"""Record real app-server notification sequences for the pure-tier tests.

Run by hand from the repository root, after changing the SDK version or when a
scenario should change::

    /work/.venv/bin/python tests/record_notifications.py            # all scenarios
    /work/.venv/bin/python tests/record_notifications.py command    # just one

Each scenario starts the real ``codex app-server`` (through the ``openai-codex``
SDK) against the project's offline scripted model server
(``codex_magic.scripted_model``), runs one turn, and writes every notification
of that turn, converted with ``codex_magic._runner.wire``, to
``tests/data/<scenario>.json`` as a JSON list of ``[method, params]`` pairs,
one pair per line. Nothing is trimmed by hand: the files are exactly what the
app-server sent for the turn (temporary paths and ids differ between runs).

The pure tests (``test_transcript.py``, ``test_render.py``, ``test_result.py``)
replay these files; they never start the app-server. This file is not named
``test_*`` so pytest does not collect it.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openai_codex import ApprovalMode, Codex, CodexConfig, Sandbox

from codex_magic._runner import wire
from codex_magic.scripted_model import (
    Reply,
    ScriptedModel,
    exec_command,
    http_error,
    message,
    reasoning,
    write_codex_config,
)

DATA = Path(__file__).resolve().parent / "data"

# Shared with the tests, which assert on these exact texts.
STREAMED_TEXT = "Hello from the scripted model: this answer arrives word by word."
COMMAND = "echo alpha; echo beta; echo gamma"
COMMAND_REASONING = "I should run a command to see the output."
COMMAND_ANSWER = "The command printed alpha, beta and gamma."
SLOW_TEXT = " ".join(f"word{i}" for i in range(200))
MARKUP = "<script>alert(1)</script> <img src=x onerror=alert(1)> a &amp; b"
MARKUP_COMMAND = "printf '%s\\n' '<script>alert(1)</script>' '<img src=x onerror=alert(1)>' 'a &amp; b'"
MARKUP_ANSWER = f"Here is markup: {MARKUP}"


def _scenarios() -> dict[str, tuple[list[Any], Callable[[Any], None] | None]]:
    """Scenario name -> (script, optional action run with the turn handle while streaming)."""
    return {
        "streamed_message": ([message(STREAMED_TEXT, deltas=True)], None),
        "command": (
            [
                [reasoning(COMMAND_REASONING, deltas=True), exec_command(COMMAND, login=False)],
                message(COMMAND_ANSWER, deltas=True),
            ],
            None,
        ),
        "http_500": ([http_error(500, "scripted failure")], None),
        "interrupted": ([Reply([message(SLOW_TEXT, deltas=True)], delay=0.05)], _interrupt_later),
        "markup": (
            [
                [message(MARKUP, deltas=True, phase="commentary"), exec_command(MARKUP_COMMAND, login=False)],
                message(MARKUP_ANSWER, deltas=True, phase="final_answer"),
            ],
            None,
        ),
    }


def _interrupt_later(handle: Any) -> None:
    """Interrupt the turn about half a second after it started."""
    timer = threading.Timer(0.5, handle.interrupt)
    timer.daemon = True
    timer.start()


def record(name: str, script: list[Any], action: Callable[[Any], None] | None) -> list[list[Any]]:
    """Run one turn against a scripted model and return its notifications in wire shape."""
    with tempfile.TemporaryDirectory(prefix="codex-rec-") as tmp:
        ws = Path(tmp, "ws")
        ws.mkdir()
        home = Path(tmp, "home")
        with ScriptedModel(script) as model:
            write_codex_config(home, model.url)
            config = CodexConfig(
                cwd=str(ws),
                env={
                    "CODEX_HOME": str(home),
                    "CODEX_APP_SERVER_DISABLE_MANAGED_CONFIG": "1",
                    "RUST_LOG": "warn",
                },
            )
            with Codex(config) as codex:
                thread = codex.thread_start(
                    approval_mode=ApprovalMode.deny_all, sandbox=Sandbox.workspace_write, cwd=str(ws)
                )
                handle = thread.turn(f"scenario {name}")
                if action is not None:
                    action(handle)
                started = time.monotonic()
                # stream() ends after this turn's turn/completed.
                entries = [list(wire(n)) for n in handle.stream()]
                print(f"{name}: {len(entries)} notifications in {time.monotonic() - started:.2f} s")
    return entries


def write(path: Path, entries: list[list[Any]]) -> None:
    """Write a JSON list with one ``[method, params]`` pair per line."""
    lines = ",\n".join(json.dumps(entry, ensure_ascii=False, sort_keys=True) for entry in entries)
    path.write_text(f"[\n{lines}\n]\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    scenarios = _scenarios()
    names = argv or list(scenarios)
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        print(f"unknown scenario(s) {unknown}; choose from {list(scenarios)}", file=sys.stderr)
        return 2
    DATA.mkdir(exist_ok=True)
    for name in names:
        entries = record(name, *scenarios[name])
        methods = [m for m, _ in entries]
        if not methods or methods[-1] != "turn/completed":
            print(f"{name}: the turn did not end with turn/completed: {methods[-3:]}", file=sys.stderr)
            return 1
        path = DATA / f"{name}.json"
        write(path, entries)
        print(f"  wrote {path.relative_to(DATA.parent.parent)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
