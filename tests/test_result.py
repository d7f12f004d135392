"""Pure tier: ``build_result`` on replayed transcripts, and ``RunResult``'s display."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from IPython.lib.pretty import pretty
from openai_codex import TurnResult
from openai_codex.types import ThreadItem, ThreadTokenUsage, TurnStatus

from codex_magic._render import esc
from codex_magic._result import RunResult, build_result
from codex_magic._transcript import FAILED, INTERRUPTED, Transcript

from .record_notifications import COMMAND_ANSWER, MARKUP, STREAMED_TEXT

DATA = Path(__file__).resolve().parent / "data"
RECORDINGS = ["streamed_message", "command", "http_500", "interrupted", "markup"]

HTTP_500_MESSAGE = "We\u2019re currently experiencing high demand, which may cause temporary errors."

EXPECTED: dict[str, dict[str, Any]] = {
    "streamed_message": {
        "status": TurnStatus.completed,
        "types": ["userMessage", "agentMessage"],
        "final": STREAMED_TEXT,
        "usage": True,
    },
    "command": {
        "status": TurnStatus.completed,
        "types": ["userMessage", "reasoning", "commandExecution", "agentMessage"],
        "final": COMMAND_ANSWER,
        "usage": True,
    },
    "http_500": {"status": TurnStatus.failed, "types": ["userMessage"], "final": None, "usage": False},
    "interrupted": {
        "status": TurnStatus.interrupted,
        "types": ["userMessage", "agentMessage"],
        "final": "skip",  # see test_interrupted_final_response_ignores_the_partial_message
        "usage": False,
    },
    "markup": {
        "status": TurnStatus.completed,
        "types": ["userMessage", "agentMessage", "commandExecution", "agentMessage"],
        "final": f"Here is markup: {MARKUP}",
        "usage": True,
    },
}

ROOT_CLASSES = {
    "userMessage": "UserMessageThreadItem",
    "agentMessage": "AgentMessageThreadItem",
    "reasoning": "ReasoningThreadItem",
    "commandExecution": "CommandExecutionThreadItem",
}


def load(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(m, p) for m, p in json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))]


def replay(name: str, *, stop_before: str | None = None) -> Transcript:
    """Fold a recording; with ``stop_before``, stop at the first notification of that method."""
    transcript = Transcript()
    for method, params in load(name):
        if method == stop_before:
            break
        transcript.apply(method, params)
    return transcript


def sdk_result(name: str) -> TurnResult:
    """What the SDK's own collector makes of the same notifications (its private helpers)."""
    from openai_codex._run import _collect_turn_result
    from openai_codex.client import CodexClient

    client = CodexClient()  # not started: only its notification parser is used
    entries = load(name)
    notifications = [client._coerce_notification(m, p) for m, p in entries]
    return _collect_turn_result(iter(notifications), turn_id=entries[0][1]["turn"]["id"])


def field_values(result: TurnResult) -> dict[str, Any]:
    return {f.name: getattr(result, f.name) for f in dataclasses.fields(TurnResult)}


# -- build_result on each recording ----------------------------------------------------


@pytest.mark.parametrize("name", RECORDINGS)
def test_build_result_types(name: str) -> None:
    expected = EXPECTED[name]
    result = build_result(replay(name))
    assert isinstance(result, RunResult)
    assert isinstance(result, TurnResult)
    assert isinstance(result.status, TurnStatus)
    assert result.status == expected["status"]
    assert all(isinstance(item, ThreadItem) for item in result.items)
    assert [item.root.type for item in result.items] == expected["types"]
    assert [type(item.root).__name__ for item in result.items] == [ROOT_CLASSES[t] for t in expected["types"]]
    if expected["final"] != "skip":
        assert result.final_response == expected["final"]
    if expected["usage"]:
        assert isinstance(result.usage, ThreadTokenUsage)
        assert result.usage.last.total_tokens == 120
        assert result.usage.model_context_window == 258400
    else:
        assert result.usage is None


@pytest.mark.parametrize("name", RECORDINGS)
def test_build_result_takes_the_turn_metadata(name: str) -> None:
    turn = load(name)[-1][1]["turn"]
    result = build_result(replay(name))
    assert result.id == turn["id"]
    assert result.duration_ms == turn["durationMs"]
    assert result.started_at == turn["startedAt"]
    assert result.completed_at == turn["completedAt"]


