"""Markup: the one place where escaping happens, and the HTML writer of blocks.

:func:`esc` escapes every string that reaches HTML outside the Markdown renderer.
Next to it live the one visual style (colours, inline styles, the colour of each tone),
the small helpers that build safe markup from untrusted values (bounded escaping,
terminal colours as styled spans, validated data-URL images, web links, badges, cards
and labels) and :func:`to_html`, which writes blocks (:mod:`codex_magic._blocks`) with
them. Image sources are only ever validated ``data:image/...;base64,`` URLs, so nothing
loads an external resource.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Sequence
from functools import lru_cache

from ._blocks import (
    DIFF_BYTES,
    STEP_BOX,
    WHERE_FULL,
    Block,
    Card,
    Checklist,
    Code,
    Diff,
    DiffFile,
    Fold,
    Image,
    Inline,
    Link,
    Links,
    Markdown,
    Note,
    Output,
    Rule,
    Title,
    more_files,
)
from ._text import _FIELD_BYTES, _SGR, _cut, _s

# Data URLs longer than this are not inlined.
MAX_IMAGE_CHARS = 8 * 1024 * 1024

_LINE_CHARS = 2000


# -- one visual style --------------------------------------------------------------------

_STATUS_STYLE = {
    "starting": ("#57606a", "\u25cb starting Codex"),
    "running": ("#1f6feb", "\u25cf running"),
    "completed": ("#1a7f37", "\u2714 completed"),
    "failed": ("#cf222e", "\u2716 failed"),
    "interrupted": ("#9a6700", "\u25a0 interrupted"),
}
_OK, _ERR, _WARN, _RUN, _GREY = "#1a7f37", "#cf222e", "#9a6700", "#1f6feb", "#6e7781"
_C_ANSWER = "var(--jp-brand-color1,#1976d2)"
_C_MUTED = "var(--jp-border-color1,#bdbdbd)"
_C_THINK = "#8c959f"
_C_FILE = "#bf8700"
_C_PLAN = "#0969da"
_C_TOOL = "#8250df"
_C_WEB = "#1b7c83"
_C_IMAGE = "#bf3989"
_C_USER = "#57606a"
_C_AGENT = "#6639ba"
_C_REVIEW = "#bc4c00"

_BOX = "font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;line-height:1.45"
_PRE = (
    "white-space:pre-wrap;word-break:break-word;margin:2px 0;padding:4px 6px;"
    "background:var(--jp-layout-color2,#f6f8fa);border-radius:4px;"
    "font-family:var(--jp-code-font-family,monospace);font-size:12px"
)
_DIM = "color:var(--jp-ui-font-color2,#57606a)"
_SMALL = "font-size:11px"
_CODE = "font-family:var(--jp-code-font-family,monospace);font-size:12px;white-space:pre-wrap;word-break:break-word"
_BADGE = (
    "display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:11px;font-weight:600;line-height:16px"
)
_IMG = "max-width:100%;max-height:480px;display:block;margin:2px 0"
_ADD_BG = "background:rgba(46,160,67,0.18)"
_DEL_BG = "background:rgba(248,81,73,0.18)"
_HUNK = "color:#0969da;opacity:0.8"
_HEAD = "font-weight:bold;opacity:0.75"


def esc(value: object) -> str:
    """Escape any value for HTML text or attribute context (the one place that does)."""
    return html.escape("" if value is None else str(value), quote=True)


# -- bounded escaping -------------------------------------------------------------------------


def _cost(text: str) -> int:
    return len(esc(text).encode("utf-8", "replace"))


def _fit(text: str, budget: int, *, keep: str) -> str:
    """The longest head or tail of ``text`` whose escaped UTF-8 fits in ``budget`` bytes."""
    # No character escapes to more than 6 bytes, and none to fewer than 1.
    if len(text) * 6 <= budget or (len(text) <= budget and _cost(text) <= budget):
        return text
    lo, hi = 0, min(len(text), budget)
    # Usually nothing in the longest candidate needs escaping: one measure, no search.
    if _cost(text[-hi:] if keep == "tail" else text[:hi]) <= budget:
        lo = hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _cost(text[-mid:] if keep == "tail" else text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        return ""
    return text[-lo:] if keep == "tail" else text[:lo]


# -- terminal colour ---------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _spans(text: str) -> str:
    """``text`` escaped, its SGR colour sequences turned into spans with inline styles.

    ``text`` holds no other control sequence (see :func:`codex_magic._text.keep_colour`).
    """
    markup = esc(text)
    if "\x1b[" not in markup:
        return markup
    from ansi2html import (
        Ansi2HTMLConverter,  # imported here: only coloured output pays for it
    )

    # Inline styles: the colours stay where no stylesheet goes (GitHub, nbconvert). The text
    # is escaped already, so ansi2html adds its spans and nothing else. A new converter each
    # time, as one keeps every truecolour it has met. Remembered: choosing the part that
    # fits converts it, and writing the block converts it again.
    return Ansi2HTMLConverter(inline=True, dark_bg=False, escaped=False).convert(markup, full=False)


def _whole(text: str, part: str, keep: str) -> str:
    """``part``, a head or tail of ``text``, without the piece of an SGR sequence a cut left at its edge."""
    if keep == "tail":
        start = len(text) - len(part)
        escape = text.rfind("\x1b", 0, start)
        sequence = _SGR.match(text, escape) if escape >= 0 else None
        return text[sequence.end() :] if sequence is not None and sequence.end() > start else part
    escape = part.rfind("\x1b")
    return part[:escape] if escape >= 0 and _SGR.match(part, escape) is None else part


def _fit_html(text: str, part: str, budget: int, *, keep: str) -> tuple[str, str]:
    """``part`` (a head or tail of ``text`` from :func:`_fit`) and its HTML, held to ``budget`` bytes.

    In coloured text (SGR sequences only) the spans make the HTML longer than the escaped
    text :func:`_fit` measures: the part is cut shorter until its HTML fits, never inside
    a sequence, and only then converted, so no half span or half escape is left.
    """
    if "\x1b[" not in text:
        return part, esc(part)
    part = _whole(text, part, keep)
    markup = _spans(part)
    while (size := len(markup.encode("utf-8", "replace"))) > budget:
        part = _whole(text, _fit(part, _cost(part) * budget // size, keep=keep), keep)
        markup = _spans(part)
    return part, markup


# -- images and links ---------------------------------------------------------------------------

_IMAGE_TYPES = ("png", "jpeg", "gif", "webp")
_DATA_URL = re.compile(r"data:image/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/]+={0,2})")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_WEB_URL = re.compile(r"https?://[^\s\"'<>\\`\x00-\x1f\x7f]+", re.IGNORECASE)


def _image_src(url: object) -> str | None:
    """``url`` if it is a ``data:image/(png|jpeg|gif|webp);base64,`` URL with valid base64, else None."""
    if not isinstance(url, str) or len(url) > MAX_IMAGE_CHARS:
        return None
    match = _DATA_URL.fullmatch(url)
    if match is None or len(match.group(2)) % 4:
        return None
    return url


def _sniff(data: str) -> str:
    try:
        head = base64.b64decode(data[:24])
    except (binascii.Error, ValueError):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return "png"


def _base64_image(data: object, mime: object = None) -> str | None:
    """A data URL for base64 image data; the type from ``mime`` or else from the bytes (PNG if unsure)."""
    if not isinstance(data, str):
        return None
    if data.startswith("data:"):
        return _image_src(data)
    data = data.replace("\n", "").replace("\r", "")
    if not data or len(data) > MAX_IMAGE_CHARS or len(data) % 4 or not _BASE64.fullmatch(data):
        return None
    if mime is None:
        kind = _sniff(data)
    else:
        kind = _s(mime).lower().removeprefix("image/")
        kind = "jpeg" if kind == "jpg" else kind
        if kind not in _IMAGE_TYPES:
            return None
    return f"data:image/{kind};base64,{data}"


def _img(src: str, alt: str) -> str:
    return f'<img src="{esc(src)}" alt="{esc(alt)}" style="{_IMG}" />'


def _web_url(url: object) -> str | None:
    if isinstance(url, str) and len(url) <= _LINE_CHARS and _WEB_URL.fullmatch(url):
        return url
    return None


def _href(url: object) -> str | None:
    """``url`` if a link may point there: the web, or mail."""
    if isinstance(url, str) and re.fullmatch(r"mailto:[^\s\"'<>\\`]+", url):
        return url
    return _web_url(url)


def _link(url: object, label: str | None = None) -> str:
    safe = _web_url(url)
    text = label if label is not None else _s(url)
    if safe is None:
        return f'<code style="{_CODE}">{esc(_cut(text, _FIELD_BYTES))}</code>'
    return f'<a href="{esc(safe)}" target="_blank" rel="noopener noreferrer">{esc(_cut(text, _FIELD_BYTES))}</a>'


# -- pieces every card uses -----------------------------------------------------------------------


def _badge(label: str, colour: str) -> str:
    return f'<span style="{_BADGE};background:{colour}">{esc(label)}</span>'


def _card(colour: str, inner: str, *, extra: str = "") -> str:
    return (
        f'<div style="{_BOX};border-left:3px solid {colour};padding:1px 0 1px 8px;margin:3px 0'
        f'{";" + extra if extra else ""}">{inner}</div>'
    )


def _label(text: str) -> str:
    return f'<span style="{_DIM};{_SMALL};font-weight:600">{esc(text)}</span>'


def _dim(text: str) -> str:
    return f'<span style="{_DIM}">{esc(text)}</span>' if text else ""


_CURSOR = '<span style="opacity:0.6">\u258d</span>'


def _with_cursor(markup: str) -> str:
    """Put the streaming cursor at the end of the last paragraph, or after the content."""
    stripped = markup.rstrip()
    if stripped.endswith("</p>"):
        return stripped[: -len("</p>")] + f" {_CURSOR}</p>"
    return markup + _CURSOR


# -- blocks to HTML --------------------------------------------------------------------------------

# The colour of each tone a block may name.
TONES = {
    "ok": _OK,
    "error": _ERR,
    "warn": _WARN,
    "running": _RUN,
    "muted": _GREY,
    "starting": "#57606a",
    "answer": _C_ANSWER,
    "quiet": _C_MUTED,
    "think": _C_THINK,
    "file": _C_FILE,
    "plan": _C_PLAN,
    "tool": _C_TOOL,
    "web": _C_WEB,
    "image": _C_IMAGE,
    "user": _C_USER,
    "agent": _C_AGENT,
    "review": _C_REVIEW,
}
# The colour of a file's badge in a diff, by what happened to it.
_FILE_TONE = {"add": "ok", "delete": "error", "update": "file", "move": "plan"}
_LOOKS = {"": "", "dim": _DIM, "quiet": f"{_DIM};font-size:12px", "review": "background:rgba(188,76,0,0.06)"}
_NOTE_SIGN = {"warn": "\u26a0", "info": "\u21bb", "error": "\u2716"}
_NOTE_STYLE = {
    "dim": f"{_DIM};{_SMALL}",
    "italic": f"{_DIM};font-style:italic",
    "warn": f"color:{_WARN}",
    "info": f"color:{_GREY}",
    "error": (
        f"color:{_ERR};font-weight:bold;margin-top:2px;padding:2px 8px;"
        f"border-left:3px solid {_ERR};background:rgba(207,34,46,0.08)"
    ),
}
_DIFF_HEADERS = (
    "diff --git ", "index ", "new file mode", "deleted file mode", "similarity index",
    "rename from", "rename to", "old mode", "new mode", "Binary files",
)  # fmt: skip
_DIFF_STYLE = {"head": _HEAD, "hunk": _HUNK, "add": _ADD_BG, "del": _DEL_BG, "note": "opacity:0.6"}


def _colour(tone: str) -> str:
    return TONES.get(tone, _GREY)


def _inline(piece: Inline) -> str:
    if isinstance(piece, Link):
        return _link(piece.url, piece.label or None)
    style = piece.style
    if style == "code":
        return f'<code style="{_CODE}">{esc(piece.text)}</code>'
    if style == "dim":
        return _dim(piece.text)
    if style == "bold":
        colour = f' style="color:{_colour(piece.tone)}"' if piece.tone else ""
        return f"<b{colour}>{esc(piece.text)}</b>"
    if style == "italic":
        return f"<em>{esc(piece.text)}</em>"
    return esc(piece.text)


def _title_inline(title: Title) -> str:
    """A title's pieces, to go in a line or a summary."""
    subject = "".join(_inline(piece) for piece in title.subject)
    badge = _badge(title.badge.label, _colour(title.badge.tone)) if title.badge else ""
    out = " ".join(part for part in (_label(title.label) if title.label else "", subject, badge) if part)
    facts = " \u00b7 ".join(fact for fact in title.facts if fact)
    if facts:
        out += f'<span style="{_DIM}"> \u00b7 {esc(facts)}</span>'
    return out


