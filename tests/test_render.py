"""Pure tier: rendering item state to HTML, text and Markdown, escaping, the header.

``tests/test_render_kinds.py`` goes through each item kind in detail; the helpers
that check markup (``check_html``, ``check_markdown``) live here.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, get_args

import pytest
from openai_codex.types import ThreadItem

from codex_magic._render import (
    OUTPUT_TAIL_CHARS,
    WHERE_FULL,
    Rendered,
    TurnInfo,
    esc,
    join,
    render_header,
    render_item,
    render_notice,
    render_turn,
)
from codex_magic._transcript import Transcript

DATA = Path(__file__).resolve().parent / "data"

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
ENTITY = "a &amp; b"
EVIL = f"{SCRIPT} {IMG} {ENTITY} \"quoted\" 'single'"

# One wire dict per item kind of CODEX_APP_SERVER.md section 1 (camelCase, as sent).
ITEMS: dict[str, dict[str, Any]] = {
    "userMessage": {
        "type": "userMessage",
        "id": "u1",
        "content": [{"type": "text", "text": "list the files", "text_elements": []}],
    },
    "hookPrompt": {"type": "hookPrompt", "id": "h1", "fragments": [{"hookRunId": "run1", "text": "hook says hi"}]},
    "agentMessage": {"type": "agentMessage", "id": "m1", "text": "Here is the answer.", "phase": "final_answer"},
    "functionCallOutput": {
        "type": "functionCallOutput",
        "id": "f1",
        "name": "lookup",
        "namespace": "ns",
        "output": "42",
    },
    "plan": {"type": "plan", "id": "p1", "text": "1. read\n2. fix"},
    "reasoning": {"type": "reasoning", "id": "r1", "summary": ["Look first.", "Then act."], "content": ["raw"]},
    "commandExecution": {
        "type": "commandExecution",
        "id": "c1",
        "command": "/bin/bash -c 'ls -1'",
        "cwd": "/work/ws",
        "commandActions": [{"type": "unknown", "command": "ls -1"}],
        "status": "completed",
        "aggregatedOutput": "a.txt\nb.txt\n",
        "exitCode": 0,
        "durationMs": 1234,
        "processId": "99",
        "source": "unifiedExecStartup",
    },
    "fileChange": {
        "type": "fileChange",
        "id": "fc1",
        "status": "completed",
        "changes": [
            {"path": "src/app.py", "kind": {"type": "update", "move_path": None}, "diff": "@@ -1 +1 @@\n-old\n+new"},
            {"path": "NEW.md", "kind": {"type": "add"}, "diff": "+hello"},
        ],
    },
    "mcpToolCall": {
        "type": "mcpToolCall",
        "id": "mcp1",
        "server": "docs",
        "tool": "search",
        "arguments": {"q": "pandas"},
        "status": "completed",
        "result": {"content": [{"type": "text", "text": "found"}]},
        "durationMs": 12,
    },
    "dynamicToolCall": {
        "type": "dynamicToolCall",
        "id": "d1",
        "tool": "kernel_eval",
        "namespace": None,
        "arguments": {"code": "df.shape"},
        "status": "completed",
        "contentItems": [{"type": "inputText", "text": "(3, 2)"}],
        "success": True,
        "durationMs": 5,
    },
    "collabAgentToolCall": {
        "type": "collabAgentToolCall",
        "id": "ca1",
        "tool": "spawnAgent",
        "senderThreadId": "thread-a",
        "receiverThreadIds": ["thread-b"],
        "prompt": "help",
        "agentsStates": {"thread-b": {"status": "running", "message": None}},
        "status": "inProgress",
    },
    "subAgentActivity": {
        "type": "subAgentActivity",
        "id": "sa1",
        "agentPath": "root/helper",
        "agentThreadId": "thread-b",
        "kind": "started",
        "model": "gpt-x",
    },
    "webSearch": {
        "type": "webSearch",
        "id": "w1",
        "query": "codex docs",
        "action": {"type": "search", "query": "codex docs"},
    },
    "imageView": {"type": "imageView", "id": "iv1", "path": "/work/ws/plot.png"},
    "sleep": {"type": "sleep", "id": "s1", "durationMs": 1500},
    "imageGeneration": {
        "type": "imageGeneration",
        "id": "ig1",
        "status": "completed",
        "result": "aGVsbG8=",
        "revisedPrompt": "a cat",
        "savedPath": "/work/ws/cat.png",
    },
    "enteredReviewMode": {"type": "enteredReviewMode", "id": "er1", "review": "current changes"},
    "exitedReviewMode": {"type": "exitedReviewMode", "id": "xr1", "review": "Looks good."},
    "contextCompaction": {"type": "contextCompaction", "id": "cc1"},
}

# What each kind's text form must mention (one distinctive value per kind).
MENTIONS = {
    "hookPrompt": "hook says hi",
    "agentMessage": "Here is the answer.",
    "functionCallOutput": "lookup",
    "plan": "read",
    "reasoning": "Then act.",
    "commandExecution": "ls -1",
    "fileChange": "src/app.py",
    "mcpToolCall": "search",
    "dynamicToolCall": "kernel_eval",
    "collabAgentToolCall": "spawnAgent",
    "subAgentActivity": "root/helper",
    "webSearch": "codex docs",
    "imageView": "plot.png",
    "sleep": "1.5 s",
    "imageGeneration": "a cat",
    "enteredReviewMode": "current changes",
    "exitedReviewMode": "Looks good.",
    "contextCompaction": "context",
}


ALLOWED_TAGS = {
    "div", "span", "b", "code", "pre", "details", "summary",  # our own markup
    "p", "em", "strong", "s", "ul", "ol", "li", "a", "blockquote", "hr", "br",  # Markdown
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "img",
}  # fmt: skip
ALLOWED_ATTRS = {"style", "href", "src", "alt", "target", "rel", "start", "class"}
STRICT_DATA_URL = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}")


class _TagChecker(HTMLParser):
    """Checks that every opened element is closed, in order, and that no attribute is active."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.stack.append(tag)
        for name, value in attrs:
            value = value or ""
            assert name in ALLOWED_ATTRS, f"<{tag} {name}=...>"
            if name == "href":
                assert re.match(r"(https?|mailto):", value, re.I), value
            if name == "src":
                assert STRICT_DATA_URL.fullmatch(value), value[:80]
            if name == "style":
                assert not re.search(r"url\(|expression|javascript|@import", value, re.I), value

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(markup: str) -> str:
    """Assert the markup is balanced and harmless; return its text content."""
    checker = _TagChecker()
    checker.feed(markup)
    checker.close()
    assert checker.stack == [], f"unclosed {checker.stack}"
    assert set(checker.tags) <= ALLOWED_TAGS, set(checker.tags) - ALLOWED_TAGS
    lowered = markup.lower()
    assert "<script" not in lowered and "<img src=x" not in lowered
    assert "javascript:" not in "".join(re.findall(r'(?:href|src)="[^"]*"', lowered))
    # Outside quoted attribute values (where esc() keeps quotes out), no handler attribute.
    unquoted = re.sub(r'"[^"]*"', '""', lowered)
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", unquoted), "event handler attribute"
    return "".join(checker.text)


