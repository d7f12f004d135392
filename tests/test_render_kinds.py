"""Pure tier: each item kind in detail, Markdown, bounds, images, and malformed input."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest

from codex_magic import _html, _render
from codex_magic._render import (
    RENDER_FAILED,
    WHERE_FULL,
    Rendered,
    TurnInfo,
    render_diff,
    render_item,
    render_plan,
    render_turn,
)

from .test_render import EVIL, IMG, ITEMS, SCRIPT, check_html, check_markdown

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 16).decode()
PNG_URL = f"data:image/png;base64,{PNG}"
LINKS = " [x](javascript:alert(1)) <javascript:alert(2)> ![i](javascript:alert(3)) [y](JaVaScRiPt:alert(4))"
PAYLOAD = EVIL + LINKS

MODES = ("done", "running", "unfinished")


def render(item: dict[str, Any], mode: str = "done") -> Rendered:
    """Render in a mode and check all three forms are well-formed and inert."""
    rendered = render_item(item, running=mode == "running", unfinished=mode == "unfinished")
    check_html(rendered.html)
    check_markdown(rendered.markdown)
    assert RENDER_FAILED not in rendered.text
    return rendered


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def with_path(item: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``item`` with the value at ``path`` replaced."""
    changed = copy.deepcopy(item)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


# -- escaping in every text-bearing field of every kind -------------------------------------------

COMMAND_DONE = {**ITEMS["commandExecution"], "exitCode": None}
SEARCH_OPEN = {**ITEMS["webSearch"], "action": {"type": "openPage", "url": "https://example.com"}}
SEARCH_FIND = {**ITEMS["webSearch"], "action": {"type": "findInPage", "url": "https://example.com", "pattern": "p"}}
WITH_RESULTS = {**ITEMS["webSearch"], "results": [{"title": "t", "url": "https://example.com/r"}]}
MCP_FAILED = {**ITEMS["mcpToolCall"], "status": "failed", "result": None, "error": {"message": "boom"}}
FUNCTION_ITEMS = {**ITEMS["functionCallOutput"], "output": [{"type": "input_text", "text": "t"}]}
MOVE = {
    "type": "fileChange",
    "id": "mv",
    "status": "completed",
    "changes": [{"path": "a.py", "kind": {"type": "update", "move_path": "b.py"}, "diff": "@@ -1 +1 @@\n-a\n+b"}],
}
GEN_FAILED = {
    **ITEMS["imageGeneration"],
    "status": "failed",
    "result": "",
    "failure": {"type": "usageLimitExceeded", "limitId": "x"},
}

# (base item, path to the field, whether the field's text shows in the done HTML)
FIELDS: list[tuple[str, dict[str, Any], tuple[Any, ...], bool]] = [
    ("hookPrompt.text", ITEMS["hookPrompt"], ("fragments", 0, "text"), True),
    ("agentMessage.text", ITEMS["agentMessage"], ("text",), True),
    ("commentary.text", {**ITEMS["agentMessage"], "phase": "commentary"}, ("text",), True),
    ("functionCallOutput.name", ITEMS["functionCallOutput"], ("name",), True),
    ("functionCallOutput.namespace", ITEMS["functionCallOutput"], ("namespace",), True),
    ("functionCallOutput.output", ITEMS["functionCallOutput"], ("output",), True),
    ("functionCallOutput.output[].text", FUNCTION_ITEMS, ("output", 0, "text"), True),
    ("plan.text", ITEMS["plan"], ("text",), True),
    ("reasoning.summary", ITEMS["reasoning"], ("summary", 1), True),
    ("reasoning.content", {**ITEMS["reasoning"], "summary": []}, ("content", 0), True),
    ("command.command", ITEMS["commandExecution"], ("command",), True),
    ("command.cwd", ITEMS["commandExecution"], ("cwd",), True),
    ("command.output", ITEMS["commandExecution"], ("aggregatedOutput",), True),
    ("command.status", COMMAND_DONE, ("status",), True),
    ("fileChange.path", ITEMS["fileChange"], ("changes", 0, "path"), True),
    ("fileChange.diff", ITEMS["fileChange"], ("changes", 0, "diff"), True),
    ("fileChange.kind", ITEMS["fileChange"], ("changes", 1, "kind", "type"), True),
    ("fileChange.move_path", MOVE, ("changes", 0, "kind", "move_path"), True),
    ("fileChange.status", ITEMS["fileChange"], ("status",), True),
    ("mcp.server", ITEMS["mcpToolCall"], ("server",), True),
    ("mcp.tool", ITEMS["mcpToolCall"], ("tool",), True),
    ("mcp.arguments", ITEMS["mcpToolCall"], ("arguments", "q"), True),
    ("mcp.result", ITEMS["mcpToolCall"], ("result", "content", 0, "text"), True),
    ("mcp.error", MCP_FAILED, ("error", "message"), True),
    ("mcp.status", ITEMS["mcpToolCall"], ("status",), True),
    ("dynamic.namespace", ITEMS["dynamicToolCall"], ("namespace",), True),
    ("dynamic.tool", ITEMS["dynamicToolCall"], ("tool",), True),
    ("dynamic.arguments", ITEMS["dynamicToolCall"], ("arguments", "code"), True),
    ("dynamic.content", ITEMS["dynamicToolCall"], ("contentItems", 0, "text"), True),
    ("collab.tool", ITEMS["collabAgentToolCall"], ("tool",), True),
    ("collab.prompt", ITEMS["collabAgentToolCall"], ("prompt",), True),
    ("collab.model", {**ITEMS["collabAgentToolCall"], "model": "m"}, ("model",), True),
    ("collab.receiver", ITEMS["collabAgentToolCall"], ("receiverThreadIds", 0), False),  # shortened
    ("collab.agentState", ITEMS["collabAgentToolCall"], ("agentsStates", "thread-b", "status"), True),
    ("subAgent.agentPath", ITEMS["subAgentActivity"], ("agentPath",), True),
    ("subAgent.kind", ITEMS["subAgentActivity"], ("kind",), True),
    ("subAgent.model", ITEMS["subAgentActivity"], ("model",), True),
    ("webSearch.query", ITEMS["webSearch"], ("query",), False),  # the action's query wins
    ("webSearch.action.query", ITEMS["webSearch"], ("action", "query"), True),
    ("webSearch.url", SEARCH_OPEN, ("action", "url"), True),
    ("webSearch.pattern", SEARCH_FIND, ("action", "pattern"), True),
    ("webSearch.result.title", WITH_RESULTS, ("results", 0, "title"), True),
    ("webSearch.result.url", WITH_RESULTS, ("results", 0, "url"), False),  # not a URL: not listed
    ("imageView.path", ITEMS["imageView"], ("path",), True),
    ("imageView.dataUrl", ITEMS["imageView"], ("dataUrl",), False),  # invalid: not shown at all
    ("sleep.durationMs", ITEMS["sleep"], ("durationMs",), False),
    ("imageGeneration.revisedPrompt", ITEMS["imageGeneration"], ("revisedPrompt",), True),
    ("imageGeneration.savedPath", ITEMS["imageGeneration"], ("savedPath",), True),
    ("imageGeneration.status", ITEMS["imageGeneration"], ("status",), True),
    ("imageGeneration.result", ITEMS["imageGeneration"], ("result",), False),
    ("imageGeneration.failure", GEN_FAILED, ("failure", "type"), True),
    ("enteredReviewMode.review", ITEMS["enteredReviewMode"], ("review",), True),
    ("exitedReviewMode.review", ITEMS["exitedReviewMode"], ("review",), True),
    ("contextCompaction.id", ITEMS["contextCompaction"], ("id",), False),
    ("generic.type", {"type": "x", "id": "g"}, ("type",), True),
    ("generic.field", {"type": "futureKind", "id": "g", "field": "v"}, ("field",), True),
]