def _note(note: Note) -> str:
    text = f"{note.kind}: {note.text}" if note.kind else note.text
    if note.tone == "plain":
        return f"<div>{esc(text)}</div>"
    if note.tone in ("bold", "ask"):
        return f"<div><b>{esc(text)}</b></div>"
    sign = _NOTE_SIGN.get(note.tone)
    body = f'{sign} <span style="white-space:pre-wrap">{esc(text)}</span>' if sign else esc(text)
    return f'<div style="{_NOTE_STYLE.get(note.tone, _NOTE_STYLE["dim"])}">{body}</div>'


def _pre(markup: str) -> str:
    return f'<pre style="{_PRE}">{markup}</pre>'


def _small_note(text: str) -> str:
    return f'<div style="{_DIM};{_SMALL}">{esc(text)}</div>' if text else ""


def _output(block: Output) -> str:
    tail = block.keep == "tail"
    preview, note = _pre(_spans(block.shown)), _small_note(block.note)
    markup = note + preview if tail else preview + note
    if block.fold:
        full, cut = _pre(_spans(block.full)), _small_note(block.full_note)
        markup += (
            f'<details><summary style="{_DIM};{_SMALL};cursor:pointer">{esc(block.fold)}</summary>'
            f"{cut + full if tail else full + cut}</details>"
        )
    return markup


