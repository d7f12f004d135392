"""Pure rendering: item state in, blocks out, and blocks written as HTML, text and Markdown.

Each item kind is one function from the item to neutral blocks (:mod:`codex_magic._blocks`);
the three forms are written from the same blocks: HTML by :func:`codex_magic._html.to_html`
(the one module that escapes), Markdown by :func:`codex_magic._markdown.to_markdown` (model
Markdown is parsed with raw HTML off, and every character that could start HTML is
backslash-escaped), text by :func:`codex_magic._blocks.to_text`. Nothing else builds markup.
Control sequences (colours, window titles, clipboard writes, cursor moves) are removed in
one place for all three forms: every :class:`Rendered` is built clean. Before that, the
colours of command output become styled spans in its HTML. Every block is bounded where it
is built: a running command costs a few kilobytes per update however long its output. The
module imports neither IPython nor ipywidgets.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Re-exported: other modules and the tests import these from here. The image size
# check reads ``_html.MAX_IMAGE_CHARS``, so that is the one to change or patch.
from ._blocks import WHERE_FULL as WHERE_FULL
from ._blocks import (
    Badge,
    Block,
    Card,
    Checklist,
    Code,
    Diff,
    DiffFile,
    Fold,
    Image,
    Link,
    Links,
    Markdown,
    Note,
    Output,
    Rule,
    Span,
    Title,
    to_text,
)
from ._html import (
    _STATUS_STYLE,
    _base64_image,
    _fit,
    _fit_html,
    _image_src,
    _web_url,
    to_html,
    turn_html,
)
from ._html import MAX_IMAGE_CHARS as MAX_IMAGE_CHARS
from ._html import esc as esc
from ._markdown import PIECE_CHARS as PIECE_CHARS
from ._markdown import next_cut as next_cut
from ._markdown import to_markdown
from ._requests import (
    COMMAND,
    ELICITATION,
    FILE_CHANGE,
    PERMISSIONS,
    QUESTION,
    Request,
    permission_lines,
)
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
from ._text import shown_command as shown_command

# A long text (command output, tool result) shows a preview of this many lines and
# characters; its escaped HTML is also held to OUTPUT_TAIL_CHARS bytes.
OUTPUT_TAIL_CHARS = 4000
OUTPUT_TAIL_LINES = 30
# A finished item folds away up to this much more (bytes of HTML).
FULL_OUTPUT_BYTES = 64 * 1024

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


def written(blocks: Sequence[Block]) -> Rendered:
    """Blocks in the three forms, by the three writers."""
    if not blocks:
        return _EMPTY
    return Rendered(to_html(blocks), to_text(blocks), to_markdown(blocks))


# -- bounded previews -------------------------------------------------------------------------


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


def _output(text: str, *, done: bool, keep: str, what: str) -> tuple[Output, ...]:
    """A long text as a bounded preview; when done, more of it folded away under ``what``."""
    if not text:
        return ()
    if "\x1b[" in text:
        # Colour is kept for the HTML; all else goes before any cut, so a cut can split no
        # sequence but an SGR one, which _fit_html avoids.
        text = keep_colour(text)
    # The parts are chosen by the size of their HTML (colour spans make it longer).
    shown = _fit_html(text, _preview(text, keep=keep), OUTPUT_TAIL_CHARS, keep=keep)[0]
    left = len(text) - len(shown)
    if not left:
        return (Output(shown, keep=keep),)
    # Outputs run to megabytes: count their line ends once, and those of the short parts.
    newlines = text.count("\n")
    where = "earlier" if keep == "tail" else "more"
    note = f"\u2026 {left:,} {where} characters ({_count(newlines - shown.count(chr(10)), 'line')}) not shown"
    if not done:
        return (Output(shown, note, keep),)
    note += f"; the full text is in {WHERE_FULL}"
    full = _fit_html(text, _fit(text, FULL_OUTPUT_BYTES, keep=keep), FULL_OUTPUT_BYTES, keep=keep)[0]
    dropped = len(text) - len(full)
    full_note = ""
    if dropped:
        side = "first" if keep == "tail" else "last"
        full_note = (
            f"\u2026 the {side} {dropped:,} characters ({_count(newlines - full.count(chr(10)), 'line')}) "
            "are left out here; "
            f"the full text is in {WHERE_FULL}"
        )
    fold = f"{what} ({_count(newlines + (not text.endswith(chr(10))), 'line')})"
    return (Output(shown, note, keep, fold, full, full_note),)


# -- item status ---------------------------------------------------------------------------------

_STATUS_TONE = {
    "completed": "ok",
    "failed": "error",
    "errored": "error",
    "declined": "warn",
    "interrupted": "warn",
    "running": "running",
    "in progress": "running",
    "pending": "muted",
}
_UNFINISHED = Badge("unfinished", "muted")


def _status(status: object, mode: str) -> Badge | None:
    """An item's status as a badge, or None when it has none."""
    if mode == "unfinished":
        return _UNFINISHED
    if mode == "running":
        return Badge("running", "running")
    label = _s(status)
    if not label:
        return None
    label = "in progress" if label == "inProgress" else label
    return Badge(label, _STATUS_TONE.get(label, "muted"))


