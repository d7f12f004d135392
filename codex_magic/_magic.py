"""The magic layer: parse the cell's options, delegate the turn, store the result."""

from __future__ import annotations

import builtins
import difflib
import functools
import keyword
import math
import os
import re
import shlex
import sys
import traceback
import unicodedata
from argparse import ArgumentParser, ArgumentTypeError, Namespace
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.inputtransformer2 import leading_empty_lines, leading_indent
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, CFloat, Enum, TraitError, Unicode, validate
from traitlets.config import Configurable

from . import _commands
from ._errors import CodexMagicError, ReplayMissingError
from ._interrupts import InterruptLatch
from ._requests import APPROVAL_POLICIES, HEADLESS_POLICIES, KERNEL_RUN_POLICIES
from ._text import plain

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ._context import OutputRecorder
    from ._schema import OutputSchema

SANDBOXES = ("read-only", "workspace-write", "full-access")
# The values of the SDK's openai_codex.types.ReasoningEffort, in its order; listed here
# because %load_ext must not import the SDK (tests/test_options.py checks they match).
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra")
RESULT_NAME = "_codex_result"
REPLAY_MODES = ("off", "auto", "only")  # _replay.MODES, without importing it at %load_ext
_SESSION_MODULE = __name__.rpartition(".")[0] + "._session"
_SEE_HELP = "see %%codex? for the options"
_NEGATIVE = re.compile(r"-\d+|-\d*\.\d+")  # argparse takes these for values, not options
_CODEX_CELL = re.compile(r"%%codex(?=\s|$)")
# Names IPython keeps in user_ns besides user_ns_hidden: output and input history.
_SHELL_NAMES = re.compile(r"_+|_i+|_i?\d+|_oh|_dh|_ih|_exit_code|In|Out|get_ipython|exit|quit")


def _option_help() -> str:
    return f"the commands are {', '.join(_commands.SUBCOMMANDS)} (%codex help describes them)"


def _one_line(text: str) -> str:
    """Text for a one-line message: line breaks and other control characters escaped."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _seconds(text: str) -> float:
    """The ``--timeout`` value: a finite number of seconds >= 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ArgumentTypeError(f"{text!r} is not a number of seconds: pass a finite number >= 0 (0: no limit)")
    return seconds


def _parse(parser: ArgumentParser, line: str) -> Namespace:
    """Parse the option line as a shell would (posix quoting) with the magic's parser."""
    try:
        argv = shlex.split(line)
    except ValueError as error:  # "No closing quotation", "No escaped character"
        raise UsageError(
            f"%%codex {_one_line(line)}: {str(error).lower()}: close the quote, or escape a lone "
            "quote or a trailing backslash with a backslash."
        ) from None
    try:
        args, extra = parser.parse_known_args(argv)
    except UsageError as error:  # the magic_arguments parser's errors
        raise UsageError(f"%%codex: {_one_line(str(error))}; {_SEE_HELP}.") from None
    if not extra:
        return args
    unknown = [
        word for word in extra if word.startswith("-") and word not in ("-", "--") and not _NEGATIVE.fullmatch(word)
    ]
    if not unknown:
        raise UsageError(
            f"%%codex {_one_line(' '.join(extra))!r}: write your request in the cell below the %%codex "
            f"line, not on it ({_SEE_HELP})."
        )
    names = [name for action in parser._actions for name in action.option_strings]
    guess = difflib.get_close_matches(unknown[0].partition("=")[0], names, n=1)
    hint = f" (did you mean {guess[0]}?)" if guess else ""
    raise UsageError(f"%%codex: unrecognized arguments: {_one_line(' '.join(extra))}{hint}; {_SEE_HELP}.")


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


_IMAGE_FETCH_SECONDS = 15.0
_IMAGE_MAX_BYTES = 20 * 1024 * 1024


