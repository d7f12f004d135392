"""The widget view's pure helpers."""

from __future__ import annotations

import time
from typing import Any

from codex_magic._render import next_cut
from codex_magic._view import BLOCK_CHARS, settled_end


def test_settled_end_is_a_blank_line_outside_code_fences() -> None:
    text = "para one\n\n```\ncode\n\nmore code\n```\n\npara two\n\nstill strea"
    assert text[: settled_end(text, 0, size=10)].endswith("para two\n\n")
    inside = "intro\n\n```\ncode\n\nstill in the fence"
    assert settled_end(inside, 0, size=10) == 0  # the next line opens a fence: no cut before it
    assert settled_end(inside + "\n```\n\nafter", 0, size=10) == len(inside + "\n```\n\n")
    assert settled_end("no break yet", 0, size=10) == 0
    assert settled_end(text, len(text) - 3, size=10) == len(text) - 3  # nothing settled after start
    assert settled_end(text, 0) == 0  # blocks are at least BLOCK_CHARS long


def test_settled_end_is_where_the_renderer_cuts_its_pieces() -> None:
    text = "".join(f"Paragraph {i}: " + "lorem ipsum " * 40 + "\n\n" for i in range(100)) + "Still stre"
    end, ends = 0, []
    while (cut := settled_end(text[: len(text) - 5 * len(ends)], end)) > end:
        ends.append(cut)
        end = cut
    pieces, start = [], 0
    while (cut := next_cut(text, start)) is not None:
        pieces.append(cut)
        start = cut
    assert ends and set(ends) <= set(pieces)
    assert all(text[cut - 2 : cut] == "\n\n" and text[cut:].startswith("Paragraph") for cut in pieces)


def test_settled_end_cuts_one_long_paragraph_at_a_space() -> None:
    text = "word " * (BLOCK_CHARS + 10)
    end = settled_end(text, 0)
    assert 0 < end <= len(text) and text[end - 1] == " "


def test_shown_follows_the_frontends_view_count() -> None:
    from codex_magic._view import WidgetView

    view = WidgetView(live_after=0)
    assert view.root._view_count == 0 and not view.shown(0.01)  # nobody shows it yet
    view.root._view_count = 1  # as a frontend's update sets it
    assert view.shown(0.01)
    view.root._view_count = 0  # the page was closed
    assert not view.shown(0.01)


def test_final_render_reuses_only_renderings_of_the_current_version_and_mode() -> None:
    from codex_magic._render import Rendered
    from codex_magic._transcript import Transcript
    from codex_magic._view import final_render, item_view

    transcript = Transcript(thread_id="t", turn_id="u")
    transcript.apply("item/started", {"item": {"id": "m", "type": "agentMessage", "text": ""}})
    transcript.apply("item/agentMessage/delta", {"itemId": "m", "delta": "Hello"})
    renderings: dict = {}
    item_view(transcript.items["m"], transcript.done, {}, renderings)
    transcript.apply("item/agentMessage/delta", {"itemId": "m", "delta": " world"})
    transcript.apply("turn/completed", {"turn": {"id": "u", "status": "completed"}})
    # Rendered before the last delta, and while running: neither is reused.
    assert "Hello world" in final_render(transcript, {}, renderings).html
    marker = Rendered("<p>from the view</p>", "from the view", "from the view")
    renderings["m"] = (transcript.items["m"].version, "unfinished", marker)
    assert "from the view" in final_render(transcript, {}, renderings).html
    renderings["m"] = (transcript.items["m"].version, "running", marker)
    assert "from the view" not in final_render(transcript, {}, renderings).html
    assert final_render(transcript, {}, {}) == final_render(transcript)