def _unfinished(mode: str) -> Badge | None:
    return _UNFINISHED if mode == "unfinished" else None


# -- header -------------------------------------------------------------------------------------------

_HEADER_TONE = {
    "starting": "starting", "running": "running", "completed": "ok", "failed": "error", "interrupted": "warn",
}  # fmt: skip


def _usage_facts(usage: Json | None, turn_tokens: int | None) -> list[str]:
    """Token usage in the one vocabulary of every output, each number saying what it counts.

    ``tokens: 240 this turn (all its model requests), 1,240 this thread`` and
    ``context: 120 of 272,000 tokens (0%)``: the context window holds what the latest
    model request sent and received.
    """
    if not isinstance(usage, dict) or not usage:
        return []
    last_tokens = _n(_d(usage.get("last")).get("totalTokens")) or 0
    thread = f"{_n(_d(usage.get('total')).get('totalTokens')) or 0:,.0f} this thread"
    this = f"{turn_tokens:,} this turn (all its model requests), " if turn_tokens is not None else ""
    facts = [f"tokens: {this}{thread}"]
    window = _n(usage.get("modelContextWindow"))
    if window:
        facts.append(f"context: {last_tokens:,.0f} of {window:,.0f} tokens ({100 * last_tokens / window:.0f}%)")
    return facts


def header_blocks(
    *,
    status: str,
    elapsed: float,
    info: TurnInfo,
    usage: Json | None = None,
    turn_tokens: int | None = None,
    error: str | None = None,
    retry: str | None = None,
) -> tuple[Block, ...]:
    """The status line as blocks: status, elapsed time, model, sandbox, thread, tokens, what it waits for, error."""
    label = _STATUS_STYLE.get(status, ("", status))[1]
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
    facts += _usage_facts(usage, turn_tokens)
    blocks: list[Block] = [
        Title(label="codex", subject=(Span(label, "bold", _HEADER_TONE.get(status, "muted")),), facts=tuple(facts))
    ]
    if retry and status == "running":
        blocks.append(Note(retry, "warn"))
    if error:
        blocks.append(Note(error, "error", kind="error"))
    return (Card("", tuple(blocks), look="bare"),)


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
    return written(
        header_blocks(
            status=status, elapsed=elapsed, info=info, usage=usage, turn_tokens=turn_tokens, error=error, retry=retry
        )
    )


# -- item kinds -----------------------------------------------------------------------------------------

# Each kind is one function of the wire dict and a mode: "running", "done" or "unfinished"
# (still in flight when the turn ended), to the item's blocks.
_Blocks = Callable[[Json, str], tuple[Block, ...]]


def _agent_message(item: Json, mode: str) -> tuple[Block, ...]:
    body = _s(item.get("text"))
    if not body and mode == "done":
        return ()
    commentary = item.get("phase") == "commentary"
    badge = _unfinished(mode)
    blocks: list[Block] = []
    if commentary or badge:
        blocks.append(Title(label="commentary" if commentary else "", badge=badge))
    blocks.append(Markdown(body, streaming=mode == "running"))
    if commentary:
        return (Card("quiet", tuple(blocks), look="quiet"),)
    return (Card("answer", tuple(blocks)),)