def _md_tokens(tokens: list[Any]) -> list[Any]:
    out = []
    for token in tokens:
        out.append(token)
        out += _md_tokens(token.children or [])
    return out


def check_markdown(source: str) -> str:
    """Assert the Markdown form holds no raw HTML and no active link, even for a
    renderer that allows raw HTML; return the HTML such a renderer makes of it."""
    from markdown_it import MarkdownIt

    permissive = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    tokens = _md_tokens(permissive.parse(source))
    raw = [t.content for t in tokens if t.type in ("html_block", "html_inline")]
    assert not raw, raw
    for token in tokens:
        href = str(token.attrGet("href") or "").lower()
        assert not href.startswith(("javascript:", "vbscript:", "data:")), href
        if token.type == "image":
            src = str(token.attrGet("src") or "")
            assert STRICT_DATA_URL.fullmatch(src), src[:80]
    return permissive.render(source)


def assert_escaped(rendered: Rendered, payload: str = EVIL) -> None:
    """The payload is inert in the HTML and verbatim in the text."""
    assert "<script" not in rendered.html.lower()
    assert "<img" not in rendered.html.lower()
    check_markdown(rendered.markdown)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered.html
    assert "&amp;amp;" in rendered.html
    assert payload in rendered.text
    # What a browser would display is the payload itself.
    assert payload in check_html(rendered.html)


