"""Tests for codex_magic.scripted_model: the HTTP/SSE server alone, then the real app-server."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_codex import ApprovalMode, Codex, CodexConfig, Sandbox, Thread, TurnHandle
from openai_codex.models import Notification

from codex_magic.scripted_model import (
    DEMO_ANSWER,
    DEMO_COMMAND,
    Reply,
    ScriptedModel,
    ScriptedRequest,
    Usage,
    exec_command,
    function_call,
    http_error,
    load_script,
    message,
    reasoning,
    serve_demo,
    write_codex_config,
)

# --------------------------------------------------------------------------
# HTTP helpers (no Codex involved).


def _connect(model: ScriptedModel, timeout: float = 5.0) -> http.client.HTTPConnection:
    host, port = model.url.removeprefix("http://").removesuffix("/v1").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def _post(
    model: ScriptedModel, body: dict[str, Any] | None = None, path: str = "/v1/responses"
) -> tuple[int, dict[str, str], bytes]:
    conn = _connect(model)
    try:
        payload = json.dumps(body if body is not None else {"input": []})
        conn.request("POST", path, payload, {"Content-Type": "application/json", "X-Test": "yes"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _sse(data: bytes) -> list[dict[str, Any]]:
    """Parse an SSE body, checking that each event name matches its data's type."""
    events = []
    for block in data.decode().split("\n\n"):
        if not block:
            continue
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        event = json.loads(data_line.removeprefix("data: "))
        assert event["type"] == name_line.removeprefix("event: ")
        events.append(event)
    return events


def _events(model: ScriptedModel, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    status, headers, data = _post(model, body)
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    return _sse(data)


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def _user_body(*texts: str) -> dict[str, Any]:
    return {
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]} for text in texts
        ]
    }


# --------------------------------------------------------------------------
# Tier (a): the server over plain HTTP.


def test_message_reply_is_created_item_completed() -> None:
    with ScriptedModel([message("Hello.")]) as model:
        events = _events(model)
    assert _types(events) == ["response.created", "response.output_item.done", "response.completed"]
    item = events[1]["item"]
    assert item["type"] == "message" and item["role"] == "assistant"
    assert item["content"][0] == {"type": "output_text", "text": "Hello.", "annotations": []}
    usage = events[-1]["response"]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert events[0]["response"]["id"] == events[-1]["response"]["id"]


def test_streamed_message_sends_word_deltas_between_added_and_done() -> None:
    with ScriptedModel([message("Hello big  world", deltas=True, phase="final_answer")]) as model:
        events = _events(model)
    assert _types(events) == [
        "response.created",
        "response.output_item.added",
        *["response.output_text.delta"] * 3,
        "response.output_item.done",
        "response.completed",
    ]
    assert [event["delta"] for event in events[2:5]] == ["Hello ", "big  ", "world"]
    item_id = events[1]["item"]["id"]
    assert {event["item_id"] for event in events[2:5]} == {item_id}
    assert events[5]["item"]["id"] == item_id
    assert events[5]["item"]["phase"] == "final_answer"


def test_chunked_deltas_split_by_characters() -> None:
    with ScriptedModel([message("abcdefghij", deltas=True, chunk=4)]) as model:
        events = _events(model)
    deltas = [event["delta"] for event in events if event["type"] == "response.output_text.delta"]
    assert deltas == ["abcd", "efgh", "ij"]


def test_streamed_reasoning_sends_summary_parts_and_deltas() -> None:
    with ScriptedModel([reasoning(["One two", "Three"], deltas=True)]) as model:
        events = _events(model)
    assert _types(events) == [
        "response.created",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.get("summary_index") for e in events[2:7]] == [0, 0, 0, 1, 1]
    assert events[-2]["item"]["summary"] == [
        {"type": "summary_text", "text": "One two"},
        {"type": "summary_text", "text": "Three"},
    ]


def test_list_entry_makes_one_reply_with_several_items() -> None:
    script = [[reasoning("Look first."), exec_command("ls -1", workdir="sub", call_id="call_x")]]
    with ScriptedModel(script) as model:
        events = _events(model)
    done = [event for event in events if event["type"] == "response.output_item.done"]
    assert [event["output_index"] for event in done] == [0, 1]
    call = done[1]["item"]
    assert call["type"] == "function_call" and call["name"] == "exec_command"
    assert call["call_id"] == "call_x"
    assert json.loads(call["arguments"]) == {"cmd": "ls -1", "workdir": "sub"}


