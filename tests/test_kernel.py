"""Real-kernel tests: %%codex cells in ipykernel (through jupyter_client) against the real
codex app-server and the scripted model."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from codex_magic.scripted_model import Reply, exec_command, http_error, message

from .conftest import Kernel, Offline, pid_alive, wait_until

pytestmark = [pytest.mark.kernel, pytest.mark.appserver]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _app_server_pid(kernel: Kernel) -> int:
    return int(kernel.value("__import__('codex_magic._session').__dict__['_session']._session.pid"))


def test_two_cells_continue_one_thread(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(message("Nice to meet you, Ada."), message("Your name is Ada."))

    first = kernel.run("%%codex\nMy name is Ada.")
    assert first.error is None, first.error
    thread = kernel.value("_codex_result.final_response")
    assert thread == "Nice to meet you, Ada."
    first_thread = kernel.value("__import__('codex_magic._session').__dict__['_session'].current_thread_id()")

    second = kernel.run("%%codex\nWhat is my name?")
    assert second.error is None, second.error
    assert kernel.value("_codex_result.final_response") == "Your name is Ada."

    requests = offline.model.requests
    assert len(requests) == 2
    assert "My name is Ada." in " ".join(requests[1].input_texts("user"))
    assert "Nice to meet you, Ada." in " ".join(requests[1].input_texts("assistant"))
    same_thread = kernel.run("%codex thread")
    assert same_thread.stdout.strip() == first_thread


def test_command_item_lands_in_result(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(exec_command("printf 'alpha\\nbeta\\n'"), message("It printed two lines."))

    execution = kernel.run("%%codex\nRun the command.")
    assert execution.error is None, execution.error
    summary = kernel.value(
        "[(i.root.type, i.root.exit_code, i.root.aggregated_output) for i in _codex_result.items "
        "if i.root.type == 'commandExecution']"
    )
    assert "'commandExecution', 0," in summary and "alpha\\nbeta" in summary
    assert kernel.value("_codex_result.status.value") == "completed"
    assert kernel.value("_codex_result.final_response") == "It printed two lines."
    assert "alpha" in offline.model.requests[1].function_call_outputs()[-1]


def test_http_500_gives_failed_result_and_next_cell_works(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(http_error(500, "scripted outage"), message("Back again."))

    failed = kernel.run("%%codex\nThis one fails.")
    assert failed.error is not None
    assert failed.error["ename"] == "TurnFailedError"
    assert "_codex_result" in failed.error["evalue"]
    assert len(failed.error["traceback"]) == 1  # one clear line, no traceback
    assert kernel.value("_codex_result.status.value") == "failed"
    assert kernel.value("bool(_codex_result.error.message)") == "True"

    again = kernel.run("%%codex\nTry again.")
    assert again.error is None, again.error
    assert kernel.value("_codex_result.final_response") == "Back again."


def test_interrupt_mid_stream_keeps_partial_result(kernel: Kernel, offline: Offline) -> None:
    slow = Reply(items=[message("word " * 400, deltas=True)], delay=0.02)
    offline.model.add(slow, message("Still here."))

    sent: dict[str, float] = {}

    def interrupt_when_streaming(kernel: Kernel, execution: Any, message: dict[str, Any]) -> None:
        state = json.dumps(message["content"].get("data", {}).get("state", {}))
        if not sent and message["msg_type"] in ("comm_msg", "comm_open") and "word word word" in state:
            kernel.manager.interrupt_kernel()  # what Jupyter's interrupt button does
            sent["at"] = time.monotonic()

    execution = kernel.run("%%codex\nTalk slowly.", on_message=interrupt_when_streaming)
    assert sent, "the turn never streamed"
    assert time.monotonic() - sent["at"] < 2.5  # the cell ended within ~2 s of the interrupt
    assert execution.error is not None and execution.error["ename"] == "TurnInterruptedError"
    assert kernel.value("_codex_result.status.value") == "interrupted"
    assert kernel.value("_codex_result.final_response") == "None"
    partial = kernel.value("len(_codex_result.items[-1].root.text)")
    assert 0 < int(partial) < len("word " * 400)

    # The message still streaming when the turn ended is marked in the saved output.
    final = execution.of("update_display_data")[-1]["content"]["data"]
    assert "interrupted" in final["text/plain"] and "unfinished" in final["text/html"]
    assert "\u258d" not in final["text/html"]  # no streaming cursor left

    pid = _app_server_pid(kernel)
    assert pid_alive(pid)  # SIGINT went to the kernel's process group, not the app-server
    again = kernel.run("%%codex\nAre you still there?")
    assert again.error is None, again.error
    assert kernel.value("_codex_result.final_response") == "Still here."
    assert _app_server_pid(kernel) == pid
    assert "Talk slowly." in " ".join(offline.model.requests[-1].input_texts("user"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%%codex --bogus\nhi", "unrecognized arguments"),
        ("%%codex --sandbox nowhere\nhi", "invalid choice"),
        ("%%codex --effort loud\nhi", "invalid choice"),
        ("%%codex\n   \n", "needs a prompt"),
        ("%%codex --cwd /does/not/exist\nhi", "not a directory"),
        ("%%codex --out 1x\nhi", "not a Python name"),
        ("%codex frobnicate", "unknown command"),
    ],
)
def test_bad_input_gives_usage_error(kernel: Kernel, line: str, expected: str) -> None:
    execution = kernel.run(line)
    # IPython shows a UsageError as one line on stderr, and the cell fails.
    assert execution.reply["content"]["status"] == "error"
    assert execution.stderr.startswith("UsageError: ")
    assert expected in execution.stderr
    assert execution.stderr.count("\n") == 1


def test_a_turn_shows_as_plain_output_then_as_the_live_widget(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(message("ready"), Reply(items=[message("tick " * 100, deltas=True)], delay=0.02))

    assert kernel.run("%%codex\nWarm up.").error is None  # a later cell: the app-server is up
    execution = kernel.run("%%codex\nStream something.")
    assert execution.error is None, execution.error
    displays = execution.of("display_data")
    assert len(displays) == 1
    first = displays[0]["content"]
    # Plain output first: on screen at once, and no widget model for a quick turn.
    assert "text/html" in first["data"] and WIDGET_MIME not in first["data"]
    assert first["metadata"] == {"codex_magic": {"status": "running"}}
    display_id = first["transient"]["display_id"]
    shown = execution.of("update_display_data")
    assert all(m["content"]["transient"]["display_id"] == display_id for m in shown)
    # Then, the turn having run for CodexMagic.live_after, the same output becomes the widget.
    live = [i for i, m in enumerate(shown) if WIDGET_MIME in m["content"]["data"]]
    assert len(live) == 1 and "text/plain" in shown[live[0]]["content"]["data"]
    assert any("tick" in m["content"]["data"].get("text/html", "") for m in shown[: live[0]])
    widget = shown[live[0]]["content"]["data"][WIDGET_MIME]["model_id"]
    assert widget in {m["content"]["comm_id"] for m in execution.of("comm_open")}

    updates = [m for m in execution.of("comm_msg") if m["content"]["data"].get("method") == "update"]
    # Widget updates arrive while the turn runs: before the final update_display_data.
    final = execution.messages.index(shown[-1])
    during = [m for m in updates if execution.messages.index(m) < final]
    assert during
    texts = [json.dumps(m["content"]["data"]["state"]) for m in during]
    assert any("tick" in text for text in texts)

    final_bundle = shown[-1]["content"]
    assert WIDGET_MIME not in final_bundle["data"]
    assert "tick tick" in final_bundle["data"]["text/html"]
    assert "completed" in final_bundle["data"]["text/plain"]
    assert final_bundle["metadata"]["codex_magic"]["status"] == "completed"


def test_config_defaults_and_out(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(message("one"), message("two"))

    kernel.run('%config CodexMagic.model = "scripted-special"')
    first = kernel.run("%%codex --out answer\nHello")
    assert first.error is None, first.error
    assert offline.model.requests[0].body["model"] == "scripted-special"
    assert kernel.value("answer is _codex_result") == "True"

    second = kernel.run("%%codex --model other-model\nAgain")
    assert second.error is None, second.error
    assert offline.model.requests[1].body["model"] == "other-model"


def test_each_turn_runs_with_its_own_settings_though_only_changes_are_sent(kernel: Kernel, offline: Offline) -> None:
    # A turn sends the app-server only the settings that differ from the thread's last turn
    # (the rest sticks to the thread): a one-off option must still end with its cell.
    offline.model.add(*[message(word) for word in ("one", "two", "three", "four", "five")])
    kernel.run('%load_ext codex_magic\n%config CodexMagic.model = "scripted-special"')
    for cell in ("Hello", "--model other-model\nAgain", "Back", "Same"):
        line, _, prompt = cell.rpartition("\n")
        assert kernel.run(f"%%codex {line}\n{prompt}").error is None
    assert [r.body["model"] for r in offline.model.requests] == [
        "scripted-special", "other-model", "scripted-special", "scripted-special"
    ]  # fmt: skip
    assert kernel.run("import os\nos.makedirs('sub', exist_ok=True)\n%cd sub").error is None
    assert kernel.run("%%codex\nWhere?").error is None
    context = "\n".join(offline.model.requests[-1].input_texts("user"))
    assert f"<cwd>{offline.workspace / 'sub'}</cwd>" in context, context  # the kernel's directory, per cell


def test_new_thread_forgets_the_conversation(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(message("first"), message("second"), message("third"))

    kernel.run("%%codex\nRemember the word kumquat.")
    old = kernel.run("%codex thread").stdout.strip()
    kernel.run("%%codex --new\nWhat was the word?")
    new = kernel.run("%codex thread").stdout.strip()
    assert old != new
    assert "kumquat" not in " ".join(offline.model.requests[1].input_texts("user"))

    kernel.run("%codex new")
    kernel.run("%%codex\nAnd now?")
    assert kernel.run("%codex thread").stdout.strip() not in (old, new)


def test_unload_and_shutdown_stop_the_app_server(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(message("hi"), message("hi again"))

    kernel.run("%%codex\nHello")
    pid = _app_server_pid(kernel)
    assert pid_alive(pid)
    kernel.run("%unload_ext codex_magic")
    assert wait_until(lambda: not pid_alive(pid))

    kernel.run("%load_ext codex_magic")
    kernel.run("%%codex\nHello again")
    pid = _app_server_pid(kernel)
    kernel.shutdown()
    assert wait_until(lambda: not pid_alive(pid))


def test_load_is_cheap(kernel: Kernel) -> None:
    # %load_ext ran in the fixture: neither the SDK nor the app-server started.
    assert kernel.value("'openai_codex' in __import__('sys').modules") == "False"


def test_fast_stream_sends_a_bounded_number_of_updates(kernel: Kernel, offline: Offline) -> None:
    text = "".join(f"w{i % 10} " for i in range(3000))
    offline.model.add(Reply(items=[message(text, deltas=True, chunk=3)], delay=0.001))

    execution = kernel.run("%%codex\nStream fast.")
    assert execution.error is None, execution.error
    updates = [m for m in execution.of("comm_msg") if m["content"]["data"].get("method") == "update"]
    # 3,000 deltas; at most 4 refreshes a second, each touching the header and one item.
    assert len(updates) <= 2 * (4 * execution.seconds + 3), (len(updates), execution.seconds)
    final_bundle = execution.of("update_display_data")[-1]["content"]["data"]
    assert text.strip()[-40:] in final_bundle["text/plain"]
    assert kernel.value("len(_codex_result.final_response)") == str(len(text))


def test_saved_output_and_result_display_carry_the_transcript(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(exec_command("printf 'alpha\\n'"), message("Printed **alpha**."))

    kernel.run("%load_ext codex_magic\n%config CodexMagic.live_after = 0")  # the live widget from the start
    execution = kernel.run("%%codex\nRun it.")
    assert execution.error is None, execution.error
    final = execution.of("update_display_data")[-1]["content"]["data"]
    # The finished turn is the static transcript: no widget left to render or to keep open.
    assert set(final) == {"text/plain", "text/html", "text/markdown"}
    opened = {
        m["content"]["comm_id"]
        for m in execution.of("comm_open")
        # Layouts and styles are shared by every turn of the kernel: made once, kept.
        if not m["content"]["data"]["state"]["_model_name"].endswith(("LayoutModel", "StyleModel"))
    }
    closed = {m["content"]["comm_id"] for m in execution.of("comm_close")}
    assert opened and opened <= closed
    assert "<strong>alpha</strong>" in final["text/html"]
    assert "printf" in final["text/markdown"] and "Printed" in final["text/markdown"]

    shown = kernel.run("_codex_result")
    (result,) = shown.of("execute_result")
    data = result["content"]["data"]
    assert "<strong>alpha</strong>" in data["text/html"] and "printf" in data["text/html"]
    assert "Printed" in data["text/markdown"]
    assert data["text/plain"].startswith("[codex]")


def _button_ids(execution: Any, label: str = "Stop") -> list[str]:
    return [
        m["content"]["comm_id"]
        for m in execution.of("comm_open")
        if m["content"]["data"]["state"].get("_model_name") == "ButtonModel"
        and m["content"]["data"]["state"].get("description") == label
    ]


def test_stop_button_interrupts_the_turn_and_the_thread_goes_on(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(Reply(items=[message("word " * 400, deltas=True)], delay=0.02), message("Still here."))
    clicked: dict[str, float] = {}

    def click_when_streaming(kernel: Kernel, execution: Any, message: dict[str, Any]) -> None:
        state = json.dumps(message["content"].get("data", {}).get("state", {}))
        if not clicked and message["msg_type"] in ("comm_msg", "comm_open") and "word word word" in state:
            (button,) = _button_ids(execution)
            kernel.click(button)
            clicked["at"] = time.monotonic()

    execution = kernel.run("%%codex\nTalk slowly.", on_message=click_when_streaming)
    assert clicked, "the turn never streamed"
    assert time.monotonic() - clicked["at"] < 2.5  # the cell ended soon after the click
    assert execution.error is not None and execution.error["ename"] == "TurnInterruptedError"
    assert "stopped by the user" in execution.error["evalue"]
    assert kernel.value("_codex_result.status.value") == "interrupted"
    assert 0 < int(kernel.value("len(_codex_result.items[-1].root.text)")) < len("word " * 400)
    # The button is shown from the start, and gone from the finished widget.
    (button,) = _button_ids(execution)
    last_children = [
        m["content"]["data"]["state"]["children"]
        for m in execution.of("comm_open", "comm_msg")
        if "children" in m["content"]["data"].get("state", {})
    ]
    assert f"IPY_MODEL_{button}" in str(last_children) and f"IPY_MODEL_{button}" not in str(last_children[-1])

    again = kernel.run("%%codex\nAre you there?")
    assert again.error is None, again.error
    assert kernel.value("_codex_result.final_response") == "Still here."


def _buttons(execution: Any) -> dict[str, str]:
    return {
        m["content"]["data"]["state"]["description"]: m["content"]["comm_id"]
        for m in execution.of("comm_open")
        if m["content"]["data"]["state"].get("_model_name") == "ButtonModel"
    }


@pytest.mark.parametrize(("choice", "runs"), [("Approve", True), ("Decline", False)])
def test_approval_is_asked_in_the_widget(kernel: Kernel, offline: Offline, choice: str, runs: bool) -> None:
    marker = offline.workspace / "approved.txt"
    escalate = exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="make a file")
    offline.model.add(escalate, message("Done."))
    asked: dict[str, Any] = {}

    def answer(kernel: Kernel, execution: Any, message: dict[str, Any]) -> None:
        buttons = _buttons(execution)
        if not asked and "Cancel the turn" in buttons:  # the last button of the request
            asked["buttons"] = sorted(buttons)
            asked["marker existed"] = marker.exists()
            kernel.click(buttons[choice])

    execution = kernel.run("%%codex --sandbox read-only\nMake the file.", on_message=answer)
    assert execution.error is None, execution.error
    assert "Approve" in asked["buttons"] and "Decline" in asked["buttons"]
    assert asked["marker existed"] is False  # the command waited for the click
    assert marker.exists() is runs
    final = execution.of("update_display_data")[-1]["content"]["data"]["text/plain"]
    assert ("approved" if runs else "declined") in final and "the user" in final
    output = offline.model.requests[-1].function_call_outputs()[-1].lower()
    assert ("rejected" in output) is not runs


def test_stop_while_an_approval_is_open_withdraws_it(kernel: Kernel, offline: Offline) -> None:
    marker = offline.workspace / "never.txt"
    escalate = exec_command(f"touch {marker}", sandbox_permissions="require_escalated", justification="make a file")
    offline.model.add(escalate, message("unused"), message("Next."))
    clicked: dict[str, float] = {}

    def stop(kernel: Kernel, execution: Any, message: dict[str, Any]) -> None:
        buttons = _buttons(execution)
        if not clicked and "Cancel the turn" in buttons:
            kernel.click(buttons["Stop"])
            clicked["at"] = time.monotonic()

    execution = kernel.run("%%codex --sandbox read-only\nMake the file.", on_message=stop)
    assert clicked and time.monotonic() - clicked["at"] < 3
    assert execution.error is not None and execution.error["ename"] == "TurnInterruptedError"
    assert not marker.exists()
    assert "withdrawn" in execution.of("update_display_data")[-1]["content"]["data"]["text/plain"]
    again = kernel.run("%%codex\nGo on.")
    assert again.error is None, again.error


def test_long_streaming_message_is_sent_in_blocks(kernel: Kernel, offline: Offline) -> None:
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor " * 30 for i in range(120)]  # about 66 KB
    text = "\n\n".join(paragraphs)
    offline.model.add(Reply(items=[message(text, deltas=True, chunk=40)], delay=0.001))

    execution = kernel.run("%%codex\nWrite a lot.")
    assert execution.error is None, execution.error
    sizes = [
        len(json.dumps(m["content"]["data"]["state"]))
        for m in execution.of("comm_msg")
        if m["content"]["data"].get("method") == "update" and "value" in m["content"]["data"]["state"]
    ]
    final = execution.of("update_display_data")[-1]["content"]["data"]
    # While it streams, no refresh re-sends the whole message; the finished one is whole.
    assert max(sizes[:-3]) < len(text) / 2, sizes
    assert "Paragraph 119" in final["text/html"] and "Paragraph 0" in final["text/html"]
    assert kernel.value("len(_codex_result.final_response)") == str(len(text))


def test_prompt_like_lines_reach_the_model_as_written(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(message("Seen."))
    # IPython strips such prompts from ordinary cells; a %%codex cell's text is the request.
    body = ">>> total = 1 + 1\n... more\nIn [1]: x = 2\n   ...: y = 3\n    indented"

    execution = kernel.run(f"\n  %%codex --effort low\n  {body.replace(chr(10), chr(10) + '  ')}\n\n")
    assert execution.error is None, execution.error
    assert kernel.value("_codex_result.final_response") == "Seen."
    assert body in offline.model.requests[-1].input_texts("user")
    assert (offline.model.requests[-1].body.get("reasoning") or {}).get("effort") == "low"


def test_bad_config_fails_the_cell_and_keeps_the_value(kernel: Kernel) -> None:
    for assignment in ('effort = "bogus"', "approval_timeout = -1"):
        execution = kernel.run(f"%config CodexMagic.{assignment}")
        assert execution.reply["content"]["status"] == "error"
        assert execution.stderr.startswith("UsageError: %config CodexMagic.") and execution.stderr.count("\n") == 1
        assert "The setting is unchanged." in execution.stderr
    magic = "get_ipython().magics_manager.registry['CodexMagic']"
    assert kernel.value(f"({magic}.effort, {magic}.approval_timeout)") == "(None, 600.0)"
    assert kernel.run('%config CodexMagic.effort = "high"').reply["content"]["status"] == "ok"
    assert kernel.value(f"{magic}.effort") == "high"


def test_a_hundred_turns_leave_no_widget_model_open(kernel: Kernel, offline: Offline) -> None:
    """Each finished turn's output is static: its widget models are closed (kernel and page)."""
    offline.model.add(*[message("ok")] * 101)
    kernel.run("%load_ext codex_magic\nimport ipywidgets.widgets.widget as _widget_module")
    count = "len(_widget_module._instances)"
    quick = kernel.run("%%codex\nSay ok.")  # a quick turn stays plain output: it opens no widget model
    assert quick.error is None and not quick.of("comm_open", "comm_msg", "comm_close"), quick.counts()
    assert int(kernel.value(count)) == 0
    kernel.run("%config CodexMagic.live_after = 0")  # every turn a live widget from its start
    execution = kernel.run("%%codex\nSay ok.")
    assert execution.error is None, execution.error
    after_one = int(kernel.value(count))  # the layouts and styles every turn shares
    opened, closed = set(), set()
    for _ in range(99):
        execution = kernel.run("%%codex\nSay ok.")
        assert execution.error is None, execution.error
        opened |= {m["content"]["comm_id"] for m in execution.of("comm_open")}
        closed |= {m["content"]["comm_id"] for m in execution.of("comm_close")}
    assert int(kernel.value(count)) == after_one <= 6
    assert opened and opened <= closed  # the page was told to drop every model a turn opened
