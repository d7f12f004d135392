"""Pure rendering: item state in, HTML, text and Markdown out.

Every string that came from Codex, the model or a command reaches HTML through
:func:`esc` (in :mod:`codex_magic._html`, the one place that escapes), or through the
Markdown renderer (:mod:`codex_magic._markdown`), which runs with raw HTML off so it
escapes too; nothing outside these three modules builds markup. The Markdown form is
built from the same parse with every character that could start HTML
backslash-escaped, so a frontend that renders it meets no raw HTML either.
Control sequences (colours, window titles, clipboard writes, cursor moves) are
removed in one place for all three forms: every :class:`Rendered` is built clean.
Before that, the colours of command output become styled spans in its HTML.
Every renderer bounds its output: a running command costs a few kilobytes per
update however long its output. The module imports neither IPython nor ipywidgets.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ._html import (
    _ADD_BG,
    _BOX,
    _C_AGENT,
    _C_ANSWER,
    _C_FILE,
    _C_IMAGE,
    _C_MUTED,
    _C_PLAN,
    _C_REVIEW,
    _C_THINK,
    _C_TOOL,
    _C_USER,
    _C_WEB,
    _CODE,
    _DEL_BG,
    _DIM,
    _ERR,
    _GREY,
    _HEAD,
    _HUNK,
    _LINE_CHARS,
    _OK,
    _PRE,
    _RUN,
    _SMALL,
    _STATUS_COLOUR,
    _STATUS_STYLE,
    _WARN,
    _badge,
    _base64_image,
    _card,
    _dim,
    _fit,
    _fit_html,
    _image_src,
    _img,
    _label,
    _link,
    _web_url,
    _with_cursor,
)
from ._markdown import _fenced as _fence
from ._markdown import _markdown_parts, _md_code, _md_escape
from ._requests import COMMAND, ELICITATION, FILE_CHANGE, PERMISSIONS, QUESTION, Request, permission_lines
from ._text import (
    _FIELD_BYTES,
    Json,
    _count,
    _cut,
    _d,
    _duration,
    _json,
    _l,
    _n,
    _one_line,
    _s,
    _seconds,
    keep_colour,
    plain,
    short_id,
)

# Re-exported: other modules and the tests import these from here. The image size
# check reads ``_html.MAX_IMAGE_CHARS``, so that is the one to change or patch.
from ._html import MAX_IMAGE_CHARS as MAX_IMAGE_CHARS
from ._html import esc as esc
from ._markdown import PIECE_CHARS as PIECE_CHARS
from ._text import shown_command as shown_command
from ._markdown import next_cut as next_cut

# A long text (command output, tool result) shows a preview of this many lines and
# characters; its escaped HTML is also held to OUTPUT_TAIL_CHARS bytes.
OUTPUT_TAIL_CHARS = 4000
OUTPUT_TAIL_LINES = 30
# A finished item folds away up to this much more (bytes of HTML).
FULL_OUTPUT_BYTES = 64 * 1024
# Diffs: bytes of HTML per item or turn diff, lines in the text and Markdown forms.
DIFF_BYTES = 48 * 1024
DIFF_TEXT_LINES = 400
WHERE_FULL = "_codex_result.items"

_COMMAND_BYTES = 600
_ARGS_CHARS = 200
_MAX_IMAGES = 4


@dataclass(frozen=True)
class Rendered:
    """One piece of output in three forms: HTML, plain text, GitHub-flavoured Markdown.

    Each form is stored without control sequences or control characters (see
    :func:`codex_magic._text.plain`): whatever Codex, the model or a command printed,
    no output of the package carries an escape sequence. Colour survives only as the
    styled spans the HTML of command output holds.
    """

    html: str
    text: str
    markdown: str = ""

    def __post_init__(self) -> None:
        # The one place for all three forms; one compiled-regex pass over each.
        for name in ("html", "text", "markdown"):
            object.__setattr__(self, name, plain(getattr(self, name)))


@dataclass(frozen=True)
class TurnInfo:
    """What the header shows besides the status."""

    thread_id: str | None = None
    model: str | None = None
    sandbox: str | None = None
    cwd: str | None = None
    approval: str | None = None


_EMPTY = Rendered("", "", "")


# -- bounded previews -------------------------------------------------------------------------


def _fenced(text: str, info: str = "") -> str:
    """A Markdown code block of ``text`` as it will be shown, without control sequences."""
    # The fence must outrun every run of backticks, also one that forms only once a
    # sequence between backticks is removed; else it closes early and the rest is Markdown.
    return _fence(plain(text), info)


def _preview(text: str, *, keep: str) -> str:
    """The first or last OUTPUT_TAIL_LINES lines, at most OUTPUT_TAIL_CHARS characters."""
    if keep == "tail":
        end = len(text) - 1 if text.endswith("\n") else len(text)
        start = 0
        for _ in range(OUTPUT_TAIL_LINES):
            newline = text.rfind("\n", 0, end)
            if newline < 0:
                start = 0
                break
            start, end = newline + 1, newline
        else:
            start = end + 1
        start = max(start, len(text) - OUTPUT_TAIL_CHARS)
        shown = text[start:]
    else:
        end = -1
        for _ in range(OUTPUT_TAIL_LINES):
            end = text.find("\n", end + 1)
            if end < 0:
                end = len(text)
                break
        shown = text[: min(end + 1, OUTPUT_TAIL_CHARS)]
    return _fit(shown, OUTPUT_TAIL_CHARS, keep=keep)


@dataclass(frozen=True)
class _Parts:
    """Fragments of the three forms, put together by each renderer."""

    html: str = ""
    text: str = ""
    markdown: str = ""
    shown: str = ""  # the preview itself
    note: str = ""  # what the preview leaves out


def _long_text(text: str, *, done: bool, keep: str, what: str) -> _Parts:
    """A long text as a bounded preview; when done, the rest folded away in ``<details>``."""
    if not text:
        return _Parts()
    if "\x1b[" in text:
        # Colour is kept for the HTML; all else goes before any cut, so a cut can split no
        # sequence but an SGR one, which _fit_html avoids.
        text = keep_colour(text)
    shown, shown_html = _fit_html(text, _preview(text, keep=keep), OUTPUT_TAIL_CHARS, keep=keep)
    left = len(text) - len(shown)
    # Outputs run to megabytes: count their line ends once, and those of the short parts.
    newlines = text.count("\n") if left else 0
    note = ""
    if left:
        where = "earlier" if keep == "tail" else "more"
        note = f"\u2026 {left:,} {where} characters ({_count(newlines - shown.count(chr(10)), 'line')}) not shown"
        if done:
            note += f"; the full text is in {WHERE_FULL}"
    markup = f'<pre style="{_PRE}">{shown_html}</pre>'
    if note:
        note_html = f'<div style="{_DIM};{_SMALL}">{esc(note)}</div>'
        markup = note_html + markup if keep == "tail" else markup + note_html
    if left and done:
        full, full_html = _fit_html(text, _fit(text, FULL_OUTPUT_BYTES, keep=keep), FULL_OUTPUT_BYTES, keep=keep)
        dropped = len(text) - len(full)
        inner = f'<pre style="{_PRE}">{full_html}</pre>'
        if dropped:
            side = "first" if keep == "tail" else "last"
            cut_note = (
                f"\u2026 the {side} {dropped:,} characters ({_count(newlines - full.count(chr(10)), 'line')}) are left out here; "
                f"the full text is in {WHERE_FULL}"
            )
            cut_html = f'<div style="{_DIM};{_SMALL}">{esc(cut_note)}</div>'
            inner = cut_html + inner if keep == "tail" else inner + cut_html
        markup += (
            f'<details><summary style="{_DIM};{_SMALL};cursor:pointer">'
            f"{esc(what)} ({_count(newlines + (not text.endswith(chr(10))), 'line')})</summary>{inner}</details>"
        )
    body = shown.rstrip("\n")
    plain = "\n".join(p for p in ((note, body) if keep == "tail" else (body, note)) if p)
    md = _fenced(body)
    if note:
        md = f"*{_md_escape(note)}*\n\n{md}" if keep == "tail" else f"{md}\n\n*{_md_escape(note)}*"
    return _Parts(markup, plain, md, body, note)


# -- item status ---------------------------------------------------------------------------------


def _status(status: object, mode: str) -> tuple[str, str] | None:
    """The label and colour of an item's status, or None when it has none."""
    if mode == "unfinished":
        return "unfinished", _GREY
    if mode == "running":
        return "running", _RUN
    label = _s(status)
    if not label:
        return None
    label = "in progress" if label == "inProgress" else label
    return label, _STATUS_COLOUR.get(label, _GREY)