# -- every item kind -------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ITEMS))
def test_examples_are_valid_wire_items(kind: str) -> None:
    """Guards the hand-built examples against drifting from the SDK's schema."""
    item = ThreadItem.model_validate(ITEMS[kind])
    assert item.root.type == kind


@pytest.mark.parametrize("mode", ["done", "running", "unfinished"])
@pytest.mark.parametrize("kind", sorted(ITEMS))
def test_every_item_kind_renders(kind: str, mode: str) -> None:
    rendered = render_item(ITEMS[kind], running=mode == "running", unfinished=mode == "unfinished")
    assert isinstance(rendered, Rendered)
    assert isinstance(rendered.html, str) and isinstance(rendered.text, str)
    assert isinstance(rendered.markdown, str)
    check_html(rendered.html)
    check_markdown(rendered.markdown)
    if kind == "userMessage":
        assert rendered == Rendered("", "", "")  # the prompt is the cell itself
    else:
        assert MENTIONS[kind] in rendered.text
        assert esc(MENTIONS[kind]) in rendered.html
        assert rendered.markdown


def test_table_covers_every_thread_item_kind_of_the_sdk() -> None:
    variants = get_args(ThreadItem.model_fields["root"].annotation)
    kinds = {get_args(cls.model_fields["type"].annotation)[0] for cls in variants}
    assert kinds == set(ITEMS)


def test_generic_view_names_the_kind_and_fields() -> None:
    rendered = render_item({"type": "futureSearch", "id": "w1", "query": "codex docs"})
    assert rendered.text == "[futureSearch] query='codex docs'"
    assert ">futureSearch</span> query=" in rendered.html
    assert rendered.markdown.startswith("**futureSearch** ")


def test_generic_view_skips_empty_fields_and_truncates_long_ones() -> None:
    item = {"type": "mystery", "id": "z", "empty": "", "none": None, "list": [], "long": "x" * 1000, "zero": 0}
    rendered = render_item(item)
    assert "empty" not in rendered.text and "none" not in rendered.text and "list=" not in rendered.text
    assert "zero=0" in rendered.text
    assert rendered.text.startswith("[mystery] long='xxx")
    long_part = rendered.text.removeprefix("[mystery] ").split(", ")[0]
    assert len(long_part) == 200
    assert rendered.text.endswith(", zero=0")


@pytest.mark.parametrize(
    "item",
    [
        {"type": "brandNewKind", "id": "n1", "payload": {"nested": [1, 2, {"deep": True}]}},
        {"id": "no-type"},
        {},
        {"type": "", "id": "blank"},
        {"type": "commandExecution"},  # known kind, no fields at all
        {"type": "fileChange", "changes": [{}]},
        {"type": "reasoning", "summary": None},
        {"type": "agentMessage", "text": None},
    ],
)
def test_unknown_or_sparse_items_never_raise(item: dict[str, Any]) -> None:
    for running in (False, True):
        rendered = render_item(item, running=running)
        check_html(rendered.html)
        check_markdown(rendered.markdown)
        assert "could not render" not in rendered.text