def test_fields_cover_every_kind() -> None:
    assert {item.get("type") for _, item, _, _ in FIELDS} >= set(ITEMS) - {"userMessage"}


@pytest.mark.parametrize(("base", "path", "visible"), [f[1:] for f in FIELDS], ids=[f[0] for f in FIELDS])
def test_every_text_field_is_inert(base: dict[str, Any], path: tuple[Any, ...], visible: bool) -> None:
    item = with_path(base, path, PAYLOAD)
    for mode in MODES:
        rendered = render(item, mode)  # no raw <script, <img src=x, onerror=, javascript: href or src
        assert "<script" not in rendered.html.lower()
    done = render(item)
    if visible:
        assert "alert(" in check_html(done.html)  # shown, as text


# -- Markdown in messages, plans and reviews ------------------------------------------------------

DOC = """# Title

Some *em*, **strong**, `code <b>`, ~~gone~~ and [a link](https://example.com/a_b?x=1&y=(2)).

- one
- two
  - nested

3. three
4. four

> quoted *text*

| left | right |
|:-----|------:|
| 1    | `a|b` |

```python
print("<b>&amp;</b>")
```

Price $5 & 6 < 7 | pipe a_b_c \\*not em\\* line  
break
"""

DOCS = [
    DOC,
    "- a\n\n- b\n",
    "10. ten\n11. eleven\n",
    "`` a`b `` and ```x```",
    f"![dot]({PNG_URL}) and ![remote](https://example.com/x.png)",
    "## Second\n\n---\n\n***\n\ntext",
    "1) one\n2) two\n\n* star\n* list\n",
    "> - quoted list\n>\n>   ```\n>   code\n>   ```\n",
    "a \\# b \\> c 1\\. d",
    "| a |\n|---|\n| <script> |\n",
]


def message(text: str, phase: str | None = "final_answer") -> dict[str, Any]:
    return {"type": "agentMessage", "id": "m", "text": text, "phase": phase}


def test_markdown_renders_structure() -> None:
    html = render(message(DOC)).html
    for piece in ("<h1", "<em>em</em>", "<strong>strong</strong>", "<s>gone</s>", "<ul", "<ol", "<li>", "<blockquote",
                  "<table", "<th", "<td", "<pre", 'href="https://example.com/a_b?x=1&amp;y=(2)"'):  # fmt: skip
        assert piece in html, piece
    assert '<ol start="3" style="margin:0.3em 0;padding-left:1.6em">' in html
    assert "&lt;b&gt;" in html and "print(&quot;&lt;b&gt;&amp;amp;&lt;/b&gt;&quot;)" in html
    assert "text-align:right" in html
    assert 'target="_blank" rel="noopener noreferrer"' in html


@pytest.mark.parametrize("doc", DOCS)
def test_markdown_form_round_trips(doc: str) -> None:
    """The Markdown form parses to the same HTML as the message itself."""
    first = render(message(doc))
    again = render(message(first.markdown))
    assert again.html == first.html
    assert first.text == doc