def _status_html(state: tuple[str, str] | None) -> str:
    return f" {_badge(*state)}" if state else ""


def _status_text(state: tuple[str, str] | None) -> str:
    return f"  [{state[0]}]" if state else ""


def _status_md(state: tuple[str, str] | None) -> str:
    return f" \u00b7 *{_md_escape(state[0])}*" if state else ""


# -- header -------------------------------------------------------------------------------------------


def _usage_text(usage: Json | None, turn_tokens: int | None) -> str:
    """Token usage in the one vocabulary of every output, each number saying what it counts.

    ``tokens: 240 this turn (all its model requests), 1,240 this thread`` and
    ``context: 120 of 272,000 tokens (0%)``: the context window holds what the latest
    model request sent and received.
    """
    if not isinstance(usage, dict) or not usage:
        return ""
    last_tokens = _n(_d(usage.get("last")).get("totalTokens")) or 0
    thread = f"{_n(_d(usage.get('total')).get('totalTokens')) or 0:,.0f} this thread"
    this = f"{turn_tokens:,} this turn (all its model requests), " if turn_tokens is not None else ""
    parts = [f"tokens: {this}{thread}"]
    window = _n(usage.get("modelContextWindow"))
    if window:
        parts.append(f"context: {last_tokens:,.0f} of {window:,.0f} tokens ({100 * last_tokens / window:.0f}%)")
    return " \u00b7 ".join(parts)


def render_header(
    *,
    status: str,
    elapsed: float,
    info: TurnInfo,
    usage: Json | None = None,
    turn_tokens: int | None = None,
    error: str | None = None,
    retry: str | None = None,
) -> Rendered:
    """The status line: status, elapsed time, model, sandbox, thread, tokens, what it waits for, error.

    ``retry`` is the line saying what a running turn waits for (a retry, a silent model).
    """
    colour, label = _STATUS_STYLE.get(status, (_GREY, status))
    # Whole seconds while it runs: the header then changes about once a second.
    facts = [f"{elapsed:.0f} s" if status in ("running", "starting") else f"{elapsed:.1f} s"]
    if info.model:
        facts.append(info.model)
    if info.sandbox:
        facts.append(f"sandbox {info.sandbox}")
    if info.approval:
        facts.append(f"approval {info.approval}")
    if info.thread_id:
        facts.append(f"thread {short_id(info.thread_id)}")
    tokens = _usage_text(usage, turn_tokens)
    if tokens:
        facts.append(tokens)
    joined = " \u00b7 ".join(facts)
    text = f"[codex] {label} \u00b7 {joined}"
    markup = (
        f'<div style="{_BOX}"><b style="color:{colour}">{esc(label)}</b> '
        f'<span style="{_DIM}">\u00b7 {esc(joined)}</span>'
    )
    md = f"**{_md_escape(label)}** \u00b7 {_md_escape(joined)}"
    if retry and status == "running":
        text += f"\n  {retry}"
        markup += f'<div style="color:{_WARN}">\u21bb {esc(retry)}</div>'
        md += f"  \n\u21bb {_md_escape(_one_line(retry, 1000))}"
    if error:
        text += f"\n  error: {error}"
        markup += (
            f'<div style="color:{_ERR};font-weight:bold;margin-top:2px;padding:2px 8px;'
            f'border-left:3px solid {_ERR};background:rgba(207,34,46,0.08)">'
            f'\u2716 error: <span style="white-space:pre-wrap">{esc(error)}</span></div>'
        )
        md += f"\n\n> **error:** {_md_escape(_one_line(error, 4000))}"
    return Rendered(markup + "</div>", text, md)


# -- item kinds -----------------------------------------------------------------------------------------

# Each renderer gets the wire dict and a mode: "running", "done" or "unfinished"
# (still in flight when the turn ended).
_Renderer = Callable[[Json, str], Rendered]


def _unfinished_note(mode: str) -> tuple[str, str, str]:
    if mode != "unfinished":
        return "", "", ""
    return f" {_badge('unfinished', _GREY)}", " [unfinished]", "\n\n*(unfinished)*"


def _agent_message(item: Json, mode: str) -> Rendered:
    body = _s(item.get("text"))
    commentary = item.get("phase") == "commentary"
    markup, md = _markdown_parts(body)
    if mode == "running":
        markup = _with_cursor(markup)
    mark_html, mark_text, mark_md = _unfinished_note(mode)
    if commentary:
        inner = f"{_label('commentary')}{mark_html}{markup}"
        html_out = _card(_C_MUTED, inner, extra=f"{_DIM};font-size:12px")
        text = f"(commentary) {body}"
        md = "*commentary*\n\n" + "\n".join(f"> {line}".rstrip() for line in md.split("\n")) if md else ""
    else:
        html_out = _card(_C_ANSWER, (mark_html and f"<div>{mark_html}</div>") + markup)
        text = body
    if not body and mode == "done":
        return _EMPTY
    return Rendered(html_out, text + mark_text, (md + mark_md).strip("\n"))


