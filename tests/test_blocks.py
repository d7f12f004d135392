"""Pure tier: each item is rendered once, into blocks; HTML, Markdown and text are writers of them.

The title and badge of every kind read the same in the three forms, and a command's line
and badge read the same in the terminal, the widget, the saved output and ``_codex_result``.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from IPython.lib.pretty import pretty
from markdown_it import MarkdownIt

from codex_magic._blocks import (
    Badge,
    Block,
    Card,
    Code,
    Fold,
    Link,
    Markdown,
    Note,
    Output,
    Span,
    Title,
    title_head,
    title_tail,
    title_text,
    to_text,
)
from codex_magic._html import to_html
from codex_magic._markdown import to_markdown
from codex_magic._output import final_render, item_view
from codex_magic._render import command_title, item_blocks, render_item
from codex_magic._result import build_result
from codex_magic._terminal import TextView
from codex_magic._transcript import Transcript

from .test_render import ITEMS, check_html, check_markdown
from .test_render_kinds import EXTRA, EXTRA_IDS, MODES

DATA = Path(__file__).resolve().parent / "data"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


def markdown_text(source: str) -> str:
    """What a Markdown renderer shows of ``source``, as text."""
    return check_html(MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(source))


def words(text: str) -> str:
    return " ".join(text.split())


def pieces(title: Title) -> list[str]:
    """The words of a title every form must show: label, subject, badge, facts."""
    subject = "".join(p.label or p.url if isinstance(p, Link) else p.text for p in title.subject)
    badge = title.badge.label if title.badge else ""
    return [words(p) for p in (title.label, subject, badge, *title.facts) if p.strip()]


# -- the three writers agree on every kind ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("item", [*ITEMS.values(), *EXTRA], ids=[*ITEMS, *EXTRA_IDS])
def test_every_kind_has_one_title_in_all_three_forms(item: dict[str, Any], mode: str) -> None:
    blocks = item_blocks(item, running=mode == "running", unfinished=mode == "unfinished")
    rendered = render_item(item, running=mode == "running", unfinished=mode == "unfinished")
    if item["type"] == "userMessage":
        assert blocks == () and rendered.text == ""  # the prompt is the cell itself
        return
    title = find_title(blocks)
    if item["type"] == "contextCompaction":
        assert title is None and "context" in rendered.text  # a rule, not a card
        return
    if title is None:  # a finished answer has no title
        assert item["type"] == "agentMessage" and mode != "unfinished"
        return
    assert title_text(title) in rendered.text.split("\n")  # a line of its own
    shown_html = words(check_html(rendered.html))
    shown_md = words(markdown_text(check_markdown(rendered.markdown) and rendered.markdown))
    for piece in pieces(title):
        assert piece in shown_html, (piece, shown_html)
        assert piece in shown_md, (piece, shown_md)
        assert piece in words(rendered.text)


@pytest.mark.parametrize("item", [*ITEMS.values(), *EXTRA], ids=[*ITEMS, *EXTRA_IDS])
def test_render_item_is_the_three_writers_of_the_items_blocks(item: dict[str, Any]) -> None:
    blocks = item_blocks(item)
    rendered = render_item(item)
    if blocks:
        written = (to_html(blocks), to_text(blocks), to_markdown(blocks))
        assert (rendered.html, rendered.text, rendered.markdown) == written


def test_the_title_writers() -> None:
    title = Title(label="tool", subject=(Span("f(x)", "code"),), badge=Badge("exit 0", "ok"), facts=("1 s", "/w"))
    assert title_head(title) == "[tool] f(x)" and title_tail(title) == "[exit 0] \u00b7 1 s \u00b7 /w"
    assert title_text(title) == "[tool] f(x)  [exit 0] \u00b7 1 s \u00b7 /w"
    assert to_markdown((title,)) == "**tool** `f(x)` \u00b7 `exit 0` \u00b7 1 s \u00b7 /w"
    html = to_html((title,))
    assert words(check_html(html)) == "tool f(x) exit 0 \u00b7 1 s \u00b7 /w"
    assert 'background:#1a7f37">exit 0</span>' in html
    assert title_text(Title(label="web", facts=("3 results",))) == "[web] \u00b7 3 results"
    assert title_text(Title(badge=Badge("unfinished"))) == "[unfinished]"


def test_writers_escape_every_block() -> None:
    evil = "<script>alert(1)</script> *x* `y`"
    blocks = (
        Card("tool", (
            Title(label=evil, subject=(Span(evil, "code"), Link("javascript:alert(1)", evil)),
                  badge=Badge(evil), facts=(evil,)),
            Markdown(evil), Note(evil, "error", kind=evil), Code(evil, "python"), Code(evil, inline=True),
            Output(evil, evil, "head", evil, evil, evil),
            Fold(Title(label=evil), (Note(evil),), preview=evil),
        )),
    )  # fmt: skip
    html = to_html(blocks)
    assert "<script" not in html and "javascript:" not in html
    assert check_html(html).count("<script>alert(1)</script>") >= 10
    check_markdown(to_markdown(blocks))
    assert "<script>" in to_text(blocks)


# -- a command reads the same everywhere ----------------------------------------------------------


def _command_turn(tmp_path: Path) -> tuple[Transcript, str]:
    """A turn with a command (and an image it looked at), and what the terminal printed of it."""
    image = tmp_path / "plot.png"
    image.write_bytes(base64.b64decode(PNG))
    stream = io.StringIO()
    view = TextView(stream)
    transcript = Transcript(thread_id="01a23228-870b-7231-9503-a2b563aae282", turn_id="t")
    transcript.settings.update({"model": "gpt-5-codex", "sandbox": "read-only"})
    command = {**ITEMS["commandExecution"], "command": "/bin/bash -lc 'make test'", "cwd": "/work/project"}
    transcript.apply("turn/started", {"turn": {"id": "t", "status": "inProgress"}})
    started = {**command, "status": "inProgress", "aggregatedOutput": "", "exitCode": None, "durationMs": None}
    transcript.apply("item/started", {"item": started})
    view.update(transcript)
    transcript.apply("item/commandExecution/outputDelta", {"itemId": "c1", "delta": "ok\n"})
    view.update(transcript)
    done = {**command, "status": "completed", "aggregatedOutput": "ok\n", "exitCode": 2, "durationMs": 1500}
    transcript.apply("item/completed", {"item": done})
    transcript.apply("item/completed", {"item": {"id": "i1", "type": "imageView", "path": str(image)}})
    transcript.apply("item/completed", {"item": {**ITEMS["agentMessage"], "text": "Two failed."}})
    transcript.apply("turn/completed", {"turn": {"id": "t", "status": "completed"}})
    view.update(transcript)
    view.finish(transcript)
    return transcript, stream.getvalue()


def test_a_command_reads_the_same_in_the_terminal_widget_saved_output_and_result(tmp_path: Path) -> None:
    transcript, terminal = _command_turn(tmp_path)
    title = command_title(transcript.items["c1"].view(), "done")
    head, tail = title_head(title), title_tail(title)
    assert head == "$ make test" and tail == "[exit 2] \u00b7 1.50 s \u00b7 /work/project"
    facts = " \u00b7 ".join(title.facts)
    # The terminal: the line as the command starts, the badge and facts as it ends.
    lines = terminal.splitlines()
    assert lines[:3] == [head, "  ok", f"  {tail}"]
    # The widget's child for the item, the saved output, and _codex_result's display.
    widget = item_view(transcript.items["c1"], transcript.done, {})
    saved = final_render(transcript)
    result = build_result(transcript)
    for html in (widget.html, saved.html, result._repr_html_()):
        assert f"{head} exit 2 \u00b7 {facts}" in words(check_html(html))
    for md in (widget.markdown, saved.markdown, result._repr_markdown_()):
        assert f"{head} \u00b7 exit 2 \u00b7 {facts}" in words(markdown_text(md))
    for text in (widget.text, saved.text, pretty(result)):
        assert f"{head}  {tail}" in text.splitlines()


def test_the_result_displays_what_the_cell_saved(tmp_path: Path) -> None:
    transcript, _ = _command_turn(tmp_path)
    saved = final_render(transcript)
    result = build_result(transcript)
    # The same function of the same facts: the image the command looked at included.
    assert result._repr_html_() == saved.html and "<img" in saved.html
    assert result._repr_markdown_() == saved.markdown
    assert pretty(result) == saved.text


@pytest.mark.parametrize("name", ["command", "markup", "interrupted"])
def test_the_result_of_a_recorded_turn_displays_what_the_cell_saved(name: str) -> None:
    transcript = Transcript(thread_id="t")
    for method, params in json.loads((DATA / f"{name}.json").read_text(encoding="utf-8")):
        transcript.apply(method, params)
    transcript.abandon("interrupted")  # a no-op for a turn that ended
    saved = final_render(transcript)
    result = build_result(transcript)
    assert (result._repr_html_(), result._repr_markdown_(), pretty(result)) == (saved.html, saved.markdown, saved.text)
    assert re.match(r"\[codex\] \S+ (completed|interrupted)", saved.text)


def find_title(blocks: Sequence[Block]) -> Title | None:
    """The first title in ``blocks``, looking into cards and folds."""
    for block in blocks:
        if isinstance(block, Title):
            return block
        inner = block.blocks if isinstance(block, Card) else (block.title,) if isinstance(block, Fold) else ()
        found = find_title(inner)
        if found is not None:
            return found
    return None