def _reasoning(item: Json, mode: str) -> tuple[Block, ...]:
    summary = [_s(part) for part in _l(item.get("summary")) if _s(part)]
    raw = [_s(part) for part in _l(item.get("content")) if _s(part)]
    source = "\n\n".join(summary) if summary else "\n\n".join(raw)
    if not source:
        if mode != "running":
            return ()
        return (Card("think", (Title(label="thinking\u2026"),), look="dim"),)
    title = Title(label="thinking" if summary else "thinking (raw)", badge=_unfinished(mode))
    gist = _one_line(source.replace("*", "").replace("#", ""), 80)
    if mode != "running" and "\n" not in source and gist == source:
        # A short summary is whole in the one line: nothing to unfold.
        return (Card("think", (Title(title.label, (Span(gist),), title.badge),), look="dim"),)
    body = Markdown(source, streaming=mode == "running")
    return (Card("think", (Fold(title, (body,), preview=gist),), look="dim"),)


def _command_badge(item: Json, mode: str) -> Badge:
    code = item.get("exitCode")
    status = _s(item.get("status"))
    if mode == "unfinished":
        return _UNFINISHED
    if mode == "running":
        return Badge("running", "running")
    if status == "declined":
        return Badge("declined", "warn")
    if isinstance(code, int) and not isinstance(code, bool):
        return Badge(f"exit {code}", "ok" if code == 0 else "error")
    if status == "inProgress":
        return Badge("in progress", "running")
    return Badge(status or "ended", "error" if status == "failed" else "muted")


def command_title(item: Json, mode: str) -> Title:
    """A command's title as every output shows it: ``$ command  [exit 0] · 120 ms · cwd``.

    ``mode`` is "running", "done" or "unfinished" (still in flight when the turn ended).
    """
    command = shown_command(_s(item.get("command")))
    cwd = _s(item.get("cwd"))
    shown = _fit(command, _COMMAND_BYTES, keep="head")
    subject: tuple[Span, ...] = (Span(f"$ {shown}", "code"),)
    if len(shown) < len(command):
        subject += (Span(f" \u2026 (+{len(command) - len(shown):,} characters)", "dim"),)
    place = _fit(cwd, _FIELD_BYTES, keep="tail")
    place = place if place == cwd else "\u2026" + place
    facts = tuple(fact for fact in (_duration(item.get("durationMs")), place) if fact)
    return Title(subject=subject, badge=_command_badge(item, mode), facts=facts)


def _command(item: Json, mode: str) -> tuple[Block, ...]:
    title = command_title(item, mode)
    output = _output(_s(item.get("aggregatedOutput")), done=mode == "done", keep="tail", what="all output")
    return (Card(title.badge.tone if title.badge else "muted", (title, *output)),)


def _diff_like(text: str) -> bool:
    lines = [line for line in text.split("\n") if line]
    if any(line.startswith(("@@", "diff --git ", "--- ", "+++ ")) for line in lines):
        return True
    return bool(lines) and all(line[0] in "+- \\" for line in lines)


def _diff_stats(lines: Sequence[str]) -> tuple[int, int]:
    """Added and removed lines (file header pairs are not changes), in one fast pass."""
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


def _diff_lines(diff: str, kind: str) -> tuple[str, ...]:
    text = diff.rstrip("\n")
    if not text:
        return ()
    lines = text.split("\n")
    if kind in ("add", "delete") and not _diff_like(text):
        # Added and deleted files carry their content, not a diff.
        sign = "+" if kind == "add" else "-"
        lines = [sign + line for line in lines]
    return tuple(lines)


def _file_diff(change: object) -> DiffFile:
    change = change if isinstance(change, dict) else {"path": _s(change)}
    raw_kind = change.get("kind")
    kind_info = raw_kind if isinstance(raw_kind, dict) else {"type": raw_kind}
    kind = _s(kind_info.get("type")) or "update"
    path = _s(change.get("path"))
    move = _s(kind_info.get("move_path") or kind_info.get("movePath"))
    lines = _diff_lines(_s(change.get("diff")), kind)
    added, removed = _diff_stats(lines)
    label = "move" if kind == "update" and move else kind
    return DiffFile(label, _cut(f"{path} \u2192 {move}" if move else path, 1000), lines, added, removed)


def _file_change(item: Json, mode: str) -> tuple[Block, ...]:
    files = tuple(_file_diff(change) for change in _l(item.get("changes")))
    added, removed = sum(f.added for f in files), sum(f.removed for f in files)
    summary = _count(len(files), "file") + (f" \u00b7 +{added:,} \u2212{removed:,}" if added or removed else "")
    title = Title(label="file change", subject=(Span(summary, "dim"),), badge=_status(item.get("status"), mode))
    return (Card("file", (title, Diff(files))),)