def _reasoning(item: Json, mode: str) -> Rendered:
    summary = [_s(part) for part in _l(item.get("summary")) if _s(part)]
    raw = [_s(part) for part in _l(item.get("content")) if _s(part)]
    source = "\n\n".join(summary) if summary else "\n\n".join(raw)
    mark_html, mark_text, mark_md = _unfinished_note(mode)
    if not source:
        if mode != "running":
            return _EMPTY
        markup = _card(_C_THINK, f'<span style="{_DIM}">thinking\u2026</span>')
        return Rendered(markup, "(thinking\u2026)", "*thinking\u2026*")
    what = "thinking" if summary else "thinking (raw)"
    gist = _one_line(source.replace("*", "").replace("#", ""), 80)
    markup, md = _markdown_parts(source)
    if mode == "running":
        markup = _with_cursor(markup)
    if mode != "running" and "\n" not in source and gist == source:
        # A short summary is whole in the one line: nothing to unfold.
        inner = f"<div>{esc(what)} \u00b7 {esc(gist)}{mark_html}</div>"
    else:
        inner = (
            f'<details><summary style="cursor:pointer">{esc(what)} \u00b7 {esc(gist)}{mark_html}</summary>'
            f"<div>{markup}</div></details>"
        )
    quoted = "\n".join(f"> {line}".rstrip() for line in md.split("\n"))
    return Rendered(
        _card(_C_THINK, inner, extra=_DIM),
        f"({what}) {source}{mark_text}",
        f"*{what}*\n\n{quoted}{mark_md}",
    )


def command_line(item: Json) -> str:
    """A command as every output shows it: ``$`` and the command as the model wrote it."""
    return f"$ {_cut(shown_command(_s(item.get('command'))), 1000)}"


def command_mark(item: Json, mode: str) -> tuple[str, str]:
    """A command's status as every output shows it, e.g. ``exit 0 \u00b7 120 ms``, and its colour.

    ``mode`` is "running", "done" or "unfinished" (still in flight when the turn ended).
    """
    badge, colour = _command_badge(item, mode)
    duration = _duration(item.get("durationMs"))
    return (f"{badge} \u00b7 {duration}" if duration else badge), colour


def _command_badge(item: Json, mode: str) -> tuple[str, str]:
    code = item.get("exitCode")
    status = _s(item.get("status"))
    if mode == "unfinished":
        return "unfinished", _GREY
    if mode == "running":
        return "running", _RUN
    if status == "declined":
        return "declined", _WARN
    if isinstance(code, int) and not isinstance(code, bool):
        return f"exit {code}", _OK if code == 0 else _ERR
    if status == "inProgress":
        return "in progress", _RUN
    return (status or "ended"), (_ERR if status == "failed" else _GREY)


def _command(item: Json, mode: str) -> Rendered:
    command = shown_command(_s(item.get("command")))
    cwd = _s(item.get("cwd"))
    output = _s(item.get("aggregatedOutput"))
    badge, colour = _command_badge(item, mode)
    duration = _duration(item.get("durationMs"))
    when = f" \u00b7 {duration}" if duration else ""
    shown = _fit(command, _COMMAND_BYTES, keep="head")
    more = f" \u2026 (+{len(command) - len(shown):,} characters)" if len(shown) < len(command) else ""
    place = _fit(cwd, _FIELD_BYTES, keep="tail")
    place = place if place == cwd else "\u2026" + place
    where = f" \u00b7 {place}" if place else ""
    head = (
        f'<div><code style="{_CODE}">$ {esc(shown)}</code>{_dim(more)} {_badge(badge, colour)}'
        f'<span style="{_DIM};{_SMALL}">{esc(when)}{esc(where)}</span></div>'
    )
    block = _long_text(output, done=mode == "done", keep="tail", what="all output")
    line = command_line(item)
    text = f"{line}  [{command_mark(item, mode)[0]}]" + (f"\n{block.text}" if block.text else "")
    facts = " \u00b7 ".join(p for p in (_md_code(badge), duration, _md_code(_cut(cwd, _FIELD_BYTES))) if p)
    console = line + (f"\n{block.shown}" if block.shown else "")
    md = f"{facts}\n\n" + (f"*{_md_escape(block.note)}*\n\n" if block.note else "") + _fenced(console, "console")
    return Rendered(_card(colour, head + block.html), text, md)


_DIFF_HEADERS = (
    "diff --git ", "index ", "new file mode", "deleted file mode", "similarity index",
    "rename from", "rename to", "old mode", "new mode", "Binary files",
)  # fmt: skip


def _diff_like(text: str) -> bool:
    lines = [line for line in text.split("\n") if line]
    if any(line.startswith(("@@", "diff --git ", "--- ", "+++ ")) for line in lines):
        return True
    return bool(lines) and all(line[0] in "+- \\" for line in lines)


def _diff_class(lines: list[str], index: int) -> str:
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


_DIFF_STYLE = {"head": _HEAD, "hunk": _HUNK, "add": _ADD_BG, "del": _DEL_BG, "note": "opacity:0.6"}


def _diff_stats(lines: list[str]) -> tuple[int, int]:
    """Added and removed lines (the same rule as ``_diff_class``, in one fast pass)."""
    added = removed = 0
    previous = ""
    for line in lines:
        if line.startswith("+"):
            if line.startswith("+++ ") and previous.startswith("--- "):
                removed -= 1  # a file header pair, not a change
            else:
                added += 1
        elif line.startswith("-"):
            removed += 1
        previous = line
    return added, removed


def _diff_html(lines: list[str], budget: int) -> tuple[str, int]:
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


def _diff_lines(diff: str, kind: str) -> list[str]:
    text = diff.rstrip("\n")
    if not text:
        return []
    lines = text.split("\n")
    if kind in ("add", "delete") and not _diff_like(text):
        # Added and deleted files carry their content, not a diff.
        sign = "+" if kind == "add" else "-"
        lines = [sign + line for line in lines]
    return lines


@dataclass
class _Budget:
    """What is left to spend on one item's diffs: bytes of HTML, lines of text."""

    html: int = DIFF_BYTES
    lines: int = DIFF_TEXT_LINES


def _diff_parts(lines: list[str], budget: _Budget) -> tuple[str, str, str]:
    """(HTML, text, Markdown) of diff lines, spending from ``budget``."""
    if not lines:
        return "", "", ""
    body, held = _diff_html(lines, budget.html)
    markup = f'<pre style="{_PRE}">{body}</pre>' if held else ""
    if held < len(lines):
        note = f"\u2026 {len(lines) - held:,} more lines not shown; the full diff is in {WHERE_FULL}"
        markup += f'<div style="{_DIM};{_SMALL}">{esc(note)}</div>'
    budget.html = max(0, budget.html - len(markup.encode("utf-8", "replace")))
    kept = min(len(lines), budget.lines)
    budget.lines -= kept
    text = "\n".join(_cut(line, _LINE_CHARS) for line in lines[:kept])
    md = _fenced(text, "diff")
    if kept < len(lines):
        note = f"\u2026 {len(lines) - kept:,} more lines; the full diff is in {WHERE_FULL}"
        text += ("\n" if text else "") + note
        md += ("\n\n" if md else "") + f"*{_md_escape(note)}*"
    return markup, text, md


