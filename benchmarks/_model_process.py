"""The scripted model in a process of its own, for the benchmarks.

A benchmark's own process is the frontend: it receives every message the kernel
sends. Serving the model from that process too would make the model wait for the
frontend's interpreter lock, so the more messages a cell sends, the slower its
model would answer. A real model and a real frontend are not coupled that way.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class ModelProcess:
    """A ``ScriptedModel`` served by a child process; ``add`` sends it more script."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to, self._from = self._process.stdin, self._process.stdout
        self.url: str = pickle.load(self._from)

    def add(self, *entries: Any) -> None:
        """Append entries to the model's script, as ``ScriptedModel.add`` does."""
        pickle.dump(list(entries), self._to)
        self._to.flush()
        pickle.load(self._from)  # added

    def sent(self) -> list[tuple[float, str]]:
        """The model's ``ScriptedModel.sent``: when each streamed event was written."""
        pickle.dump("sent", self._to)
        self._to.flush()
        return pickle.load(self._from)

    def close(self) -> None:
        if self._process.poll() is None:
            self._to.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def __enter__(self) -> ModelProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _serve() -> None:
    sys.path.insert(0, str(ROOT))
    from codex_magic.scripted_model import ScriptedModel

    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    with ScriptedModel() as model:
        pickle.dump(model.url, replies)
        replies.flush()
        while True:
            try:
                entries = pickle.load(requests)
            except EOFError:  # the benchmark closed the pipe
                return
            if entries == "sent":
                pickle.dump(model.sent, replies)
                replies.flush()
                continue
            model.add(*entries)
            pickle.dump(True, replies)
            replies.flush()


if __name__ == "__main__":
    _serve()