def test_unknown_item_uses_the_generic_view() -> None:
    rendered = render_item({"type": "brandNewKind", "id": "n1", "answer": 42})
    assert rendered.text == "[brandNewKind] answer=42"
    assert "brandNewKind" in rendered.html


# -- agent messages, commands, file changes, reasoning --------------------------------


def test_agent_message_running_cursor_and_commentary() -> None:
    done = render_item(ITEMS["agentMessage"])
    running = render_item(ITEMS["agentMessage"], running=True)
    assert done.text == running.text == "Here is the answer."
    assert "\u258d" in running.html and "\u258d" not in done.html
    commentary = render_item({**ITEMS["agentMessage"], "phase": "commentary"})
    assert "jp-ui-font-color2" in commentary.html
    assert "jp-ui-font-color2" not in done.html
    assert ">commentary</span>" in commentary.html and "commentary" not in done.html


@pytest.mark.parametrize(
    ("changes", "running", "badge"),
    [
        ({"exitCode": 0}, False, "[exit 0]"),
        ({"exitCode": 2, "status": "failed"}, False, "[exit 2]"),
        ({"exitCode": None, "status": "declined"}, False, "[declined]"),
        ({"exitCode": None, "status": "failed"}, False, "[failed]"),
        ({"exitCode": None, "status": None}, False, "[ended]"),
        ({"exitCode": None, "status": "inProgress"}, True, "[running]"),
    ],
)
def test_command_badges(changes: dict[str, Any], running: bool, badge: str) -> None:
    rendered = render_item({**ITEMS["commandExecution"], **changes}, running=running)
    assert f"  {badge} \u00b7 1.23 s \u00b7 /work/ws" in rendered.text
    assert f">{esc(badge[1:-1])}</span>" in rendered.html
    assert f"`{badge[1:-1]}`" in rendered.markdown


def test_command_text_form() -> None:
    rendered = render_item(ITEMS["commandExecution"])
    # Shown as the model wrote it, without the shell Codex wraps it in.
    assert rendered.text == "$ ls -1  [exit 0] \u00b7 1.23 s \u00b7 /work/ws\na.txt\nb.txt"
    assert "/work/ws" in rendered.html
    assert "#1a7f37" in rendered.html  # green for exit 0
    assert "#cf222e" in render_item({**ITEMS["commandExecution"], "exitCode": 1}).html


def test_command_without_output_has_no_pre_block() -> None:
    rendered = render_item({**ITEMS["commandExecution"], "aggregatedOutput": ""})
    assert "<pre" not in rendered.html
    assert "\n" not in rendered.text


def test_output_tail_keeps_the_end() -> None:
    extra = 123
    output = "HEAD-MARKER\n" + "x" * (OUTPUT_TAIL_CHARS + extra - len("HEAD-MARKER\n") - len("TAIL-END")) + "TAIL-END"
    assert len(output) == OUTPUT_TAIL_CHARS + extra
    running = render_item({**ITEMS["commandExecution"], "aggregatedOutput": output}, running=True)
    done = render_item({**ITEMS["commandExecution"], "aggregatedOutput": output})
    note = f"\u2026 {extra} earlier characters (1 line) not shown"
    for form in (running.html, running.text, running.markdown, done.text, done.markdown):
        assert "TAIL-END" in form
        assert "HEAD-MARKER" not in form
        assert note in form.replace("\\", "")
    assert done.text.endswith("x" * 100 + "TAIL-END")
    shown = running.text.split("not shown\n", 1)[1]
    assert shown == output[-OUTPUT_TAIL_CHARS:]
    # When done, the whole output (well under the cap) is folded away below the tail.
    assert f"{WHERE_FULL}" in done.text
    assert "all output (2 lines)</summary>" in done.html
    assert "HEAD-MARKER" in done.html.split("<details>", 1)[1]
    assert "HEAD-MARKER" not in done.html.split("<details>", 1)[0]