_KIND_COLOUR = {"add": _OK, "delete": _ERR, "update": _C_FILE, "move": _C_PLAN}


@dataclass(frozen=True)
class _FileDiff:
    label: str  # add, delete, update or move
    where: str  # the path, or "old \u2192 new"
    lines: list[str]
    added: int
    removed: int


def _file_diff(change: object) -> _FileDiff:
    change = change if isinstance(change, dict) else {"path": _s(change)}
    raw_kind = change.get("kind")
    kind_info = raw_kind if isinstance(raw_kind, dict) else {"type": raw_kind}
    kind = _s(kind_info.get("type")) or "update"
    path = _s(change.get("path"))
    move = _s(kind_info.get("move_path") or kind_info.get("movePath"))
    lines = _diff_lines(_s(change.get("diff")), kind)
    added, removed = _diff_stats(lines)
    label = "move" if kind == "update" and move else kind
    return _FileDiff(label, f"{path} \u2192 {move}" if move else path, lines, added, removed)


def _file_change(item: Json, mode: str) -> Rendered:
    files = [_file_diff(change) for change in _l(item.get("changes"))]
    state = _status(item.get("status"), mode)
    added, removed = sum(f.added for f in files), sum(f.removed for f in files)
    summary = _count(len(files), "file") + (f" \u00b7 +{added:,} \u2212{removed:,}" if added or removed else "")
    parts_html = [f"<div>{_label('file change')} {_dim(summary)}{_status_html(state)}</div>"]
    parts_text = [f"[file change] {summary}{_status_text(state)}"]
    parts_md = [f"**file change** \u00b7 {summary}{_status_md(state)}"]
    budget = _Budget()
    for number, file in enumerate(files):
        if budget.html <= 0 or budget.lines <= 0:
            note = f"\u2026 {_count(len(files) - number, 'more file')}; the full diff is in {WHERE_FULL}"
            parts_html.append(f'<div style="{_DIM};{_SMALL}">{esc(note)}</div>')
            parts_text.append(note)
            parts_md.append(f"*{_md_escape(note)}*")
            break
        counts = ""
        if file.added or file.removed:
            counts = (
                f'<span style="color:{_OK}">+{file.added}</span> '
                f'<span style="color:{_ERR}">\u2212{file.removed}</span>'
            )
        header = (
            f'<div style="margin-top:3px">{_badge(file.label, _KIND_COLOUR.get(file.label, _GREY))} '
            f'<code style="{_CODE}">{esc(_cut(file.where, 1000))}</code> {counts}</div>'
        )
        budget.html -= len(header.encode("utf-8", "replace"))
        diff_html, diff_text, diff_md = _diff_parts(file.lines, budget)
        parts_html.append(header + diff_html)
        parts_text.append(f"{file.label} {file.where}" + (f"\n{diff_text}" if diff_text else ""))
        md = f"{_md_escape(file.label, inline=False)} {_md_code(file.where)}"
        md += f" (+{file.added} \u2212{file.removed})" if file.added or file.removed else ""
        parts_md.append(md + (f"\n\n{diff_md}" if diff_md else ""))
    return Rendered(_card(_C_FILE, "".join(parts_html)), "\n".join(parts_text), "\n\n".join(parts_md))


def _plan_item(item: Json, mode: str) -> Rendered:
    body = _s(item.get("text"))
    markup, md = _markdown_parts(body)
    if mode == "running":
        markup = _with_cursor(markup)
    mark_html, mark_text, mark_md = _unfinished_note(mode)
    return Rendered(
        _card(_C_PLAN, f"<div>{_label('plan')}{mark_html}</div>{markup}"),
        f"(plan)\n{body}{mark_text}",
        f"**plan**\n\n{md}{mark_md}".strip("\n"),
    )


@dataclass(frozen=True)
class _ToolOutput:
    texts: list[str]
    images: list[str]
    notes: list[str]


def _mcp_output(result: Json) -> _ToolOutput:
    texts, images, notes = [], [], []
    for content in _l(result.get("content")):
        content = _d(content)
        kind = _s(content.get("type"))
        if kind == "text":
            texts.append(_s(content.get("text")))
        elif kind == "image":
            src = _base64_image(content.get("data"), content.get("mimeType"))
            if src:
                images.append(src)
            else:
                notes.append(f"[{_s(content.get('mimeType')) or 'image'} not shown]")
        elif kind == "resource":
            resource = _d(content.get("resource"))
            if isinstance(resource.get("text"), str):
                texts.append(resource["text"])
            else:
                notes.append(f"[resource {_s(resource.get('uri'))}]")
        elif kind == "resource_link":
            notes.append(f"[resource {_s(content.get('name') or content.get('uri'))}: {_s(content.get('uri'))}]")
        else:
            notes.append(f"[{kind or 'content'}]")
    if not texts and result.get("structuredContent") is not None:
        texts.append(json.dumps(result["structuredContent"], ensure_ascii=False, indent=2, default=str))
    return _ToolOutput(texts, images, notes)


def _dynamic_output(items: list[Any]) -> _ToolOutput:
    texts, images, notes = [], [], []
    for content in items:
        content = _d(content)
        kind = _s(content.get("type"))
        if kind in ("inputText", "input_text", "text"):
            texts.append(_s(content.get("text")))
        elif kind in ("inputImage", "input_image"):
            src = _image_src(content.get("imageUrl") or content.get("image_url"))
            if src:
                images.append(src)
            else:
                notes.append("[image not shown]")
        else:
            notes.append(f"[{kind or 'content'}]")
    return _ToolOutput(texts, images, notes)


