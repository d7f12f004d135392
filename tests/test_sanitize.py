"""Pure tier: terminal control sequences never reach an output.

Whatever Codex, the model or a command prints (window titles, clipboard writes,
hyperlinks, screen clears, raw control characters) is removed from HTML, Markdown
and text, and from what the terminal view writes, where only SGR colour passes.
"""

from __future__ import annotations

import io
import re
import time
from typing import Any

import pytest

from codex_magic._render import (
    Rendered,
    TurnInfo,
    render_diff,
    render_header,
    render_item,
    render_notice,
    render_plan,
    render_request,
    render_turn,
)
from codex_magic._requests import Request
from codex_magic._terminal import TextView
from codex_magic._text import for_terminal, plain
from codex_magic._transcript import Transcript

from .test_render import ITEMS
from .test_render_kinds import FIELDS, MODES, with_path
from .test_requests import COMMAND, FORM, PERMISSIONS, QUESTION, TOOL

TITLE = "\x1b]0;pwned title\x07"  # OSC 0: the window title
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x1b\\"  # OSC 52: write the clipboard
LINK = "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\"  # OSC 8: a hyperlink
CLEAR = "\x1b[2J\x1b[H\x1bc"  # clear the screen, home the cursor, reset the terminal
DCS = "\x1bP1$qm\x1b\\"  # a device control string (a terminal query)
C1 = "\x9b31m\x9d0;c1 title\x9c\x85"  # 8-bit CSI and OSC, and NEL
C0 = "\x07\x08\x00\x7f\x1b"  # bell, backspace, NUL, DEL, a lone ESC
COLOUR = "\x1b[1;31mred\x1b[0m"
HOSTILE = f"{TITLE}{CLIPBOARD}{LINK} {CLEAR}{DCS}{C1}{C0}{COLOUR} text\r\nnext line\rover"
VISIBLE = ("click here", "red text", "next line", "over")

# Control characters but newline and tab; DEL; C1.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SGR = re.compile(r"\x1b\[[0-9;]*m")


def assert_clean(value: str) -> None:
    found = CONTROL.search(value)
    assert found is None, (
        f"{found.group()!r} at {found.start()} in {value[max(0, found.start() - 40) : found.start() + 40]!r}"
    )


def assert_forms_clean(rendered: Rendered) -> None:
    for form in (rendered.html, rendered.text, rendered.markdown):
        assert_clean(form)


# -- the filters ------------------------------------------------------------------------------


def test_plain_removes_every_control_sequence_and_keeps_the_text() -> None:
    assert plain(HOSTILE) == "click here red text\nnext line\nover"
    assert plain("a\tb\nc") == "a\tb\nc"  # tab and newline stay
    assert plain("crlf\r\nlines\r\n") == "crlf\nlines\n"
    assert plain("") == "" and plain("\u00e9\u4e2d\U0001f600") == "\u00e9\u4e2d\U0001f600"  # not C1


def test_an_unterminated_string_sequence_hides_no_more_than_its_line() -> None:
    assert plain("\x1b]0;title never ends\nthe rest is shown\n") == "\nthe rest is shown\n"
    assert plain("cut short \x1b[3") == "cut short "


def test_the_terminal_filter_keeps_only_colour() -> None:
    kept = for_terminal(HOSTILE, colour=True)
    assert SGR.sub("", kept) == plain(HOSTILE)
    assert SGR.findall(kept) == ["\x1b[1;31m", "\x1b[0m"]
    assert "\x1b" not in SGR.sub("", kept) and "\x07" not in kept and "\x9b" not in kept
    assert for_terminal(HOSTILE, colour=False) == plain(HOSTILE)  # no colour: nothing passes


def test_the_filters_are_one_fast_pass_over_long_output() -> None:
    output = "".join(f"line {i} \x1b[32mok\x1b[0m\r\n" for i in range(100_000))
    started = time.perf_counter()
    cleaned = plain(output)
    coloured = for_terminal(output, colour=True)
    item = {**ITEMS["commandExecution"], "aggregatedOutput": output}
    rendered = render_item(item)
    running = render_item(item, running=True)
    elapsed = time.perf_counter() - started
    assert cleaned.count("\n") == 100_000 and "\x1b" not in cleaned and "\r" not in coloured
    assert_forms_clean(rendered)
    assert_forms_clean(running)
    assert elapsed < 3.0, f"{elapsed:.2f} s"


# -- every rendered form -------------------------------------------------------------------------


@pytest.mark.parametrize(("base", "path", "visible"), [f[1:] for f in FIELDS], ids=[f[0] for f in FIELDS])
def test_every_text_field_of_every_kind_is_clean(base: dict[str, Any], path: tuple[Any, ...], visible: bool) -> None:
    item = with_path(base, path, HOSTILE)
    for mode in MODES:
        rendered = render_item(item, running=mode == "running", unfinished=mode == "unfinished")
        assert_forms_clean(rendered)
    if visible:
        assert "click here" in render_item(item).html