def test_layouts_and_styles_are_shared_by_turns_and_remade_when_closed() -> None:
    import ipywidgets

    from codex_magic._view import WidgetView

    first, second = WidgetView(live_after=0), WidgetView(live_after=0)
    assert first.stop.layout is second.stop.layout and first.header.style is second.header.style
    assert first.root.layout is second.root.layout
    ipywidgets.Widget.close_all()
    third = WidgetView(live_after=0)
    assert third.stop.layout is not first.stop.layout and third.stop.layout.comm is not None


def test_request_widgets_show_no_control_sequences_and_answer_with_the_option_as_sent() -> None:
    from codex_magic._requests import Request
    from codex_magic._view import WidgetView

    hostile = "\x1b]0;title\x07Py\x1b[31mthon\x1b[0m"
    request = Request(
        "item/tool/requestUserInput",
        {"questions": [
            {"id": "a", "header": f"Lang{hostile}", "question": "Which?", "options": [{"label": hostile, "description": hostile}]},
            {"id": "b", "header": "Other", "question": "?", "options": None, "isOther": True},
        ]},
    )  # fmt: skip
    answers: list[dict] = []
    pending = type("Pending", (), {"request": request, "answer": lambda self, reply, by: answers.append(reply)})()
    view = WidgetView(live_after=0)
    view.ask(pending)
    _box, made = view._asks[id(pending)]
    values = [
        str(value)
        for widget in made
        for value in (getattr(widget, "value", ""), getattr(widget, "description", ""),
                      *getattr(widget, "_options_labels", ()), *(getattr(widget, "tooltips", None) or ()))
    ]  # fmt: skip
    assert any("Python" in value for value in values)
    assert not any(ch in value for value in values for ch in "\x1b\x07")
    toggle = next(widget for widget in made if hasattr(widget, "_options_labels"))
    toggle.index = 0
    text = next(widget for widget in made if type(widget).__name__ == "Text")
    text.value = "Rust"
    answer = next(widget for widget in made if getattr(widget, "description", "") == "Answer")
    answer.click()
    assert answers == [{"answers": {"a": {"answers": [hostile]}, "b": {"answers": ["Rust"]}}}]


# -- WidgetView.update, in-process (the real-kernel tests drive it through a frontend) -------------


def _turn() -> Any:
    from codex_magic._transcript import Transcript

    transcript = Transcript(thread_id="t", turn_id="u")
    transcript.apply("turn/started", {"turn": {"id": "u"}})
    return transcript


def _children(view: Any) -> list[Any]:
    """The turn's children as the page shows them: the items, the requests, notices and diff."""
    parts = [child for child in view.root.children if child is not view.top]
    return [inner for part in parts for inner in (part.children if part in (view.body, view.requests) else [part])]


def test_update_adds_a_child_per_item_and_touches_only_what_changed() -> None:
    from codex_magic._view import WidgetView

    view, transcript = WidgetView(live_after=0), _turn()
    transcript.apply("item/started", {"item": {"id": "m", "type": "agentMessage", "text": ""}})
    transcript.apply("item/agentMessage/delta", {"itemId": "m", "delta": "Hello"})
    view.update(transcript)
    (message,) = _children(view)
    assert "Hello" in message.value

    command = {"id": "c", "type": "commandExecution", "command": "ls -1", "cwd": "/w", "status": "inProgress"}
    transcript.apply("item/started", {"item": command})
    sent: list[str] = []
    message.observe(lambda change: sent.append(change["name"]), names="value")
    view.update(transcript)
    first, second = _children(view)
    assert first is message and sent == []  # the message did not change: not sent again
    assert "ls -1" in second.value and "running" in second.value

    transcript.apply("item/commandExecution/outputDelta", {"itemId": "c", "delta": "a.txt\n"})
    transcript.apply(
        "item/completed", {"item": {**command, "status": "completed", "exitCode": 0, "aggregatedOutput": "a.txt\n"}}
    )
    view.update(transcript)
    assert _children(view)[1] is second and "exit 0" in second.value and "a.txt" in second.value
    assert sent == []


