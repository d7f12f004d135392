"""Pure rendering: item state in, HTML and text out.

Every string that came from Codex, the model or a command passes through
:func:`esc` before it reaches HTML; nothing else in the package builds markup.
The module imports neither IPython nor ipywidgets.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable

Json = dict[str, Any]

_STATUS_STYLE = {
    "starting": ("#57606a", "\u25cb starting Codex"),
    "running": ("#1f6feb", "\u25cf running"),
    "completed": ("#1a7f37", "\u2714 completed"),
    "failed": ("#cf222e", "\u2716 failed"),
    "interrupted": ("#9a6700", "\u25a0 interrupted"),
}
_BOX = "font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;line-height:1.45"
_PRE = (
    "white-space:pre-wrap;word-break:break-word;margin:2px 0;padding:4px 6px;"
    "background:var(--jp-layout-color2,#f6f8fa);border-radius:4px;"
    "font-family:var(--jp-code-font-family,monospace);font-size:12px"
)
_DIM = "color:var(--jp-ui-font-color2,#57606a)"
# A command's output in the live view shows its tail; the full text is in the result.
OUTPUT_TAIL_CHARS = 4000


def esc(value: object) -> str:
    """Escape any value for HTML text or attribute context (the one place that does)."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Rendered:
    """One piece of output in both forms."""

    html: str
    text: str


@dataclass(frozen=True)
class TurnInfo:
    """What the header shows besides the status."""

    thread_id: str | None = None
    model: str | None = None
    sandbox: str | None = None
    cwd: str | None = None


