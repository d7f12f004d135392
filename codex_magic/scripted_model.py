"""A scripted, offline stand-in for the OpenAI Responses API.

``ScriptedModel`` is a small HTTP server on 127.0.0.1 that answers every
``POST /v1/responses`` with the next entry of a script you write.  The real
``codex app-server`` talks to it exactly as it talks to OpenAI: it streams the
scripted replies into agent messages and reasoning, runs the shell commands the
script asks for, and sends their output back in its next request.  No network,
no account and no API key are involved, so notebooks and tests that use
``%%codex`` run offline, fast and deterministically.

In a notebook
-------------
Start the built-in demo *before* the first ``%%codex`` cell (the app-server
reads ``CODEX_HOME`` when it starts)::

    from codex_magic.scripted_model import serve_demo
    demo = serve_demo()    # writes a config.toml and sets os.environ["CODEX_HOME"]
    %load_ext codex_magic

Then run three turns; the demo model answers them in this order, whatever the
questions say (see ``demo_script``)::

    %%codex
    What does this extension do?

    %%codex
    Look at the files in this directory.

    %%codex
    Thanks. Do you remember what I asked before?

The first answer streams word by word; the second turn shows a reasoning
summary, runs ``pwd && ls -1 | head -n 10`` in a real shell and summarizes its
output; the third shows that the conversation carries on.  ``demo.requests``
holds what Codex sent, and ``demo.close()`` stops the server.  Use your own
script the same way::

    import os, tempfile
    from codex_magic.scripted_model import ScriptedModel, message, write_codex_config

    model = ScriptedModel([message("Hello from the script.", deltas=True)]).start()
    home = tempfile.mkdtemp()
    write_codex_config(home, model.url)
    os.environ["CODEX_HOME"] = home

In pytest
---------
::

    from openai_codex import ApprovalMode, Codex, CodexConfig, Sandbox
    from codex_magic.scripted_model import (
        ScriptedModel, exec_command, message, reasoning, write_codex_config,
    )

    def test_lists_files(tmp_path):
        script = [
            [reasoning("List the files first."), exec_command("ls -1")],
            lambda request: message("I saw: " + request.function_call_outputs()[-1]),
        ]
        with ScriptedModel(script) as model:
            home = write_codex_config(tmp_path / "home", model.url).parent
            config = CodexConfig(cwd=str(tmp_path), env={"CODEX_HOME": str(home)})
            with Codex(config) as codex:
                thread = codex.thread_start(
                    approval_mode=ApprovalMode.deny_all, sandbox=Sandbox.workspace_write
                )
                result = thread.run("What is in this directory?")
        assert result.final_response.startswith("I saw:")
        assert len(model.requests) == 2

Scripts
-------
A script is a list; entry *i* answers the *i*-th ``POST /v1/responses``.  An
entry is one of:

* a ``Reply``: output items plus behaviour (HTTP status, pacing, failures);
* one output item, meaning a ``Reply`` holding just that item:
  ``message(...)``, ``reasoning(...)``, ``function_call(...)``,
  ``exec_command(...)``, or a raw Responses output item ``dict``;
* a ``str``, short for ``message(text)``;
* a list of items, meaning one ``Reply`` with several output items, e.g.
  ``[reasoning("Check first."), exec_command("ls")]``;
* a callable ``(request: ScriptedRequest) -> entry`` that builds the answer
  from the request Codex sent (its conversation, tool outputs, headers).

A reply that ends in a function call (such as ``exec_command``) makes Codex run
the tool and call the model again within the same turn, so it must be followed
by an entry for that follow-up request.  A turn ends with a reply that holds
only messages or reasoning.  Once the script is used up, every further request
gets HTTP 500 with the message ``scripted model: script exhausted after N
replies`` (also logged), so a missing entry fails the turn instead of hanging
it.  ``ScriptedModel.add`` appends entries while the server runs.

Failure simulation
------------------
With ``write_codex_config``'s defaults (no retries, 10 s idle timeout), the
app-server reacts like this; all of these end in ``turn/completed`` with status
``failed`` after an ``error`` notification:

* ``http_error(500)``: fails in well under a second.  Codex replaces the
  message of a 5xx reply with its own ("We're currently experiencing high
  demand..."); a 401 or 400 reply's message does reach the error text.
* ``Reply(items, break_after=n)``: sends ``n`` SSE events, then ends the
  response mid-body (a broken stream): "stream disconnected before completion".
* ``Reply(items, stall_after=n)``: sends ``n`` events, then holds the
  connection silently until Codex's ``stream_idle_timeout_ms`` expires
  ("idle timeout waiting for SSE"), the client disconnects, or the server closes.
* ``Reply(items, failed=True, error_message=..., error_code=...)``: the stream
  ends with ``response.failed`` ("The server had an error"; the code
  ``context_length_exceeded`` becomes Codex's "ran out of room" error).
* ``Reply(items, delay=0.2)``: a slow but healthy stream, 0.2 s between events;
  useful to test interrupts and live rendering.

With ``request_max_retries``/``stream_max_retries`` above 0, Codex retries
most of these failures (never a 429), quietly and with a short backoff, and
each retry consumes the next script entry.

Command line and JSON scripts
-----------------------------
::

    python -m codex_magic.scripted_model --codex-home DIR [--port N] [--demo | --script FILE.json]

writes ``DIR/config.toml``, prints the URL and an ``export CODEX_HOME=DIR``
line, and serves until Ctrl-C (the demo script is the default).  A JSON script
is a list of entries:

* ``"text"`` or ``{"message": "text", "deltas": true, "chunk": 8, "phase": "final_answer"}``
* ``{"reasoning": "summary" | ["part", ...], "deltas": true}``
* ``{"exec_command": "ls -1", "args": {"workdir": "sub"}, "call_id": "call_1"}``
* ``{"function_call": "name", "arguments": {...}, "call_id": "call_1"}``
* ``{"http_error": 500, "message": "...", "type": "...", "code": "..."}``
* ``{"items": [item, ...]}`` with items in the forms above (no reply keys)

Any entry except ``http_error`` may also carry the reply keys ``delay``,
``stall_after``, ``break_after``, ``failed`` and ``usage``
(``{"input_tokens": 10, "output_tokens": 5}``).
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import json
import logging
import os
import re
import select
import shlex
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, TypeAlias

__all__ = [
    "DEMO_COMMAND",
    "Entry",
    "FunctionCallItem",
    "MessageItem",
    "OutputItem",
    "ReasoningItem",
    "Reply",
    "ScriptedModel",
    "ScriptedRequest",
    "Usage",
    "apply_patch",
    "demo_script",
    "exec_command",
    "function_call",
    "http_error",
    "load_script",
    "main",
    "message",
    "reasoning",
    "serve_demo",
    "write_codex_config",
]

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# The demo script served by serve_demo() and the CLI's --demo.

DEMO_ANSWER = (
    "`%%codex` runs OpenAI's Codex agent from a notebook cell: the cell's text is "
    "your request, and Codex's reply, its reasoning and the commands it runs "
    "stream live under the cell. Each `%%codex` cell is one turn of a conversation "
    "that continues from cell to cell, working in the notebook's directory."
)
DEMO_REASONING = "The user asks what is in this directory, so I will list it before answering."
DEMO_COMMAND = "pwd && ls -1 | head -n 10"
DEMO_CLOSING = (
    "That listing came from a real shell: Codex ran the command the model asked for and sent the output back."
)
DEMO_FOLLOW_UP = (
    "Yes: this turn continues the same conversation, so the model received the "
    "whole history, including your earlier request {previous}. The scripted demo "
    "ends here; restart the kernel without it to use a real model."
)
# Short pauses between streamed events make the demo visibly stream.
DEMO_DELAY = 0.015


def demo_script() -> list[Entry]:
    """Return the demo script: four replies for three turns.

    1. a streamed answer about ``%%codex`` (``DEMO_ANSWER``);
    2. a streamed reasoning summary and ``exec_command(DEMO_COMMAND)``;
    3. within the same turn, a summary of the listing the command returned;
    4. a streamed follow-up that quotes the previous user request.
    """
    return [
        Reply([message(DEMO_ANSWER, deltas=True)], delay=DEMO_DELAY),
        Reply(
            [
                reasoning(DEMO_REASONING, deltas=True),
                # login=False keeps shell start-up noise from profiles out of the output.
                exec_command(DEMO_COMMAND, login=False),
            ],
            delay=DEMO_DELAY,
        ),
        _demo_summary,
        _demo_follow_up,
    ]


def _demo_summary(request: ScriptedRequest) -> Reply:
    """Summarize the listing that the demo command sent back."""
    outputs = request.function_call_outputs()
    lines = _command_output(outputs[-1]).splitlines() if outputs else []
    lines = [line for line in lines if line.strip()]
    if not lines:
        text = f"The command printed nothing. {DEMO_CLOSING}"
    else:
        cwd, names = lines[0], lines[1:]
        if not names:
            found = "it is empty"
        else:
            found = "it contains " + ", ".join(f"`{name}`" for name in names)
            if len(names) >= 10:  # DEMO_COMMAND shows at most ten entries
                found += " and perhaps more"
        text = f"I listed `{cwd}`: {found}. {DEMO_CLOSING}"
    return Reply([message(text, deltas=True, phase="final_answer")], delay=DEMO_DELAY)


def _demo_follow_up(request: ScriptedRequest) -> Reply:
    """Answer the third turn by quoting an earlier user request."""
    # Codex injects context (environment, AGENTS.md) as user messages starting with '<' or '#'.
    typed = [text for text in request.input_texts("user") if not text.lstrip().startswith(("<", "#"))]
    previous = _quote(typed[-2]) if len(typed) >= 2 else "(none found)"
    text = DEMO_FOLLOW_UP.format(previous=previous)
    return Reply([message(text, deltas=True, phase="final_answer")], delay=DEMO_DELAY)


def _command_output(tool_output: str) -> str:
    """Return the command's own output from an exec_command tool result."""
    # Codex prefixes the output with a header (chunk id, wall time, exit code) ending in "Output:".
    _, marker, output = tool_output.partition("Output:\n")
    return output if marker else tool_output


