"""Neutral blocks: what an item shows, before it becomes HTML, Markdown or text.

Each item kind is rendered once, into blocks (:mod:`codex_magic._render`); three writers
turn blocks into the three forms: :func:`codex_magic._html.to_html` (the module that
escapes), :func:`codex_magic._markdown.to_markdown` and :func:`to_text` here. The
terminal view prints a command's title from the same blocks (:func:`title_head`,
:func:`title_tail`), so a command reads the same everywhere.

Blocks hold display text only, already bounded by the renderer: a writer decides how a
block looks, never what it says. Tones name a meaning (``ok``, ``error``, ``running``,
the colour of an item kind); each writer maps them to its colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._text import _cut

# -- inline pieces -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    """A short status, e.g. ``exit 0`` or ``declined``, in a colour that says what it means."""

    label: str
    tone: str = "muted"


@dataclass(frozen=True)
class Span:
    """A piece of a line: plain, ``code``, ``dim``, ``italic`` or ``bold`` (with a tone)."""

    text: str
    style: str = ""
    tone: str = ""


@dataclass(frozen=True)
class Link:
    """A web link; a URL that is not one is shown as text."""

    url: str
    label: str = ""


Inline = Span | Link


# -- blocks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Title:
    """An item's title line: ``[label] subject  [badge] · fact · fact``."""

    label: str = ""
    subject: tuple[Inline, ...] = ()
    badge: Badge | None = None
    facts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Markdown:
    """Markdown written by the model; ``streaming`` while it still arrives (a cursor follows)."""

    text: str
    streaming: bool = False


@dataclass(frozen=True)
class Note:
    """A line of text in a tone: ``dim``, ``plain``, ``bold``, ``italic``, ``warn``, ``info``, ``error``, ``ask``.

    ``warn``, ``info`` and ``error`` notes name their ``kind`` (``declined``, ``error``).
    """

    text: str
    tone: str = "dim"
    kind: str = ""


@dataclass(frozen=True)
class Code:
    """Code: a block in ``language``, or one ``inline`` line."""

    text: str
    language: str = ""
    inline: bool = False


@dataclass(frozen=True)
class Output:
    """A long text (command output, tool result) as a bounded preview.

    ``shown`` is the preview, the head or tail (``keep``) of the text; ``note`` says what it
    leaves out. When ``fold`` is set, a folded part titled ``fold`` holds ``full``, a longer
    bounded part, and ``full_note`` says what even that leaves out. Command output keeps
    its colour (SGR sequences) for the HTML; the other forms drop it.
    """

    shown: str
    note: str = ""
    keep: str = "tail"
    fold: str = ""
    full: str = ""
    full_note: str = ""


@dataclass(frozen=True)
class DiffFile:
    """One file's part of a diff: ``label`` (add, delete, update, move; empty for none) and where."""

    label: str
    where: str
    lines: tuple[str, ...]
    added: int = 0
    removed: int = 0


@dataclass(frozen=True)
class Diff:
    """Unified diff lines of one or more files, bounded by the writers (bytes of HTML, lines of text)."""

    files: tuple[DiffFile, ...]


@dataclass(frozen=True)
class Checklist:
    """Steps, each ``done``, ``active`` or ``todo``, with its text."""

    steps: tuple[tuple[str, str], ...]


# How a step's state reads.
STEP_BOX = {"done": "\u2611", "active": "\u25d0", "todo": "\u2610"}


@dataclass(frozen=True)
class Image:
    """An image, a validated ``data:image/...;base64,`` URL."""

    src: str
    alt: str


@dataclass(frozen=True)
class Links:
    """A list of links."""

    links: tuple[Link, ...]


@dataclass(frozen=True)
class Rule:
    """A line across, with a word in the middle (context compacted)."""

    text: str


@dataclass(frozen=True)
class Fold:
    """Blocks folded away under a title; ``preview`` shows beside the title where they are hidden (HTML)."""

    title: Title
    blocks: tuple[Block, ...]
    preview: str = ""


@dataclass(frozen=True)
class Card:
    """One item: its blocks, set off by a line in the item's tone.

    ``look`` is ``""``, ``quiet`` (dimmed, smaller), ``review`` (tinted) or ``bare`` (no line).
    """

    tone: str
    blocks: tuple[Block, ...]
    look: str = ""


Block = Title | Markdown | Note | Code | Output | Diff | Checklist | Image | Links | Rule | Fold | Card

