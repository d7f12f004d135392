"""The magic layer: parse the cell's options, delegate the turn, store the result."""

from __future__ import annotations

import keyword
import os
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import CFloat, Enum, Unicode
from traitlets.config import Configurable

from ._requests import APPROVAL_POLICIES, HEADLESS_POLICIES

SANDBOXES = ("read-only", "workspace-write", "full-access")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra")
RESULT_NAME = "_codex_result"
_SESSION_MODULE = __name__.rpartition(".")[0] + "._session"
SUBCOMMANDS = {
    "new": "start a new thread at the next %%codex cell",
    "thread": "print the current thread id",
    "help": "show this help",
}


def _option_help() -> str:
    return "; ".join(f"%codex {name}: {text}" for name, text in SUBCOMMANDS.items())


@magics_class
class CodexMagic(Magics, Configurable):
    """Run OpenAI's Codex agent from a notebook cell; kernel-wide defaults are configurable."""

    model = Unicode(None, allow_none=True, help="Model for every turn (default: Codex's config).").tag(
        config=True
    )
    effort = Enum(EFFORTS, None, allow_none=True, help="Reasoning effort for every turn.").tag(
        config=True
    )
    sandbox = Enum(SANDBOXES, "workspace-write", help="Sandbox for the commands Codex runs.").tag(
        config=True
    )
    cwd = Unicode(
        None, allow_none=True, help="Working directory for Codex (default: the kernel's, per cell)."
    ).tag(config=True)
    timeout = CFloat(0.0, help="Seconds after which a turn is interrupted (0: no limit).").tag(config=True)
    retry_timeout = CFloat(
        120.0, help="Seconds a turn may keep retrying without progress before it is interrupted (0: no limit)."
    ).tag(config=True)
    approval = Enum(
        APPROVAL_POLICIES,
        "on-request",
        help="When Codex asks before acting: on-request (when it needs to leave the sandbox), "
        "untrusted (before any command not known to be safe), never (it is refused at once), "
        "auto-review (a reviewer model answers instead of you).",
    ).tag(config=True)
    headless_approval = Enum(
        HEADLESS_POLICIES,
        "decline",
        help="The answer to a request where nobody can click (nbclient, papermill, no widgets): "
        "decline, accept, or cancel the turn.",
    ).tag(config=True)
    approval_timeout = CFloat(
        600.0, help="Seconds an approval request waits for a click before it is declined."
    ).tag(config=True)
    startup_timeout = CFloat(30.0, help="Seconds the codex app-server may take to start.").tag(
        config=True
    )

    # -- %%codex ----------------------------------------------------------------------

    @magic_arguments(name="%%codex")
    @argument("--model", "-m", help="Model for this turn (overrides CodexMagic.model).")
    @argument("--effort", choices=EFFORTS, help="Reasoning effort for this turn.")
    @argument("--sandbox", choices=SANDBOXES, help="Sandbox for this turn (default: workspace-write).")
    @argument("--cwd", help="Working directory for this turn (default: the kernel's).")
    @argument(
        "--approval",
        choices=APPROVAL_POLICIES,
        help="When Codex asks before acting, this turn (default: on-request; see CodexMagic.approval).",
    )
    @argument("--new", action="store_true", help="Start a new thread before this turn.")
    @argument("--out", help=f"Also store the result under this name (it is always in {RESULT_NAME}).")
    @argument("--timeout", type=float, help="Interrupt the turn after this many seconds.")
    @cell_magic("codex")
    def codex_cell(self, line: str, cell: str) -> None:
        """Send the cell's text to Codex; the next %%codex cell continues the same thread.

        The turn streams into a live widget; its result (the SDK's TurnResult) is
        stored in ``_codex_result``. Interrupt the kernel to interrupt the turn.
        """
        run, out = self._prepare(line, cell)
        self._store(run.run_blocking(), run, out)

    async def codex_cell_async(self, line: str, cell: str) -> None:
        """The same as ``codex_cell``, awaited, so that widget messages flow during the turn."""
        run, out = self._prepare(line, cell)
        self._store(await run.run_async(), run, out)

    def _prepare(self, line: str, cell: str) -> tuple[Any, str | None]:
        args = parse_argstring(self.codex_cell, line)
        prompt = cell.strip()
        if not prompt:
            raise UsageError("%%codex needs a prompt: write your request in the cell below %%codex.")
        cwd = os.path.abspath(os.path.expanduser(args.cwd or self.cwd or os.getcwd()))
        if not os.path.isdir(cwd):
            raise UsageError(f"--cwd {cwd!r} is not a directory: pass an existing directory.")
        if args.out is not None and (not args.out.isidentifier() or keyword.iskeyword(args.out)):
            raise UsageError(f"--out {args.out!r} is not a Python name: use e.g. --out answer.")
        timeout = self.timeout if args.timeout is None else args.timeout
        if timeout < 0:
            raise UsageError("--timeout must be a number of seconds >= 0 (0: no limit).")

        if _SESSION_MODULE in sys.modules:
            # The runner makes the view: after turn/start when the app-server is ready,
            # else before it starts the app-server.
            make_view = self._view
        else:
            # The first turn: the view first, so the cell shows something at once, then
            # the heavy imports (the SDK takes about a second).
            view = self._view()
            make_view = lambda: view  # noqa: E731
        from . import _session
        from ._runner import TurnRun

        session = _session.get_session(startup_timeout=self.startup_timeout)
        if args.new:
            session.new_thread()
        settings = _session.TurnSettings(
            cwd=cwd,
            sandbox=args.sandbox or self.sandbox,
            model=args.model or self.model,
            effort=args.effort or self.effort,
            approval=args.approval or self.approval,
        )
        run = TurnRun(
            session,
            prompt,
            settings,
            make_view,
            timeout=timeout or None,
            retry_timeout=self.retry_timeout or None,
        )
        run.approval_timeout = self.approval_timeout
        run.headless = self.headless_approval
        return run, args.out

    def _view(self) -> Any:
        if getattr(self.shell, "kernel", None) is not None:
            from ._view import WidgetView

            return WidgetView()
        from ._terminal import TextView

        return TextView()

    def _store(self, result: Any, run: Any, out: str | None) -> None:
        from ._runner import raise_for_status

        self.shell.user_ns[RESULT_NAME] = result
        if out:
            self.shell.user_ns[out] = result
        raise_for_status(result, out=out or RESULT_NAME, reason=run.interrupt_reason)

    # -- %codex -----------------------------------------------------------------------

    @line_magic("codex")
    def codex_line(self, line: str) -> None:
        """Manage the kernel's Codex thread: ``%codex new``, ``%codex thread``, ``%codex help``."""
        words = line.split()
        command = words[0] if words else "help"
        if command not in SUBCOMMANDS or len(words) > 1:
            raise UsageError(
                f"%codex {line.strip()!s}: unknown command. {_option_help()}. "
                "To ask Codex something, start a cell with %%codex."
            )
        from . import _session

        if command == "new":
            _session.get_session().new_thread()
            print("The next %%codex cell starts a new thread.")
        elif command == "thread":
            thread_id = _session.current_thread_id()
            print(thread_id or "No thread yet: the first %%codex cell starts one.")
        else:
            print(_option_help())


def transform_codex_cell(lines: list[str]) -> list[str]:
    """Input transformer: turn a ``%%codex`` cell into an awaited call.

    IPython then runs the cell as a coroutine on the kernel's event loop: the cell
    stays busy until the turn ends, and the kernel keeps handling widget messages
    (ipykernel >= 7.4) and turns its interrupt into a cancellation.
    """
    if not lines or not lines[0].startswith("%%codex"):
        return lines
    first = lines[0]
    if first[len("%%codex") : len("%%codex") + 1] not in ("", " ", "\t", "\n", "\r"):
        return lines  # %%codex? (help) or another magic's name
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not _can_await(shell):
        return lines
    line = first[len("%%codex") :].strip()
    cell = "".join(lines[1:])
    return [f"await __import__('codex_magic')._run_cell_async({line!r}, {cell!r})\n"]


def _can_await(shell: Any) -> bool:
    from IPython.core.async_helpers import _asyncio_runner

    return bool(shell.autoawait) and shell.loop_runner is _asyncio_runner
