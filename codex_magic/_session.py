"""The one module that owns the ``codex app-server`` process and this kernel's thread.

The process starts lazily at the first turn (never at import or ``%load_ext``),
runs in its own session so that the kernel's interrupt (SIGINT to the whole
process group) cannot kill it, and is closed on unload and at exit. If the
process dies, the next turn starts a new one and resumes the thread from its
rollout on disk. This module imports neither IPython nor ipywidgets.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from openai_codex import ImageInput, LocalImageInput, Sandbox, TextInput, Thread, TurnHandle
from openai_codex.client import CodexClient, CodexConfig
from openai_codex.errors import CodexRpcError, TransportClosedError
from openai_codex.generated.v2_all import (
    ChatgptDeviceCodeLoginAccountResponse,
    RateLimitSnapshot,
    ThreadInjectItemsResponse,
)
from openai_codex.types import ReasoningEffort
from pydantic import BaseModel, ConfigDict, Field

from . import _sdk, _shared
from ._errors import AppServerError, NotLoggedInError, TurnBusyError
from ._kernel_tools import tool_specs
from ._replay import HISTORY
from ._requests import APPROVAL_POLICIES, decline_response
from ._text import hide_secrets, plain

Json = dict[str, Any]
# Answers a server request (approval, question, tool call); may block for the user.
RequestSink = Callable[[str, Json], Json]

# Start the app-server in a new session, then exec it: Jupyter's interrupt sends
# SIGINT to the kernel's whole process group, which would otherwise kill it.
_SETSID = "import os,sys; os.setsid(); os.execv(sys.argv[1], sys.argv[1:])"

LOGIN_HELP = (
    "Codex has no credentials, so the cell was not sent. In a terminal, run one of "
    "`codex login` (ChatGPT in a browser), `codex login --device-auth` (ChatGPT on a "
    "remote machine) or `printenv OPENAI_API_KEY | codex login --with-api-key` (an API "
    "key); or set OPENAI_API_KEY in the kernel's environment. Then run the cell again."
)
_API_KEY_VARS = ("OPENAI_API_KEY", "CODEX_API_KEY")
# The app-server keeps an API key taken from the environment in memory only.
_EPHEMERAL_AUTH = 'cli_auth_credentials_store="ephemeral"'
_ACCOUNT_TIMEOUT = 15.0  # a ChatGPT login's account check may wait on the network


# Names that mark an environment variable, or a field of Codex's auth.json, as secret.
_SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD")


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The secrets a turn could print: such variables of the environment, and Codex's login."""
    values = [value for name, value in env.items() if any(word in name.upper() for word in _SECRET_WORDS)]
    home = env.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex")
    try:
        with open(os.path.join(home, "auth.json"), encoding="utf-8") as file:
            auth = json.load(file)
    except (OSError, ValueError):
        return values
    pending: list[Any] = [auth]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and any(word in str(key).upper() for word in _SECRET_WORDS):
                    values.append(value)
                elif isinstance(value, (dict, list)):
                    pending.append(value)
        elif isinstance(node, list):
            pending.extend(node)
    return values


class _AnyResponse(BaseModel):
    model_config = ConfigDict(extra="allow")


# Replies of the experimental thread/backgroundTerminals requests (the SDK has no models).
class _Terminal(BaseModel):
    model_config = ConfigDict(extra="ignore")
    item_id: str = Field(alias="itemId")
    process_id: str = Field(alias="processId")
    command: str = ""