def _quote(text: str, limit: int = 80) -> str:
    """Quote a user text, shortened to one line of at most ``limit`` characters."""
    line = " ".join(text.split()).removesuffix(".")
    return f'"{line if len(line) <= limit else line[: limit - 1] + "…"}"'


# --------------------------------------------------------------------------
# Output items.

Json: TypeAlias = dict[str, Any]
Phase: TypeAlias = Literal["commentary", "final_answer"]


@dataclass(frozen=True)
class MessageItem:
    """An assistant message; build it with ``message()``."""

    text: str
    _: KW_ONLY
    deltas: bool = False
    chunk: int | None = None
    phase: Phase | None = None

    def __post_init__(self) -> None:
        _check_chunk(self.chunk)

    def _events(self, ids: _Ids, output_index: int) -> list[Json]:
        item_id = ids.next("msg")
        item: Json = {
            "type": "message",
            "id": item_id,
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": self.text, "annotations": []}],
        }
        if self.phase is not None:
            item["phase"] = self.phase
        if not self.deltas:
            return [_item_done(item, output_index)]
        return [
            _item_added({**item, "status": "in_progress", "content": []}, output_index),
            *(
                _delta(
                    "response.output_text.delta",
                    item_id,
                    output_index,
                    content_index=0,
                    delta=piece,
                )
                for piece in _split(self.text, self.chunk)
            ),
            _item_done(item, output_index),
        ]