def test_function_call_accepts_json_text_and_gets_unique_ids() -> None:
    script = [function_call("lookup", '{"q": 1}'), function_call("lookup", {"q": 2})]
    with ScriptedModel(script) as model:
        first, second = _events(model), _events(model)
    items = [events[1]["item"] for events in (first, second)]
    assert [item["arguments"] for item in items] == ['{"q": 1}', '{"q": 2}']
    assert items[0]["id"] != items[1]["id"]
    assert items[0]["call_id"] != items[1]["call_id"]
    assert first[0]["response"]["id"] != second[0]["response"]["id"]


def test_usage_is_reported_in_completed() -> None:
    usage = Usage(input_tokens=7, output_tokens=3, cached_input_tokens=2)
    reply = Reply([message("x")], usage=usage)
    with ScriptedModel([reply]) as model:
        usage = _events(model)[-1]["response"]["usage"]
    assert usage == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10,
    }


def test_http_error_reply_has_status_and_json_body() -> None:
    script = [http_error(429, "slow down"), http_error(503, "down", code="busy")]
    with ScriptedModel(script) as model:
        status, headers, data = _post(model)
        status2, _, data2 = _post(model)
    assert status == 429 and headers["content-type"] == "application/json"
    assert json.loads(data) == {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    assert status2 == 503
    assert json.loads(data2)["error"] == {"message": "down", "type": "server_error", "code": "busy"}


def test_break_after_ends_the_body_without_completion() -> None:
    with ScriptedModel([Reply([message("a b c", deltas=True)], break_after=3)]) as model:
        conn = _connect(model)
        conn.request("POST", "/v1/responses", "{}")
        response = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            response.read()
        conn.close()
    events = _sse(excinfo.value.partial)
    assert _types(events) == [
        "response.created",
        "response.output_item.added",
        "response.output_text.delta",
    ]


def test_stall_after_holds_the_stream_and_close_returns_promptly() -> None:
    model = ScriptedModel([Reply([message("never finished")], stall_after=1)]).start()
    host, port = model.url.removeprefix("http://").removesuffix("/v1").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    received = b""
    while b"\n\n\r\n" not in received:  # the end of the first event's chunk
        received += sock.recv(4096)
    assert b"event: response.created" in received
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(1)  # nothing more while stalled
    started = time.monotonic()
    model.close()
    assert time.monotonic() - started < 1.0
    sock.settimeout(2.0)
    rest = b""
    while chunk := sock.recv(4096):
        rest += chunk
    sock.close()
    assert rest == b""  # the server hung up without the final zero-length chunk


def test_stalled_handler_notices_a_client_that_leaves() -> None:
    with ScriptedModel([Reply([message("x")], stall_after=0), message("next")]) as model:
        conn = _connect(model)
        conn.request("POST", "/v1/responses", "{}")
        conn.getresponse()
        conn.close()
        # The server still answers others while (and after) a stalled client goes away.
        assert _types(_events(model))[1] == "response.output_item.done"


def test_delay_paces_the_events() -> None:
    with ScriptedModel([Reply([message("a b c", deltas=True)], delay=0.05)]) as model:
        started = time.monotonic()
        events = _events(model)
        elapsed = time.monotonic() - started
    assert len(events) == 7
    assert elapsed >= 6 * 0.05 * 0.9


def test_script_exhaustion_answers_500_with_a_clear_message() -> None:
    with ScriptedModel([message("only one")]) as model:
        assert _post(model)[0] == 200
        assert model.remaining == 0
        status, _, data = _post(model)
    assert status == 500
    message_text = json.loads(data)["error"]["message"]
    assert message_text == "scripted model: script exhausted after 1 replies"


def test_callable_entry_sees_the_request() -> None:
    seen: list[ScriptedRequest] = []

    def answer(request: ScriptedRequest) -> Any:
        seen.append(request)
        return [reasoning("echo"), f"You said: {request.input_texts('user')[-1]}"]

    with ScriptedModel([answer]) as model:
        events = _events(model, _user_body("first", "second"))
    assert seen[0].input_texts("user") == ["first", "second"]
    assert seen[0].headers["x-test"] == "yes"
    assert events[2]["item"]["content"][0]["text"] == "You said: second"


def test_callable_entry_error_answers_500() -> None:
    def broken(_request: ScriptedRequest) -> Any:
        raise KeyError("oops")

    with ScriptedModel([broken]) as model:
        status, _, data = _post(model)
    assert status == 500
    assert "script entry 1 raised KeyError" in json.loads(data)["error"]["message"]


def test_requests_are_recorded_and_waited_for() -> None:
    with ScriptedModel(["one", "two"]) as model:
        threading.Timer(0.05, _post, (model, _user_body("hi"))).start()
        requests = model.wait_for_requests(1, timeout=5)
        assert requests[0].path == "/v1/responses"
        assert requests[0].headers["content-type"] == "application/json"
        assert requests[0].body == _user_body("hi")
        with pytest.raises(TimeoutError, match="expected 2 requests, got 1"):
            model.wait_for_requests(2, timeout=0.05)
        model.requests.clear()  # a copy: the record is unaffected
        assert len(model.requests) == 1


def test_add_appends_while_running() -> None:
    with ScriptedModel() as model:
        assert _post(model)[0] == 500
        model.add(message("late"), [message("a"), message("b")])
        assert model.remaining == 2
        assert _events(model)[1]["item"]["content"][0]["text"] == "late"
        assert len([e for e in _events(model) if e["type"] == "response.output_item.done"]) == 2


def test_request_helpers_read_roles_and_tool_outputs() -> None:
    request = ScriptedRequest(
        path="/v1/responses",
        headers={},
        body={
            "input": [
                {"type": "message", "role": "user", "content": "plain"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "ok"}],
                },
                {"type": "function_call_output", "call_id": "c1", "output": "text out"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "a"}],
                },
            ]
        },
    )
    assert request.input_texts("user") == ["plain"]
    assert request.input_texts("assistant") == ["ok"]
    assert request.function_call_outputs() == ["text out", "a"]