def test_header_plan_diff_notices_and_turn_are_clean() -> None:
    info = TurnInfo(thread_id=HOSTILE, model=HOSTILE, sandbox=HOSTILE, cwd=HOSTILE, approval=HOSTILE)
    header = render_header(status="running", elapsed=1.0, info=info, error=HOSTILE, retry=HOSTILE)
    plan = {"explanation": HOSTILE, "plan": [{"step": HOSTILE, "status": "inProgress"}]}
    diff = f"diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-{HOSTILE}\n+{HOSTILE}\n"
    items = [with_path(base, path, HOSTILE) for _, base, path, _ in FIELDS]
    turn = render_turn(
        items=items, status="failed", elapsed=1.0, info=info, error=HOSTILE,
        notices=[(HOSTILE, HOSTILE)], plan=plan, diff=diff,
    )  # fmt: skip
    for rendered in (header, render_plan(plan), render_diff(diff), render_notice(HOSTILE, HOSTILE), turn):
        assert_forms_clean(rendered)
    assert all(word in turn.text for word in VISIBLE)


def _hostile(value: object) -> object:
    if isinstance(value, str):
        return HOSTILE
    if isinstance(value, dict):
        return {k: _hostile(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hostile(v) for v in value]
    return value


@pytest.mark.parametrize("request_", [COMMAND, PERMISSIONS, QUESTION, FORM, TOOL], ids=lambda r: r.kind)
def test_requests_are_clean(request_: Request) -> None:
    hostile = Request(request_.method, _hostile(request_.params))  # type: ignore[arg-type]
    if request_.is_tool_approval:
        hostile.params["_meta"]["codex_approval_kind"] = "mcp_tool_call"
    assert_forms_clean(render_request(hostile))
    # The summary goes into the transcript as a notice.
    assert_forms_clean(render_notice("declined", hostile.summary()))
    for choice in hostile.choices():
        assert_clean(plain(choice.label))


# -- the terminal ---------------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _hostile_turn(view: TextView) -> None:
    transcript = Transcript()
    transcript.apply("item/started", {"item": {"id": "m", "type": "agentMessage", "text": ""}})
    transcript.apply("item/agentMessage/delta", {"itemId": "m", "delta": HOSTILE})
    view.update(transcript)
    command = {"id": "c", "type": "commandExecution", "command": f"/bin/bash -lc 'echo {TITLE}'", "cwd": "/w"}
    transcript.apply("item/started", {"item": {**command, "status": "inProgress"}})
    transcript.apply("item/commandExecution/outputDelta", {"itemId": "c", "delta": HOSTILE + "\n"})
    transcript.apply("error", {"error": {"message": HOSTILE}, "willRetry": True})
    view.update(transcript)
    transcript.apply(
        "item/completed",
        {"item": {**command, "status": "completed", "exitCode": 0, "aggregatedOutput": HOSTILE + "\n" + HOSTILE}},
    )
    transcript.apply("item/completed", {"item": {"id": "r", "type": "reasoning", "summary": [HOSTILE], "content": []}})
    transcript.apply("item/completed", {"item": {"id": "m", "type": "agentMessage", "text": HOSTILE + HOSTILE}})
    transcript.note(HOSTILE, HOSTILE)
    transcript.apply("turn/completed", {"turn": {"status": "failed", "error": {"message": HOSTILE}}})
    view.finish(transcript)


@pytest.mark.parametrize("colour", [True, False])
def test_the_terminal_gets_no_control_sequence_but_colour(monkeypatch: pytest.MonkeyPatch, colour: bool) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    # Not the in-process test shell of other tests, whose colours are off.
    monkeypatch.setattr("IPython.get_ipython", lambda: None)
    stream = Tty() if colour else io.StringIO()
    view = TextView(stream)
    assert view.colour is colour
    _hostile_turn(view)
    written = stream.getvalue()
    assert_clean(SGR.sub("", written))
    assert ("\x1b[" in written) is colour  # the view's own colours, and the model's
    for word in ("click here", "next line", "over"):
        assert word in written


def test_a_request_asked_at_the_terminal_is_clean() -> None:
    stream = Tty()
    view = TextView(stream)
    view.prompt_in = io.StringIO("1\n1\n")
    answered: list[Any] = []
    question = _hostile(QUESTION.params)
    assert isinstance(question, dict)
    question["questions"][1]["isSecret"] = False  # a secret one is read with getpass
    for request in (Request(QUESTION.method, question), Request(COMMAND.method, _hostile(COMMAND.params))):  # type: ignore[arg-type]
        view.ask(type("Pending", (), {"request": request, "answer": lambda self, reply, by: answered.append(reply)})())
    assert len(answered) == 2
    assert_clean(SGR.sub("", stream.getvalue()))