WHERE_FULL = "_codex_result.items"
# Diffs: bytes of HTML per item or turn diff, lines in the text and Markdown forms.
DIFF_BYTES = 48 * 1024
DIFF_TEXT_LINES = 400
DIFF_LINE_CHARS = 2000  # characters of one diff line


def more_files(count: int) -> str:
    """The note after the files a diff leaves out."""
    return f"\u2026 {count:,} more file{'' if count == 1 else 's'}; the full diff is in {WHERE_FULL}"


# -- plain text ---------------------------------------------------------------------------------------

# How a note starts in text, by tone.
_TEXT_SIGN = {"warn": "! ", "info": "~ ", "ask": "? "}


def _inline_text(piece: Inline) -> str:
    if isinstance(piece, Link):
        return piece.label or piece.url
    return piece.text


def title_head(title: Title) -> str:
    """A title's text up to its badge: ``[label] subject``."""
    subject = "".join(_inline_text(piece) for piece in title.subject)
    return " ".join(part for part in (f"[{title.label}]" if title.label else "", subject) if part)


def title_tail(title: Title) -> str:
    """A title's text from its badge on: ``[badge] · fact · fact``."""
    facts = " \u00b7 ".join(fact for fact in title.facts if fact)
    badge = f"[{title.badge.label}]" if title.badge else ""
    return f"{badge} \u00b7 {facts}" if badge and facts else badge or facts


def title_text(title: Title) -> str:
    """A title as one line of text."""
    head, tail = title_head(title), title_tail(title)
    if not tail:
        return head
    if not title.badge:  # facts go on from the subject
        return f"{head} \u00b7 {tail}" if head else tail
    return f"{head}  {tail}" if head else tail


def diff_pieces(diff: Diff) -> list[tuple[DiffFile | None, str, str]]:
    """What the text and Markdown forms show of a diff: (file, its lines, a note), within DIFF_TEXT_LINES.

    A last piece without a file says how many files are left out.
    """
    pieces: list[tuple[DiffFile | None, str, str]] = []
    lines_left = DIFF_TEXT_LINES
    for number, file in enumerate(diff.files):
        if lines_left <= 0:
            pieces.append((None, "", more_files(len(diff.files) - number)))
            break
        kept = min(len(file.lines), lines_left)
        lines_left -= kept
        body = "\n".join(_cut(line, DIFF_LINE_CHARS) for line in file.lines[:kept])
        left = len(file.lines) - kept
        note = f"\u2026 {left:,} more lines; the full diff is in {WHERE_FULL}" if left else ""
        pieces.append((file, body, note))
    return pieces


def _diff_text(diff: Diff) -> str:
    parts = []
    for file, body, note in diff_pieces(diff):
        head = f"{file.label} {file.where}" if file is not None and file.label else ""
        parts.append("\n".join(p for p in (head, body, note) if p))
    return "\n".join(p for p in parts if p)


def _output_text(block: Output) -> str:
    body = block.shown.rstrip("\n")
    parts = (block.note, body) if block.keep == "tail" else (body, block.note)
    return "\n".join(p for p in parts if p)


def _note_text(note: Note) -> str:
    text = f"{note.kind}: {note.text}" if note.kind else note.text
    return _TEXT_SIGN.get(note.tone, "") + text


def _block_text(block: Block) -> str:
    if isinstance(block, Title):
        return title_text(block)
    if isinstance(block, (Markdown, Code)):
        return block.text
    if isinstance(block, Note):
        return _note_text(block)
    if isinstance(block, Output):
        return _output_text(block)
    if isinstance(block, Diff):
        return _diff_text(block)
    if isinstance(block, Checklist):
        return "\n".join(f"  {STEP_BOX.get(state, STEP_BOX['todo'])} {text}" for state, text in block.steps)
    if isinstance(block, Image):
        return ""
    if isinstance(block, Links):
        return "\n".join(_inline_text(link) for link in block.links)
    if isinstance(block, Rule):
        return f"\u2500\u2500 {block.text} \u2500\u2500"
    if isinstance(block, Fold):
        return to_text((block.title, *block.blocks))
    if isinstance(block, Card):
        return to_text(block.blocks)
    raise TypeError(f"not a block: {type(block).__name__}")


def to_text(blocks: Sequence[Block]) -> str:
    """Blocks as plain text, one block after another on its own lines."""
    return "\n".join(text for text in map(_block_text, blocks) if text)
