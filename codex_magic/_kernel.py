"""The live kernel as Codex sees it in one turn: which kernel tools it may use, and how.

The tools themselves (:mod:`codex_magic._kernel_tools`) read and run things in a
namespace; this module holds the turn's policy (tools on or off, running code asked,
allowed or refused), runs a call on the thread that calls it (the runner calls it on
the cell's own thread, between two steps of the turn), bounds a run's time, and keeps
the cells Codex proposed. It needs the IPython shell object but imports nothing heavy.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ._kernel_tools import (
    READ_ONLY,
    TOOL_NAMES,
    ToolReply,
    check_arguments,
    inspect_variable,
    list_variables,
    recent_cells,
    run_python,
)

PROPOSAL_HEADER = "# proposed by Codex"

INSTRUCTIONS = """\
You are working from a Jupyter notebook: the user runs you from a %%codex cell, inside \
the live IPython kernel that holds the notebook's state. Besides your shell, you have \
tools for that kernel:
- list_variables, inspect_variable and recent_cells look at the kernel's variables and \
the notebook's recent cells and outputs, without changing anything: use them before \
guessing what the user's data looks like.
- run_python runs Python code in the kernel's namespace, where the user's variables \
live; the user approves each run unless they allowed it, and may refuse. Keep runs \
short; what they print, return or plot comes back to you.
- propose_cell(code) puts code into a new notebook cell below the user's, for the user \
to read and run: prefer it for code the user should keep.
Your shell commands run in a separate process: they do not see the kernel's variables. \
Prefer proposing cells or running code in the kernel to editing the .ipynb file on disk, \
which the open notebook would not see."""


def instructions(extra: str = "", *, builtin: bool = True) -> str | None:
    """The thread's developer instructions: the built-in ones, the user's, or both."""
    parts = ([INSTRUCTIONS] if builtin else []) + ([extra.strip()] if extra.strip() else [])
    return "\n\n".join(parts) or None


class KernelAccess:
    """What Codex may do in the user's kernel during one turn, and what it proposed."""

    def __init__(self, shell: Any, *, enabled: bool = True, run: str = "ask", run_timeout: float | None = 60.0) -> None:
        self.shell = shell
        self.enabled = enabled
        self.run = run
        self.run_timeout = run_timeout
        self.proposals: list[str] = []

    def owns(self, tool: str, namespace: Any) -> bool:
        """Whether a client tool call is one of the kernel tools."""
        return not namespace and tool in TOOL_NAMES

    def refusal(self, tool: str, arguments: Any) -> ToolReply | None:
        """Why a call must not run, before anyone is asked; None if it may."""
        if not self.enabled:
            return ToolReply(
                f"The kernel tools are off for this turn (--no-kernel-tools or CodexMagic.kernel_tools = False): "
                f"{tool} is not available.",
                success=False,
            )
        error = check_arguments(tool, arguments)
        if error:
            return ToolReply(error, success=False)
        if tool not in READ_ONLY and self.run == "never":
            return ToolReply(
                "The user does not allow running code in the kernel (--kernel-run never). "
                "Use propose_cell to give them the code instead.",
                success=False,
            )
        return None

    def needs_approval(self, tool: str) -> bool:
        """Whether the user is asked before this call runs."""
        return tool not in READ_ONLY and self.run == "ask"

    def call(
        self,
        tool: str,
        arguments: dict[str, Any],
        *,
        interruptible: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> ToolReply:
        """Run a kernel tool on the calling thread (the cell's); see ``run_python`` for ``interruptible``."""
        namespace = self.shell.user_ns
        hidden = getattr(self.shell, "user_ns_hidden", {})
        if tool == "list_variables":
            return list_variables(namespace, hidden)
        if tool == "inspect_variable":
            return inspect_variable(namespace, arguments["name"], hidden)
        if tool == "recent_cells":
            # The cells as typed (In holds them as IPython rewrote them: %%codex as a call).
            history = getattr(self.shell, "history_manager", None)
            inputs = getattr(history, "input_hist_raw", None) or namespace.get("In") or []
            return recent_cells(inputs, namespace.get("Out") or {}, arguments.get("count") or 5)
        if tool == "propose_cell":
            code = arguments["code"].strip("\n")
            self.proposals.append(code)
            return ToolReply(
                "The code is in a new cell below the user's %%codex cell, for them to review and run; it was not run."
            )
        with _Deadline(self.run_timeout) as deadline:
            reply = run_python(namespace, arguments["code"], shell=self.shell, interruptible=interruptible)
        if deadline.fired:
            return ToolReply(
                f"{reply.text}\nThe run was stopped after {self.run_timeout:g} s (CodexMagic.kernel_run_timeout).",
                reply.images,
                success=False,
            )
        return reply

    def proposed_cell(self) -> str | None:
        """The cells Codex proposed in this turn, joined into one, in order."""
        if not self.proposals:
            return None
        return PROPOSAL_HEADER + "\n" + "\n\n".join(self.proposals)


class _Deadline:
    """Interrupt the calling thread after ``seconds``: SIGINT on the main thread, else an async exception."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fired = False
        self._timer: threading.Timer | None = None
        self._thread = threading.current_thread()

    def __enter__(self) -> _Deadline:
        if self.seconds:
            self._timer = threading.Timer(self.seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        interrupt(self._thread)


def interrupt(thread: threading.Thread) -> None:
    """Raise KeyboardInterrupt in a thread running Codex's code, from another thread.

    The main thread gets SIGINT, which also wakes a blocking call such as sleep (the
    runner's latch lets it raise during a run); another thread, an async exception.
    """
    ident = thread.ident
    if ident is None:
        return
    if thread is threading.main_thread():
        signal.pthread_kill(ident, signal.SIGINT)
    else:
        import ctypes

        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))