def test_raw_html_and_script_links_stay_text() -> None:
    rendered = render(message(f"{SCRIPT} {IMG} a &amp; b{LINKS} <https://ok.example> [ok](https://ok.example)"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered.html
    assert "a &amp;amp; b" in rendered.html  # entities are not decoded: the text shows as written
    assert rendered.html.count("<a ") == 2 and rendered.html.count('href="https://ok.example"') == 2
    assert "[x](javascript:alert(1))" in check_html(rendered.html)
    assert "\\<script\\>" in rendered.markdown and "\\&amp;" in rendered.markdown


def test_only_web_and_mail_links_are_links() -> None:
    rendered = render(message(
        "[web](https://example.com) [mail](mailto:a@example.com) [data](data:image/png;base64,AAAA) "
        "[rel](/lab/tree) [file](file:///etc/passwd) [anchor](#x)"
    ))  # fmt: skip
    hrefs = re.findall(r'href="([^"]*)"', rendered.html)
    assert hrefs == ["https://example.com", "mailto:a@example.com"]
    assert "web mail data rel [file](file:///etc/passwd) anchor" in check_html(rendered.html)
    assert rendered.markdown == (
        "[web](https://example.com) [mail](mailto:a@example.com) data rel \\[file\\](file:///etc/passwd) anchor"
    )


def test_markdown_images_are_inline_only_for_valid_data_urls() -> None:
    bad = "data:image/svg+xml;base64,PHN2Zz4="
    rendered = render(message(f"![dot]({PNG_URL}) ![remote](https://example.com/x.png) ![bad]({bad})"))
    assert rendered.html.count("<img") == 1 and f'src="{PNG_URL}"' in rendered.html
    assert 'href="https://example.com/x.png"' in rendered.html  # a link, not a fetched resource
    assert "svg" not in "".join(re.findall(r'(?:src|href)="[^"]*"', rendered.html))


def test_streaming_every_prefix_stays_balanced() -> None:
    for end in range(0, len(DOC) + 1, 3):
        running = render(message(DOC[:end]), "running")
        assert "\u258d" in running.html


def test_unclosed_fence_while_streaming() -> None:
    rendered = render(message("Look:\n\n```python\nx = '<b>'\nif x:\n    pass"), "running")
    assert "<pre" in rendered.html and "x = &#x27;&lt;b&gt;&#x27;" in rendered.html
    assert rendered.html.index("</pre>") < rendered.html.index("\u258d")
    assert rendered.markdown.endswith("    pass\n```")


def test_cursor_sits_in_the_last_paragraph() -> None:
    rendered = render(message("Hello"), "running")
    assert "Hello <span" in rendered.html and "\u258d</span></p>" in rendered.html
    empty = render(message(""), "running")
    assert "\u258d" in empty.html
    assert render(message("")) == Rendered("", "", "")


def test_commentary_is_dimmed_smaller_and_labelled() -> None:
    commentary = render(message("Checking **files**", "commentary"))
    final = render(message("Checking **files**"))
    no_phase = render(message("Checking **files**", None))
    assert ">commentary</span>" in commentary.html and "font-size:12px" in commentary.html
    assert "jp-ui-font-color2" in commentary.html
    assert "commentary" not in final.html and final.html == no_phase.html
    assert commentary.markdown == "**commentary**\n\n> Checking **files**"
    assert final.markdown == "Checking **files**"


def test_unfinished_message_has_no_cursor() -> None:
    rendered = render(message("half a sen"), "unfinished")
    assert "\u258d" not in rendered.html
    assert ">unfinished</span>" in rendered.html
    assert rendered.text == "[unfinished]\nhalf a sen"
    assert rendered.markdown.startswith("`unfinished`\n\n")


def test_plan_item_is_a_plan_card_with_markdown() -> None:
    rendered = render({"type": "plan", "id": "p", "text": "1. read\n2. **fix**"})
    assert ">plan</span>" in rendered.html and "<ol" in rendered.html and "<strong>fix</strong>" in rendered.html
    assert rendered.markdown == "**plan**\n\n1. read\n2. **fix**"


def test_review_banner_and_review_text() -> None:
    entered = render(ITEMS["enteredReviewMode"])
    assert "review started" in entered.html and "current changes" in entered.html
    exited = render({**ITEMS["exitedReviewMode"], "review": "## Findings\n\n- **P1** bug"})
    assert "<h2" in exited.html and "<li><strong>P1</strong> bug</li>" in exited.html


# -- reasoning ------------------------------------------------------------------------------------


def test_reasoning_is_collapsed_with_a_one_line_gist() -> None:
    summary = "**Inspecting the repository** layout to find where the tests live and what they cover in detail"
    rendered = render({"type": "reasoning", "id": "r", "summary": [summary], "content": ["secret raw"]})
    assert "<details>" in rendered.html and "open" not in rendered.html
    gist = re.search(r"<summary[^>]*>(.*?)</summary>", rendered.html)
    assert gist is not None
    shown = check_html(gist.group(1))
    assert shown.startswith("thinking \u00b7 Inspecting the repository layout")
    assert len(shown) < 120
    assert "secret raw" not in rendered.html + rendered.text + rendered.markdown
    assert "<strong>Inspecting the repository</strong>" in rendered.html


def test_reasoning_while_streaming() -> None:
    assert "thinking\u2026" in render({"type": "reasoning", "id": "r", "summary": []}, "running").html
    partial = render({"type": "reasoning", "id": "r", "summary": ["Look"]}, "running")
    assert "\u258d" in partial.html


# -- commands -------------------------------------------------------------------------------------

RUNNING_COMMAND = {**ITEMS["commandExecution"], "status": "inProgress", "exitCode": None, "durationMs": None}
HUGE = "".join(f"line {i}: some output from a chatty build step\n" for i in range(100_000))


def test_command_card_shows_command_cwd_badge_duration() -> None:
    rendered = render(ITEMS["commandExecution"])
    shown = check_html(rendered.html)
    assert "$ ls -1" in shown and "/work/ws" in shown and "1.23 s" in shown
    assert 'background:#1a7f37">exit 0</span>' in rendered.html
    assert 'background:#cf222e">exit 1</span>' in render({**ITEMS["commandExecution"], "exitCode": 1}).html
    assert rendered.markdown == "`$ ls -1` \u00b7 `exit 0` \u00b7 1.23 s \u00b7 /work/ws\n\n```\na.txt\nb.txt\n```"


def test_running_command_shows_only_the_last_lines() -> None:
    output = "".join(f"row {i}\n" for i in range(100))
    rendered = render({**RUNNING_COMMAND, "aggregatedOutput": output}, "running")
    shown = check_html(rendered.html)
    assert "row 99" in shown and "row 70" in shown and "row 69\n" not in shown
    assert "(70 lines) not shown" in shown
    assert "<details>" not in rendered.html


def test_huge_output_is_bounded_while_running() -> None:
    rendered = render({**RUNNING_COMMAND, "aggregatedOutput": HUGE}, "running")
    assert size(rendered.html) <= 6 * 1024, size(rendered.html)
    assert size(rendered.text) <= 6 * 1024 and size(rendered.markdown) <= 6 * 1024
    assert "line 99999" in rendered.html and "line 99969:" not in rendered.html
    assert "(99,970 lines) not shown" in rendered.text


def test_huge_output_when_done_folds_a_capped_tail() -> None:
    rendered = render({**ITEMS["commandExecution"], "aggregatedOutput": HUGE})
    assert size(rendered.html) <= 80 * 1024, size(rendered.html)
    assert size(rendered.text) <= 6 * 1024 and size(rendered.markdown) <= 6 * 1024
    assert "all output (100,000 lines)</summary>" in rendered.html
    folded = rendered.html.split("<details>", 1)[1]
    assert "line 99999" in folded and "line 98800:" in folded and "line 98000:" not in folded
    assert f"are left out here; the full text is in {WHERE_FULL}" in folded
    assert WHERE_FULL in rendered.text and WHERE_FULL.replace("_", "\\_") in rendered.markdown


@pytest.mark.parametrize(
    "output",
    [
        '"' * 200_000,  # escapes to six bytes each
        "<&>" * 70_000,
        "\u754c" * 100_000,  # three bytes each in UTF-8
        "\U0001f600\n" * 50_000,
        "x" * 1_000_000,  # one very long line
    ],
    ids=["quotes", "markup", "cjk", "emoji-lines", "one-line"],
)
def test_pathological_output_is_bounded(output: str) -> None:
    item = {
        **RUNNING_COMMAND,
        "aggregatedOutput": output,
        "command": "c" * 10_000 + '"' * 5000,
        "cwd": "/" + "d<" * 2000,
    }
    running = render(item, "running")
    assert size(running.html) <= 6 * 1024, size(running.html)
    done = render({**item, "status": "completed", "exitCode": 0})
    assert size(done.html) <= 80 * 1024, size(done.html)


def test_unfinished_command() -> None:
    rendered = render({**RUNNING_COMMAND, "aggregatedOutput": "partial\n"}, "unfinished")
    assert ">unfinished</span>" in rendered.html and "running" not in rendered.html
    assert "[unfinished]" in rendered.text
    assert "<details>" not in rendered.html


def test_declined_and_failed_commands() -> None:
    declined = render({**ITEMS["commandExecution"], "status": "declined", "exitCode": None, "aggregatedOutput": None})
    assert ">declined</span>" in declined.html and "<pre" not in declined.html
    failed = render({**ITEMS["commandExecution"], "status": "failed", "exitCode": None})
    assert 'background:#cf222e">failed</span>' in failed.html


# -- file changes and the turn diff -----------------------------------------------------------------


def test_diff_lines_are_coloured() -> None:
    rendered = render(ITEMS["fileChange"])
    assert f'<span style="{_html._ADD_BG}">+new</span>' in rendered.html
    assert f'<span style="{_html._DEL_BG}">-old</span>' in rendered.html
    assert f'<span style="{_html._HUNK}">@@ -1 +1 @@</span>' in rendered.html
    assert '<span style="color:#1a7f37">+1</span> <span style="color:#cf222e">\u22121</span>' in rendered.html


def test_move_add_delete() -> None:
    moved = render(MOVE)
    assert ">move</span>" in moved.html and "a.py \u2192 b.py" in check_html(moved.html)
    assert "move a.py \u2192 b.py" in moved.text
    added = render({"type": "fileChange", "id": "a", "status": "completed",
                    "changes": [{"path": "n.py", "kind": {"type": "add"}, "diff": "import os\nprint(1)\n"}]})  # fmt: skip
    assert f'<span style="{_html._ADD_BG}">+import os</span>' in added.html  # content shown as added lines
    deleted = render({"type": "fileChange", "id": "d", "status": "completed",
                      "changes": [{"path": "o.py", "kind": {"type": "delete"}, "diff": "gone\n"}]})  # fmt: skip
    assert f'<span style="{_html._DEL_BG}">-gone</span>' in deleted.html and ">delete</span>" in deleted.html


def test_long_diff_is_capped_with_a_note() -> None:
    diff = "@@ -1,50000 +1,50000 @@\n" + "".join(f"-old {i}\n+new {i}\n" for i in range(50_000))
    item = {"type": "fileChange", "id": "f", "status": "completed",
            "changes": [{"path": "big.txt", "kind": {"type": "update"}, "diff": diff}] * 3}  # fmt: skip
    for mode in MODES:
        rendered = render(item, mode)
        assert size(rendered.html) <= 60 * 1024, size(rendered.html)
        assert "more lines not shown; the full diff is in" in rendered.html
        assert size(rendered.text) <= 200 * 1024 and "more lines; the full diff is in" in rendered.text


def test_many_files_are_bounded_too() -> None:
    change = {"kind": {"type": "update"}, "diff": "@@ -1 +1 @@\n-" + "a" * 500 + "\n+" + "b" * 500}
    item = {"type": "fileChange", "id": "f", "status": "completed",
            "changes": [{**change, "path": f"src/file{i}.py"} for i in range(2000)]}  # fmt: skip
    rendered = render(item)
    assert size(rendered.html) <= 60 * 1024 and size(rendered.text) <= 600 * 1024
    assert "2,000 files \u00b7 +2,000 \u22122,000" in rendered.text
    assert re.search(r"\u2026 [0-9,]+ more files; the full diff is in", rendered.text)


TURN_DIFF = (
    "diff --git a/x.py b/x.py\nindex 1..2 100644\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
    "diff --git a/y.py b/y.py\nnew file mode 100644\n--- /dev/null\n+++ b/y.py\n@@ -0,0 +1 @@\n+<script>\n"
)


def test_render_diff_is_collapsed_and_coloured() -> None:
    rendered = render_diff(TURN_DIFF)
    check_html(rendered.html)
    check_markdown(rendered.markdown)
    assert "<details><summary" in rendered.html and ">turn diff</span> 2 files, +2 \u22121</summary>" in rendered.html
    assert f'<span style="{_html._HEAD}">--- a/x.py</span>' in rendered.html  # a header, not a removal
    assert f'<span style="{_html._ADD_BG}">+&lt;script&gt;</span>' in rendered.html
    assert rendered.text.startswith("[turn diff] 2 files, +2 \u22121\ndiff --git")
    assert "```diff\ndiff --git a/x.py" in rendered.markdown
    assert render_diff("") == Rendered("", "", "") and render_diff("  \n") == Rendered("", "", "")


def test_render_diff_is_bounded() -> None:
    hunk = "@@ -1 +1 @@\n-" + '"' * 300 + "\n+x\n"
    diff = "".join(f"diff --git a/f{i} b/f{i}\n--- a/f{i}\n+++ b/f{i}\n{hunk}" for i in range(2000))
    rendered = render_diff(diff)
    check_html(rendered.html)
    assert size(rendered.html) <= 60 * 1024
    assert ">turn diff</span> 2,000 files, +2,000 \u22122,000</summary>" in rendered.html


# -- plans --------------------------------------------------------------------------------------------

PLAN = {
    "explanation": "Fix the <b>bug</b>",
    "plan": [
        {"step": "Read the code", "status": "completed"},
        {"step": "Write the *fix*", "status": "inProgress"},
        {"step": "Run tests", "status": "pending"},
    ],
}


def test_render_plan_is_a_checklist() -> None:
    rendered = render_plan(PLAN)
    check_html(rendered.html)
    check_markdown(rendered.markdown)
    assert "\u2611 Read the code" in rendered.html
    assert '<div style="font-weight:bold">\u25d0 Write the *fix*</div>' in rendered.html
    assert "<div>\u2610 Run tests</div>" in rendered.html
    assert "Fix the &lt;b&gt;bug&lt;/b&gt;" in rendered.html and ">1/3</span>" in rendered.html
    assert rendered.text.split("\n") == [
        "[plan] 1/3", "Fix the <b>bug</b>", "  \u2611 Read the code", "  \u25d0 Write the *fix*", "  \u2610 Run tests",
    ]  # fmt: skip
    assert rendered.markdown.endswith(
        "- [x] Read the code\n- [ ] **Write the \\*fix\\*** *(in progress)*\n- [ ] Run tests"
    )


@pytest.mark.parametrize(
    "plan",
    [
        {},
        {"plan": []},
        {"plan": None, "explanation": None},
        {"plan": "x"},
        {"plan": [None, 3, {"step": None}]},
        None,
        [],
    ],
)
def test_render_plan_tolerates_odd_payloads(plan: Any) -> None:
    rendered = render_plan(plan)
    check_html(rendered.html)
    check_markdown(rendered.markdown)


# -- tool calls ---------------------------------------------------------------------------------------


def test_mcp_call_shows_call_result_and_duration() -> None:
    rendered = render(ITEMS["mcpToolCall"])
    shown = check_html(rendered.html)
    assert 'docs.search({"q": "pandas"})' in shown and "found" in shown and "12 ms" in shown
    assert rendered.text == '[MCP tool] docs.search({"q": "pandas"})  [completed] \u00b7 12 ms\nfound'


def test_mcp_arguments_are_truncated() -> None:
    rendered = render({**ITEMS["mcpToolCall"], "arguments": {"code": "x" * 5000}})
    call = re.search(r"<code[^>]*>(.*?)</code>", rendered.html)
    assert call is not None and len(call.group(1)) < 260 and "\u2026" in call.group(1)


def test_mcp_error_is_red() -> None:
    rendered = render(MCP_FAILED)
    assert "border-left:3px solid #cf222e" in rendered.html and "\u2716 error: boom" in check_html(rendered.html)
    assert "error: boom" in rendered.text and "> \u2716 **error**: boom" in rendered.markdown


def test_mcp_images_inline_only_when_valid() -> None:
    content = [
        {"type": "image", "data": PNG, "mimeType": "image/png"},
        {"type": "image", "data": JPEG, "mimeType": "image/jpeg"},
        {"type": "image", "data": "PHN2Zz4=", "mimeType": "image/svg+xml"},
        {"type": "image", "data": "not base64!", "mimeType": "image/png"},
        {"type": "resource_link", "uri": "file:///x", "name": "x"},
    ]
    rendered = render({**ITEMS["mcpToolCall"], "result": {"content": content}})
    assert rendered.html.count("<img") == 2
    assert (
        f'src="data:image/png;base64,{PNG}"' in rendered.html
        and f'src="data:image/jpeg;base64,{JPEG}"' in rendered.html
    )
    assert "[image/svg+xml not shown]" in rendered.html and "[resource x: file:///x]" in rendered.text


def test_mcp_structured_content_when_no_text() -> None:
    rendered = render({**ITEMS["mcpToolCall"], "result": {"content": [], "structuredContent": {"rows": 3}}})
    assert "&quot;rows&quot;: 3" in rendered.html


def test_long_tool_result_shows_its_head() -> None:
    result = "".join(f"r{i}\n" for i in range(10_000))
    rendered = render({**ITEMS["mcpToolCall"], "result": {"content": [{"type": "text", "text": result}]}})
    assert rendered.html.index("r0\n") < rendered.html.index("more characters")
    assert "whole result (10,000 lines)</summary>" in rendered.html
    running = render({**ITEMS["mcpToolCall"], "result": {"content": [{"type": "text", "text": result}]}}, "running")
    assert size(running.html) <= 6 * 1024


def test_dynamic_tool_call() -> None:
    item = {**ITEMS["dynamicToolCall"], "namespace": "kernel",
            "contentItems": [{"type": "inputText", "text": "(3, 2)"}, {"type": "inputImage", "imageUrl": PNG_URL},
                             {"type": "inputImage", "imageUrl": "https://example.com/x.png"}]}  # fmt: skip
    rendered = render(item)
    assert "kernel.kernel_eval(" in rendered.html and rendered.html.count("<img") == 1
    assert "[image not shown]" in rendered.html
    failed = render({**ITEMS["dynamicToolCall"], "success": False, "contentItems": []})
    assert 'background:#cf222e">failed</span>' in failed.html and "the tool reported failure" in failed.html


# -- web, images, sub-agents, and the small kinds -------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "done", "running"),
    [
        (
            {"type": "search", "query": "codex docs"},
            "searched \u201ccodex docs\u201d",
            "searching \u201ccodex docs\u201d\u2026",
        ),
        ({"type": "openPage", "url": "https://e.com/p"}, "opened https://e.com/p", "opening https://e.com/p\u2026"),
        ({"type": "open_page", "url": "https://example.com/p"}, "opened https://example.com/p", "opening"),
        (
            {"type": "findInPage", "url": "https://e.com", "pattern": "x"},
            "searched for \u201cx\u201d in https://e.com",
            "searching",
        ),
        (
            {"type": "find_in_page", "url": "https://e.com", "pattern": "x"},
            "searched for \u201cx\u201d in https://e.com",
            "searching",
        ),
        ({"type": "other"}, "searched \u201ccodex docs\u201d", "searching"),
        (None, "searched \u201ccodex docs\u201d", "searching"),
    ],
)
def test_web_search_actions(action: Any, done: str, running: str) -> None:
    item = {**ITEMS["webSearch"], "action": action}
    assert done in check_html(render(item).html)
    assert running in check_html(render(item, "running").html)


def test_web_search_links_only_for_web_urls() -> None:
    good = render({**SEARCH_OPEN, "action": {"type": "openPage", "url": "https://example.com/a?b=1&c=2"}})
    assert 'href="https://example.com/a?b=1&amp;c=2"' in good.html
    for url in ("javascript:alert(1)", "data:text/html,<script>", 'https://x.com/" onclick="x', "file:///etc/passwd"):
        bad = render({**SEARCH_OPEN, "action": {"type": "openPage", "url": url}})
        assert "<a " not in bad.html


def test_web_search_results() -> None:
    results = [{"title": f"T{i}", "url": f"https://e.com/{i}"} for i in range(8)]
    rendered = render({**ITEMS["webSearch"], "results": results})
    assert "8 results" in rendered.html and rendered.html.count("<li>") == 5


BAD_DATA_URLS = [
    "data:text/html;base64,PHNjcmlwdD4=",
    "data:image/svg+xml;base64,PHN2Zz4=",
    "data:image/png;base64,iVBOR<script>",
    "data:image/png;base64,iVBO Rw==",
    "data:image/png;base64,iVBORw0",  # bad length
    "data:image/png,iVBORw0KGgo=",  # not base64-encoded
    'data:image/png;base64,AAAA" onerror="alert(1)',
    "DATA:image/png;base64,AAAA",
    " data:image/png;base64,AAAA",
    "data:image/png;base64,AAAA\n",
    "https://example.com/x.png",
    "data:image/png;base64,",
    12,
    None,
]


def test_image_view_inlines_a_valid_data_url() -> None:
    rendered = render({**ITEMS["imageView"], "dataUrl": PNG_URL})
    assert f'<img src="{PNG_URL}" alt="plot.png"' in rendered.html
    assert f"![plot.png]({PNG_URL})" in rendered.markdown
    assert rendered.text == "[image] /work/ws/plot.png"


@pytest.mark.parametrize("url", BAD_DATA_URLS)
def test_image_view_rejects_bad_data_urls(url: Any) -> None:
    rendered = render({**ITEMS["imageView"], "dataUrl": url})
    assert "<img" not in rendered.html and "](data:" not in rendered.markdown
    assert "plot.png" in rendered.html


def test_image_data_url_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_html, "MAX_IMAGE_CHARS", 100)  # the check lives in _html
    assert "<img" not in render({**ITEMS["imageView"], "dataUrl": "data:image/png;base64," + "A" * 100}).html


