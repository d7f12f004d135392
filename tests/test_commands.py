"""The ``%codex`` commands against the real app-server and the scripted model: threads,
resume (also in a fresh kernel), fork, name, compact, archive, history, status, models,
login, logout, config, stop, and their one-line errors."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.lib.pretty import pretty

from codex_magic import CodexMagicError, RunResult, TurnBusyError
from codex_magic._magic import CodexMagic
from codex_magic._text import short_id
from codex_magic.scripted_model import Reply, message

from .conftest import Kernel, Offline, pid_alive, wait_until

pytestmark = pytest.mark.appserver

SECRET = "sk-test-0123456789abcdefSECRET"


@pytest.fixture(autouse=True)
def _kernel_defaults(shell: Any) -> Any:
    """%config settings made by a test stay with it (the in-process shell is shared)."""
    yield
    shell.config.pop("CodexMagic", None)


def _session() -> Any:
    from codex_magic import _session

    return _session.get_session()


def codex(shell: Any, line: str, capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    """Run ``%codex LINE``; its value and what it printed."""
    capsys.readouterr()
    value = shell.run_line_magic("codex", line)
    return value, capsys.readouterr().out


def turn(shell: Any, offline: Offline, prompt: str, answer: str, options: str = "") -> None:
    offline.model.add(message(answer))
    shell.run_cell_magic("codex", options, prompt)
    assert shell.user_ns["_codex_result"].final_response == answer


def last_user_texts(offline: Offline) -> str:
    return " | ".join(offline.model.requests[-1].input_texts("user"))


def one_line_error(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


def test_threads_lists_the_working_directorys_threads(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    turn(shell, offline, "Tell me about apples.", "Apples are red.")
    first = _session().thread_id
    turn(shell, offline, "Tell me about pears.", "Pears are green.", "--new")
    second = _session().thread_id
    _, printed = codex(shell, "threads", capsys)
    lines = printed.splitlines()
    rows = [line for line in lines if short_id(first) in line or short_id(second) in line]
    assert len(rows) == 2, printed
    assert rows[0].startswith("*") and short_id(second) in rows[0]  # newest first, this kernel's marked
    assert "Tell me about pears." in rows[0] and "Tell me about apples." in rows[1]
    assert all(" 1 " in row for row in rows)  # one turn each
    _, limited = codex(shell, "threads --limit 1", capsys)
    assert short_id(second) in limited and short_id(first) not in limited


def test_resume_continues_an_earlier_thread_by_short_id(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    turn(shell, offline, "My name is Ada.", "Nice to meet you, Ada.")
    first = _session().thread_id
    turn(shell, offline, "Something else.", "Sure.", "--new")
    _, printed = codex(shell, f"resume {short_id(first)}", capsys)
    assert f"Resumed thread {short_id(first)}: 1 turn" in printed
    assert "Last answer: Nice to meet you, Ada." in printed
    assert _session().thread_id == first
    turn(shell, offline, "What is my name?", "Ada.")
    texts = last_user_texts(offline)
    assert "My name is Ada." in texts and "Something else." not in texts
    with pytest.raises(UsageError, match="no thread 'ffffffff'") as error:
        shell.run_line_magic("codex", "resume ffffffff")
    one_line_error(error.value)


@pytest.mark.kernel
def test_resume_in_a_fresh_kernel(offline: Offline, jupyter_dirs: None) -> None:
    offline.model.add(message("Nice to meet you, Bob."), message("Your name is Bob."))
    first = Kernel(offline.env, offline.workspace)
    try:
        assert first.run("%load_ext codex_magic").error is None
        ran = first.run("%%codex\nMy name is Bob.")
        assert ran.error is None, ran.error
    finally:
        first.shutdown()  # its app-server closes with it

    second = Kernel(offline.env, offline.workspace)
    try:
        assert second.run("%load_ext codex_magic").error is None
        resumed = second.run("%codex resume")
        assert resumed.error is None, resumed.error
        assert "Resumed thread" in resumed.stdout and "1 turn" in resumed.stdout
        assert "Last answer: Nice to meet you, Bob." in resumed.stdout
        asked = second.run("%%codex\nWhat is my name?")
        assert asked.error is None, asked.error
        assert second.value("_codex_result.final_response") == "Your name is Bob."
        assert "My name is Bob." in last_user_texts(offline)  # the earlier turn went with the request
    finally:
        second.shutdown()


def test_fork_carries_the_history_into_a_new_thread(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    turn(shell, offline, "Remember the word kumquat.", "Remembered.")
    original = _session().thread_id
    _, printed = codex(shell, "fork", capsys)
    forked = _session().thread_id
    assert forked != original
    assert f"Forked thread {short_id(original)} into {short_id(forked)}" in printed
    turn(shell, offline, "Which word?", "kumquat")
    assert "Remember the word kumquat." in last_user_texts(offline)
    assert shell.user_ns["_codex_result"].thread_id == forked
    assert len(_session().read_turns(original).turns) == 1  # the original is left as it was


def test_name_names_the_thread(shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]) -> None:
    turn(shell, offline, "Hello.", "Hi.")
    _, printed = codex(shell, "name sales analysis, take 2", capsys)
    assert "Named thread" in printed and "sales analysis, take 2" in printed
    assert _session().read_turns(_session().thread_id).thread.name == "sales analysis, take 2"
    _, listed = codex(shell, "threads", capsys)
    assert "sales analysis, take 2" in listed
    with pytest.raises(UsageError, match="required: TEXT") as error:
        shell.run_line_magic("codex", "name")
    one_line_error(error.value)


def test_compact_summarises_the_thread(shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]) -> None:
    turn(shell, offline, "The secret number is 7.", "Noted.")
    offline.model.add(message("SUMMARY: the number is 7."))
    _, printed = codex(shell, "compact", capsys)
    assert "Compacted thread" in printed
    assert "CONTEXT CHECKPOINT COMPACTION" in last_user_texts(offline)  # what the model was asked
    turn(shell, offline, "Which number?", "7")
    assert "SUMMARY: the number is 7." in last_user_texts(offline)  # later turns start from the summary


def test_archive_then_the_next_cell_starts_a_new_thread(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    turn(shell, offline, "Old topic.", "Old answer.")
    archived = _session().thread_id
    _, printed = codex(shell, "archive", capsys)
    assert f"Archived thread {short_id(archived)}" in printed
    assert _session().thread_id is None
    _, listed = codex(shell, "threads", capsys)
    assert short_id(archived) not in listed
    turn(shell, offline, "New topic.", "New answer.")
    assert _session().thread_id not in (None, archived)
    assert "Old topic." not in last_user_texts(offline)


def test_history_gives_results_that_display_as_transcripts(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    turn(shell, offline, "First question.", "The first answer.")
    turn(shell, offline, "Second question.", "The second answer.")
    shell.run_cell("h = %codex history")
    history = shell.user_ns["h"]
    assert isinstance(history, list) and len(history) == 2
    assert all(isinstance(result, RunResult) for result in history)
    assert [result.final_response for result in history] == ["The first answer.", "The second answer."]
    assert history[-1].id == shell.user_ns["_codex_result"].id
    assert history[0].thread_id == _session().thread_id
    text, html = pretty(history), history._repr_html_()
    for answer in ("The first answer.", "The second answer."):
        assert answer in text and answer in html
    assert text.index("The first answer.") < text.index("The second answer.")
    last, _ = codex(shell, "history --last 1", capsys)
    assert [result.final_response for result in last] == ["The second answer."]


def test_status_shows_the_pid_and_no_secret(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    turn(shell, offline, "Hello.", "Hi.")
    capsys.readouterr()
    shell.run_line_magic("codex", "status")
    captured = capsys.readouterr()
    printed = captured.out
    assert f"pid {_session().pid}" in printed and "0.163" in printed
    assert "scripted" in printed  # the account line names the provider that needs no login
    assert "workspace-write (CodexMagic.sandbox)" in printed and "on-request (CodexMagic.approval)" in printed
    assert _session().thread_id in printed
    assert "tokens" in printed and "rate limits" in printed
    assert SECRET not in printed + captured.err


def test_models_lists_the_app_servers_models(shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]) -> None:
    _, printed = codex(shell, "models", capsys)
    assert "gpt-5.5" in printed and "low medium high xhigh" in printed
    assert sum(line.startswith("* ") for line in printed.splitlines()) == 1  # the default, marked


def test_login_with_an_api_key_from_the_environment(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_CODEX_KEY", SECRET)
    turn(shell, offline, "Before the login.", "Before.")
    before = _session().pid
    capsys.readouterr()
    shell.run_cell("%codex login --api-key-env MY_CODEX_KEY")
    captured = capsys.readouterr()
    assert "Logged in with the API key from $MY_CODEX_KEY" in captured.out
    shown = captured.out + captured.err + repr(shell.user_ns.get("_")) + repr(shell.user_ns.get("Out"))
    assert SECRET not in shown
    assert _session().running and _session().pid != before  # a new app-server holds the key in memory
    turn(shell, offline, "After the login.", "After.")  # the thread goes on
    assert "Before the login." in last_user_texts(offline)

    monkeypatch.delenv("MY_CODEX_KEY")
    with pytest.raises(UsageError, match="MY_CODEX_KEY") as error:
        shell.run_line_magic("codex", "login --api-key-env MY_CODEX_KEY")
    one_line_error(error.value)


def test_device_login_fails_in_one_line_and_leaves_the_session_working(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    turn(shell, offline, "Hello.", "Hi.")
    # Offline the device code cannot be requested; with a network the short timeout ends it.
    with pytest.raises(CodexMagicError) as error:
        shell.run_line_magic("codex", "login --timeout 2")
    one_line_error(error.value)
    turn(shell, offline, "Still there?", "Yes.")


def test_logout(shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]) -> None:
    turn(shell, offline, "Hello.", "Hi.")
    _, printed = codex(shell, "logout", capsys)
    assert "Logged out." in printed
    assert not _session().running  # the next cell checks the login again
    turn(shell, offline, "Again.", "Again.")  # the scripted provider needs no login


def test_config_lists_every_setting_and_codexs_own(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("config", 'CodexMagic.model = "special-model"')
    _, printed = codex(shell, "config", capsys)
    for name in CodexMagic.class_traits(config=True):
        assert any(line.startswith(name + " ") for line in printed.splitlines()), name
    model_line = next(line for line in printed.splitlines() if line.startswith("model "))
    assert "'special-model'" in model_line and "%config" in model_line
    sandbox_line = next(line for line in printed.splitlines() if line.startswith("sandbox "))
    assert "default" in sandbox_line
    assert "scripted-model" in printed and str(offline.codex_home) in printed  # config/read and its file


def test_stop_then_the_next_cell_resumes_the_thread(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    turn(shell, offline, "Remember the word quince.", "Remembered.")
    thread, pid = _session().thread_id, _session().pid
    _, printed = codex(shell, "stop", capsys)
    assert f"pid {pid}" in printed and not _session().running
    assert wait_until(lambda: not pid_alive(pid), 5)
    turn(shell, offline, "Which word?", "quince")
    assert _session().pid != pid and _session().thread_id == thread
    assert "Remember the word quince." in last_user_texts(offline)
    _, again = codex(shell, "stop", capsys)
    _, twice = codex(shell, "stop", capsys)
    assert "Stopped" in again and "not running" in twice


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("frobnicate", "unknown command; the commands are threads, resume"),
        ("threads --bogus", "unrecognized arguments: --bogus; usage: %codex threads [--limit N] [--all]"),
        ("threads --limit 0", "is not a count"),
        ("history --last x", "is not a count"),
        ("resume one two", "unrecognized arguments: two"),
        ("fork now", "unrecognized arguments: now"),
        ("login --api-key-env", "expected one argument"),
        ("help frobnicate", "unknown command"),
        ('name "unclosed', "no closing quotation"),
    ],
)
def test_bad_input_is_a_one_line_usage_error(shell: Any, line: str, expected: str) -> None:
    with pytest.raises(UsageError) as error:
        shell.run_line_magic("codex", line)
    assert expected in one_line_error(error.value)


def test_commands_that_need_a_thread_say_so(shell: Any, offline: Offline) -> None:
    for command in ("fork", "compact", "archive", "history", "name x"):
        with pytest.raises(UsageError, match="no thread yet") as error:
            shell.run_line_magic("codex", command)
        one_line_error(error.value)


def test_help(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, overview = codex(shell, "help", capsys)
    for command in ("threads", "resume", "fork", "status", "login", "stop", "new", "fix"):
        assert f"%codex {command}" in overview
    _, resume = codex(shell, "resume --help", capsys)
    assert resume.startswith("%codex resume [ID]") and "short id" in resume
    _, same = codex(shell, "help resume", capsys)
    assert same == resume
    capsys.readouterr()
    shell.run_cell("%codex?")
    line_help = capsys.readouterr().out
    assert "%codex resume" in line_help and "%codex new" in line_help and "%%%" not in line_help


def test_commands_that_change_the_thread_wait_for_the_running_turn(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    turn(shell, offline, "First.", "One.")
    thread = _session().thread_id
    offline.model.add(Reply(items=[message("slow and steady " * 40, deltas=True)], delay=0.02))
    done = threading.Event()

    def slow_turn() -> None:
        try:
            shell.run_cell_magic("codex", "", "Talk slowly.")
        finally:
            done.set()

    runner = threading.Thread(target=slow_turn, daemon=True)
    runner.start()
    assert wait_until(lambda: _session()._owner is not None and len(offline.model.requests) >= 2, 30)
    for command in ("resume", "fork", "new", "archive", "compact", "stop", "login --api-key-env PATH", "logout"):
        with pytest.raises(TurnBusyError, match="a %%codex turn is running") as error:
            shell.run_line_magic("codex", command)
        one_line_error(error.value)
    _, listed = codex(shell, "threads", capsys)  # reading is fine meanwhile
    assert short_id(thread) in listed
    assert done.wait(60)
    runner.join(5)
    assert _session().thread_id == thread and _session().running
    assert shell.user_ns["_codex_result"].status.value == "completed"
    time.sleep(0)  # the next turn may start at once
    turn(shell, offline, "After.", "Two.")


def test_without_credentials_status_says_so_and_login_fixes_it(
    shell: Any, offline: Offline, tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import codex_magic

    home = tmp_path / "empty-home"  # Codex's default provider (OpenAI), and no login
    home.mkdir()
    for name in ("OPENAI_API_KEY", "CODEX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    codex_magic.unload_ipython_extension(shell)
    monkeypatch.setenv("CODEX_HOME", str(home))
    codex_magic.load_ipython_extension(shell)
    _, printed = codex(shell, "status", capsys)
    assert "none: not logged in (%codex login)" in printed and "not running" in printed
    assert not _session().running  # the next cell still refuses at once, saying how to log in
    _, listed = codex(shell, "threads", capsys)
    assert "No threads" in listed

    monkeypatch.setenv("MY_CODEX_KEY", SECRET)
    _, printed = codex(shell, "login --api-key-env MY_CODEX_KEY", capsys)
    _, status = codex(shell, "status", capsys)
    assert "API key" in status and f"pid {_session().pid}" in status
    assert SECRET not in printed + status
    assert not (home / "auth.json").exists()  # the key stays in memory
    pid = _session().pid
    shell.run_line_magic("codex", "stop")
    assert wait_until(lambda: not pid_alive(pid), 5)
    _, status = codex(shell, "status", capsys)  # a new app-server logs in with the key again
    assert "API key" in status and f"pid {_session().pid}" in status
    _, printed = codex(shell, "logout", capsys)
    assert "Logged out." in printed
    _, status = codex(shell, "status", capsys)
    assert "none: not logged in" in status
