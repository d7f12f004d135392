"""Requests answered in the widget of a real kernel, as a frontend answers them.

Each test scripts the model to make Codex ask something (a command outside the
sandbox, more permissions, a question, an MCP form or MCP tool approval), answers
with the comm messages JupyterLab sends (a click, a picked option, typed text), and
asserts what the app-server did with the answer.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codex_magic.scripted_model import apply_patch, exec_command, function_call, message, write_codex_config

from .conftest import Execution, Kernel, Offline

MCP_SERVER = Path(__file__).with_name("mcp_server.py")


def configure(offline: Offline, *features: str, mcp: bool = False) -> None:
    """Rewrite the scripted model's config with Codex features on and the test MCP server."""
    extra = "[features]\n" + "".join(f"{name} = true\n" for name in features) if features else ""
    if mcp:
        extra += (
            f"[mcp_servers.asker]\ncommand = {json.dumps(sys.executable)}\nargs = [{json.dumps(str(MCP_SERVER))}]\n"
        )
    write_codex_config(offline.codex_home, offline.model.url, extra_toml=extra)


def widgets(execution: Execution, model: str) -> list[tuple[str, dict[str, Any]]]:
    """The (comm id, state) of each widget of one model kind the cell opened, in order."""
    return [
        (m["content"]["comm_id"], m["content"]["data"]["state"])
        for m in execution.of("comm_open")
        if m["content"]["data"]["state"].get("_model_name") == model
    ]


def _is_steering(state: dict[str, Any]) -> bool:
    """The turn's own box for text sent while it runs, not a request's field."""
    return str(state.get("placeholder", "")).startswith("Add to this turn")


def buttons(execution: Execution) -> dict[str, str]:
    return {state["description"]: comm for comm, state in widgets(execution, "ButtonModel")}


def final_text(execution: Execution) -> str:
    return execution.of("update_display_data")[-1]["content"]["data"]["text/plain"]


Act = Callable[[Kernel, Execution], None]


def when(button: str, act: Act) -> Callable[[Kernel, Execution, dict[str, Any]], None]:
    """An on_message hook that acts once, when a button of that label has been shown."""
    done: list[bool] = []

    def hook(kernel: Kernel, execution: Execution, message: dict[str, Any]) -> None:
        if not done and button in buttons(execution):
            done.append(True)
            act(kernel, execution)

    return hook


@pytest.mark.parametrize(("choice", "written"), [("Approve", True), ("Decline", False)])
def test_file_change_shows_its_diff_and_waits(kernel: Kernel, offline: Offline, choice: str, written: bool) -> None:
    patch = "*** Begin Patch\n*** Add File: notes.txt\n+hello from the patch\n*** End Patch"
    offline.model.add(apply_patch(patch), message("Patched."))
    seen: dict[str, Any] = {}

    def answer(kernel: Kernel, execution: Execution) -> None:
        boxes = [
            state["value"]
            for _, state in widgets(execution, "HTMLModel")
            if "Codex asks to change files" in state["value"]
        ]
        seen["box"], seen["written"] = boxes[0], (offline.workspace / "notes.txt").exists()
        kernel.click(buttons(execution)[choice])

    execution = kernel.run("%%codex --sandbox read-only\nWrite notes.", on_message=when("Decline", answer))
    assert execution.error is None, execution.error
    assert "notes.txt" in seen["box"] and "hello from the patch" in seen["box"]  # the diff, in the request
    assert seen["written"] is False
    assert (offline.workspace / "notes.txt").exists() is written
    assert ("approved" if written else "declined") in final_text(execution)
    assert ("rejected" in offline.model.requests[-1].function_call_outputs()[-1]) is not written


