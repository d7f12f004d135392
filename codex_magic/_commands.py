"""The ``%codex`` subcommands: one ``magic_arguments`` parser each, their logic, their output.

``%codex COMMAND [options]`` manages the kernel's thread (threads, resume, fork, name,
compact, archive, history, new, thread), the account and the app-server (status, models,
login, logout, config, stop). Each command reads its options with its own parser, so bad
input is a one-line ``UsageError``; what the app-server refuses is a one-line
``CommandError``. Output is plain text, which reads the same in a terminal and a
notebook. The SDK and the session are imported when a command runs, not at ``%load_ext``.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from argparse import ArgumentTypeError, Namespace
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ._errors import AppServerError, CodexMagicError
from ._text import short_id

Handler = Callable[[Any, Namespace], Any]  # (the CodexMagic instance, the parsed options)
F = TypeVar("F", bound=Callable[..., Any])
COMMANDS: dict[str, Handler] = {}
_HELP_FLAGS = ("-h", "--help")
_DEVICE_LOGIN_MINUTES = 15  # how long a ChatGPT device code stays valid


class CommandError(CodexMagicError):
    """A ``%codex`` command failed: the app-server refused it or could not reach a service."""


def _command(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = handler
        return handler

    return register


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ArgumentTypeError(f"{text!r} is not a count: pass a whole number >= 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ArgumentTypeError(f"{text!r} is not a number of seconds: pass a finite number > 0")
    return value


# -- plain text -------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """Text for one line of output: line breaks and other control characters escaped."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _clip(text: str | None, limit: int) -> str:
    """One line of at most ``limit`` characters (whitespace runs folded)."""
    flat = " ".join((text or "").split())
    flat = _one_line(flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _ago(timestamp: int | None) -> str:
    if not timestamp:
        return ""
    seconds = time.time() - timestamp
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: a header, a rule, then the rows, columns padded to fit."""
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)])


def _pairs(rows: Sequence[tuple[str, str]]) -> str:
    """Labelled lines: ``label  value``, labels padded to one width."""
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}".rstrip() for label, value in rows)


# -- what the commands share --------------------------------------------------------------------


def _session(magic: Any) -> Any:
    from . import _session

    return _session.get_session(
        startup_timeout=magic.startup_timeout, app_server=magic.app_server, shared_idle=magic.shared_idle_timeout
    )


def _cwd(magic: Any) -> str:
    return os.path.abspath(os.path.expanduser(magic.cwd or os.getcwd()))


def _thread_id(session: Any, command: str) -> str:
    if session.thread_id is None:
        raise UsageError(
            f"%codex {command}: no thread yet: the first %%codex cell starts one, "
            "or %codex resume continues an earlier one."
        )
    return session.thread_id


def _thread_label(thread_id: str, name: str | None = None) -> str:
    return f"{short_id(thread_id)} ({_clip(name, 40)})" if name else short_id(thread_id)


# -- threads ------------------------------------------------------------------------------------


@_command("threads")
@magic_arguments(name="codex threads")
@argument("--limit", type=_count, default=20, metavar="N", help="Show at most N threads (default 20).")
@argument("--all", action="store_true", help="Threads of every directory, not only the working directory's.")
def _threads(magic: Any, args: Namespace) -> None:
    """List recent threads of the working directory: id, name, first prompt, turns, last update."""
    session, cwd = _session(magic), _cwd(magic)
    threads = session.list_threads(cwd=None if args.all else cwd, limit=args.limit, count_turns=True)
    where = "any directory" if args.all else cwd
    if not threads:
        print(f"No threads in {where} yet: a %%codex cell starts one (%codex threads --all lists every directory's).")
        return
    current = session.thread_id
    rows = []
    for thread in threads:
        row = [
            "*" if thread.id == current else "",
            short_id(thread.id),
            _clip(thread.name, 24),
            _clip(thread.preview, 48),
            str(thread.turns),
            _ago(thread.updated_at),
        ]
        rows.append([*row, _clip(thread.cwd, 40)] if args.all else row)
    headers = ["", "id", "name", "first prompt", "turns", "updated", *(["directory"] if args.all else [])]
    print(f"Threads of {where}, the most recent first (* this kernel's); %codex resume ID continues one:")
    print(table(headers, rows))


def _find_thread(session: Any, ref: str | None, cwd: str) -> str:
    """The full id of the thread ``ref`` names (an id, a short id or a prefix); UsageError if none."""
    if ref is None:
        recent = session.list_threads(cwd=cwd, limit=1)
        if not recent:
            raise UsageError(
                f"%codex resume: no thread to resume in {cwd}: %codex threads --all lists the threads "
                "of every directory; pass one's id."
            )
        return recent[0].id
    ref = ref.strip().lower()
    if len(ref.replace("-", "")) == 32:
        return ref
    found = [
        thread.id
        for thread in session.list_threads(cwd=None, limit=200)
        if short_id(thread.id) == ref or thread.id.startswith(ref) or thread.id.replace("-", "").endswith(ref)
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(
            f"%codex resume: no thread {_one_line(ref)!r}: %codex threads --all lists them with their ids."
        )
    raise UsageError(
        f"%codex resume: {_one_line(ref)!r} names {len(found)} threads: pass more of the id (%codex threads --all)."
    )


@_command("resume")
@magic_arguments(name="codex resume")
@argument(
    "thread",
    nargs="?",
    metavar="ID",
    help="The thread's id or short id (see %%codex threads); default: the working directory's most recent.",
)
def _resume(magic: Any, args: Namespace) -> None:
    """Continue an earlier thread (after a kernel restart, say): the next %%codex cell continues it."""
    session, cwd = _session(magic), _cwd(magic)
    thread_id = _find_thread(session, args.thread, cwd)
    details = session.resume_thread(thread_id, cwd=cwd)
    turns = details.turns
    last = next((_final_answer(turn) for turn in reversed(turns) if _final_answer(turn)), None)
    print(
        f"Resumed thread {_thread_label(details.thread.id, details.thread.name)}: {len(turns)} "
        f"turn{'s' if len(turns) != 1 else ''}, updated {_ago(details.thread.updated_at) or 'earlier'}. "
        "The next %%codex cell continues it."
    )
    if details.thread.preview:
        print(f"First prompt: {_clip(details.thread.preview, 200)}")
    if last:
        print(f"Last answer: {_clip(last, 400)}")


@_command("fork")
@magic_arguments(name="codex fork")
def _fork(magic: Any, args: Namespace) -> None:
    """Start a new thread with the current one's history; the next %%codex cell continues the new one."""
    session = _session(magic)
    _thread_id(session, "fork")
    old, new = session.fork_thread(cwd=_cwd(magic))
    print(
        f"Forked thread {short_id(old)} into {short_id(new)}: the new thread has its history, and the next "
        f"%%codex cell continues it (%codex resume {short_id(old)} goes back)."
    )


@_command("name")
@magic_arguments(name="codex name")
@argument("text", nargs="+", metavar="TEXT", help="The name (the words after name, quoted or not).")
def _name(magic: Any, args: Namespace) -> None:
    """Name the current thread (%codex threads shows the name)."""
    name = " ".join(args.text).strip()
    if not name:
        raise UsageError("%codex name: the name is empty: write it after name, e.g. %codex name sales analysis.")
    session = _session(magic)
    _thread_id(session, "name")
    thread_id = session.name_thread(name)
    print(f"Named thread {short_id(thread_id)}: {_clip(name, 80)}")


@_command("compact")
@magic_arguments(name="codex compact")
@argument(
    "--timeout", type=_seconds, default=300.0, metavar="SECONDS", help="Give up waiting after this long (default 300)."
)
def _compact(magic: Any, args: Namespace) -> None:
    """Compact the current thread: Codex summarises the conversation so far, and later turns start from it."""
    session = _session(magic)
    thread_id = _thread_id(session, "compact")
    turn = session.compact_thread(cwd=_cwd(magic), timeout=args.timeout)
    if turn.status.value != "completed":
        why = turn.error.message if turn.error is not None else turn.status.value
        raise CommandError(f"%codex compact: the compaction ended {turn.status.value}: {_clip(why, 300)}")
    print(f"Compacted thread {short_id(thread_id)}: later turns start from Codex's summary of the conversation.")


@_command("archive")
@magic_arguments(name="codex archive")
def _archive(magic: Any, args: Namespace) -> None:
    """Archive the current thread (%codex threads no longer lists it); the next %%codex cell starts a new one."""
    session = _session(magic)
    _thread_id(session, "archive")
    thread_id = session.archive_thread()
    print(f"Archived thread {short_id(thread_id)}; the next %%codex cell starts a new thread.")


@_command("history")
@magic_arguments(name="codex history")
@argument("--last", type=_count, metavar="N", help="Only the last N turns.")
def _history(magic: Any, args: Namespace) -> History:
    """The current thread's turns as results (h = %codex history), shown as their transcripts."""
    session = _session(magic)
    thread_id = _thread_id(session, "history")
    details = session.read_turns(thread_id)
    turns = details.turns[-args.last :] if args.last else details.turns
    return History(result_from_turn(turn, details.thread) for turn in turns)


@_command("new")
@magic_arguments(name="codex new")
def _new(magic: Any, args: Namespace) -> None:
    """Start a new thread at the next %%codex cell."""
    session = _session(magic)
    with session.hold("start a new thread"):
        session.new_thread()
    print("The next %%codex cell starts a new thread.")


@_command("thread")
@magic_arguments(name="codex thread")
def _thread(magic: Any, args: Namespace) -> None:
    """Print the current thread id."""
    from . import _session as session_module

    print(session_module.current_thread_id() or "No thread yet: the first %%codex cell starts one.")


@_command("fix")
@magic_arguments(name="codex fix")
@argument("text", nargs="*", metavar="TEXT", help="Your own words for Codex, sent with the error (free text).")
def _fix(magic: Any, args: Namespace) -> None:
    """Ask Codex to fix the last error a cell raised (its traceback and the cell go with TEXT)."""
    magic.codex_cell("", magic.fix_prompt(" ".join(args.text)))


# -- account, models, app-server -------------------------------------------------------------


def _account_line(status: Any) -> str:
    account = status.account
    kind = getattr(account, "type", None)
    if kind == "apiKey":
        return "API key"
    if kind == "chatgpt":
        plan = getattr(account.plan_type, "value", account.plan_type)
        return f"ChatGPT ({account.email or 'no email'}, plan {plan})"
    if kind is not None:
        return str(kind)
    if not status.requires_login:
        return f"none needed (the model provider {status.provider or '?'} needs no OpenAI login)"
    return "none: not logged in (%codex login)"


def _window(name: str, window: Any) -> str | None:
    if window is None:
        return None
    minutes = window.window_duration_mins
    span = f" of {minutes // 60} h" if minutes and minutes % 60 == 0 else (f" of {minutes} min" if minutes else "")
    resets = f", resets {time.strftime('%H:%M', time.localtime(window.resets_at))}" if window.resets_at else ""
    return f"{name} {window.used_percent}% used{span}{resets}"


def _rate_limits(status: Any) -> str:
    snapshot = status.rate_limits.rate_limits if status.rate_limits is not None else None
    if snapshot is None:
        return (
            f"not reported ({_clip(status.rate_limits_missing, 80)})" if status.rate_limits_missing else "not reported"
        )
    parts = [_window("primary", snapshot.primary), _window("secondary", snapshot.secondary)]
    return "; ".join(part for part in parts if part) or "not reported"


def _tokens(magic: Any, thread_id: str | None) -> str:
    result = magic.shell.user_ns.get("_codex_result")
    usage = getattr(result, "usage", None)
    if thread_id is None or usage is None or getattr(result, "thread_id", None) != thread_id:
        return "no turn in this kernel yet"
    total = usage.total
    window = f"; context window {usage.model_context_window:,}" if usage.model_context_window else ""
    return (
        f"{total.total_tokens:,} (input {total.input_tokens:,}, cached {total.cached_input_tokens:,}, "
        f"output {total.output_tokens:,}){window}"
    )


@_command("status")
@magic_arguments(name="codex status")
def _status(magic: Any, args: Namespace) -> None:
    """Show the app-server, the account, the settings in force, the thread, its tokens and the rate limits."""
    from ._session import DEFAULT_EFFORT

    session = _session(magic)
    status = session.account_status()
    if status.pid is not None:
        server = f"{status.version or '?'}, pid {status.pid}"
    else:
        server = f"{status.version or '?'}, not running (Codex has no credentials: %codex login)"
    thread_id = session.thread_id
    if magic.model:
        model = f"{magic.model} (CodexMagic.model)"
    elif session.thread_model:
        model = f"{session.thread_model} (the thread's)"
    else:
        model = f"{status.config_model} (Codex config)" if status.config_model else "Codex's default"
    thread_effort = session.thread_effort
    if magic.effort:
        effort = f"{magic.effort} (CodexMagic.effort)"
    elif thread_effort:
        effort = f"{thread_effort} (the thread's)"
    elif status.config_effort:
        effort = f"{status.config_effort} (Codex config)"
    else:
        effort = f"{DEFAULT_EFFORT} (Codex's default)"
    print(
        _pairs(
            [
                ("app-server", server),
                ("account", _account_line(status)),
                ("model", model),
                ("effort", effort),
                ("sandbox", f"{magic.sandbox} (CodexMagic.sandbox)"),
                ("approval", f"{magic.approval} (CodexMagic.approval)"),
                ("thread", thread_id or "none yet: the first %%codex cell starts one"),
                ("tokens", _tokens(magic, thread_id)),
                ("rate limits", _rate_limits(status)),
            ]
        )
    )


@_command("models")
@magic_arguments(name="codex models")
@argument("--all", action="store_true", help="Also the models the app-server hides.")
def _models(magic: Any, args: Namespace) -> None:
    """List the models the app-server offers, with their reasoning efforts and the default."""
    models = _session(magic).list_models(include_hidden=args.all)
    if not models:
        print("The app-server lists no models (a model provider of your own: name its model with --model).")
        return
    rows = []
    for model in models:
        efforts = [level.reasoning_effort.value for level in model.supported_reasoning_efforts]
        rows.append(
            [
                ("* " if model.is_default else "  ") + model.model,
                model.default_reasoning_effort.value,
                " ".join(efforts),
                _clip(model.description, 50),
            ]
        )
    print("Models of the app-server (* the default); %%codex --model NAME --effort LEVEL picks one:")
    print(table(["model", "default effort", "efforts", "description"], rows))


@_command("login")
@magic_arguments(name="codex login")
@argument(
    "--api-key-env",
    metavar="NAME",
    help="Log in with the API key in the environment variable NAME (held in memory, never shown). "
    "Without it: ChatGPT login with a device code.",
)
@argument(
    "--timeout",
    type=_seconds,
    default=_DEVICE_LOGIN_MINUTES * 60.0,
    metavar="SECONDS",
    help=f"How long to wait for the device login (default {_DEVICE_LOGIN_MINUTES * 60}).",
)
def _login(magic: Any, args: Namespace) -> None:
    """Log Codex in: with an API key from the environment, or with ChatGPT (a link and a code)."""
    session = _session(magic)
    if args.api_key_env is not None:
        name = args.api_key_env.strip()
        key = os.environ.get(name, "").strip() if name else ""
        if not key:
            raise UsageError(
                f"%codex login --api-key-env {_one_line(name)!r}: no such variable (or it is empty) in the "
                "kernel's environment: set it, e.g. with %env or before starting Jupyter, then log in again."
            )
        session.login_api_key(key)
        print(
            f"Logged in with the API key from ${name}: the app-server holds it in memory (nothing is written "
            "to disk); the next %%codex cell uses it."
        )
        return

    def show(url: str, code: str) -> None:
        print(f"To log in with ChatGPT, open {url} and enter the code {code}")
        print(f"(it is valid for {_DEVICE_LOGIN_MINUTES} minutes; interrupt the kernel to give up). Waiting...")
        sys.stdout.flush()

    try:
        account = session.login_device_code(show, timeout=args.timeout)
    except KeyboardInterrupt:
        raise CommandError("%codex login: the ChatGPT login was cancelled.") from None
    email = getattr(account, "email", None)
    print(f"Logged in to ChatGPT{f' as {email}' if email else ''}; the next %%codex cell uses this login.")


@_command("logout")
@magic_arguments(name="codex logout")
def _logout(magic: Any, args: Namespace) -> None:
    """Log Codex out (as `codex logout` does) and stop the app-server; the next cell checks the login again."""
    from ._session import _API_KEY_VARS

    if not _session(magic).logout():
        print("Codex was not logged in.")
        return
    print("Logged out.")
    for name in _API_KEY_VARS:
        if os.environ.get(name, "").strip():
            print(f"{name} is set in the kernel's environment: the next %%codex cell logs in with it again.")
            break


def _source(magic: Any, name: str) -> str:
    section = dict.get(magic.shell.config, type(magic).__name__) or {}
    if name in section:
        return "%config / config file"
    return "default" if getattr(magic, name) == magic.trait_defaults(name) else "set in code"


_CODEX_KEYS = (
    "model",
    "model_provider",
    "model_reasoning_effort",
    "sandbox_mode",
    "approval_policy",
    "approvals_reviewer",
)
# Settings codex_magic sends with every thread and turn, over Codex's own.
_SENT_INSTEAD = {
    "sandbox_mode": "CodexMagic.sandbox",
    "approval_policy": "CodexMagic.approval",
    "approvals_reviewer": "CodexMagic.approval",
}


def _origin(origins: dict[str, Any], key: str) -> str:
    where = (origins.get(key) or {}).get("name") or {}
    return str(where.get("file") or where.get("type") or "")


@_command("config")
@magic_arguments(name="codex config")
def _config(magic: Any, args: Namespace) -> None:
    """Show every CodexMagic setting (value and where it comes from) and the Codex configuration in force."""
    rows = [
        [name, _clip(repr(getattr(magic, name)), 50), _source(magic, name)]
        for name in sorted(magic.class_traits(config=True))
    ]
    print("CodexMagic settings (change them with %config CodexMagic.NAME = VALUE):")
    print(table(["setting", "value", "from"], rows))
    config, origins = _session(magic).codex_config(cwd=_cwd(magic))
    codex_rows = []
    for key in _CODEX_KEYS:
        value = config.get(key)
        shown = "(not set)" if value is None else _clip(str(value), 40)
        note = f"; {_SENT_INSTEAD[key]} is sent instead" if key in _SENT_INSTEAD else ""
        codex_rows.append([key, shown, (_origin(origins, key) or "Codex's default") + note])
    home = os.environ.get("CODEX_HOME") or os.path.join("~", ".codex")
    print(f"\nCodex configuration (CODEX_HOME {home}):")
    print(table(["key", "value", "from"], codex_rows))


@_command("stop")
@magic_arguments(name="codex stop")
def _stop(magic: Any, args: Namespace) -> None:
    """Stop the codex app-server; the next %%codex cell starts it again and resumes the thread."""
    session = _session(magic)
    shared = session.shared
    pid = session.stop()
    if pid is None:
        print("The codex app-server is not running.")
        return
    if shared:
        print(f"Disconnected from the shared codex app-server (pid {pid}, left running for other kernels).")
        return
    thread = f" and resumes thread {short_id(session.thread_id)}" if session.thread_id else ""
    print(f"Stopped the codex app-server (pid {pid}); the next %%codex cell starts it again{thread}.")


@_command("help")
@magic_arguments(name="codex help")
@argument("command", nargs="?", metavar="COMMAND", help="A command to show the options of.")
def _help(magic: Any, args: Namespace) -> None:
    """Show the commands, or one command's options."""
    if args.command is not None:
        _check_name(args.command)
        print(_help_text(COMMANDS[args.command]))
        return
    print(overview())


# -- results of stored turns ------------------------------------------------------------------


def _final_answer(turn: Any) -> str | None:
    from ._transcript import final_response

    return final_response([item.model_dump(by_alias=True, mode="json") for item in turn.items])


def result_from_turn(turn: Any, thread: Any) -> Any:
    """A stored turn (the SDK's ``Turn``) as a ``RunResult``, displayed like ``_codex_result``."""
    from openai_codex.types import ThreadItem

    from ._result import RunResult
    from ._text import redact_json

    # As a live turn shows them: the secrets of the kernel's environment hidden.
    items = [ThreadItem.model_validate(redact_json(item.model_dump(by_alias=True, mode="json"))) for item in turn.items]
    return RunResult(
        id=turn.id,
        status=turn.status,
        error=turn.error,
        started_at=turn.started_at,
        completed_at=turn.completed_at,
        duration_ms=turn.duration_ms,
        final_response=_final_answer(turn),
        items=items,
        usage=None,  # stored turns keep no token counts
        thread_id=thread.id,
        settings={"model": thread.model, "cwd": thread.cwd},
    )


class History(list):
    """The thread's turns as ``RunResult``s; displays as their transcripts, one after another."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        if cycle:
            printer.text(f"History([{len(self)} turns])")
            return
        from IPython.lib.pretty import pretty

        rule = "\n" + "─" * 40 + "\n"
        printer.text(rule.join(pretty(result) for result in self) if self else "No turns.")

    def _repr_html_(self) -> str:
        if not self:
            return "<p>No turns.</p>"
        return "<hr>".join(result._repr_html_() for result in self)

    def _repr_markdown_(self) -> str:
        return "\n\n---\n\n".join(result._repr_markdown_() for result in self) if self else "No turns."

    def __repr__(self) -> str:
        return f"History({list.__repr__(self)})"


# -- dispatch ---------------------------------------------------------------------------------


def _summary(handler: Handler) -> str:
    description = handler.parser.description or ""  # type: ignore[attr-defined]
    return description.strip().splitlines()[0].rstrip(".")


SUBCOMMANDS: dict[str, str] = {name: _summary(handler) for name, handler in COMMANDS.items()}


def _help_text(handler: Handler) -> str:
    """A command's help, without the reST ``::`` that magic_arguments puts before the usage."""
    text = handler.parser.format_help().strip()  # type: ignore[attr-defined]
    return text.removeprefix("::").strip()


def names() -> str:
    """The commands, for a one-line message."""
    return ", ".join(COMMANDS)


def overview() -> str:
    """``%codex help``: every command with its summary."""
    width = max(len(name) for name in COMMANDS)
    lines = [f"  %codex {name.ljust(width)}  {text}" for name, text in SUBCOMMANDS.items()]
    return "\n".join(
        [
            "%codex COMMAND [options]: the kernel's Codex thread, account and app-server.",
            *lines,
            (
                "%codex COMMAND --help shows a command's options. To ask Codex something, start a cell "
                "with %%codex; %%codex? lists its options."
            ),
        ]
    )


def documented(function: F) -> F:
    """Add the commands to the line magic's docstring, which ``%codex?`` shows."""
    lines = "\n".join(f"    %codex {name}: {text}" for name, text in SUBCOMMANDS.items())
    function.__doc__ = f"{function.__doc__ or ''}\n\n    Commands:\n\n{lines}\n"
    return function


def split(line: str) -> tuple[str, str]:
    """The command word and the rest of the line, as written."""
    words = line.strip().split(None, 1)
    return (words[0], words[1].strip() if len(words) > 1 else "") if words else ("help", "")


def asks_help(rest: str) -> bool:
    """Whether the words after a command ask for its help."""
    return rest.strip() in _HELP_FLAGS


def _check_name(command: str) -> None:
    if command not in COMMANDS:
        raise UsageError(
            f"%codex {_one_line(command)}: unknown command; the commands are {names()} "
            "(%codex help describes them). To ask Codex something, start a cell with %%codex."
        )


def run(magic: Any, command: str, rest: str) -> Any:
    """Parse ``%codex COMMAND REST`` with the command's parser and run it."""
    _check_name(command)
    handler = COMMANDS[command]
    parser = handler.parser  # type: ignore[attr-defined]
    try:
        argv = shlex.split(rest)
    except ValueError as error:  # "No closing quotation", "No escaped character"
        raise UsageError(
            f"%codex {command}: {str(error).lower()}: close the quote, or escape a lone quote with a backslash."
        ) from None
    if any(word in _HELP_FLAGS for word in argv):
        print(_help_text(handler))
        return None
    try:
        args = parser.parse_args(argv)
    except UsageError as error:  # the magic_arguments parser's errors
        usage = " ".join(parser.format_usage().split()).removeprefix(":: ")
        raise UsageError(f"%codex {command}: {_one_line(str(error))}; usage: {usage}") from None
    return _guarded(command, lambda: handler(magic, args))


def _guarded(command: str, call: Callable[[], Any]) -> Any:
    """Run a command; the app-server's refusals become one-line errors, a lost app-server a retry."""
    from openai_codex.errors import CodexError, TransportClosedError

    from . import _session

    for attempt in range(2):
        try:
            return call()
        except (TransportClosedError, BrokenPipeError) as error:
            # The app-server died since the last call: forget it; the retry starts a new one.
            how, _ = _session.get_session().lose()
            if attempt:
                raise AppServerError(
                    f"%codex {command}: lost the codex app-server ({how}): {_clip(str(error), 200)}"
                ) from None
        except _session.NoThread:
            raise UsageError(f"%codex {command}: no thread yet: the first %%codex cell starts one.") from None
        except CodexError as error:
            raise CommandError(f"%codex {command}: {_explain(error)}") from None
    raise AssertionError("unreachable")


def _explain(error: Exception) -> str:
    message = _clip(getattr(error, "message", None) or str(error), 300)
    if "active writer" in message:
        return f"{message} (another kernel or Codex process has the thread open: close it there first)"
    if "no rollout found" in message:
        return f"{message} (a thread can be resumed once its first turn has ended)"
    if "device code" in message:
        return (
            f"ChatGPT login failed: {message} (no connection to OpenAI's login service; "
            "or log in with %codex login --api-key-env NAME)"
        )
    return message
