"""Markdown: one markdown-it parser, turning Markdown into styled HTML and into safe Markdown.

:func:`_markdown_parts` renders with raw HTML off (so markdown-it escapes) and keeps
only web and mail links and validated data-URL images. The Markdown form is rebuilt
from the same parse by the ``_md_*`` functions, with every character that could start
HTML, markup or math backslash-escaped, so a frontend that renders it meets no raw
HTML either. :func:`to_markdown` writes blocks (:mod:`codex_magic._blocks`) as such
Markdown. markdown-it is imported on first use.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._blocks import (
    Block,
    Card,
    Checklist,
    Code,
    Diff,
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
    diff_pieces,
)
from ._html import _PRE, _href, _image_src, _img, _link, _web_url, esc
from ._text import _one_line, plain

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from markdown_it.tree import SyntaxTreeNode


# -- Markdown to styled HTML ---------------------------------------------------------------------

_markdown: MarkdownIt | None = None
_MD_STYLES = {
    "paragraph_open": "margin:0.3em 0",
    "bullet_list_open": "margin:0.3em 0;padding-left:1.6em",
    "ordered_list_open": "margin:0.3em 0;padding-left:1.6em",
    "blockquote_open": (
        "margin:0.3em 0;padding-left:0.8em;border-left:3px solid var(--jp-border-color2,#d0d7de);opacity:0.85"
    ),
    "table_open": "border-collapse:collapse;margin:0.3em 0",
    "th_open": "border:1px solid var(--jp-border-color2,#d0d7de);padding:2px 6px",
    "td_open": "border:1px solid var(--jp-border-color2,#d0d7de);padding:2px 6px",
    "code_inline": "background:var(--jp-layout-color2,#f6f8fa);padding:0 3px;border-radius:3px;"
    "font-family:var(--jp-code-font-family,monospace);font-size:90%",
    "heading_open": "margin:0.5em 0 0.25em;font-size:1.1em",
    "hr": "border:none;border-top:1px solid var(--jp-border-color2,#d0d7de)",
}


def _md_code_block(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return f'<pre style="{_PRE}"><code>{esc(tokens[idx].content)}</code></pre>\n'


def _md_image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    # Only validated data URLs are inlined: no external resources.
    token = tokens[idx]
    src = token.attrGet("src")
    alt = self.renderInlineAsText(token.children, options, env)
    if _image_src(src):
        return _img(str(src), alt)
    if _web_url(src):
        return _link(src, "\U0001f5bc " + (alt or str(src)))
    return esc(alt or src)


def _markdown_it() -> MarkdownIt:
    """The one Markdown parser: CommonMark plus tables and strikethrough, raw HTML escaped."""
    global _markdown
    if _markdown is None:
        from markdown_it import MarkdownIt

        md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
        md.enable(["table", "strikethrough"])
        # Text is shown as written: "&amp;" stays "&amp;" here as in every other field.
        md.disable("entity")
        md.add_render_rule("fence", _md_code_block)
        md.add_render_rule("code_block", _md_code_block)
        md.add_render_rule("image", _md_image)
        _markdown = md
    return _markdown


def _style_tokens(tokens: Iterable[Token]) -> None:
    for token in tokens:
        style = _MD_STYLES.get(token.type)
        if style:
            old = token.attrGet("style")
            token.attrSet("style", f"{old};{style}" if old else style)
        if token.type == "link_open":
            # markdown-it already refuses javascript: and friends; keep only web and mail links.
            if _href(token.attrGet("href")) is None:
                token.attrs.pop("href", None)
            else:
                token.attrSet("target", "_blank")
                token.attrSet("rel", "noopener noreferrer")
        if token.children:
            _style_tokens(token.children)


def _markdown_parts(text: str) -> tuple[str, str]:
    """Markdown source to (HTML, safe Markdown); both stay well-formed for partial text.

    Long text is rendered piece by piece (see :func:`next_cut`), and each finished piece
    is remembered: a message re-rendered as it streams, and again once it is complete,
    costs only its new text. The last few results are remembered whole: the HTML and the
    Markdown writer ask for the same text one after the other.
    """
    key = (text, PIECE_CHARS)
    with _memo_lock:
        found = _recent.get(key)
    if found is not None:
        return found
    parts = _parts(text)
    with _memo_lock:
        _recent[key] = parts
        while len(_recent) > RECENT:
            _recent.popitem(last=False)
    return parts


def _parts(text: str) -> tuple[str, str]:
    if len(text) <= PIECE_CHARS or "]:" in text or "\r" in text:
        # A link reference definition (``[label]: url``) reaches the whole document.
        return _remembered(text)
    parts, start = [], 0
    while (cut := next_cut(text, start, PIECE_CHARS)) is not None:
        parts.append(_remembered(text[start:cut]))
        start = cut
    parts.append(_remembered(text[start:]))
    return "".join(html for html, _ in parts), "\n\n".join(source for _, source in parts if source)


def _render_parts(text: str) -> tuple[str, str]:
    from markdown_it.tree import SyntaxTreeNode

    md = _markdown_it()
    tokens = md.parse(text)
    _style_tokens(tokens)
    markup = md.renderer.render(tokens, md.options, {})
    source = "\n".join(_md_blocks(SyntaxTreeNode(tokens).children)).strip("\n")
    return markup, source


# -- long text in pieces -------------------------------------------------------------------------

# Pieces are cut after a blank line once they reach PIECE_CHARS characters; the streaming
# view cuts its blocks at the same places, so the finished message reuses their rendering.
PIECE_CHARS = 8192
# Rendered pieces kept, by source characters: the recent long messages.
MEMO_CHARS = 1_000_000
_memo: OrderedDict[str, tuple[str, str]] = OrderedDict()
_memo_chars = 0
_memo_lock = threading.Lock()
RECENT = 8  # whole results remembered
_recent: OrderedDict[tuple[str, int], tuple[str, str]] = OrderedDict()
_FENCE_OPEN = re.compile(r"(`{3,})([^`]*)$|(~{3,})")
_SETTLED = re.compile(r"\n[ \t]*\n\Z")


def _remembered(text: str) -> tuple[str, str]:
    """``_render_parts(text)``, from the memo for a piece that ends with a blank line."""
    global _memo_chars
    if not _SETTLED.search(text):
        return _render_parts(text)
    with _memo_lock:
        found = _memo.get(text)
        if found is not None:
            _memo.move_to_end(text)
            return found
    parts = _render_parts(text)
    with _memo_lock:
        if text not in _memo:
            _memo[text] = parts
            _memo_chars += len(text)
            while _memo_chars > MEMO_CHARS and len(_memo) > 1:
                _memo_chars -= len(_memo.popitem(last=False)[0])
    return parts


def next_cut(text: str, start: int = 0, size: int = PIECE_CHARS) -> int | None:
    """Where the piece of ``text`` from ``start`` ends, or None if it does not end yet.

    A piece ends, at least ``size`` characters in, at a line that follows a blank line and
    starts with a letter or ``#``, outside fenced code: such a line closes every block
    (paragraph, list, quote, table, indented code), so Markdown rendered piece by piece
    is the same as rendered whole. ``start`` must be 0 or a previous cut. A fence opened
    at an indent of 1-3 spaces may belong to a list item, so no cut follows it.
    """
    fence: tuple[str, int] | None = None
    blank = False
    pos = start
    length = len(text)
    while pos < length:
        if blank and fence is None and pos - start >= size:
            first = text[pos]
            if first.isalpha() or first == "#":
                return pos
        end = text.find("\n", pos)
        if end < 0:
            return None  # the last line is still arriving
        line = text[pos:end]
        pos = end + 1
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        blank = not stripped.strip(" \t")
        if indent > 3 or stripped[:3] not in ("```", "~~~"):
            continue
        if fence is not None:
            char, count = fence
            run = len(stripped) - len(stripped.lstrip(char))
            if run >= count and not stripped[run:].strip(" \t"):
                fence = None
            continue
        match = _FENCE_OPEN.match(stripped)
        if match is None:
            continue
        if indent:
            return None
        run_text = match.group(1) or match.group(3)
        fence = (run_text[0], len(run_text))
    return None


# -- safe Markdown, rebuilt from the parse -----------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~$])")
_MD_LINE_MARK = re.compile(r"^( {0,3})([#>+=-])", re.MULTILINE)
_MD_LINE_NUMBER = re.compile(r"^( {0,3}\d{1,9})([.)])", re.MULTILINE)


def _md_lines(text: str) -> str:
    """Escape what would start a block (heading, quote, list, rule) at the start of a line."""
    return _MD_LINE_NUMBER.sub(r"\1\\\2", _MD_LINE_MARK.sub(r"\1\\\2", text))


def _md_escape(text: str, *, inline: bool = True) -> str:
    """Plain text for Markdown: nothing in it starts markup, HTML or math.

    ``inline`` text goes mid-line, so only its own line breaks start lines.
    """
    text = _MD_SPECIAL.sub(r"\\\1", text)
    if inline:
        return _md_lines("\x00" + text)[1:]
    return _md_lines(text)


def _md_code(text: str, *, table: bool = False) -> str:
    body = text.replace("\n", " ")
    if table:
        body = body.replace("|", "\\|")
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
    if body.startswith("`") or body.endswith("`") or (body.startswith(" ") and body.endswith(" ")):
        body = f" {body} "
    return f"{ticks}{body}{ticks}" if body else ""


def _fenced(text: str, info: str = "") -> str:
    if not text:
        return ""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _md_url(url: str) -> str:
    """A link destination: markdown-it has percent-encoded it already, except for parentheses."""
    for char, code in ((" ", "%20"), ("<", "%3C"), (">", "%3E"), ("\n", "%0A"), ("\\", "%5C")):
        url = url.replace(char, code)
    return f"<{url}>" if "(" in url or ")" in url else url


def _md_inline(nodes: Sequence[SyntaxTreeNode], *, table: bool = False) -> str:
    out = []
    for node in nodes:
        kind = node.type
        if kind == "text":
            out.append(_MD_SPECIAL.sub(r"\\\1", node.content))
        elif kind == "code_inline":
            out.append(_md_code(node.content, table=table))
        elif kind == "softbreak":
            out.append("\n")
        elif kind == "hardbreak":
            out.append("\\\n")
        elif kind in ("em", "strong", "s"):
            mark = node.markup or {"em": "*", "strong": "**", "s": "~~"}[kind]
            out.append(f"{mark}{_md_inline(node.children, table=table)}{mark}")
        elif kind == "link":
            inner = _md_inline(node.children, table=table)
            href = node.attrs.get("href")
            out.append(f"[{inner}]({_md_url(str(href))})" if _href(href) else inner)
        elif kind == "image":
            src = str(node.attrs.get("src", ""))
            alt = _md_inline(node.children, table=table)
            if _image_src(src):
                out.append(f"![{alt}]({src})")
            elif _web_url(src):
                out.append(f"[\U0001f5bc {alt}]({_md_url(src)})")
            else:
                out.append(alt)
        else:
            out.append(_MD_SPECIAL.sub(r"\\\1", node.content) + _md_inline(node.children, table=table))
    return "".join(out)


def _md_inline_of(node: SyntaxTreeNode, *, table: bool = False) -> str:
    return "".join(_md_inline(child.children, table=table) for child in node.children if child.type == "inline")


def _md_blocks(nodes: Sequence[SyntaxTreeNode], *, tight: bool = False) -> list[str]:
    lines: list[str] = []
    for node in nodes:
        block = _md_block(node)
        if not block:
            continue
        if lines and not tight:
            lines.append("")
        lines.extend(block)
    return lines


def _md_block(node: SyntaxTreeNode) -> list[str]:
    kind = node.type
    if kind == "paragraph":
        return _md_lines(_md_inline_of(node)).split("\n")
    if kind == "heading":
        level = int(node.tag[1:]) if node.tag[1:].isdigit() else 1
        return ["#" * level + " " + _md_inline_of(node).replace("\\\n", " ").replace("\n", " ")]
    if kind == "blockquote":
        return [f"> {line}".rstrip() for line in _md_blocks(node.children)] or [">"]
    if kind in ("bullet_list", "ordered_list"):
        return _md_list(node)
    if kind in ("fence", "code_block"):
        info = re.sub(r"[^\w+#.-]", "", node.info.split()[0]) if node.info.strip() else ""
        body = node.content.rstrip("\n")
        fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
        return [fence + info, *(body.split("\n") if body else []), fence]
    if kind == "hr":
        return ["---"]
    if kind == "table":
        return _md_table(node)
    # Anything else (raw HTML is off, so nothing expected): its text, escaped.
    return _md_escape(node.content, inline=False).split("\n") if node.content else _md_blocks(node.children)


def _md_list(node: SyntaxTreeNode) -> list[str]:
    ordered = node.type == "ordered_list"
    items = [child for child in node.children if child.type == "list_item"]
    tight = all(p.hidden for item in items for p in item.children if p.type == "paragraph")
    start = node.attrs.get("start", 1)
    start = start if isinstance(start, int) else 1
    lines: list[str] = []
    for number, item in enumerate(items, start):
        marker = f"{number}{item.markup or '.'}" if ordered else (item.markup or "-")
        body = _md_blocks(item.children, tight=tight) or [""]
        pad = " " * (len(marker) + 1)
        if lines and not tight:
            lines.append("")
        lines.append(f"{marker} {body[0]}".rstrip())
        lines.extend(f"{pad}{line}" if line else "" for line in body[1:])
    return lines


def _md_table(node: SyntaxTreeNode) -> list[str]:
    rows: list[list[str]] = []
    aligns: list[str] = []
    for section in node.children:
        for row in section.children:
            cells = []
            for cell in row.children:
                cells.append(_md_inline_of(cell, table=True).replace("\\\n", " ").replace("\n", " ") or " ")
                if not rows:
                    match = re.search(r"text-align:(\w+)", str(cell.attrs.get("style", "")))
                    aligns.append(match.group(1) if match else "")
            rows.append(cells)
    if not rows:
        return []
    marks = {"left": ":--", "center": ":-:", "right": "--:"}
    lines = ["| " + " | ".join(rows[0]) + " |", "| " + " | ".join(marks.get(a, "---") for a in aligns) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return lines


# -- blocks to Markdown ------------------------------------------------------------------------

_NOTE_SIGN = {"warn": "\u26a0 ", "info": "\u21bb ", "error": "\u2716 "}


def _fenced_plain(text: str, info: str = "") -> str:
    # The fence must outrun every run of backticks, also one that forms only once a
    # sequence between backticks is removed; else it closes early and the rest is Markdown.
    return _fenced(plain(text), info)


def _inline_md(piece: Inline) -> str:
    if isinstance(piece, Link):
        label = _md_escape(piece.label or piece.url)
        url = _web_url(piece.url)
        return f"[{label}]({_md_url(url)})" if url else label
    if piece.style == "code":
        return _md_code(piece.text)
    if piece.style == "bold":
        return f"**{_md_escape(piece.text)}**"
    if piece.style == "italic":
        return f"*{_md_escape(piece.text)}*"
    return _md_escape(piece.text)


def _title_md(title: Title) -> str:
    subject = "".join(_inline_md(piece) for piece in title.subject)
    out = " ".join(p for p in (f"**{_md_escape(title.label)}**" if title.label else "", subject) if p)
    tail = [_md_code(title.badge.label)] if title.badge else []
    tail += [_md_escape(fact) for fact in title.facts if fact]
    return " \u00b7 ".join(p for p in (out, *tail) if p)


def _note_md(note: Note) -> str:
    sign = _NOTE_SIGN.get(note.tone)
    if sign is not None:
        kind = f"**{_md_escape(note.kind)}**: " if note.kind else ""
        return f"> {sign}{kind}{_md_escape(_one_line(note.text, 4000))}"
    text = f"{note.kind}: {note.text}" if note.kind else note.text
    if note.tone == "plain":
        return _md_escape(text)
    mark = "**" if note.tone in ("bold", "ask") else "*"
    return f"{mark}{_md_escape(_one_line(text, 4000))}{mark}"


def _output_md(block: Output) -> str:
    body = _fenced_plain(block.shown.rstrip("\n"))
    if not block.note:
        return body
    note = f"*{_md_escape(block.note)}*"
    parts = (note, body) if block.keep == "tail" else (body, note)
    return "\n\n".join(p for p in parts if p)


def _diff_md(diff: Diff) -> str:
    parts = []
    for file, body, note in diff_pieces(diff):
        if file is not None and file.label:
            head = f"{_md_escape(file.label, inline=False)} {_md_code(file.where)}"
            parts.append(head + (f" (+{file.added} \u2212{file.removed})" if file.added or file.removed else ""))
        parts.append(_fenced_plain(body, "diff"))
        parts.append(f"*{_md_escape(note)}*" if note else "")
    return "\n\n".join(p for p in parts if p)


def _step_md(state: str, text: str) -> str:
    shown = _md_escape(_one_line(text, 2000))
    if state == "active":
        return f"- [ ] **{shown}** *(in progress)*"
    return f"- [{'x' if state == 'done' else ' '}] {shown}"


def _quoted(md: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in md.split("\n"))


def _block_md(block: Block, quoted: bool) -> str:
    if isinstance(block, Title):
        return _title_md(block)
    if isinstance(block, Markdown):
        md = _markdown_parts(block.text)[1]
        return _quoted(md) if quoted and md else md
    if isinstance(block, Note):
        return _note_md(block)
    if isinstance(block, Code):
        return _md_code(block.text) if block.inline else _fenced_plain(block.text, block.language)
    if isinstance(block, Output):
        return _output_md(block)
    if isinstance(block, Diff):
        return _diff_md(block)
    if isinstance(block, Checklist):
        return "\n".join(_step_md(state, text) for state, text in block.steps)
    if isinstance(block, Image):
        return f"![{_md_escape(block.alt)}]({block.src})"
    if isinstance(block, Links):
        return "\n".join(f"- {_inline_md(link)}" for link in block.links)
    if isinstance(block, Rule):
        return f"*\u2014 {_md_escape(block.text)} \u2014*"
    if isinstance(block, Fold):
        return to_markdown((block.title, *block.blocks), quoted=quoted)
    if isinstance(block, Card):
        return to_markdown(block.blocks, quoted=quoted or block.look in ("dim", "quiet"))
    raise TypeError(f"not a block: {type(block).__name__}")


def to_markdown(blocks: Sequence[Block], *, quoted: bool = False) -> str:
    """Blocks as GitHub-flavoured Markdown in which nothing is raw HTML; ``quoted`` sets model text apart."""
    return "\n\n".join(md for md in (_block_md(block, quoted) for block in blocks) if md)