class _Terminals(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: list[_Terminal] = []


class _Terminated(BaseModel):
    model_config = ConfigDict(extra="ignore")
    terminated: bool = False


T = TypeVar("T")


def _with_deadline(call: Callable[[], T], seconds: float, what: str) -> T:
    """Run a blocking SDK call with a deadline (the SDK's requests wait forever)."""
    box: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            box.append((True, call()))
        except BaseException as exc:  # handed to the caller below
            box.append((False, exc))

    worker = threading.Thread(target=run, name="codex-magic-call", daemon=True)
    worker.start()
    worker.join(seconds)
    if not box:
        raise AppServerError(f"the codex app-server did not answer {what} within {seconds:.0f} s")
    ok, value = box[0]
    if ok:
        return value
    raise value


DEFAULT_EFFORT = "medium"  # Codex's model_reasoning_effort when its config names none


# What each --approval choice sends: Codex's approval policy and who reviews requests.
_APPROVAL_PARAMS = {
    "on-request": {"approvalPolicy": "on-request", "approvalsReviewer": "user"},
    "untrusted": {"approvalPolicy": "untrusted", "approvalsReviewer": "user"},
    "never": {"approvalPolicy": "never", "approvalsReviewer": "user"},
    "auto-review": {"approvalPolicy": "on-request", "approvalsReviewer": "auto_review"},
}
assert set(_APPROVAL_PARAMS) == set(APPROVAL_POLICIES)

# --sandbox choices (the SDK's Sandbox values) as thread/start's SandboxMode on the wire;
# turns take the SDK's Sandbox, which maps them itself.
_SANDBOX_MODES = {"read-only": "read-only", "workspace-write": "workspace-write", "full-access": "danger-full-access"}

# Environment variables with these in their names are not passed to the commands Codex
# runs (they could print them into the notebook), unless the user's config.toml sets
# its own shell_environment_policy. Codex matches the patterns case-insensitively.
SECRET_PATTERNS = tuple(f"*{word}*" for word in _SECRET_WORDS)


class TurnNotStarted(Exception):
    """The turn was called off (a kernel interrupt) before its prompt was sent."""


@dataclass(frozen=True)
class TurnSettings:
    """The effective settings of one turn (cell options over kernel-wide defaults)."""

    cwd: str
    sandbox: str
    model: str | None = None
    effort: str | None = None
    approval: str = "on-request"
    # The developer instructions a new thread starts with (a running thread keeps its own).
    instructions: str | None = None


# What a codex app-server prints when it exits at start because another one is creating the
# state database of the same CODEX_HOME; and how many times a start is tried then.
_STATE_RACE = "failed to initialize sqlite state runtime"
STATE_RACE_TRIES = 5


class _Client(CodexClient):
    """The SDK's client, with the kernel's approval settings on every ``turn/start``.

    ``Thread.turn()`` can only send the SDK's ``ApprovalMode`` (deny_all, auto_review),
    which has no way to name the user as the reviewer; this is the one hook for it.
    """

    turn_approval: Json = {}
    shared: _shared.SharedServer | None = None  # the shared app-server this client's bridge reaches
    command_env: dict[str, str] = {}  # the kernel's environment, for a shared server's commands

    def request(self, method: str, params: Json | None, *, response_model: Any) -> Any:
        if method == "turn/start" and params is not None:
            params = {**params, **self.turn_approval}
        return super().request(method, params, response_model=response_model)


def bundled_codex() -> tuple[str, str | None]:
    """The pinned codex binary and its helper PATH dir, from openai-codex-cli-bin."""
    from codex_cli_bin import bundled_codex_path, bundled_path_dir

    path_dir = bundled_path_dir()
    return str(bundled_codex_path()), str(path_dir) if path_dir else None


class CodexSession:
    """One app-server process and one Codex thread, shared by the kernel's cells."""

    def __init__(self, *, startup_timeout: float = 30.0, app_server: str = "kernel", shared_idle: float = 0.0) -> None:
        self.startup_timeout = startup_timeout
        self.shared_idle = shared_idle  # seconds a shared server this kernel starts waits without kernels
        # "kernel": an app-server of this kernel's own; "shared": one per user and CODEX_HOME.
        self.app_server = app_server
        self._client: _Client | None = None
        self._thread: Thread | None = None
        self._thread_defaults: dict[str, str | None] = {}
        self._sent_effort: str | None = None  # the effort the thread's last turn ran with
        # The settings the last turn of _sent_to (a Thread object: a resumed thread is a new
        # one) ran with; a turn sends only those that differ.
        self._sent_to: Thread | None = None
        self._sent: dict[str, str | None] = {}
        self._thread_config: Json = {}  # config overrides every thread starts with
        self._efforts: dict[str, list[str]] | None = None  # model -> its reasoning efforts
        self._sink: RequestSink | None = None
        self.notices: list[str] = []
        self._owner: object | None = None  # the turn running on the thread
        # The thread's rollout file (its history on disk), from thread/start or thread/resume.
        self.rollout: str | None = None
        # Whether the thread sends raw model items: only a thread this app-server started
        # (thread/resume and thread/fork take no experimentalRawEvents).
        self.raw_events = False
        self._lock = threading.Lock()

    # -- process --------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the next turn can start at once: the app-server is up and the thread started."""
        return self._thread is not None and self.running

    @property
    def running(self) -> bool:
        """Whether the app-server process is up."""
        proc = _sdk.process(self._client)
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The app-server's process id, while it runs (a shared one's, not the bridge's)."""
        proc = _sdk.process(self._client)
        if proc is None:
            return None
        shared = self._client.shared if self._client is not None else None
        return shared.pid if shared is not None else proc.pid

    @property
    def shared(self) -> bool:
        """Whether the session talks to a shared app-server."""
        return self._client is not None and self._client.shared is not None

    def start(self) -> None:
        """Start the app-server if it is not running and check that Codex can log in."""
        if self.running:
            return
        # A command can print them (printenv, cat auth.json); they are hidden wherever
        # the turn is shown. The model still receives what commands print.
        hide_secrets([*secret_values(os.environ), *([self._login_key] if self._login_key else [])])
        self._discard_client()
        client = self._boot()
        try:
            # A key given to %codex login is used again when the app-server restarts.
            key = self._login_key or self._check_login(client)
            if key is not None:
                # The app-server does not read API keys from the environment: log in
                # with the key, held in memory, so the user's auth.json is untouched.
                client.close()
                client = self._boot(_EPHEMERAL_AUTH)
                login: Json = {"type": "apiKey", "apiKey": key}
                _with_deadline(lambda: client.account_login_start(login), self.startup_timeout, "the login")
                self.notices.append("using the API key from the environment (kept in memory)")
            self._thread_config = self._environment_policy(client)
        except BaseException:
            client.close()
            raise
        self._client = client

    def _boot(self, *config: str) -> _Client:
        # App-servers starting at once on a CODEX_HOME that has no state database yet race to
        # create it, and all but one exit at start (measured: 7 of 8): the next try finds it made.
        deadline = time.monotonic() + self.startup_timeout
        for attempt in range(STATE_RACE_TRIES):
            client = self._new_client(config)

            def boot(client: _Client = client) -> None:
                client.start()
                client.initialize()

            try:
                _with_deadline(boot, max(1.0, deadline - time.monotonic()), "at start")
                return client
            except AppServerError:
                client.close()
                raise
            except Exception as exc:
                client.close()  # also waits for the rest of its stderr, which the error may not hold yet
                said = f"{exc}\n{_sdk.stderr_tail(client)}"
                if _STATE_RACE in said and attempt + 1 < STATE_RACE_TRIES and time.monotonic() < deadline:
                    time.sleep(random.uniform(0.1, 0.4) * (attempt + 1))
                    continue
                raise AppServerError(f"the codex app-server could not start: {exc}") from exc
        raise AssertionError("unreachable")

    def _check_login(self, client: CodexClient) -> str | None:
        """Refuse within seconds when Codex has no credentials; never refuse a working setup.

        Returns an API key from the environment to log in with, if that is what is needed.
        """
        try:
            account = _with_deadline(
                lambda: client.account_read({"refreshToken": False}), _ACCOUNT_TIMEOUT, "the account check"
            )
        except CodexRpcError as exc:
            # A ChatGPT login is checked over the network; offline this fails although
            # the login exists, so the turn goes ahead.
            self.notices.append(f"could not verify the ChatGPT login ({exc.message}); continuing")
            return None
        if account.account is not None or not account.requires_openai_auth:
            return None  # logged in, or a model provider that needs no OpenAI login
        env = {**os.environ, **(client.config.env or {})}
        for name in _API_KEY_VARS:
            if env.get(name, "").strip():
                return env[name].strip()
        settings = self._read_config(client)
        if settings.get("openai_base_url") or settings.get("model_provider") not in (None, "openai"):
            return None  # the user's own endpoint, which may need no login
        raise NotLoggedInError(LOGIN_HELP)

    def _read_config(self, client: CodexClient) -> Json:
        """The configuration in force (config.toml and its layers), as the app-server reads it."""
        config = _with_deadline(
            lambda: client.request("config/read", {"includeLayers": False}, response_model=_AnyResponse),
            self.startup_timeout,
            "the config check",
        )
        return (config.model_extra or {}).get("config") or {}

    def _environment_policy(self, client: _Client) -> Json:
        """Thread config that keeps secrets out of commands, unless the user set a policy."""
        policy = self._read_config(client).get("shell_environment_policy") or {}
        if any(value is not None for value in policy.values()):
            return {}
        rules: Json = {"exclude": list(SECRET_PATTERNS)}
        if client.shared is not None:
            # Commands inherit the shared server's environment (the kernel's that started
            # it): give them this kernel's instead, less its secrets.
            env = client.command_env
            rules["set"] = {
                name: value for name, value in env.items() if not any(word in name.upper() for word in _SECRET_WORDS)
            }
        return {"shell_environment_policy": rules}

    def _new_client(self, config: tuple[str, ...] = ()) -> _Client:
        codex_bin, path_dir = bundled_codex()
        env = dict(os.environ)
        if path_dir:
            env["PATH"] = path_dir + os.pathsep + env.get("PATH", "")
        launch: tuple[str, ...] = (codex_bin,)
        for item in config:
            launch += ("--config", item)
        shared = None
        if self.app_server == "shared":
            path = _shared.socket_path(codex_bin=codex_bin, codex_home=_shared.codex_home(env), config=config)
            shared = _shared.ensure_server(
                launch=launch, path=path, env=env, timeout=self.startup_timeout, idle=self.shared_idle
            )
            # The SDK speaks stdio to a bridge, which speaks to the shared server's socket.
            launch = (sys.executable, "-m", "codex_magic._bridge", path)
            command_env, env = env, {**env, "PYTHONSAFEPATH": "1"}  # not the kernel's cwd on the bridge's sys.path
        else:
            launch += ("app-server", "--listen", "stdio://")
        if os.name == "posix":
            launch = (sys.executable, "-I", "-S", "-c", _SETSID, *launch)
        # CodexClient, not Codex: the public Codex class takes no approval handler,
        # and its client's default handler accepts every command and file change.
        client = _Client(
            CodexConfig(launch_args_override=launch, env=env, client_name="codex_magic"),
            approval_handler=self._on_server_request,
        )
        if shared is not None:
            client.shared, client.command_env = shared, command_env
        return client

    def _discard_client(self) -> None:
        client, self._client = self._client, None
        self._efforts = None
        if client is not None:
            try:
                client.close()
            except Exception:  # a dead process raises BrokenPipeError here
                pass
            if client.shared is not None:
                client.shared.leave()

    def lose(self) -> tuple[str, str]:
        """Forget an app-server that stopped: how it ended, and the tail of its log."""
        client = self._client
        proc = _sdk.process(client)
        how, log = "it stopped", ""
        shared = client.shared if client is not None else None
        if shared is not None:
            gone = shared.pid is not None and not _shared.alive(shared.pid)
            how = f"the shared app-server (pid {shared.pid}) stopped" if gone else "the connection to it closed"
            log = plain(_shared.log_tail(shared.socket))
        elif client is not None and proc is not None:
            try:
                code = proc.wait(timeout=1.0)
            except Exception:
                code = None
            if code is not None:
                how = f"killed by signal {-code}" if code < 0 else f"it exited with code {code}"
            log = plain(_sdk.stderr_tail(client))
        self._discard_client()
        return how, log

    def close(self) -> None:
        """Stop the app-server process; the thread id is kept for a later resume."""
        self._discard_client()

    # -- server requests ------------------------------------------------------------

    def set_request_sink(self, sink: RequestSink | None) -> None:
        """Route server requests (approvals, questions, tool calls) to ``sink`` for display."""
        self._sink = sink

    def _on_server_request(self, method: str, params: Json | None) -> Json:
        # Runs on the SDK's reader thread: an exception here would kill it, so
        # every failure becomes a decline.
        sink = self._sink
        if sink is None:
            return decline_response(method)
        try:
            response = sink(method, params or {})
        except Exception:
            return decline_response(method)
        return response if isinstance(response, dict) else decline_response(method)

    # -- thread ---------------------------------------------------------------------

    @property
    def thread_id(self) -> str | None:
        """The current thread's id, or None before the first turn."""
        return self._thread.id if self._thread else None

    @property
    def thread_model(self) -> str | None:
        """The model the thread runs on when a cell names none."""
        return self._thread_defaults.get("model")

    @property
    def thread_effort(self) -> str | None:
        """The reasoning effort the thread runs with when a cell names none."""
        return self._thread_defaults.get("effort") if self._thread is not None else None

    def new_thread(self) -> None:
        """Forget the current thread; the next turn starts a fresh one."""
        self._thread = None
        self._thread_defaults = {}
        self._sent_effort = None
        HISTORY.reset()

    def _inject_replayed(self, thread: Thread) -> str | None:
        """Put the replayed turns in the thread's model-visible history; a notice if that failed."""
        replayed = HISTORY.pending
        if not replayed:
            return None
        assert self._client is not None
        # thread/inject_items has no method in the SDK's public API; its request and
        # response types are the SDK's generated ones.
        try:
            self._client.request(
                "thread/inject_items",
                {"threadId": thread.id, "items": replayed},
                response_model=ThreadInjectItemsResponse,
            )
        except CodexRpcError as exc:
            HISTORY.pending = []
            return f"the replayed turns could not be added to the thread's history ({plain(exc.message)}); Codex does not see them"
        HISTORY.pending = []
        return None

    def _ensure_thread(self, settings: TurnSettings) -> tuple[Thread, str | None]:
        assert self._client is not None
        notice = None
        if self._thread is not None and _sdk.client_of(self._thread) is not self._client:
            try:
                resume: Json = {"cwd": settings.cwd}
                if self._thread_config:
                    resume["config"] = self._thread_config
                resumed = self._client.thread_resume(self._thread.id, resume)
                self._thread = Thread(self._client, resumed.thread.id)
                self.rollout, self.raw_events = resumed.thread.path, False
                return self._thread, "the codex app-server was restarted; the thread was resumed"
            except Exception as exc:
                notice = f"the codex app-server was restarted and the thread could not be resumed ({exc}); started a new thread"
                self._thread = None
        if self._thread is None:
            # No model here: a model given at thread start becomes the thread's default,
            # and --model is for one turn. Every turn names its model (see _start_turn).
            params: Json = {
                # Raw model items: they carry commands the app-server does not report (see
                # Transcript._raw). Not in the SDK's ThreadStartParams; the dict passes through.
                "experimentalRawEvents": True,
                "cwd": settings.cwd,
                "sandbox": _SANDBOX_MODES[settings.sandbox],
                **_APPROVAL_PARAMS[settings.approval],
            }
            if self._thread_config:
                params["config"] = self._thread_config
            if settings.instructions:
                params["developerInstructions"] = settings.instructions
            # The kernel tools, on every thread: tools are fixed at thread start and kept on
            # resume; a turn with the tools off has them refuse (see _kernel).
            params["dynamicTools"] = tool_specs()
            started = self._client.thread_start(params)
            self._thread = Thread(self._client, started.thread.id)
            self.rollout, self.raw_events = started.thread.path, True
            effort = started.reasoning_effort
            self._thread_defaults = {
                "model": started.model,
                "effort": effort.value if effort is not None else None,
            }
        return self._thread, notice

    def claim(self, owner: object) -> None:
        """Reserve the thread for one turn; a second turn while it runs is refused.

        Two ``turn/start`` requests on one thread make one turn of both prompts, whose
        items would reach both cells: one turn at a time, the second fails at once.
        """
        with self._lock:
            if self._owner is not None and self._owner is not owner:
                raise TurnBusyError(
                    "a %%codex turn is already running in this kernel: wait for it to end "
                    "(or stop it) before starting another"
                )
            self._owner = owner

    def release(self, owner: object) -> None:
        """Free the thread for the next turn (once the owner's turn has ended)."""
        with self._lock:
            if self._owner is owner:
                self._owner = None
                _sdk.discard_stray_notifications(self._client)

    def start_turn(
        self,
        prompt: str,
        settings: TurnSettings,
        *,
        images: Sequence[str] = (),
        output_schema: Json | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> tuple[TurnHandle, list[str]]:
        """Start a turn on the kernel's thread; returns its handle and what to tell the user.

        ``cancelled`` is asked just before the prompt is sent: when it says yes (a
        kernel interrupt during the app-server's start), TurnNotStarted is raised.
        """
        with self._lock:
            try:
                handle, notice = self._start_turn(prompt, settings, images, output_schema, cancelled)
            except (TransportClosedError, BrokenPipeError):
                # The process died since the last turn (it may not be reaped yet):
                # start a new one, which resumes the thread.
                self._discard_client()
                handle, notice = self._start_turn(prompt, settings, images, output_schema, cancelled)
            notices, self.notices = self.notices + ([notice] if notice else []), []
            return handle, notices

    def _start_turn(
        self,
        prompt: str,
        settings: TurnSettings,
        images: Sequence[str],
        output_schema: Json | None,
        cancelled: Callable[[], bool],
    ) -> tuple[TurnHandle, str | None]:
        self.start()
        thread, notice = self._ensure_thread(settings)
        notice = self._inject_replayed(thread) or notice
        # Settings passed to a turn stick to the thread, so every turn passes all
        # of them: a one-off --model must not leak into the next cell.
        model = settings.model or self._thread_defaults.get("model")
        effort = settings.effort or self._thread_defaults.get("effort")
        if effort is None and self._sent_effort:
            # An effort sent once sticks to the thread; Codex reported no default to go
            # back to, so go back to Codex's documented default.
            effort = DEFAULT_EFFORT
        if settings.effort and model:
            notice = self._effort_notice(model, settings.effort) or notice
        assert self._client is not None
        wanted = {"cwd": settings.cwd, "model": model, "effort": effort, "sandbox": settings.sandbox}
        wanted["approval"] = settings.approval
        # Only what differs from the thread's last turn is sent: the rest sticks to the
        # thread, and each setting sent costs the app-server a new turn context (2 ms).
        last = self._sent if self._sent_to is thread else {}
        send = {key: value for key, value in wanted.items() if value is not None and last.get(key) != value}
        self._client.turn_approval = _APPROVAL_PARAMS[settings.approval] if "approval" in send else {}
        if cancelled():
            raise TurnNotStarted("interrupted before the prompt was sent")
        handle = thread.turn(
            [TextInput(prompt), *map(_image_input, images)] if images else prompt,
            output_schema=output_schema,
            cwd=send.get("cwd"),
            model=send.get("model"),
            effort=ReasoningEffort(send["effort"]) if send.get("effort") else None,
            sandbox=Sandbox(send["sandbox"]) if "sandbox" in send else None,
        )
        self._sent_effort = effort
        self._sent_to, self._sent = thread, wanted
        return handle, notice

    def _effort_notice(self, model: str, effort: str) -> str | None:
        """What to tell the user when the model does not offer the reasoning effort asked for."""
        if self._efforts is None:
            client = self._client
            assert client is not None
            try:
                listed = _with_deadline(lambda: client.model_list(include_hidden=True), 5.0, "the model list")
                self._efforts = {
                    entry.model: [level.reasoning_effort.value for level in entry.supported_reasoning_efforts]
                    for entry in listed.data
                }
            except Exception:
                self._efforts = {}
        offered = self._efforts.get(model)
        if offered is None:
            if effort != "ultra":
                return None  # a model of the user's own provider: its levels are unknown
            offering = [name for name, levels in self._efforts.items() if "ultra" in levels]
            return (
                f"effort 'ultra' is not a level {model} offers (it is for {', '.join(offering) or 'listed models'});"
                " Codex sends its default effort instead"
            )
        if effort in offered:
            return None
        return f"{model} does not offer effort {effort!r}: it offers {', '.join(offered)} (Codex may adjust or the model may refuse it)"

    def interrupt(self, handle: TurnHandle, *, timeout: float = 1.0) -> bool:
        """Ask the app-server to interrupt a turn; False if it did not answer in time."""
        done = threading.Event()

        def call() -> None:
            try:
                handle.interrupt()
            except Exception:
                pass
            done.set()

        threading.Thread(target=call, name="codex-magic-interrupt", daemon=True).start()
        return done.wait(timeout)

    def stop_commands(self, thread_id: str, item_ids: set[str], *, timeout: float = 2.0) -> list[str]:
        """Terminate the thread's background terminals running these command items.

        ``turn/interrupt`` leaves the commands of the interrupted turn running; the
        app-server lists them by item (``thread/backgroundTerminals``, experimental
        API, which the SDK's client enables). Terminals of other items are left alone:
        a server an earlier turn started on purpose keeps running. Returns the
        commands stopped; raises AppServerError if the app-server does not answer.
        """
        client = self._client
        if client is None or not item_ids:
            return []

        def stop() -> list[str]:
            listed = client.request(
                "thread/backgroundTerminals/list", {"threadId": thread_id}, response_model=_Terminals
            )
            stopped = []
            for terminal in listed.data:
                if terminal.item_id in item_ids:
                    done = client.request(
                        "thread/backgroundTerminals/terminate",
                        {"threadId": thread_id, "processId": terminal.process_id},
                        response_model=_Terminated,
                    )
                    if done.terminated:
                        stopped.append(terminal.command)
            return stopped

        return _with_deadline(stop, timeout, "stopping the turn's commands")

    # -- %codex subcommands ---------------------------------------------------------

    _login_key: str | None = None  # the API key %codex login gave: in memory, used again at restarts

    @property
    def app_server_version(self) -> str | None:
        """The running app-server's version, from its initialize reply."""
        # Private: the SDK keeps the version the app-server reported but has no accessor.
        return self._client._runtime_version if self.running and self._client is not None else None

    def hold(self, what: str) -> _Hold:
        """Keep turns off the thread while a command changes it; TurnBusyError while one runs."""
        return _Hold(self, what)

    def reader(self) -> _Reader:
        """A client to read with: the session's app-server, or a short-lived one without a login."""
        return _Reader(self)

    def _request(self, call: Callable[[], T], what: str) -> T:
        return _with_deadline(call, self.startup_timeout, what)

    def list_threads(self, *, cwd: str | None, limit: int, count_turns: bool = False) -> list[ThreadSummary]:
        """Stored threads, the most recently updated first (of one directory unless cwd is None)."""
        with self.reader() as client:
            params: Json = {"limit": limit, "sortKey": "updated_at"}
            if cwd is not None:
                params["cwd"] = cwd
            listed = self._request(lambda: client.thread_list(params), "the thread list")
            threads = [ThreadSummary.of(thread) for thread in listed.data]
            if not count_turns:
                return threads
            # The list carries no turns: read each thread's (from its rollout).
            return [dataclasses.replace(thread, turns=len(self._turns_of(client, thread.id))) for thread in threads]

    def _turns_of(self, client: _Client, thread_id: str) -> list[Any]:
        read = self._request(lambda: client.thread_read(thread_id, include_turns=True), "reading a thread")
        return list(read.thread.turns)

    def read_turns(self, thread_id: str) -> ThreadDetails:
        """A stored thread with its turns."""
        with self.reader() as client:
            read = self._request(lambda: client.thread_read(thread_id, include_turns=True), "reading the thread")
            return ThreadDetails(ThreadSummary.of(read.thread), list(read.thread.turns))

    def _adopt(self, client: _Client, thread: Any, model: str | None, effort: Any) -> None:
        self._thread = Thread(client, thread.id)
        self.rollout, self.raw_events = thread.path, False
        # Recordings made on this thread build on its id (its earlier turns are not recorded here).
        HISTORY.reset(f"thread {thread.id}")
        self._thread_defaults = {"model": model, "effort": effort.value if effort is not None else None}
        self._sent_effort = None

    def resume_thread(self, thread_id: str, *, cwd: str) -> ThreadDetails:
        """Make a stored thread the kernel's thread (its first turn must have ended)."""
        with self.hold("resume a thread"):
            self.start()
            client = self._client
            assert client is not None
            params: Json = {"cwd": cwd, **({"config": self._thread_config} if self._thread_config else {})}
            resumed = self._request(lambda: client.thread_resume(thread_id, params), "the resume")
            self._adopt(client, resumed.thread, resumed.model, resumed.reasoning_effort)
        details = self.read_turns(resumed.thread.id)
        return details

    def _loaded_thread(self, cwd: str) -> Thread:
        """The kernel's thread, loaded in the running app-server (resumed after a restart)."""
        self.start()
        client = self._client
        assert client is not None
        if self._thread is None:
            raise NoThread("no thread yet")
        if _sdk.client_of(self._thread) is not client:
            params: Json = {"cwd": cwd, **({"config": self._thread_config} if self._thread_config else {})}
            thread_id = self._thread.id
            resumed = self._request(lambda: client.thread_resume(thread_id, params), "the resume")
            self._adopt(client, resumed.thread, resumed.model, resumed.reasoning_effort)
        return self._thread

    def fork_thread(self, *, cwd: str) -> tuple[str, str]:
        """Start a thread with the current one's history and make it the kernel's; (old id, new id)."""
        with self.hold("fork the thread"):
            source = self._loaded_thread(cwd)
            client = self._client
            assert client is not None
            params: Json = {"cwd": cwd, **({"config": self._thread_config} if self._thread_config else {})}
            forked = self._request(lambda: client.thread_fork(source.id, params), "the fork")
            self._adopt(client, forked.thread, forked.model, forked.reasoning_effort)
            return source.id, forked.thread.id

    def name_thread(self, name: str) -> str:
        """Give the current thread a name; its id."""
        if self._thread is None:
            raise NoThread("no thread yet")
        thread_id = self._thread.id
        with self.reader() as client:
            self._request(lambda: client.thread_set_name(thread_id, name), "naming the thread")
        return thread_id

    def compact_thread(self, *, cwd: str, timeout: float) -> Any:
        """Compact the current thread's context and wait for it; the compaction turn."""
        with self.hold("compact the thread"):
            thread = self._loaded_thread(cwd)
            client = self._client
            assert client is not None
            before = len(
                self._request(lambda: client.thread_read(thread.id, include_turns=True), "reading").thread.turns
            )
            self._request(lambda: client.thread_compact(thread.id), "the compaction")
            # The compaction runs as a turn the SDK does not route to us: watch the thread.
            deadline = time.monotonic() + timeout
            while True:
                read = self._request(lambda: client.thread_read(thread.id, include_turns=True), "reading")
                turns = read.thread.turns
                if (
                    len(turns) > before
                    and turns[-1].status.value != "inProgress"
                    and read.thread.status.root.type != "active"
                ):
                    return turns[-1]
                if time.monotonic() > deadline:
                    raise AppServerError(f"the compaction did not end within {timeout:.0f} s")
                time.sleep(0.05)

    def archive_thread(self) -> str:
        """Archive the current thread; the next turn starts a new one. Its id."""
        with self.hold("archive the thread"):
            if self._thread is None:
                raise NoThread("no thread yet")
            thread_id = self._thread.id
            self.start()
            client = self._client
            assert client is not None
            self._request(lambda: client.thread_archive(thread_id), "the archive")
            self.new_thread()
            return thread_id

    def account_status(self) -> AccountStatus:
        """The account, the app-server and the rate limits, as the app-server reports them."""
        with self.reader() as client:
            account = self._request(lambda: client.account_read({"refreshToken": False}), "the account check")
            config = self._read_config(client)
            limits, why = None, None
            try:
                limits = self._request(
                    lambda: client.request("account/rateLimits/read", None, response_model=_RateLimits),
                    "the rate limits",
                )
            except CodexRpcError as exc:
                why = exc.message
            return AccountStatus(
                account=account.account.root if account.account is not None else None,
                requires_login=account.requires_openai_auth,
                provider=config.get("model_provider"),
                config_model=config.get("model"),
                config_effort=config.get("model_reasoning_effort"),
                version=client._runtime_version,  # private: see app_server_version
                pid=self.pid if client is self._client else None,
                rate_limits=limits,
                rate_limits_missing=why,
            )

    def list_models(self, *, include_hidden: bool = False) -> list[Any]:
        """The app-server's models (the SDK's Model entries)."""
        with self.reader() as client:
            return list(self._request(lambda: client.model_list(include_hidden=include_hidden), "the model list").data)

    def codex_config(self, *, cwd: str) -> tuple[Json, Json]:
        """Codex's configuration in force for cwd and where each key comes from (config/read)."""
        with self.reader() as client:
            read = self._request(
                lambda: client.request("config/read", {"includeLayers": True, "cwd": cwd}, response_model=_AnyResponse),
                "reading the configuration",
            )
            extra = read.model_extra or {}
            return extra.get("config") or {}, extra.get("origins") or {}

    def login_api_key(self, key: str) -> None:
        """Log in with an API key, held in memory by a new app-server; the thread resumes."""
        with self.hold("log in"):
            hide_secrets([*secret_values(os.environ), key])
            client = self._boot(_EPHEMERAL_AUTH)
            try:
                login: Json = {"type": "apiKey", "apiKey": key}
                self._request(lambda: client.account_login_start(login), "the login")
                policy = self._environment_policy(client)
            except BaseException:
                client.close()
                raise
            self._discard_client()
            self._client, self._thread_config, self._login_key = client, policy, key

    def login_device_code(self, show: Callable[[str, str], None], *, timeout: float) -> Any:
        """ChatGPT device-code login: ``show(url, code)``, then wait for the user; the account.

        The login is stored as ``codex login --device-auth`` stores it. The new app-server
        becomes the session's once the login succeeded; else it is closed.
        """
        with self.hold("log in"):
            client = self._boot()
            try:
                started = self._request(
                    lambda: client.account_login_start({"type": "chatgptDeviceCode"}), "the device login"
                ).root
                if not isinstance(started, ChatgptDeviceCodeLoginAccountResponse):
                    raise AppServerError(f"the app-server answered the device login with {type(started).__name__}")
                show(started.verification_url, started.user_code)
                try:
                    done = _with_deadline(
                        lambda: client.wait_for_login_completed(started.login_id), timeout, "the device login"
                    )
                except BaseException:  # a timeout or Ctrl-C: stop the login before closing
                    try:
                        _with_deadline(lambda: client.account_login_cancel(started.login_id), 5.0, "the cancel")
                    except Exception:
                        pass
                    raise
                if not done.success:
                    raise AppServerError(f"the ChatGPT login failed: {done.error or 'no reason given'}")
                account = self._request(lambda: client.account_read({"refreshToken": False}), "the account check")
                policy = self._environment_policy(client)
            except BaseException:
                client.close()
                raise
            self._discard_client()
            self._client, self._thread_config, self._login_key = client, policy, None
            return account.account.root if account.account is not None else None

    def logout(self) -> bool:
        """Log Codex out and stop the app-server, so the next turn checks the login again.

        False if there was no login to end.
        """
        with self.hold("log out"):
            self._login_key = None
            try:
                self.start()
            except NotLoggedInError:
                return False
            client = self._client
            assert client is not None
            self._request(client.account_logout, "the logout")
            self._discard_client()
            return True

    def stop(self) -> int | None:
        """Stop the app-server (the next turn starts it again and resumes the thread); its pid."""
        with self.hold("stop the app-server"):
            pid = self.pid if self.running else None
            self.close()
            return pid


class NoThread(Exception):
    """A command needs the kernel's thread, and there is none yet."""


class _Hold:
    """``CodexSession.hold``: the thread reserved for one command, as a turn reserves it."""

    def __init__(self, session: CodexSession, what: str) -> None:
        self.session, self.what = session, what

    def __enter__(self) -> None:
        with self.session._lock:
            if self.session._owner is not None:
                raise TurnBusyError(
                    f"a %%codex turn is running in this kernel: {self.what} once it has ended (or stop it)"
                )
            self.session._owner = self

    def __exit__(self, *exc: object) -> None:
        self.session.release(self)


class _Reader:
    """``CodexSession.reader``: the session's client, or without credentials a short-lived one."""

    def __init__(self, session: CodexSession) -> None:
        self.session = session
        self.temporary: _Client | None = None

    def __enter__(self) -> _Client:
        try:
            self.session.start()
        except NotLoggedInError:
            # Reading threads, models or the account needs no login; the session's
            # app-server stays off, so the next turn still says how to log in.
            self.temporary = self.session._boot()
            return self.temporary
        assert self.session._client is not None
        return self.session._client

    def __exit__(self, *exc: object) -> None:
        if self.temporary is not None:
            self.temporary.close()


class _RateLimits(BaseModel):
    """The reply of ``account/rateLimits/read`` (the parts shown)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    rate_limits: RateLimitSnapshot | None = Field(None, alias="rateLimits")


@dataclass(frozen=True)
class ThreadSummary:
    """A stored thread, as ``%codex threads`` lists it."""

    id: str
    name: str | None
    preview: str
    cwd: str
    updated_at: int | None
    model: str | None
    turns: int | None = None  # counted only when asked

    @classmethod
    def of(cls, thread: Any) -> ThreadSummary:
        return cls(
            id=thread.id,
            name=thread.name,
            preview=thread.preview or "",
            cwd=str(thread.cwd.root if hasattr(thread.cwd, "root") else thread.cwd),
            updated_at=thread.updated_at,
            model=thread.model,
        )


@dataclass(frozen=True)
class ThreadDetails:
    """A stored thread and its turns (the SDK's Turn models)."""

    thread: ThreadSummary
    turns: list[Any]


@dataclass(frozen=True)
class AccountStatus:
    """What ``%codex status`` reports of the account and the app-server."""

    account: Any  # the SDK's ApiKeyAccount / ChatgptAccount / AmazonBedrockAccount, or None
    requires_login: bool
    provider: str | None
    config_model: str | None
    config_effort: str | None
    version: str | None
    pid: int | None  # None: a short-lived app-server answered (no login)
    rate_limits: _RateLimits | None
    rate_limits_missing: str | None


def _image_input(image: str) -> ImageInput | LocalImageInput:
    """An image sent with a prompt: a URL (http(s) or data:) as is, else a local file."""
    if image.startswith(("data:", "http://", "https://")):
        return ImageInput(image)
    return LocalImageInput(image)


_session: CodexSession | None = None


def get_session(
    *, startup_timeout: float | None = None, app_server: str | None = None, shared_idle: float | None = None
) -> CodexSession:
    """The kernel's session, created on first use and closed at exit.

    ``app_server`` ("kernel" or "shared") applies when no app-server is connected (a new
    session, or after ``%codex stop``).
    """
    global _session
    if _session is None:
        _session = CodexSession()
        atexit.register(close_session)
    if startup_timeout is not None:
        _session.startup_timeout = startup_timeout
    if app_server is not None and _session._client is None:
        _session.app_server = app_server
    if shared_idle is not None:
        _session.shared_idle = shared_idle
    return _session


def current_thread_id() -> str | None:
    """The kernel's thread id, or None before the first turn."""
    return _session.thread_id if _session is not None else None


def close_session() -> None:
    """Stop the app-server and forget the kernel's thread (unload, exit)."""
    global _session
    session, _session = _session, None
    if session is not None:
        session.close()
