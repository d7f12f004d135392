"""Server requests as the user is asked them: choices, fields, replies (pure)."""

from __future__ import annotations

import pytest

from codex_magic._render import render_request
from codex_magic._requests import (
    ACCEPT,
    ACCEPT_ALWAYS,
    ACCEPT_FOR_SESSION,
    CANCEL,
    DECLINE,
    SUBMIT,
    AnswerError,
    Request,
    decline_response,
    permission_lines,
)

from .test_render import EVIL

COMMAND = Request(
    "item/commandExecution/requestApproval",
    {
        "command": "/bin/bash -lc 'touch /tmp/x'",
        "cwd": "/work",
        "reason": "make a file",
        "availableDecisions": [
            "accept",
            {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["touch"]}},
            "cancel",
        ],
    },
)
PERMISSIONS = Request(
    "item/permissions/requestApproval",
    {
        "cwd": "/work",
        "reason": "write outside",
        "permissions": {
            "network": None,
            "fileSystem": {
                "read": None,
                "write": ["/tmp/out"],
                "entries": [{"path": {"type": "path", "path": "/tmp/out"}, "access": "write"}],
            },
        },
    },
)
QUESTION = Request(
    "item/tool/requestUserInput",
    {
        "itemId": "call_3",
        "questions": [
            {
                "id": "lang",
                "header": "Language",
                "question": "Which language?",
                "isOther": True,
                "isSecret": False,
                "options": [{"label": "Python", "description": "snakes"}, {"label": "Rust", "description": "crabs"}],
            },
            {
                "id": "token",
                "header": "Token",
                "question": "Your token?",
                "isOther": False,
                "isSecret": True,
                "options": None,
            },
        ],
    },
)
FORM = Request(
    "mcpServer/elicitation/request",
    {
        "serverName": "asker",
        "mode": "form",
        "message": "Tell me about you",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "title": "Name"},
                "age": {"type": "integer", "title": "Age"},
                "ok": {"type": "boolean"},
                "size": {"type": "string", "enum": ["S", "M"], "enumNames": ["small", "medium"]},
            },
            "required": ["name"],
        },
    },
)
TOOL = Request(
    "mcpServer/elicitation/request",
    {
        "serverName": "asker",
        "mode": "form",
        "message": 'Allow the asker MCP server to run tool "wipe"?',
        "_meta": {
            "codex_approval_kind": "mcp_tool_call",
            "persist": ["session", "always"],
            "tool_params": {"all": True},
        },
        "requestedSchema": {"type": "object", "properties": {}},
    },
)


def keys(request: Request) -> list[str]:
    return [choice.key for choice in request.choices()]