def _tool_call(
    *, name: str, arguments: object, state: tuple[str, str] | None, duration: object,
    output: _ToolOutput, error: str, mode: str, what: str, code: str = "",
) -> Rendered:
    args = arguments if isinstance(arguments, str) else ("" if arguments is None else _json(arguments))
    # Code passed to a tool (run_python, propose_cell) reads as code, not as escaped JSON.
    call = f"{name}(code)" if code else f"{name}({_cut(args, _ARGS_CHARS)})"
    when = _duration(duration)
    colour = _ERR if error else _C_TOOL
    head = (
        f'<div>{_label(what)} <code style="{_CODE}">{esc(call)}</code>{_status_html(state)}'
        f'{(" " + _dim(when)) if when else ""}</div>'
    )
    result = "\n".join(t for t in output.texts if t)
    block = _long_text(result, done=mode == "done", keep="head", what="whole result")
    images = "".join(_img(src, f"{name} image") for src in output.images[:_MAX_IMAGES])
    notes = "".join(f'<div style="{_DIM};{_SMALL}">{esc(_cut(n, _FIELD_BYTES))}</div>' for n in output.notes[:10])
    failure = f'<div style="color:{_ERR};white-space:pre-wrap">\u2716 {esc(_cut(error, 4000))}</div>' if error else ""
    after = f" \u00b7 {when}" if when else ""
    text_parts = [block.text, *output.notes[:10]]
    md_parts = [block.markdown, *(f"![{_md_escape(name)}]({src})" for src in output.images[:_MAX_IMAGES])]
    if output.images:
        text_parts.append(f"[{_count(len(output.images), 'image')}]")
    if error:
        text_parts.append(f"error: {_cut(error, 4000)}")
        md_parts.append(f"> **error:** {_md_escape(_one_line(error, 4000))}")
    shown_code = _cut(code, _CODE_CHARS) if code else ""
    if shown_code:
        head += f'<pre style="{_PRE}">{esc(shown_code)}</pre>'
        text_parts.insert(0, "\n".join("  " + line for line in shown_code.splitlines()))
        md_parts.insert(0, _fenced(shown_code, "python"))
    text = f"\u2192 {call}{_status_text(state)}{after}" + "".join(f"\n{p}" for p in text_parts if p)
    md = f"**{_md_escape(what)}** {_md_code(call)}{_status_md(state)}{after}"
    md += "".join(f"\n\n{p}" for p in md_parts if p)
    return Rendered(_card(colour, head + block.html + images + notes + failure), text, md)


def _mcp_tool_call(item: Json, mode: str) -> Rendered:
    name = ".".join(p for p in (_s(item.get("server")), _s(item.get("tool"))) if p) or "tool"
    error = item.get("error")
    output = _mcp_output(_d(item.get("result")))
    if mode == "running" and item.get("progress"):  # the server's latest progress message
        output.notes.insert(0, f"progress: {_s(item.get('progress'))}")
    return _tool_call(
        name=name,
        arguments=item.get("arguments"),
        state=_status(item.get("status"), mode),
        duration=item.get("durationMs"),
        output=output,
        error=_s(error.get("message")) if isinstance(error, dict) else _s(error),
        mode=mode,
        what="MCP tool",
    )


def _dynamic_tool_call(item: Json, mode: str) -> Rendered:
    name = ".".join(p for p in (_s(item.get("namespace")), _s(item.get("tool"))) if p) or "tool"
    status = item.get("status")
    failed = item.get("success") is False
    if failed and mode == "done" and _s(status) in ("", "completed"):
        status = "failed"
    output = _dynamic_output(_l(item.get("contentItems")))
    arguments = item.get("arguments")
    code = arguments.get("code") if isinstance(arguments, dict) and set(arguments) == {"code"} else None
    return _tool_call(
        name=name,
        arguments=arguments,
        code=code if isinstance(code, str) else "",
        state=_status(status, mode),
        duration=item.get("durationMs"),
        output=output,
        error="the tool reported failure" if failed and not output.texts else "",
        mode=mode,
        what="tool",
    )


def _agents_summary(states: object) -> str:
    counts = Counter(_s(_d(v).get("status")) or "unknown" for v in _d(states).values())
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _sub_agent(parts: list[str], state: tuple[str, str] | None, mode: str) -> Rendered:
    line = _cut(" \u00b7 ".join(p for p in parts if p), 1000)
    return Rendered(
        _card(_C_AGENT, f"<div>{_label('sub-agent')} {esc(line)}{_status_html(state)}</div>"),
        f"[sub-agent] {line}{_status_text(state)}",
        f"**sub-agent** {_md_escape(line)}{_status_md(state)}",
    )


def _collab_agent_tool_call(item: Json, mode: str) -> Rendered:
    prompt = _one_line(_s(item.get("prompt")), 120)
    receivers = ", ".join(short_id(_s(r)) for r in _l(item.get("receiverThreadIds")) if _s(r))
    agents = _agents_summary(item.get("agentsStates"))
    parts = [
        _s(item.get("tool")),
        f"\u201c{prompt}\u201d" if prompt else "",
        _s(item.get("model")),
        f"\u2192 {receivers}" if receivers else "",
        f"agents: {agents}" if agents else "",
    ]
    return _sub_agent(parts, _status(item.get("status"), mode), mode)


def _sub_agent_activity(item: Json, mode: str) -> Rendered:
    path = _s(item.get("agentPath")) or short_id(_s(item.get("agentThreadId")))
    parts = [f"{path} {_s(item.get('kind'))}".strip(), _s(item.get("model")), _s(item.get("reasoningEffort"))]
    return _sub_agent(parts, _status(None, mode), mode)


def _web_search(item: Json, mode: str) -> Rendered:
    action = _d(item.get("action"))
    kind = _s(action.get("type")).replace("_", "").lower()
    query = _s(action.get("query")) or _s(item.get("query")) or ", ".join(_s(q) for q in _l(action.get("queries")))
    url = _s(action.get("url"))
    running = mode == "running"
    if kind == "openpage":
        verb, markup, plain = ("opening" if running else "opened"), _link(url), url
    elif kind == "findinpage":
        pattern = _s(action.get("pattern"))
        verb = "searching for" if running else "searched for"
        markup = f"\u201c{esc(_cut(pattern, _FIELD_BYTES))}\u201d in {_link(url)}"
        plain = f"\u201c{pattern}\u201d in {url}"
    else:
        verb = "searching" if running else "searched"
        markup, plain = f"\u201c{esc(_cut(query, _FIELD_BYTES))}\u201d", f"\u201c{query}\u201d"
    results = [_d(r) for r in _l(item.get("results"))]
    listed = [f"<li>{_link(r.get('url'), _s(r.get('title')) or _s(r.get('url')))}</li>" for r in results[:5]]
    more = f'<div style="{_DIM};{_SMALL}">{len(results)} results</div>' if results else ""
    if listed:
        more += f'<ul style="margin:0;padding-left:1.6em">{"".join(listed)}</ul>'
    mark_html, mark_text, mark_md = _unfinished_note(mode)
    ellipsis = "\u2026" if running else ""
    return Rendered(
        _card(_C_WEB, f"<div>{_label('web')} {esc(verb)} {markup}{ellipsis}{mark_html}</div>{more}"),
        f"[web] {verb}: {_cut(plain, 1000)}{mark_text}",
        f"**web** {_md_escape(verb)} {_md_escape(_cut(plain, 1000))}{mark_md}",
    )