@dataclass(frozen=True)
class ReasoningItem:
    """A reasoning item with one summary part per string; build it with ``reasoning()``."""

    summary: Sequence[str]
    _: KW_ONLY
    deltas: bool = False
    chunk: int | None = None

    def __post_init__(self) -> None:
        _check_chunk(self.chunk)
        parts = (self.summary,) if isinstance(self.summary, str) else tuple(self.summary)
        object.__setattr__(self, "summary", parts)

    def _events(self, ids: _Ids, output_index: int) -> list[Json]:
        item_id = ids.next("rs")
        item: Json = {
            "type": "reasoning",
            "id": item_id,
            "summary": [{"type": "summary_text", "text": part} for part in self.summary],
        }
        if not self.deltas:
            return [_item_done(item, output_index)]
        events = [_item_added({**item, "summary": []}, output_index)]
        for index, part in enumerate(self.summary):
            events.append(
                _delta(
                    "response.reasoning_summary_part.added",
                    item_id,
                    output_index,
                    summary_index=index,
                    part={"type": "summary_text", "text": ""},
                )
            )
            events.extend(
                _delta(
                    "response.reasoning_summary_text.delta",
                    item_id,
                    output_index,
                    summary_index=index,
                    delta=piece,
                )
                for piece in _split(part, self.chunk)
            )
        events.append(_item_done(item, output_index))
        return events


@dataclass(frozen=True)
class FunctionCallItem:
    """A function (tool) call with JSON ``arguments``; build it with ``function_call()``."""

    name: str
    arguments: str
    _: KW_ONLY
    call_id: str | None = None
    namespace: str | None = None

    def _events(self, ids: _Ids, output_index: int) -> list[Json]:
        item: Json = {
            "type": "function_call",
            "id": ids.next("fc"),
            "call_id": self.call_id or ids.next("call"),
            "name": self.name,
            "arguments": self.arguments,
            "status": "completed",
        }
        if self.namespace is not None:
            item["namespace"] = self.namespace
        return [_item_done(item, output_index)]


