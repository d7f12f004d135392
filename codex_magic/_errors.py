"""The package's exceptions.

::

    CodexMagicError              base of every error raised by codex_magic
    ├── NotLoggedInError         Codex has no credentials for its model provider
    ├── AppServerError           the codex app-server could not start or stopped
    ├── TurnBusyError            a turn was started while another runs in the kernel
    └── TurnError                a turn ended without completing; ``.result`` holds it
        ├── TurnFailedError      the model or Codex reported a failure
        ├── TurnInterruptedError the turn was interrupted (kernel interrupt, timeout)
        └── OutputSchemaError    the answer does not match the cell's --schema

Bad input to the magics raises IPython's ``UsageError`` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._result import RunResult


class CodexMagicError(Exception):
    """Base class of the errors raised by codex_magic."""

    def _render_traceback_(self) -> list[str]:
        # IPython prints this instead of a traceback: the message is the whole story.
        return [f"{type(self).__name__}: {self}"]


class NotLoggedInError(CodexMagicError):
    """Codex has no credentials for the configured model provider."""


class AppServerError(CodexMagicError):
    """The codex app-server could not be started or stopped unexpectedly."""


class TurnBusyError(CodexMagicError):
    """A turn was started while another turn runs on the kernel's thread."""


class TurnError(CodexMagicError):
    """A turn ended without completing; the partial result is attached."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


class TurnFailedError(TurnError):
    """The turn failed; its result (status failed) keeps the items so far."""


class TurnInterruptedError(TurnError):
    """The turn was interrupted; its result (status interrupted) keeps the items so far."""


class OutputSchemaError(TurnError):
    """The turn completed, but its answer does not match the cell's ``--schema``; the text is kept."""


class ReplayMissingError(CodexMagicError):
    """``--replay only``: the cell has no recording (run it once with ``--replay auto``)."""