def _diff_class(lines: tuple[str, ...], index: int) -> str:
    line = lines[index]
    if line.startswith(_DIFF_HEADERS):
        return "head"
    if line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ "):
        return "head"
    if line.startswith("+++ ") and index > 0 and lines[index - 1].startswith("--- "):
        return "head"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    if line.startswith("\\"):
        return "note"
    return ""


def _diff_lines(lines: tuple[str, ...], budget: int) -> tuple[str, int]:
    """Coloured diff lines within ``budget`` bytes; returns the HTML and how many lines it holds."""
    out: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        shown = _cut(line, _LINE_CHARS)
        style = _DIFF_STYLE.get(_diff_class(lines, index))
        piece = f'<span style="{style}">{esc(shown)}</span>\n' if style and shown else esc(shown) + "\n"
        size = len(piece.encode("utf-8", "replace"))
        if used + size > budget:
            return "".join(out), index
        out.append(piece)
        used += size
    return "".join(out), len(lines)


def _file_head(file: DiffFile) -> str:
    counts = ""
    if file.added or file.removed:
        counts = (
            f'<span style="color:{_OK}">+{file.added}</span> <span style="color:{_ERR}">\u2212{file.removed}</span>'
        )
    return (
        f'<div style="margin-top:3px">{_badge(file.label, _colour(_FILE_TONE.get(file.label, "muted")))} '
        f'<code style="{_CODE}">{esc(file.where)}</code> {counts}</div>'
    )