def test_output_at_the_limit_is_not_truncated() -> None:
    output = "S" + "y" * (OUTPUT_TAIL_CHARS - 2) + "E"
    rendered = render_item({**ITEMS["commandExecution"], "aggregatedOutput": output})
    assert "earlier characters" not in rendered.text
    assert rendered.text.endswith(output)


def test_file_change_lists_each_file_with_kind_and_diff() -> None:
    rendered = render_item(ITEMS["fileChange"])
    assert rendered.text == (
        "[file change] 2 files \u00b7 +2 \u22121  [completed]\n"
        "update src/app.py\n@@ -1 +1 @@\n-old\n+new\nadd NEW.md\n+hello"
    )
    assert ">update</span>" in rendered.html and ">add</span>" in rendered.html
    assert "completed" in rendered.html
    assert "running" in render_item({**ITEMS["fileChange"], "status": None}, running=True).html
    assert "```diff\n@@ -1 +1 @@\n-old\n+new\n```" in rendered.markdown


def test_reasoning_shows_summary_parts_and_hides_when_empty() -> None:
    rendered = render_item(ITEMS["reasoning"])
    assert rendered.text == "[thinking]\nLook first.\n\nThen act."
    assert "<details>" in rendered.html  # collapsed: no open attribute
    assert ">thinking</span> \u00b7 Look first. Then act.</summary>" in rendered.html
    assert "raw" not in rendered.text  # the raw content only stands in for a missing summary
    raw = render_item({"type": "reasoning", "id": "r", "summary": [], "content": ["raw"]})
    assert raw.text == "[thinking (raw)] raw"
    assert render_item({"type": "reasoning", "id": "r", "summary": ["", ""]}) == Rendered("", "", "")
    assert render_item({"type": "reasoning", "id": "r", "summary": [], "content": []}) == Rendered("", "", "")


# -- escaping --------------------------------------------------------------------------


def test_esc() -> None:
    assert esc(None) == ""
    assert esc(5) == "5"
    assert esc("&amp;") == "&amp;amp;"
    assert esc("\"'<>") == "&quot;&#x27;&lt;&gt;"


@pytest.mark.parametrize(
    "item",
    [
        pytest.param({"type": "agentMessage", "id": "m", "text": EVIL}, id="agentMessage.text"),
        pytest.param({"type": "agentMessage", "id": "m", "text": EVIL, "phase": "commentary"}, id="commentary.text"),
        pytest.param({**ITEMS["commandExecution"], "command": EVIL}, id="command.command"),
        pytest.param({**ITEMS["commandExecution"], "aggregatedOutput": EVIL}, id="command.output"),
        pytest.param({**ITEMS["commandExecution"], "exitCode": None, "status": EVIL}, id="command.status"),
        pytest.param(
            {
                "type": "fileChange",
                "id": "f",
                "status": "completed",
                "changes": [{"path": EVIL, "kind": {"type": "add"}, "diff": ""}],
            },
            id="fileChange.path",
        ),
        pytest.param(
            {
                "type": "fileChange",
                "id": "f",
                "status": "completed",
                "changes": [{"path": "a", "kind": {"type": "add"}, "diff": EVIL}],
            },
            id="fileChange.diff",
        ),
        pytest.param(
            {
                "type": "fileChange",
                "id": "f",
                "status": "completed",
                "changes": [{"path": "a", "kind": {"type": EVIL}, "diff": ""}],
            },
            id="fileChange.kind",
        ),
        pytest.param({"type": "reasoning", "id": "r", "summary": ["fine", EVIL]}, id="reasoning.summary"),
        pytest.param({"type": "plan", "id": "p", "text": EVIL}, id="plan.text"),
        pytest.param({"type": "futureKind", "id": "p", "text": EVIL}, id="generic.field"),
    ],
)
def test_item_fields_are_escaped(item: dict[str, Any]) -> None:
    # A running command shows "running" instead of its status.
    for running in (False,) if item.get("status") == EVIL else (False, True):
        rendered = render_item(item, running=running)
        if item["type"] == "futureKind":
            # The generic view shows repr(); the payload's characters still must be inert.
            assert "<script" not in rendered.html and "<img" not in rendered.html
            assert "&amp;amp;" in rendered.html
            assert SCRIPT in rendered.text and IMG in rendered.text and ENTITY in rendered.text
            assert repr(EVIL) in check_html(rendered.html)
            check_markdown(rendered.markdown)
        else:
            assert_escaped(rendered)


