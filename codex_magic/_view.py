"""The widget view: maps rendered output onto ipywidgets.

One output per turn. A turn starts as plain output (HTML and text, updated through its
display id): a quick turn then opens no widget model at all. Once the turn has run for
``LIVE_AFTER`` seconds, or needs the user (a request to answer, Codex's code running in
the kernel), the same display becomes the live widget, with a ``text/plain`` fallback,
and only the children whose item changed are updated. When the turn ends, the display
is updated with the final transcript as ``text/html``, ``text/markdown`` and
``text/plain``, so saved notebooks, nbconvert, GitHub and frontends without a widget
manager show the turn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ._output import Renderings, final_render, header, item_view
from ._provenance import KEY as PROVENANCE_KEY
from ._render import (
    PIECE_CHARS,
    Rendered,
    TurnInfo,
    next_cut,
    render_diff,
    render_header,
    render_item,
    render_notice,
    render_plan,
    render_request,
)
from ._requests import AnswerError
from ._text import plain
from ._transcript import ItemState, Transcript

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# The metadata of a turn's output while it runs (its provenance replaces it at the end): a
# notebook saved mid-turn says so, and --with-output knows the output for a turn's own.
RUNNING = {PROVENANCE_KEY: {"status": "running"}}
# Seconds a turn shows as plain output before the live widget replaces it, with its controls
# (Stop, and the box to add to the turn) at once: a turn that ends sooner needs neither.
LIVE_AFTER = 1.0
# Seconds a turn runs before its steering box appears (with the widget from the start:
# CodexMagic.live_after = 0): nobody types into a turn that ends sooner.
STEER_AFTER = 1.0


def _reader(pick: Any, text: Any) -> Callable[[], str]:
    """Read one answer: the typed text if any, else the picked option."""
    return lambda: (text.value if text is not None else "").strip() or (pick.value if pick is not None else None) or ""


# A streaming message longer than this is shown as finished blocks, each sent once,
# and a live tail, so a refresh does not re-send the whole message. Blocks are cut where
# the renderer cuts its pieces, so the finished message reuses their rendering.
BLOCK_CHARS = PIECE_CHARS


def settled_end(text: str, start: int, size: int = BLOCK_CHARS) -> int:
    """Where the finished part of streaming Markdown ends (``start`` if nothing is finished).

    ``start`` is 0 or a previous end. The finished part ends where the renderer would
    cut a piece (see ``next_cut``). Text with no such place for long is cut at a blank
    line, a line end or a space outside code fences instead: only the streaming view
    splits there; the finished message is rendered whole.
    """
    end = start
    while (cut := next_cut(text, end, size)) is not None:
        end = cut
    if end > start or len(text) - start <= 4 * size:
        return end
    for separator in ("\n\n", "\n", " "):
        pos = text.rfind(separator, start)
        while pos > start:
            if text.count("```", 0, pos) % 2 == 0:
                return pos + len(separator)
            pos = text.rfind(separator, start, pos)
    return start


class _Blocks:
    """The widgets of one long streaming message: finished blocks and a live tail."""

    def __init__(self, view: WidgetView, data: dict[str, Any]) -> None:
        # Widgets made with their content: a new widget's state travels in its comm_open.
        self.view = view
        self.upto = 0
        text = data.get("text") or ""
        self.blocks = self._settled(data, text)
        self.tail = view._html(self._tail(data, text))
        self.box = view._widgets.VBox([*self.blocks, self.tail], layout=view._layout)

    def _settled(self, data: dict[str, Any], text: str) -> list[Any]:
        cut = settled_end(text, self.upto)
        if cut <= self.upto:
            return []
        block = self.view._html(render_item({**data, "text": text[self.upto : cut]}).html)
        self.upto = cut
        return [block]

    def _tail(self, data: dict[str, Any], text: str) -> str:
        return render_item({**data, "text": text[self.upto :]}, running=True).html

    def show(self, data: dict[str, Any]) -> None:
        text = data.get("text") or ""
        new = self._settled(data, text)
        if new:
            self.blocks += new
            self.box.children = (*self.blocks, self.tail)
        self.view._set(self.tail, self._tail(data, text))

    def close(self) -> None:
        _close(*self.blocks, self.tail, self.box)


def _tree(widget: Any) -> list[Any]:
    """A widget and all its descendants (children of boxes), children first."""
    found: list[Any] = []
    for child in getattr(widget, "children", ()):
        found.extend(_tree(child))
    found.append(widget)
    return found


_SHARED: dict[str, Any] = {}


def _close(*widgets: Any) -> None:
    """Close widget models, with the layout and style each made for itself (not the shared ones).

    Closed models leave the kernel and the page, and saved widget state.
    """
    shared = {id(model) for model in _SHARED.values()}
    for widget in widgets:
        for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
            if part is not None and id(part) not in shared:
                part.close()
        widget.close()


def _shared(key: str, make: Callable[[], Any]) -> Any:
    """A layout or style model shared by the widgets of every turn, made once per kernel."""
    model = _SHARED.get(key)
    if model is None or model.comm is None:  # none yet, or closed (Widget.close_all())
        model = _SHARED[key] = make()
    return model


class WidgetView:
    """One live ipywidgets tree per turn; only the children that changed are updated."""

    answers_while_blocking = False  # clicks reach the kernel only while an awaited cell waits

    def __init__(self, *, live_after: float = LIVE_AFTER) -> None:
        self.live_after = live_after
        self.live = False  # the turn shows as the live widget, no longer as plain output
        self._transcript: Transcript | None = None  # the turn, as last shown
        self._plain = ""  # the HTML shown while the turn is plain output
        self._since: float | None = None  # the first update
        self._stop_callback: Callable[[], None] | None = None
        self._run_stop: Callable[[], None] | None = None
        self._steer_callback: Callable[[str], None] | None = None
        self._images: dict[str, str | None] = {}
        self._renderings: Renderings = {}  # the final transcript reuses them
        self._shown = threading.Event()
        # The turn's one output, displayed at the first update: the runner makes the view
        # just before it (a ready app-server has started the turn already), so the output
        # starts with what there is to show, in one message.
        self.handle: Any = None
        if live_after <= 0:
            self._build()

    def _publish(self, bundle: dict[str, Any], metadata: dict[str, Any] = RUNNING) -> None:
        from IPython.display import display

        if self.handle is None:
            self.handle = display(bundle, raw=True, display_id=True, metadata=metadata)
        else:
            self.handle.update(bundle, raw=True, metadata=metadata)

    def go_live(self) -> None:
        """Show the live widget in place of the plain output, from now to the turn's end.

        Call on the cell's thread. The widget is laid out with the turn so far before
        the display switches to it, so the page never shows it empty.
        """
        if self.live:
            return
        self._build()
        if self._transcript is not None:
            self._update_widgets(self._transcript)
        self._publish(self._bundle(Rendered(html="", text=self._plain_text())))

    def _plain_text(self) -> str:
        return header(self._transcript).text if self._transcript is not None else "starting"

    def _build(self) -> None:
        import ipywidgets as widgets
        from ipywidgets.widgets.widget_string import HTMLStyle

        self.live = True
        self._widgets = widgets
        # Layouts and styles are shared by every child of every turn: a child costs one
        # widget model, not three, and a turn's start does not send them again.
        self._layout = _shared("layout", widgets.Layout)
        self._style = _shared("html style", HTMLStyle)
        self._button_layout = _shared("button layout", lambda: widgets.Layout(width="auto", flex="0 0 auto"))
        self._button_style = _shared("button style", widgets.ButtonStyle)
        shown = self._transcript
        self.header = self._html(
            header(shown).html
            if shown is not None
            else render_header(status="starting", elapsed=0.0, info=TurnInfo()).html
        )
        self.stop = self._button(
            "Stop", icon="stop", tooltip="Interrupt this turn; the result so far is kept in _codex_result"
        )
        self.stop.on_click(self._clicked_stop)
        # While Codex's code runs in the kernel, the main thread is busy and the click waits:
        # ipykernel (>= 7.4) shows a comm's messages to its _reply_subshell_for on the
        # shell-channel thread first, to route them to a subshell. That is the one place a
        # click can be seen at once, so Stop stops the run (Codex is told; the turn goes
        # on). Private: ipykernel has no public hook for it.
        self._click_taken = False  # the click that stopped a run: not a Stop of the turn too
        comm = getattr(self.stop, "comm", None)
        if comm is not None:
            comm._reply_subshell_for = self._stop_arrived
        # Steering: text added to the running turn, made once the turn has run a while.
        self.steer_text: Any = None
        self.send: Any = None
        self._steer_shown = False
        # Shown from the start, so the turn's start costs no update: a click waits in the
        # kernel's queue until the turn has started, then stops it.
        top_layout = _shared("top layout", lambda: widgets.Layout(justify_content="space-between"))
        self.top = widgets.HBox([self.header, self.stop], layout=top_layout)
        # A frontend that shows the widget counts its views in _view_count (0 starts the
        # count): that is how the kernel knows someone can click. nbclient and papermill
        # keep widget state but show no view.
        # The items and the open requests each have a box of their own: a box's frontend view
        # remakes every child after the first one that changed, and an item that arrives must
        # not remake a request's box under the user's click (nor the items, a new request).
        self.body = widgets.VBox([], layout=self._layout)
        self.requests = widgets.VBox([], layout=self._layout)
        self.root = widgets.VBox(
            [self.top, self.body, self.requests],
            layout=self._layout,
            _dom_classes=("codex-magic",),
            _view_count=0,
        )
        self.root.observe(self._count_views, names="_view_count")
        self._items: dict[str, tuple[Any, int]] = {}
        self._item_order: list[Any] = []
        # Shown only once there is something to show: the plan, notices, the turn's diff.
        self._extras: dict[str, Any] = {}
        self._extra_sources: dict[str, Any] = {}
        self._asks: dict[int, tuple[Any, list[Any]]] = {}  # open requests' boxes and widgets, by id(pending)
        self._streams: dict[str, _Blocks] = {}  # long messages while they stream

    def _button(self, description: str, **traits: Any) -> Any:
        # A label may come from the request (a command to always allow): shown without control sequences.
        return self._widgets.Button(
            description=plain(description), layout=self._button_layout, style=self._button_style, **traits
        )

    def _html(self, value: str) -> Any:
        return self._widgets.HTML(value, layout=self._layout, style=self._style)

    def _bundle(self, rendered: Rendered, *, final: bool = False) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": self.root.model_id},
            "text/plain": rendered.text,
        }
        if final:
            bundle["text/html"] = rendered.html
            bundle["text/markdown"] = rendered.markdown
        return bundle

    @staticmethod
    def _set(widget: Any, value: str) -> None:
        if widget.value != value:
            widget.value = value

    def set_stop(self, stop: Callable[[], None] | None) -> None:
        """Show the Stop button while ``stop`` can interrupt the turn; with None it does nothing.

        The button is not hidden first: ``finish`` replaces the live widget and its controls.
        """
        self._stop_callback = stop
        if stop is not None and self.live:
            self._layout_top()

    def set_steer(self, steer: Callable[[str], None] | None) -> None:
        """Offer the steering box while ``steer`` can add text to the turn.

        The box appears once the turn has run for STEER_AFTER seconds (at the next
        refresh): a turn that ends sooner never opens its two widget models.
        """
        self._steer_callback = steer

    def _layout_top(self) -> None:
        # Stop before the steering box: a box's frontend view remakes every child after the
        # first one that changed, and Stop must not be remade (a click could be lost) when
        # the steering box appears.
        children: tuple[Any, ...] = (self.header,)
        if self._stop_callback is not None:
            children += (self.stop,)
        if self._steer_callback is not None and self._steer_shown:
            children += (self.steer_text, self.send)
        if self.top.children != children:
            self.top.children = children

    def _show_steering(self) -> None:
        widgets = self._widgets
        from ipywidgets.widgets.widget_string import TextStyle

        steer_layout = _shared("steer layout", lambda: widgets.Layout(width="16em", flex="0 1 auto"))
        self.steer_text = widgets.Text(
            placeholder="Add to this turn…", layout=steer_layout, style=_shared("text style", TextStyle)
        )
        self.send = self._button(
            "Send", icon="paper-plane", tooltip="Add this text to the running turn: Codex reads it at its next step"
        )
        self.send.on_click(self._clicked_send)
        self._steer_shown = True
        self._layout_top()

    def _clicked_send(self, _button: Any) -> None:
        # Runs on the kernel's event loop while the awaited cell waits for the turn.
        text = self.steer_text.value.strip()
        if text and self._steer_callback is not None:
            self.steer_text.value = ""
            self._steer_callback(text)

    def set_run_stop(self, stop: Callable[[], None] | None) -> None:
        """While Codex's code runs in the kernel, what a Stop click does (on another thread).

        Call on the cell's thread: the live widget, and its Stop, are shown from here.
        """
        self._run_stop = stop
        if stop is not None:
            self.go_live()

    def _stop_arrived(self, data: Any, subshell_id: Any) -> Any:
        # On ipykernel's shell-channel thread; the message still goes on to the main thread.
        stop = self._run_stop
        content = data.get("content") if isinstance(data, dict) else None
        if stop is not None and isinstance(content, dict) and content.get("event") == "click":
            self._run_stop, self._click_taken = None, True
            stop()
        return subshell_id

    def _clicked_stop(self, _button: Any) -> None:
        # Runs on the kernel's event loop while the awaited cell waits for the turn.
        if self._click_taken:  # it stopped Codex's code already: the turn goes on
            self._click_taken = False
            return
        stop, self._stop_callback = self._stop_callback, None
        if stop is not None:
            self.stop.disabled = True
            self.stop.description = "Stopping"
            stop()

    def _extra(self, name: str, source: Any, render: Any) -> bool:
        """Show ``render(source)`` in the named extra child; True if the child was added."""
        if not source or source == self._extra_sources.get(name):
            return False
        self._extra_sources[name] = source
        html = render(source)
        if name in self._extras:
            self._set(self._extras[name], html)
            return False
        self._extras[name] = self._html(html)
        return True

    def update(self, transcript: Transcript) -> None:
        """Show the transcript's changes: as plain output at first, then on the live widget."""
        self._transcript = transcript
        if self.live:
            self._update_widgets(transcript)
            if self.handle is None:
                self._publish(self._bundle(Rendered(html="", text=self._plain_text())))
            return
        if transcript.done:  # a finished turn is shown by finish()
            return
        # The clock starts with the turn: an app-server's start comes before it.
        now = time.monotonic()
        if self._since is None or not transcript.turn_id:
            self._since = now
        if now - self._since >= self.live_after:
            self.go_live()
            return
        shown = final_render(transcript, self._images, self._renderings)
        if shown.html != self._plain or self.handle is None:
            self._plain = shown.html
            self._publish({"text/plain": shown.text, "text/html": shown.html})

    def _update_widgets(self, transcript: Transcript) -> None:
        """Copy the transcript's changes onto the widgets."""
        self._set(self.header, header(transcript).html)
        if (
            self._steer_callback is not None
            and not self._steer_shown
            and not transcript.done
            and transcript.elapsed() >= STEER_AFTER
        ):
            self._show_steering()
        changed = False
        retired: list[_Blocks] = []
        dropped: list[Any] = []
        for state in transcript.ordered():
            known = self._items.get(state.id)
            # A finished turn re-renders items still in flight, to mark them unfinished.
            if known is not None and known[1] == state.version and not (transcript.done and not state.done):
                continue
            if self._stream(state, transcript.done, known):
                changed |= known is None or known[0] is not self._streams[state.id].box
                self._items[state.id] = (self._streams[state.id].box, state.version)
                continue
            html = item_view(state, transcript.done, self._images, self._renderings).html
            if state.id in self._streams:
                # The finished message is one piece again, in a new child that replaces the blocks.
                blocks = self._streams.pop(state.id)
                child = self._html(html)
                self._item_order[self._item_order.index(blocks.box)] = child
                self._items[state.id] = (child, state.version)
                retired.append(blocks)
                changed = True
                continue
            child = known[0] if known is not None else None
            if child is None and html:
                child = self._html(html)
                self._item_order.append(child)
                changed = True
            elif child is not None:
                self._set(child, html)
            self._items[state.id] = (child, state.version)
        for gone in [key for key in self._items if key not in transcript.items]:
            # A retry made the item stale: the model streams it again as a new one.
            child = self._items.pop(gone)[0]
            stream = self._streams.pop(gone, None)
            box = stream.box if stream is not None else child
            if box in self._item_order:
                self._item_order.remove(box)
                changed = True
            if stream is not None:
                retired.append(stream)
            elif child is not None:
                dropped.append(child)
        notices = transcript.notices
        changed |= self._extra(
            "notices", tuple(notices), lambda ns: "".join(render_notice(n.kind, n.text).html for n in ns)
        )
        changed |= self._extra("plan", transcript.plan, lambda plan: render_plan(plan).html)
        changed |= self._extra("diff", transcript.diff, lambda diff: render_diff(diff).html)
        if changed:
            self._layout_children()
        for blocks in retired:
            blocks.close()
        _close(*dropped)  # after the layout no longer shows them

    def _stream(self, state: ItemState, turn_done: bool, known: Any) -> bool:
        """Show a long message still streaming as blocks and a tail; False if it is not one."""
        if state.type != "agentMessage" or state.done or turn_done:
            return False
        blocks = self._streams.get(state.id)
        data = state.view()
        if blocks is not None:
            blocks.show(data)
            return True
        if len(data.get("text") or "") <= BLOCK_CHARS:
            return False
        blocks = self._streams[state.id] = _Blocks(self, data)
        if known is not None and known[0] in self._item_order:
            self._item_order[self._item_order.index(known[0])] = blocks.box
        else:
            self._item_order.append(blocks.box)
        return True

    def _layout_children(self) -> None:
        extras = self._extras
        body = (*([extras["plan"]] if "plan" in extras else []), *self._item_order)
        requests = tuple(box for box, _ in self._asks.values())
        # Notices and the diff come last, after the requests: they only ever add to the end.
        root = (
            self.top,
            self.body,
            self.requests,
            *([extras["notices"]] if "notices" in extras else []),
            *([extras["diff"]] if "diff" in extras else []),
        )
        for box, children in ((self.body, body), (self.requests, requests), (self.root, root)):
            if box.children != children:
                box.children = children

    def _count_views(self, change: dict[str, Any]) -> None:
        # A page closed or reloaded removes its views: then wait for one to come back.
        if (change.get("new") or 0) > 0:
            self._shown.set()
        else:
            self._shown.clear()

    def shown(self, timeout: float) -> bool:
        """Whether a frontend shows the widget; waits up to ``timeout`` for one to say so.

        Any thread may ask; the widget must be live by then, or about to be (``go_live``).
        """
        return self._shown.wait(timeout)

    def ask(self, pending: Any) -> None:
        """Show a request: what is asked, a row per question or form field, a button per choice."""
        self.go_live()
        widgets, request = self._widgets, pending.request
        asked = self._html(render_request(request).html)
        made: list[Any] = [asked]
        rows: list[Any] = []
        answers: dict[str, Callable[[], str]] = {}
        fields = request.fields()
        for field in fields:
            row: list[Any] = []
            if len(fields) > 1:
                row.append(widgets.Label(plain(field.label or field.question or field.id)))
            pick = text = None
            if field.options:
                # Shown without control sequences; the answer is the option as Codex sent it.
                pick = widgets.ToggleButtons(
                    options=[(plain(option), option) for option in field.options],
                    value=None,
                    tooltips=[plain(d or o) for o, d in zip(field.options, field.descriptions or field.options)],
                    style={"button_width": "auto"},
                )
                row.append(pick)
            if field.free_text:
                kind = widgets.Password if field.secret else widgets.Text
                text = kind(
                    placeholder="or type an answer" if pick else "type an answer", layout=widgets.Layout(width="50%")
                )
                row.append(text)
            answers[field.id] = _reader(pick, text)
            made.extend(row)
            rows.append(widgets.HBox(row))
        error = self._html("")
        buttons = []
        for choice in request.choices():
            button = self._button(choice.label, button_style=choice.style)
            button.on_click(lambda _b, key=choice.key: self._choose(pending, key, answers, error))
            buttons.append(button)
        row = widgets.HBox(buttons)
        box = widgets.VBox([asked, *rows, error, row])
        made.extend([*buttons, *rows, error, row, box])
        self._asks[id(pending)] = (box, made)
        self._layout_children()

    def _choose(self, pending: Any, choice: str, answers: dict[str, Callable[[], str]], error: Any) -> None:
        # Runs on the kernel's event loop; the SDK's reader thread waits for this answer.
        try:
            reply = pending.request.respond(choice, {key: read() for key, read in answers.items()})
        except AnswerError as exc:
            error.value = render_notice("answer", str(exc)).html
            return
        pending.answer(reply, "the user")
        self.withdraw(pending)

    def withdraw(self, pending: Any) -> None:
        """Remove a request's box: it was answered, timed out, or the turn ended."""
        asked = self._asks.pop(id(pending), None) if self.live else None
        if asked is not None:
            self._layout_children()
            _close(*asked[1])  # closed widgets are not kept in saved widget state

    def finish(self, transcript: Transcript) -> None:
        """Replace the live widget with the static transcript, and close the turn's widgets.

        The cell's output is then HTML, Markdown and text, which every renderer shows
        (nbconvert with its default settings, GitHub, a notebook reopened without widget
        state), and the finished turn holds no widget model in the kernel or the page.
        """
        final = final_render(transcript, self._images, self._renderings)
        self._renderings.clear()
        self._images.clear()
        self._publish(
            {"text/plain": final.text, "text/html": final.html, "text/markdown": final.markdown},
            {PROVENANCE_KEY: transcript.provenance or {"thread_id": transcript.thread_id}},
        )
        if not self.live:  # a quick turn: it never opened a widget model
            return
        # After the output no longer shows them: a frontend must not draw a closed model.
        _close(*{*_tree(self.root), self.header, self.stop, self.steer_text, self.send, self.top} - {None})
        for _, made in self._asks.values():
            _close(*made)
        for blocks in self._streams.values():
            blocks.close()
        self._items.clear()
        self._item_order.clear()
        self._extras.clear()
        self._asks.clear()
        self._streams.clear()