def _diff(diff: Diff) -> str:
    """The files' diffs, coloured, within DIFF_BYTES of HTML."""
    parts: list[str] = []
    budget = DIFF_BYTES
    for number, file in enumerate(diff.files):
        if budget <= 0:
            parts.append(_small_note(more_files(len(diff.files) - number)))
            break
        head = _file_head(file) if file.label else ""
        budget -= len(head.encode("utf-8", "replace"))
        body, held = _diff_lines(file.lines, budget) if file.lines else ("", 0)
        markup = _pre(body) if held else ""
        if held < len(file.lines):
            left = len(file.lines) - held
            markup += _small_note(f"\u2026 {left:,} more lines not shown; the full diff is in {WHERE_FULL}")
        budget = max(0, budget - len(markup.encode("utf-8", "replace")))
        parts.append(head + markup)
    return "".join(parts)


def _step(state: str, text: str) -> str:
    style = {"active": ' style="font-weight:bold"', "done": f' style="{_DIM}"'}.get(state, "")
    return f"<div{style}>{STEP_BOX.get(state, STEP_BOX['todo'])} {esc(text)}</div>"


def _links(block: Links) -> str:
    items = "".join(f"<li>{_inline(link)}</li>" for link in block.links)
    return f'<ul style="margin:0;padding-left:1.6em">{items}</ul>' if items else ""


