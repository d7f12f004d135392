"""The terminal view: fast tests on hand-fed transcripts, and terminal IPython in a real pty."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from codex_magic import _terminal
from codex_magic._render import render_item
from codex_magic._terminal import TextView
from codex_magic._transcript import INTERRUPTED, Transcript
from codex_magic.scripted_model import Reply, exec_command, function_call, message, write_codex_config

from .conftest import Offline, pid_alive, wait_until

DATA = Path(__file__).parent / "data"


class Feed:
    """A transcript fed by hand in the app-server's wire shape, and a TextView printing it."""

    def __init__(self, stream: io.StringIO | None = None) -> None:
        self.stream = stream or io.StringIO()
        self.transcript = Transcript()
        self.view = TextView(self.stream)
        self._seen = 0

    def __call__(self, method: str, params: dict[str, Any]) -> Feed:
        self.transcript.apply(method, params)
        return self

    def start(self, item_id: str, kind: str, **fields: Any) -> Feed:
        return self("item/started", {"item": {"id": item_id, "type": kind, **fields}})

    def delta(self, item_id: str, text: str) -> Feed:
        return self("item/agentMessage/delta", {"itemId": item_id, "delta": text})

    def output(self, item_id: str, text: str) -> Feed:
        return self("item/commandExecution/outputDelta", {"itemId": item_id, "delta": text})

    def complete(self, item_id: str, kind: str, **fields: Any) -> Feed:
        return self("item/completed", {"item": {"id": item_id, "type": kind, **fields}})

    def end(self, status: str = "completed") -> Feed:
        return self("turn/completed", {"turn": {"status": status}})

    def update(self) -> str:
        """Refresh the view; return what it printed."""
        self.view.update(self.transcript)
        return self.new()

    def finish(self) -> str:
        self.view.finish(self.transcript)
        return self.new()

    def new(self) -> str:
        text = self.stream.getvalue()
        new, self._seen = text[self._seen :], len(text)
        return new

    @property
    def text(self) -> str:
        return self.stream.getvalue()


def command(cmd: str = "make", **fields: Any) -> dict[str, Any]:
    return {"command": cmd, "cwd": "/w", "status": "inProgress", **fields}


def done(output: str, code: int = 0, cmd: str = "make") -> dict[str, Any]:
    return {
        "command": cmd,
        "aggregatedOutput": output,
        "exitCode": code,
        "durationMs": 120,
        "status": "completed",
    }


# -- messages -------------------------------------------------------------------------


def test_message_streams_and_nothing_is_printed_twice() -> None:
    feed = Feed().start("m1", "agentMessage", text="")
    assert feed.update() == ""
    assert feed.delta("m1", "Hello ").update() == "Hello "
    assert feed.update() == ""  # nothing new, nothing printed
    assert feed.delta("m1", "wor").delta("m1", "ld.").update() == "world."
    assert feed.complete("m1", "agentMessage", text="Hello world.").update() == "\n"
    end = feed.end().finish()
    assert end.startswith("[codex] ✔ completed")
    assert feed.text.count("Hello world.") == 1


def test_a_message_that_never_streamed_is_printed_when_it_completes() -> None:
    feed = Feed().complete("m1", "agentMessage", text="All at once.")
    assert feed.update() == "All at once.\n"


def test_commentary_is_labelled_and_the_answer_is_not() -> None:
    feed = Feed().start("m1", "agentMessage", text="", phase="commentary").delta("m1", "Looking first.")
    assert feed.update() == "[commentary] Looking first."
    feed.complete("m1", "agentMessage", text="Looking first.", phase="commentary")
    feed.start("m2", "agentMessage", text="", phase="final_answer").delta("m2", "The answer.")
    assert feed.update() == "\nThe answer."