OutputItem: TypeAlias = MessageItem | ReasoningItem | FunctionCallItem | Mapping[str, Any]
"""One output item of a reply; a ``Mapping`` is sent verbatim as a raw Responses item."""

_ITEM_TYPES = (MessageItem, ReasoningItem, FunctionCallItem)


def message(text: str, *, deltas: bool = False, chunk: int | None = None, phase: Phase | None = None) -> MessageItem:
    """Build an assistant message; ``deltas`` streams it per word (or per ``chunk`` chars)."""
    return MessageItem(text, deltas=deltas, chunk=chunk, phase=phase)


def reasoning(summary_text: str | Sequence[str], *, deltas: bool = False, chunk: int | None = None) -> ReasoningItem:
    """Build a reasoning item whose summary has one part per string, optionally streamed."""
    return ReasoningItem(summary_text, deltas=deltas, chunk=chunk)


def function_call(
    name: str,
    arguments: Mapping[str, Any] | str,
    *,
    call_id: str | None = None,
    namespace: str | None = None,
) -> FunctionCallItem:
    """Build a call of tool ``name``; ``arguments`` is a dict or its JSON text.

    Tools of an MCP server are in a namespace: ``function_call("ask", {}, namespace="mcp__server")``
    calls tool ``ask`` of the MCP server configured as ``[mcp_servers.server]``.
    """
    text = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
    return FunctionCallItem(name, text, call_id=call_id, namespace=namespace)


def exec_command(cmd: str, *, call_id: str | None = None, **extra: Any) -> FunctionCallItem:
    """Build the ``exec_command`` call that makes Codex run ``cmd`` in a shell.

    ``extra`` adds other arguments of Codex's tool, e.g. ``workdir="sub"``,
    ``login=False`` (skip the login profile), ``yield_time_ms=...`` or
    ``sandbox_permissions="require_escalated"`` with ``justification="..."``.
    """
    return function_call("exec_command", {"cmd": cmd, **extra}, call_id=call_id)


def apply_patch(patch: str, *, call_id: str | None = None) -> FunctionCallItem:
    """Build a call that makes Codex edit files with a patch in its own format, e.g.::

        *** Begin Patch
        *** Add File: notes.txt
        +hello
        *** End Patch

    Codex runs it as a file change (a ``fileChange`` item, which asks for approval
    where the sandbox does not allow the write), not as a shell command.
    """
    body = patch if patch.endswith("\n") else patch + "\n"
    return exec_command(f"apply_patch <<'PATCH'\n{body}PATCH\n", call_id=call_id, login=False)


def _item_added(item: Json, output_index: int) -> Json:
    return {"type": "response.output_item.added", "output_index": output_index, "item": item}


def _item_done(item: Json, output_index: int) -> Json:
    return {"type": "response.output_item.done", "output_index": output_index, "item": item}


def _delta(kind: str, item_id: str, output_index: int, **fields: Any) -> Json:
    return {"type": kind, "item_id": item_id, "output_index": output_index, **fields}


def _split(text: str, chunk: int | None) -> list[str]:
    """Split text into delta pieces: per word (keeping spaces) or per ``chunk`` characters."""
    if chunk is None:
        pieces = re.split(r"(?<=\s)(?=\S)", text)
    else:
        pieces = [text[start : start + chunk] for start in range(0, len(text), chunk)]
    return [piece for piece in pieces if piece]


def _check_chunk(chunk: int | None) -> None:
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be a positive number of characters, got {chunk!r}")


# --------------------------------------------------------------------------
# Replies.