def test_image_generation_sniffs_the_type() -> None:
    png = render({**ITEMS["imageGeneration"], "result": PNG})
    assert f'src="data:image/png;base64,{PNG}"' in png.html
    jpeg = render({**ITEMS["imageGeneration"], "result": JPEG})
    assert f'src="data:image/jpeg;base64,{JPEG}"' in jpeg.html
    assert "a cat" in png.html and "saved to" in png.html
    for bad in ("not base64!", "", "AAA", None, 5):
        assert "<img" not in render({**ITEMS["imageGeneration"], "result": bad}).html


def test_image_generation_failure() -> None:
    rendered = render(GEN_FAILED)
    assert "\u2716 failed: usageLimitExceeded (limit x)" in check_html(rendered.html) and "<img" not in rendered.html
    assert "failed: usageLimitExceeded (limit x)" in rendered.text


def test_sub_agent_lines() -> None:
    collab = render({**ITEMS["collabAgentToolCall"], "model": "gpt-x", "agentsStates": {
        "a": {"status": "running"}, "b": {"status": "completed"}, "c": {"status": "running"}}})  # fmt: skip
    assert collab.text == (
        "[sub-agent] spawnAgent \u00b7 \u201chelp\u201d \u00b7 gpt-x \u00b7 \u2192 thread-b"
        " \u00b7 agents: 2 running, 1 completed  [in progress]"
    )
    activity = render(ITEMS["subAgentActivity"])
    assert activity.text == "[sub-agent] root/helper started \u00b7 gpt-x"


