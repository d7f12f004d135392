"""Running one turn: pump the SDK's stream, fold it, refresh the view at a bounded rate.

A pump thread reads ``TurnHandle.stream()`` into an inbox; the cell's own thread
folds the inbox into the :class:`Transcript` and refreshes the view about every
``MIN_INTERVAL`` seconds, sooner (``ITEM_INTERVAL``) when an item completes, and at
once when the turn ends. The same loop runs blocking (``run_blocking``: terminal
IPython, ``run_cell_magic``) or awaited (``run_async``: a kernel cell, so widget
messages keep flowing during the turn). Kernel interrupts become ``turn/interrupt``;
the partial result is kept, and commands the interrupt left running are stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, cast

from openai_codex import TurnHandle
from openai_codex.errors import CodexRpcError
from openai_codex.models import Notification, UnknownNotification

from . import _sdk
from ._errors import AppServerError, OutputSchemaError, TurnFailedError, TurnInterruptedError
from ._interrupts import InterruptLatch, ToMainThread
from ._kernel import KernelAccess, interrupt
from ._kernel_tools import READ_ONLY, ToolReply
from ._provenance import record
from ._requests import ACCEPT, ACCEPT_FOR_TURN, CANCEL, TOOL_CALL, Request, decline_response
from ._result import RunResult, build_result
from ._schema import OutputSchema, SchemaMismatch
from ._session import CodexSession, TurnNotStarted, TurnSettings
from ._text import one_line
from ._transcript import COMPLETED, FAILED, INTERRUPTED, Transcript, final_response

Json = dict[str, Any]

MIN_INTERVAL = 1 / 3  # seconds between view refreshes: 3 a second, each sending a few updates
# A completed item is what the user waits for: it is shown sooner, ITEM_INTERVAL after
# the last refresh, while the app-server goes on to the next step. Such early refreshes
# come out of a budget of BURST, which refills at the pace of MIN_INTERVAL, so over any
# stretch of time refreshes average at most one per MIN_INTERVAL.
ITEM_INTERVAL = 0.1
# The first text of a message (or of a summary, or of a command's output) is shown at once,
# out of the same budget: the wait for it is the one the user feels most.
BURST = 2
CLOCK_INTERVAL = 1.0  # refresh at least this often so the elapsed time ticks
SETTLE_TIMEOUT = 2.0  # how long an interrupted turn may take to report back
DEADLINE_SLACK = 0.005  # wake just after a deadline, so that it has passed
WAIT_NOTICE = 10.0  # seconds without news from the model before the view says it waits


class View(Protocol):
    """What the runner needs from a view."""

    # Whether the view can take answers while the cell's thread blocks (a terminal
    # prompt can; a widget's clicks wait for the event loop, so only an awaited cell).
    answers_while_blocking: bool

    def update(self, transcript: Transcript) -> None: ...

    def finish(self, transcript: Transcript) -> None: ...

    def set_stop(self, stop: Callable[[], None] | None) -> None: ...

    def set_steer(self, steer: Callable[[str], None] | None) -> None: ...

    def set_run_stop(self, stop: Callable[[], None] | None) -> None: ...

    def go_live(self) -> None:
        """Show the controls the user answers with from now on (on the cell's thread)."""
        ...

    def shown(self, timeout: float) -> bool:
        """Whether someone sees the view and can answer; may wait up to ``timeout`` to know."""
        ...

    def ask(self, pending: Pending) -> None: ...

    def withdraw(self, pending: Pending) -> None: ...


class _Signal:
    """A flag the pump thread raises and the cell's thread waits on, blocking or awaited."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def set(self) -> None:
        if self._flag.is_set():
            return
        self._flag.set()
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self.wake)
            except RuntimeError:  # the loop is closed: nobody is waiting
                pass

    def wake(self) -> None:
        """Wake an awaiting waiter, on the loop's thread."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self) -> None:
        self._flag.clear()

    def is_set(self) -> bool:
        return self._flag.is_set()

    def wait(self, timeout: float) -> None:
        self._flag.wait(timeout)

    async def wait_async(self, timeout: float) -> None:
        # Not asyncio.wait_for: on Python < 3.12 it swallows a cancellation that
        # arrives as the wait completes, and the kernel's interrupt is a cancellation.
        if self._flag.is_set() or self._loop is None:
            return
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout, self.wake)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


class _Delta(Protocol):
    """What the payloads of the ``_DELTAS`` methods have in common."""

    item_id: str
    delta: str