def _image_view(item: Json, mode: str) -> Rendered:
    path = _s(item.get("path"))
    src = _image_src(item.get("dataUrl"))
    name = path.rsplit("/", 1)[-1] or "image"
    markup = f'<div>{_label("image")} <code style="{_CODE}">{esc(_cut(path, 1000))}</code></div>'
    if src:
        markup += _img(src, name)
    md = f"**image** {_md_code(path)}" + (f"\n\n![{_md_escape(name)}]({src})" if src else "")
    return Rendered(_card(_C_IMAGE, markup), f"[image] {path}", md)


def _image_generation(item: Json, mode: str) -> Rendered:
    prompt = _s(item.get("revisedPrompt"))
    saved = _s(item.get("savedPath"))
    failure = item.get("failure")
    failure_text = ""
    if failure:
        info = _d(failure)
        failure_text = _s(info.get("type")) or _s(failure)
        if info.get("limitId"):
            failure_text += f" (limit {_s(info.get('limitId'))})"
    src = _base64_image(item.get("result"))
    state = _status("failed" if failure_text and mode == "done" else item.get("status"), mode)
    markup = f"<div>{_label('image generation')}{_status_html(state)}</div>"
    if prompt:
        markup += f'<div style="{_DIM};font-style:italic">{esc(_cut(prompt, 2000))}</div>'
    if src:
        markup += _img(src, prompt or "generated image")
    if failure_text:
        markup += f'<div style="color:{_ERR}">\u2716 {esc(failure_text)}</div>'
    if saved:
        markup += f'<div style="{_DIM};{_SMALL}">saved to <code style="{_CODE}">{esc(_cut(saved, 1000))}</code></div>'
    text = f"[image generation] {prompt}".rstrip() + (f" \u2192 {saved}" if saved else "") + _status_text(state)
    text += f"\nfailed: {failure_text}" if failure_text else ""
    md = f"**image generation**{_status_md(state)}"
    md += f"\n\n*{_md_escape(_one_line(prompt, 2000))}*" if prompt else ""
    md += (f"\n\n![generated image]({src})" if src else "") + (f"\n\nsaved to {_md_code(saved)}" if saved else "")
    md += f"\n\n> **failed:** {_md_escape(failure_text)}" if failure_text else ""
    return Rendered(_card(_C_IMAGE, markup), text, md)


def _entered_review(item: Json, mode: str) -> Rendered:
    review = _s(item.get("review"))
    return Rendered(
        _card(
            _C_REVIEW,
            f"<div>{_label('review')} <b>review started</b>: {esc(_cut(review, 2000))}</div>",
            extra="background:rgba(188,76,0,0.06)",
        ),
        f"[review] started: {review}",
        f"**review started:** {_md_escape(_one_line(review, 2000))}",
    )


def _exited_review(item: Json, mode: str) -> Rendered:
    review = _s(item.get("review"))
    markup, md = _markdown_parts(review)
    return Rendered(
        _card(_C_REVIEW, f"<div>{_label('review')}</div>{markup}"),
        f"[review]\n{review}",
        f"**review**\n\n{md}".strip("\n"),
    )


def _context_compaction(item: Json, mode: str) -> Rendered:
    label = "compacting context\u2026" if mode == "running" else "context compacted"
    rule = f'<span style="flex:1;border-top:1px dashed {_C_MUTED}"></span>'
    return Rendered(
        f'<div style="{_BOX};{_DIM};{_SMALL};display:flex;align-items:center;gap:8px;margin:6px 0">'
        f"{rule}{esc(label)}{rule}</div>",
        f"\u2500\u2500 {label} \u2500\u2500",
        f"*\u2014 {label} \u2014*",
    )


def _sleep(item: Json, mode: str) -> Rendered:
    label = f"{'waited' if mode == 'done' else 'waiting'} {_seconds(item.get('durationMs'))}"
    mark_html, mark_text, mark_md = _unfinished_note(mode)
    return Rendered(
        f'<div style="{_BOX};{_DIM}">\u23f3 {esc(label)}{mark_html}</div>',
        f"[sleep] {label}{mark_text}",
        f"*\u23f3 {label}*{mark_md}",
    )


def _folded(colour: str, title: str, body: str, images: Sequence[str] = ()) -> tuple[str, str]:
    """A collapsed note: HTML and Markdown."""
    block = _long_text(body, done=True, keep="head", what="all of it")
    pictures = "".join(_img(src, title) for src in images[:_MAX_IMAGES])
    markup = _card(
        colour,
        f'<details><summary style="cursor:pointer;{_DIM}">{esc(title)}</summary>{block.html}{pictures}</details>',
    )
    md = f"*{_md_escape(title)}*" + (f"\n\n{block.markdown}" if block.markdown else "")
    md += "".join(f"\n\n![{_md_escape(title)}]({src})" for src in images[:_MAX_IMAGES])
    return markup, md


def _hook_prompt(item: Json, mode: str) -> Rendered:
    body = "\n\n".join(_s(_d(f).get("text")) for f in _l(item.get("fragments")) if _s(_d(f).get("text")))
    title = f"hook prompt \u00b7 {_one_line(body, 80)}" if body else "hook prompt"
    markup, md = _folded(_C_MUTED, title, body)
    return Rendered(markup, f"[hook] {_cut(body, 1000)}".rstrip(), md)


def _function_call_output(item: Json, mode: str) -> Rendered:
    name = ".".join(p for p in (_s(item.get("namespace")), _s(item.get("name"))) if p) or "function"
    raw = item.get("output")
    if isinstance(raw, list):
        output = _dynamic_output(raw)
        body = "\n".join(t for t in output.texts if t)
        images = output.images
    else:
        body, images = _s(raw), []
    title = f"output of {name} ({len(body):,} characters)"
    markup, md = _folded(_C_TOOL, title, body, images)
    return Rendered(markup, f"[function output] {name}: {_cut(_one_line(body, 1000), 1000)}", md)


def _generic(item: Json, mode: str) -> Rendered:
    kind = _s(item.get("type")) or "item"
    fields = {k: v for k, v in item.items() if k not in ("type", "id") and v not in (None, [], {}, "")}
    shown = list(fields.items())[:30]
    summary = ", ".join(f"{k}={_cut(v, 400) if isinstance(v, str) else v!r}"[:200] for k, v in shown)
    mark_html, mark_text, mark_md = _unfinished_note(mode)
    return Rendered(
        _card(_C_MUTED, f"<b>{esc(kind)}</b> {esc(summary)}{mark_html}", extra=_DIM),
        f"[{kind}] {summary}{mark_text}",
        f"**{_md_escape(kind)}** {_md_escape(summary)}{mark_md}",
    )


def _hidden(item: Json, mode: str) -> Rendered:
    return _EMPTY