def test_models_endpoint_and_unknown_paths() -> None:
    with ScriptedModel() as model:
        conn = _connect(model)
        conn.request("GET", "/v1/models")
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["data"][0]["id"] == "scripted-model"
        conn.close()
        assert _post(model, path="/v1/other")[0] == 404
        assert model.remaining == 0


def test_invalid_entries_fail_where_they_are_written() -> None:
    with pytest.raises(TypeError, match="not an output item"):
        ScriptedModel([[message("ok"), 42]])
    with pytest.raises(ValueError, match="cannot carry output items"):
        Reply([message("x")], status=500)
    with pytest.raises(ValueError, match="stall or break"):
        Reply([], stall_after=1, break_after=1)
    with pytest.raises(ValueError, match="chunk"):
        message("x", deltas=True, chunk=0)


def test_write_codex_config_writes_the_provider(tmp_path: Path) -> None:
    path = write_codex_config(tmp_path / "home", "http://127.0.0.1:9/v1", extra_toml="[features]\nx = true")
    assert path == tmp_path / "home" / "config.toml"
    text = path.read_text()
    lines = text.splitlines()
    for line in (
        'model = "scripted-model"',
        'model_provider = "scripted"',
        "[model_providers.scripted]",
        'base_url = "http://127.0.0.1:9/v1"',
        'wire_api = "responses"',
        "request_max_retries = 0",
        "stream_max_retries = 0",
        "stream_idle_timeout_ms = 10000",
        "supports_websockets = false",
    ):
        assert line in lines
    assert lines.index("[features]") < lines.index("[model_providers.scripted]")
    assert "approval_policy" not in text and "sandbox_mode" not in text


def test_load_script_builds_replies(tmp_path: Path) -> None:
    script_file = tmp_path / "script.json"
    script_file.write_text(
        json.dumps(
            [
                "plain",
                {"message": "hi", "deltas": True, "delay": 0.01},
                {"items": ["hi", {"exec_command": "ls", "args": {"login": False}}]},
                {"function_call": "f", "arguments": {"a": 1}, "call_id": "c"},
                {"http_error": 503, "message": "down"},
                {"message": "stuck", "stall_after": 1, "usage": {"input_tokens": 5}},
            ]
        )
    )
    script = load_script(script_file)
    assert script[0] == message("plain")
    assert script[1].delay == 0.01 and script[1].items[0] == message("hi", deltas=True)
    assert script[2].items == (message("hi"), exec_command("ls", login=False))
    assert script[3].items == (function_call("f", {"a": 1}, call_id="c"),)
    assert script[4].status == 503
    assert script[5].stall_after == 1 and script[5].usage.input_tokens == 5
    with pytest.raises(ValueError, match="unknown keys"):
        load_script([{"message": "x", "colour": "red"}])


def test_serve_demo_points_codex_home_at_a_fresh_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_HOME", "/nonexistent-before-demo")
    demo = serve_demo()
    try:
        assert demo.codex_home is not None
        assert os.environ["CODEX_HOME"] == str(demo.codex_home)
        assert f'base_url = "{demo.url}"' in (demo.codex_home / "config.toml").read_text()
        assert demo.remaining == 4
    finally:
        demo.close()
    assert not demo.codex_home.exists()  # its own temporary directory goes with it


