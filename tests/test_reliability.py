"""Faults and settings against the real app-server and the scripted model, in-process.

Each test here proves a row of docs/reliability.md or a defect fixed in the session
layer: the sandbox and model a thread starts with, secrets kept from commands, one
turn at a time, stalled and retrying models given up on, the app-server lost, and
kernel interrupts while the first cell starts.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import codex_magic
from codex_magic import TurnBusyError, TurnFailedError, TurnInterruptedError
from codex_magic.scripted_model import Reply, exec_command, message, write_codex_config

from .conftest import Offline, pid_alive, processes, record, wait_until

pytestmark = pytest.mark.appserver


@pytest.fixture(autouse=True)
def _kernel_defaults(shell: Any) -> Any:
    """%config settings made by a test stay with it (the in-process shell is shared)."""
    yield
    shell.config.pop("CodexMagic", None)


def _session() -> Any:
    from codex_magic import _session

    return _session.get_session()


def _use_config(shell: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reload the extension so that the next cell starts an app-server on this CODEX_HOME."""
    codex_magic.unload_ipython_extension(shell)
    monkeypatch.setenv("CODEX_HOME", str(home))
    codex_magic.load_ipython_extension(shell)


def _app_servers(parent: int | None = None) -> list[int]:
    """Live codex app-server processes started by ``parent`` (default: this process)."""
    parent = os.getpid() if parent is None else parent
    return [p.pid for p in processes() if p.ppid == parent and b"app-server" in p.argv]


def test_full_access_works_on_the_cell_that_starts_the_thread(shell: Any, offline: Offline) -> None:
    offline.model.add(message("first"), message("second"))
    shell.run_cell_magic("codex", "--sandbox full-access", "One")
    assert shell.user_ns["_codex_result"].final_response == "first"
    shell.run_line_magic("config", 'CodexMagic.sandbox = "full-access"')
    shell.run_cell_magic("codex", "--new", "Two")
    assert shell.user_ns["_codex_result"].final_response == "second"
    assert "danger-full-access" in str(offline.model.requests[-1].body["input"])


def test_a_model_given_on_the_first_cell_is_for_that_turn_only(shell: Any, offline: Offline) -> None:
    offline.model.add(message("one"), message("two"))
    shell.run_cell_magic("codex", "--model other-model", "One")
    assert offline.model.requests[-1].body["model"] == "other-model"
    shell.run_cell_magic("codex", "", "Two")
    assert offline.model.requests[-1].body["model"] == "scripted-model"  # the config's model