def _user_message(item: Json, mode: str) -> Rendered:
    """The cell's prompt shows only the images sent with it; text sent during the turn shows too."""
    parts = [p for p in _l(item.get("content")) if isinstance(p, dict)]
    text = "\n".join(_s(p.get("text")) for p in parts if p.get("type") == "text").strip()
    names = [
        _s(p.get("path")).rsplit("/", 1)[-1] if p.get("type") == "localImage" else _s(p.get("url"))[:80]
        for p in parts
        if p.get("type") in ("localImage", "image")
    ]
    thumbnails = [src for src in (_image_src(u) or _web_url(u) for u in _l(item.get("_images"))) if src]
    prompt = item.get("_prompt", True)
    if prompt and not names:
        return _EMPTY
    title = "you, during the turn" if not prompt else "images sent"
    markup = f"<div>{_label(title)}</div>"
    plain_text, md = f"[{title}]", f"**{title}**"
    if not prompt and text:
        markup += f"<div>{esc(text)}</div>"
        plain_text += f" {text}"
        md += f" {_md_escape(_one_line(text, 4000))}"
    if names:
        markup += f'<div style="{_DIM}">{esc(", ".join(names))}</div>'
        plain_text += f" ({', '.join(names)})"
        md += f" ({_md_escape(', '.join(names))})"
    markup += "".join(_img(src, "image sent") for src in thumbnails)
    return Rendered(_card(_C_USER, markup), plain_text, md)


_RENDERERS: dict[str, _Renderer] = {
    "userMessage": _user_message,
    "hookPrompt": _hook_prompt,
    "agentMessage": _agent_message,
    "functionCallOutput": _function_call_output,
    "plan": _plan_item,
    "reasoning": _reasoning,
    "commandExecution": _command,
    "fileChange": _file_change,
    "mcpToolCall": _mcp_tool_call,
    "dynamicToolCall": _dynamic_tool_call,
    "collabAgentToolCall": _collab_agent_tool_call,
    "subAgentActivity": _sub_agent_activity,
    "webSearch": _web_search,
    "imageView": _image_view,
    "sleep": _sleep,
    "imageGeneration": _image_generation,
    "enteredReviewMode": _entered_review,
    "exitedReviewMode": _exited_review,
    "contextCompaction": _context_compaction,
}
RENDER_FAILED = "could not render this item"


def render_item(item: Json, *, running: bool = False, unfinished: bool = False) -> Rendered:
    """Render one item (a wire dict); unknown or malformed kinds get a readable generic view.

    ``unfinished`` marks an item still in flight when the turn ended (no cursor).
    """
    if not isinstance(item, dict):
        item = {"type": type(item).__name__, "value": item}
    mode = "unfinished" if unfinished else "running" if running else "done"
    kind = item.get("type")
    renderer = _RENDERERS.get(kind, _generic) if isinstance(kind, str) else _generic
    try:
        return renderer(item, mode)
    except Exception as error:  # noqa: BLE001 - a display must not end the turn; the failure is shown
        shown = _generic(item, mode)
        note = f"{RENDER_FAILED} ({type(error).__name__})"
        return Rendered(
            shown.html + f'<div style="{_BOX};color:{_ERR};{_SMALL}">{esc(note)}</div>',
            f"{shown.text}\n({note})",
            f"{shown.markdown}\n\n*({_md_escape(note)})*",
        )


# -- turn-level pieces -------------------------------------------------------------------------------

_STEP = {"completed": ("\u2611", "[x]"), "inProgress": ("\u25d0", "[ ]"), "pending": ("\u2610", "[ ]")}


def render_plan(plan: Json) -> Rendered:
    """The ``turn/plan/updated`` payload as a checklist: explanation, then steps."""
    plan = _d(plan)
    steps = [_d(step) for step in _l(plan.get("plan"))]
    explanation = _s(plan.get("explanation"))
    if not steps and not explanation:
        return _EMPTY
    done = sum(_s(step.get("status")) == "completed" for step in steps)
    count = f"{done}/{len(steps)}" if steps else ""
    rows_html, rows_text, rows_md = [], [], []
    for step in steps:
        status = _s(step.get("status"))
        box, check = _STEP.get(status, _STEP["pending"])
        label = _cut(_s(step.get("step")), 2000)
        style = {"inProgress": ' style="font-weight:bold"', "completed": f' style="{_DIM}"'}.get(status, "")
        rows_html.append(f"<div{style}>{box} {esc(label)}</div>")
        rows_text.append(f"  {box} {label}")
        shown = _md_escape(_one_line(label, 2000))
        rows_md.append(f"- {check} **{shown}** *(in progress)*" if status == "inProgress" else f"- {check} {shown}")
    head = f"<div>{_label('plan')} {_dim(count)}</div>"
    if explanation:
        head += f'<div style="{_DIM};font-style:italic">{esc(_cut(explanation, 4000))}</div>'
    text = f"[plan] {count}".rstrip() + (f"\n  {explanation}" if explanation else "")
    text += "".join(f"\n{r}" for r in rows_text)
    md = f"**plan** {count}".rstrip() + (f"\n\n*{_md_escape(_one_line(explanation, 4000))}*" if explanation else "")
    md += ("\n\n" + "\n".join(rows_md)) if rows_md else ""
    return Rendered(_card(_C_PLAN, head + "".join(rows_html)), text, md)


def _diff_files(diff: str) -> int:
    headers = sum(1 for line in diff.split("\n") if line.startswith("diff --git "))
    if headers:
        return headers
    return sum(1 for line in diff.split("\n") if line.startswith("+++ ")) or 1


def render_diff(diff: str) -> Rendered:
    """The whole turn's unified diff (``turn/diff/updated``), collapsed, coloured and bounded."""
    diff = _s(diff)
    if not diff.strip():
        return _EMPTY
    lines = diff.rstrip("\n").split("\n")
    files = _diff_files(diff)
    added, removed = _diff_stats(lines)
    title = f"turn diff ({_count(files, 'file')}, +{added:,} \u2212{removed:,})"
    markup, text, md = _diff_parts(lines, _Budget())
    return Rendered(
        _card(_C_FILE, f'<details><summary style="cursor:pointer">{esc(title)}</summary>{markup}</details>'),
        f"[{title}]\n{text}",
        f"**{_md_escape(title)}**\n\n{md}",
    )


# Notices that inform rather than warn.
_INFO_NOTICES = frozenset({"replay"})


def render_notice(kind: str, text: str) -> Rendered:
    """Render a line that is not an item (declined requests, warnings, where a replay came from)."""
    mark, colour, sign = ("\u21bb", _GREY, "~") if kind in _INFO_NOTICES else ("\u26a0", _WARN, "!")
    return Rendered(
        f'<div style="{_BOX};color:{colour}">{mark} {esc(kind)}: {esc(text)}</div>',
        f"{sign} {kind}: {text}",
        f"> {mark} **{_md_escape(_s(kind))}**: {_md_escape(_one_line(_s(text), 4000))}",
    )