def test_command_cwd_is_escaped() -> None:
    rendered = render_item({**ITEMS["commandExecution"], "cwd": EVIL})
    assert "<script" not in rendered.html and "<img" not in rendered.html
    assert "&amp;amp;" in rendered.html
    assert EVIL in check_html(rendered.html)


def test_generic_kind_name_is_escaped() -> None:
    rendered = render_item({"type": SCRIPT, "id": "x", "field": IMG})
    assert "<script" not in rendered.html and "<img" not in rendered.html
    assert rendered.text.startswith(f"[{SCRIPT}] ")
    check_html(rendered.html)


def test_header_error_and_retry_are_escaped() -> None:
    error = render_header(status="failed", elapsed=1.0, info=TurnInfo(), error=EVIL)
    assert_escaped(error)
    retry = render_header(status="running", elapsed=1.0, info=TurnInfo(), retry=EVIL)
    assert_escaped(retry)


def test_header_info_is_escaped() -> None:
    rendered = render_header(
        status=SCRIPT, elapsed=0.0, info=TurnInfo(model=EVIL, sandbox=IMG, thread_id=SCRIPT, cwd=EVIL)
    )
    assert "<script" not in rendered.html and "<img" not in rendered.html
    check_html(rendered.html)


def test_notices_are_escaped() -> None:
    assert_escaped(render_notice("declined", EVIL))
    kind = render_notice(SCRIPT, "text")
    assert "<script" not in kind.html
    assert kind.text == f"! {SCRIPT}: text"


def test_recorded_markup_turn_is_inert() -> None:
    transcript = Transcript()
    for method, params in json.loads((DATA / "markup.json").read_text(encoding="utf-8")):
        transcript.apply(method, params)
    rendered = render_turn(
        items=transcript.result_items(),
        status=transcript.status,
        elapsed=transcript.elapsed(),
        info=TurnInfo(thread_id="t"),
        usage=transcript.usage,
    )
    assert "<script" not in rendered.html and "<img" not in rendered.html
    assert rendered.html.count("&amp;amp;") == 4  # commentary, command, output, answer
    shown = check_html(rendered.html)
    assert shown.count(SCRIPT) == 4
    assert rendered.text.count(SCRIPT) == 4
    assert "a &amp; b" in rendered.text
    assert check_markdown(rendered.markdown).count("&lt;script&gt;") == 4


# -- header ----------------------------------------------------------------------------

USAGE = {
    "last": {"totalTokens": 1234, "inputTokens": 1000, "outputTokens": 234},
    "total": {"totalTokens": 5678, "inputTokens": 5000, "outputTokens": 678},
    "modelContextWindow": 258400,
}
INFO = TurnInfo(
    thread_id="01a23228-870b-7231-9503-a2b563aae282", model="gpt-5-codex", sandbox="workspace-write", cwd="/work"
)


@pytest.mark.parametrize(
    ("status", "label"),
    [
        ("starting", "\u25cb starting Codex"),
        ("running", "\u25cf running"),
        ("completed", "\u2714 completed"),
        ("failed", "\u2716 failed"),
        ("interrupted", "\u25a0 interrupted"),
        ("somethingNew", "somethingNew"),
    ],
)
def test_header_status_label(status: str, label: str) -> None:
    rendered = render_header(status=status, elapsed=0.0, info=TurnInfo())
    assert rendered.text.startswith(f"[codex] {label} \u00b7 ")
    assert f">{esc(label)}</b>" in rendered.html
    assert rendered.markdown.startswith(f"**codex** **{label}** \u00b7 ")