def test_question_is_answered_with_an_option_after_an_error(kernel: Kernel, offline: Offline) -> None:
    configure(offline, "default_mode_request_user_input")
    question = {
        "id": "lang",
        "header": "Language",
        "question": "Which language?",
        "options": [
            {"label": "Python", "description": "batteries included"},
            {"label": "Rust", "description": "no GC"},
        ],
    }
    offline.model.add(function_call("request_user_input", {"questions": [question]}), message("Rust it is."))
    seen: dict[str, Any] = {}

    def answer(kernel: Kernel, execution: Execution) -> None:
        kernel.click(buttons(execution)["Answer"])  # nothing picked yet: the box says so
        ((pick, state),) = widgets(execution, "ToggleButtonsModel")
        seen["options"] = state["_options_labels"]
        deadline = time.monotonic() + 10
        while not any("first, or Skip" in json.dumps(m["content"]) for m in execution.of("comm_msg")):
            assert time.monotonic() < deadline, "no error shown for an empty answer"
            execution.messages.append(kernel.client.get_iopub_msg(timeout=10))
        kernel.update(pick, {"index": 1})
        kernel.click(buttons(execution)["Answer"])

    execution = kernel.run("%%codex\nAsk me.", on_message=when("Skip", answer))
    assert execution.error is None, execution.error
    assert seen["options"] == ["Python", "Rust"]
    assert offline.model.requests[-1].function_call_outputs()[-1] == '{"answers":{"lang":{"answers":["Rust"]}}}'
    assert "answered" in final_text(execution) and "Language: Rust" in final_text(execution)


def test_question_takes_typed_text(kernel: Kernel, offline: Offline) -> None:
    configure(offline, "default_mode_request_user_input")
    question = {
        "id": "name",
        "header": "Name",
        "question": "What should the file be called?",
        "options": [{"label": "a.txt", "description": ""}],
    }
    offline.model.add(function_call("request_user_input", {"questions": [question]}), message("OK."))

    def answer(kernel: Kernel, execution: Execution) -> None:
        ((text, _),) = [(comm, state) for comm, state in widgets(execution, "TextModel") if not _is_steering(state)]
        kernel.update(text, {"value": "notes.md"})
        kernel.click(buttons(execution)["Answer"])

    execution = kernel.run("%%codex\nAsk me.", on_message=when("Skip", answer))
    assert execution.error is None, execution.error
    assert offline.model.requests[-1].function_call_outputs()[-1] == '{"answers":{"name":{"answers":["notes.md"]}}}'


def test_permissions_are_granted_for_the_turn(kernel: Kernel, offline: Offline) -> None:
    configure(offline, "request_permissions_tool")
    target = str(offline.workspace.parent / "outside")
    ask = function_call(
        "request_permissions", {"reason": "write the report", "permissions": {"file_system": {"write": [target]}}}
    )
    offline.model.add(ask, message("Granted."))
    execution = kernel.run(
        "%%codex\nWrite outside.",
        on_message=when("Grant for this turn", lambda k, e: k.click(buttons(e)["Grant for this turn"])),
    )
    assert execution.error is None, execution.error
    granted = json.loads(offline.model.requests[-1].function_call_outputs()[-1])
    assert granted["scope"] == "turn" and target in json.dumps(granted["permissions"])
    assert "granted for the turn" in final_text(execution) and f"write {target}" in final_text(execution)


def test_mcp_server_form_is_filled_in(kernel: Kernel, offline: Offline) -> None:
    configure(offline, mcp=True)
    offline.model.add(function_call("ask_name", {}, namespace="mcp__asker"), message("Hello."))

    def fill(kernel: Kernel, execution: Execution) -> None:
        ((text, _),) = [(comm, state) for comm, state in widgets(execution, "TextModel") if not _is_steering(state)]
        kernel.update(text, {"value": "Ada"})
        kernel.click(buttons(execution)["Submit"])

    execution = kernel.run("%%codex\nGreet me.", on_message=when("Submit", fill), timeout=90)
    assert execution.error is None, execution.error
    assert offline.model.requests[-1].function_call_outputs()[-1].endswith("hello Ada")
    assert "answered" in final_text(execution) and "name: Ada" in final_text(execution)