def test_update_shows_plan_notices_and_diff_and_drops_a_retried_item() -> None:
    from codex_magic._view import WidgetView

    view, transcript = WidgetView(live_after=0), _turn()
    transcript.apply("item/started", {"item": {"id": "m", "type": "agentMessage", "text": ""}})
    view.update(transcript)
    stale = _children(view)[0]
    transcript.apply("turn/plan/updated", {"plan": [{"step": "Read the data", "status": "inProgress"}]})
    transcript.note("declined", "run a command: rm -rf /")
    transcript.apply("turn/diff/updated", {"diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n"})
    transcript.items.pop("m")  # as a retry makes a streamed item stale
    transcript.version += 1
    view.update(transcript)
    text = " ".join(child.value for child in _children(view))
    assert "Read the data" in text and "rm -rf /" in text and "+new" in text
    assert stale not in _children(view) and stale.comm is None  # removed, and its model closed


def test_steering_appears_after_a_second_and_stop_is_not_remade() -> None:
    from codex_magic import _view

    view, transcript = _view.WidgetView(live_after=0), _turn()
    view.set_stop(lambda: None)
    view.set_steer(lambda text: None)
    view.update(transcript)
    assert view.send is None and view.top.children == (view.header, view.stop)
    transcript.started -= _view.STEER_AFTER
    view.update(transcript)
    # Stop keeps its place (a box's view remakes every child after the first that changed).
    assert view.top.children == (view.header, view.stop, view.steer_text, view.send)


def test_finish_replaces_the_widget_with_the_static_transcript_and_closes_every_model() -> None:
    import ipywidgets.widgets.widget as widget_module

    from codex_magic._view import WidgetView

    before = set(widget_module._instances)
    view, transcript = WidgetView(live_after=0), _turn()
    view.set_stop(lambda: None)
    view.set_steer(lambda text: None)
    transcript.started -= 2
    transcript.apply("item/started", {"item": {"id": "m", "type": "agentMessage", "text": ""}})
    transcript.apply("item/completed", {"item": {"id": "m", "type": "agentMessage", "text": "Done."}})
    view.update(transcript)
    transcript.apply("turn/completed", {"turn": {"id": "u", "status": "completed"}})
    shown: list[dict[str, Any]] = []
    view.handle = type("Handle", (), {"update": lambda self, data, **kwargs: shown.append({**data, **kwargs})})()
    view.finish(transcript)
    (final,) = shown
    assert set(final) >= {"text/plain", "text/html", "text/markdown", "metadata"}
    assert "application/vnd.jupyter.widget-view+json" not in final and "Done." in final["text/html"]
    left = [model for key, model in widget_module._instances.items() if key not in before]
    assert all(any(model is shared for shared in _shared_models()) for model in left)  # only shared layouts, styles


def _shared_models() -> list[Any]:
    from codex_magic._view import _SHARED

    return list(_SHARED.values())


class _Shown:
    """The display a view publishes, recorded instead of sent (IPython's display() outside a kernel)."""

    def __init__(self, monkeypatch: Any) -> None:
        import IPython.display

        self.bundles: list[dict[str, Any]] = []
        shown = self

        class Handle:
            def update(self, data: dict[str, Any], **kwargs: Any) -> None:
                shown.bundles.append({**data, **kwargs})

        def display(data: dict[str, Any], **kwargs: Any) -> Handle:
            shown.bundles.append({**data, **kwargs})
            return Handle()

        monkeypatch.setattr(IPython.display, "display", display)


