"""The widget view's pure helpers."""

from __future__ import annotations

from codex_magic._view import BLOCK_CHARS, settled_end


def test_settled_end_is_a_blank_line_outside_code_fences() -> None:
    text = "para one\n\n```\ncode\n\nmore code\n```\n\npara two\n\nstill strea"
    assert text[: settled_end(text, 0)].endswith("para two\n\n")
    inside = "intro\n\n```\ncode\n\nstill in the fence"
    assert settled_end(inside, 0) == len("intro\n\n")
    assert settled_end("no break yet", 0) == 0
    assert settled_end(text, len(text) - 3) == len(text) - 3  # nothing settled after start


def test_settled_end_cuts_one_long_paragraph_at_a_space() -> None:
    text = "word " * (BLOCK_CHARS + 10)
    end = settled_end(text, 0)
    assert 0 < end <= len(text) and text[end - 1] == " "


def test_shown_follows_the_frontends_view_count() -> None:
    from codex_magic._view import WidgetView

    view = WidgetView()
    assert view.root._view_count == 0 and not view.shown(0.01)  # nobody shows it yet
    view.root._view_count = 1  # as a frontend's update sets it
    assert view.shown(0.01)
    view.root._view_count = 0  # the page was closed
    assert not view.shown(0.01)
