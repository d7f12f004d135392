"""The runner's hand-off from the pump thread to the cell's thread, with a fake turn handle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from openai_codex.generated.v2_all import AgentMessageDeltaNotification
from openai_codex.models import Notification, UnknownNotification

from codex_magic._runner import ITEM_INTERVAL, MIN_INTERVAL, TurnRun
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


def test_the_first_text_of_a_message_is_shown_at_once() -> None:
    notifications = [
        _other("item/started", {"item": {"id": "m", "type": "agentMessage", "text": ""}}),
        _delta("First"),
        _delta(" words"),
    ]
    run = TurnRun(None, "prompt", TurnSettings(cwd=".", sandbox="read-only"), lambda: None)  # type: ignore[arg-type]
    run.handle = _Started(notifications)  # type: ignore[assignment]
    run._last_render = 100.0
    run._pump()
    run._drain()
    # The message's first text: no wait for the throttle (it was MIN_INTERVAL, 150 ms measured).
    assert run._next_render() == 100.0
    run._rendered_version, run._rendered_first_texts = run.transcript.version, run.transcript.first_texts
    run._last_render = 200.0
    run.handle = _Started([_delta(" more")])  # type: ignore[assignment]
    run._pump()
    run._drain()
    assert run._next_render() == 200.0 + MIN_INTERVAL  # later text keeps to the pace


class _Session:
    """Records the order of what the runner does; ``fail`` makes turn/start raise."""

    def __init__(self, ready: bool, fail: bool = False) -> None:
        self.ready, self.fail = ready, fail
        self.calls: list[str] = []
        self.thread_model = self.thread_effort = self.app_server_version = self.rollout = None
        self.raw_events = True

    def set_request_sink(self, sink: object) -> None:
        self.calls.append("sink" if sink else "no sink")

    def claim(self, owner: object) -> None:
        pass

    def release(self, owner: object) -> None:
        pass

    def start_turn(self, prompt: str, settings: TurnSettings, **_options: Any) -> tuple[object, list[str]]:
        self.calls.append("turn/start")
        if self.fail:
            raise RuntimeError("no app-server")
        return _Started([]), []

    def interrupt(self, handle: object) -> bool:
        self.calls.append("interrupt")
        return True


class _Started(_Handle):
    thread_id, id = "t", "u"

    def __init__(self, notifications: list[Notification]) -> None:
        super().__init__(notifications, {})


class _RecordingView:
    answers_while_blocking = False

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        calls.append("view")

    def update(self, transcript: Any) -> None:
        pass

    def finish(self, transcript: Any) -> None:
        self.calls.append(f"finish: {transcript.status}")

    def set_stop(self, stop: Any) -> None:
        pass

    def set_steer(self, steer: Any) -> None:
        pass

    def set_run_stop(self, stop: Any) -> None:
        pass

    def go_live(self) -> None:
        pass


@pytest.mark.parametrize(
    ("ready", "order"), [(True, ["sink", "turn/start", "view"]), (False, ["view", "sink", "turn/start"])]
)
def test_the_view_is_made_while_a_ready_app_server_starts_the_turn(ready: bool, order: list[str]) -> None:
    session = _Session(ready)
    run = TurnRun(session, "prompt", TurnSettings(cwd=".", sandbox="read-only"), lambda: _RecordingView(session.calls))  # type: ignore[arg-type]
    run.begin()
    assert session.calls == order and run._view_made.is_set()


@pytest.mark.parametrize("ready", [True, False])
def test_a_turn_that_cannot_start_is_shown_failed(ready: bool) -> None:
    session = _Session(ready, fail=True)
    run = TurnRun(session, "prompt", TurnSettings(cwd=".", sandbox="read-only"), lambda: _RecordingView(session.calls))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no app-server"):
        run.begin()
    started = ["sink", "turn/start", "no sink"]
    assert session.calls == (started + ["view"] if ready else ["view"] + started) + ["finish: failed"]


def test_a_started_turn_is_interrupted_when_its_view_cannot_be_made() -> None:
    session = _Session(ready=True)

    def broken() -> Any:
        raise RuntimeError("no widgets")

    run = TurnRun(session, "prompt", TurnSettings(cwd=".", sandbox="read-only"), broken)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no widgets"):
        run.begin()
    assert session.calls == ["sink", "turn/start", "no sink", "interrupt"]


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