@dataclass(frozen=True)
class Usage:
    """Token counts reported in ``response.completed``."""

    input_tokens: int = 100
    output_tokens: int = 20
    cached_input_tokens: int = 0
    reasoning_output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def to_json(self) -> Json:
        """Return the ``usage`` object of a Responses API response."""
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_input_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_output_tokens},
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP response to one ``POST /v1/responses``.

    A 200 reply streams ``response.created``, the items' events and
    ``response.completed``, ``delay`` seconds apart.  ``failed=True`` ends it with
    ``response.failed`` instead, carrying ``error_message`` and ``error_code`` (such as
    ``context_length_exceeded``).  ``break_after=n`` ends the
    body abruptly after ``n`` events; ``stall_after=n`` sends ``n`` events and
    then holds the connection silently.  Any other ``status`` sends that HTTP
    error with a JSON body ``{"error": {"message", "type", "code"}}``.
    """

    items: Sequence[OutputItem] = ()
    _: KW_ONLY
    status: int = 200
    error_message: str = "scripted model error"
    error_type: str | None = None
    error_code: str | None = None
    delay: float = 0.0
    stall_after: int | None = None
    break_after: int | None = None
    failed: bool = False
    usage: Usage = Usage()

    def __post_init__(self) -> None:
        items = tuple(_coerce_item(item) for item in self.items)
        object.__setattr__(self, "items", items)
        if self.status != 200 and not 400 <= self.status <= 599:
            raise ValueError(f"status must be 200 or an HTTP error (400-599), got {self.status}")
        if self.status != 200 and items:
            raise ValueError("an HTTP error reply cannot carry output items")
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")
        for name in ("stall_after", "break_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.stall_after is not None and self.break_after is not None:
            raise ValueError("a reply can stall or break, not both")

    def _error_json(self) -> Json:
        """Return the JSON body sent with an HTTP error reply."""
        default_type, default_code = _ERROR_KINDS.get(
            self.status, ("server_error" if self.status >= 500 else "invalid_request_error", None)
        )
        return {
            "error": {
                "message": self.error_message,
                "type": self.error_type or default_type,
                "code": self.error_code or default_code,
            }
        }

    def _events(self, response_id: str, ids: _Ids) -> list[Json]:
        """Return all SSE events of this reply; stall and break are applied when sending."""
        events: list[Json] = [
            {
                "type": "response.created",
                "response": {"id": response_id, "object": "response", "status": "in_progress"},
            }
        ]
        output: list[Json] = []
        for index, item in enumerate(self.items):
            if isinstance(item, _ITEM_TYPES):
                item_events = item._events(ids, index)
            else:
                item_events = [_item_done(dict(item), index)]
            events.extend(item_events)
            output.append(item_events[-1]["item"])
        if self.failed:
            error = {"code": self.error_code or "server_error", "message": self.error_message}
            response = {"id": response_id, "object": "response", "status": "failed", "error": error}
            events.append({"type": "response.failed", "response": response})
            return events
        events.append(
            {
                "type": "response.completed",
                "response": {
                    "id": response_id,
                    "object": "response",
                    "status": "completed",
                    "output": output,
                    "usage": self.usage.to_json(),
                },
            }
        )
        return events


_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
}


def http_error(
    status: int,
    message: str = "scripted model error",
    *,
    type: str | None = None,  # noqa: A002 - mirrors the OpenAI error body's field
    code: str | None = None,
) -> Reply:
    """Build a reply that fails with HTTP ``status`` and an OpenAI-style error body."""
    return Reply(status=status, error_message=message, error_type=type, error_code=code)


Entry: TypeAlias = Reply | OutputItem | str | Sequence[OutputItem | str] | Callable[["ScriptedRequest"], "Entry"]
"""One script entry: a Reply, an item, a str, a list of items, or a callable returning one."""


def _coerce_item(item: object) -> OutputItem:
    """Check one output item, turning a bare string into a message."""
    if isinstance(item, str):
        return message(item)
    if isinstance(item, _ITEM_TYPES):
        return item
    if isinstance(item, Mapping) and isinstance(item.get("type"), str):
        return item
    raise TypeError(
        f"not an output item: {item!r} (use message(), reasoning(), function_call(), "
        "exec_command() or a dict with a 'type')"
    )


def _to_reply(entry: object) -> Reply:
    """Turn a non-callable script entry into a Reply."""
    if isinstance(entry, Reply):
        return entry
    if isinstance(entry, (str, Mapping, *_ITEM_TYPES)):
        return Reply([_coerce_item(entry)])
    if isinstance(entry, Sequence):
        return Reply([_coerce_item(item) for item in entry])
    raise TypeError(f"not a script entry: {entry!r}")


def _check_entry(entry: Entry) -> Entry:
    """Validate an entry early, so script mistakes surface where they are written."""
    return entry if callable(entry) else _to_reply(entry)


class _Ids:
    """Thread-safe counter for item, call and response ids unique per server."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_{next(self._counter)}"


# --------------------------------------------------------------------------
# Recorded requests.