def test_header_shows_all_facts() -> None:
    rendered = render_header(status="completed", elapsed=12.345, info=INFO, usage=USAGE, turn_tokens=1234)
    for form in (rendered.text, rendered.html):
        assert "12.3 s" in form
        assert "gpt-5-codex" in form
        assert "sandbox workspace-write" in form
        assert "thread 63aae282" in form
        assert "01a23228" not in form  # the id is shortened
        assert "tokens: 1,234 this turn (all its model requests), 5,678 this thread" in form
        assert "of 258,400 tokens" in form
    # The percentage's basis is checked separately (below).
    assert rendered.text == (
        "[codex] \u2714 completed \u00b7 12.3 s \u00b7 gpt-5-codex \u00b7 sandbox workspace-write"
        " \u00b7 thread 63aae282 \u00b7 tokens: 1,234 this turn (all its model requests), 5,678 this thread"
        " \u00b7 context: 1,234 of 258,400 tokens (0%)"
    )
    check_html(rendered.html)


def test_header_tells_threads_of_the_same_minute_apart() -> None:
    # Thread ids are UUIDv7s: their first characters are the time they started.
    ids = ("01a23228-870b-7231-9503-a2b563aae282", "01a23228-887b-7083-aa29-f518c35897f6")
    shown = [render_header(status="completed", elapsed=1.0, info=TurnInfo(thread_id=t)).text for t in ids]
    assert shown[0] != shown[1]
    assert shown[0].endswith("thread 63aae282") and shown[1].endswith("thread c35897f6")


def test_header_context_percentage() -> None:
    usage = {"last": {"totalTokens": 64600}, "total": {"totalTokens": 64600}, "modelContextWindow": 258400}
    rendered = render_header(status="running", elapsed=0.0, info=TurnInfo(), usage=usage)
    assert "context: 64,600 of 258,400 tokens (25%)" in rendered.text


def test_header_context_percentage_uses_the_last_request() -> None:
    # A long thread: the cumulative total is far past the window, the context is not.
    usage = {"last": {"totalTokens": 25840}, "total": {"totalTokens": 900000}, "modelContextWindow": 258400}
    rendered = render_header(status="running", elapsed=0.0, info=TurnInfo(), usage=usage)
    # 10% by plain ratio, about 6% with Codex's own 12,000-token baseline; never 348%.
    match = re.search(r"context: 25,840 of 258,400 tokens \((\d+)%\)", rendered.text)
    assert match is not None
    assert 0 <= int(match.group(1)) <= 10


def test_header_without_optional_facts() -> None:
    rendered = render_header(status="running", elapsed=0.04, info=TurnInfo())
    assert rendered.text == "[codex] \u25cf running \u00b7 0 s"  # whole seconds while running
    no_window = render_header(
        status="running", elapsed=0.0, info=TurnInfo(), usage={"last": {"totalTokens": 1}, "total": {"totalTokens": 2}}
    )
    assert no_window.text.endswith("tokens: 2 this thread")  # the turn's own count unknown: not guessed
    assert "context" not in no_window.text


def test_header_counts_all_of_the_turns_requests() -> None:
    from codex_magic._transcript import Transcript

    transcript = Transcript()
    for last, total in ((100, 1100), (140, 1240)):  # two model requests in one turn
        usage = {"last": {"totalTokens": last}, "total": {"totalTokens": total}}
        transcript.apply("thread/tokenUsage/updated", {"tokenUsage": usage})
    assert transcript.turn_tokens == 240
    rendered = render_header(
        status="completed", elapsed=0.0, info=TurnInfo(), usage=transcript.usage, turn_tokens=transcript.turn_tokens
    )
    assert "tokens: 240 this turn (all its model requests), 1,240 this thread" in rendered.text