@pytest.mark.parametrize("name", ["streamed_message", "command", "markup"])
def test_completed_turns_equal_what_the_sdk_returns(name: str) -> None:
    """For a completed turn, RunResult holds exactly the SDK's TurnResult values."""
    assert field_values(build_result(replay(name))) == field_values(sdk_result(name))


def test_interrupted_turn_keeps_the_sdk_items_then_the_partial_one() -> None:
    ours = build_result(replay("interrupted"))
    theirs = sdk_result("interrupted")
    assert theirs.status == ours.status == TurnStatus.interrupted
    assert ours.items[: len(theirs.items)] == theirs.items
    partial = ours.items[-1].root
    assert type(partial).__name__ == "AgentMessageThreadItem"
    streamed = "".join(p["delta"] for m, p in load("interrupted") if m == "item/agentMessage/delta")
    assert partial.text == streamed != ""
    assert ours.error is None


def test_interrupted_final_response_ignores_the_partial_message() -> None:
    assert sdk_result("interrupted").final_response is None
    assert build_result(replay("interrupted")).final_response is None


def test_failed_turn_error() -> None:
    result = build_result(replay("http_500"))
    assert result.status == TurnStatus.failed
    assert result.error is not None
    assert result.error.message == HTTP_500_MESSAGE
    assert result.error.codex_error_info is not None
    assert result.final_response is None


def test_abandoned_turn_failed() -> None:
    """Transport lost mid-stream: no turn/completed, the partial state is kept."""
    transcript = replay("command", stop_before="item/completed")
    transcript.abandon(FAILED, "lost the codex app-server: EOF")
    result = build_result(transcript)
    assert result.status == TurnStatus.failed
    assert result.error is not None and result.error.message == "lost the codex app-server: EOF"
    assert result.id == load("command")[0][1]["turn"]["id"]
    assert result.completed_at is None and result.started_at is None
    assert isinstance(result.duration_ms, int) and result.duration_ms >= 0
    assert [item.root.type for item in result.items] == ["userMessage"]
    assert result.usage is None


def test_abandoned_turn_interrupted_keeps_in_flight_items() -> None:
    """Timed out while the answer streams: everything so far, the partial answer last."""
    transcript = Transcript()
    entries = load("command")
    last_delta = max(i for i, (m, _) in enumerate(entries) if m == "item/agentMessage/delta")
    for method, params in entries[:last_delta]:
        transcript.apply(method, params)
    transcript.abandon(INTERRUPTED, "timed out after 5 s (--timeout)")
    result = build_result(transcript)
    assert result.status == TurnStatus.interrupted
    assert result.error is not None and result.error.message == "timed out after 5 s (--timeout)"
    assert [item.root.type for item in result.items] == ["userMessage", "reasoning", "commandExecution", "agentMessage"]
    partial = result.items[-1].root.text
    assert COMMAND_ANSWER.startswith(partial) and partial != COMMAND_ANSWER
    assert isinstance(result.usage, ThreadTokenUsage)


def test_abandoned_without_reason_has_no_error() -> None:
    transcript = Transcript(turn_id="turn-x")
    transcript.abandon(INTERRUPTED)
    result = build_result(transcript)
    assert result.error is None
    assert result.id == "turn-x"
    assert result.items == [] and result.final_response is None


def test_build_result_mid_turn() -> None:
    result = build_result(replay("streamed_message", stop_before="item/completed"))
    assert result.status == TurnStatus.in_progress


# -- RunResult: the dataclass and its display ------------------------------------------


def test_run_result_keeps_the_sdk_fields_and_adds_only_fields_with_defaults() -> None:
    sdk = [f.name for f in dataclasses.fields(TurnResult)]
    assert sdk == [
        "id",
        "status",
        "error",
        "started_at",
        "completed_at",
        "duration_ms",
        "final_response",
        "items",
        "usage",
    ]
    ours = dataclasses.fields(RunResult)
    assert [f.name for f in ours[: len(sdk)]] == sdk
    assert all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING for f in ours[len(sdk) :]
    )
    assert issubclass(RunResult, TurnResult)
    # Built from the SDK's fields alone, it still displays.
    plain_result = RunResult(**field_values(build_result(replay("command"))))
    assert pretty(plain_result).startswith("[codex] \u2714 completed")