# Delta notifications (most of the traffic) and the index field each one carries.
_DELTAS = {
    "item/agentMessage/delta": None,
    "item/commandExecution/outputDelta": None,
    "item/plan/delta": None,
    "item/reasoning/summaryTextDelta": ("summary_index", "summaryIndex"),
    "item/reasoning/textDelta": ("content_index", "contentIndex"),
}


def wire(notification: Notification) -> tuple[str, Json]:
    """A notification as ``(method, params)`` in the app-server's JSON shape."""
    method, payload = notification.method, notification.payload
    if method in _DELTAS and not isinstance(payload, UnknownNotification):
        # Skip the generic model dump for deltas: a direct read is ~20x cheaper.
        delta = cast(_Delta, payload)  # so the method says; mypy cannot infer it from the method
        params: Json = {"itemId": delta.item_id, "delta": delta.delta}
        index = _DELTAS[method]
        if index is not None:
            params[index[1]] = getattr(payload, index[0])
        return method, params
    if isinstance(payload, UnknownNotification):
        return method, dict(payload.params or {})
    return method, payload.model_dump(by_alias=True, mode="json", exclude_none=True)


class _Run:
    """Consecutive deltas to one field, handed from the pump thread to the cell's thread as one.

    Notifications then die young on the pump thread: thousands of them waiting in the
    inbox would survive into the oldest garbage-collector generation and cost full
    collections, on whichever thread allocates next (mostly the SDK's reader).
    """

    __slots__ = ("key", "parts")

    def __init__(self, key: tuple[str, str, Any], delta: str) -> None:
        self.key = key
        self.parts = [delta]

    def wire(self) -> tuple[str, Json]:
        """The deltas as one ``(method, params)``; call with the parts taken from the pump."""
        method, item_id, position = self.key
        params: Json = {"itemId": item_id, "delta": "".join(self.parts)}
        index = _DELTAS[method]
        if index is not None:
            params[index[1]] = position
        return method, params


APPROVAL_TIMEOUT = 600.0
# How long a request waits for the frontend to show the widget before the turn is
# taken as headless (nbclient, papermill, a frontend without widgets).
SHOWN_GRACE = 3.0


class _GoLive:
    """In the inbox: a request is coming, so the view shows the controls it is answered with."""


_GO_LIVE = _GoLive()


class Pending:
    """A server request waiting for the user's answer in the view."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.answered = threading.Event()
        self.response: Json = {}
        self.by = ""

    def answer(self, response: Json, by: str) -> None:
        """Record the answer (the first one wins) and release the waiting reader thread."""
        if not self.answered.is_set():
            self.response, self.by = response, by
            self.answered.set()

    def record(self) -> tuple[str, str]:
        """The transcript's line for the answer: what was decided, on what, by whom."""
        request = self.request
        answers = request.answer_text(self.response)
        return request.word(self.response), f"{request.summary()}{f' = {answers}' if answers else ''}: {self.by}"


class _Job:
    """A kernel tool call waiting for the cell's thread to run it."""

    def __init__(self, tool: str, arguments: Any) -> None:
        self.tool = tool
        self.arguments: dict[str, Any] = arguments if isinstance(arguments, dict) else {}
        self.done = threading.Event()
        self.reply = ToolReply("", success=False)

    def finish(self, reply: ToolReply) -> None:
        self.reply = reply
        self.done.set()


class _Rollout:
    """The model's items a turn appends to its thread's rollout file (JSON lines)."""

    MAX_BYTES = 8 * 1024 * 1024  # a turn's share of the file that is read, at most

    def __init__(self, path: str | None) -> None:
        self.path = path
        try:
            self.start = os.path.getsize(path) if path else 0
        except OSError:
            self.start = 0  # written only once the first turn has run

    def new_items(self) -> list[Json]:
        """The ``response_item`` payloads written since the turn started."""
        if not self.path:
            return []
        try:
            with open(self.path, "rb") as file:
                file.seek(self.start)
                lines = file.read(self.MAX_BYTES).splitlines()
        except OSError:
            return []
        items = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line still being written, or cut by MAX_BYTES
            if (
                isinstance(entry, dict)
                and entry.get("type") == "response_item"
                and isinstance(entry.get("payload"), dict)
            ):
                items.append(entry["payload"])
        return items


def _tool_reply(reply: ToolReply) -> Json:
    """A kernel tool's reply in the wire shape of ``item/tool/call``'s result."""
    return {"contentItems": reply.content_items(), "success": reply.success}