def test_header_retry_only_while_running_and_error_always() -> None:
    running = render_header(status="running", elapsed=1.0, info=TurnInfo(), retry="retrying: Reconnecting... 2/5")
    assert running.text.endswith("\n! retrying: Reconnecting... 2/5")
    assert "retrying: Reconnecting... 2/5" in check_html(running.html)
    assert "retrying: Reconnecting... 2/5" in running.markdown
    done = render_header(status="completed", elapsed=1.0, info=TurnInfo(), retry="Reconnecting... 2/5")
    assert "Reconnecting" not in done.text and "Reconnecting" not in done.html
    assert "Reconnecting" not in done.markdown
    failed = render_header(status="failed", elapsed=1.0, info=TurnInfo(), error="HTTP 500")
    assert failed.text.endswith("\nerror: HTTP 500")
    assert "error: HTTP 500" in check_html(failed.html)
    assert "border-left:3px solid #cf222e" in failed.html  # prominent, not just a line
    assert "> \u2716 **error**: HTTP 500" in failed.markdown


# -- whole turns -----------------------------------------------------------------------


def test_render_turn_orders_header_items_notices() -> None:
    items = [ITEMS["userMessage"], ITEMS["reasoning"], ITEMS["commandExecution"], ITEMS["agentMessage"]]
    rendered = render_turn(
        items=items,
        status="completed",
        elapsed=2.0,
        info=INFO,
        usage=USAGE,
        notices=[("declined", "rm -rf / -> decline")],
    )
    lines = rendered.text.splitlines()
    assert lines[0].startswith("[codex] \u2714 completed")
    order = [rendered.text.index(s) for s in ("[thinking]", "$ ls -1", "Here is the answer.", "! declined:")]
    assert order == sorted(order)
    assert "list the files" not in rendered.text  # the user's prompt is hidden
    check_html(rendered.html)
    html_order = [rendered.html.index(s) for s in ("completed", "thinking", "ls -1", "Here is the answer.", "declined")]
    assert html_order == sorted(html_order)


def test_render_turn_marks_running_items() -> None:
    items = [ITEMS["agentMessage"], {**ITEMS["commandExecution"], "exitCode": None, "status": "inProgress"}]
    rendered = render_turn(
        items=items, status="running", elapsed=0.5, info=TurnInfo(), running_ids=frozenset({"m1", "c1"})
    )
    assert "\u258d" in rendered.html
    assert "[running] \u00b7 1.23 s" in rendered.text
    finished = render_turn(items=items, status="running", elapsed=0.5, info=TurnInfo())
    assert "\u258d" not in finished.html


def test_render_turn_error_and_empty_body() -> None:
    rendered = render_turn(items=[], status="failed", elapsed=0.1, info=TurnInfo(), error=EVIL)
    assert rendered.text.startswith("[codex] \u2716 failed")
    assert "<script" not in rendered.html
    check_html(rendered.html)


def test_join_skips_empty_parts() -> None:
    joined = join([Rendered("<b>a</b>", "a"), Rendered("", ""), Rendered("<i></i>", ""), Rendered("c", "c")])
    assert joined == Rendered("<b>a</b><i></i>c", "a\nc")
    with_md = join([Rendered("<b>a</b>", "a", "**a**"), Rendered("", "", ""), Rendered("c", "c", "c")])
    assert with_md == Rendered("<b>a</b>c", "a\nc", "**a**\n\nc")


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("/bin/bash -lc 'echo hi && ls'", "echo hi && ls"),
        ("/bin/bash -c 'ls -1'", "ls -1"),
        ("sh -c 'a | b'", "a | b"),
        ("python -c 'print(1)'", "python -c 'print(1)'"),  # not a shell
        ("/bin/bash -lc 'unclosed", "/bin/bash -lc 'unclosed"),  # not parseable
        ("/bin/bash script.sh", "/bin/bash script.sh"),
    ],
)
def test_shown_command_drops_the_shell_wrapper(command: str, shown: str) -> None:
    from codex_magic._render import shown_command

    assert shown_command(command) == shown