def test_reasoning_file_changes_and_other_items_print_when_complete() -> None:
    feed = Feed().start("r1", "reasoning", summary=[])
    feed("item/reasoning/summaryTextDelta", {"itemId": "r1", "delta": "Check it.", "summaryIndex": 0})
    assert feed.update() == ""
    feed.complete("r1", "reasoning", summary=["Check it first."])
    assert feed.update() == render_item({"type": "reasoning", "id": "r1", "summary": ["Check it first."]}).text + "\n"
    change = {"path": "a.py", "kind": {"type": "add"}, "diff": "+x = 1"}
    feed.start("f1", "fileChange", changes=[change], status="inProgress")
    assert feed.update() == ""
    feed.complete("f1", "fileChange", changes=[change], status="completed")
    done = {"type": "fileChange", "id": "f1", "changes": [change], "status": "completed"}
    assert feed.update() == render_item(done).text + "\n"
    assert "a.py" in render_item(done).text and "+x = 1" in render_item(done).text
    feed.complete("u1", "userMessage", content=[{"type": "text", "text": "hi"}])
    feed.complete("t1", "webSearch", query="ipython magics")
    search = {"type": "webSearch", "id": "t1", "query": "ipython magics"}
    assert feed.update() == render_item(search).text + "\n"  # the user message stays hidden
    assert "ipython magics" in render_item(search).text


@pytest.mark.parametrize(
    "name, expected",
    [
        ("streamed_message.json", "Hello from the scripted model"),
        ("command.json", "alpha\n  beta\n  gamma\n  [exit 0]"),
    ],
)
def test_recorded_turns_replayed_with_an_update_after_every_notification(name: str, expected: str) -> None:
    feed = Feed()
    for method, params in json.loads((DATA / name).read_text()):
        feed(method, params).update()
    feed.finish()
    assert feed.text.count(expected) == 1
    assert "[unfinished]" not in feed.text and "completed" in feed.text.splitlines()[-1]


# -- commands -------------------------------------------------------------------------


def test_command_line_then_streamed_output_then_exit() -> None:
    feed = Feed().start("c1", "commandExecution", **command())
    assert feed.update() == "$ make\n"  # as soon as the item starts
    assert feed.output("c1", "compiling\nlink").update() == "  compiling\n  link"
    assert feed.output("c1", "ing\n").update() == "ing\n"
    feed.complete("c1", "commandExecution", **done("compiling\nlinking\n"))
    assert feed.update() == "  [exit 0] · 120 ms\n"


def test_command_line_and_badge_are_the_widgets() -> None:
    wrapped = "/bin/bash -lc 'printf \"%s\\n\" hi'"
    feed = Feed().start("c1", "commandExecution", **command(wrapped))
    assert feed.update() == '$ printf "%s\\n" hi\n'  # unwrapped from the shell, as the widget shows it
    feed.complete("c1", "commandExecution", **{**done("hi\n", cmd=wrapped), "durationMs": 4})
    assert feed.update() == "  hi\n  [exit 0] \u00b7 4 ms\n"
    widget = render_item(feed.transcript.items["c1"].view()).text.split("\n")[0]
    assert widget == '$ printf "%s\\n" hi  [exit 0] \u00b7 4 ms'
    assert feed.text.split("\n")[0] + "  " + feed.text.split("\n")[2].strip() == widget


def test_output_before_item_started_is_printed_when_the_command_completes() -> None:
    # The app-server drops deltas for an item it has not reported yet: only
    # the completed item's aggregatedOutput holds them.
    feed = Feed()
    feed.output("c1", "lost\n").start("c1", "commandExecution", **command())
    assert feed.update() == "$ make\n"
    feed.complete("c1", "commandExecution", **done("alpha\nbeta\n"))
    assert feed.update() == "  alpha\n  beta\n  [exit 0] · 120 ms\n"


def test_completed_output_that_extends_the_streamed_output_adds_only_the_rest() -> None:
    feed = Feed().start("c1", "commandExecution", **command()).output("c1", "one\n")
    feed.update()
    feed.output("c1", "two\n").complete("c1", "commandExecution", **done("one\ntwo\nthree\n"))
    assert feed.update() == "  two\n  three\n  [exit 0] · 120 ms\n"
    assert feed.text.count("one") == 1


def test_completed_output_that_does_not_start_with_the_streamed_output_is_shown_whole() -> None:
    feed = Feed().start("c1", "commandExecution", **command()).output("c1", "beta\n")
    assert feed.update() == "$ make\n  beta\n"
    feed.complete("c1", "commandExecution", **done("alpha\nbeta\n"))
    printed = feed.update()
    assert printed.splitlines() == [
        "  (the complete output; it began before the command was reported)",
        "  alpha",
        "  beta",
        "  [exit 0] · 120 ms",
    ]


