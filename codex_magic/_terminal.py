"""The terminal view: the turn streamed as plain text on stdout, for IPython without widgets.

Each refresh prints only what is new: the characters an agent message gained, the
output a command gained, items that completed, notices, a changed retry message.
Items can interleave (a message streaming while a command runs), so whenever the
text switches from one item to another mid-line a new line starts, and an item
that resumes gets a short label. ANSI colour is used only when the stream is a TTY
(and neither ``NO_COLOR`` nor IPython's ``--colors=NoColor`` asks for none).
Everything reaches the terminal through :meth:`TextView._write`, which lets only SGR
colour sequences through: no text Codex, the model or a command printed can set the
window title, write the clipboard, make links or move the cursor.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from ._blocks import Title, title_head, title_tail
from ._output import header
from ._render import command_title, render_item, render_notice, render_request
from ._requests import DECLINE, QUESTION, SUBMIT, AnswerError, Field, decline_response
from ._text import for_terminal
from ._transcript import COMPLETED, FAILED, ItemState, Transcript

MAX_OUTPUT_LINES = 2000  # per command: the rest is counted, not printed
MAX_OUTPUT_CHARS = 200_000  # per command, for output with very long lines
INDENT = "  "  # command output and its status line, set off from the messages
WHERE = "full output in _codex_result.items"

_DIM, _BOLD, _RED, _GREEN, _YELLOW = "2", "1", "31", "32", "33"
_STATUS_STYLE = {COMPLETED: _GREEN, FAILED: _RED}
_TONE_STYLE = {"ok": _GREEN, "error": _RED}  # a badge's colour, by its tone
_LINES = re.compile(r"[^\n]*\n|[^\n]+")  # lines with their newline, and a last partial one


@dataclass
class _Shown:
    """What has been printed of one item."""

    text: str = ""  # the streamed text printed: message text, or command output
    lines: int = 0  # command output lines printed
    pos: int = 0  # command output characters seen while it ran, printed or not
    flood: bool = False  # output came faster than the transcript keeps it: wait for the end
    begun: bool = False  # something of the item is on the screen
    closed: bool = False  # the item is complete on the screen
    version: int = -1  # the item's version at the last refresh


class TextView:
    """Plain text for terminals: messages and command output stream as they arrive."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.prompt_in: TextIO | None = None  # where answers are read (default: stdin)
        self.colour = _wants_colour(self.stream)
        self._shown: dict[str, _Shown] = {}
        self._notices = 0
        self._retry: str | None = None
        self._current: str | None = None  # the item whose text the screen ends with
        self._bol = True  # the screen is at the start of a line
        self._out: list[str] = []

    # -- the View protocol ----------------------------------------------------------

    def update(self, transcript: Transcript) -> None:
        """Print what is new since the last refresh."""
        self._items(transcript)
        self._notes(transcript)
        self._flush()

    answers_while_blocking = True  # requests are asked at a prompt while the turn waits

    def set_run_stop(self, stop: Callable[[], None] | None) -> None:
        pass  # Ctrl-C reaches a run in a terminal directly

    def set_steer(self, steer: Callable[[str], None] | None) -> None:
        pass  # a terminal has no box to type into while the turn runs

    def set_stop(self, stop: Callable[[], None] | None) -> None:
        """Terminals stop a turn with Ctrl-C; there is no button."""

    def go_live(self) -> None:
        pass  # a prompt needs nothing shown first

    def shown(self, timeout: float) -> bool:
        """Someone can answer at a prompt when the terminal is interactive."""
        stdin = self.prompt_in or sys.stdin
        return stdin is not None and stdin.isatty()

    def ask(self, pending: Any) -> None:
        """Ask at a prompt: each question or form field, then the choice (Ctrl-C interrupts)."""
        request = pending.request
        self._newline()
        self._put(render_request(request).text + "\n", _YELLOW)
        self._flush()
        try:
            answers = {field.id: self._field(field) for field in request.fields()}
            if request.method == QUESTION:  # answering is the choice; an empty answer skips
                choice = SUBMIT if all(answers.values()) else DECLINE
            else:
                choice = self._choice(request.choices())
            reply = request.respond(choice, answers)
        except (EOFError, AnswerError) as exc:
            self._put(f"{INDENT}declined: {exc or 'no answer'}\n", _DIM)
            reply = decline_response(request.method)
        self._flush()
        pending.answer(reply, "the user")

    def _read(self, prompt: str, *, secret: bool = False) -> str:
        self.stream.flush()
        if secret:
            import getpass

            return getpass.getpass(for_terminal(prompt, colour=False))
        self._write(prompt)
        line = (self.prompt_in or sys.stdin).readline()
        if not line:
            raise EOFError
        return line.strip()

    def _field(self, field: Field) -> str:
        title = field.label or field.question or field.id
        for number, (option, about) in enumerate(zip(field.options, field.descriptions or field.options), 1):
            self._write(f"{INDENT}{number}) {option}{f' - {about}' if about != option else ''}\n")
        hint = "a number" + (" or an answer" if field.free_text else "") if field.options else "an answer"
        raw = self._read(f"{INDENT}{title} [{hint}, Enter to skip]: ", secret=field.secret)
        if field.options and raw.isdigit() and 1 <= int(raw) <= len(field.options):
            return field.options[int(raw) - 1]
        return raw

    def _choice(self, choices: list[Any]) -> str:
        menu = "  ".join(f"{number}) {choice.label}" for number, choice in enumerate(choices, 1))
        while True:
            raw = self._read(f"{INDENT}{menu}\n{INDENT}choose 1-{len(choices)}: ")
            if raw.isdigit() and 1 <= int(raw) <= len(choices):
                return choices[int(raw) - 1].key

    def withdraw(self, pending: object) -> None:
        """A prompt answers before the turn goes on; nothing is left to withdraw."""

    def finish(self, transcript: Transcript) -> None:
        """Print what is left, close items still in flight as unfinished, then the status line."""
        self._items(transcript)
        for state in transcript.ordered():
            shown = self._shown.setdefault(state.id, _Shown())
            if not shown.closed:
                self._item(state, shown, closing=True)
        self._notes(transcript)
        status = header(transcript)
        self._line(None, status.text, _STATUS_STYLE.get(transcript.status, _YELLOW))
        self._flush()

    def _items(self, transcript: Transcript) -> None:
        for state in transcript.ordered():
            shown = self._shown.setdefault(state.id, _Shown())
            if shown.closed or shown.version == state.version:
                continue
            shown.version = state.version
            self._item(state, shown, closing=state.done)

    def _notes(self, transcript: Transcript) -> None:
        for notice in transcript.notices[self._notices :]:
            self._line(None, render_notice(notice.kind, notice.text).text, _YELLOW)
        self._notices = len(transcript.notices)
        if transcript.waiting != self._retry:
            self._retry = transcript.waiting
            if transcript.waiting:
                self._line(None, f"{INDENT}{transcript.waiting}", _YELLOW)

    # -- items ----------------------------------------------------------------------

    def _item(self, state: ItemState, shown: _Shown, *, closing: bool) -> None:
        if state.type == "agentMessage":
            self._message(state, shown, closing=closing)
        elif state.type == "commandExecution":
            self._command(state, shown, closing=closing)
        elif closing:
            shown.closed = True
            text = render_item(state.view(), unfinished=not state.done).text
            if text:
                self._line(state, text, _DIM if state.type == "reasoning" else None)

    def _message(self, state: ItemState, shown: _Shown, *, closing: bool) -> None:
        item = state.view()
        text = item.get("text") or ""
        if not text.startswith(shown.text):  # rewritten on completion: print it whole again
            self._switch(None)
            shown.text, shown.begun = "", False
        if len(text) > len(shown.text):
            piece = text[len(shown.text) :]
            if self._switch(state, shown):
                piece = piece.lstrip(" ")
            self._put(piece, _DIM if item.get("phase") == "commentary" else None)
            shown.text, shown.begun = text, True
        if closing:
            shown.closed = True
            if shown.begun and not state.done:
                self._put("[unfinished]" if self._switch(state, shown) else " [unfinished]", _DIM)
            if self._current == state.id:
                self._newline()

    def _command(self, state: ItemState, shown: _Shown, *, closing: bool) -> None:
        item = state.view()
        output = item.get("aggregatedOutput") or ""
        if not shown.begun:
            # The command's title as every output shows it; its badge and facts close it.
            self._line(state, title_head(command_title(item, "running")), _BOLD, shown)
            shown.begun = True
        if not state.done:
            # While it runs the transcript keeps only the output's tail, after
            # ``state.dropped`` characters; a gap means a flood: stop streaming it.
            if state.dropped > shown.pos:
                shown.flood = True
            if not shown.flood:
                self._output(state, shown, output[shown.pos - state.dropped :])
            shown.pos = state.dropped + len(output)
        elif output.startswith(shown.text):
            self._output(state, shown, output[len(shown.text) :])
        else:
            # Output printed before item/started reaches only the completed item, so
            # what streamed is not its beginning: show the complete output's tail.
            note = "(the complete output; it began before the command was reported)"
            self._line(state, INDENT + note, _DIM, shown)
            keep = max(20, MAX_OUTPUT_LINES - shown.lines)
            lines = _LINES.findall(output)
            if len(lines) > keep:
                self._line(state, f"{INDENT}… {len(lines) - keep} earlier lines ({WHERE})", _DIM, shown)
            self._put_output(state, shown, "".join(lines[-keep:])[-MAX_OUTPUT_CHARS:])
            shown.text = output
        if closing:
            shown.closed = True
            if state.done:
                left = _count_lines(output[len(shown.text) :])
                if left:
                    self._line(state, f"{INDENT}… {left} more lines ({WHERE})", _DIM, shown)
            elif shown.pos > len(shown.text):
                self._line(state, f"{INDENT}… later output not shown", _DIM, shown)
            title = command_title(item, "done" if state.done else "unfinished")
            style = _TONE_STYLE.get(title.badge.tone if title.badge else "", _YELLOW)
            self._line(state, f"{INDENT}{title_tail(title)}", style, shown)

    def _output(self, state: ItemState, shown: _Shown, new: str) -> None:
        """Print new command output, as far as the per-command cap allows."""
        rooms = (MAX_OUTPUT_LINES - shown.lines, MAX_OUTPUT_CHARS - len(shown.text))
        if not new or min(rooms) <= 0:
            return
        cut = -1
        for _ in range(rooms[0]):
            cut = new.find("\n", cut + 1)
            if cut < 0:
                break
        part = new[: min(len(new) if cut < 0 else cut + 1, rooms[1])]
        self._put_output(state, shown, part)
        shown.text += part
        shown.lines += part.count("\n")

    # -- writing --------------------------------------------------------------------

    def _switch(self, state: ItemState | None, shown: _Shown | None = None) -> bool:
        """Make ``state`` the item being written: a new line, and a label where it helps.

        Returns whether a label now starts the line.
        """
        owner = state.id if state is not None else None
        if owner == self._current:
            return False
        self._newline()
        self._current = owner
        if state is None or shown is None:
            return False
        if state.type == "agentMessage":
            # Commentary is labelled as its title reads everywhere.
            label = title_head(Title(label="commentary")) if state.view().get("phase") == "commentary" else ""
            if shown.begun:
                label = f"{label} (continued)" if label else "(continued)"
            if label:
                self._put(f"{label} ", _DIM)
                return True
        elif state.type == "commandExecution" and shown.begun:
            head = title_head(command_title(state.view(), "running"))
            self._put(f"{INDENT}({_short(head, 42)}, continued)\n", _DIM)
        return False

    def _line(self, state: ItemState | None, text: str, style: str | None = None, shown: _Shown | None = None) -> None:
        """Print a whole line that belongs to ``state`` (or to no item)."""
        self._switch(state, shown)
        self._newline()
        self._put(text + "\n", style)

    def _put_output(self, state: ItemState, shown: _Shown, text: str) -> None:
        self._switch(state, shown)
        for piece in _LINES.findall(text):
            self._put(INDENT + piece if self._bol else piece)

    def _newline(self) -> None:
        if not self._bol:
            self._put("\n")

    def _put(self, text: str, style: str | None = None) -> None:
        if not text:
            return
        if style and self.colour:
            body = text.rstrip("\n")
            self._out.append(f"\x1b[{style}m{body}\x1b[0m{text[len(body) :]}")
        else:
            self._out.append(text)
        self._bol = text.endswith("\n")

    def _flush(self) -> None:
        if self._out:
            text, self._out = "".join(self._out), []
            self._write(text)

    def _write(self, text: str) -> None:
        """Write to the terminal: the one way out, with every control sequence but colour removed."""
        self.stream.write(for_terminal(text, colour=self.colour))
        self.stream.flush()


def _wants_colour(stream: TextIO) -> bool:
    """ANSI colour only on a TTY, and not with NO_COLOR set or IPython's colours off."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()) or os.environ.get("NO_COLOR"):
        return False
    ipython = sys.modules.get("IPython")  # the view may run without IPython: no import
    shell = ipython.get_ipython() if ipython is not None else None
    return str(getattr(shell, "colors", "")).lower() != "nocolor"


def _count_lines(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _short(command: str, limit: int = 40) -> str:
    return command if len(command) <= limit else command[: limit - 1] + "…"