def _image(value: str) -> str:
    """An --image value as sent: a file as its absolute path, a URL fetched into a data: URL.

    The app-server takes no remote image URLs, so the kernel fetches it (the notebook's
    network, not Codex's sandbox).
    """
    if re.match(r"https?://\S+$", value, re.IGNORECASE):
        return _fetched_image(value)
    path = os.path.abspath(os.path.expanduser(value))
    if not os.path.isfile(path):
        raise UsageError(f"--image {_one_line(value)!r}: no such file; give an image file's path or an http(s) URL.")
    if not path.lower().endswith(_IMAGE_SUFFIXES):
        raise UsageError(f"--image {_one_line(value)!r}: not an image Codex takes: use a PNG, JPEG, GIF or WebP file.")
    return path


def _fetched_image(url: str) -> str:
    import base64
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=_IMAGE_FETCH_SECONDS) as response:  # noqa: S310 - http(s) only
            kind = response.headers.get_content_type()
            data = response.read(_IMAGE_MAX_BYTES + 1)
    except (OSError, ValueError) as error:
        raise UsageError(f"--image {_one_line(url)}: could not fetch it ({_one_line(str(error))}).") from None
    if kind not in ("image/png", "image/jpeg", "image/gif", "image/webp"):
        raise UsageError(f"--image {_one_line(url)}: it is {kind}, not an image Codex takes (PNG, JPEG, GIF or WebP).")
    if len(data) > _IMAGE_MAX_BYTES:
        raise UsageError(f"--image {_one_line(url)}: larger than {_IMAGE_MAX_BYTES // 2**20} MB.")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def _trim_blank_lines(text: str) -> str:
    """The text without its leading and trailing blank lines; the lines between as written."""
    lines = text.splitlines(keepends=True)
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if lines:
        lines[-1] = lines[-1].splitlines()[0]
    return "".join(lines)


def _shell_name(name: str, shell: Any) -> str | None:
    """What assigning ``name`` in the user's namespace would break, if anything."""
    if name in getattr(shell, "user_ns_hidden", {}) or _SHELL_NAMES.fullmatch(name):
        return f"IPython's own {name}"
    if name.startswith("__") and name.endswith("__"):
        return f"the special name {name}"
    if hasattr(builtins, name):
        return f"the built-in {name}"
    return None


def _result_name(value: str, shell: Any) -> str:
    """The ``--out`` name, as Python reads it, if it is safe to assign."""
    name = unicodedata.normalize("NFKC", value)  # how Python reads identifiers in code
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"--out {_one_line(value)!r} is not a Python name: use e.g. --out answer.")
    clash = _shell_name(name, shell)
    if clash is None:
        return name
    other = f"{name.strip('_')}_result"
    if not other.isidentifier() or _shell_name(other, shell) is not None:
        other = "answer"
    raise UsageError(f"--out {name} would replace {clash}: use another name, e.g. --out {other}.")


@dataclass(frozen=True)
class CellOptions:
    """A ``%%codex`` cell, parsed and checked over the kernel-wide defaults."""

    prompt: str
    cwd: str
    sandbox: str
    model: str | None
    effort: str | None
    approval: str
    new: bool
    out: str | None
    timeout: float
    kernel_tools: bool = True
    kernel_run: str = "ask"
    images: tuple[str, ...] = ()  # sent with the prompt: local paths, http(s) or data: URLs
    schema: OutputSchema | None = None  # --schema: the answer is JSON of this shape
    attached: tuple[str, ...] = ()  # what the options attached, for the transcript
    replay: str = "off"  # see _replay

    def key_options(self) -> dict[str, Any]:
        """The options that change what the turn does, for its replay key (see _replay)."""
        return {
            "model": self.model,
            "effort": self.effort,
            "sandbox": self.sandbox,
            "approval": self.approval,
            "kernel_tools": self.kernel_tools,
            "kernel_run": self.kernel_run,
            "schema": self.schema.wire if self.schema is not None else None,
        }