@dataclass(frozen=True)
class ScriptedRequest:
    """One request Codex sent to the server: path, lower-cased headers and JSON body."""

    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]

    @property
    def input(self) -> list[Json]:
        """The request's ``input`` items (the conversation so far)."""
        value = self.body.get("input")
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

    def input_texts(self, role: str) -> list[str]:
        """Return the texts of all message items with ``role``, in conversation order."""
        texts: list[str] = []
        for item in self.input:
            if item.get("type", "message") != "message" or item.get("role") != role:
                continue
            content = item.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.extend(
                    part["text"]
                    for part in content
                    if isinstance(part, dict)
                    and part.get("type") in ("input_text", "output_text")
                    and isinstance(part.get("text"), str)
                )
        return texts

    def function_call_outputs(self) -> list[str]:
        """Return the outputs of all ``function_call_output`` items, in conversation order."""
        outputs: list[str] = []
        for item in self.input:
            if item.get("type") != "function_call_output":
                continue
            output = item.get("output")
            if isinstance(output, list):
                # Tools that return content items (text, images) send a list; keep the text.
                output = "".join(part.get("text", "") for part in output if isinstance(part, dict))
            outputs.append(output if isinstance(output, str) else json.dumps(output))
        return outputs


# --------------------------------------------------------------------------
# The server.

# A stalled stream is held at most this long, so a forgotten server frees its threads.
_MAX_STALL_SECONDS = 600.0


