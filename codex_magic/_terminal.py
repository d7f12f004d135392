"""The terminal view: the turn as plain text on stdout, for IPython without widgets."""

from __future__ import annotations

import sys
from typing import TextIO

from ._render import render_item, render_notice
from ._transcript import Transcript
from ._view import header


class TextView:
    """Plain text for terminals: each item is printed once it completes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._printed: set[str] = set()
        self._notices = 0

    def update(self, transcript: Transcript) -> None:
        """Print the items and notices that are new and complete."""
        for state in transcript.ordered():
            if state.done and state.id not in self._printed:
                self._printed.add(state.id)
                text = render_item(state.view()).text
                if text:
                    print(text, file=self.stream, flush=True)
        for notice in transcript.notices[self._notices :]:
            print(render_notice(notice.kind, notice.text).text, file=self.stream, flush=True)
        self._notices = len(transcript.notices)

    def finish(self, transcript: Transcript) -> None:
        """Print what is left, items still in flight marked so, and the final status line."""
        self.update(transcript)
        for state in transcript.ordered():
            if state.id not in self._printed:
                self._printed.add(state.id)
                text = render_item(state.view()).text
                if text:
                    print(text + " [unfinished]", file=self.stream, flush=True)
        print(header(transcript).text, file=self.stream, flush=True)
