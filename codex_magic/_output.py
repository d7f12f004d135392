"""A turn's transcript as rendered output: the header, each item, the whole turn.

The widget view (:mod:`codex_magic._view`), the terminal view (:mod:`codex_magic._terminal`)
and ``_codex_result``'s display (:mod:`codex_magic._result`) all render through here, so the
cell's saved output and the result show the same turn: :func:`render_facts` of the same
:class:`TurnFacts`. Local images an item names are attached as data URLs. The module
imports neither IPython nor ipywidgets.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._render import Rendered, TurnInfo, render_header, render_item, render_turn
from ._transcript import RUNNING, ItemState, Transcript

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
IMAGE_MAX_BYTES = 2 * 1024 * 1024


def info(transcript: Transcript) -> TurnInfo:
    """What the header shows about the turn's settings."""
    return TurnInfo(thread_id=transcript.thread_id, **transcript.settings)


@dataclass(frozen=True)
class TurnFacts:
    """What a turn's display shows besides its items: the header's facts, notices, plan and diff."""

    status: str
    elapsed: float
    info: TurnInfo
    usage: dict[str, Any] | None = None
    turn_tokens: int | None = None
    error: str | None = None
    notices: Sequence[tuple[str, str]] = ()
    plan: dict[str, Any] | None = None
    diff: str | None = None
    running_ids: frozenset[str] = field(default_factory=frozenset)  # items still in flight


def facts_of(transcript: Transcript) -> TurnFacts:
    """The facts of a turn as its transcript holds them now."""
    running = transcript.status == RUNNING
    return TurnFacts(
        # Running before it has its id: the app-server is starting, or the turn is being sent.
        status="starting" if running and not transcript.turn_id else transcript.status,
        elapsed=transcript.elapsed(),
        info=info(transcript),
        usage=transcript.usage,
        turn_tokens=transcript.turn_tokens,
        error=transcript.error,
        notices=[(n.kind, n.text) for n in transcript.notices],
        plan=transcript.plan,
        diff=transcript.diff,
        running_ids=frozenset(state.id for state in transcript.ordered() if not state.done),
    )


def _header_facts(facts: TurnFacts) -> dict[str, Any]:
    return {
        "status": facts.status,
        "elapsed": facts.elapsed,
        "info": facts.info,
        "usage": facts.usage,
        "turn_tokens": facts.turn_tokens,
        "error": facts.error,
    }


def header(transcript: Transcript) -> Rendered:
    """The status line of a turn as it stands."""
    return render_header(**_header_facts(facts_of(transcript)), retry=transcript.waiting)


def render_facts(facts: TurnFacts, items: list[dict[str, Any]], rendered: Sequence[Rendered | None] = ()) -> Rendered:
    """The whole turn from its facts and its items' wire dicts (``rendered``: items already rendered)."""
    return render_turn(
        **_header_facts(facts),
        items=items,
        notices=facts.notices,
        running_ids=facts.running_ids,
        plan=facts.plan,
        diff=facts.diff,
        rendered=rendered,
    )


def image_data_url(path: str) -> str | None:
    """A local image as a data URL, for items that show one (small files only)."""
    kind = IMAGE_TYPES.get(os.path.splitext(path)[1].lower())
    try:
        if kind is None or os.path.getsize(path) > IMAGE_MAX_BYTES:
            return None
        with open(path, "rb") as image:
            return f"data:{kind};base64,{base64.b64encode(image.read()).decode('ascii')}"
    except OSError:
        return None


def with_images(data: dict[str, Any], images: dict[str, str | None], *, prompt: bool | None = None) -> dict[str, Any]:
    """An item's wire dict as the renderer takes it: a local image it names attached as a data URL.

    ``images`` remembers the files read, by item id; ``prompt`` says whether a user message
    is the cell's own (None: the turn's first user message is).
    """
    item_id, kind = str(data.get("id") or ""), data.get("type")
    if kind == "imageView" and data.get("path"):
        if item_id not in images:
            images[item_id] = image_data_url(str(data["path"]))
        if images[item_id]:
            data = {**data, "dataUrl": images[item_id]}
    elif kind == "userMessage":
        # Images sent with the prompt (--image) as thumbnails: local files as data URLs.
        shown = []
        for index, part in enumerate(data.get("content") or []):
            if isinstance(part, dict) and part.get("type") == "localImage" and part.get("path"):
                key = f"{item_id}:{index}"
                if key not in images:
                    images[key] = image_data_url(str(part["path"]))
                shown.append(images[key] or "")
            elif isinstance(part, dict) and part.get("type") == "image":
                shown.append(str(part.get("url") or ""))
        data = {**data, "_images": shown, **({"_prompt": prompt} if prompt is not None else {})}
    return data


def item_data(state: ItemState, images: dict[str, str | None]) -> dict[str, Any]:
    """An item state's wire dict as the renderer takes it (see :func:`with_images`)."""
    return with_images({**state.view(), "id": state.id, "type": state.type}, images, prompt=state.prompt)


# An item's rendering, remembered with the item version and mode it was made for.
Renderings = dict[str, tuple[int, str, Rendered]]


def _mode(state: ItemState, turn_done: bool) -> str:
    return "done" if state.done else "unfinished" if turn_done else "running"


def item_view(
    state: ItemState, turn_done: bool, images: dict[str, str | None], renderings: Renderings | None = None
) -> Rendered:
    """Render one item state; the views' only bridge from item state to markup."""
    mode = _mode(state, turn_done)
    rendered = render_item(item_data(state, images), running=mode == "running", unfinished=mode == "unfinished")
    if renderings is not None:
        renderings[state.id] = (state.version, mode, rendered)
    return rendered


def final_render(
    transcript: Transcript, images: dict[str, str | None] | None = None, renderings: Renderings | None = None
) -> Rendered:
    """The whole transcript of a turn, for saved output and text frontends.

    Items in ``renderings`` at their current version and mode are not rendered again.
    """
    images = {} if images is None else images
    renderings = {} if renderings is None else renderings
    states = transcript.ordered()
    done = transcript.done
    reused: list[Rendered | None] = []
    for state in states:
        known = renderings.get(state.id)
        reused.append(known[2] if known is not None and known[:2] == (state.version, _mode(state, done)) else None)
    return render_facts(facts_of(transcript), [item_data(state, images) for state in states], reused)