def test_a_quick_turn_is_plain_output_and_opens_no_widget_model(monkeypatch: Any) -> None:
    import ipywidgets.widgets.widget as widget_module

    from codex_magic._view import WIDGET_MIME, WidgetView

    shown = _Shown(monkeypatch)
    before = set(widget_module._instances)
    view, transcript = WidgetView(), _turn()
    assert shown.bundles == []  # displayed at the first update, with what there is to show
    view.update(transcript)
    transcript.apply("item/started", {"item": {"id": "m", "type": "agentMessage", "text": ""}})
    transcript.apply("item/agentMessage/delta", {"itemId": "m", "delta": "Hello"})
    view.update(transcript)
    view.update(transcript)  # nothing changed: nothing sent
    transcript.apply("item/completed", {"item": {"id": "m", "type": "agentMessage", "text": "Hello there."}})
    transcript.apply("turn/completed", {"turn": {"id": "u", "status": "completed"}})
    view.update(transcript)  # a finished turn is shown by finish
    view.finish(transcript)
    first, text, final = shown.bundles
    assert "running" in first["text/plain"] and first["metadata"] == {"codex_magic": {"status": "running"}}
    assert "Hello" in text["text/html"] and WIDGET_MIME not in text
    assert "Hello there." in final["text/html"] and final["metadata"]["codex_magic"]["thread_id"] == "t"
    assert set(widget_module._instances) == before and not view.live


def test_the_widget_replaces_the_plain_output_after_live_after_or_when_the_user_is_needed(monkeypatch: Any) -> None:
    from codex_magic._transcript import Transcript
    from codex_magic._view import WIDGET_MIME, WidgetView

    shown = _Shown(monkeypatch)
    starting = Transcript()  # the app-server still starting: no turn yet
    view = WidgetView(live_after=0.05)
    view.update(starting)
    assert "starting" in shown.bundles[-1]["text/plain"]
    time.sleep(0.1)
    view.update(starting)  # the clock starts with the turn, not with the app-server
    assert not view.live
    transcript = _turn()
    transcript.apply("item/started", {"item": {"id": "m", "type": "agentMessage", "text": ""}})
    transcript.apply("item/agentMessage/delta", {"itemId": "m", "delta": "Streaming"})
    view.update(transcript)
    assert not view.live
    time.sleep(0.1)
    view.update(transcript)
    assert view.live and WIDGET_MIME in shown.bundles[-1] and "running" in shown.bundles[-1]["text/plain"]
    # The widget comes laid out with the turn so far: the page never shows it empty.
    assert any("Streaming" in child.value for child in _children(view))

    asked = WidgetView()  # a request to answer: the widget at once, whatever the clock
    asked.update(_turn())
    asked.go_live()
    assert asked.live and WIDGET_MIME in shown.bundles[-1]
    run = WidgetView()  # Codex's code about to run in the kernel: Stop must be there
    run.update(_turn())
    run.set_run_stop(lambda: None)
    assert run.live


def test_an_item_that_arrives_while_a_request_is_open_leaves_the_requests_box_as_it_is() -> None:
    # A box's frontend view remakes every child after the first one that changed: the request's
    # box must not be among them, or a click on it at that moment is lost.
    from codex_magic._requests import Request
    from codex_magic._view import WidgetView

    view, transcript = WidgetView(live_after=0), _turn()
    transcript.apply("item/started", {"item": {"id": "m", "type": "agentMessage", "text": "Before."}})
    view.update(transcript)
    request = Request("item/commandExecution/requestApproval", {"itemId": "c", "command": "ls", "cwd": "/w"})
    pending = type("Pending", (), {"request": request, "answer": lambda self, reply, by: None})()
    view.ask(pending)
    root, requests = view.root.children, view.requests.children
    transcript.apply("item/started", {"item": {"id": "r", "type": "reasoning", "summary": ["Thinking"]}})
    transcript.apply("turn/plan/updated", {"plan": [{"step": "Look", "status": "inProgress"}]})
    view.update(transcript)
    assert len(view.body.children) == 3  # the plan, the message, the new item
    assert view.root.children == root and view.requests.children == requests
    transcript.note("declined", "a notice")
    view.update(transcript)
    assert view.root.children[: len(root)] == root  # notices only add to the end
    view.withdraw(pending)
    assert view.requests.children == () and len(view.body.children) == 3
