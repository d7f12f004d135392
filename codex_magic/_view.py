"""Views: map rendered output onto widgets, or onto plain text where there are none.

The widget view displays one output whose bundle carries the widget and a
``text/plain`` fallback; when the turn ends the same display is updated (through
its display id) with the final transcript as ``text/html`` and ``text/plain`` too,
so saved notebooks, nbconvert and GitHub show the turn without widget state.
"""

from __future__ import annotations

from typing import Any

from ._render import Rendered, TurnInfo, render_header, render_item, render_notice, render_turn
from ._transcript import Transcript

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def info(transcript: Transcript) -> TurnInfo:
    return TurnInfo(thread_id=transcript.thread_id, **transcript.settings)


def header(transcript: Transcript) -> Rendered:
    """The status line of a turn as it stands."""
    return render_header(
        status=transcript.status,
        elapsed=transcript.elapsed(),
        info=info(transcript),
        usage=transcript.usage,
        turn_tokens=transcript.turn_tokens,
        error=transcript.error,
        retry=transcript.retry,
    )


def final_render(transcript: Transcript) -> Rendered:
    """The whole transcript of a turn, for saved output and text frontends."""
    return render_turn(
        items=[state.view() for state in transcript.ordered()],
        status=transcript.status,
        elapsed=transcript.elapsed(),
        info=info(transcript),
        usage=transcript.usage,
        turn_tokens=transcript.turn_tokens,
        error=transcript.error,
        notices=[(n.kind, n.text) for n in transcript.notices],
        running_ids=frozenset(s.id for s in transcript.ordered() if not s.done),
    )


class WidgetView:
    """One live ipywidgets tree per turn; only the children that changed are updated."""

    def __init__(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self._widgets = widgets
        self.header = widgets.HTML()
        self.body = widgets.VBox()
        self.notices = widgets.HTML()
        self.root = widgets.VBox([self.header, self.body, self.notices])
        self.root.add_class("codex-magic")
        self._items: dict[str, tuple[Any, int]] = {}
        self._notice_count = 0
        starting = render_header(status="starting", elapsed=0.0, info=TurnInfo())
        self.header.value = starting.html
        self.handle = display(self._bundle(starting.text), raw=True, display_id=True)

    def _bundle(self, text: str, html: str | None = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": self.root.model_id},
            "text/plain": text,
        }
        if html is not None:
            bundle["text/html"] = html
        return bundle

    def update(self, transcript: Transcript) -> None:
        """Copy the transcript's changes onto the widgets."""
        top = header(transcript)
        if self.header.value != top.html:
            self.header.value = top.html
        added = []
        for state in transcript.ordered():
            known = self._items.get(state.id)
            if known is not None and known[1] == state.version:
                continue
            rendered = render_item(state.view(), running=not state.done)
            if known is None:
                child = self._widgets.HTML(rendered.html)
                added.append(child)
            else:
                child = known[0]
                if child.value != rendered.html:
                    child.value = rendered.html
            self._items[state.id] = (child, state.version)
        if added:
            self.body.children = (*self.body.children, *added)
        if len(transcript.notices) != self._notice_count:
            self._notice_count = len(transcript.notices)
            self.notices.value = "".join(render_notice(n.kind, n.text).html for n in transcript.notices)

    def finish(self, transcript: Transcript) -> None:
        """Show the final state, and put the transcript in the saved output."""
        self.update(transcript)
        final = final_render(transcript)
        self.handle.update(self._bundle(final.text, final.html), raw=True)
