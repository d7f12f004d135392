"""``RunResult``: the SDK's ``TurnResult`` plus a readable display, and how it is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openai_codex import TurnResult
from openai_codex.types import ThreadItem, ThreadTokenUsage, TurnStatus
from openai_codex.types import TurnError as WireTurnError

from ._output import TurnFacts, render_facts, with_images
from ._render import Rendered, TurnInfo
from ._transcript import RUNNING, Transcript, final_response


@dataclass(slots=True, repr=False)
class RunResult(TurnResult):
    """The result of one ``%%codex`` turn: an SDK ``TurnResult`` that displays as a transcript.

    Besides the SDK's fields it keeps what the cell showed when the turn ended, so its
    display is that same transcript: the thread, the settings the turn ran with, the
    tokens of the whole turn, the elapsed time, and the notes, plan and diff of the turn.
    """

    thread_id: str | None = None
    settings: dict[str, str | None] = field(default_factory=dict)  # model, sandbox, approval, cwd
    turn_tokens: int | None = None  # tokens of all this turn's model requests
    elapsed: float | None = None  # seconds, as the cell showed them
    notices: list[tuple[str, str]] = field(default_factory=list)  # (kind, text): requests, warnings
    plan: dict[str, Any] | None = None  # the turn's latest plan
    diff: str | None = None  # the whole turn's diff
    unfinished: frozenset[str] = frozenset()  # ids of items still in flight when it ended
    # The app-server's last log lines, when it stopped during the turn (else empty).
    app_server_log: str = ""
    # --schema: the answer as a validated object (a model instance, or the JSON value).
    parsed: Any = None
    schema_error: str | None = None  # why the answer does not match the schema

    def _rendered(self) -> Rendered:
        # The function and the facts of the cell's own saved output (_output.final_render).
        items = [with_images(item.model_dump(by_alias=True, mode="json"), {}) for item in self.items]
        seconds = self.elapsed if self.elapsed is not None else (self.duration_ms or 0) / 1000
        facts = TurnFacts(
            status="running" if self.status is TurnStatus.in_progress else self.status.value,
            elapsed=seconds,
            info=TurnInfo(thread_id=self.thread_id, **self.settings),
            usage=self.usage.model_dump(by_alias=True, mode="json") if self.usage else None,
            turn_tokens=self.turn_tokens,
            error=self.error.message if self.error else None,
            notices=self.notices,
            plan=self.plan,
            diff=self.diff,
            running_ids=self.unfinished,
        )
        return render_facts(facts, items)

    def _repr_html_(self) -> str:
        return self._rendered().html

    def _repr_markdown_(self) -> str:
        return self._rendered().markdown

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self) if cycle else self._rendered().text)

    def __repr__(self) -> str:
        answer = self.final_response
        if answer and len(answer) > 60:
            answer = answer[:57] + "..."
        return (
            f"RunResult(id={self.id!r}, status={self.status.value!r}, "
            f"final_response={answer!r}, items=[{len(self.items)} items])"
        )


def build_result(transcript: Transcript) -> RunResult:
    """Build the result of a turn from its transcript, whatever its outcome."""
    turn = transcript.turn or {}
    items = transcript.result_items()
    completed = [transcript.items[i].data for i in transcript.completed_order]
    error = turn.get("error") or ({"message": transcript.error} if transcript.error else None)
    duration = turn.get("durationMs")
    if duration is None:
        duration = int(transcript.elapsed() * 1000)
    return RunResult(
        id=turn.get("id") or transcript.turn_id or "",
        status=TurnStatus.in_progress if transcript.status == RUNNING else TurnStatus(transcript.status),
        error=WireTurnError.model_validate(error) if error else None,
        started_at=turn.get("startedAt"),
        completed_at=turn.get("completedAt"),
        duration_ms=duration,
        # As the SDK: only completed messages count; text still streaming stays in items.
        final_response=final_response(completed),
        items=[ThreadItem.model_validate(item) for item in items],
        usage=ThreadTokenUsage.model_validate(transcript.usage) if transcript.usage else None,
        thread_id=transcript.thread_id,
        settings=dict(transcript.settings),
        turn_tokens=transcript.turn_tokens,
        elapsed=transcript.elapsed(),
        notices=[(notice.kind, notice.text) for notice in transcript.notices],
        plan=transcript.plan,
        diff=transcript.diff,
        unfinished=frozenset(state.id for state in transcript.ordered() if not state.done),
        app_server_log=transcript.app_server_log,
    )


def recorded(result: RunResult) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A result's fields and items as JSON, for a recording (see _replay)."""
    fields = {
        "id": result.id,
        "status": result.status.value,
        "error": result.error.model_dump(by_alias=True, mode="json") if result.error else None,
        "started_at": result.started_at,
        "completed_at": result.completed_at,
        "duration_ms": result.duration_ms,
        "final_response": result.final_response,
        "usage": result.usage.model_dump(by_alias=True, mode="json") if result.usage else None,
        "thread_id": result.thread_id,
        "settings": dict(result.settings),
        "turn_tokens": result.turn_tokens,
        "elapsed": result.elapsed,
        "notices": [list(notice) for notice in result.notices],
        "plan": result.plan,
        "diff": result.diff,
    }
    return fields, [item.model_dump(by_alias=True, mode="json") for item in result.items]


def replayed(fields: dict[str, Any], items: list[dict[str, Any]], note: str) -> RunResult:
    """The result of a recorded turn, with the types of a live one, and ``note`` among its notices."""
    error, usage = fields.get("error"), fields.get("usage")
    return RunResult(
        id=str(fields.get("id") or ""),
        status=TurnStatus(fields.get("status") or "completed"),
        error=WireTurnError.model_validate(error) if error else None,
        started_at=fields.get("started_at"),
        completed_at=fields.get("completed_at"),
        duration_ms=fields.get("duration_ms"),
        final_response=fields.get("final_response"),
        items=[ThreadItem.model_validate(item) for item in items],
        usage=ThreadTokenUsage.model_validate(usage) if usage else None,
        thread_id=fields.get("thread_id"),
        settings=dict(fields.get("settings") or {}),
        turn_tokens=fields.get("turn_tokens"),
        elapsed=fields.get("elapsed"),
        notices=[(str(kind), str(text)) for kind, text in fields.get("notices") or []] + [("replay", note)],
        plan=fields.get("plan"),
        diff=fields.get("diff"),
    )