def test_small_kinds() -> None:
    compaction = render(ITEMS["contextCompaction"])
    assert "context compacted" in compaction.html and "border-top:1px dashed" in compaction.html
    assert render(ITEMS["sleep"], "running").text == "[sleep] waiting 1.5 s"
    assert render({**ITEMS["sleep"], "durationMs": 30_000}).text == "[sleep] waited 30 s"
    hook = render(ITEMS["hookPrompt"])
    assert "<details><summary" in hook.html and "hook prompt \u00b7 hook says hi" in check_html(hook.html)
    output = render({**ITEMS["functionCallOutput"], "output": [{"type": "input_text", "text": "t1"},
                     {"type": "input_image", "image_url": PNG_URL}]})  # fmt: skip
    assert "<details><summary" in output.html and "function output ns.lookup" in check_html(output.html)
    assert "<img" in output.html
    assert render(ITEMS["userMessage"]) == Rendered("", "", "")


# -- malformed and unknown items --------------------------------------------------------------------------

WEIRD: list[Any] = [
    None, 0, -1, 1.5, True, "", EVIL, [], {}, [None], [EVIL, 3], {"x": {"y": EVIL}}, "x" * 5000, float("nan"),
]  # fmt: skip


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, (*prefix, index))


EXTRA = [MOVE, MCP_FAILED, SEARCH_FIND, GEN_FAILED, {**ITEMS["imageView"], "dataUrl": PNG_URL}]