def _plan_item(item: Json, mode: str) -> tuple[Block, ...]:
    body = Markdown(_s(item.get("text")), streaming=mode == "running")
    return (Card("plan", (Title(label="plan", badge=_unfinished(mode)), body)),)


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
    *,
    name: str,
    arguments: object,
    state: Badge | None,
    duration: object,
    output: _ToolOutput,
    error: str,
    mode: str,
    what: str,
    code: str = "",
) -> tuple[Block, ...]:
    args = arguments if isinstance(arguments, str) else ("" if arguments is None else _json(arguments))
    # Code passed to a tool (run_python, propose_cell) reads as code, not as escaped JSON.
    call = f"{name}(code)" if code else f"{name}({_cut(args, _ARGS_CHARS)})"
    when = _duration(duration)
    blocks: list[Block] = [Title(label=what, subject=(Span(call, "code"),), badge=state, facts=(when,) if when else ())]
    if code:
        blocks.append(Code(_cut(code, _CODE_CHARS), "python"))
    result = "\n".join(t for t in output.texts if t)
    blocks += _output(result, done=mode == "done", keep="head", what="whole result")
    blocks += [Image(src, f"{name} image") for src in output.images[:_MAX_IMAGES]]
    blocks += [Note(_cut(note, _FIELD_BYTES)) for note in output.notes[:10]]
    if error:
        blocks.append(Note(_cut(error, 4000), "error", kind="error"))
    return (Card("error" if error else "tool", tuple(blocks)),)


def _mcp_tool_call(item: Json, mode: str) -> tuple[Block, ...]:
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


def _dynamic_tool_call(item: Json, mode: str) -> tuple[Block, ...]:
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


def _sub_agent(parts: list[str], state: Badge | None) -> tuple[Block, ...]:
    line = _cut(" \u00b7 ".join(p for p in parts if p), 1000)
    return (Card("agent", (Title(label="sub-agent", subject=(Span(line),), badge=state),)),)


def _collab_agent_tool_call(item: Json, mode: str) -> tuple[Block, ...]:
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
    return _sub_agent(parts, _status(item.get("status"), mode))


def _sub_agent_activity(item: Json, mode: str) -> tuple[Block, ...]:
    path = _s(item.get("agentPath")) or short_id(_s(item.get("agentThreadId")))
    parts = [f"{path} {_s(item.get('kind'))}".strip(), _s(item.get("model")), _s(item.get("reasoningEffort"))]
    return _sub_agent(parts, _status(None, mode))


def _web_search(item: Json, mode: str) -> tuple[Block, ...]:
    action = _d(item.get("action"))
    kind = _s(action.get("type")).replace("_", "").lower()
    query = _s(action.get("query")) or _s(item.get("query")) or ", ".join(_s(q) for q in _l(action.get("queries")))
    url = _cut(_s(action.get("url")), 1000)
    running = mode == "running"
    subject: tuple[Span | Link, ...]
    if kind == "openpage":
        subject = (Span("opening " if running else "opened "), Link(url))
    elif kind == "findinpage":
        pattern = _cut(_s(action.get("pattern")), 1000)
        verb = "searching for" if running else "searched for"
        subject = (Span(f"{verb} \u201c{pattern}\u201d in "), Link(url))
    else:
        verb = "searching" if running else "searched"
        subject = (Span(f"{verb} \u201c{_cut(query, 1000)}\u201d"),)
    if running:
        subject += (Span("\u2026"),)
    blocks: list[Block] = [Title(label="web", subject=subject, badge=_unfinished(mode))]
    results = [_d(r) for r in _l(item.get("results"))]
    if results:
        blocks.append(Note(_count(len(results), "result")))
        links = [Link(_s(r.get("url")), _cut(_s(r.get("title")) or _s(r.get("url")), 1000)) for r in results[:5]]
        blocks.append(Links(tuple(links)))
    return (Card("web", tuple(blocks)),)


def _image_view(item: Json, mode: str) -> tuple[Block, ...]:
    path = _s(item.get("path"))
    src = _image_src(item.get("dataUrl"))
    name = path.rsplit("/", 1)[-1] or "image"
    blocks: list[Block] = [Title(label="image", subject=(Span(_cut(path, 1000), "code"),))]
    if src:
        blocks.append(Image(src, name))
    return (Card("image", tuple(blocks)),)


