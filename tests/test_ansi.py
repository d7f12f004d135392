"""Terminal colours in command output become styled spans in the HTML.

SGR sequences (``ESC[...m``) turn into ``<span style="...">`` with inline styles
(ansi2html); every other control sequence is removed first, the text stays escaped,
and the text and Markdown forms carry no escape sequence at all. In-process, but for
the last test, which runs a real command in a real kernel.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from codex_magic import _html, _render, _text
from codex_magic._render import FULL_OUTPUT_BYTES, OUTPUT_TAIL_CHARS, Rendered, esc, render_item
from codex_magic._text import HIDDEN, for_terminal, hide_secrets, plain
from codex_magic._transcript import Transcript
from codex_magic.scripted_model import exec_command, message

from .conftest import Kernel, Offline
from .test_render import ITEMS, SCRIPT, check_html, check_markdown
from .test_sanitize import assert_forms_clean

COMMAND = ITEMS["commandExecution"]
RED, BOLD, RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"
PRE = re.compile(r"<pre style=\"[^\"]*\">(.*?)</pre>", re.DOTALL)
SPAN = re.compile(r'<span style="([^"]*)">([^<]*)</span>')


def command(output: str, **changes: Any) -> dict[str, Any]:
    return {**COMMAND, "aggregatedOutput": output, **changes}


def tool(output: str) -> dict[str, Any]:
    """An MCP tool call whose result (a head, not a tail, is shown) is ``output``."""
    return {**ITEMS["mcpToolCall"], "result": {"content": [{"type": "text", "text": output}]}}


def rendered(item: dict[str, Any], *, running: bool = False) -> Rendered:
    """Render, check the forms are well-formed, inert and hold no control character."""
    result = render_item(item, running=running)
    check_html(result.html)
    check_markdown(result.markdown)
    assert_forms_clean(result)
    return result


def pres(markup: str) -> list[str]:
    return PRE.findall(markup)


def styles(markup: str) -> dict[str, str]:
    """Each span's text and its inline style."""
    return {text: style for style, text in SPAN.findall(markup)}


# -- colours ------------------------------------------------------------------------------------


def test_colours_become_spans_with_inline_styles() -> None:
    output = (
        f"{RED}red{RESET} plain \x1b[92mbright{RESET} \x1b[38;5;196mcube{RESET} "
        f"\x1b[38;2;0;128;255mtrue{RESET} {BOLD}bold\x1b[3mitalic\x1b[4munder{RESET} after\n"
        f"\x1b[42mon green{RESET}\n"
    )
    result = rendered(command(output))
    (block,) = pres(result.html)
    assert "\x1b" not in block and "class=" not in block
    assert check_html(block) == plain(output)  # the text intact, nothing added
    found = styles(block)
    assert found["red"] == "color: #aa0000"
    assert found["bright"] == "color: #00ff00"
    assert found["cube"] == "color: #ff0000"
    assert found["true"] == "color: #0080FF"
    assert found["bold"] == "font-weight: bold"
    assert found["italic"] == "font-weight: bold; font-style: italic"
    assert found["under"] == "font-weight: bold; font-style: italic; text-decoration: underline"
    assert found["on green"] == "background-color: #00aa00"
    # A reset mid-line ends the span: what follows is plain text.
    assert "</span> plain " in block and "</span> after\n" in block
    assert block.count("<span") == block.count("</span>") == 8


def test_truecolour_is_ansi2html_s() -> None:
    result = rendered(command("\x1b[38;2;255;0;0mtruecolour\x1b[0m\n"))
    assert '<span style="color: #FF0000">truecolour</span>' in result.html
    assert "ansi2html" in sys.modules


def test_text_and_markdown_carry_no_escape() -> None:
    output = f"{RED}red{RESET} and {BOLD}bold{RESET}\n"
    result = rendered(command(output))
    assert result.text == "$ ls -1  [exit 0] \u00b7 1.23 s \u00b7 /work/ws\nred and bold"
    assert "```\nred and bold\n```" in result.markdown
    assert "\x1b" not in result.text + result.markdown


def test_markup_in_coloured_output_stays_text() -> None:
    output = f"{RED}{SCRIPT} & <b>x</b>{RESET} 'q' \"d\"\n"
    result = rendered(command(output))
    assert (
        '<span style="color: #aa0000">&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt;</span>'
        in result.html
    )
    assert "&#x27;q&#x27; &quot;d&quot;" in result.html
    assert "<script" not in result.html and "<b>" not in result.html
    assert SCRIPT in result.text


def test_colour_between_backticks_does_not_end_the_markdown_fence() -> None:
    # Once the sequence is gone the three backticks are a run: the fence must be longer.
    result = rendered(command(f"``{RESET}`\n{SCRIPT}\n"))
    assert result.markdown.count("````") == 2