class ScriptedModel:
    """A Responses API server on 127.0.0.1 that answers from a script.

    Use it as a context manager, or call ``start()`` and ``close()``.  The
    socket is bound on construction, so ``url`` is known before starting.
    ``codex_home`` is the directory ``serve_demo`` (or the CLI) wrote the Codex
    configuration to, else ``None``.
    """

    def __init__(self, script: Sequence[Entry] = (), *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._script: list[Entry] = [_check_entry(entry) for entry in script]
        self._served = 0
        self._requests: list[ScriptedRequest] = []
        self._sent: list[tuple[float, str]] = []
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._ids = _Ids()
        self._host = host
        self._server = _Server((host, port), _Handler, self)
        self._thread: threading.Thread | None = None
        self.codex_home: Path | None = None
        self._temporary_home: Path | None = None  # made by serve_demo, removed by close()

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        running = "running" if self._thread else "not started"
        state = "closed" if self._closing.is_set() else running
        served = f"{self._served}/{len(self._script)} replies served"
        return f"<ScriptedModel {self.url} {state}, {served}>"

    @property
    def url(self) -> str:
        """Base URL for Codex's ``base_url``, ending in ``/v1``."""
        return f"http://{self._host}:{self._server.server_port}/v1"

    @property
    def requests(self) -> list[ScriptedRequest]:
        """A copy of all POST requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def sent(self) -> list[tuple[float, str]]:
        """When each streamed event was written (``time.time()``) and its type, in order.

        For latency measurements: the time a text delta left the model, say.
        """
        with self._lock:
            return list(self._sent)

    @property
    def remaining(self) -> int:
        """Number of script entries not used yet."""
        with self._lock:
            return len(self._script) - self._served

    def start(self) -> ScriptedModel:
        """Start serving on a daemon thread (idempotent); return ``self``."""
        if self._closing.is_set():
            raise RuntimeError("this ScriptedModel is closed; create a new one")
        if self._thread is None:
            # A short poll interval keeps close() fast; the default waits up to 0.5 s.
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="scripted-model",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release held streams; safe to call twice."""
        if self._closing.is_set():
            return
        self._closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        if self._temporary_home is not None:
            shutil.rmtree(self._temporary_home, ignore_errors=True)

    def add(self, *entries: Entry) -> None:
        """Append entries to the script; safe while the server runs."""
        checked = [_check_entry(entry) for entry in entries]
        with self._lock:
            self._script.extend(checked)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[ScriptedRequest]:
        """Wait until at least ``n`` requests arrived and return them; raise TimeoutError if not."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(f"expected {n} requests, got {len(self._requests)}")
            return list(self._requests)

    def _record(self, request: ScriptedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _answer(self, request: ScriptedRequest) -> Reply:
        """Take the next script entry and resolve it to a Reply for ``request``."""
        with self._lock:
            index = self._served
            entry = self._script[index] if index < len(self._script) else None
            if entry is not None:
                self._served += 1
        if entry is None:
            text = f"scripted model: script exhausted after {index} replies"
            _log.warning("%s (request to %s)", text, request.path)
            return http_error(500, text)
        try:
            # Callables may return callables; resolve outside the lock so they can call add().
            while callable(entry):
                entry = entry(request)
            return _to_reply(entry)
        except Exception as exc:
            text = f"scripted model: script entry {index + 1} raised {type(exc).__name__}: {exc}"
            _log.exception("%s", text)
            return http_error(500, text)


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its ScriptedModel and ignores client disconnects."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], model: ScriptedModel) -> None:
        super().__init__(address, handler)
        self.model = model

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Serves ``GET /v1/models`` and ``POST /v1/responses``; one request per connection."""

    # HTTP/1.1 gives chunked bodies, so a broken stream is visibly truncated;
    # every reply closes its connection, so no keep-alive socket lingers.
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        """Stay quiet: one line per request would drown test and notebook output."""

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            listing = {"id": "scripted-model", "object": "model", "owned_by": "scripted"}
            self._send_json(200, {"object": "list", "data": [listing]})
        else:
            self._send_json(404, _error_body(f"scripted model: no such endpoint: GET {self.path}"))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        request = ScriptedRequest(
            path=self.path,
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body if isinstance(body, dict) else {},
        )
        model = self.server.model
        model._record(request)
        if not self.path.rstrip("/").endswith("/responses"):
            self._send_json(404, _error_body(f"scripted model: no such endpoint: POST {self.path}"))
        elif not isinstance(body, dict):
            self._send_json(400, _error_body("scripted model: request body is not a JSON object"))
        else:
            self._send_reply(model._answer(request))

    def _send_reply(self, reply: Reply) -> None:
        if reply.status != 200:
            self._send_json(reply.status, reply._error_json())
            return
        model = self.server.model
        events = reply._events(model._ids.next("resp"), model._ids)
        cut = reply.break_after if reply.break_after is not None else reply.stall_after
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for index, event in enumerate(events[:cut]):
            if index and reply.delay and model._closing.wait(reply.delay):
                return
            data = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            with model._lock:
                model._sent.append((time.time(), event["type"]))
        if reply.stall_after is not None:
            self._hold()
        if cut is None:
            self.wfile.write(b"0\r\n\r\n")
        # Otherwise return without the final chunk: the client sees a truncated body.

    def _hold(self) -> None:
        """Keep the connection silent until the server closes, the peer leaves, or time runs out."""
        deadline = time.monotonic() + _MAX_STALL_SECONDS
        while not self.server.model._closing.wait(0.05) and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                return

    def _send_json(self, status: int, payload: Json) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def _error_body(text: str) -> Json:
    return {"error": {"message": text, "type": "invalid_request_error", "code": None}}


# --------------------------------------------------------------------------
# Pointing Codex at the server.


def write_codex_config(
    codex_home: str | os.PathLike[str],
    url: str,
    *,
    model: str = "scripted-model",
    request_max_retries: int = 0,
    stream_max_retries: int = 0,
    stream_idle_timeout_ms: int = 10_000,
    extra_toml: str = "",
) -> Path:
    """Write ``codex_home/config.toml`` pointing Codex at the server ``url``; return its path.

    The provider needs no OpenAI login: with this config ``Codex().account()``
    returns ``account=None requires_openai_auth=False`` and turns run at once.
    Retries default to 0 so failures show immediately; ``extra_toml`` is
    inserted before the provider table (top-level keys or whole tables).
    Approval and sandbox settings are left to the caller's thread options.
    """
    home = Path(codex_home)
    home.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by codex_magic.scripted_model: Codex talks to a local scripted model.",
        f"model = {_toml_str(model)}",
        'model_provider = "scripted"',
        "",
    ]
    if extra_toml.strip():
        lines += [extra_toml.strip(), ""]
    lines += [
        "[model_providers.scripted]",
        'name = "Scripted model"',
        f"base_url = {_toml_str(url)}",
        'wire_api = "responses"',
        f"request_max_retries = {int(request_max_retries)}",
        f"stream_max_retries = {int(stream_max_retries)}",
        f"stream_idle_timeout_ms = {int(stream_idle_timeout_ms)}",
        # Plain HTTP streaming only: the server speaks no WebSocket.
        "supports_websockets = false",
        "",
    ]
    path = home / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml_str(value: str) -> str:
    # A JSON string is a valid TOML basic string.
    return json.dumps(value)