class TurnRun:
    """One turn from start to result: pump, fold, throttled view refreshes, interrupts."""

    def __init__(
        self,
        session: CodexSession,
        prompt: str,
        settings: TurnSettings,
        make_view: Callable[[], View],
        *,
        timeout: float | None = None,
        retry_timeout: float | None = None,
        stall_timeout: float | None = None,
        latch: InterruptLatch | None = None,
        kernel: KernelAccess | None = None,
        images: Sequence[str] = (),
        attached: Sequence[str] = (),
        schema: OutputSchema | None = None,
        approval_timeout: float | None = APPROVAL_TIMEOUT,
        headless: str = "decline",
    ) -> None:
        self.session = session
        self.prompt = prompt
        self.settings = settings
        self._make_view = make_view
        self.view: View  # made by begin()
        self._view_made = threading.Event()  # set once begin() has tried to make the view
        self.timeout = timeout
        self.retry_timeout = retry_timeout
        self.stall_timeout = stall_timeout
        # Kernel interrupts (SIGINT) caught since the cell started; see _interrupts.
        self.latch = latch or InterruptLatch()
        self.kernel = kernel  # the kernel tools' policy for this turn; None: no kernel tools
        self.images = list(images)  # sent with the prompt: local paths, http(s) or data: URLs
        self.schema = schema  # --schema: the answer is parsed and checked against it
        self._runs_approved = False  # "Approve for this turn" was clicked for a kernel run
        self._finished = False  # the cell's thread takes no more work from the inbox
        self._rollout: _Rollout | None = None
        self.transcript = Transcript()
        self.transcript.settings = {
            "model": settings.model,
            "sandbox": settings.sandbox,
            "cwd": settings.cwd,
            "approval": settings.approval,
        }
        for note in attached:
            self.transcript.note("attached", note)
        self.handle: TurnHandle | None = None
        self._inbox: deque[Notification | _Run | _Job | Pending | _GoLive | BaseException | tuple[str, str]] = deque()
        self._run: _Run | None = None  # the run the pump thread is adding to, under _run_lock
        self._run_lock = threading.Lock()
        self._data = _Signal()  # something is in the inbox
        self._flush = _Signal()  # an item completed, or the turn ended: refresh soon
        self._ended = _Signal()
        self._rendered_items = 0  # completed items when the view was last refreshed
        self._rendered_first_texts = 0  # transcript.first_texts then
        self._last_render = 0.0
        self._due = 0.0  # refreshes keep to one per MIN_INTERVAL, on average, from here
        self._rendered_version = -1
        self.interrupt_reason: str | None = None
        self.approval_timeout = approval_timeout  # None: wait without limit
        self.headless = headless  # the answer when nobody can be asked: decline, accept or cancel
        self._pending: list[Pending] = []
        self._can_ask = False  # True when answers can reach the kernel while the turn runs
        self._cancel_wanted: str | None = None  # set on the reader thread, acted on by the loop

    # -- starting -------------------------------------------------------------------

    def begin(self) -> None:
        """Start the turn and the pump thread (blocking: app-server start, turn/start).

        When the app-server is up and the thread started, ``turn/start`` takes a few
        milliseconds: the view is made after it, while the app-server works on the turn.
        Otherwise the view comes first, to show something while the app-server starts.
        """
        quick = self.session.ready
        if not quick:
            self._show_view()
            self.view.update(self.transcript)  # "starting", while the app-server starts
        try:
            self.session.claim(self)
        except BaseException as exc:
            self._fail_to_start(exc, show=quick)
            raise
        self.session.set_request_sink(self._on_server_request)
        try:
            handle, notices = self.session.start_turn(
                self.prompt,
                self.settings,
                images=self.images,
                output_schema=self.schema.wire if self.schema is not None else None,
                cancelled=lambda: self.latch.hit,
            )
        except BaseException as exc:
            # Show why in the view, then let the error reach the cell.
            self.session.set_request_sink(None)
            self.session.release(self)
            failure = self._start_failure(exc)
            self._fail_to_start(failure, show=quick)
            if failure is exc:
                raise
            raise failure from None
        if quick:
            try:
                self._show_view()
            except BaseException:
                self.session.set_request_sink(None)
                self.session.interrupt(handle)  # nobody would follow the turn
                self.session.release(self)
                raise
        self.handle = handle
        # A thread without raw items (resumed, or forked) has the commands the app-server
        # did not report read back from its rollout at the turn's end.
        self._rollout = None if self.session.raw_events else _Rollout(self.session.rollout)
        self.transcript.thread_id = handle.thread_id
        self.transcript.turn_id = handle.id
        self.transcript.settings["model"] = self.settings.model or self.session.thread_model
        for notice in notices:
            self.transcript.note("session", notice)
        threading.Thread(target=self._pump, name="codex-magic-pump", daemon=True).start()
        self.view.set_stop(self.stop)
        self.view.set_steer(self.steer)
        self._render(force=True)

    def _start_failure(self, exc: BaseException) -> BaseException:
        """What a failed start is, for the user."""
        if self.latch.hit and not isinstance(exc, TurnNotStarted):
            # The interrupt also reached the app-server's launcher, before it left the
            # kernel's process group, and stopped it: the user's interrupt, not a failure.
            return TurnNotStarted("interrupted before the prompt was sent")
        if isinstance(exc, CodexRpcError):
            # The app-server refused the turn: one line, not the SDK's traceback.
            return AppServerError(f"the codex app-server refused the turn: {one_line(exc.message, 300)}")
        return exc

    def _began(self) -> bool:
        """Begin the turn; False if an interrupt came before the prompt was sent."""
        try:
            self.begin()
        except TurnNotStarted:
            return False
        return True

    def _fail_to_start(self, exc: BaseException, *, show: bool) -> None:
        if show:
            self._show_view()
        if isinstance(exc, TurnNotStarted):
            self.interrupt_reason = str(exc)
            self.transcript.abandon(INTERRUPTED, str(exc))
        else:
            self.transcript.abandon(FAILED, str(exc) or type(exc).__name__)
        self.view.finish(self.transcript)

    def _show_view(self) -> None:
        try:
            self.view = self._make_view()
        finally:
            self._view_made.set()

    def _pump(self) -> None:
        # The busiest loop of a turn (one pass per delta, tens of thousands a turn), on
        # a thread that shares the interpreter with the SDK's reader: keep it lean.
        assert self.handle is not None
        lock, inbox, deltas, data, flush = self._run_lock, self._inbox, _DELTAS, self._data, self._flush
        # For a delta method the payload is a _Delta, which mypy cannot infer from the method:
        # declared Any here rather than cast() in the loop, which would add a call per delta.
        payload: Any
        try:
            for notification in self.handle.stream():
                method, payload = notification.method, notification.payload
                if method in deltas and not isinstance(payload, UnknownNotification):
                    index = deltas[method]
                    key = (method, payload.item_id, index and getattr(payload, index[0]))
                    with lock:
                        run = self._run
                        if run is not None and run.key == key:
                            # The run still waits in the inbox and the drain will take this
                            # delta with it: nothing to signal.
                            run.parts.append(payload.delta)
                            continue
                        run = self._run = _Run(key, payload.delta)
                        inbox.append(run)
                else:
                    with lock:
                        self._run = None
                        inbox.append(notification)
                    if method == "item/completed":
                        flush.set()
                data.set()
        except BaseException as exc:  # the transport closed: reported as a failure
            inbox.append(exc)
        finally:
            self._ended.set()
            flush.set()
            data.set()

    def _on_server_request(self, method: str, params: Json) -> Json:
        """Answer a server request; runs on the SDK's reader thread and may wait for a click.

        Nothing here may raise: the SDK's reader thread dies on an exception, so any
        failure becomes a decline, shown in the transcript.
        """
        try:
            return self._answer(Request(method, params))
        except Exception as exc:
            self._tell("error", f"answering {method} failed ({type(exc).__name__}: {exc}); declined")
            return decline_response(method)

    def _answer(self, request: Request) -> Json:
        self._view_made.wait()
        if request.method == TOOL_CALL:
            return self._tool_call(request)
        return self._ask(request)

    def _ask(self, request: Request) -> Json:
        """The user's answer to a request, or the headless policy's."""
        if not request.askable:
            self._tell("declined", f"{request.summary()}: not supported here")
            return decline_response(request.method)
        if not self._can_ask:
            return self._headless(request)
        self._inbox.append(_GO_LIVE)  # the view's controls, shown by the cell's thread
        self._data.set()
        if not self.view.shown(SHOWN_GRACE):
            return self._headless(request)
        pending = Pending(request)
        self._pending.append(pending)
        self._inbox.append(pending)
        self._data.set()
        if not pending.answered.wait(self.approval_timeout):
            pending.answer(decline_response(request.method), f"nobody answered within {self.approval_timeout:g} s")
        self._tell(*pending.record())
        return pending.response

    def _tool_call(self, request: Request) -> Json:
        """A client tool call: a kernel tool runs on the cell's thread, after approval if needed."""
        params = request.params
        tool, arguments = str(params.get("tool") or ""), params.get("arguments")
        kernel = self.kernel
        if kernel is None or not kernel.owns(tool, params.get("namespace")):
            self._tell("declined", f"{request.summary()}: not supported here")
            return decline_response(request.method)
        refused = kernel.refusal(tool, arguments)
        if refused is not None:
            return _tool_reply(refused)
        if kernel.needs_approval(tool) and not self._runs_approved:
            decision = self._ask(request).get("decision")
            if decision == CANCEL:
                self._cancel_wanted = "cancelled by the user (asked to run code in the kernel)"
                self._data.set()
            if decision == ACCEPT_FOR_TURN:
                self._runs_approved = True
            elif decision != ACCEPT:
                why = "cancelled the turn" if decision == CANCEL else "declined to run this code"
                return _tool_reply(ToolReply(f"The user {why}; it did not run.", success=False))
        job = _Job(tool, arguments)
        self._inbox.append(job)
        self._data.set()
        # The cell's thread runs it at its next step, or refuses it once the turn is over.
        while not job.done.wait(0.5):
            if self._finished:
                job.finish(ToolReply("The turn ended before this ran.", success=False))
        return _tool_reply(job.reply)

    def _run_job(self, job: _Job) -> None:
        """Run a kernel tool call on the cell's thread (the kernel's, between two steps)."""
        assert self.kernel is not None
        if self.interrupt_reason is not None or self.transcript.done:
            job.finish(ToolReply("The turn was stopped before this ran.", success=False))
            return
        runs_code = job.tool not in READ_ONLY
        stopped = threading.Event()
        running = threading.current_thread()

        def stop_run() -> None:  # the view's Stop, from ipykernel's shell-channel thread
            stopped.set()
            interrupt(running)

        hold, hit = self.latch.hold, self.latch.hit
        try:
            try:
                # The latch holds (an interrupt is only recorded) except around Codex's code
                # itself: an interrupt never lands inside the widget's messages or the run's
                # output capture. One that came since the run was announced stops the run.
                self.latch.hold = True
                self.view.set_run_stop(stop_run if runs_code else None)
                if runs_code:
                    # The kernel is busy until the run ends (no refresh): say now what stops it.
                    self.transcript.waiting = (
                        "running Codex's code in this kernel: Stop (or the kernel's interrupt button) stops the run"
                    )
                    self.transcript.version += 1
                    self._render(force=True)
                with ToMainThread(self.latch):  # the interrupt button's SIGINT may land on any thread
                    reply = self.kernel.call(
                        job.tool, job.arguments, interruptible=lambda: self.latch.raising(hit_before=hit)
                    )
            finally:
                self.view.set_run_stop(None)
                self.latch.hold = hold
                if runs_code:
                    # An interrupt recorded as the run ended (its deadline, Stop, the button) was
                    # for the run: it must not stop the turn.
                    self.latch.hit = hit
        except Exception as exc:
            reply = ToolReply(f"{job.tool} failed: {type(exc).__name__}: {exc}", success=False)
        if stopped.is_set():
            reply = ToolReply(f"{reply.text}\nThe user stopped the run (Stop).", reply.images, success=False)
        self.transcript.waiting = None
        job.finish(reply)

    def _headless(self, request: Request) -> Json:
        """The answer where nobody can be asked, by CodexMagic.headless_approval."""
        policy = self.headless
        if policy == "accept":
            reply = request.accepted()
        elif policy == "cancel":
            reply = request.withdrawn()
            self._cancel_wanted = "cancelled: a request came and there is no interactive frontend"
        else:
            reply = decline_response(request.method)
        word = request.word(reply)
        self._tell(
            word, f"{request.summary()}: {word}, no interactive frontend (CodexMagic.headless_approval = {policy!r})"
        )
        return reply

    def _tell(self, kind: str, text: str) -> None:
        """Note a line in the transcript from another thread."""
        self._inbox.append((kind, text))
        self._data.set()

    # -- the loop -------------------------------------------------------------------

    def _drain(self) -> None:
        self._data.clear()
        self._flush.clear()
        transcript = self.transcript
        while self._inbox:
            entry = self._inbox.popleft()
            if isinstance(entry, _Run):
                with self._run_lock:
                    if self._run is entry:  # later deltas start a new run
                        self._run = None
                transcript.apply(*entry.wire())
            elif isinstance(entry, Notification):
                method, params = wire(entry)
                transcript.apply(method, params)
            elif entry is _GO_LIVE:
                self.view.go_live()
            elif isinstance(entry, tuple):
                transcript.note(*entry)
            elif isinstance(entry, _Job):
                self._run_job(entry)
            elif isinstance(entry, Pending):
                about = transcript.items.get(str(entry.request.params.get("itemId")))
                entry.request.item = about.view() if about is not None else None
                try:
                    # The items so far first: a box's frontend view remakes every child after
                    # the first one that changed, and a request's box must not be remade under
                    # the user's click when items it comes after are laid out.
                    self._render(force=True)
                    self.view.ask(entry)
                except Exception as exc:  # the reader thread waits for an answer
                    entry.answer(decline_response(entry.request.method), f"declined: it could not be shown ({exc})")
                    transcript.note("error", f"showing {entry.request.kind} request failed: {exc}")
            else:
                how, transcript.app_server_log = self.session.lose()
                transcript.abandon(
                    FAILED,
                    f"lost the codex app-server ({how}); the next %%codex cell starts it again and resumes the thread",
                )

    def _next_render(self) -> float:
        """When the view may be refreshed next, if something changed."""
        transcript = self.transcript
        if transcript.first_texts != self._rendered_first_texts:
            spacing = 0.0
        elif len(transcript.completed_order) != self._rendered_items:
            spacing = ITEM_INTERVAL
        else:
            spacing = MIN_INTERVAL
        return max(self._last_render + spacing, self._due - BURST * MIN_INTERVAL)

    def _render(self, *, force: bool = False) -> None:
        now = time.monotonic()
        changed = self.transcript.version != self._rendered_version
        if force or (changed and now >= self._next_render()) or now - self._last_render >= CLOCK_INTERVAL:
            self._rendered_version = self.transcript.version
            self._rendered_items = len(self.transcript.completed_order)
            self._rendered_first_texts = self.transcript.first_texts
            self._last_render = now
            self._due = max(self._due, now) + MIN_INTERVAL
            self.view.update(self.transcript)

    def _steps(self) -> Iterator[tuple[_Signal, float]]:
        """The main loop; yields what to wait on, and for how long."""
        while True:
            self._drain()
            if self.transcript.done:
                return
            reason = self._deadline_passed() or self._cancel_wanted
            if self.latch.hit:
                reason = "interrupted by the user"
            if reason:
                self.request_interrupt(reason)
            if self.interrupt_reason is not None:  # a deadline, or the view's Stop button
                yield from self._settle()
                return
            if not self._waiting_on_model():
                # A command, a tool or the user is at work: the model's silence counts only
                # from when it is the model's turn again.
                self.transcript.progress_at = time.monotonic()
            waiting = self.waiting()
            if waiting != self.transcript.waiting:
                self.transcript.waiting = waiting
                self.transcript.version += 1
            self._render()
            pending = self._data.is_set() or self.transcript.version != self._rendered_version
            # Wake for the next deadline too, so that a turn ends on time.
            deadline = self._next_deadline() - time.monotonic()
            if pending:
                # Throttled: wake early only when an item completes or the turn ends.
                yield self._flush, max(0.0, min(self._next_render() - time.monotonic(), deadline))
            else:
                yield self._data, max(0.0, min(CLOCK_INTERVAL, deadline))

    def _next_deadline(self) -> float:
        """When the next of --timeout, retry_timeout and stall_timeout falls due (monotonic)."""
        transcript = self.transcript
        due = [float("inf")]
        if self.timeout:
            due.append(transcript.started + self.timeout)
        if self.retry_timeout and transcript.retrying_since is not None:
            due.append(transcript.retrying_since + self.retry_timeout)
        elif self.stall_timeout:
            due.append(transcript.progress_at + self.stall_timeout)
        return min(due) + DEADLINE_SLACK

    def _deadline_passed(self) -> str | None:
        transcript = self.transcript
        if self.timeout and transcript.elapsed() > self.timeout:
            return f"timed out after {self.timeout:g} s (--timeout)"
        now = time.monotonic()
        since = transcript.retrying_since
        if self.retry_timeout and since is not None and now - since > self.retry_timeout:
            return (
                f"gave up after {self.retry_timeout:g} s of retries ({transcript.retry}) with no progress; "
                "check the network and the model provider, or raise CodexMagic.retry_timeout"
            )
        if self.stall_timeout and self._waiting_on_model() and now - transcript.progress_at > self.stall_timeout:
            return (
                f"gave up after the model sent nothing for {self.stall_timeout:g} s; "
                "check the network and the model provider, or raise CodexMagic.stall_timeout"
            )
        return None

    def _waiting_on_model(self) -> bool:
        """Whether only the model can move the turn on: no command, tool or request at work."""
        open_request = any(not pending.answered.is_set() for pending in self._pending)
        return not open_request and self.transcript.waiting_on_model()

    def waiting(self) -> str | None:
        """What the turn waits for, when it has waited long enough to say so."""
        transcript = self.transcript
        if transcript.retrying_since is not None:
            limit = (
                f"; gives up after {self.retry_timeout:g} s without progress (CodexMagic.retry_timeout)"
                if self.retry_timeout
                else ""
            )
            return f"retrying: {transcript.retry}{limit}"
        if time.monotonic() - transcript.progress_at >= WAIT_NOTICE and self._waiting_on_model():
            limit = (
                f"; gives up after {self.stall_timeout:g} s (CodexMagic.stall_timeout)" if self.stall_timeout else ""
            )
            return f"waiting for the model: nothing received for over {WAIT_NOTICE:g} s{limit}"
        return None

    def steer(self, text: str) -> None:
        """The view's Send: add the text to the running turn (``turn/steer``).

        Sent from a helper thread: the app-server's answer comes through the SDK's reader
        thread, which may be waiting for a click on this same event loop (an approval).
        A refusal (the turn has just ended) is said in the transcript.
        """
        handle = self.handle
        if handle is None or self.transcript.done or self.interrupt_reason is not None:
            self._tell("steer", f"not sent, the turn has ended: {text!r}; send it in a new %%codex cell")
            return

        def send() -> None:
            try:
                handle.steer(text)
            except Exception as exc:
                why = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                self._tell("steer", f"not sent ({why}): {text!r}; send it in a new %%codex cell")

        threading.Thread(target=send, name="codex-magic-steer", daemon=True).start()

    def stop(self) -> None:
        """The view's Stop button: interrupt the turn and wake the loop to settle it."""
        self.request_interrupt("stopped by the user")
        self._data.set()

    def request_interrupt(self, reason: str) -> None:
        """Send ``turn/interrupt`` once and note why."""
        if self.interrupt_reason is not None or self.handle is None:
            return
        self.interrupt_reason = reason
        self.transcript.note("interrupt", reason)
        self._withdraw("the turn was interrupted")
        if not self.session.interrupt(self.handle):
            self.transcript.note("interrupt", "the app-server did not acknowledge the interrupt")

    def _settle(self) -> Iterator[tuple[_Signal, float]]:
        """After an interrupt: wait up to SETTLE_TIMEOUT for the turn to report back."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            self._drain()
            left = deadline - time.monotonic()
            if self.transcript.done or left <= 0:
                return
            yield self._ended, left

    def _stop_commands(self) -> None:
        """Stop the commands the interrupt left running (the app-server does not)."""
        transcript = self.transcript
        running = {
            key for key, state in transcript.items.items() if state.type == "commandExecution" and not state.done
        }
        if not running or transcript.thread_id is None:
            return
        try:
            stopped = self.session.stop_commands(transcript.thread_id, running)
        except Exception as exc:
            transcript.note("interrupt", f"the commands still running could not be stopped ({exc})")
            return
        if stopped:
            transcript.note("interrupt", "stopped the commands still running: " + "; ".join(stopped))

    def _withdraw(self, why: str) -> None:
        # The reader thread waits on an open request: answer it, or the turn cannot end.
        for pending in self._pending:
            pending.answer(pending.request.withdrawn(), f"withdrawn: {why}")
            self.view.withdraw(pending)

    def _finish(self) -> RunResult:
        self._withdraw("the turn ended")
        self.session.set_request_sink(None)
        self.session.release(self)
        # The controls go with the live widget at view.finish: no update to hide them first.
        self.view.set_stop(None)
        self.view.set_steer(None)
        self._drain()
        if not self.transcript.done:
            self.transcript.abandon(INTERRUPTED, self.interrupt_reason)
            if self.handle is not None:
                # Stop the pump thread: the turn will not report back any more.
                _sdk.close_turn_stream(self.handle)
        self._finished = True
        if self.transcript.status == INTERRUPTED:
            self._stop_commands()
        if self._rollout is not None:
            # A thread resumed after an app-server restart sends no raw items (thread/resume
            # takes no experimentalRawEvents): the commands it did not report are read from
            # the rollout the turn wrote.
            self.transcript.reconcile(self._rollout.new_items())
        parsed, mismatch = self._parse_answer()
        self.transcript.provenance = self._provenance()
        self.view.finish(self.transcript)
        result = build_result(self.transcript)
        result.parsed, result.schema_error = parsed, mismatch
        return result

    def _provenance(self) -> Json:
        """Where the turn's saved output comes from (its metadata: see _provenance)."""
        transcript, session = self.transcript, self.session
        return record(
            thread_id=transcript.thread_id,
            turn_id=transcript.turn_id,
            status=transcript.status,
            settings={
                **transcript.settings,
                "effort": self.settings.effort or session.thread_effort,
            },
            usage=transcript.usage,
            turn_tokens=transcript.turn_tokens,
            started=transcript.started_at,
            seconds=transcript.elapsed(),
            app_server_version=session.app_server_version,
        )

    def _parse_answer(self) -> tuple[Any, str | None]:
        """--schema: the completed turn's answer as a validated object, or why it is not one."""
        transcript = self.transcript
        if self.schema is None or transcript.status != COMPLETED:
            return None, None
        answer = final_response([transcript.items[i].data for i in transcript.completed_order])
        try:
            return self.schema.parse(answer), None
        except SchemaMismatch as error:
            mismatch = f"the answer does not match {self.schema.name}: {error}"
            transcript.note("schema", mismatch)
            return None, mismatch

    # -- drivers --------------------------------------------------------------------

    def run_blocking(self) -> RunResult:
        """Run the turn, blocking the calling thread; Ctrl-C interrupts the turn."""
        # Ctrl-C while the turn starts is held until the start has settled (see _interrupts);
        # after that it raises KeyboardInterrupt in the loop below, as usual.
        with self.latch:
            if not self._began():
                return build_result(self.transcript)
            self._can_ask = self.view.answers_while_blocking
            try:
                try:
                    self.latch.hold = False
                    for signal, timeout in self._steps():
                        signal.wait(timeout)
                except KeyboardInterrupt:
                    try:
                        self.request_interrupt("interrupted by the user")
                        for signal, timeout in self._settle():
                            signal.wait(timeout)
                    except KeyboardInterrupt:
                        pass
                finally:
                    self.latch.hold = True
                return self._finish()
            finally:
                self.session.release(self)  # also when something above failed unexpectedly

    async def run_async(self) -> RunResult:
        """Run the turn as a coroutine; cancellation (the kernel's interrupt) interrupts it."""
        loop = asyncio.get_running_loop()
        self._can_ask = True
        for signal in (self._data, self._flush, self._ended):
            signal.bind(loop)

        def wake() -> None:
            loop.call_soon_threadsafe(self._data.wake)

        with self.latch:
            self.latch.wake = wake
            if not self._began():
                return build_result(self.transcript)
            return await self._loop_async()

    async def _loop_async(self) -> RunResult:
        try:
            try:
                for signal, timeout in self._steps():
                    await signal.wait_async(timeout)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and hasattr(task, "uncancel"):
                    task.uncancel()
                try:
                    self.request_interrupt("interrupted by the user")
                    for signal, timeout in self._settle():
                        await signal.wait_async(timeout)
                except asyncio.CancelledError:
                    pass
            return self._finish()
        finally:
            self.session.release(self)  # also when something above failed unexpectedly


def raise_for_status(result: RunResult, *, out: str, reason: str | None = None) -> None:
    """Raise the package's error for a turn that did not complete."""
    status = result.status.value
    # One line: the provider's error text may hold line breaks, escapes and whole pages;
    # the full text stays in result.error.message.
    message = one_line(result.error.message if result.error else reason or "", 200)
    if status == FAILED:
        raise TurnFailedError(f"{message or 'the turn failed'} (the partial result is in {out})", result)
    if status == INTERRUPTED:
        why = f": {message}" if message else ""
        raise TurnInterruptedError(f"turn interrupted{why} (the partial result is in {out})", result)
    if result.schema_error:
        raise OutputSchemaError(
            f"{one_line(result.schema_error, 200)} (the answer's text is in {out}.final_response)", result
        )