# -- everything but colour goes first -------------------------------------------------------------

NOT_COLOUR = {
    "cursor up": ("first line\n\x1b[2Asecond\n", "first line\nsecond\n"),
    "cursor to": ("a\x1b[10;5Hb\x1b[Kc\x1b[2Jd\n", "abcd\n"),
    "OSC 8 link": ("\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\\n", "click here\n"),
    "OSC 8 link, BEL": ("\x1b]8;;https://evil.example/\x07click here\x1b]8;;\x07\n", "click here\n"),
    "OSC title": ("\x1b]0;pwned title\x07visible\n", "visible\n"),
    "line drawing": ("\x1b(0qqq\x1b(B\n", "qqq\n"),
    "cut short": ("text \x1b[3", "text "),
    "lone ESC": ("a\x1bb\x1b", "a"),
    "C1": ("\x9b31ma\x9d0;title\x9cb\x85c\n", "abc\n"),
    "C0": ("a\x07b\x00c\x08d\x7f\n", "abcd\n"),
    "carriage return": ("50%\r100%\r\n", "50%\n100%\n"),
}


@pytest.mark.parametrize(("output", "visible"), NOT_COLOUR.values(), ids=NOT_COLOUR.keys())
def test_every_other_sequence_is_removed_from_every_form(output: str, visible: str) -> None:
    for coloured in (f"{RED}red{RESET} {output}", f"{output}{RED}red{RESET}"):
        for running in (False, True):
            result = rendered(command(coloured), running=running)
            (block,) = pres(result.html)
            assert check_html(block) == plain(coloured)
            assert visible.rstrip("\n") in check_html(block)
            assert "evil.example" not in result.html + result.text + result.markdown
            assert "<a " not in result.html and "pwned" not in result.html
            assert "\u2500" not in result.html  # ansi2html's line drawing stays off
            assert '<span style="color: #aa0000">red</span>' in block


@pytest.mark.parametrize(
    "odd",
    [
        "\x1b[m",
        "\x1b[;m",
        "\x1b[38;5;999m",
        "\x1b[38;2;99999;0;0m",
        "\x1b[38:2::1:2:3m",
        "\x1b[38;2m",
        "\x1b[" + "9" * 5000 + "m",
    ],
)
def test_odd_colour_sequences_render(odd: str) -> None:
    result = rendered(command(f"{odd}odd{RESET} end\n"))
    assert "odd end" in check_html(pres(result.html)[0])


# -- bounds ---------------------------------------------------------------------------------------


def _lines(count: int) -> str:
    return "".join(f"{RED}line {i}{RESET} <&> \x1b[1;38;5;{i % 256}mbold {i}{RESET}\n" for i in range(count))


@pytest.mark.parametrize("make", [command, tool], ids=["tail", "head"])
def test_a_long_coloured_output_is_cut_within_budget_with_whole_spans(make: Any) -> None:
    output = _lines(5000)
    result = rendered(make(output))
    preview, full = pres(result.html)
    assert len(preview.encode()) <= OUTPUT_TAIL_CHARS and len(full.encode()) <= FULL_OUTPUT_BYTES
    text = plain(output)
    for block in (preview, full):
        assert block.count("<span") == block.count("</span>") > 10
        assert "\x1b" not in block
        seen = check_html(block)
        assert text.endswith(seen) if make is command else text.startswith(seen), seen[:80]
    # Colour costs bytes: fewer lines fit than of the same text without colour.
    uncoloured = pres(render_item(make(text)).html)[1]
    assert 0 < check_html(full).count("\n") < check_html(uncoloured).count("\n")


@pytest.mark.parametrize("make", [command, tool], ids=["tail", "head"])
def test_a_cut_never_splits_a_sequence(make: Any) -> None:
    # One long line of dense colour: the cut falls anywhere, the shown text stays a whole
    # head or tail (a piece of a sequence would show as text such as "5m").
    for length in (3000, 3001, 3002, 3003, 3004, 20_000):
        output = "".join(f"\x1b[3{i % 8};4{(i + 1) % 8}m<{i}>" for i in range(length))
        text = plain(output)
        for block in pres(rendered(make(output)).html):
            seen = check_html(block)
            assert seen and (text.endswith(seen) if make is command else text.startswith(seen))
            assert block.count("<span") == block.count("</span>")


def test_the_streaming_rendering_shows_colour() -> None:
    transcript = Transcript()
    start = {**COMMAND, "status": "inProgress", "aggregatedOutput": "", "exitCode": None}
    transcript.apply("item/started", {"item": start})
    # Deltas may split a sequence; the item holds them joined.
    for delta in ("\x1b[3", "2mpassed\x1b[0", "m  ", "\x1b[1;31mfailed", "\x1b[0m\n"):
        transcript.apply("item/commandExecution/outputDelta", {"itemId": "c1", "delta": delta})
    result = rendered(transcript.items["c1"].view(), running=True)
    found = styles(pres(result.html)[0])
    assert found == {"passed": "color: #00aa00", "failed": "font-weight: bold; color: #aa0000"}
    assert "passed  failed" in result.text