def test_cli_serves_a_json_script(tmp_path: Path) -> None:
    script_file = tmp_path / "script.json"
    script_file.write_text(json.dumps([{"message": "from the CLI"}]))
    home = tmp_path / "home"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codex_magic.scripted_model",
            "--codex-home",
            str(home),
            "--script",
            str(script_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        url = lines[0].split()[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert lines[2].strip() == f"export CODEX_HOME={home.resolve()}"
        assert f'base_url = "{url}"' in (home / "config.toml").read_text()
        host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("POST", "/v1/responses", "{}")
        assert b"from the CLI" in conn.getresponse().read()
        conn.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------
# Tier (b): the real codex app-server through the SDK.

TURN_TIMEOUT = 20.0


@contextlib.contextmanager
def _codex(tmp_path: Path, model: ScriptedModel, **config: Any) -> Iterator[tuple[Codex, Thread]]:
    """Start an app-server on ``model`` and a deny-all, workspace-write thread."""
    home = tmp_path / "codex-home"
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    if not (home / "config.toml").exists():
        write_codex_config(home, model.url, **config)
    env = {
        "CODEX_HOME": str(home),
        "CODEX_APP_SERVER_DISABLE_MANAGED_CONFIG": "1",
        "RUST_LOG": "warn",
    }
    with Codex(CodexConfig(cwd=str(workspace), env=env)) as codex:
        thread = codex.thread_start(
            approval_mode=ApprovalMode.deny_all, sandbox=Sandbox.workspace_write, cwd=str(workspace)
        )
        yield codex, thread


def _collect(handle: TurnHandle, timeout: float = TURN_TIMEOUT) -> list[Notification]:
    """Collect a turn's notifications, failing (not hanging) if it does not complete in time."""
    notifications: list[Notification] = []
    worker = threading.Thread(target=lambda: notifications.extend(handle.stream()), daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        handle.interrupt()
        pytest.fail(f"turn did not complete in {timeout} s: {[n.method for n in notifications]}")
    return notifications


def _turn(thread: Thread, text: str) -> list[Notification]:
    return _collect(thread.turn(text))


def _completed_items(notifications: list[Notification], kind: str) -> list[Any]:
    items = [n.payload.item.root for n in notifications if n.method == "item/completed"]
    return [item for item in items if item.type == kind]


def _status(notifications: list[Notification]) -> str:
    last = notifications[-1]
    assert last.method == "turn/completed"
    return last.payload.turn.status.value


def _deltas(notifications: list[Notification], method: str) -> list[str]:
    return [n.payload.delta for n in notifications if n.method == method]


@pytest.mark.appserver
def test_account_needs_no_openai_login(tmp_path: Path) -> None:
    with ScriptedModel() as model, _codex(tmp_path, model) as (codex, _thread):
        account = codex.account()
    assert account.account is None
    assert account.requires_openai_auth is False


@pytest.mark.appserver
def test_streamed_message_arrives_as_deltas(tmp_path: Path) -> None:
    text = "Hello from the scripted model."
    script = [message(text, deltas=True, phase="final_answer")]
    with ScriptedModel(script) as model, _codex(tmp_path, model) as (_c, thread):
        notifications = _turn(thread, "Say hello")
    assert _status(notifications) == "completed"
    assert "".join(_deltas(notifications, "item/agentMessage/delta")) == text
    assert len(_deltas(notifications, "item/agentMessage/delta")) == 5
    [agent_message] = _completed_items(notifications, "agentMessage")
    assert agent_message.text == text
    assert agent_message.phase.value == "final_answer"
    assert model.requests[0].input_texts("user")[-1] == "Say hello"


@pytest.mark.appserver
def test_exec_command_runs_in_a_real_shell(tmp_path: Path) -> None:
    def summary(request: ScriptedRequest) -> Any:
        output = request.function_call_outputs()[-1].split("Output:\n")[-1]
        return message("The command printed: " + output)

    script = [
        [reasoning("List first."), exec_command("printf 'alpha\\nbeta\\n'", login=False)],
        summary,
    ]
    with ScriptedModel(script) as model, _codex(tmp_path, model) as (_c, thread):
        notifications = _turn(thread, "Run something")
    assert _status(notifications) == "completed"
    [command] = _completed_items(notifications, "commandExecution")
    assert command.status.value == "completed"
    assert command.exit_code == 0
    assert command.aggregated_output == "alpha\nbeta\n"
    assert "printf" in command.command
    completed = [n.payload.item.root.type for n in notifications if n.method == "item/completed"]
    assert completed.index("commandExecution") < completed.index("agentMessage")
    [answer] = _completed_items(notifications, "agentMessage")
    assert answer.text == "The command printed: alpha\nbeta\n"
    first, second = model.requests
    # Codex 0.163 offers the model a shell tool named exec_command taking {"cmd": ...}.
    [tool] = [t for t in first.body["tools"] if t.get("name") == "exec_command"]
    assert tool["parameters"]["required"] == ["cmd"]
    assert "Process exited with code 0" in second.function_call_outputs()[-1]


@pytest.mark.appserver
def test_reasoning_summary_arrives(tmp_path: Path) -> None:
    script = [[reasoning(["Thinking it over.", "Done thinking."], deltas=True), message("Answer.")]]
    with ScriptedModel(script) as model, _codex(tmp_path, model) as (_c, thread):
        notifications = _turn(thread, "Think")
    deltas = [
        (n.payload.summary_index, n.payload.delta)
        for n in notifications
        if n.method == "item/reasoning/summaryTextDelta"
    ]
    assert deltas == [(0, "Thinking "), (0, "it "), (0, "over."), (1, "Done "), (1, "thinking.")]
    [item] = _completed_items(notifications, "reasoning")
    assert item.summary == ["Thinking it over.", "Done thinking."]
    assert _completed_items(notifications, "agentMessage")[0].text == "Answer."


@pytest.mark.appserver
def test_http_500_fails_the_turn_quickly(tmp_path: Path) -> None:
    with ScriptedModel([http_error(500, "boom")]) as model, _codex(tmp_path, model) as (_c, thread):
        started = time.monotonic()
        notifications = _turn(thread, "Fail please")
        elapsed = time.monotonic() - started
    assert _status(notifications) == "failed"
    assert elapsed < 3.0
    errors = [n.payload for n in notifications if n.method == "error"]
    assert errors and errors[-1].will_retry is False
    assert len(model.requests) == 1


@pytest.mark.appserver
def test_each_retry_consumes_the_next_entry(tmp_path: Path) -> None:
    script = [http_error(500), http_error(502), message("Recovered.")]
    with (
        ScriptedModel(script) as model,
        _codex(tmp_path, model, request_max_retries=2) as (_c, thread),
    ):
        notifications = _turn(thread, "Try again")
    assert _status(notifications) == "completed"
    assert _completed_items(notifications, "agentMessage")[-1].text == "Recovered."
    assert len(model.requests) == 3


@pytest.mark.appserver
def test_broken_stream_fails_the_turn(tmp_path: Path) -> None:
    script = [Reply([message("cut short", deltas=True)], break_after=2)]
    with ScriptedModel(script) as model, _codex(tmp_path, model) as (_c, thread):
        notifications = _turn(thread, "Break")
    assert _status(notifications) == "failed"
    assert "stream disconnected" in notifications[-1].payload.turn.error.message


@pytest.mark.appserver
def test_second_turn_carries_the_first_turn(tmp_path: Path) -> None:
    script = [message("First answer."), message("Second answer.")]
    with ScriptedModel(script) as model, _codex(tmp_path, model) as (_c, thread):
        assert _status(_turn(thread, "First question")) == "completed"
        assert _status(_turn(thread, "Second question")) == "completed"
    second = model.requests[1]
    users = second.input_texts("user")
    assert users[-2:] == ["First question", "Second question"]
    assert "First answer." in second.input_texts("assistant")


@pytest.mark.appserver
def test_serve_demo_runs_its_whole_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "not-used"))
    demo = serve_demo(codex_home=tmp_path / "codex-home")
    try:
        assert os.environ["CODEX_HOME"] == str(tmp_path / "codex-home")
        with _codex(tmp_path, demo) as (_c, thread):
            first = _turn(thread, "What does this extension do?")
            second = _turn(thread, "Look at the files in this directory.")
            third = _turn(thread, "Do you remember what I asked?")
    finally:
        demo.close()
    assert [_status(turn) for turn in (first, second, third)] == ["completed"] * 3
    assert "".join(_deltas(first, "item/agentMessage/delta")) == DEMO_ANSWER
    assert _completed_items(second, "reasoning")
    [command] = _completed_items(second, "commandExecution")
    assert command.exit_code == 0 and DEMO_COMMAND in command.command
    summary = _completed_items(second, "agentMessage")[-1].text
    assert str(tmp_path / "workspace") in summary
    follow_up = _completed_items(third, "agentMessage")[-1].text
    assert 'your earlier request "Look at the files in this directory".' in follow_up
    assert demo.remaining == 0 and len(demo.requests) == 4