def _image_generation(item: Json, mode: str) -> tuple[Block, ...]:
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
    blocks: list[Block] = [Title(label="image generation", badge=state)]
    if prompt:
        blocks.append(Note(_cut(prompt, 2000), "italic"))
    if src:
        blocks.append(Image(src, prompt or "generated image"))
    if failure_text:
        blocks.append(Note(failure_text, "error", kind="failed"))
    if saved:
        blocks.append(Note(f"saved to {_cut(saved, 1000)}"))
    return (Card("image", tuple(blocks)),)


def _entered_review(item: Json, mode: str) -> tuple[Block, ...]:
    review = _cut(_s(item.get("review")), 2000)
    title = Title(label="review", subject=(Span("review started", "bold"), Span(f": {review}")))
    return (Card("review", (title,), look="review"),)


def _exited_review(item: Json, mode: str) -> tuple[Block, ...]:
    return (Card("review", (Title(label="review"), Markdown(_s(item.get("review"))))),)


def _context_compaction(item: Json, mode: str) -> tuple[Block, ...]:
    return (Rule("compacting context\u2026" if mode == "running" else "context compacted"),)


def _sleep(item: Json, mode: str) -> tuple[Block, ...]:
    label = f"{'waited' if mode == 'done' else 'waiting'} {_seconds(item.get('durationMs'))}"
    return (Card("", (Title(label="sleep", subject=(Span(label),), badge=_unfinished(mode)),), look="bare-dim"),)


def _folded(
    tone: str, title: Title, body: str, preview: str, images: Sequence[str] = (), alt: str = ""
) -> tuple[Block, ...]:
    """A collapsed note: the whole of ``body`` (bounded) and its images, folded under ``title``."""
    inner: list[Block] = [*_output(body, done=True, keep="head", what="all of it")]
    inner += [Image(src, alt) for src in images[:_MAX_IMAGES]]
    return (Card(tone, (Fold(title, tuple(inner), preview=preview),)),)


def _hook_prompt(item: Json, mode: str) -> tuple[Block, ...]:
    body = "\n\n".join(_s(_d(f).get("text")) for f in _l(item.get("fragments")) if _s(_d(f).get("text")))
    return _folded("quiet", Title(label="hook prompt"), body, _one_line(body, 80))


def _function_call_output(item: Json, mode: str) -> tuple[Block, ...]:
    name = ".".join(p for p in (_s(item.get("namespace")), _s(item.get("name"))) if p) or "function"
    raw = item.get("output")
    if isinstance(raw, list):
        output = _dynamic_output(raw)
        body = "\n".join(t for t in output.texts if t)
        images = output.images
    else:
        body, images = _s(raw), []
    size = _count(len(body), "character")
    title = Title(label="function output", subject=(Span(_cut(name, 1000), "code"),), facts=(size,))
    return _folded("tool", title, body, "", images, f"{name} image")


def _generic(item: Json, mode: str) -> tuple[Block, ...]:
    kind = _s(item.get("type")) or "item"
    fields = {k: v for k, v in item.items() if k not in ("type", "id") and v not in (None, [], {}, "")}
    shown = list(fields.items())[:30]
    summary = ", ".join(f"{k}={_cut(v, 400) if isinstance(v, str) else v!r}"[:200] for k, v in shown)
    title = Title(label=_cut(kind, 1000), subject=(Span(summary),), badge=_unfinished(mode))
    return (Card("quiet", (title,), look="dim"),)


def _hidden(item: Json, mode: str) -> tuple[Block, ...]:
    return ()


def _user_message(item: Json, mode: str) -> tuple[Block, ...]:
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
        return ()
    blocks: list[Block] = [Title(label="you, during the turn" if not prompt else "images sent")]
    if not prompt and text:
        blocks.append(Note(text, "plain"))
    if names:
        blocks.append(Note(", ".join(names)))
    blocks += [Image(src, "image sent") for src in thumbnails]
    return (Card("user", tuple(blocks)),)


