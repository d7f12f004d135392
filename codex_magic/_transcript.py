"""The pure fold: app-server notifications in, the turn's item state out.

A :class:`Transcript` receives ``(method, params)`` pairs in the app-server's wire
shape (camelCase JSON objects), merges deltas into the item they belong to, and
can build the SDK's ``TurnResult`` at any moment, also for a turn that failed or
was interrupted. It imports neither IPython nor ipywidgets, so it can be tested by
replaying recorded notification lists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ._reconcile import command_items_from_raw, missing_items
from ._text import redact_json

Json = dict[str, Any]

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
INTERRUPTED = "interrupted"

# Streamed command output kept per item: the completed item brings the whole output,
# so while it runs only the tail is needed (and memory stays bounded).
STREAM_TAIL_CHARS = 256 * 1024

# Deltas that append to one text field of the item named by params["itemId"].
_TEXT_DELTAS = {
    "item/agentMessage/delta": "text",
    "item/commandExecution/outputDelta": "aggregatedOutput",
    "item/plan/delta": "text",
}


# Items the model streams: a retried request streams them again, as new items.
_RESENT_ON_RETRY = ("agentMessage", "reasoning", "plan")
# Items streamed by the model; while only these are in flight, the turn waits on the model.
MODEL_ITEMS = frozenset(_RESENT_ON_RETRY)


@dataclass
class ItemState:
    """One item of the turn as far as it has arrived."""

    id: str
    type: str
    data: Json
    started_at: float
    done: bool = False
    version: int = 0
    # Streamed text per field, merged into ``data`` only when read.
    chunks: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    # Characters of streamed output dropped from the front to bound memory.
    dropped: int = 0
    prompt: bool = False  # the turn's first user message: the cell's own text

    def view(self) -> Json:
        """The item's wire dict with streamed text merged in."""
        if not self.chunks:
            return self.data
        merged = dict(self.data)
        for key, parts in self.chunks.items():
            if key.startswith("summary:") or key.startswith("content:"):
                name, index = key.split(":")
                values = list(merged.get(name) or [])
                position = int(index)
                while len(values) <= position:
                    values.append("")
                values[position] = values[position] + "".join(parts)
                merged[name] = values
            else:
                merged[key] = (merged.get(key) or "") + "".join(parts)
        return merged


@dataclass
class Notice:
    """A line the transcript shows besides items: retries, warnings, declined requests."""

    kind: str
    text: str