def _rule(block: Rule) -> str:
    line = f'<span style="flex:1;border-top:1px dashed {_C_MUTED}"></span>'
    return (
        f'<div style="{_BOX};{_DIM};{_SMALL};display:flex;align-items:center;gap:8px;margin:6px 0">'
        f"{line}{esc(block.text)}{line}</div>"
    )


def _card_html(card: Card) -> str:
    inner = to_html(card.blocks)
    if card.look.startswith("bare"):
        extra = f";{_DIM}" if card.look == "bare-dim" else ""
        return f'<div style="{_BOX}{extra}">{inner}</div>'
    return _card(_colour(card.tone), inner, extra=_LOOKS.get(card.look, ""))


def _block(block: Block) -> str:
    if isinstance(block, Title):
        return f"<div>{_title_inline(block)}</div>"
    if isinstance(block, Markdown):
        from ._markdown import _markdown_parts  # the Markdown module builds on this one

        markup = _markdown_parts(block.text)[0]
        return _with_cursor(markup) if block.streaming else markup
    if isinstance(block, Note):
        return _note(block)
    if isinstance(block, Code):
        return f'<div><code style="{_CODE}">{esc(block.text)}</code></div>' if block.inline else _pre(esc(block.text))
    if isinstance(block, Output):
        return _output(block)
    if isinstance(block, Diff):
        return _diff(block)
    if isinstance(block, Checklist):
        return "".join(_step(state, text) for state, text in block.steps)
    if isinstance(block, Image):
        return _img(block.src, block.alt)
    if isinstance(block, Links):
        return _links(block)
    if isinstance(block, Rule):
        return _rule(block)
    if isinstance(block, Fold):
        preview = f" \u00b7 {esc(block.preview)}" if block.preview else ""
        return (
            f'<details><summary style="cursor:pointer">{_title_inline(block.title)}{preview}</summary>'
            f"<div>{to_html(block.blocks)}</div></details>"
        )
    if isinstance(block, Card):
        return _card_html(block)
    raise TypeError(f"not a block: {type(block).__name__}")


def to_html(blocks: Sequence[Block]) -> str:
    """Blocks as HTML: every text escaped here, every part bounded as the blocks are."""
    return "".join(map(_block, blocks))


def turn_html(header: str, body: str) -> str:
    """A whole turn: its header's HTML and its body's, in one box."""
    return f'<div class="codex-magic" style="{_BOX}">{header}<div style="margin-top:4px">{body}</div></div>'
