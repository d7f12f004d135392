"""Fault injection against the real app-server and the scripted model.

What must keep holding when things go wrong:

* a model-side failure (HTTP 500, 429, 401, a malformed or truncated stream) ends the
  cell at once with a one-line ``TurnFailedError``, keeps the items of the turn so far,
  and leaves the thread usable for the next cell;
* an app-server killed mid-turn ends the cell at once, keeps the partial items, and the
  next cell restarts it and continues the thread with its history; killed between cells,
  again and again, there is still one thread and one app-server;
* no credential from the kernel's environment reaches any output of a real kernel, and
  text from the model is shown as text, never as markup.

Each test prints what it measured (``-s``) and appends it to ``conftest.NUMBERS``
for docs/reliability.md.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from markdown_it import MarkdownIt

from codex_magic import TurnFailedError
from codex_magic.scripted_model import (
    Entry,
    Reply,
    ScriptedRequest,
    exec_command,
    http_error,
    message,
)

from .conftest import Kernel, Offline, pid_alive, processes, record, wait_until

pytestmark = pytest.mark.appserver

ESC = "\x1b"
MAX_MESSAGE = 300  # characters: a message that fits a line or two of a notebook


def _session() -> Any:
    from codex_magic import _session

    return _session.get_session()


def _children_running(marker: bytes, parent: int | None = None) -> list[int]:
    """Live processes whose command line contains ``marker`` (children of ``parent``, if given)."""
    return [p.pid for p in processes() if marker in p.cmdline and (parent is None or p.ppid == parent)]


def _stamped(entry: Entry, stamps: list[float]) -> Callable[[ScriptedRequest], Entry]:
    """The entry, noting when the model was asked for it."""

    def answer(request: ScriptedRequest) -> Entry:
        stamps.append(time.monotonic())
        return entry

    return answer


def _one_line(text: str) -> None:
    assert "\n" not in text and "\r" not in text, repr(text)
    assert ESC not in text, repr(text)
    assert len(text) < MAX_MESSAGE, (len(text), text)


# -- model-side failures ------------------------------------------------------------------

# A raw output item with a NaN: json.dumps writes it as the bare word NaN, so the SSE
# event's data line is not JSON. (The scripted model has no other way to send raw text.)
_NOT_JSON = {"type": "message", "id": "msg_nan", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "never seen", "annotations": []}],
             "score": float("nan")}  # fmt: skip
_TRUNCATED_TEXT = "I was saying something long"

FAILURES = [
    pytest.param(http_error(500, "scripted outage"), "high demand", id="http-500"),
    pytest.param(http_error(429, "slow down"), "429 Too Many Requests", id="http-429"),
    pytest.param(http_error(401, "Incorrect API key"), "401 Unauthorized: Incorrect API key", id="http-401"),
    pytest.param(Reply([_NOT_JSON]), "stream closed before response.completed", id="malformed-sse"),
    # response.created, output_item.added, one delta; then the body ends mid-stream.
    pytest.param(
        Reply([message(_TRUNCATED_TEXT, deltas=True)], break_after=3),
        "stream disconnected before completion",
        id="truncated-stream",
    ),
    pytest.param(Reply([], failed=True, error_message="scripted failure"), "scripted failure", id="response-failed"),
]


@pytest.mark.parametrize(("failure", "expected"), FAILURES)
def test_a_model_failure_fails_the_cell_at_once_and_keeps_the_turn(
    shell: Any, offline: Offline, failure: Reply, expected: str, request: pytest.FixtureRequest
) -> None:
    stamps: list[float] = []
    # The first reply completes a message and asks for a command; Codex runs it and asks
    # the model again within the same turn: that request fails.
    offline.model.add(
        [message("partial done"), exec_command("echo hi", login=False)],
        _stamped(failure, stamps),
        message("next ok"),
    )
    started = time.monotonic()
    with pytest.raises(TurnFailedError) as caught:
        shell.run_cell_magic("codex", "", "Do the thing.")
    ended = time.monotonic()
    cell_seconds, after_failure = ended - started, ended - stamps[0]

    text = str(caught.value)
    _one_line(text)
    assert expected in text
    assert "_codex_result" in text  # says where the partial result is
    assert after_failure < 3.0

    assert caught.value.result is shell.user_ns["_codex_result"]
    result: Any = shell.user_ns["_codex_result"]
    assert result.status.value == "failed" and result.error is not None and result.error.message
    kinds = [item.root.type for item in result.items]
    assert kinds[:3] == ["userMessage", "agentMessage", "commandExecution"], kinds
    assert result.items[1].root.text == "partial done"
    command = result.items[2].root
    assert "echo hi" in command.command and command.exit_code == 0
    assert "hi" in (command.aggregated_output or "")
    if "truncated" in request.node.callspec.id:
        # The message that was streaming when the body ended is kept, and marked unfinished.
        partial = result.items[-1].root
        assert partial.type == "agentMessage" and partial.id in result.unfinished
        assert partial.text and _TRUNCATED_TEXT.startswith(partial.text) and partial.text != _TRUNCATED_TEXT
    else:
        assert len(kinds) == 3, kinds

    shell.run_cell_magic("codex", "", "Again.")
    again = shell.user_ns["_codex_result"]
    assert again.status.value == "completed" and again.final_response == "next ok"
    assert "Do the thing." in offline.model.requests[-1].input_texts("user")
    record(
        f"model failure {request.node.callspec.id}",
        cell_seconds=round(cell_seconds, 3),
        seconds_after_failing_request=round(after_failure, 3),
        message=text,
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("Incorrect key\nsee the second line \x1b[31min red\x1b[0m", id="control-characters"),
        pytest.param("Incorrect key. " + "Details follow. " * 60, id="long-body"),
    ],
)
def test_a_providers_error_text_still_gives_a_one_line_error(shell: Any, offline: Offline, body: str) -> None:
    offline.model.add(http_error(401, body), message("next ok"))
    with pytest.raises(TurnFailedError) as caught:
        shell.run_cell_magic("codex", "", "Hello")
    record("hostile 401 body", length=len(str(caught.value)), message=str(caught.value)[:120])
    _one_line(str(caught.value))


# -- the app-server killed ----------------------------------------------------------------

_SLEEP = "sleep 30.25"  # a command line no other process has


@pytest.mark.parametrize("during", ["stream", "command"])
def test_a_kill_mid_turn_ends_the_cell_at_once_keeps_items_and_history(
    shell: Any, offline: Offline, during: str
) -> None:
    full = "slow " * 300
    if during == "stream":
        second: Entry = Reply([message(full, deltas=True)], delay=0.02)
    else:
        second = [message("running it"), exec_command(_SLEEP, login=False)]
    offline.model.add(message("I will remember kumquat."), second, message("back"))
    shell.run_cell_magic("codex", "", "Remember the word kumquat.")
    pid = _session().pid
    thread_id = _session().thread_id
    killed: list[float] = []

    def kill_mid_turn() -> None:
        if wait_until(lambda: len(offline.model.requests) == 2, 30):
            if during == "command":
                wait_until(lambda: bool(_children_running(_SLEEP.encode())), 10)
            time.sleep(0.4)  # well into the stream, or the command
        killed.append(time.monotonic())
        os.kill(pid, signal.SIGKILL)

    threading.Thread(target=kill_mid_turn, daemon=True).start()
    with pytest.raises(TurnFailedError, match=r"lost the codex app-server \(killed by signal 9\)") as caught:
        shell.run_cell_magic("codex", "", "Talk about fruit.")
    after_kill = time.monotonic() - killed[0]
    _one_line(str(caught.value))
    assert after_kill < 2.0

    result: Any = shell.user_ns["_codex_result"]
    assert result.status.value == "failed"
    kinds = [item.root.type for item in result.items]
    if during == "stream":
        assert kinds == ["userMessage", "agentMessage"], kinds
        partial = result.items[-1].root
        assert 0 < len(partial.text) < len(full) and full.startswith(partial.text)
        assert partial.id in result.unfinished
    else:
        assert kinds == ["userMessage", "agentMessage", "commandExecution"], kinds
        assert result.items[1].root.text == "running it"
        command = result.items[2].root
        assert _SLEEP in command.command and command.id in result.unfinished
        # The command dies with its app-server: nothing is left sleeping.
        assert wait_until(lambda: not _children_running(_SLEEP.encode()), 5), "the command outlived the app-server"
    assert wait_until(lambda: not pid_alive(pid), 2)

    started = time.monotonic()
    shell.run_cell_magic("codex", "", "What was the word?")
    restart_seconds = time.monotonic() - started
    again = shell.user_ns["_codex_result"]
    assert again.final_response == "back"
    assert ("session", "the codex app-server was restarted; the thread was resumed") in again.notices
    assert _session().thread_id == thread_id and _session().pid != pid
    said = offline.model.requests[-1].input_texts("user")
    assert said[-3:] == ["Remember the word kumquat.", "Talk about fruit.", "What was the word?"], said[-3:]
    answered = offline.model.requests[-1].input_texts("assistant")
    assert answered[0] == "I will remember kumquat."
    if during == "command":
        assert "running it" in answered  # completed before the kill: in the thread's history
    assert _children_running(b"app-server", parent=os.getpid()) == [_session().pid]
    record(
        f"app-server killed mid-{during}",
        cell_end_seconds_after_kill=round(after_kill, 3),
        next_cell_with_restart_seconds=round(restart_seconds, 3),
        items_kept=kinds,
    )


def test_kills_between_cells_keep_one_thread_and_one_app_server(shell: Any, offline: Offline) -> None:
    words = ["apple", "banana", "cherry", "damson"]
    offline.model.add(*[message(f"noted {word}") for word in words])
    shell.run_cell_magic("codex", "", f"Remember {words[0]}.")
    thread_id = _session().thread_id
    restarts: list[float] = []
    for word in words[1:]:
        pid = _session().pid
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda pid=pid: not pid_alive(pid))
        started = time.monotonic()
        shell.run_cell_magic("codex", "", f"Remember {word}.")
        restarts.append(time.monotonic() - started)
        assert shell.user_ns["_codex_result"].final_response == f"noted {word}"
        assert _session().thread_id == thread_id
        # The old process is reaped and only the new one runs.
        assert _children_running(b"app-server", parent=os.getpid()) == [_session().pid]
    said = offline.model.requests[-1].input_texts("user")
    assert [text for text in said if text.startswith("Remember")] == [f"Remember {word}." for word in words]
    record(
        "app-server killed between cells",
        restarts=len(restarts),
        next_cell_with_restart_seconds=[round(seconds, 3) for seconds in restarts],
    )


# -- secrets and markup in a real kernel ---------------------------------------------------

ENV_SECRETS = {"OPENAI_API_KEY": "sk-test-envkey-3f9a1c", "CODEX_API_KEY": "codex-test-envkey-77b2e0"}


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


_FAKE_ID_TOKEN = ".".join(
    [_b64({"alg": "none"}), _b64({"email": "nobody@example.invalid", "sub": "fake-subject-91d3"}), "ZmFrZQ"]
)
AUTH_SECRETS = {
    "OPENAI_API_KEY": "sk-test-authfile-5d21aa",
    "id_token": _FAKE_ID_TOKEN,
    "access_token": "fake-access-token-c0ffee",
    "refresh_token": "fake-refresh-token-b00b1e",
}


def _auth_json() -> dict[str, Any]:
    tokens = {name: AUTH_SECRETS[name] for name in ("id_token", "access_token", "refresh_token")}
    return {
        "OPENAI_API_KEY": AUTH_SECRETS["OPENAI_API_KEY"],
        "tokens": {**tokens, "account_id": "fake-account"},
        "last_refresh": "2026-01-01T00:00:00Z",
    }


@pytest.fixture
def secret_kernel(offline: Offline, jupyter_dirs: None) -> Any:
    """A real kernel with API keys in its environment and a login in CODEX_HOME/auth.json."""
    (offline.codex_home / "auth.json").write_text(json.dumps(_auth_json()))
    kernel = Kernel({**offline.env, **ENV_SECRETS}, offline.workspace)
    try:
        loaded = kernel.run("%load_ext codex_magic")
        assert loaded.error is None, loaded.error
        yield kernel
    finally:
        kernel.shutdown()


def _everything_shown(secret_kernel: Kernel, offline: Offline) -> str:
    """Run a turn that prints the environment and auth.json; return all the kernel showed."""
    offline.model.add(
        exec_command("printenv; cat $CODEX_HOME/auth.json 2>&1", login=False),
        # The answer echoes the command's output, as a model might.
        lambda request: message("Here is what it printed:\n\n" + request.function_call_outputs()[-1]),
    )
    # The live widget from the turn's start, so its messages are checked too.
    assert secret_kernel.run("%load_ext codex_magic\n%config CodexMagic.live_after = 0").error is None
    turn = secret_kernel.run("%%codex\nPrint the environment and the login file.")
    assert turn.error is None, turn.error
    looked = secret_kernel.run(
        "r = _codex_result\n"
        "print(repr(r)); print(r._repr_html_()); print(r._repr_markdown_())\n"
        "for item in r.items: print(item.model_dump_json())\n"
        "r"  # the result's display, as a frontend shows it
    )
    assert looked.error is None, looked.error
    shown = json.dumps([message["content"] for message in turn.messages + looked.messages])
    types = {message["msg_type"] for message in turn.messages}
    assert {"display_data", "update_display_data", "comm_open", "comm_msg"} <= types, types
    # The command ran and its output was shown: the checks below are not vacuous.
    assert "CODEX_HOME=" in shown and "last_refresh" in shown
    return shown


@pytest.mark.kernel
@pytest.mark.parametrize(
    "source",
    [
        "environment",
        # Commands can read $CODEX_HOME/auth.json (the sandbox lets them read every file);
        # its keys and tokens are hidden wherever the turn is shown.
        "auth.json",
    ],
)
def test_no_secret_reaches_any_output(secret_kernel: Kernel, offline: Offline, source: str) -> None:
    shown = _everything_shown(secret_kernel, offline)
    secrets = ENV_SECRETS if source == "environment" else AUTH_SECRETS
    leaked = [name for name, value in secrets.items() if value in shown]
    record(f"secrets from {source}", leaked=leaked)
    assert not leaked


MARKUP = "Look: <script>alert(1)</script> and <img src=x onerror=alert(1)> and [a link](javascript:alert(1))"


@pytest.mark.kernel
def test_model_markup_is_shown_as_text(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(
        [message(MARKUP, deltas=True), exec_command("echo '<script>alert(2)</script>'", login=False)],
        message(MARKUP),
    )
    turn = kernel.run("%%codex\nShow some markup.")
    assert turn.error is None, turn.error
    saved = kernel.run("print(_codex_result._repr_html_())").stdout

    models: dict[str, str] = {}
    html: list[str] = [saved]
    for msg in turn.messages:
        content = msg["content"]
        if msg["msg_type"] in ("display_data", "update_display_data"):
            html.append(content["data"].get("text/html", ""))
            # The Markdown fallback, rendered as a renderer that passes raw HTML through would.
            html.append(MarkdownIt("commonmark").render(content["data"].get("text/markdown", "")))
        elif msg["msg_type"] in ("comm_open", "comm_msg"):
            state = content["data"].get("state", {})
            models.setdefault(content["comm_id"], state.get("_model_name", ""))
            if models[content["comm_id"]] == "HTMLModel" and isinstance(state.get("value"), str):
                html.append(state["value"])
    shown = [text for text in html if "alert(" in text]
    assert len(shown) >= 3, "the markup never reached the widget and the saved HTML"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in saved and "&lt;script&gt;alert(2)&lt;/script&gt;" in saved
    for text in shown:
        lowered = text.lower()
        assert "<script" not in lowered and "<img" not in lowered, text
        assert 'href="javascript' not in lowered and "href='javascript" not in lowered, text