_RENDERERS: dict[str, _Blocks] = {
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


def item_blocks(item: Json, *, running: bool = False, unfinished: bool = False) -> tuple[Block, ...]:
    """One item (a wire dict) as blocks; unknown or malformed kinds get a readable generic view.

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
        note = Note(f"{RENDER_FAILED} ({type(error).__name__})", "error")
        return (*_generic(item, mode), note)


def render_item(item: Json, *, running: bool = False, unfinished: bool = False) -> Rendered:
    """Render one item (a wire dict) in the three forms; see :func:`item_blocks`."""
    return written(item_blocks(item, running=running, unfinished=unfinished))


# -- turn-level pieces -------------------------------------------------------------------------------

_STEP = {"completed": "done", "inProgress": "active"}


def plan_blocks(plan: Json) -> tuple[Block, ...]:
    """The ``turn/plan/updated`` payload as a checklist: explanation, then steps."""
    plan = _d(plan)
    steps = [_d(step) for step in _l(plan.get("plan"))]
    explanation = _s(plan.get("explanation"))
    if not steps and not explanation:
        return ()
    done = sum(_s(step.get("status")) == "completed" for step in steps)
    count = f"{done}/{len(steps)}" if steps else ""
    blocks: list[Block] = [Title(label="plan", subject=(Span(count, "dim"),) if count else ())]
    if explanation:
        blocks.append(Note(_cut(explanation, 4000), "italic"))
    if steps:
        rows = ((_STEP.get(_s(step.get("status")), "todo"), _cut(_s(step.get("step")), 2000)) for step in steps)
        blocks.append(Checklist(tuple(rows)))
    return (Card("plan", tuple(blocks)),)


def render_plan(plan: Json) -> Rendered:
    """The turn's plan as a checklist."""
    return written(plan_blocks(plan))


def _diff_files(diff: str) -> int:
    headers = sum(1 for line in diff.split("\n") if line.startswith("diff --git "))
    if headers:
        return headers
    return sum(1 for line in diff.split("\n") if line.startswith("+++ ")) or 1


def diff_blocks(diff: str) -> tuple[Block, ...]:
    """The whole turn's unified diff (``turn/diff/updated``), folded."""
    diff = _s(diff)
    if not diff.strip():
        return ()
    lines = tuple(diff.rstrip("\n").split("\n"))
    added, removed = _diff_stats(lines)
    summary = f"{_count(_diff_files(diff), 'file')}, +{added:,} \u2212{removed:,}"
    title = Title(label="turn diff", subject=(Span(summary),))
    return (Card("file", (Fold(title, (Diff((DiffFile("", "", lines),)),)),)),)


def render_diff(diff: str) -> Rendered:
    """The whole turn's unified diff, collapsed, coloured and bounded."""
    return written(diff_blocks(diff))


# Notices that inform rather than warn.
_INFO_NOTICES = frozenset({"replay"})


def notice_blocks(kind: str, text: str) -> tuple[Block, ...]:
    """A line that is not an item (declined requests, warnings, where a replay came from)."""
    tone = "info" if kind in _INFO_NOTICES else "warn"
    return (Card("", (Note(_s(text), tone, kind=_s(kind)),), look="bare"),)


def render_notice(kind: str, text: str) -> Rendered:
    """Render a notice; see :func:`notice_blocks`."""
    return written(notice_blocks(kind, text))


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
    """The request's details as (kind, text) lines: command, code, text, bold, dim or link."""
    params, lines = request.params, []
    if request.method == COMMAND:
        lines.append(("command", _s(params.get("command"))))
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
        meta = params.get("_meta")
        meta = meta if isinstance(meta, dict) else {}
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


def request_blocks(request: Request) -> tuple[Block, ...]:
    """What a server request asks: the command and where, the permissions, the questions; and why."""
    blocks: list[Block] = [Note(_request_title(request), "ask")]
    if request.method == FILE_CHANGE and request.item:
        blocks += item_blocks(request.item)  # the diff it asks to apply
    for kind, line in _request_lines(request):
        if kind == "command":  # as the command's title will read once it runs
            blocks.append(Title(subject=command_title({"command": line}, "running").subject))
        elif kind == "code":
            blocks.append(Code(line, inline=True))
        elif kind == "link":
            blocks.append(Links((Link(line),)))
        else:
            blocks.append(Note(line, "plain" if kind == "text" else kind))
    return (Card("warn", tuple(blocks)),)


def render_request(request: Request) -> Rendered:
    """Render a server request; see :func:`request_blocks`."""
    return written(request_blocks(request))


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
    header = render_header(status=status, elapsed=elapsed, info=info, usage=usage, turn_tokens=turn_tokens, error=error)
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
        turn_html(header.html, rest.html),
        header.text + ("\n" + rest.text if rest.text else ""),
        header.markdown + ("\n\n" + rest.markdown if rest.markdown else ""),
    )