def test_a_secret_split_by_colour_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("_secrets", "_coloured_secrets"):
        monkeypatch.setattr(_text, name, getattr(_text, name))  # put back after the test
    secret = "sk-abcdefghijklmnop"
    # grep --color marks the match: colour inside the secret, and an erase-line after each.
    output = f"KEY=\x1b[01;31m\x1b[Ksk-\x1b[m\x1b[Kabcdefghijklmnop and {RED}{secret}{RESET}\n"
    hide_secrets([secret])
    result = rendered(command(output))
    terminal = for_terminal(output, colour=True)
    for form in (result.html, result.text, result.markdown, terminal):
        assert "abcdefghijklmnop" not in form and form.count(HIDDEN) == 2
    assert terminal.startswith(f"KEY=\x1b[01;31m{HIDDEN}\x1b[m and ")


# -- no colour, no change ------------------------------------------------------------------------

PLAIN = {
    "short": "a.txt\nb.txt\n",
    "markup": f"{SCRIPT} & \"q\" 'x'\n",
    "long": "".join(f"line {i} <&>\n" for i in range(5000)),
    "one long line": "x<" * 100_000,
    "controls": "bell\x07 cr\r\nover\rdone \x1b]0;title\x07\n",
}


@pytest.fixture
def no_ansi2html(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ansi2html cannot be imported: output without colour must not need it."""
    monkeypatch.setitem(sys.modules, "ansi2html", None)
    yield


def _old_fit_html(text: str, part: str, budget: int, *, keep: str) -> tuple[str, str]:
    return part, esc(part)  # what the output blocks held before colour


@pytest.mark.usefixtures("no_ansi2html")
@pytest.mark.parametrize("output", PLAIN.values(), ids=PLAIN.keys())
def test_output_without_colour_renders_as_before(output: str, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [command(output), tool(output), command(output, status="inProgress", exitCode=None)]
    now = [render_item(item, running=item.get("status") == "inProgress") for item in items]
    monkeypatch.setattr(_render, "_fit_html", _old_fit_html)
    assert now == [render_item(item, running=item.get("status") == "inProgress") for item in items]


def test_a_plain_command_is_exactly_what_it_was(no_ansi2html: None) -> None:
    result = render_item(COMMAND)
    assert f'<pre style="{_html._PRE}">a.txt\nb.txt\n</pre></div>' in result.html
    assert result.text == "$ ls -1  [exit 0] \u00b7 1.23 s \u00b7 /work/ws\na.txt\nb.txt"
    assert result.markdown == "`$ ls -1` \u00b7 `exit 0` \u00b7 1.23 s \u00b7 /work/ws\n\n```\na.txt\nb.txt\n```"


def test_importing_the_package_does_not_import_ansi2html() -> None:
    code = (
        "import sys, codex_magic\n"
        "from codex_magic._render import render_item\n"
        "render_item({'type': 'commandExecution', 'command': 'ls', 'aggregatedOutput': 'a\\n' * 100})\n"
        "assert 'ansi2html' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- end to end: a real command's colours, in a real kernel -------------------------------------------


@pytest.mark.kernel
@pytest.mark.appserver
def test_a_commands_colours_reach_the_saved_html_as_spans_and_no_output_has_escape_bytes(
    kernel: Kernel, offline: Offline
) -> None:
    offline.model.add(
        exec_command(r"printf '\033[1;31mFAILED\033[0m 2 tests, \033[32mpassed\033[0m 5\n'", login=False),
        message("Two tests failed."),
    )
    kernel.run("%load_ext codex_magic")
    execution = kernel.run("%%codex\nRun the tests.")
    assert execution.error is None, execution.error
    final = execution.of("update_display_data")[-1]["content"]["data"]
    assert '<span style="font-weight: bold; color: #aa0000">FAILED</span>' in final["text/html"]
    assert "FAILED 2 tests, passed 5" in final["text/plain"] and "FAILED 2 tests, passed 5" in final["text/markdown"]
    # Not in the saved output, not in any widget state or message of the cell, not in the result.
    dumped = json.dumps([m["content"] for m in execution.messages])  # JSON writes ESC as \u001b
    assert "\\u001b" not in dumped and "\x1b" not in dumped
    # _codex_result's own display neither (its items keep the command's output as Codex gave it).
    shown = "_codex_result._repr_html_() + _codex_result._repr_markdown_() + __import__('IPython').lib.pretty.pretty(_codex_result)"
    assert kernel.value(f"chr(27) in ({shown}), 'color: #aa0000' in _codex_result._repr_html_()") == "False True"