def _check_seconds(name: str, value: float, *, zero: bool = True) -> float:
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        rule = "a finite number >= 0 (0: no limit)" if zero else "a finite number > 0"
        raise TraitError(f"CodexMagic.{name} must be {rule}, not {value!r}.")
    return value


def _check_text(name: str, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise TraitError(f"CodexMagic.{name} must be a non-empty string or None, not {value!r}.")
    return value


@magics_class
class CodexMagic(Magics, Configurable):
    """Run OpenAI's Codex agent from a notebook cell; kernel-wide defaults are configurable."""

    shell: InteractiveShell  # always made with one (load_ipython_extension); Magics allows None

    model = Unicode(None, allow_none=True, help="Model for every turn (default: Codex's config).").tag(config=True)
    effort = Enum(EFFORTS, None, allow_none=True, help="Reasoning effort for every turn.").tag(config=True)
    sandbox = Enum(SANDBOXES, "workspace-write", help="Sandbox for the commands Codex runs.").tag(config=True)
    cwd = Unicode(None, allow_none=True, help="Working directory for Codex (default: the kernel's, per cell).").tag(
        config=True
    )
    timeout = CFloat(0.0, help="Seconds after which a turn is interrupted (0: no limit).").tag(config=True)
    retry_timeout = CFloat(
        120.0, help="Seconds a turn may keep retrying without progress before it is interrupted (0: no limit)."
    ).tag(config=True)
    kernel_tools = Bool(
        True, help="Offer Codex the kernel tools: see the kernel's variables, run code in it, propose cells."
    ).tag(config=True)
    kernel_run = Enum(
        KERNEL_RUN_POLICIES,
        "ask",
        help="Whether Codex may run code in the kernel: ask (each time, in the widget), allow, never.",
    ).tag(config=True)
    kernel_run_timeout = CFloat(
        60.0, help="Seconds a run of Codex's code in the kernel may take before it is interrupted (0: no limit)."
    ).tag(config=True)
    instructions = Unicode("", help="Developer instructions added to every new thread (after the built-in ones).").tag(
        config=True
    )
    builtin_instructions = Bool(
        True,
        help="Start threads with the built-in instructions (that Codex works in a live kernel, with its tools); "
        "False leaves only CodexMagic.instructions.",
    ).tag(config=True)
    stall_timeout = CFloat(
        180.0,
        help="Seconds a turn may wait on a model that sends nothing, while no command, tool or "
        "question is at work, before it is interrupted (0: no limit).",
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
    replay = Enum(
        REPLAY_MODES,
        "off",
        help="Replay recorded turns instead of calling the model: off (always call it, record nothing), "
        "auto (replay a recorded turn; run and record any other), only (replay; a turn with no recording fails).",
    ).tag(config=True)
    recordings = Unicode(
        "codex-recordings",
        help="Directory of the recordings of --replay auto and only (relative: to the kernel's working directory).",
    ).tag(config=True)
    approval_timeout = CFloat(
        600.0, help="Seconds an approval request waits for a click before it is declined (0: no limit)."
    ).tag(config=True)
    startup_timeout = CFloat(30.0, help="Seconds the codex app-server may take to start.").tag(config=True)
    live_after = CFloat(
        1.0,
        help="Seconds a turn shows as plain output before the live widget, with Stop, replaces it (0: the "
        "widget from the start). A request to answer, or Codex's code running in the kernel, shows it at once.",
    ).tag(config=True)
    app_server = Enum(
        ("kernel", "shared"),
        "kernel",
        help="kernel: each kernel runs its own codex app-server. shared: one app-server per user and "
        "CODEX_HOME serves every kernel that chooses it (less memory, faster first cell); it outlives "
        "the kernels, shares their login and config, and any process of the user can read or interrupt "
        "any of its threads. Commands get the kernel's environment less its secrets. Changing it applies "
        "to a running session after %codex stop.",
    ).tag(config=True)

    shared_idle_timeout = CFloat(
        600.0,
        help="Seconds a shared app-server (app_server = 'shared') waits with no kernel connected before it "
        "exits (0: it runs until killed). Set by the kernel that starts it.",
    ).tag(config=True)

    @validate(
        "timeout", "retry_timeout", "stall_timeout", "approval_timeout", "kernel_run_timeout", "shared_idle_timeout"
    )
    def _valid_seconds(self, proposal: Any) -> float:
        return _check_seconds(proposal["trait"].name, proposal["value"])

    @validate("live_after")
    def _valid_live_after(self, proposal: Any) -> float:
        value = proposal["value"]
        if not math.isfinite(value) or value < 0:
            raise TraitError(
                f"CodexMagic.live_after must be a finite number >= 0 (0: the widget from the start), not {value!r}."
            )
        return float(value)

    @validate("startup_timeout")
    def _valid_startup(self, proposal: Any) -> float:
        return _check_seconds("startup_timeout", proposal["value"], zero=False)

    @validate("model", "cwd")
    def _valid_text(self, proposal: Any) -> str | None:
        return _check_text(proposal["trait"].name, proposal["value"])

    # -- %%codex ----------------------------------------------------------------------

    # magic_arguments writes its usage line as "%" + name: "%codex" reads "%%codex".
    @magic_arguments(name="%codex")
    @argument("--model", "-m", metavar="NAME", help="Model for this turn (overrides CodexMagic.model).")
    @argument("--effort", choices=EFFORTS, help="Reasoning effort for this turn.")
    @argument("--sandbox", choices=SANDBOXES, help="Sandbox for this turn (default: workspace-write).")
    @argument("--cwd", metavar="DIR", help="Working directory for this turn (default: the kernel's).")
    @argument(
        "--approval",
        choices=APPROVAL_POLICIES,
        help="When Codex asks before acting, this turn (default: on-request; see CodexMagic.approval).",
    )
    @argument(
        "--kernel-run",
        choices=KERNEL_RUN_POLICIES,
        help="Whether Codex may run code in this kernel, this turn: ask (default), allow, never.",
    )
    @argument(
        "--no-kernel-tools",
        action="store_true",
        help="No kernel tools this turn: Codex cannot see the kernel's variables, run code in it or propose cells.",
    )
    @argument(
        "--with-output",
        nargs="?",
        const=0,
        type=int,
        metavar="N",
        help="Attach what cell N showed (its text and images; a plot goes as an image); "
        "without N, the last cell that showed something.",
    )
    @argument("--with-cells", type=int, metavar="K", help="Attach the source (and results) of the last K cells (1-20).")
    @argument(
        "--vars",
        action="store_true",
        help="Replace {name} in the request by that variable's value (a bounded repr); other braces stay.",
    )
    @argument(
        "--schema",
        metavar="NAME",
        help="Ask for an answer in JSON of this shape: NAME is a pydantic model class or a JSON-schema dict "
        "in the notebook; the validated object is in _codex_result.parsed.",
    )
    @argument(
        "--image",
        action="append",
        metavar="PATH_OR_URL",
        help="Send an image with the request: a PNG, JPEG, GIF or WebP file, or an http(s) URL (repeatable).",
    )
    @argument(
        "--replay",
        choices=REPLAY_MODES,
        help="off: call the model; auto: replay this turn's recording if there is one, else run and record it; "
        "only: replay, fail without a recording (see CodexMagic.replay).",
    )
    @argument("--new", action="store_true", help="Start a new thread before this turn.")
    @argument("--out", metavar="NAME", help=f"Also store the result under this name (it is always in {RESULT_NAME}).")
    @argument(
        "--timeout", type=_seconds, metavar="SECONDS", help="Interrupt the turn after this many seconds (0: no limit)."
    )
    # IPython types a named magic decorator as returning ``_F | Callable[[_F], _F]`` with _F
    # unsolved, which mypy cannot apply (the method is typed Any after it).
    @cell_magic("codex")  # type: ignore[arg-type]
    def codex_cell(self, line: str, cell: str) -> None:
        """Send the cell's text to Codex; the next %%codex cell continues the same thread.

        The turn streams into a live widget; its result (the SDK's TurnResult) is
        stored in ``_codex_result``. Interrupt the kernel to interrupt the turn.
        Options are read with shell quoting: ``--cwd "my project"``.
        """
        options = self.options(line, cell)
        if self._replayed(options):
            return
        with InterruptLatch() as latch:  # from here on an interrupt ends the turn in one line
            run = self._start(options, latch)
            result = run.run_blocking()
        self._store(result, run, options)

    async def codex_cell_async(self, line: str, cell: str) -> None:
        """The same as ``codex_cell``, awaited, so that widget messages flow during the turn."""
        options = self.options(line, cell)
        if self._replayed(options):
            return
        with InterruptLatch() as latch:  # from here on an interrupt ends the turn in one line
            run = self._start(options, latch)
            result = await run.run_async()
        self._store(result, run, options)

    def options(self, line: str, cell: str) -> CellOptions:
        """The cell's options over the kernel-wide defaults; UsageError for bad input."""
        args = _parse(self.codex_cell.parser, line)
        for name in ("model", "cwd", "out"):
            if getattr(args, name) is not None and not getattr(args, name).strip():
                raise UsageError(f"--{name} is empty: give it a value, or leave the option out.")
        prompt = _trim_blank_lines(cell)
        if not prompt.strip():
            raise UsageError("%%codex needs a prompt: write your request in the cell below %%codex.")
        if args.with_output is not None and args.with_output < 0:
            raise UsageError("--with-output N takes a cell number (or nothing: the last output shown).")
        if args.with_cells is not None and not 1 <= args.with_cells <= 20:
            raise UsageError("--with-cells K takes a number of cells from 1 to 20.")
        from ._context import attach

        try:
            attached = attach(
                prompt,
                self.shell,
                self.recorder,
                with_output=args.with_output,
                with_cells=args.with_cells,
                with_vars=args.vars,
            )
        except ValueError as error:
            raise UsageError(f"--with-output: {error}.") from None
        images = tuple(_image(value) for value in args.image or ()) + tuple(attached.images)
        schema = None if args.schema is None else self._schema(args.schema)
        cwd = os.path.abspath(os.path.expanduser(args.cwd or self.cwd or os.getcwd()))
        if not os.path.isdir(cwd):
            raise UsageError(f"--cwd {_one_line(cwd)!r} is not a directory: pass an existing directory.")
        return CellOptions(
            prompt=attached.prompt,
            images=images,
            schema=schema,
            attached=tuple(attached.notes),
            cwd=cwd,
            sandbox=args.sandbox or self.sandbox,
            model=args.model or self.model,
            effort=args.effort or self.effort,
            approval=args.approval or self.approval,
            new=args.new,
            out=None if args.out is None else _result_name(args.out, self.shell),
            timeout=self.timeout if args.timeout is None else args.timeout,
            kernel_tools=self.kernel_tools and not args.no_kernel_tools,
            kernel_run=args.kernel_run or self.kernel_run,
            replay=args.replay or self.replay,
        )

    def _schema(self, name: str) -> OutputSchema:
        """The --schema NAME of the user's namespace, checked."""
        from ._schema import OutputSchema

        if not name.isidentifier() or name not in self.shell.user_ns:
            raise UsageError(
                f"--schema {_one_line(name)}: no such variable; define a pydantic model class or a "
                "JSON-schema dict in the notebook first."
            )
        try:
            return OutputSchema.of(name, self.shell.user_ns[name])
        except ValueError as error:
            raise UsageError(f"--schema {_one_line(str(error))}.") from None

    def _start(self, options: CellOptions, latch: InterruptLatch) -> Any:
        """The turn's runner, with the session and the view it needs."""
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
        from ._kernel import KernelAccess, instructions
        from ._runner import TurnRun

        session = _session.get_session(
            startup_timeout=self.startup_timeout, app_server=self.app_server, shared_idle=self.shared_idle_timeout
        )
        if options.new:
            session.new_thread()  # (again: the session may be new since _replayed)
        settings = _session.TurnSettings(
            cwd=options.cwd,
            sandbox=options.sandbox,
            model=options.model,
            effort=options.effort,
            approval=options.approval,
            instructions=instructions(self.instructions, builtin=self.builtin_instructions),
        )
        run = TurnRun(
            session,
            options.prompt,
            settings,
            make_view,
            timeout=options.timeout or None,
            retry_timeout=self.retry_timeout or None,
            stall_timeout=self.stall_timeout or None,
            latch=latch,
            images=options.images,
            attached=options.attached,
            schema=options.schema,
            kernel=KernelAccess(
                self.shell,
                enabled=options.kernel_tools,
                run=options.kernel_run,
                run_timeout=self.kernel_run_timeout or None,
            ),
            approval_timeout=self.approval_timeout or None,
            headless=self.headless_approval,
        )
        return run

    def _view(self) -> Any:
        if getattr(self.shell, "kernel", None) is not None:
            from ._view import WidgetView

            return WidgetView(live_after=self.live_after)
        from ._terminal import TextView

        return TextView()

    def _store(self, result: Any, run: Any, options: CellOptions) -> None:
        """Keep a live turn's result (and its recording, with --replay auto); raise for its status."""
        from ._replay import HISTORY, after, turn_key

        # The key of the turn (options.new has reset the history before it ran).
        previous = HISTORY.key
        key = turn_key(previous, options.prompt, options.images, options.key_options())
        HISTORY.key = after(key, result.status.value, result.final_response)
        if options.replay == "auto" and result.status.value == "completed":
            self._record(key, previous, result, run, options)
        proposed = run.kernel.proposed_cell() if run.kernel is not None else None
        if proposed:
            # A new cell below this one (the execute reply's set_next_input payload), not run;
            # in terminal IPython, the next prompt.
            self.shell.set_next_input(proposed, replace=False)
        self._keep(result, options.out, reason=run.interrupt_reason)

    def _keep(self, result: Any, out: str | None, *, reason: str | None) -> None:
        from ._runner import raise_for_status

        self.shell.user_ns[RESULT_NAME] = result
        if out:
            self.shell.user_ns[out] = result
        raise_for_status(result, out=out or RESULT_NAME, reason=reason)

    # -- replay -----------------------------------------------------------------------

    def _recordings(self) -> Any:
        from ._replay import Recordings

        return Recordings(os.path.abspath(os.path.expanduser(self.recordings)))

    def _record(self, key: str, previous: str, result: Any, run: Any, options: CellOptions) -> None:
        from ._result import recorded

        fields, items = recorded(result)
        try:
            self._recordings().write(
                key,
                previous=previous,
                prompt=options.prompt,
                options=options.key_options(),
                result=fields,
                items=items,
                provenance=run.transcript.provenance or {},
            )
        except OSError as error:
            # The turn is kept; only its recording is missing: said, not raised.
            print(f"codex-magic: the turn was not recorded ({error}); check CodexMagic.recordings", file=sys.stderr)

    def _replayed(self, options: CellOptions) -> bool:
        """--replay auto or only: show and keep the cell's recorded turn; False to run it live."""
        if options.new:
            from ._replay import HISTORY

            HISTORY.reset()
            if _SESSION_MODULE in sys.modules:
                sys.modules[_SESSION_MODULE].get_session().new_thread()
        if options.replay == "off":
            return False
        from ._replay import HISTORY, after, turn_key

        store = self._recordings()
        key = turn_key(HISTORY.key, options.prompt, options.images, options.key_options())
        recording = store.find(key)
        if recording is None:
            if options.replay == "auto":
                return False
            first = _one_line(options.prompt.strip().splitlines()[0])
            first = first if len(first) <= 60 else first[:57] + "..."
            raise ReplayMissingError(
                f"no recording of this cell (In [{self.shell.execution_count}]: {first!r}) in {store.directory}: "
                "run it once with --replay auto where the model can be reached, and keep the recordings "
                "with the notebook (an edit of this cell or of an earlier %%codex cell needs a new recording)"
            )
        from ._result import replayed

        where = os.path.relpath(recording.path)
        where = recording.path if where.startswith("..") else where
        result = replayed(
            recording.result,
            recording.items,
            f"replayed from {where} (recorded {recording.recorded_at}); the model was not called",
        )
        if options.schema is not None and result.status.value == "completed":
            from ._schema import SchemaMismatch

            try:
                result.parsed = options.schema.parse(result.final_response or "")
            except SchemaMismatch as error:
                result.schema_error = f"the answer does not match {options.schema.name}: {error}"
        HISTORY.replayed(recording.history(), after(key, result.status.value, result.final_response))
        self._show_replayed(result, recording, where)
        self._keep(result, options.out, reason=None)
        return True

    def _show_replayed(self, result: Any, recording: Any, where: str) -> None:
        from IPython.display import display

        from ._provenance import KEY

        rendered = result._rendered()
        provenance = {**(recording.header.get("provenance") or {}), "replayed": where}
        display(
            {"text/plain": rendered.text, "text/html": rendered.html, "text/markdown": rendered.markdown},
            raw=True,
            metadata={KEY: provenance},
        )

    # -- %codex fix ------------------------------------------------------------------

    _last_error: tuple[str, BaseException] | None = None
    recorder: OutputRecorder | None = None  # what cells displayed, for --with-output (set at load)

    def record_error(self, result: Any) -> None:
        """post_run_cell: remember the last exception a cell raised, and that cell's source."""
        error = result.error_in_exec
        if error is None or isinstance(error, (CodexMagicError, UsageError)):
            return  # an error of %%codex itself is not the user's code to fix
        self._last_error = (result.info.raw_cell, error)

    def fix_prompt(self, text: str) -> str:
        """The request of ``%codex fix``: TEXT, then the last error and the cell that raised it."""
        if self._last_error is None:
            raise UsageError(
                "%codex fix: no cell has raised an exception yet; run the cell that fails, then %codex fix."
            )
        source, error = self._last_error
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        # Drop IPython's own frames above the cell's code.
        cut = next(
            (i for i, line in enumerate(lines) if "interactiveshell.py" not in line and line.startswith("  File")), 1
        )
        trace = plain("".join(lines[:1] + lines[cut:]))
        ask = text.strip() or "This cell raised the exception below. Find the cause and fix it."
        return f"{ask}\n\nThe cell:\n```python\n{source.strip()}\n```\n\nIts exception:\n```\n{trace.strip()}\n```"

    async def codex_fix_async(self, text: str) -> None:
        """``%codex fix`` in a kernel: the same turn as a %%codex cell, awaited."""
        await self.codex_cell_async("", self.fix_prompt(text))

    # -- %config ----------------------------------------------------------------------

    _config_error: TraitError | None = None
    _collecting = False

    def update_config(self, config: Any) -> None:
        """Apply configuration; inside ``checked_config`` a bad value is kept to be raised."""
        if not self._collecting:
            super().update_config(config)
            return
        try:
            super().update_config(config)
        except TraitError as error:  # traitlets has put the old trait values back
            self._config_error = error

    def checked_config(self, config_magic: Callable[[str], Any]) -> Callable[[str], Any]:
        """IPython's ``%config``, raising UsageError for a bad CodexMagic value.

        IPython's own only logs the error and carries on, so a typo would pass unseen,
        and keeps the bad value in the shell's config, where the next ``%load_ext``
        would trip on it.
        """

        @functools.wraps(config_magic)
        def config(line: str) -> Any:
            section = dict.get(self.shell.config, type(self).__name__)
            section = None if section is None else section.copy()
            self._collecting, self._config_error = True, None
            try:
                value = config_magic(line)
            finally:
                self._collecting = False
            if self._config_error is not None:
                shell_config = self.shell.config  # a new object: update_config copies it
                if section is None:
                    shell_config.pop(type(self).__name__, None)
                else:
                    shell_config[type(self).__name__] = section
                raise UsageError(
                    f"%config {_one_line(line.strip())}: {_one_line(str(self._config_error))} The setting is unchanged."
                )
            return value

        config.codex_magic_wraps = config_magic  # type: ignore[attr-defined]
        return config

    # -- %codex -----------------------------------------------------------------------

    @line_magic("codex")  # type: ignore[arg-type]  # as @cell_magic("codex") above
    @_commands.documented
    def codex_line(self, line: str) -> Any:
        """Manage the kernel's Codex thread, account and app-server: ``%codex COMMAND [options]``.

        ``%codex help`` lists the commands, ``%codex COMMAND --help`` shows one's options.
        To ask Codex something, start a cell with %%codex; %%codex? lists its options.
        """
        command, rest = _commands.split(line)
        if command == "fix" and not _commands.asks_help(rest):
            self.codex_cell("", self.fix_prompt(rest))  # free text: not parsed
            return None
        if command not in _commands.SUBCOMMANDS:
            raise UsageError(
                f"%codex {_one_line(command)}: unknown command; {_option_help()}. "
                "To ask Codex something, start a cell with %%codex."
            )
        return _commands.run(self, command, rest)


def transform_codex_cell(lines: list[str]) -> list[str]:
    """Input transformer: hand a ``%%codex`` cell's text to the magic as written.

    It runs before IPython's prompt stripping, which would drop ``>>>``, ``...`` and
    ``In [1]:`` from the request. In a kernel the cell becomes an awaited call, so IPython
    runs it as a coroutine on the kernel's event loop: the cell stays busy until the turn
    ends, and the kernel keeps handling widget messages (ipykernel >= 7.4) and turns its
    interrupt into a cancellation. Elsewhere it becomes the blocking magic's call.
    """
    first = next((line for line in lines if line.strip()), "")
    fix = _FIX.match(first.strip())
    if fix and len([line for line in lines if line.strip()]) == 1:
        return _awaited_fix(first.strip()[fix.end() :], lines)
    if not first.lstrip().startswith("%%codex"):
        return lines  # not ours: spare every other cell the dedent below
    cell = leading_indent(leading_empty_lines(lines))  # as IPython does for any cell
    if not _CODEX_CELL.match(cell[0]):
        return lines  # %%codex? (help), or another magic
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return lines
    line = cell[0][len("%%codex") :].strip()
    body = "".join(cell[1:])
    if getattr(shell, "kernel", None) is not None and _can_await(shell):
        return [f"await __import__('codex_magic')._run_cell_async({line!r}, {body!r})\n"]
    return [f"get_ipython().run_cell_magic('codex', {line!r}, {body!r})\n"]


# check_complete skips transformers with side effects: terminal IPython must still see
# a cell magic there (complete at a blank line), not the one-line call it becomes.
transform_codex_cell.has_side_effects = True  # type: ignore[attr-defined]


_FIX = re.compile(r"%codex\s+fix(?=\s|$)")


def _awaited_fix(text: str, lines: list[str]) -> list[str]:
    """A cell of just ``%codex fix [TEXT]``, awaited in a kernel like a %%codex cell."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None or not _can_await(shell):
        return lines
    return [f"await __import__('codex_magic')._run_fix_async({text.strip()!r})\n"]


def _can_await(shell: Any) -> bool:
    from IPython.core.async_helpers import _asyncio_runner

    return bool(shell.autoawait) and shell.loop_runner is _asyncio_runner
