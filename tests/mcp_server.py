"""A small MCP server over stdio, for tests: one tool asks the user, one needs approval.

- ``ask_name`` sends an elicitation (a form with a required ``name``) to its client
  and answers ``hello <name>``, or ``no name (<action>)``.
- ``wipe`` says it is destructive, so Codex asks the user before calling it; it
  answers ``wiped``.

Configure it in CODEX_HOME/config.toml as ``[mcp_servers.asker]`` with
``command = <python>`` and ``args = [<this file>]``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

TOOLS = [
    {
        "name": "ask_name",
        "description": "Ask the user for their name.",
        "inputSchema": {"type": "object", "properties": {}},
        "annotations": {"readOnlyHint": True},
    },
    {
        "name": "wipe",
        "description": "Wipe everything.",
        "inputSchema": {"type": "object", "properties": {"what": {"type": "string"}}},
        "annotations": {"readOnlyHint": False, "destructiveHint": True},
    },
]
NAME_FORM = {
    "message": "What is your name?",
    "requestedSchema": {
        "type": "object",
        "properties": {"name": {"type": "string", "title": "Name"}},
        "required": ["name"],
    },
}


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
    sys.stdout.flush()


def receive() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    return json.loads(line)


def ask_name() -> str:
    send({"id": "ask-1", "method": "elicitation/create", "params": NAME_FORM})
    while True:
        reply = receive()
        if reply.get("id") == "ask-1" and "method" not in reply:
            break
    result = reply.get("result") or {}
    if result.get("action") == "accept":
        return f"hello {(result.get('content') or {}).get('name')}"
    return f"no name ({result.get('action')})"


def main() -> None:
    while True:
        message = receive()
        method, request_id = message.get("method"), message.get("id")
        if request_id is None:
            continue  # a notification
        if method == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "asker", "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            text = ask_name() if message["params"]["name"] == "ask_name" else "wiped"
            result = {"content": [{"type": "text", "text": text}]}
        else:
            result = {}
        send({"id": request_id, "result": result})


if __name__ == "__main__":
    main()