def test_output_is_capped_per_command() -> None:
    feed = Feed().start("c1", "commandExecution", **command(cmd="seq 100000"))
    lines = [f"{n}\n" for n in range(1, 100_001)]
    for start in range(0, 100_000, 7_000):
        feed.output("c1", "".join(lines[start : start + 7_000])).update()
    feed.complete("c1", "commandExecution", **done("".join(lines), cmd="seq 100000"))
    feed.update()
    printed = feed.text.splitlines()
    limit = _terminal.MAX_OUTPUT_LINES
    assert printed[1 : limit + 1] == [f"  {n}" for n in range(1, limit + 1)]
    assert printed[limit + 1 :] == [
        f"  … {100_000 - limit} more lines (full output in _codex_result.items)",
        "  [exit 0] · 120 ms",
    ]


def test_a_flood_between_refreshes_waits_for_the_complete_output() -> None:
    # More output in one refresh interval than the transcript keeps while a command runs.
    from codex_magic._transcript import STREAM_TAIL_CHARS

    line = "y" * 99 + "\n"
    flood = line * (3 * STREAM_TAIL_CHARS // len(line))
    feed = Feed().start("c1", "commandExecution", **command(cmd="yes"))
    assert feed.output("c1", flood).update() == "$ yes\n"
    assert feed.transcript.items["c1"].dropped > 0
    assert feed.output("c1", line).update() == ""
    feed.complete("c1", "commandExecution", **done(flood + line, cmd="yes"))
    printed = feed.update().splitlines()
    limit = _terminal.MAX_OUTPUT_LINES
    assert printed[:limit] == ["  " + line[:-1]] * limit
    assert printed[limit:] == [
        f"  … {flood.count(chr(10)) + 1 - limit} more lines (full output in _codex_result.items)",
        "  [exit 0] · 120 ms",
    ]


def test_a_capped_command_still_running_at_the_end_says_so() -> None:
    feed = Feed().start("c1", "commandExecution", **command(cmd="yes"))
    feed.output("c1", "y\n" * (_terminal.MAX_OUTPUT_LINES + 5)).update()
    feed.transcript.abandon(INTERRUPTED, "interrupted by the user")
    end = feed.finish().splitlines()
    assert end[:2] == ["  … later output not shown", "  [unfinished] · /w"]
    assert feed.text.count("y\n") == _terminal.MAX_OUTPUT_LINES


def test_a_very_long_line_is_capped_too() -> None:
    feed = Feed().start("c1", "commandExecution", **command())
    feed.output("c1", "x" * 1_000_000).update()
    feed.complete("c1", "commandExecution", **done("x" * 1_000_000 + "\n"))
    feed.update()
    assert len(feed.text) < _terminal.MAX_OUTPUT_CHARS + 1000
    assert "… 1 more lines" in feed.text


def test_failed_and_declined_commands() -> None:
    feed = Feed().start("c1", "commandExecution", **command(cmd="false"))
    feed.complete("c1", "commandExecution", **done("", code=1, cmd="false"))
    feed.complete("c2", "commandExecution", command="touch /x", status="declined")
    assert feed.update() == "$ false\n  [exit 1] · 120 ms\n$ touch /x\n  [declined]\n"


# -- interleaving, the end, notices ---------------------------------------------------


def test_interleaved_message_and_command_stay_on_separate_labelled_lines() -> None:
    feed = Feed().start("m1", "agentMessage", text="").delta("m1", "I will build ")
    assert feed.update() == "I will build "
    feed.start("c1", "commandExecution", **command()).output("c1", "step 1\nstep")
    assert feed.update() == "\n$ make\n  step 1\n  step"
    assert feed.delta("m1", "and then ").update() == "\n(continued) and then "
    assert feed.output("c1", " 2\n").update() == "\n  ($ make, continued)\n   2\n"
    assert feed.delta("m1", "report.").update() == "(continued) report."
    feed.complete("c1", "commandExecution", **done("step 1\nstep 2\n"))
    feed.complete("m1", "agentMessage", text="I will build and then report.")
    assert feed.update() == "\n  ($ make, continued)\n  [exit 0] · 120 ms\n"
    assert feed.end().finish().startswith("[codex] ✔ completed")


def test_items_in_flight_are_closed_as_unfinished() -> None:
    feed = Feed().start("m1", "agentMessage", text="").delta("m1", "half a sent")
    feed.start("c1", "commandExecution", **command(cmd="sleep 100")).output("c1", "waiting\n")
    feed.start("m2", "agentMessage", text="")  # nothing streamed: nothing to close
    feed.update()
    feed.transcript.note("interrupt", "interrupted by the user")
    feed.transcript.abandon(INTERRUPTED, "interrupted by the user")
    end = feed.finish().splitlines()
    assert end[0] == "(continued) [unfinished]"
    assert end[1:3] == ["  ($ sleep 100, continued)", "  [unfinished] · /w"]
    assert end[3] == "! interrupt: interrupted by the user"
    assert end[4].startswith("[codex] ■ interrupted") and end[5:] == ["error: interrupted by the user"]
    assert feed.text.startswith("half a sent\n$ sleep 100\n  waiting\n")


def test_notices_print_once_as_they_arrive() -> None:
    feed = Feed().start("m1", "agentMessage", text="").delta("m1", "Trying")
    feed.update()
    feed.transcript.note("declined", "run a command outside the sandbox: touch /x")
    assert feed.update() == "\n! declined: run a command outside the sandbox: touch /x\n"
    assert feed.update() == ""
    assert feed.delta("m1", " again").update() == "(continued) again"


def test_retry_message_prints_once_each_time_it_changes() -> None:
    feed = Feed()

    def retry(text: str) -> None:
        feed("error", {"error": {"message": text}, "willRetry": True})

    retry("Reconnecting... 1/5")
    assert feed.update() == "  retrying: Reconnecting... 1/5\n"
    retry("Reconnecting... 1/5")
    assert feed.update() == ""
    retry("Reconnecting... 2/5")
    assert feed.update() == "  retrying: Reconnecting... 2/5\n"
    feed.start("m1", "agentMessage", text="")  # a retry streams again: not yet progress
    assert feed.update() == ""
    retry("Reconnecting... 1/5")
    assert feed.update() == "  retrying: Reconnecting... 1/5\n"


# -- colour ---------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _coloured_turn(stream: io.StringIO) -> str:
    feed = Feed(stream).start("c1", "commandExecution", **command()).output("c1", "out\n")
    feed.complete("c1", "commandExecution", **done("out\n", code=2))
    feed.end().finish()
    return feed.text


def test_no_ansi_unless_the_stream_is_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: None))
    assert "\x1b[" not in _coloured_turn(io.StringIO())
    coloured = _coloured_turn(Tty())
    assert "\x1b[1m$ make\x1b[0m\n" in coloured and "\x1b[31m  [exit 2] · 120 ms\x1b[0m" in coloured
    assert "  out\n" in coloured  # the command's own output is left as it is


