"""The runner's hand-off from the pump thread to the cell's thread, with a fake turn handle."""

from __future__ import annotations

import threading
from typing import Any, Iterator

from openai_codex.generated.v2_all import AgentMessageDeltaNotification
from openai_codex.models import Notification, UnknownNotification

from codex_magic._runner import TurnRun
from codex_magic._session import TurnSettings


class _Handle:
    """Yields the notifications, pausing at each event so the test can drain meanwhile."""

    def __init__(self, notifications: list[Notification], pauses: dict[int, threading.Event]) -> None:
        self.notifications, self.pauses = notifications, pauses
        self.reached: dict[int, threading.Event] = {i: threading.Event() for i in pauses}

    def stream(self) -> Iterator[Notification]:
        for position, notification in enumerate(self.notifications):
            if position in self.pauses:
                self.reached[position].set()
                self.pauses[position].wait(5)
            yield notification


def _delta(text: str, item: str = "m") -> Notification:
    payload = AgentMessageDeltaNotification(delta=text, item_id=item, thread_id="t", turn_id="u")
    return Notification(method="item/agentMessage/delta", payload=payload)


def _other(method: str, params: dict[str, Any]) -> Notification:
    return Notification(method=method, payload=UnknownNotification(params=params))


def test_deltas_handed_over_in_runs_arrive_whole_and_in_order() -> None:
    words = [f"w{i} " for i in range(300)]
    notifications = [_other("item/started", {"item": {"id": "m", "type": "agentMessage", "text": ""}})]
    notifications += [_delta(word) for word in words[:100]]
    notifications += [_other("item/started", {"item": {"id": "n", "type": "agentMessage", "text": ""}})]
    notifications += [_delta(word, "n") for word in words[100:200]] + [_delta(word) for word in words[200:]]
    pauses = {i: threading.Event() for i in (30, 101, 150, 250)}
    run = TurnRun(None, "prompt", TurnSettings(cwd=".", sandbox="read-only"), None)  # type: ignore[arg-type]
    run.handle = _Handle(notifications, pauses)  # type: ignore[assignment]
    pump = threading.Thread(target=run._pump)
    pump.start()
    for position, resume in pauses.items():
        # Drain while a run is still being added to: later deltas must not be lost.
        assert run.handle.reached[position].wait(5)  # type: ignore[union-attr]
        run._drain()
        resume.set()
    pump.join(5)
    run._drain()
    items = run.transcript.items
    assert items["m"].view()["text"] == "".join(words[:100] + words[200:])
    assert items["n"].view()["text"] == "".join(words[100:200])