def _tail(text: str, limit: int = OUTPUT_TAIL_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"\u2026 ({len(text) - limit} earlier characters in the result)\n" + text[-limit:]


def _usage_text(usage: Json | None, turn_tokens: int | None) -> str:
    if not usage:
        return ""
    last = usage.get("last") or {}
    total = usage.get("total") or {}
    if turn_tokens is not None:
        this = f"{turn_tokens:,} this turn"
    else:
        this = f"{last.get('totalTokens', 0):,} last request"
    parts = [f"tokens: {this}, {total.get('totalTokens', 0):,} thread"]
    window = usage.get("modelContextWindow")
    if window:
        # What the last request put in the window is what the window holds now.
        parts.append(f"context {100 * last.get('totalTokens', 0) / window:.0f}% of {window:,}")
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
    """The status line: status, elapsed time, model, sandbox, thread, tokens, error."""
    colour, label = _STATUS_STYLE.get(status, ("#57606a", status))
    facts = [f"{elapsed:.1f} s"]
    if info.model:
        facts.append(info.model)
    if info.sandbox:
        facts.append(f"sandbox {info.sandbox}")
    if info.thread_id:
        facts.append(f"thread {info.thread_id[:8]}")
    usage_text = _usage_text(usage, turn_tokens)
    if usage_text:
        facts.append(usage_text)
    text = f"[codex] {label} \u00b7 " + " \u00b7 ".join(facts)
    markup = (
        f'<div style="{_BOX}"><b style="color:{colour}">{esc(label)}</b> '
        f'<span style="{_DIM}">\u00b7 {esc(" · ".join(facts))}</span>'
    )
    if retry and status == "running":
        text += f"\n  {retry}"
        markup += f'<div style="color:#9a6700">\u21bb {esc(retry)}</div>'
    if error:
        text += f"\n  error: {error}"
        markup += f'<div style="color:#cf222e;font-weight:bold">{esc(error)}</div>'
    return Rendered(markup + "</div>", text)


def _agent_message(item: Json, running: bool) -> Rendered:
    body = item.get("text") or ""
    commentary = item.get("phase") == "commentary"
    style = _DIM if commentary else ""
    cursor = " \u258d" if running else ""
    return Rendered(
        f'<div style="{_BOX};white-space:pre-wrap;{style}">{esc(body)}{cursor}</div>',
        body,
    )


def _command(item: Json, running: bool) -> Rendered:
    command = item.get("command") or ""
    output = item.get("aggregatedOutput") or ""
    code = item.get("exitCode")
    status = item.get("status")
    if running:
        badge, colour = "running", "#1f6feb"
    elif status == "declined":
        badge, colour = "declined", "#9a6700"
    elif code is None:
        badge, colour = str(status or "ended"), "#57606a"
    else:
        badge, colour = f"exit {code}", "#1a7f37" if code == 0 else "#cf222e"
    duration = item.get("durationMs")
    when = f" \u00b7 {duration / 1000:.2f} s" if isinstance(duration, (int, float)) else ""
    cwd = item.get("cwd") or ""
    markup = (
        f'<div style="{_BOX}"><code>$ {esc(command)}</code> '
        f'<span style="color:{colour};font-weight:bold">[{esc(badge)}]</span>'
        f'<span style="{_DIM}">{esc(when)} {esc(cwd)}</span>'
    )
    if output:
        markup += f'<pre style="{_PRE}">{esc(_tail(output))}</pre>'
    text = f"$ {command}  [{badge}]{when}"
    if output:
        text += "\n" + _tail(output).rstrip("\n")
    return Rendered(markup + "</div>", text)


def _reasoning(item: Json, running: bool) -> Rendered:
    summary = "\n\n".join(part for part in item.get("summary") or [] if part)
    if not summary:
        return Rendered("", "")
    return Rendered(
        f'<details style="{_BOX};{_DIM}"><summary>thinking</summary>'
        f'<div style="white-space:pre-wrap">{esc(summary)}</div></details>',
        f"(thinking) {summary}",
    )


def _file_change(item: Json, running: bool) -> Rendered:
    parts_html, parts_text = [], []
    for change in item.get("changes") or []:
        kind = (change.get("kind") or {}).get("type", "update")
        path = change.get("path", "")
        parts_text.append(f"{kind} {path}\n{change.get('diff') or ''}".rstrip())
        parts_html.append(
            f'<div><b>{esc(kind)}</b> <code>{esc(path)}</code>'
            f'<pre style="{_PRE}">{esc(change.get("diff") or "")}</pre></div>'
        )
    status = item.get("status") or ("running" if running else "")
    return Rendered(
        f'<div style="{_BOX}"><span style="{_DIM}">file change \u00b7 {esc(status)}</span>'
        + "".join(parts_html)
        + "</div>",
        "\n".join(parts_text),
    )


def _generic(item: Json, running: bool) -> Rendered:
    kind = item.get("type", "item")
    fields = {k: v for k, v in item.items() if k not in ("type", "id") and v not in (None, [], {}, "")}
    summary = ", ".join(f"{k}={v!r}"[:200] for k, v in fields.items())
    return Rendered(
        f'<div style="{_BOX};{_DIM}"><b>{esc(kind)}</b> {esc(summary)}</div>',
        f"[{kind}] {summary}",
    )


def _hidden(item: Json, running: bool) -> Rendered:
    return Rendered("", "")


_RENDERERS: dict[str, Callable[[Json, bool], Rendered]] = {
    "agentMessage": _agent_message,
    "commandExecution": _command,
    "reasoning": _reasoning,
    "fileChange": _file_change,
    "userMessage": _hidden,
}


def render_item(item: Json, *, running: bool = False) -> Rendered:
    """Render one item (a wire dict); unknown kinds get a readable generic view."""
    return _RENDERERS.get(item.get("type", ""), _generic)(item, running)


def render_notice(kind: str, text: str) -> Rendered:
    """Render a line that is not an item (declined requests, warnings)."""
    return Rendered(
        f'<div style="{_BOX};color:#9a6700">\u26a0 {esc(kind)}: {esc(text)}</div>',
        f"! {kind}: {text}",
    )


def join(parts: list[Rendered]) -> Rendered:
    """Concatenate rendered pieces, skipping empty ones."""
    kept = [p for p in parts if p.html or p.text]
    return Rendered("".join(p.html for p in kept), "\n".join(p.text for p in kept if p.text))


def render_turn(
    *,
    items: list[Json],
    status: str,
    elapsed: float,
    info: TurnInfo,
    usage: Json | None = None,
    turn_tokens: int | None = None,
    error: str | None = None,
    notices: list[tuple[str, str]] = (),
    running_ids: frozenset[str] = frozenset(),
) -> Rendered:
    """The whole turn: header, items in order, then notices."""
    header = render_header(
        status=status, elapsed=elapsed, info=info, usage=usage, turn_tokens=turn_tokens, error=error
    )
    body = [render_item(item, running=item.get("id") in running_ids) for item in items]
    body += [render_notice(kind, text) for kind, text in notices]
    rest = join(body)
    return Rendered(
        f'<div style="{_BOX}">{header.html}<div style="margin-top:4px">{rest.html}</div></div>',
        header.text + ("\n" + rest.text if rest.text else ""),
    )