def test_no_ansi_with_no_color_or_ipython_colours_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: None))
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in _coloured_turn(Tty())
    monkeypatch.delenv("NO_COLOR")
    shell = SimpleNamespace(colors="NoColor")
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: shell))
    assert "\x1b[" not in _coloured_turn(Tty())


# -- terminal IPython in a pty --------------------------------------------------------


def _descendants(pid: int) -> set[int]:
    """The processes below ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.mark.appserver
def test_terminal_ipython_streams_a_turn_and_survives_ctrl_c(offline: Offline, tmp_path: Path) -> None:
    import pexpect

    words = " ".join(f"word{n}" for n in range(40))
    marker = offline.workspace / "approved.txt"
    question = {
        "id": "lang",
        "header": "Language",
        "question": "Which one?",
        "options": [{"label": "Python", "description": "batteries"}, {"label": "Rust", "description": "crabs"}],
    }
    write_codex_config(
        offline.codex_home, offline.model.url, extra_toml="[features]\ndefault_mode_request_user_input = true\n"
    )
    offline.model.add(
        Reply([message(words, deltas=True)], delay=0.05),
        [exec_command("printf 'alpha\\nbeta\\n'", login=False)],
        message("Both lines are there."),
        exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="make a file"),
        message("Made it."),
        function_call("request_user_input", {"questions": [question]}),
        message("Rust then."),
        Reply([message("slow " * 300, deltas=True)], delay=0.05),
        message("Resumed after the interrupt."),
    )
    ipython_dir = tmp_path / "ipython"
    ipython_dir.mkdir()
    env = {**os.environ, **offline.env, "IPYTHONDIR": str(ipython_dir)}
    log = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "IPython", "--simple-prompt", "--no-banner", "--colors=NoColor"],
        env=env,
        cwd=str(offline.workspace),
        encoding="utf-8",
        timeout=15,
        dimensions=(40, 200),
    )
    child.logfile_read = log
    prompt = 1
    started: set[int] = set()

    def next_prompt() -> None:
        nonlocal prompt
        child.expect_exact(f"In [{prompt}]: ")
        prompt += 1

    def cell(*lines: str) -> None:
        # The simple prompt reads lines with input() and ends a cell magic at a
        # blank last line; "\n".join() of the lines read drops the newline after
        # the first empty one, so it takes two empty lines.
        for line in lines:
            child.sendline(line)
        child.sendline("")
        child.sendline("")

    try:
        next_prompt()
        child.sendline("%load_ext codex_magic")
        next_prompt()

        cell("%%codex", "Count to forty.")
        child.expect_exact("word0 word1")
        first_words = time.monotonic()
        started |= _descendants(child.pid)  # the app-server is up now
        child.expect(r"\[codex\] \S+ completed")
        assert time.monotonic() - first_words > 0.8, "the answer did not stream"
        assert f"{words}\r\n" in log.getvalue()
        next_prompt()

        cell("%%codex", "Print two lines.")
        child.expect(r"\$ [^\r\n]*printf")
        child.expect(r"\r\n  alpha\r\n  beta\r\n  \[exit 0\] · ")
        child.expect_exact("Both lines are there.")
        child.expect(r"\[codex\] \S+ completed")
        next_prompt()

        # Requests are asked at a prompt: the turn waits for the answer.
        cell("%%codex --sandbox read-only", "Make a file.")
        child.expect_exact("? Codex asks to run a command outside the sandbox")
        child.expect_exact("choose 1-")
        assert not marker.exists()
        child.sendline("1")  # Approve
        child.expect_exact("Made it.")
        child.expect(r"\[codex\] \S+ completed")
        assert marker.exists()
        next_prompt()

        cell("%%codex", "Ask me.")
        child.expect_exact("2) Rust - crabs")
        child.expect_exact("Language [a number or an answer, Enter to skip]: ")
        child.sendline("2")
        child.expect_exact("Rust then.")
        child.expect(r"\[codex\] \S+ completed")
        assert offline.model.requests[-1].function_call_outputs()[-1] == '{"answers":{"lang":{"answers":["Rust"]}}}'
        next_prompt()

        cell("%%codex", "Talk slowly.")
        child.expect_exact("slow slow slow")
        child.sendintr()  # ^C through the pty: SIGINT to IPython's process group
        child.expect(r"\[unfinished\]")
        child.expect(r"\[codex\] \S+ interrupted")
        child.expect_exact("TurnInterruptedError: turn interrupted: interrupted by the user")
        next_prompt()

        cell("%%codex", "Still there?")
        child.expect_exact("Resumed after the interrupt.")
        child.expect(r"\[codex\] \S+ completed")
        next_prompt()

        turns = log.getvalue()
        turns = turns[turns.index("In [2]: ") :]
        assert not re.search(r"\x1b\[", turns), "colour despite --colors=NoColor"
        assert turns.count("word39") == 1 and turns.count("Both lines are there.") == 1

        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
        left = [pid for pid in started if not wait_until(lambda: not pid_alive(pid), timeout=10)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert started, "no app-server process was seen"
    assert not left, f"processes outlived terminal IPython: {left}"
