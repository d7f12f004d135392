"""The runner's hand-off from the pump thread to the cell's thread, with a fake turn handle."""

from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest

from openai_codex.generated.v2_all import AgentMessageDeltaNotification
from openai_codex.models import Notification, UnknownNotification

from codex_magic._runner import ITEM_INTERVAL, MIN_INTERVAL, TurnRun, _Starting
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
    run = TurnRun(None, "prompt", TurnSettings(cwd=".", sandbox="read-only"), lambda: None)  # type: ignore[arg-type]
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


def test_a_completed_item_is_shown_sooner_than_the_throttle_allows() -> None:
    item = {"id": "c", "type": "commandExecution", "command": "ls"}
    notifications = [
        _other("item/started", {"item": item}),
        _other("item/completed", {"item": {**item, "exitCode": 0}}),
        _other("turn/diff/updated", {"diff": ""}),
    ]
    pauses = {1: threading.Event(), 2: threading.Event()}
    run = TurnRun(None, "prompt", TurnSettings(cwd=".", sandbox="read-only"), lambda: None)  # type: ignore[arg-type]
    run.handle = _Handle(notifications, pauses)  # type: ignore[assignment]
    run._last_render = 100.0
    pump = threading.Thread(target=run._pump)
    pump.start()
    assert run.handle.reached[1].wait(5)  # type: ignore[union-attr]
    run._drain()
    assert not run._flush.is_set()
    assert run._next_render() == 100.0 + MIN_INTERVAL  # a change: the throttle's pace
    pauses[1].set()
    assert run.handle.reached[2].wait(5)  # type: ignore[union-attr]
    assert run._flush.is_set()  # the completion wakes the throttled loop
    run._drain()
    assert run._next_render() == 100.0 + ITEM_INTERVAL < 100.0 + MIN_INTERVAL
    pauses[2].set()
    pump.join(5)


class _SlowSession:
    """Starts a turn after ``release`` is set; records interrupts."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.release, self.error = threading.Event(), error
        self.interrupted: list[object] = []
        self.interrupt_called = threading.Event()

    def start_turn(self, prompt: str, settings: TurnSettings) -> tuple[object, list[str]]:
        self.release.wait(5)
        if self.error is not None:
            raise self.error
        return "handle", ["a notice"]

    def interrupt(self, handle: object) -> bool:
        self.interrupted.append(handle)
        self.interrupt_called.set()
        return True


def test_a_turn_started_while_the_view_is_made_is_interrupted_if_nobody_follows_it() -> None:
    settings = TurnSettings(cwd=".", sandbox="read-only")
    session = _SlowSession()
    starting = _Starting(session, "prompt", settings)  # type: ignore[arg-type]
    starting.abandon()  # before the turn has started: interrupted once it has
    assert not session.interrupted
    session.release.set()
    assert session.interrupt_called.wait(5) and session.interrupted == ["handle"]

    session = _SlowSession()
    starting = _Starting(session, "prompt", settings)  # type: ignore[arg-type]
    session.release.set()
    assert starting.result() == ("handle", ["a notice"])
    assert not session.interrupted
    starting.abandon()  # after: at once
    assert session.interrupted == ["handle"]

    session = _SlowSession(error=RuntimeError("no app-server"))
    starting = _Starting(session, "prompt", settings)  # type: ignore[arg-type]
    session.release.set()
    with pytest.raises(RuntimeError, match="no app-server"):
        starting.result()
    starting.abandon()
    assert not session.interrupted


class _CountingView:
    def __init__(self) -> None:
        self.updates = 0

    def update(self, transcript: Any) -> None:
        self.updates += 1


def test_early_refreshes_for_completed_items_keep_to_the_average_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("codex_magic._runner.time.monotonic", lambda: clock[0])
    run = TurnRun(None, "prompt", TurnSettings(cwd=".", sandbox="read-only"), lambda: None)  # type: ignore[arg-type]
    run.view = view = _CountingView()  # type: ignore[assignment]
    run._render(force=True)
    # An item completes every 50 ms for 10 s: far more often than refreshes may come.
    seconds, step, shown_after = 10.0, 0.01, []
    for tick in range(1, int(seconds / step) + 1):
        clock[0] = 1000.0 + tick * step
        if tick % 5 == 0:
            item = {"id": f"c{tick}", "type": "commandExecution", "command": "ls"}
            run.transcript.apply("item/started", {"item": item})
            run.transcript.apply("item/completed", {"item": {**item, "exitCode": 0}})
            completed_at = clock[0]
        before = view.updates
        run._render()
        if view.updates > before:
            shown_after.append(clock[0] - completed_at)
    assert view.updates - 1 <= seconds / MIN_INTERVAL + 4  # the average pace, and one short burst
    assert max(shown_after) <= MIN_INTERVAL + step  # never later than the plain throttle

    # A quiet turn: the next completion is shown ITEM_INTERVAL after the last refresh.
    clock[0] += 5.0
    run._render()
    last = clock[0]
    item = {"id": "late", "type": "commandExecution", "command": "ls"}
    run.transcript.apply("item/started", {"item": item})
    run.transcript.apply("item/completed", {"item": {**item, "exitCode": 0}})
    assert run._next_render() == pytest.approx(last + ITEM_INTERVAL)