EXTRA_IDS = ["move", "mcpFailed", "findInPage", "genFailed", "dataUrl"]


@pytest.mark.parametrize("base", [*ITEMS.values(), *EXTRA], ids=[*ITEMS, *EXTRA_IDS])
def test_malformed_fields_never_break_rendering(base: dict[str, Any]) -> None:
    """Every field (at every depth) replaced by every odd value: still a readable, inert view."""
    for number, path in enumerate(paths(base)):
        for index, value in enumerate(WEIRD):
            render(with_path(base, path, value), MODES[(number + index) % 3])
    for key in list(base):  # and each field missing
        render({k: v for k, v in base.items() if k != key}, "done")


@pytest.mark.parametrize(
    "item", [[], "text", 5, None, {"type": ["list"]}, {"type": {"x": 1}}, {"type": None, "a": EVIL}]
)
def test_non_dict_items_and_odd_types(item: Any) -> None:
    rendered = render(item)
    assert rendered.text.startswith("[")


def test_a_renderer_bug_shows_the_generic_view(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(item: dict[str, Any], mode: str) -> Rendered:
        raise KeyError("oops")

    monkeypatch.setitem(_render._RENDERERS, "sleep", broken)
    rendered = render_item({**ITEMS["sleep"], "note": SCRIPT})
    check_html(rendered.html)
    assert f"{RENDER_FAILED} (KeyError)" in rendered.text and "[sleep] durationMs=1500" in rendered.text
    assert "&lt;script&gt;" in rendered.html


# -- the whole turn -----------------------------------------------------------------------------------------


def test_render_turn_with_plan_diff_and_unfinished_items() -> None:
    items = [ITEMS["commandExecution"], {**RUNNING_COMMAND, "id": "c2"}, message("Half")]
    kwargs: dict[str, Any] = {"items": items, "elapsed": 1.0, "info": TurnInfo(), "running_ids": frozenset({"c2", "m"})}
    running = render_turn(status="running", plan=PLAN, diff=TURN_DIFF, **kwargs)
    ended = render_turn(status="interrupted", plan=PLAN, diff=TURN_DIFF, **kwargs)
    for rendered in (running, ended):
        check_html(rendered.html)
        check_markdown(rendered.markdown)
        status = "interrupted" if rendered is ended else "running"
        order = [rendered.html.index(s) for s in (status, "Read the code", "ls -1", "Half", "turn diff")]
        assert order == sorted(order)
        md_order = [rendered.markdown.index(s) for s in ("**plan**", "`$ ls -1`", "Half", "turn diff")]
        assert md_order == sorted(md_order)
    assert "\u258d" in running.html and ">unfinished</span>" not in running.html
    assert "\u258d" not in ended.html and ended.html.count(">unfinished</span>") == 2
    assert ended.text.count("[unfinished]") == 2


# -- long Markdown in pieces -----------------------------------------------------------------------

_SNIPPETS = [
    "Text with *em*, **strong** and `code`.",
    "More text",
    "# Heading",
    "- item",
    "  - nested",
    "1. first",
    "2) second",
    "> quote",
    "```python",
    "```",
    "~~~",
    "````",
    "  ```",
    "    indented code",
    "\tTabbed",
    "| a | b |",
    "|---|---|",
    "| 1 | 2 |",
    "a | b",
    "--|--",
    "[link](https://example.com)",
    "***",
    "---",
    "===",
    "  continued",
    "* star",
    "+ plus",
    "Word",
    "\u00c9clair",
    "#tag",
    "```js`x",
    "- ```",
    "> ```",
    "z",
]


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    from codex_magic import _markdown

    monkeypatch.setattr(_markdown, "PIECE_CHARS", 80)
    monkeypatch.setattr(_markdown, "_memo", type(_markdown._memo)())
    monkeypatch.setattr(_markdown, "_memo_chars", 0)


@pytest.mark.usefixtures("small_pieces")
def test_markdown_in_pieces_is_the_same_as_whole() -> None:
    import random

    from codex_magic import _markdown

    rng = random.Random(7)
    cuts = 0
    for _ in range(300):
        kinds = ["", "", "   ", *rng.sample(_SNIPPETS, 10)]  # some documents without fences
        lines = [rng.choice(kinds) for _ in range(rng.randint(20, 120))]
        text = "\n".join(lines) + rng.choice(["", "\n", "\n\nend"])
        start = 0
        while (cut := _markdown.next_cut(text, start, 80)) is not None:
            cuts, start = cuts + 1, cut
        assert _markdown._markdown_parts(text) == _markdown._render_parts(text), text
    assert cuts > 150  # the documents were cut, often  # the documents were cut, often


@pytest.mark.usefixtures("small_pieces")
def test_finished_message_reuses_the_pieces_rendered_while_it_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    from codex_magic import _markdown

    text = "".join(f"Paragraph {i} has *some* words.\n\n" for i in range(60)) + "The end."
    parsed: list[str] = []
    render_parts = _markdown._render_parts

    def counting(source: str) -> tuple[str, str]:
        parsed.append(source)
        return render_parts(source)

    monkeypatch.setattr(_markdown, "_render_parts", counting)
    for end in range(0, len(text), 150):
        render_item({"type": "agentMessage", "text": text[:end]}, running=True)
    parsed.clear()
    final = render_item({"type": "agentMessage", "text": text})
    assert sum(map(len, parsed)) < 3 * 80, parsed  # only the last pieces were parsed again
    assert final == Rendered(*_whole_message(text))


def _whole_message(text: str) -> tuple[str, str, str]:
    from codex_magic import _markdown

    piece = _markdown.PIECE_CHARS
    try:
        _markdown.PIECE_CHARS = len(text) + 1
        rendered = render_item({"type": "agentMessage", "text": text})
    finally:
        _markdown.PIECE_CHARS = piece
    return rendered.html, rendered.text, rendered.markdown


@pytest.mark.usefixtures("small_pieces")
def test_remembered_pieces_are_never_stale_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from codex_magic import _markdown

    monkeypatch.setattr(_markdown, "MEMO_CHARS", 2000)
    head = "".join(f"Line {i} of the first piece.\n\n" for i in range(5))
    one = _markdown._markdown_parts(head + "Tail *one*.")
    two = _markdown._markdown_parts(head.replace("Line 3", "Line **three**") + "Tail *one*.")
    assert "Line 3" in one[0] and "Line 3" not in two[0] and "<strong>three</strong>" in two[0]
    assert one == _markdown._render_parts(head + "Tail *one*.")
    for i in range(100):
        _markdown._markdown_parts(f"Message {i}.\n\n" + head + "Tail.")
    assert _markdown._memo_chars <= 2000 and len(_markdown._memo) < 100


@pytest.mark.usefixtures("small_pieces")
def test_link_reference_definitions_reach_across_pieces() -> None:
    from codex_magic import _markdown

    text = "See [the docs][d].\n\n" + "".join(f"Paragraph {i}.\n\n" for i in range(20)) + "[d]: https://example.com\n"
    html, _ = _markdown._markdown_parts(text)
    assert 'href="https://example.com"' in html


# Thread ids are UUIDv7s: threads started in the same minute share their first characters.
SAME_MINUTE = ("01a23228-870b-7231-9503-a2b563aae282", "01a23228-887b-7083-aa29-f518c35897f6")


def test_sub_agent_thread_ids_are_shortened_to_the_part_that_differs() -> None:
    collab = render({**ITEMS["collabAgentToolCall"], "receiverThreadIds": list(SAME_MINUTE)})
    assert "\u2192 63aae282, c35897f6 \u00b7" in collab.text and "01a23228" not in collab.text
    activity = render({**ITEMS["subAgentActivity"], "agentPath": None, "agentThreadId": SAME_MINUTE[1]})
    assert activity.text == "[sub-agent] c35897f6 started \u00b7 gpt-x"