def test_mcp_tool_call_waits_for_approval(kernel: Kernel, offline: Offline) -> None:
    configure(offline, mcp=True)
    wipe = function_call("wipe", {"what": "all"}, namespace="mcp__asker")
    offline.model.add(wipe, message("Not wiped."), wipe, message("Wiped."), wipe, message("Wiped again."))

    declined = kernel.run(
        "%%codex\nWipe.", on_message=when("Decline", lambda k, e: k.click(buttons(e)["Decline"])), timeout=90
    )
    assert declined.error is None, declined.error
    assert {"Approve", "Approve for this session", "Always allow this tool", "Decline", "Cancel the turn"} <= set(
        buttons(declined)
    )
    assert "rejected" in offline.model.requests[-1].function_call_outputs()[-1].lower()

    always = "Always allow this tool"
    approved = kernel.run("%%codex\nWipe now.", on_message=when(always, lambda k, e: k.click(buttons(e)[always])))
    assert approved.error is None, approved.error
    assert offline.model.requests[-1].function_call_outputs()[-1].endswith("wiped")
    assert "approved, and allowed from now on" in final_text(approved) and "the user" in final_text(approved)
    # Codex remembers it in its config, so the next call is not asked.
    assert 'approval_mode = "approve"' in (offline.codex_home / "config.toml").read_text()
    again = kernel.run("%%codex\nWipe once more.")
    assert again.error is None, again.error
    assert "Approve" not in buttons(again)
    assert offline.model.requests[-1].function_call_outputs()[-1].endswith("wiped")


def test_always_allow_adds_a_rule_so_the_next_run_is_not_asked(kernel: Kernel, offline: Offline) -> None:
    marker = offline.workspace / "ruled.txt"
    escalate = exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="make a file")
    offline.model.add(escalate, message("Made."), escalate, message("Made again."))
    always = f"Always allow: touch {marker}"
    first = kernel.run(
        "%%codex --sandbox read-only\nMake the file.", on_message=when(always, lambda k, e: k.click(buttons(e)[always]))
    )
    assert first.error is None, first.error
    assert marker.exists() and "approved, and allowed from now on" in final_text(first)
    assert (
        f'prefix_rule(pattern=["touch", "{marker}"], decision="allow")'
        in (offline.codex_home / "rules" / "default.rules").read_text()
    )
    marker.unlink()
    again = kernel.run("%%codex --sandbox read-only\nMake it again.")
    assert again.error is None, again.error
    assert marker.exists() and "Approve" not in buttons(again)


def test_without_a_frontend_requests_are_declined_visibly(kernel: Kernel, offline: Offline) -> None:
    marker = offline.workspace / "headless.txt"
    escalate = exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="make a file")
    offline.model.add(escalate, message("Declined, fine."))
    execution = kernel.run("%%codex --sandbox read-only\nMake the file.", shows_widgets=False)
    assert execution.error is None, execution.error
    assert not marker.exists() and "Approve" not in buttons(execution)
    assert "declined, no interactive frontend (CodexMagic.headless_approval = 'decline')" in final_text(execution)
    assert "rejected" in offline.model.requests[-1].function_call_outputs()[-1].lower()


def test_headless_policy_accept_runs_the_command(kernel: Kernel, offline: Offline) -> None:
    marker = offline.workspace / "accepted.txt"
    escalate = exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="make a file")
    offline.model.add(escalate, message("Made."))
    kernel.run("%config CodexMagic.headless_approval = 'accept'")
    execution = kernel.run("%%codex --sandbox read-only\nMake the file.", shows_widgets=False)
    assert execution.error is None, execution.error
    assert marker.exists()
    assert "approved, no interactive frontend" in final_text(execution)


def test_headless_policy_cancel_interrupts_the_turn(kernel: Kernel, offline: Offline) -> None:
    escalate = exec_command("touch never.txt", sandbox_permissions="require_escalated", justification="make a file")
    offline.model.add(escalate, message("unused"))
    kernel.run("%config CodexMagic.headless_approval = 'cancel'")
    execution = kernel.run("%%codex --sandbox read-only\nMake the file.", shows_widgets=False)
    assert execution.error is not None and execution.error["ename"] == "TurnInterruptedError"
    assert not (offline.workspace / "never.txt").exists()
    assert "cancelled, no interactive frontend" in final_text(execution)