def serve_demo(*, codex_home: str | os.PathLike[str] | None = None) -> ScriptedModel:
    """Serve ``demo_script()`` and point this process's ``CODEX_HOME`` at it; return the model.

    The config goes to ``codex_home`` (default: a new temporary directory, removed
    by ``model.close()`` or at exit), recorded as ``model.codex_home``.  Call it
    before Codex starts.
    """
    model = ScriptedModel(demo_script()).start()
    if codex_home is None:
        codex_home = tempfile.mkdtemp(prefix="codex-demo-")
        # Its own temporary directory goes when the model is closed, or at exit
        # (after the kernel's app-server, which atexit stops first: it registered later).
        model._temporary_home = Path(codex_home)
        atexit.register(model.close)
    home = Path(codex_home)
    write_codex_config(home, model.url)
    model.codex_home = home
    os.environ["CODEX_HOME"] = str(home)
    return model


# --------------------------------------------------------------------------
# JSON scripts and the command line.

_REPLY_KEYS = frozenset({"delay", "stall_after", "break_after", "failed", "usage"})


def load_script(source: str | os.PathLike[str] | Sequence[Any]) -> list[Entry]:
    """Load a JSON script (a file path, or already parsed data) into script entries."""
    if isinstance(source, (str, os.PathLike)):
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    else:
        data = source
    if not isinstance(data, list):
        raise ValueError("a JSON script must be a list of entries")
    return [_entry_from_json(entry, index) for index, entry in enumerate(data)]


def _entry_from_json(entry: Any, index: int) -> Entry:
    where = f"script entry {index}"
    if isinstance(entry, str):
        return message(entry)
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object or a string, got {entry!r}")
    if "http_error" in entry:
        _check_keys(entry, {"http_error", "message", "type", "code"}, where)
        return http_error(
            int(entry["http_error"]),
            entry.get("message", "scripted model error"),
            type=entry.get("type"),
            code=entry.get("code"),
        )
    options = {key: entry[key] for key in _REPLY_KEYS & entry.keys()}
    if "usage" in options:
        options["usage"] = Usage(**options["usage"])
    item_part = {key: value for key, value in entry.items() if key not in _REPLY_KEYS}
    if "items" in item_part:
        _check_keys(item_part, {"items"}, where)
        items = [_item_from_json(item, f"{where}, item {n}") for n, item in enumerate(entry["items"])]
    else:
        items = [_item_from_json(item_part, where)]
    return Reply(items, **options)


def _item_from_json(item: Any, where: str) -> OutputItem:
    if isinstance(item, str):
        return message(item)
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object or a string, got {item!r}")
    if "message" in item:
        _check_keys(item, {"message", "deltas", "chunk", "phase"}, where)
        return message(
            item["message"],
            deltas=item.get("deltas", False),
            chunk=item.get("chunk"),
            phase=item.get("phase"),
        )
    if "reasoning" in item:
        _check_keys(item, {"reasoning", "deltas", "chunk"}, where)
        return reasoning(item["reasoning"], deltas=item.get("deltas", False), chunk=item.get("chunk"))
    if "exec_command" in item:
        _check_keys(item, {"exec_command", "args", "call_id"}, where)
        args = item.get("args", {})
        return exec_command(item["exec_command"], call_id=item.get("call_id"), **args)
    if "function_call" in item:
        _check_keys(item, {"function_call", "arguments", "call_id"}, where)
        arguments = item.get("arguments", {})
        return function_call(item["function_call"], arguments, call_id=item.get("call_id"))
    raise ValueError(
        f"{where}: expected one of message, reasoning, exec_command, function_call, "
        f"http_error or items, got keys {sorted(item)}"
    )


def _check_keys(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(obj.keys() - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line: write the config, print how to use it, serve until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m codex_magic.scripted_model",
        description="Serve a scripted OpenAI Responses API for Codex, offline.",
    )
    parser.add_argument("--codex-home", required=True, type=Path, help="directory for config.toml")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--demo", action="store_true", help="serve the demo script (default)")
    source.add_argument("--script", type=Path, metavar="FILE.json", help="serve a JSON script")
    args = parser.parse_args(argv)

    try:
        script = load_script(args.script) if args.script else demo_script()
    except (OSError, ValueError, TypeError) as exc:
        parser.error(f"cannot load {args.script}: {exc}")
    with ScriptedModel(script, port=args.port) as model:
        config = write_codex_config(args.codex_home, model.url)
        model.codex_home = args.codex_home
        print(f"Scripted model serving {len(script)} replies at {model.url}")
        print(f"Config written to {config}; in the shell that starts Codex or Jupyter, run:")
        print(f"export CODEX_HOME={shlex.quote(str(args.codex_home.resolve()))}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print(f"\nStopped after {len(model.requests)} requests.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
