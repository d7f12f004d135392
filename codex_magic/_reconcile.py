"""Find the items of a turn that the live notification stream never showed.

Why this exists
---------------
``codex app-server`` 0.163 sometimes runs an ``exec_command`` and sends its
output to the model without ever sending ``item/started`` or
``item/completed`` for it, so the command is missing from the widget and from
``_codex_result.items``.  It happens when *all* of these hold:

* the command runs under a sandbox (``read-only`` or ``workspace-write``;
  never with ``danger-full-access``);
* its process exits within 150 ms of being spawned;
* it exits with a non-zero code other than 2, 126 or 127, and the output that
  has arrived within 20 ms of the exit contains a sandbox-denial word
  ("operation not permitted", "permission denied", "read-only file system",
  "seccomp", "sandbox", "landlock", "failed to write file").  A real sandbox
  denial (e.g. writing outside the workspace) matches, but so does any quick
  failure that prints "Permission denied".

Upstream (openai/codex, ``codex-rs/core/src/unified_exec/process.rs``,
``UnifiedExecProcess::from_spawned``) waits up to 150 ms for the child to exit
and then calls ``check_for_sandbox_denial``; a likely denial returns
``UnifiedExecError::SandboxDenied`` from ``open_session_with_sandbox``, and
``UnifiedExecProcessManager::exec_command`` (``process_manager.rs``) returns
that error *before* it builds the ``ToolEmitter`` and emits
``ToolEventStage::Begin``.  No begin, no end: the handler turns the error into
the model's ``function_call_output``, but no item event exists, and the rollout
holds no ``item_completed`` for it either.  Whether the denial words are
already buffered 20 ms after the exit is a race, hence the "now and then"
(about 1 run in 6 to 2 in 3, depending on load).  Known upstream as
openai/codex#47433 and #45572.

So ``thread/read`` cannot bring such a command back (it rebuilds turns from
the rollout).  What does carry it is the raw Responses items: a thread started
with ``experimentalRawEvents: true`` gets ``rawResponseItem/completed``
notifications for the ``function_call`` and its ``function_call_output``
(same ``call_id``, which is also the commandExecution item's id).
``command_items_from_raw`` rebuilds commandExecution items from those.

Both functions are pure: they take and return wire JSON (camelCase dicts, as
``thread/read`` returns them, i.e. ``item.model_dump(by_alias=True,
mode="json")``), so each result validates as the SDK's ``ThreadItem``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["command_items_from_raw", "missing_items"]

# Tools whose calls app-server reports as commandExecution items.
_COMMAND_TOOLS = frozenset({"exec_command", "shell", "shell_command", "local_shell"})

_EXIT_CODE = re.compile(r"^Process exited with code (-?\d+)\s*$", re.MULTILINE)
_WALL_TIME = re.compile(r"^Wall time: ([0-9.]+) seconds\s*$", re.MULTILINE)
_OUTPUT = "\nOutput:\n"


def missing_items(
    seen: Mapping[str, Any] | set[str] | frozenset[str],
    stored_turn_items: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Return the stored items whose id the live stream never showed, in stored order.

    ``seen`` holds the ids of items that arrived through ``item/started`` or
    ``item/completed`` (a dict keyed by item id, or a set of ids).
    ``stored_turn_items`` is one turn's ``items`` as wire dicts: from
    ``thread/read`` with ``includeTurns``, or from ``command_items_from_raw``.
    The user's own message (``userMessage``) is never returned: the cell shows
    it already.  An item listed twice is returned once.
    """
    known = set(seen)
    missing: list[dict[str, Any]] = []
    for item in stored_turn_items:
        if item.get("type") == "userMessage":
            continue
        item_id = item.get("id")
        if item_id in known:
            continue
        if item_id is not None:
            known.add(item_id)
        missing.append(item)
    return missing


def command_items_from_raw(raw_items: Iterable[Mapping[str, Any]], *, cwd: str) -> list[dict[str, Any]]:
    """Rebuild commandExecution items from a turn's raw Responses items.

    ``raw_items`` are the ``item`` fields of ``rawResponseItem/completed``
    notifications (or ``response_item`` payloads of the rollout), in order.
    Each shell tool ``function_call`` gives one item with id ``call_id``; its
    ``function_call_output`` supplies the exit code, output and duration.  A
    call with no output yet is ``inProgress``.  ``cwd`` is the turn's working
    directory, used when the call names no ``workdir``.  Pass the result to
    ``missing_items`` to keep only what the stream never showed.
    """
    calls: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    outputs: dict[str, Any] = {}
    for raw in raw_items:
        kind = raw.get("type")
        call_id = raw.get("call_id") or raw.get("callId")
        if not isinstance(call_id, str):
            continue
        if kind == "function_call" and raw.get("name") in _COMMAND_TOOLS:
            if call_id not in calls:
                order.append(call_id)
            calls[call_id] = dict(raw)
        elif kind == "function_call_output":
            outputs[call_id] = raw.get("output")
    return [_command_item(call_id, calls[call_id], outputs.get(call_id), cwd) for call_id in order]


def _command_item(call_id: str, call: Mapping[str, Any], output: Any, cwd: str) -> dict[str, Any]:
    args = _arguments(call.get("arguments"))
    command = args.get("cmd", args.get("command", ""))
    if isinstance(command, list):
        command = shlex.join(str(part) for part in command)
    workdir = args.get("workdir")
    item: dict[str, Any] = {
        "type": "commandExecution",
        "id": call_id,
        "command": str(command),
        "commandActions": [{"type": "unknown", "command": str(command)}],
        "cwd": _join(cwd, workdir) if isinstance(workdir, str) and workdir else cwd,
        "source": "unifiedExecStartup",
        "status": "inProgress",
        "aggregatedOutput": None,
        "exitCode": None,
        "durationMs": None,
        "processId": None,
    }
    if output is None:
        return item
    text = _output_text(output)
    exit_match = _EXIT_CODE.search(text)
    if exit_match is None:
        # Not the unified-exec report (e.g. "exec_command failed: CreateProcess {...}"):
        # the command never produced an exit code; show the error text as its output.
        item.update(status="failed", aggregatedOutput=text)
        return item
    exit_code = int(exit_match.group(1))
    head, sep, body = text.partition(_OUTPUT)
    wall = _WALL_TIME.search(head)
    item.update(
        status="completed" if exit_code == 0 else "failed",
        exitCode=exit_code,
        aggregatedOutput=body if sep else "",
        # The early sandbox-denial path reports "Wall time: 0.0000 seconds": not measured.
        durationMs=round(float(wall.group(1)) * 1000) or None if wall else None,
    )
    return item


def _arguments(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return {"cmd": arguments}
        if isinstance(parsed, dict):
            return parsed
    return {}


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):  # content items: keep the text parts
        return "".join(str(part.get("text", "")) for part in output if isinstance(part, Mapping))
    if isinstance(output, Mapping):  # {"content": ..., "success": ...} form
        return _output_text(output.get("content", ""))
    return json.dumps(output)


def _join(cwd: str, workdir: str) -> str:
    if workdir.startswith("/"):
        return workdir
    return cwd.rstrip("/") + "/" + workdir