def test_approval_never_refuses_without_asking(kernel: Kernel, offline: Offline) -> None:
    marker = offline.workspace / "never.txt"
    escalate = exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="make a file")
    offline.model.add(escalate, message("Refused."))
    execution = kernel.run("%%codex --sandbox read-only --approval never\nMake the file.")
    assert execution.error is None, execution.error
    assert not marker.exists() and "Approve" not in buttons(execution)
    assert "approval never" in final_text(execution)


def test_approval_untrusted_asks_before_a_plain_command(kernel: Kernel, offline: Offline) -> None:
    marker = offline.workspace / "untrusted.txt"
    offline.model.add(exec_command(f"touch {marker}", login=False), message("Made."))
    execution = kernel.run(
        "%%codex --approval untrusted\nMake the file.",
        on_message=when("Approve", lambda k, e: k.click(buttons(e)["Approve"])),
    )
    assert execution.error is None, execution.error
    assert marker.exists() and "approval untrusted" in final_text(execution)
    assert "approved" in final_text(execution)


@pytest.mark.parametrize(
    ("outcome", "word", "why"), [("allow", "approved", "a harmless touch"), ("deny", "denied", "not what was asked")]
)
def test_approval_auto_review_lets_the_reviewer_model_decide(
    kernel: Kernel, offline: Offline, outcome: str, word: str, why: str
) -> None:
    marker = offline.workspace / "reviewed.txt"
    escalate = exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="make a file")
    verdict = {"outcome": outcome, "risk_level": "low", "user_authorization": "high", "rationale": why}
    offline.model.add(escalate, message(json.dumps(verdict)), message("Reviewed."))
    execution = kernel.run("%%codex --sandbox read-only --approval auto-review\nMake the file.")
    assert execution.error is None, execution.error
    assert marker.exists() == (outcome == "allow") and "Approve" not in buttons(execution)
    assert f"auto-review: {word}" in final_text(execution) and why in final_text(execution)
    assert "approval auto-review" in final_text(execution)


def test_stop_while_a_question_is_open_withdraws_it(kernel: Kernel, offline: Offline) -> None:
    configure(offline, "default_mode_request_user_input")
    question = {"id": "q", "header": "Q", "question": "Which?", "options": [{"label": "A", "description": ""}]}
    kernel.run("import ipywidgets.widgets.widget as _widget_module")
    models = []
    for _ in range(2):
        offline.model.add(function_call("request_user_input", {"questions": [question]}))
        execution = kernel.run("%%codex\nAsk.", on_message=when("Skip", lambda k, e: k.click(buttons(e)["Stop"])))
        assert execution.error is not None and execution.error["ename"] == "TurnInterruptedError"
        row = container_of(execution, buttons(execution)["Answer"])
        box = container_of(execution, row)
        updates = [
            m["content"]["data"]["state"]
            for m in execution.of("comm_msg")
            if m["content"]["data"].get("method") == "update"
        ]
        assert f"IPY_MODEL_{box}" in str([u["children"] for u in updates if "children" in u])
        # Then removed: the click closed the box's models (in messages whose parent is the click).
        assert kernel.value(f"{box!r} in _widget_module._instances") == "False"
        assert "withdrawn" in final_text(execution)
        models.append(kernel.value("len(_widget_module._instances)"))
    assert models[0] == models[1]  # no model of the request (its layouts and styles too) is left


def container_of(execution: Execution, model_id: str) -> str:
    """The box whose children include a widget."""
    for comm, state in widgets(execution, "HBoxModel") + widgets(execution, "VBoxModel"):
        if f"IPY_MODEL_{model_id}" in state.get("children", []):
            return comm
    raise AssertionError(f"no box holds {model_id}")