def test_command_offers_its_decisions_and_always_decline() -> None:
    assert keys(COMMAND) == [ACCEPT, "option:1", DECLINE, CANCEL]
    assert COMMAND.choices()[1].label == "Always allow: touch"
    remembered = COMMAND.respond("option:1")
    assert remembered == {"decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["touch"]}}}
    assert COMMAND.word(remembered) == "approved, and allowed from now on"
    network = Request(
        COMMAND.method,
        {
            "availableDecisions": [
                "accept",
                {"applyNetworkPolicyAmendment": {"network_policy_amendment": {"host": "pypi.org", "action": "allow"}}},
            ]
        },
    )
    assert [c.label for c in network.choices()] == ["Approve", "Always allow network access to pypi.org", "Decline"]
    assert network.word(network.respond("option:1")) == "host allowed"
    for bad in ("option:0", "option:9", "option:x"):
        with pytest.raises(AnswerError):
            COMMAND.respond(bad)
    assert COMMAND.respond(ACCEPT) == {"decision": "accept"}
    assert COMMAND.respond(DECLINE) == {"decision": "decline"}
    assert COMMAND.withdrawn() == {"decision": "cancel"}
    assert COMMAND.word({"decision": "accept"}) == "approved"
    assert COMMAND.word({"decision": "cancel"}) == "cancelled"
    assert "touch /tmp/x" in COMMAND.summary() and "(make a file)" in COMMAND.summary()
    no_list = Request("item/fileChange/requestApproval", {"grantRoot": "/work"})
    assert keys(no_list) == [ACCEPT, ACCEPT_FOR_SESSION, DECLINE, CANCEL]
    assert no_list.word(no_list.respond(ACCEPT_FOR_SESSION)) == "approved for the session"
    with pytest.raises(AnswerError):
        COMMAND.respond(SUBMIT)


def test_permissions_are_granted_as_asked_for_the_turn_or_the_session() -> None:
    assert permission_lines(PERMISSIONS.params["permissions"]) == ["write /tmp/out"]
    turn = PERMISSIONS.respond(ACCEPT)
    assert turn == {"permissions": {"fileSystem": PERMISSIONS.params["permissions"]["fileSystem"]}, "scope": "turn"}
    assert PERMISSIONS.respond(ACCEPT_FOR_SESSION)["scope"] == "session"
    assert PERMISSIONS.respond(DECLINE) == {"permissions": {}, "scope": "turn"}
    assert PERMISSIONS.word(turn) == "granted for the turn"
    assert PERMISSIONS.word(PERMISSIONS.respond(DECLINE)) == "declined"
    assert permission_lines({"network": {"enabled": True}}) == ["network access"]
    assert permission_lines({"fileSystem": {"write": ["/a"], "read": ["/b"]}}) == ["read /b", "write /a"]


def test_questions_become_fields_and_answers() -> None:
    lang, token = QUESTION.fields()
    assert (lang.id, lang.label, lang.options, lang.free_text, lang.secret) == (
        "lang",
        "Language",
        ("Python", "Rust"),
        True,
        False,
    )
    assert lang.descriptions == ("snakes", "crabs")
    assert token.free_text and token.secret and not token.options  # no options: type the answer
    assert keys(QUESTION) == [SUBMIT, DECLINE]
    reply = QUESTION.respond(SUBMIT, {"lang": "Python", "token": "s3cret"})
    assert reply == {"answers": {"lang": {"answers": ["Python"]}, "token": {"answers": ["s3cret"]}}}
    assert QUESTION.word(reply) == "answered"
    assert QUESTION.answer_text(reply) == "Language: Python; Token: (hidden)"
    with pytest.raises(AnswerError, match="Token"):
        QUESTION.respond(SUBMIT, {"lang": "Python", "token": "  "})
    assert QUESTION.respond(DECLINE) == {"answers": {}}
    assert QUESTION.word({"answers": {}}) == "declined"


def test_mcp_form_fields_are_typed() -> None:
    fields = {f.id: f for f in FORM.fields()}
    assert fields["name"].required and fields["name"].free_text
    assert fields["ok"].options == ("true", "false")
    assert fields["size"].options == ("S", "M") and fields["size"].descriptions == ("small", "medium")
    reply = FORM.respond(ACCEPT, {"name": "Ada", "age": "36", "ok": "true", "size": "M"})
    assert reply == {"action": "accept", "content": {"name": "Ada", "age": 36, "ok": True, "size": "M"}}
    assert FORM.respond(ACCEPT, {"name": "Ada"}) == {"action": "accept", "content": {"name": "Ada"}}
    assert FORM.word(reply) == "answered" and FORM.answer_text(reply) == "name: Ada; age: 36; ok: True; size: M"
    for answers, error in [
        ({}, "Name"),
        ({"name": "A", "age": "old"}, "number"),
        ({"name": "A", "age": "1.5"}, "whole"),
    ]:
        with pytest.raises(AnswerError, match=error):
            FORM.respond(ACCEPT, answers)
    assert FORM.respond(DECLINE) == {"action": "decline", "content": None}
    assert FORM.respond(CANCEL) == FORM.withdrawn() == {"action": "cancel", "content": None}


def test_mcp_tool_approval_can_be_remembered_for_the_session_or_always() -> None:
    assert TOOL.is_tool_approval and TOOL.kind == "MCP tool" and TOOL.fields() == []
    assert keys(TOOL) == [ACCEPT, ACCEPT_FOR_SESSION, ACCEPT_ALWAYS, DECLINE, CANCEL]
    assert TOOL.respond(ACCEPT) == {"action": "accept", "content": None}
    session = TOOL.respond(ACCEPT_FOR_SESSION)
    assert session == {"action": "accept", "content": None, "_meta": {"persist": "session"}}
    assert TOOL.word(session) == "approved for the session"
    always = TOOL.respond(ACCEPT_ALWAYS)
    assert always == {"action": "accept", "content": None, "_meta": {"persist": "always"}}
    assert TOOL.word(always) == "approved, and allowed from now on"
    assert TOOL.accepted() == {"action": "accept", "content": None}
    # Only what the request offers.
    once = Request(TOOL.method, {**TOOL.params, "_meta": {**TOOL.params["_meta"], "persist": []}})
    assert keys(once) == [ACCEPT, DECLINE, CANCEL]


def test_headless_accept_only_approves_what_needs_no_answers() -> None:
    assert COMMAND.accepted() == {"decision": "accept"}
    assert PERMISSIONS.accepted()["scope"] == "turn"
    assert QUESTION.accepted() == {"answers": {}}
    assert FORM.accepted() == {"action": "decline", "content": None}


def test_client_tool_calls_and_unknown_requests_are_not_askable() -> None:
    call = Request("item/tool/call", {"tool": "kernel_eval"})
    assert not call.askable and call.respond(DECLINE) == decline_response("item/tool/call")
    unknown = Request("item/something/new", None)
    assert not unknown.askable and keys(unknown) == [DECLINE] and unknown.summary() == "item/something/new"


@pytest.mark.parametrize("request_", [COMMAND, PERMISSIONS, QUESTION, FORM, TOOL], ids=lambda r: r.kind)
def test_render_request_shows_what_is_asked(request_: Request) -> None:
    rendered = render_request(request_)
    assert rendered.html.startswith("<div") and rendered.text.startswith("? ")
    expected = {
        "command": "$ touch /tmp/x",
        "permissions": "write /tmp/out",
        "question": "Which language?",
        "MCP request": "Tell me about you",
        "MCP tool": 'run tool "wipe"',
    }[request_.kind]
    assert expected in rendered.text


def _evil(value: object) -> object:
    if isinstance(value, str):
        return EVIL
    if isinstance(value, dict):
        return {k: _evil(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_evil(v) for v in value]
    return value


@pytest.mark.parametrize("request_", [COMMAND, PERMISSIONS, QUESTION, FORM, TOOL], ids=lambda r: r.kind)
def test_render_request_escapes_every_field(request_: Request) -> None:
    evil = Request(request_.method, _evil(request_.params))  # type: ignore[arg-type]
    if request_.is_tool_approval:
        evil.params["_meta"]["codex_approval_kind"] = "mcp_tool_call"
    url = Request("mcpServer/elicitation/request", {"mode": "url", "url": "javascript:alert(1)", "message": EVIL})
    for rendered in (render_request(evil), render_request(url)):
        assert "<script" not in rendered.html and "<img" not in rendered.html
        assert "href=" not in rendered.html  # javascript: links are not made links


def test_render_request_links_a_web_url() -> None:
    url = Request(
        "mcpServer/elicitation/request",
        {"serverName": "s", "mode": "url", "url": "https://example.com/a?b=1&c=2", "message": "Sign in"},
    )
    rendered = render_request(url)
    assert 'href="https://example.com/a?b=1&amp;c=2"' in rendered.html and "Sign in" in rendered.text
    assert [c.key for c in url.choices()] == [ACCEPT, DECLINE, CANCEL] and url.respond(ACCEPT) == {
        "action": "accept",
        "content": None,
    }


def test_file_change_request_shows_the_diff_of_its_item() -> None:
    request = Request("item/fileChange/requestApproval", {"itemId": "p1", "reason": "write notes"})
    assert "notes.txt" not in render_request(request).text
    request.item = {
        "type": "fileChange",
        "id": "p1",
        "status": "inProgress",
        "changes": [{"path": "notes.txt", "kind": {"type": "add"}, "diff": "+hello <b>\n"}],
    }
    rendered = render_request(request)
    assert "notes.txt" in rendered.text and "+hello <b>" in rendered.text and "reason: write notes" in rendered.text
    assert "<b>\n" not in rendered.html and "hello &lt;b&gt;" in rendered.html


# -- what a command request asks: only an escalation leaves the sandbox ----------------------------

# Params as the app-server sends them (recorded from codex app-server 0.163.0 with the
# scripted model). Under ``--approval untrusted`` a command that stays in the sandbox is
# asked about too; a request to leave the sandbox (the model's
# ``sandbox_permissions="require_escalated"``) differs only by its ``reason``, the
# model's justification.
_ASKED = {
    "kind": "command",
    "threadId": "01a23228-870b-7231-9503-a2b563aae282",
    "turnId": "01a23228-8732-7bc2-9ba8-f388a890f97d",
    "itemId": "call_3",
    "startedAtMs": 1796137846662,
    "environmentId": "local",
    "command": "/bin/bash -c 'touch /work/m.txt'",
    "cwd": "/work",
    "commandActions": [{"type": "unknown", "command": "touch /work/m.txt"}],
    "proposedExecpolicyAmendment": ["touch", "/work/m.txt"],
    "availableDecisions": [
        "accept",
        {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["touch", "/work/m.txt"]}},
        "cancel",
    ],
}
IN_SANDBOX = Request("item/commandExecution/requestApproval", _ASKED)
ESCALATED = Request("item/commandExecution/requestApproval", {**_ASKED, "reason": "make a file"})


def test_a_command_that_stays_in_the_sandbox_is_not_said_to_leave_it() -> None:
    rendered = render_request(IN_SANDBOX)
    assert rendered.text.startswith("? Codex asks to run a command\n$ touch /work/m.txt")
    assert IN_SANDBOX.summary() == "run a command: touch /work/m.txt"
    for form in (rendered.text, rendered.html, rendered.markdown, IN_SANDBOX.summary()):
        assert "outside the sandbox" not in form


def test_a_command_that_asks_to_leave_the_sandbox_says_so() -> None:
    rendered = render_request(ESCALATED)
    assert rendered.text.startswith("? Codex asks to run a command outside the sandbox\n$ touch /work/m.txt")
    assert "reason: make a file" in rendered.text
    assert ESCALATED.summary() == "run a command outside the sandbox: touch /work/m.txt (make a file)"


def test_network_permissions_and_terminal_input_are_named_as_such() -> None:
    network = Request(
        IN_SANDBOX.method, {**_ASKED, "networkApprovalContext": {"host": "pypi.org", "protocol": "https"}}
    )
    assert render_request(network).text.startswith("? Codex asks to run a command with network access to pypi.org")
    more = Request(
        IN_SANDBOX.method, {**_ASKED, "reason": "fetch", "additionalPermissions": {"network": {"enabled": True}}}
    )
    assert render_request(more).text.startswith(
        "? Codex asks to run a command with more permissions\n$ touch /work/m.txt\nnetwork access"
    )
    stdin = Request(IN_SANDBOX.method, {**_ASKED, "kind": "writeStdin"})
    assert stdin.summary().startswith("write to a running command: ")
