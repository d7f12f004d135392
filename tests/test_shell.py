"""In-process shell tests: the blocking path of %%codex (terminal IPython, run_cell_magic)
against the real app-server and the scripted model."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

import codex_magic
from codex_magic import NotLoggedInError, RunResult, TurnFailedError, TurnInterruptedError
from codex_magic.scripted_model import Reply, exec_command, function_call, message, write_codex_config

from .conftest import Offline, pid_alive, processes, wait_until

pytestmark = pytest.mark.appserver


def _session() -> Any:
    from codex_magic import _session

    return _session.get_session()


def test_one_turn_stores_the_sdk_result(shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]) -> None:
    from openai_codex import TurnResult
    from openai_codex.types import TurnStatus

    offline.model.add(message("Forty-two.", deltas=True))
    shell.run_cell_magic("codex", "", "What is six times seven?")
    result = shell.user_ns["_codex_result"]
    assert isinstance(result, TurnResult) and isinstance(result, RunResult)
    assert result.status is TurnStatus.completed
    assert result.final_response == "Forty-two."
    assert [item.root.type for item in result.items] == ["userMessage", "agentMessage"]
    assert result.usage is not None and result.usage.last.total_tokens > 0
    assert result.duration_ms is not None and result.id
    printed = capsys.readouterr().out
    assert "Forty-two." in printed and "completed" in printed  # the text view in a terminal


def test_keyboard_interrupt_interrupts_the_turn(shell: Any, offline: Offline) -> None:
    offline.model.add(Reply(items=[message("slow " * 300, deltas=True)], delay=0.02), message("Resumed."))
    main = threading.main_thread().ident
    assert main is not None

    def ctrl_c_once_streaming() -> None:
        deadline = time.monotonic() + 30
        while not offline.model.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.6)  # about 30 words at 0.02 s each
        sent.append(time.monotonic())
        signal.pthread_kill(main, signal.SIGINT)

    sent: list[float] = []

    timer = threading.Thread(target=ctrl_c_once_streaming, daemon=True)
    timer.start()
    with pytest.raises(TurnInterruptedError, match="interrupted by the user"):
        shell.run_cell_magic("codex", "", "Talk slowly.")
    assert time.monotonic() - sent[0] < 2.5  # the cell ended within ~2 s of Ctrl-C
    result = shell.user_ns["_codex_result"]
    assert result.status.value == "interrupted"
    assert result.final_response is None  # as the SDK: the message never completed...
    partial = result.items[-1].root  # ...but the text that streamed is kept
    assert partial.type == "agentMessage" and 0 < len(partial.text) < len("slow " * 300)

    shell.run_cell_magic("codex", "", "Still there?")
    assert shell.user_ns["_codex_result"].final_response == "Resumed."
    assert "Talk slowly." in " ".join(offline.model.requests[-1].input_texts("user"))


def test_timeout_interrupts_the_turn(shell: Any, offline: Offline) -> None:
    offline.model.add(Reply(items=[message("slow " * 300, deltas=True)], delay=0.02))
    with pytest.raises(TurnInterruptedError, match=r"timed out after 1 s"):
        shell.run_cell_magic("codex", "--timeout 1", "Talk slowly.")
    assert shell.user_ns["_codex_result"].status.value == "interrupted"


def _processes_running(marker: str) -> list[int]:
    """Pids of processes whose command line contains ``marker``."""
    return [p.pid for p in processes() if marker.encode() in p.cmdline]


def test_an_interrupted_turn_stops_its_running_command(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = "sleep 47.25"  # a command line no other process has
    offline.model.add(exec_command(f"{marker} && echo finished", login=False), message("Slept."))
    started = threading.Event()

    def wait_for_command() -> None:
        if wait_until(lambda: bool(_processes_running(marker)), 30):
            started.set()

    watcher = threading.Thread(target=wait_for_command, daemon=True)
    watcher.start()
    with pytest.raises(TurnInterruptedError, match=r"timed out after 3 s"):
        shell.run_cell_magic("codex", "--timeout 3", "Sleep a while.")
    assert started.is_set(), "the command never started"
    assert wait_until(lambda: not _processes_running(marker), 5), "the command outlived the interrupt"
    assert f"stopped the commands still running: {marker} && echo finished" in capsys.readouterr().out


def test_failed_turn_keeps_items_and_the_previous_result_name(shell: Any, offline: Offline) -> None:
    from codex_magic.scripted_model import http_error

    offline.model.add(message("first"), http_error(500, "scripted outage"))
    shell.run_cell_magic("codex", "--out keep", "One")
    with pytest.raises(TurnFailedError) as caught:
        shell.run_cell_magic("codex", "", "Two")
    failed = shell.user_ns["_codex_result"]
    assert caught.value.result is failed
    assert failed.status.value == "failed" and failed.error is not None
    assert [item.root.type for item in failed.items] == ["userMessage"]
    assert shell.user_ns["keep"].final_response == "first"  # nothing the user had is lost


def test_app_server_killed_then_next_cell_resumes_the_thread(shell: Any, offline: Offline) -> None:
    offline.model.add(message("I will remember 'kumquat'."), message("The word was kumquat."))
    shell.run_cell_magic("codex", "", "Remember the word kumquat.")
    session = _session()
    thread_id, pid = session.thread_id, session.pid
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(pid))

    shell.run_cell_magic("codex", "", "What was the word?")
    assert shell.user_ns["_codex_result"].final_response == "The word was kumquat."
    assert session.thread_id == thread_id and session.pid != pid
    assert "Remember the word kumquat." in " ".join(offline.model.requests[-1].input_texts("user"))


def test_escalation_request_is_declined_visibly(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = offline.workspace.parent / "outside.txt"
    escalate = exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="write outside")
    offline.model.add(escalate, message("It was declined."))
    shell.run_cell_magic("codex", "--sandbox read-only", "Write a file outside.")
    assert not marker.exists()
    output = capsys.readouterr().out
    assert "declined" in output and "touch" in output
    assert "rejected" in offline.model.requests[-1].function_call_outputs()[-1].lower()


def test_usage_errors(shell: Any) -> None:
    cases = {
        "--sandbox nowhere": "invalid choice",
        "--timeout -3": "--timeout",
        "--cwd /does/not/exist": "not a directory",
        "--out import": "not a Python name",
    }
    for line, expected in cases.items():
        with pytest.raises(UsageError, match=expected):
            shell.run_cell_magic("codex", line, "hello")
    with pytest.raises(UsageError, match="needs a prompt"):
        shell.run_cell_magic("codex", "", "  \n ")
    with pytest.raises(UsageError, match="unknown command"):
        shell.run_line_magic("codex", "frobnicate")


def test_line_magic_commands(shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("codex", "thread")
    assert "No thread yet" in capsys.readouterr().out
    offline.model.add(message("hi"))
    shell.run_cell_magic("codex", "", "Hello")
    capsys.readouterr()
    shell.run_line_magic("codex", "thread")
    assert capsys.readouterr().out.strip() == _session().thread_id
    shell.run_line_magic("codex", "new")
    assert _session().thread_id is None
    shell.run_line_magic("codex", "help")
    assert "%codex new" in capsys.readouterr().out


def test_effort_choices_match_the_sdk() -> None:
    from openai_codex.types import ReasoningEffort

    from codex_magic._magic import EFFORTS

    assert set(EFFORTS) == {effort.value for effort in ReasoningEffort}


def test_no_credentials_fails_fast_with_login_help(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: Any) -> None:
    codex_magic.unload_ipython_extension(shell)
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(home))
    for name in ("OPENAI_API_KEY", "CODEX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    codex_magic.load_ipython_extension(shell)
    shell.user_ns["_codex_result"] = "kept"
    started = time.monotonic()
    with pytest.raises(NotLoggedInError, match="codex login"):
        shell.run_cell_magic("codex", "", "Hello")
    assert time.monotonic() - started < 10
    assert shell.user_ns["_codex_result"] == "kept"
    assert not _session().running


def test_api_key_from_the_environment_is_used_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: Any, offline: Offline
) -> None:
    codex_magic.unload_ipython_extension(shell)
    home = tmp_path / "key-home"
    home.mkdir()
    # The built-in OpenAI provider, aimed at the scripted model.
    (home / "config.toml").write_text(f'model = "scripted-model"\nopenai_base_url = "{offline.model.url}"\n')
    monkeypatch.setenv("CODEX_HOME", str(home))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-scripted-test")
    codex_magic.load_ipython_extension(shell)
    offline.model.add(message("Authorized."))
    shell.run_cell_magic("codex", "", "Hello")
    assert shell.user_ns["_codex_result"].final_response == "Authorized."
    assert offline.model.requests[-1].headers.get("authorization") == "Bearer sk-scripted-test"
    assert not (home / "auth.json").exists()


def test_unknown_server_request_gets_a_reply_and_turn_goes_on(shell: Any, offline: Offline) -> None:
    # A tool the app-server does not offer: the model's call fails, the turn goes on.
    offline.model.add(function_call("no_such_tool", {"x": 1}), message("Carried on."))
    shell.run_cell_magic("codex", "", "Call a tool.")
    assert shell.user_ns["_codex_result"].final_response == "Carried on."


def test_write_codex_config_round_trip(tmp_path: Path, offline: Offline) -> None:
    path = write_codex_config(tmp_path / "h", offline.model.url)
    assert path.read_text().count(offline.model.url) == 1


def test_retrying_without_progress_is_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: Any, offline: Offline
) -> None:
    codex_magic.unload_ipython_extension(shell)
    home = tmp_path / "retry-home"
    write_codex_config(home, offline.model.url, stream_max_retries=5)
    monkeypatch.setenv("CODEX_HOME", str(home))
    codex_magic.load_ipython_extension(shell)
    shell.run_line_magic("config", "CodexMagic.retry_timeout = 0.3")
    broken = Reply(items=[message("never finished")], break_after=1)
    offline.model.add(*[broken] * 8)
    with pytest.raises(TurnInterruptedError, match=r"gave up after 0.3 s of retries \(Reconnecting"):
        shell.run_cell_magic("codex", "", "Hello")
    assert shell.user_ns["_codex_result"].status.value == "interrupted"


def test_effort_and_sandbox_reach_the_model_request(shell: Any, offline: Offline) -> None:
    offline.model.add(message("one"), message("two"))
    shell.run_cell_magic("codex", "--effort low --sandbox read-only", "One")
    first = offline.model.requests[-1].body
    assert (first.get("reasoning") or {}).get("effort") == "low"
    assert "read-only" in json.dumps(first["input"])  # the sandbox is described to the model
    shell.run_cell_magic("codex", "", "Two")
    second = offline.model.requests[-1].body
    # A one-off option does not stick to the thread: the next turn is back to the defaults.
    assert (second.get("reasoning") or {}).get("effort") != "low"
    assert "workspace-write" in json.dumps(second["input"])


def test_a_failure_in_the_approval_path_declines_and_says_so(
    shell: Any, offline: Offline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from codex_magic._requests import Request

    def broken(self: Request) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(Request, "summary", broken)
    marker = offline.workspace / "never.txt"
    escalate = exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="make a file")
    offline.model.add(escalate, message("Carried on."))
    shell.run_cell_magic("codex", "--sandbox read-only", "Make the file.")
    # The SDK's reader thread survived: the turn completed, declined, and says why.
    assert shell.user_ns["_codex_result"].final_response == "Carried on."
    assert not marker.exists()
    assert (
        "answering item/commandExecution/requestApproval failed (RuntimeError: boom); declined"
        in capsys.readouterr().out
    )