def test_an_effort_the_model_does_not_offer_is_said(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    offline.model.add(message("one"), message("two"))
    shell.run_cell_magic("codex", "--effort ultra", "One")
    printed = capsys.readouterr().out
    assert "effort 'ultra' is not a level scripted-model offers" in printed
    shell.run_cell_magic("codex", "--effort ultra --model gpt-5.5", "Two")
    printed = capsys.readouterr().out
    assert "gpt-5.5 does not offer effort 'ultra': it offers low, medium, high, xhigh" in printed


def test_secrets_in_the_environment_do_not_reach_commands(
    shell: Any, offline: Offline, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {"OPENAI_API_KEY": "sk-abc123", "gh_token": "t0k", "DB_PASSWORD": "pw", "MY_SECRET": "s3"}
    for name, value in {**secrets, "PLAIN_SETTING": "visible"}.items():
        monkeypatch.setenv(name, value)
    offline.model.add(exec_command("printenv"), lambda request: message(request.function_call_outputs()[-1]))
    shell.run_cell_magic("codex", "", "Print the environment.")
    printed = shell.user_ns["_codex_result"].final_response
    assert "PLAIN_SETTING=visible" in printed
    for name, value in secrets.items():
        assert name not in printed and value not in printed


def test_a_shell_environment_policy_of_the_users_own_is_kept(
    shell: Any, offline: Offline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "policy-home"
    write_codex_config(home, offline.model.url, extra_toml='[shell_environment_policy]\ninherit = "all"')
    _use_config(shell, home, monkeypatch)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "wanted-here")
    offline.model.add(
        exec_command("printenv MY_SERVICE_TOKEN"), lambda request: message(request.function_call_outputs()[-1])
    )
    shell.run_cell_magic("codex", "", "Print the token.")
    # The command had it (the model received it); the notebook shows it hidden.
    assert "wanted-here" in offline.model.requests[-1].function_call_outputs()[-1]
    assert "wanted-here" not in repr(shell.user_ns["_codex_result"].items)


def test_a_second_turn_while_one_runs_fails_at_once(shell: Any, offline: Offline) -> None:
    offline.model.add(Reply(items=[message("slow and steady " * 20, deltas=True)], delay=0.02), message("after"))
    errors: list[BaseException] = []

    def first() -> None:
        try:
            shell.run_cell_magic("codex", "--out first", "The first turn.")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=first)
    worker.start()
    assert wait_until(lambda: len(offline.model.requests) == 1, timeout=30)
    started = time.monotonic()
    with pytest.raises(TurnBusyError, match="already running") as caught:
        shell.run_cell_magic("codex", "--out second", "The second turn.")
    refused = time.monotonic() - started
    assert refused < 1.0 and "\n" not in str(caught.value)
    record("second turn refused", seconds=round(refused, 3))
    worker.join(30)
    assert not errors
    result = shell.user_ns["first"]
    assert result.final_response == "slow and steady " * 20
    said = [item.root.content[0].root.text for item in result.items if item.root.type == "userMessage"]
    assert said == ["The first turn."]  # the second prompt never joined the first turn
    assert "second" not in shell.user_ns
    # The thread is free again.
    shell.run_cell_magic("codex", "", "And now?")
    assert shell.user_ns["_codex_result"].final_response == "after"


def test_a_model_that_stalls_is_given_up_on(
    shell: Any, offline: Offline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As Codex's defaults: the app-server itself would wait 300 s before retrying.
    home = tmp_path / "stall-home"
    write_codex_config(home, offline.model.url, stream_idle_timeout_ms=300_000)
    _use_config(shell, home, monkeypatch)
    shell.run_line_magic("config", "CodexMagic.stall_timeout = 1.5")
    offline.model.add(Reply(items=[message("I am about to", deltas=True)], stall_after=4), message("back"))
    started = time.monotonic()
    with pytest.raises(TurnInterruptedError, match=r"the model sent nothing for 1.5 s") as caught:
        shell.run_cell_magic("codex", "", "Hello")
    seconds = time.monotonic() - started
    assert seconds < 6
    record("stalled model, stall_timeout 1.5 s", cell_seconds=round(seconds, 3))
    assert "\n" not in str(caught.value)
    assert shell.user_ns["_codex_result"].status.value == "interrupted"
    shell.run_cell_magic("codex", "", "Still there?")
    assert shell.user_ns["_codex_result"].final_response == "back"


def test_a_long_command_is_not_a_stall(shell: Any, offline: Offline) -> None:
    shell.run_line_magic("config", "CodexMagic.stall_timeout = 1")
    offline.model.add(exec_command("sleep 2.5; echo slept"), message("done"))
    cpu = time.process_time()
    shell.run_cell_magic("codex", "", "Sleep a little.")
    assert shell.user_ns["_codex_result"].final_response == "done"
    # The cell waits, it does not spin, while the command runs past the stall deadline.
    assert time.process_time() - cpu < 1.0


def test_retries_that_resend_partial_output_are_not_progress(
    shell: Any, offline: Offline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "retry-home"
    write_codex_config(home, offline.model.url, stream_max_retries=5, stream_idle_timeout_ms=700)
    _use_config(shell, home, monkeypatch)
    shell.run_line_magic("config", "CodexMagic.retry_timeout = 2")
    shell.run_line_magic("config", "CodexMagic.stall_timeout = 0")
    # Every attempt streams the start of the answer again, then stalls.
    offline.model.add(*[Reply(items=[message("The answer is", deltas=True)], stall_after=5)] * 6)
    started = time.monotonic()
    with pytest.raises(TurnInterruptedError, match=r"gave up after 2 s of retries"):
        shell.run_cell_magic("codex", "", "Hello")
    record("retries resending partial output, retry_timeout 2 s", cell_seconds=round(time.monotonic() - started, 3))
    result = shell.user_ns["_codex_result"]
    messages = [item.root for item in result.items if item.root.type == "agentMessage"]
    assert len(offline.model.requests) >= 3  # it did retry, more than once
    assert len(messages) == 1  # the partial answer once, not once per attempt


def test_losing_the_app_server_mid_turn_is_one_line(shell: Any, offline: Offline) -> None:
    offline.model.add(
        message("warm up"), Reply(items=[message("slow " * 200, deltas=True)], delay=0.02), message("again")
    )
    shell.run_cell_magic("codex", "", "Warm up.")
    pid = _session().pid

    killed: list[float] = []

    def kill_when_streaming() -> None:
        wait_until(lambda: len(offline.model.requests) == 2, timeout=30)
        time.sleep(0.3)
        killed.append(time.monotonic())
        os.kill(pid, signal.SIGKILL)

    threading.Thread(target=kill_when_streaming, daemon=True).start()
    with pytest.raises(TurnFailedError) as caught:
        shell.run_cell_magic("codex", "", "Talk.")
    record("app-server lost mid-turn", seconds_after_kill=round(time.monotonic() - killed[0], 3))
    text = str(caught.value)
    assert "lost the codex app-server (killed by signal 9)" in text
    assert "\n" not in text and "\x1b" not in text and len(text) < 250
    assert "\x1b" not in caught.value.result.app_server_log  # the log tail, kept on the result
    shell.run_cell_magic("codex", "", "Again.")
    assert shell.user_ns["_codex_result"].final_response == "again"


def test_an_interrupt_while_the_app_server_starts_sends_nothing(
    shell: Any, offline: Offline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codex_magic._session import CodexSession

    offline.model.add(message("never asked"), message("fine"))
    boot = CodexSession._boot

    def interrupted_boot(self: CodexSession, *config: str) -> Any:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the start
        return boot(self, *config)

    monkeypatch.setattr(CodexSession, "_boot", interrupted_boot)
    with pytest.raises(TurnInterruptedError, match="interrupted before the prompt was sent") as caught:
        shell.run_cell_magic("codex", "", "Hello")
    assert "\n" not in str(caught.value)
    assert offline.model.requests == []
    assert shell.user_ns["_codex_result"].status.value == "interrupted"
    assert _app_servers() == [_session().pid]  # exactly one app-server

    monkeypatch.setattr(CodexSession, "_boot", boot)
    shell.run_cell_magic("codex", "", "Hello again")
    assert shell.user_ns["_codex_result"].final_response == "never asked"
    assert _app_servers() == [_session().pid]


def test_a_command_the_sandbox_stops_at_once_is_in_the_result(shell: Any, offline: Offline, tmp_path: Path) -> None:
    # app-server 0.163 often sends no item events for it (see codex_magic/_reconcile.py).
    outside = tmp_path / "outside.txt"
    for attempt in range(3):
        offline.model.add(exec_command(f"echo x > {outside}"), message(f"tried {attempt}"))
        shell.run_cell_magic("codex", "--sandbox read-only --approval never", "Write outside.")
        result = shell.user_ns["_codex_result"]
        commands = [item.root for item in result.items if item.root.type == "commandExecution"]
        assert len(commands) == 1, f"attempt {attempt}: {[item.root.type for item in result.items]}"
        assert str(outside) in commands[0].command
        assert result.final_response == f"tried {attempt}"
    assert not outside.exists()


@pytest.mark.kernel
@pytest.mark.parametrize("after", [0.05, 0.2, 0.35, 0.5])
def test_an_interrupt_at_any_moment_of_the_first_cell_ends_it_in_one_line(
    kernel: Any, offline: Offline, after: float
) -> None:
    # The first cell imports the SDK and starts the app-server (about 0.6 s here), then
    # the turn is over in a few milliseconds. An interrupt during any of it ends the
    # cell in one line; before, it was lost and the cell succeeded.
    offline.model.add(message("quick"), message("fine"))
    execution = kernel.run("%%codex\nHello", interrupt_after=after)
    if execution.error is None:
        assert execution.seconds <= after + 0.05, "the interrupt came during the cell and was lost"
        return
    assert execution.error["ename"] == "TurnInterruptedError", execution.error
    record(
        f"interrupt {after} s into the first cell",
        cell_seconds=round(execution.seconds, 3),
        error=execution.error["evalue"],
    )
    assert len(execution.error["traceback"]) == 1
    assert kernel.value("_codex_result.status.value") == "interrupted"
    if "before the prompt was sent" in execution.error["evalue"]:
        assert offline.model.requests == []
    kernel_pid = kernel.manager.provisioner.process.pid
    # Never two: an interrupt that also stopped the app-server's launcher leaves none until
    # the next cell.
    assert len(_app_servers(kernel_pid)) <= 1
    again = kernel.run("%%codex\nStill there?")
    assert again.error is None, again.error
    assert len(_app_servers(kernel_pid)) == 1


def test_a_command_the_sandbox_stops_is_in_the_result_after_a_restart(
    shell: Any, offline: Offline, tmp_path: Path
) -> None:
    # A resumed thread gets no raw items (thread/resume takes no experimentalRawEvents):
    # the command is read back from the rollout the turn wrote.
    offline.model.add(message("warm"))
    shell.run_cell_magic("codex", "", "Warm up.")
    pid = _session().pid
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(pid))
    outside = tmp_path / "outside.txt"
    for attempt in range(4):
        offline.model.add(exec_command(f"echo x > {outside}"), message(f"tried {attempt}"))
        shell.run_cell_magic("codex", "--sandbox read-only --approval never", "Write outside.")
        result = shell.user_ns["_codex_result"]
        commands = [item.root for item in result.items if item.root.type == "commandExecution"]
        assert len(commands) == 1, f"attempt {attempt}: {[item.root.type for item in result.items]}"


def test_an_interrupt_that_stops_the_app_servers_launcher_is_an_interrupt(
    shell: Any, offline: Offline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Jupyter's interrupt goes to the kernel's whole process group; the app-server's launcher
    # leaves it (setsid) only once it runs, so an interrupt at that moment stops it too.
    from codex_magic._session import _Client

    offline.model.add(message("fine"))
    start = _Client.start

    def interrupted_start(self: Any) -> None:
        start(self)
        os.kill(self._proc.pid, signal.SIGINT)  # the launcher, before it left the group
        os.kill(os.getpid(), signal.SIGINT)  # and the kernel

    monkeypatch.setattr(_Client, "start", interrupted_start)
    with pytest.raises(TurnInterruptedError, match="interrupted before the prompt was sent") as caught:
        shell.run_cell_magic("codex", "", "Hello")
    assert "\n" not in str(caught.value) and offline.model.requests == []
    monkeypatch.setattr(_Client, "start", start)
    shell.run_cell_magic("codex", "", "Hello again")
    assert shell.user_ns["_codex_result"].final_response == "fine"
    assert _app_servers() == [_session().pid]


def test_app_servers_starting_at_once_on_a_new_codex_home_all_start(
    offline: Offline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kernels opened together (Run All in several notebooks) on a CODEX_HOME with no state
    # database yet: their app-servers race to create it, and without a second try all but
    # one failed their first cell.
    from codex_magic._session import CodexSession

    for name, value in offline.env.items():
        monkeypatch.setenv(name, value)
    sessions = [CodexSession() for _ in range(6)]
    errors: list[BaseException] = []

    def start(session: CodexSession) -> None:
        try:
            session.start()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(session,)) for session in sessions]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert all(session.running for session in sessions)
    finally:
        for session in sessions:
            session.close()
