"""Pure tier: the transcript fold, by replaying recorded app-server notifications.

The files in ``tests/data`` were recorded from the real ``codex app-server`` by
``tests/record_notifications.py``; the short hand-written sequences below cover
orderings a scripted model cannot produce on demand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_magic._transcript import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    RUNNING,
    Transcript,
    final_response,
)

from .record_notifications import COMMAND_ANSWER, COMMAND_REASONING, MARKUP, STREAMED_TEXT

DATA = Path(__file__).resolve().parent / "data"
RECORDINGS = ["streamed_message", "command", "http_500", "interrupted", "markup"]

HTTP_500_MESSAGE = "We\u2019re currently experiencing high demand, which may cause temporary errors."


def load(name: str) -> list[tuple[str, dict[str, Any]]]:
    """A recorded notification list as ``(method, params)`` pairs."""
    entries = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return [(method, params) for method, params in entries]


def replay(name: str) -> Transcript:
    """Fold a whole recording into a fresh transcript."""
    transcript = Transcript()
    for method, params in load(name):
        transcript.apply(method, params)
    return transcript


def types_of(transcript: Transcript) -> list[str]:
    return [item["type"] for item in transcript.result_items()]


def by_type(transcript: Transcript, kind: str) -> list[dict[str, Any]]:
    return [item for item in transcript.result_items() if item["type"] == kind]


def completed_params(name: str, kind: str) -> list[dict[str, Any]]:
    """The ``item`` of every recorded ``item/completed`` of one kind."""
    return [p["item"] for m, p in load(name) if m == "item/completed" and p["item"]["type"] == kind]


# -- the recordings themselves ---------------------------------------------------------


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_is_one_whole_turn(name: str) -> None:
    entries = load(name)
    assert entries[0][0] == "turn/started"
    assert entries[-1][0] == "turn/completed"
    assert sum(1 for m, _ in entries if m == "turn/completed") == 1
    assert (DATA / f"{name}.json").stat().st_size < 16_000


@pytest.mark.parametrize("name", RECORDINGS)
def test_replay_ends_the_turn_and_counts_every_notification(name: str) -> None:
    entries = load(name)
    transcript = replay(name)
    assert transcript.done
    assert transcript.version == len(entries)
    turn = entries[-1][1]["turn"]
    assert transcript.turn_id == turn["id"] == entries[0][1]["turn"]["id"]
    assert transcript.turn == turn
    assert transcript.ended is not None


@pytest.mark.parametrize("name", RECORDINGS)
def test_streamed_text_equals_completed_text(name: str) -> None:
    """Just before each ``item/completed``, the merged deltas equal the completed item."""
    transcript = Transcript()
    compared = 0
    for method, params in load(name):
        if method == "item/completed":
            state = transcript.items.get(params["item"]["id"])
            if state is not None and state.chunks:
                view, final = state.view(), params["item"]
                for key in {k.split(":")[0] for k in state.chunks}:
                    assert view[key] == final[key], key
                    compared += 1
        transcript.apply(method, params)
    streamed = {"streamed_message": 1, "command": 2, "markup": 2, "interrupted": 0, "http_500": 0}
    assert compared == streamed[name]


def test_streamed_message() -> None:
    transcript = replay("streamed_message")
    assert transcript.status == COMPLETED
    assert transcript.error is None and transcript.retry is None
    assert types_of(transcript) == ["userMessage", "agentMessage"]
    (message,) = by_type(transcript, "agentMessage")
    assert message["text"] == STREAMED_TEXT
    assert all(state.done and not state.chunks for state in transcript.ordered())
    assert transcript.usage is not None
    assert transcript.usage["last"]["totalTokens"] == 120
    assert transcript.usage["modelContextWindow"] > 0
    assert final_response(transcript.result_items()) == STREAMED_TEXT


def test_streamed_message_text_grows_while_streaming() -> None:
    transcript = Transcript()
    seen: list[str] = []
    for method, params in load("streamed_message"):
        transcript.apply(method, params)
        if method == "item/agentMessage/delta":
            (state,) = [s for s in transcript.ordered() if s.type == "agentMessage"]
            assert not state.done
            seen.append(state.view()["text"])
    assert len(seen) > 5
    assert all(later.startswith(earlier) and later != earlier for earlier, later in zip(seen, seen[1:]))
    assert seen[-1] == STREAMED_TEXT


def test_command() -> None:
    transcript = replay("command")
    assert transcript.status == COMPLETED
    assert transcript.error is None
    assert types_of(transcript) == ["userMessage", "reasoning", "commandExecution", "agentMessage"]
    (thinking,) = by_type(transcript, "reasoning")
    assert thinking["summary"] == [COMMAND_REASONING]
    (command,) = by_type(transcript, "commandExecution")
    assert "echo alpha; echo beta; echo gamma" in command["command"]
    assert command["aggregatedOutput"] == "alpha\nbeta\ngamma\n"
    assert command["exitCode"] == 0
    assert command["status"] == "completed"
    assert command["cwd"].endswith("/ws")
    assert final_response(transcript.result_items()) == COMMAND_ANSWER
    # The last usage update wins: two model requests in this turn.
    last_usage = [p for m, p in load("command") if m == "thread/tokenUsage/updated"][-1]
    assert transcript.usage == last_usage["tokenUsage"]
    assert transcript.usage["total"]["totalTokens"] == 240


def test_command_output_arrives_only_on_completion() -> None:
    """The recorded command prints at startup: no output deltas, only ``aggregatedOutput``."""
    transcript = Transcript()
    for method, params in load("command"):
        if method == "item/completed" and params["item"]["type"] == "commandExecution":
            (state,) = [s for s in transcript.ordered() if s.type == "commandExecution"]
            assert not state.done
            assert not state.view().get("aggregatedOutput")
        transcript.apply(method, params)
    (command,) = by_type(transcript, "commandExecution")
    assert command["aggregatedOutput"] == "alpha\nbeta\ngamma\n"


def test_http_500() -> None:
    transcript = replay("http_500")
    assert transcript.status == FAILED
    assert transcript.error == HTTP_500_MESSAGE
    assert transcript.turn["error"]["message"] == HTTP_500_MESSAGE
    assert transcript.retry is None
    assert types_of(transcript) == ["userMessage"]
    assert transcript.usage is None
    assert final_response(transcript.result_items()) is None


def test_http_500_error_is_known_before_turn_completed() -> None:
    transcript = Transcript()
    for method, params in load("http_500")[:-1]:
        transcript.apply(method, params)
    assert transcript.status == RUNNING
    assert transcript.error == HTTP_500_MESSAGE


def test_interrupted() -> None:
    entries = load("interrupted")
    transcript = replay("interrupted")
    assert transcript.status == INTERRUPTED
    assert transcript.error is None
    # The app-server never completes the message that was streaming.
    (in_flight,) = [s for s in transcript.ordered() if not s.done]
    assert in_flight.type == "agentMessage"
    streamed = "".join(p["delta"] for m, p in entries if m == "item/agentMessage/delta")
    assert streamed and in_flight.view()["text"] == streamed
    assert " ".join(f"word{i}" for i in range(200)).startswith(streamed)
    # result_items: completed items first, then what is still in flight.
    items = transcript.result_items()
    assert [item["type"] for item in items] == ["userMessage", "agentMessage"]
    assert items[0] is transcript.items[transcript.completed_order[0]].data
    assert items[-1]["id"] == in_flight.id
    assert items[-1]["text"] == streamed
    assert transcript.completed_order == [items[0]["id"]]
    assert transcript.usage is None


def test_markup_is_kept_verbatim() -> None:
    transcript = replay("markup")
    assert transcript.status == COMPLETED
    assert types_of(transcript) == ["userMessage", "agentMessage", "commandExecution", "agentMessage"]
    commentary, answer = by_type(transcript, "agentMessage")
    assert commentary["phase"] == "commentary"
    assert commentary["text"] == MARKUP
    assert answer["phase"] == "final_answer"
    assert answer["text"] == f"Here is markup: {MARKUP}"
    (command,) = by_type(transcript, "commandExecution")
    assert "<script>alert(1)</script>" in command["command"]
    assert command["aggregatedOutput"] == ("<script>alert(1)</script>\n<img src=x onerror=alert(1)>\na &amp; b\n")
    # The final_answer message wins; commentary never counts.
    assert final_response(transcript.result_items()) == f"Here is markup: {MARKUP}"


@pytest.mark.parametrize("name", RECORDINGS)
def test_completed_items_equal_the_recorded_ones(name: str) -> None:
    transcript = replay(name)
    recorded = [p["item"] for m, p in load(name) if m == "item/completed"]
    completed = [transcript.items[i].data for i in transcript.completed_order]
    assert completed == recorded


# -- hand-written edge cases -----------------------------------------------------------


def started(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "item/started", {"item": item, "threadId": "t", "turnId": "u"}


def completed(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "item/completed", {"item": item, "threadId": "t", "turnId": "u"}


def delta(item_id: str, text: str, method: str = "item/agentMessage/delta", **extra: Any) -> tuple[str, dict[str, Any]]:
    return method, {"itemId": item_id, "delta": text, **extra}


def fold(*notifications: tuple[str, dict[str, Any]]) -> Transcript:
    transcript = Transcript()
    for method, params in notifications:
        transcript.apply(method, params)
    return transcript


def message(item_id: str = "m1", text: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": "agentMessage", "id": item_id, "text": text, **extra}


def test_deltas_after_item_started_append() -> None:
    transcript = fold(started(message()), delta("m1", "Hel"), delta("m1", "lo"))
    state = transcript.items["m1"]
    assert state.view()["text"] == "Hello"
    assert state.version == 2
    assert not state.done
    # view() merges without touching the started item's data
    assert state.data["text"] == ""


def test_deltas_before_item_started_are_dropped() -> None:
    """No state exists yet; the completed item carries the text anyway."""
    transcript = fold(delta("m1", "early "), started(message()), delta("m1", "late"))
    assert transcript.items["m1"].view()["text"] == "late"
    transcript.apply(*completed(message(text="early late")))
    assert transcript.result_items()[0]["text"] == "early late"


def test_deltas_for_unknown_items_are_ignored() -> None:
    transcript = fold(started(message()), delta("nope", "x"), delta("", "y"))
    transcript.apply("item/commandExecution/outputDelta", {"delta": "z"})  # no itemId at all
    assert list(transcript.items) == ["m1"]
    assert transcript.items["m1"].view()["text"] == ""
    assert transcript.items["m1"].version == 0
    assert transcript.version == 4


def test_deltas_after_item_completed_are_ignored() -> None:
    transcript = fold(started(message()), completed(message(text="done")), delta("m1", " extra"))
    assert transcript.items["m1"].view()["text"] == "done"
    assert transcript.result_items() == [message(text="done")]


def test_item_completed_without_item_started() -> None:
    item = {"type": "commandExecution", "id": "c1", "command": "ls", "aggregatedOutput": "a\n", "exitCode": 0}
    transcript = fold(completed(item))
    state = transcript.items["c1"]
    assert state.done and state.type == "commandExecution"
    assert transcript.completed_order == ["c1"]
    assert transcript.result_items() == [item]


def test_completed_item_replaces_streamed_output() -> None:
    """Output printed before ``item/started`` is only in ``aggregatedOutput`` (the early-output gotcha)."""
    start = {"type": "commandExecution", "id": "c1", "command": "make", "status": "inProgress"}
    end = {**start, "status": "completed", "aggregatedOutput": "early\nlater\n", "exitCode": 0}
    transcript = fold(
        started(start),
        delta("c1", "later\n", "item/commandExecution/outputDelta"),
    )
    assert transcript.items["c1"].view()["aggregatedOutput"] == "later\n"
    transcript.apply(*completed(end))
    state = transcript.items["c1"]
    assert state.chunks == {}
    assert state.view()["aggregatedOutput"] == "early\nlater\n"
    assert transcript.result_items() == [end]


def test_completed_item_replaces_streamed_text_even_when_shorter() -> None:
    transcript = fold(started(message()), delta("m1", "draft that was revised"), completed(message(text="final")))
    assert transcript.result_items()[0]["text"] == "final"


def test_reasoning_summary_deltas_by_index() -> None:
    transcript = fold(
        started({"type": "reasoning", "id": "r1", "summary": [], "content": []}),
        delta("r1", "First ", "item/reasoning/summaryTextDelta", summaryIndex=0),
        delta("r1", "part.", "item/reasoning/summaryTextDelta", summaryIndex=0),
        delta("r1", "Second part.", "item/reasoning/summaryTextDelta", summaryIndex=1),
        delta("r1", "raw", "item/reasoning/textDelta", contentIndex=0),
    )
    view = transcript.items["r1"].view()
    assert view["summary"] == ["First part.", "Second part."]
    assert view["content"] == ["raw"]


def test_reasoning_summary_index_beyond_the_end_pads() -> None:
    transcript = fold(
        started({"type": "reasoning", "id": "r1", "summary": []}),
        delta("r1", "only the second", "item/reasoning/summaryTextDelta", summaryIndex=1),
    )
    assert transcript.items["r1"].view()["summary"] == ["", "only the second"]


def test_reasoning_summary_index_defaults_to_zero() -> None:
    transcript = fold(
        started({"type": "reasoning", "id": "r1", "summary": []}),
        delta("r1", "no index", "item/reasoning/summaryTextDelta"),
    )
    assert transcript.items["r1"].view()["summary"] == ["no index"]


def test_plan_deltas() -> None:
    transcript = fold(
        started({"type": "plan", "id": "p1", "text": ""}),
        delta("p1", "1. look\n", "item/plan/delta"),
        delta("p1", "2. fix\n", "item/plan/delta"),
    )
    assert transcript.items["p1"].view()["text"] == "1. look\n2. fix\n"


def test_error_will_retry_then_final() -> None:
    transcript = Transcript()
    transcript.apply("error", {"error": {"message": "Reconnecting... 1/5"}, "willRetry": True})
    assert transcript.retry == "Reconnecting... 1/5"
    assert transcript.error is None
    assert transcript.status == RUNNING
    transcript.apply("error", {"error": {"message": "stream disconnected"}, "willRetry": False})
    assert transcript.error == "stream disconnected"
    transcript.apply("turn/completed", {"turn": {"id": "u", "status": "failed", "error": {"message": "turn says so"}}})
    assert transcript.status == FAILED
    assert transcript.error == "turn says so"
    assert transcript.retry is None


def test_error_message_kept_when_turn_completed_has_no_error() -> None:
    transcript = fold(
        ("error", {"error": {"message": "boom"}, "willRetry": False}),
        ("turn/completed", {"turn": {"id": "u", "status": "failed"}}),
    )
    assert transcript.error == "boom"


def test_error_without_message() -> None:
    transcript = fold(("error", {"willRetry": False}))
    assert transcript.error == "unknown error"


def test_retry_clears_when_the_turn_completes() -> None:
    transcript = fold(
        ("error", {"error": {"message": "Reconnecting... 1/5"}, "willRetry": True}),
        ("turn/completed", {"turn": {"id": "u", "status": "completed"}}),
    )
    assert transcript.status == COMPLETED
    assert transcript.retry is None and transcript.error is None


def test_abandon_while_running() -> None:
    transcript = fold(started(message()), delta("m1", "partial"))
    before = transcript.version
    transcript.abandon(FAILED, "lost the codex app-server: EOF")
    assert transcript.done
    assert transcript.status == FAILED
    assert transcript.error == "lost the codex app-server: EOF"
    assert transcript.version == before + 1
    assert transcript.ended is not None
    assert transcript.elapsed() == transcript.elapsed()  # frozen once ended
    assert transcript.result_items() == [message(text="partial")]


def test_abandon_after_done_is_a_no_op() -> None:
    transcript = replay("streamed_message")
    state = (transcript.status, transcript.error, transcript.ended, transcript.version)
    transcript.abandon(INTERRUPTED, "too late")
    assert (transcript.status, transcript.error, transcript.ended, transcript.version) == state


def test_abandon_twice_keeps_the_first() -> None:
    transcript = Transcript()
    transcript.abandon(INTERRUPTED, "timed out")
    transcript.abandon(FAILED, "second")
    assert (transcript.status, transcript.error) == (INTERRUPTED, "timed out")


def test_unknown_methods_are_ignored() -> None:
    transcript = fold(started(message()))
    items_before = transcript.result_items()
    for method in ["turn/diff/updated", "turn/plan/updated", "model/rerouted", "serverRequest/resolved", "x/y"]:
        transcript.apply(method, {"itemId": "m1", "delta": "junk", "item": message(text="junk")})
    assert transcript.result_items() == items_before
    assert transcript.status == RUNNING
    assert transcript.notices == []
    assert transcript.version == 6


def test_version_increases_on_every_change() -> None:
    transcript = Transcript()
    versions = [transcript.version]
    for notification in [started(message()), delta("m1", "a"), delta("ghost", "b"), ("x/unknown", {})]:
        transcript.apply(*notification)
        versions.append(transcript.version)
    transcript.note("declined", "exec rm -rf /")
    versions.append(transcript.version)
    transcript.abandon(INTERRUPTED)
    versions.append(transcript.version)
    assert versions == sorted(set(versions))
    assert len(versions) == 7


def test_notes_and_warnings_become_notices() -> None:
    transcript = fold(("warning", {"message": "model rerouted"}))
    transcript.note("declined", "item/commandExecution/requestApproval rm -> decline")
    assert [(n.kind, n.text) for n in transcript.notices] == [
        ("warning", "model rerouted"),
        ("declined", "item/commandExecution/requestApproval rm -> decline"),
    ]


def test_turn_started_and_usage() -> None:
    usage = {"last": {"totalTokens": 5}, "total": {"totalTokens": 9}, "modelContextWindow": 100}
    transcript = fold(
        ("turn/started", {"turn": {"id": "turn-1", "status": "inProgress"}}),
        ("thread/tokenUsage/updated", {"tokenUsage": usage}),
    )
    assert transcript.turn_id == "turn-1"
    assert transcript.usage == usage
    assert not transcript.done


def test_result_items_order_completed_then_in_flight() -> None:
    transcript = fold(
        started(message("a")),
        started(message("b")),
        completed(message("b", "B")),
        started(message("c")),
        delta("a", "partial A"),
        completed(message("d", "D")),
    )
    assert [item["id"] for item in transcript.result_items()] == ["b", "d", "a", "c"]
    assert [s.id for s in transcript.ordered()] == ["a", "b", "c", "d"]
    assert transcript.result_items()[2]["text"] == "partial A"


def test_tagged_turn_status() -> None:
    transcript = fold(("turn/completed", {"turn": {"id": "u", "status": {"interrupted": {}}}}))
    assert transcript.status == INTERRUPTED


def test_elapsed_is_frozen_once_done() -> None:
    transcript = replay("streamed_message")
    first = transcript.elapsed()
    assert first >= 0
    assert transcript.elapsed() == first


# -- final_response (the SDK's rule) ---------------------------------------------------


def test_final_response_prefers_final_answer() -> None:
    items = [message("1", "answer", phase="final_answer"), message("2", "later, no phase")]
    assert final_response(items) == "answer"


def test_final_response_falls_back_to_last_message_without_phase() -> None:
    items = [message("1", "first"), message("2", "second"), message("3", "note", phase="commentary")]
    assert final_response(items) == "second"


def test_final_response_ignores_commentary_and_other_items() -> None:
    items = [message("1", "thinking aloud", phase="commentary"), {"type": "reasoning", "id": "r", "text": "x"}]
    assert final_response(items) is None
    assert final_response([]) is None


def test_repeated_item_completed_is_counted_once() -> None:
    transcript = Transcript()
    item = {"type": "agentMessage", "id": "m1", "text": "hi", "phase": None}
    transcript.apply("item/completed", {"item": item})
    transcript.apply("item/completed", {"item": item})
    assert [i["id"] for i in transcript.result_items()] == ["m1"]


def test_only_a_completed_item_clears_the_retry_notice() -> None:
    transcript = Transcript()
    transcript.apply("error", {"error": {"message": "Reconnecting... 2/5"}, "willRetry": True})
    assert transcript.retry == "Reconnecting... 2/5" and transcript.retrying_since is not None
    since, progress = transcript.retrying_since, transcript.progress_at
    transcript.apply("thread/tokenUsage/updated", {"tokenUsage": {}})
    # A retry streams its partial output again: that is not progress.
    transcript.apply("item/started", {"item": {"type": "agentMessage", "id": "m1", "text": ""}})
    transcript.apply("item/agentMessage/delta", {"itemId": "m1", "delta": "Hel"})
    assert transcript.retrying_since == since and transcript.progress_at == progress
    transcript.apply("item/completed", {"item": {"type": "agentMessage", "id": "m1", "text": "Hello"}})
    assert transcript.retry is None and transcript.retrying_since is None
    assert transcript.progress_at > progress


def test_a_retried_message_is_kept_once() -> None:
    transcript = Transcript()
    for attempt in range(6):
        item_id = f"m{attempt}"
        transcript.apply("item/started", {"item": {"type": "agentMessage", "id": item_id, "text": ""}})
        transcript.apply("item/agentMessage/delta", {"itemId": item_id, "delta": "Partial"})
        if attempt < 5:
            transcript.apply("error", {"error": {"message": f"Reconnecting... {attempt + 1}/5"}, "willRetry": True})
    transcript.abandon("failed", "stream disconnected")
    assert [item["id"] for item in transcript.result_items()] == ["m5"]


def test_waiting_on_the_model_only_while_nothing_else_runs() -> None:
    transcript = Transcript()
    assert transcript.waiting_on_model()
    transcript.apply("item/started", {"item": {"type": "reasoning", "id": "r1"}})
    assert transcript.waiting_on_model()
    transcript.apply("item/started", {"item": {"type": "commandExecution", "id": "c1", "command": "sleep 60"}})
    assert not transcript.waiting_on_model()
    transcript.apply("item/completed", {"item": {"type": "commandExecution", "id": "c1", "command": "sleep 60"}})
    assert transcript.waiting_on_model()


def test_streamed_command_output_keeps_a_bounded_tail() -> None:
    from codex_magic._transcript import STREAM_TAIL_CHARS

    transcript = Transcript()
    transcript.apply("item/started", {"item": {"type": "commandExecution", "id": "c1", "command": "yes"}})
    line = "y" * 99 + "\n"
    for _ in range(10_000):  # 1 MB of output
        transcript.apply("item/commandExecution/outputDelta", {"itemId": "c1", "delta": line})
    state = transcript.items["c1"]
    output = state.view()["aggregatedOutput"]
    assert STREAM_TAIL_CHARS <= len(output) <= 2 * STREAM_TAIL_CHARS
    assert state.dropped == 1_000_000 - len(output)
    assert output.endswith(line)
    full = {"type": "commandExecution", "id": "c1", "command": "yes", "aggregatedOutput": line * 10_000}
    transcript.apply("item/completed", {"item": full})
    assert state.dropped == 0 and len(state.view()["aggregatedOutput"]) == 1_000_000


def test_plan_and_turn_diff_are_kept() -> None:
    transcript = Transcript()
    plan = {"explanation": "steps", "plan": [{"step": "read", "status": "completed"}]}
    transcript.apply("turn/plan/updated", plan)
    transcript.apply("turn/diff/updated", {"diff": "--- a/x\n+++ b/x\n"})
    assert transcript.plan == plan
    assert transcript.diff == "--- a/x\n+++ b/x\n"


def test_auto_review_verdicts_are_noted() -> None:
    transcript = Transcript()
    transcript.apply(
        "item/autoApprovalReview/completed",
        {
            "action": {"command": "touch a.txt", "type": "command"},
            "review": {"status": "approved", "riskLevel": "low", "rationale": "harmless"},
        },
    )
    transcript.apply(
        "item/autoApprovalReview/completed", {"action": {"type": "network"}, "review": {"status": "denied"}}
    )
    assert [(n.kind, n.text) for n in transcript.notices] == [
        ("auto-review", "approved touch a.txt, risk low: harmless"),
        ("auto-review", "denied network"),
    ]


def test_patch_updates_and_mcp_progress_revise_the_item_in_flight() -> None:
    transcript = Transcript()
    transcript.apply("item/started", {"item": {"id": "p", "type": "fileChange", "status": "inProgress", "changes": []}})
    transcript.apply(
        "item/started", {"item": {"id": "m", "type": "mcpToolCall", "status": "inProgress", "server": "s", "tool": "t"}}
    )
    change = {"path": "a.py", "kind": {"type": "add"}, "diff": "+x\n"}
    transcript.apply("item/fileChange/patchUpdated", {"itemId": "p", "changes": [change]})
    transcript.apply("item/mcpToolCall/progress", {"itemId": "m", "message": "40% done"})
    assert transcript.items["p"].view()["changes"] == [change]
    assert transcript.items["m"].view()["progress"] == "40% done"
    from codex_magic._render import render_item

    assert "progress: 40% done" in render_item(transcript.items["m"].view(), running=True).text
    assert "progress" not in render_item({**transcript.items["m"].view(), "status": "completed"}).text
    transcript.apply(
        "item/completed", {"item": {"id": "p", "type": "fileChange", "status": "completed", "changes": []}}
    )
    transcript.apply("item/fileChange/patchUpdated", {"itemId": "p", "changes": [change]})  # too late: ignored
    assert transcript.items["p"].view()["changes"] == []