class Transcript:
    """Fold of one turn's notifications into item states and a result."""

    def __init__(self, *, thread_id: str | None = None, turn_id: str | None = None) -> None:
        self.thread_id = thread_id
        self.turn_id = turn_id
        # What the turn runs with, for the header: model, sandbox, cwd.
        self.settings: dict[str, str | None] = {}
        self.status = RUNNING
        self.error: str | None = None
        self.items: dict[str, ItemState] = {}
        self.completed_order: list[str] = []
        self.notices: list[Notice] = []
        self.plan: Json | None = None  # the latest turn/plan/updated
        self.diff: str | None = None  # the latest turn/diff/updated: the whole turn's diff
        self.usage: Json | None = None
        self.turn_tokens: int | None = None  # tokens of all this turn's model requests
        self._tokens_before: int | None = None
        self.turn: Json | None = None
        self.waiting: str | None = None  # what the turn waits for, when it is worth saying
        self.app_server_log = ""  # the app-server's last log lines, when it was lost mid-turn
        self.retry: str | None = None
        # When the turn started retrying without progress since (monotonic seconds).
        self.retrying_since: float | None = None
        # The last real progress: any event, except that while retrying only a completed
        # item counts (each retry sends its partial output again).
        self.progress_at = time.monotonic()
        # Items a retry made stale: each retry streams the partial message again as a new
        # item, so an item of the same type that starts replaces them.
        self._stale: dict[str, list[str]] = {}
        self._raw_calls: list[Json] = []  # the model's tool calls and their outputs, raw
        self.started = time.monotonic()
        self.started_at = time.time()  # the same moment, on the wall clock
        self.ended: float | None = None
        self.provenance: Json | None = None  # set when the turn ends: see _provenance
        self.version = 0
        self.first_texts = 0  # streams (a message, a summary, an output) that got their first text

    # -- the fold -------------------------------------------------------------------

    def apply(self, method: str, params: Json) -> None:
        """Fold one notification into the state."""
        self.version += 1
        if self.retrying_since is None:
            if method not in ("error", "warning"):
                self.progress_at = time.monotonic()
        elif method in ("item/completed", "turn/completed"):
            self.retry = self.retrying_since = self.waiting = None  # progress: the retry got further
            self.progress_at = time.monotonic()
        if method in _TEXT_DELTAS:
            self._append(params, _TEXT_DELTAS[method], params.get("delta", ""))
        elif method == "item/reasoning/summaryTextDelta":
            self._append(params, f"summary:{params.get('summaryIndex', 0)}", params.get("delta", ""))
        elif method == "item/reasoning/textDelta":
            self._append(params, f"content:{params.get('contentIndex', 0)}", params.get("delta", ""))
        elif method == "item/started":
            self._start(params["item"])
        elif method == "item/completed":
            self._complete(params["item"])
        elif method == "thread/tokenUsage/updated":
            self._usage(params.get("tokenUsage") or {})
        elif method == "error":
            self._error(params)
        elif method == "turn/completed":
            self._finish(params.get("turn") or {})
        elif method == "turn/started":
            self.turn_id = (params.get("turn") or {}).get("id", self.turn_id)
        elif method == "turn/plan/updated":
            self.plan = params
        elif method == "turn/diff/updated":
            self.diff = params.get("diff")
        elif method == "warning":
            self.notices.append(Notice("warning", str(params.get("message", params))))
        elif method == "item/fileChange/patchUpdated":
            self._revise(params, "changes", params.get("changes"))
        elif method == "item/mcpToolCall/progress":
            self._revise(params, "progress", params.get("message"))
        elif method == "rawResponseItem/completed":
            self._raw(params.get("item") or {})
        elif method == "item/autoApprovalReview/completed":
            self.notices.append(Notice("auto-review", _review_text(params)))

    def note(self, kind: str, text: str) -> None:
        """Add a line that is not an item, such as a declined approval request."""
        self.version += 1
        self.notices.append(Notice(kind, text))

    def abandon(self, status: str, error: str | None = None) -> None:
        """End the turn without a ``turn/completed``: interrupted, timed out or transport lost."""
        if self.status != RUNNING:
            return
        self.version += 1
        self.status = status
        self.error = error
        self.ended = time.monotonic()

    def _item(self, item_id: str) -> ItemState | None:
        return self.items.get(item_id)

    def _append(self, params: Json, key: str, delta: str) -> None:
        state = self._item(params.get("itemId", ""))
        if state is None or state.done:
            return
        parts = state.chunks.setdefault(key, [])
        if not parts and delta:
            self.first_texts += 1
        parts.append(delta)
        size = state.sizes[key] = state.sizes.get(key, 0) + len(delta)
        if key == "aggregatedOutput" and size > 2 * STREAM_TAIL_CHARS:
            text = "".join(parts)
            state.dropped += len(text) - STREAM_TAIL_CHARS
            parts[:] = [text[-STREAM_TAIL_CHARS:]]
            state.sizes[key] = STREAM_TAIL_CHARS
        state.version += 1

    def _revise(self, params: Json, key: str, value: Any) -> None:
        """Replace one field of an item still in flight (a patch as it grows, a progress message)."""
        state = self._item(params.get("itemId", ""))
        if state is None or state.done or value is None:
            return
        state.data = {**state.data, key: value}
        state.version += 1

    def _start(self, item: Json) -> None:
        item_id = item.get("id", f"item-{len(self.items)}")
        if item_id in self.items:
            return
        for stale in self._stale.pop(item.get("type", "unknown"), []):
            self.items.pop(stale, None)
        self.items[item_id] = self._new_state(item_id, item)

    def _new_state(self, item_id: str, item: Json) -> ItemState:
        kind = item.get("type", "unknown")
        # The first user message is the cell's prompt; later ones were sent while the turn ran.
        prompt = kind == "userMessage" and not any(s.type == "userMessage" for s in self.items.values())
        return ItemState(id=item_id, type=kind, data=item, started_at=time.monotonic(), prompt=prompt)

    def _complete(self, item: Json) -> None:
        item = redact_json(item)  # what the result keeps shows no secret either
        item_id = item.get("id", f"item-{len(self.items)}")
        state = self.items.get(item_id)
        if state is None:
            state = self.items[item_id] = self._new_state(item_id, item)
        # The completed item is authoritative: output printed before item/started
        # only arrives here, so it replaces what was streamed.
        state.data = item
        state.chunks = {}
        state.sizes = {}
        state.dropped = 0
        state.version += 1
        if not state.done:
            state.done = True
            self.completed_order.append(item_id)

    def reconcile(self, raw_items: list[Json]) -> None:
        """Raw model items read after the turn (its rollout): commands it never reported."""
        for item in raw_items:
            if item.get("type") in ("function_call", "function_call_output") and item not in self._raw_calls:
                self.version += 1
                self._raw(item)

    def _raw(self, item: Json) -> None:
        """A raw model item: rebuild a command the app-server ran but did not report.

        A command the sandbox stops within its first 150 ms gets no item events from
        app-server 0.163 (openai/codex#47433), though the model receives its output; the
        raw tool call and its output still arrive, and carry the item's id.
        """
        kind = item.get("type")
        if kind not in ("function_call", "function_call_output"):
            return
        self._raw_calls.append(item)
        call_id = item.get("call_id")
        if kind != "function_call_output" or call_id in self.items:
            return
        rebuilt = command_items_from_raw(self._raw_calls, cwd=self.settings.get("cwd") or "")
        for missing in missing_items(self.items, rebuilt):
            if missing.get("id") == call_id:
                self._complete(missing)

    def _usage(self, usage: Json) -> None:
        self.usage = usage
        total = (usage.get("total") or {}).get("totalTokens", 0)
        if self._tokens_before is None:
            self._tokens_before = total - (usage.get("last") or {}).get("totalTokens", 0)
        self.turn_tokens = total - self._tokens_before

    def _error(self, params: Json) -> None:
        message = (params.get("error") or {}).get("message") or "unknown error"
        if params.get("willRetry"):
            self.retry = message
            self.waiting = f"retrying: {message}"
            if self.retrying_since is None:
                self.retrying_since = time.monotonic()
            for state in self.items.values():
                if not state.done and state.type in _RESENT_ON_RETRY:
                    self._stale.setdefault(state.type, []).append(state.id)
        else:
            self.error = message

    def _finish(self, turn: Json) -> None:
        self.turn = turn
        self.status = turn.get("status", COMPLETED)
        if isinstance(self.status, dict):  # defensive: a future tagged status
            self.status = next(iter(self.status), COMPLETED)
        error = turn.get("error")
        if error:
            self.error = error.get("message") or self.error
        self.retry = self.retrying_since = self.waiting = None
        self.ended = time.monotonic()

    # -- reading --------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the turn has ended, however it ended."""
        return self.status != RUNNING

    def elapsed(self) -> float:
        """Seconds since the turn started, frozen when it ends."""
        return (self.ended or time.monotonic()) - self.started

    def waiting_on_model(self) -> bool:
        """Whether nothing but the model is at work: no command, tool or other item in flight."""
        return all(state.done or state.type in MODEL_ITEMS for state in self.items.values())

    def ordered(self) -> list[ItemState]:
        """Items in the order they started."""
        return list(self.items.values())

    def result_items(self) -> list[Json]:
        """Completed items in completion order, then those still in flight."""
        in_flight = [s for s in self.ordered() if not s.done]
        return [self.items[i].data for i in self.completed_order] + [redact_json(s.view()) for s in in_flight]


def final_response(items: list[Json]) -> str | None:
    """The SDK's rule: the last final-answer message, else the last message without a phase."""
    fallback = None
    for item in reversed(items):
        if item.get("type") != "agentMessage":
            continue
        if item.get("phase") == "final_answer":
            return item.get("text")
        if fallback is None and item.get("phase") is None:
            fallback = item.get("text")
    return fallback


def _review_text(params: Json) -> str:
    """What the auto-reviewer decided on a request: the action, the verdict, the risk, why."""
    action = params.get("action")
    action = action if isinstance(action, dict) else {}
    what = action.get("command") or action.get("type") or "a request"
    review = params.get("review")
    review = review if isinstance(review, dict) else {}
    verdict = str(review.get("status") or "reviewed")
    risk = f", risk {review['riskLevel']}" if review.get("riskLevel") else ""
    why = f": {review['rationale']}" if review.get("rationale") else ""
    return f"{verdict} {what}{risk}{why}"