THREAD = "01a23228-870b-7231-9503-a2b563aae282"
SETTINGS = {"model": "gpt-5-codex", "sandbox": "read-only", "approval": "untrusted", "cwd": "/work/project"}


def _cell_transcript(name: str) -> Transcript:
    transcript = Transcript(thread_id=THREAD)
    transcript.settings.update(SETTINGS)
    for method, params in load(name):
        transcript.apply(method, params)
        if method == "turn/started":
            transcript.note("declined", "run a command outside the sandbox: touch /x (make a file): the user")
    transcript.abandon(INTERRUPTED)  # a no-op for a turn that completed
    return transcript


@pytest.mark.parametrize("name", RECORDINGS)
def test_result_display_is_what_the_cell_showed_when_the_turn_ended(name: str) -> None:
    from codex_magic._view import final_render, header

    transcript = _cell_transcript(name)
    shown = final_render(transcript)
    result = build_result(transcript)
    # The same header: thread, settings, token words and numbers, elapsed time.
    assert pretty(result).startswith(header(transcript).text + "\n")
    assert result._rendered() == shown
    if transcript.usage:
        assert "this turn (all its model requests)" in shown.text and "last request" not in shown.text
    for fact in (
        "thread 63aae282",
        "gpt-5-codex",
        "sandbox read-only",
        "approval untrusted",
        f"{transcript.elapsed():.1f} s",
    ):
        assert fact in result._repr_html_() and fact in result._repr_markdown_()


def test_result_elapsed_is_the_cells_not_the_servers() -> None:
    transcript = _cell_transcript("command")
    transcript.ended = transcript.started + 7.25  # the cell's clock; the server's durationMs differs
    result = build_result(transcript)
    assert result.elapsed == 7.25 and result.duration_ms != 7250
    assert "7.2 s" in pretty(result).split("\n")[0]


@pytest.mark.parametrize("name", RECORDINGS)
def test_repr_is_short(name: str) -> None:
    result = build_result(replay(name))
    text = repr(result)
    assert text.startswith("RunResult(id=")
    assert len(text) < 200
    assert f"status={result.status.value!r}" in text
    assert f"items=[{len(result.items)} items]" in text
    assert "\n" not in text


def test_repr_shortens_a_long_answer() -> None:
    result = build_result(replay("streamed_message"))
    assert len(STREAMED_TEXT) > 60
    assert f"final_response={STREAMED_TEXT[:57] + '...'!r}" in repr(result)
    short = dataclasses.replace(result, final_response="ok")
    assert "final_response='ok'" in repr(short)
    assert type(short) is RunResult


@pytest.mark.parametrize("name", ["command", "markup"])
def test_displays_show_answer_and_command(name: str) -> None:
    result = build_result(replay(name))
    from codex_magic._render import shown_command

    command = next(item.root.command for item in result.items if item.root.type == "commandExecution")
    command = shown_command(command)
    answer = result.final_response
    assert answer
    markup = result._repr_html_()
    assert esc(answer) in markup
    assert esc(command) in markup
    text = pretty(result)
    assert answer in text
    assert command in text
    assert text.startswith("[codex] \u2714 completed")


def test_markup_result_html_is_inert() -> None:
    markup = build_result(replay("markup"))._repr_html_()
    assert "<script" not in markup and "<img" not in markup
    assert "&amp;amp;" in markup


def test_failed_result_display_shows_the_error() -> None:
    result = build_result(replay("http_500"))
    assert esc(HTTP_500_MESSAGE) in result._repr_html_()
    text = pretty(result)
    assert text.startswith("[codex] \u2716 failed")
    assert f"error: {HTTP_500_MESSAGE}" in text


def test_interrupted_result_display_shows_the_partial_message() -> None:
    result = build_result(replay("interrupted"))
    text = pretty(result)
    assert text.startswith("[codex] \u25a0 interrupted")
    assert "word0 word1" in text
    assert "word0 word1" in result._repr_html_()


def test_pretty_in_a_cycle_falls_back_to_repr() -> None:
    result = build_result(replay("command"))

    class Printer:
        def __init__(self) -> None:
            self.out: list[str] = []

        def text(self, value: str) -> None:
            self.out.append(value)

    printer = Printer()
    result._repr_pretty_(printer, True)
    assert printer.out == [repr(result)]