_CODE_LINES = 80  # lines of code a request box shows
_CODE_CHARS = 8_000  # characters of code a tool call shows

_REQUEST_TITLES = {
    FILE_CHANGE: "Codex asks to change files",
    PERMISSIONS: "Codex asks for more permissions",
    QUESTION: "Codex asks",
}


def _request_title(request: Request) -> str:
    params = request.params
    if request.method == COMMAND:
        return f"Codex asks to {request.command_ask()}"
    if request.is_kernel_run:
        return "Codex asks to run code in this kernel"
    if request.method == FILE_CHANGE and params.get("grantRoot"):
        return f"{_REQUEST_TITLES[FILE_CHANGE]} under {_s(params.get('grantRoot'))}"
    if request.method == ELICITATION:
        server = _s(params.get("serverName")) or "an MCP server"
        if request.is_tool_approval:
            return _s(params.get("message")) or f"Codex asks to call a tool of {server}"
        return f"MCP server {server} asks"
    return _REQUEST_TITLES.get(request.method, f"Codex asks: {request.method}")


def _request_lines(request: Request) -> list[tuple[str, str]]:
    """The request's details as (kind, text) lines: code, text, dim or link."""
    params, lines = request.params, []
    if request.method == COMMAND:
        lines.append(("code", "$ " + shown_command(_s(params.get("command")))))
        lines.extend(("code", line) for line in permission_lines(params.get("additionalPermissions")))
        if params.get("cwd"):
            lines.append(("dim", f"in {_s(params.get('cwd'))}"))
    elif request.is_kernel_run:
        code = request.code.splitlines() or [""]
        lines.extend(("code", line) for line in code[:_CODE_LINES])
        if len(code) > _CODE_LINES:
            lines.append(("dim", f"… {len(code) - _CODE_LINES} more lines"))
        lines.append(("dim", "in the notebook's namespace: it can read and change your variables"))
    elif request.method == PERMISSIONS:
        lines.extend(("code", line) for line in permission_lines(params.get("permissions")) or ["(none listed)"])
        if params.get("cwd"):
            lines.append(("dim", f"in {_s(params.get('cwd'))}"))
    elif request.method == ELICITATION:
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        if request.is_tool_approval:
            if meta.get("tool_description"):
                lines.append(("dim", _s(meta.get("tool_description"))))
            if meta.get("tool_params"):
                lines.append(("code", _one_line(json.dumps(meta.get("tool_params"), ensure_ascii=False), _ARGS_CHARS)))
        else:
            lines.append(("text", _s(params.get("message"))))
            if params.get("mode") == "url":
                lines.append(("link", _s(params.get("url"))))
    elif request.method == QUESTION:
        for field in request.fields():
            if field.label:
                lines.append(("bold", field.label))
            if field.question:
                lines.append(("text", field.question))
            lines.extend(
                ("dim", f"{label}: {about}" if about else label)
                for label, about in zip(field.options, field.descriptions or ("",) * len(field.options))
                if about
            )
    reason = _s(params.get("reason"))
    if reason:
        lines.append(("dim", f"reason: {reason}"))
    return lines


def render_request(request: Request) -> Rendered:
    """What a server request asks: the command and where, the permissions, the questions; and why."""
    title = _request_title(request)
    lines = _request_lines(request)
    html_parts, text_parts, md_parts = [f"<div><b>{esc(title)}</b></div>"], [f"? {title}"], [f"**{_md_escape(title)}**"]
    for kind, line in lines:
        if kind == "code":
            html_parts.append(f'<div><code style="{_CODE}">{esc(line)}</code></div>')
            md_parts.append(_md_code(line))
        elif kind == "link":
            html_parts.append(f"<div>{_link(line)}</div>")
            md_parts.append(_md_escape(line))
        elif kind == "bold":
            html_parts.append(f"<div><b>{esc(line)}</b></div>")
            md_parts.append(f"**{_md_escape(line)}**")
        else:
            html_parts.append(f'<div style="{_DIM}">{esc(line)}</div>' if kind == "dim" else f"<div>{esc(line)}</div>")
            md_parts.append(_md_escape(line))
        text_parts.append(line)
    if request.method == FILE_CHANGE and request.item:
        change = render_item(request.item)  # the diff it asks to apply
        html_parts.insert(1, change.html)
        text_parts.insert(1, change.text)
        md_parts.insert(1, change.markdown)
    return Rendered(_card(_WARN, "".join(html_parts)), "\n".join(text_parts), "\n\n".join(md_parts))


def join(parts: list[Rendered]) -> Rendered:
    """Concatenate rendered pieces, skipping empty ones."""
    kept = [p for p in parts if p.html or p.text or p.markdown]
    return Rendered(
        "".join(p.html for p in kept),
        "\n".join(p.text for p in kept if p.text),
        "\n\n".join(p.markdown for p in kept if p.markdown),
    )


def render_turn(
    *,
    items: list[Json],
    status: str,
    elapsed: float,
    info: TurnInfo,
    usage: Json | None = None,
    turn_tokens: int | None = None,
    error: str | None = None,
    notices: Sequence[tuple[str, str]] = (),
    running_ids: frozenset[str] = frozenset(),
    plan: Json | None = None,
    diff: str | None = None,
    rendered: Sequence[Rendered | None] = (),
) -> Rendered:
    """The whole turn: header, plan, items in order, the turn's diff, then notices.

    Items in ``running_ids`` stream (cursor, running badge) while the turn runs and are
    marked unfinished once it has ended. ``rendered`` holds, by position, items already
    rendered as they are shown here (None: render it here).
    """
    header = render_header(
        status=status, elapsed=elapsed, info=info, usage=usage, turn_tokens=turn_tokens, error=error
    )
    ended = status not in ("running", "starting")
    body = [render_plan(plan)] if plan else []
    prompt_seen = False
    for position, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "userMessage" and "_prompt" not in item:
            # The first user message is the cell's own text; later ones were sent during the turn.
            item, prompt_seen = {**item, "_prompt": not prompt_seen}, True
        known = rendered[position] if position < len(rendered) else None
        if known is not None:
            body.append(known)
            continue
        in_flight = isinstance(item, dict) and item.get("id") in running_ids
        body.append(render_item(item, running=in_flight and not ended, unfinished=in_flight and ended))
    if diff:
        body.append(render_diff(diff))
    body += [render_notice(kind, text) for kind, text in notices]
    rest = join(body)
    return Rendered(
        f'<div class="codex-magic" style="{_BOX}">{header.html}<div style="margin-top:4px">{rest.html}</div></div>',
        header.text + ("\n" + rest.text if rest.text else ""),
        header.markdown + ("\n\n" + rest.markdown if rest.markdown else ""),
    )
