"""Codex in the live notebook: the kernel tools, called by the scripted model through the
real app-server, answered by a real kernel (and by the in-process shell for the blocking path).

Each test scripts the model to call a kernel tool, then reads what the model received in its
next request: the tool's answer is what Codex saw.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from codex_magic.scripted_model import ScriptedRequest, function_call, message

from .conftest import Execution, Kernel, Offline, wait_until
from .test_approvals import buttons, when

pytestmark = pytest.mark.kernel


def _told(request: ScriptedRequest) -> str:
    """What the last tool call returned to the model (its text)."""
    return request.function_call_outputs()[-1]


def _echo(request: ScriptedRequest) -> Any:
    return message("Told: " + _told(request))


def _images(request: ScriptedRequest) -> list[str]:
    """The images the last function_call_output carried."""
    outputs = [item for item in request.input if item.get("type") == "function_call_output"]
    output = outputs[-1].get("output") if outputs else None
    parts = output if isinstance(output, list) else []
    return [p.get("image_url", "") for p in parts if isinstance(p, dict) and p.get("type") == "input_image"]


def _ok(execution: Execution) -> None:
    assert execution.error is None, execution.error


def test_codex_sees_the_variables_and_a_dataframe(kernel: Kernel, offline: Offline) -> None:
    _ok(
        kernel.run(
            "import pandas as pd\nsales = pd.DataFrame({'month': ['Jan', 'Feb'], 'revenue': [120, 340]})\nthreshold = 200"
        )
    )
    offline.model.add(
        function_call("list_variables", {}),
        function_call("inspect_variable", {"name": "sales"}),
        _echo,
    )
    _ok(kernel.run("%%codex\nWhich month had the highest revenue?"))
    listed, inspected = offline.model.requests[1], offline.model.requests[2]
    assert "sales" in _told(listed) and "DataFrame" in _told(listed) and "threshold" in _told(listed)
    assert "In" not in _told(listed).split() and "get_ipython" not in _told(listed)
    assert "revenue" in _told(inspected) and "340" in _told(inspected) and "Feb" in _told(inspected)
    # Each call shows in the widget's saved transcript as an item.
    assert "list_variables" in kernel.value("_codex_result._repr_html_()")


def test_an_unknown_variable_is_a_tool_error(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(function_call("inspect_variable", {"name": "nothing_here"}), _echo)
    _ok(kernel.run("%%codex\nLook at nothing_here."))
    assert "No variable named 'nothing_here'" in _told(offline.model.requests[-1])


def test_a_run_is_declined_without_a_frontend(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(function_call("run_python", {"code": "made_by_codex = 42"}), _echo)
    execution = kernel.run("%%codex\nSet a variable.", shows_widgets=False)
    _ok(execution)
    assert "declined" in _told(offline.model.requests[-1])
    assert kernel.value("'made_by_codex' in globals()") == "False"


def test_a_run_asks_and_runs_after_approve(kernel: Kernel, offline: Offline) -> None:
    code = "made_by_codex = 6 * 7\nprint('set it')\nmade_by_codex"
    offline.model.add(function_call("run_python", {"code": code}), _echo)
    seen: dict[str, Any] = {}

    def approve(kernel: Kernel, execution: Execution) -> None:
        boxes = [
            m
            for m in execution.of("comm_open")
            if "Codex asks to run code" in json.dumps(m["content"]["data"]["state"])
        ]
        seen["box"] = json.dumps(boxes[0]["content"]["data"]["state"]) if boxes else ""
        kernel.click(buttons(execution)["Approve"])

    execution = kernel.run("%%codex\nSet a variable.", on_message=when("Approve for this turn", approve))
    _ok(execution)
    assert "made_by_codex = 6 * 7" in seen["box"]  # the code is shown before it runs
    told = _told(offline.model.requests[-1])
    assert "set it" in told and "42" in told
    assert kernel.value("made_by_codex") == "42"  # visible in the next cell


def test_a_plot_reaches_codex_as_an_image(kernel: Kernel, offline: Offline) -> None:
    code = "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('trend')"
    offline.model.add(function_call("run_python", {"code": code}), message("I see the plot."))
    _ok(kernel.run("%%codex --kernel-run allow\nPlot it."))
    images = _images(offline.model.requests[-1])
    assert len(images) == 1 and images[0].startswith("data:image/png;base64,")
    # The figure went to Codex, not into the cell's output area.
    assert kernel.value("len(__import__('matplotlib.pyplot').pyplot.get_fignums())") == "0"


def test_a_proposed_cell_lands_below_and_does_not_run(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(
        function_call("propose_cell", {"code": "fixed = sales_total * 2"}),
        function_call("propose_cell", {"code": "print(fixed)"}),
        message("Two cells proposed."),
    )
    execution = kernel.run("%%codex\nPropose a fix.")
    _ok(execution)
    payloads = execution.reply["content"].get("payload") or []
    cells = [p for p in payloads if p.get("source") == "set_next_input"]
    assert len(cells) == 1 and cells[0]["replace"] is False
    assert cells[0]["text"] == "# proposed by Codex\nfixed = sales_total * 2\n\nprint(fixed)"
    assert kernel.value("'fixed' in globals()") == "False"  # never run


def test_codex_fix_sends_the_traceback_and_the_cell(kernel: Kernel, offline: Offline) -> None:
    none_yet = kernel.run("%codex fix")
    assert none_yet.reply["content"]["status"] == "error"
    assert none_yet.stderr.startswith("UsageError: %codex fix: no cell has raised") and none_yet.stderr.count("\n") == 1
    failing = kernel.run("values = [1, 2, 3]\ntotal = values[10]")
    assert failing.error is not None
    offline.model.add(message("Index 10 is out of range."))
    _ok(kernel.run("%codex fix use the last item instead"))
    sent = "\n".join(offline.model.requests[-1].input_texts("user"))
    assert "use the last item instead" in sent
    assert "total = values[10]" in sent and "IndexError: list index out of range" in sent
    assert "\x1b" not in sent


def test_a_hanging_run_is_stopped_and_the_turn_goes_on(kernel: Kernel, offline: Offline) -> None:
    _ok(kernel.run("%config CodexMagic.kernel_run_timeout = 1"))
    offline.model.add(function_call("run_python", {"code": "import time\ntime.sleep(30)"}), _echo)
    execution = kernel.run("%%codex --kernel-run allow\nWait.", timeout=20)
    _ok(execution)
    assert execution.seconds < 10
    told = _told(offline.model.requests[-1])
    assert "stopped after 1 s" in told and "CodexMagic.kernel_run_timeout" in told
    assert kernel.value("_codex_result.final_response").startswith("Told:")


def test_tools_off_or_running_refused_answer_clearly(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(function_call("list_variables", {}), _echo, function_call("run_python", {"code": "1"}), _echo)
    _ok(kernel.run("%%codex --no-kernel-tools\nLook around."))
    assert "kernel tools are off" in _told(offline.model.requests[1])
    _ok(kernel.run("%%codex --kernel-run never\nRun something."))
    assert "does not allow running code" in _told(offline.model.requests[3])


def test_a_resumed_thread_still_has_the_tools(kernel: Kernel, offline: Offline) -> None:
    _ok(kernel.run("answer_value = 41"))
    offline.model.add(message("Hello."), function_call("inspect_variable", {"name": "answer_value"}), _echo)
    _ok(kernel.run("%%codex\nHello."))
    pid = int(kernel.value("__import__('codex_magic._session', fromlist=['x']).get_session().pid"))
    os.kill(pid, signal.SIGKILL)
    assert wait_until(
        lambda: not os.path.exists(f"/proc/{pid}/status") or "zombie" in open(f"/proc/{pid}/status").read()
    )
    _ok(kernel.run("%%codex\nWhat is answer_value?"))
    assert "41" in _told(offline.model.requests[-1])


def test_the_thread_is_told_it_works_in_a_live_kernel(kernel: Kernel, offline: Offline) -> None:
    _ok(kernel.run('%config CodexMagic.instructions = "Answer in French."'))
    offline.model.add(message("Bonjour."))
    _ok(kernel.run("%%codex\nHello."))
    body = json.dumps(offline.model.requests[-1].body)
    assert "live IPython kernel" in body and "propose_cell" in body and "Answer in French." in body
    tools = [tool.get("name") for tool in offline.model.requests[-1].body.get("tools", [])]
    for name in ("list_variables", "inspect_variable", "run_python", "propose_cell", "recent_cells"):
        assert name in tools


# -- context attached on request ----------------------------------------------------------------


def _user_images(request: ScriptedRequest) -> list[str]:
    """The images of the last user message the model received."""
    messages = [item for item in request.input if item.get("type") == "message" and item.get("role") == "user"]
    content = messages[-1].get("content") if messages else []
    return [part.get("image_url", "") for part in content or [] if part.get("type") == "input_image"]


def test_with_output_sends_the_last_plot_as_an_image(kernel: Kernel, offline: Offline) -> None:
    plot = kernel.run("import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.title('dip')")
    _ok(plot)
    _ok(kernel.run("1 + 1"))  # a later cell with only a result: --with-output N picks the plot's cell
    plot_cell = plot.of("execute_input")[0]["content"]["execution_count"]  # the [N] the notebook shows
    offline.model.add(message("A dip."), message("Two."))
    _ok(kernel.run(f"%%codex --with-output {plot_cell}\nWhat does the plot show?"))
    request = offline.model.requests[-1]
    assert len(_user_images(request)) == 1 and _user_images(request)[0].startswith("data:image/png;base64,")
    assert f"The output of cell [{plot_cell}]" in "\n".join(request.input_texts("user"))
    assert "attached" in kernel.value("_codex_result._repr_markdown_()")
    # Without N: the last cell that showed something, the "1 + 1" cell (a %%codex turn's own
    # output is not one).
    _ok(kernel.run("%%codex --with-output\nAnd this one?"))
    assert f"The output of cell [{plot_cell + 1}]:\n2" in "\n".join(offline.model.requests[-1].input_texts("user"))


def test_with_cells_and_vars_attach_only_what_is_asked(kernel: Kernel, offline: Offline) -> None:
    _ok(kernel.run("rows = [1, 2, 3]\nlabel = 'north'"))
    offline.model.add(message("one"), message("two"))
    prompt = "Rows {rows} in {label}; keep {0}, {unknown}, {{rows}}, $HOME and \\n as written."
    _ok(kernel.run(f"%%codex --vars --with-cells 1\n{prompt}"))
    sent = "\n".join(offline.model.requests[-1].input_texts("user"))
    assert "Rows [1, 2, 3] in 'north'; keep {0}, {unknown}, {[1, 2, 3]}, $HOME and \\n as written." in sent
    assert "rows = [1, 2, 3]" in sent  # the last cell's source
    _ok(kernel.run(f"%%codex\n{prompt}"))
    assert prompt in "\n".join(offline.model.requests[-1].input_texts("user"))  # verbatim without options


def test_with_output_of_nothing_is_a_usage_error(kernel: Kernel, offline: Offline) -> None:
    execution = kernel.run("%%codex --with-output\nWhat did it show?")
    assert execution.reply["content"]["status"] == "error"
    assert execution.stderr.startswith("UsageError: --with-output: no cell before this one has shown an output")
    assert offline.model.requests == []


def test_stop_stops_a_hanging_run_and_the_turn_goes_on(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(function_call("run_python", {"code": "import time\ntime.sleep(30)"}), _echo)
    clicked: list[bool] = []

    def stop_while_running(kernel: Kernel, execution: Execution, msg: dict[str, Any]) -> None:
        state = json.dumps(msg["content"].get("data", {}).get("state", {}))
        if not clicked and "running Codex" in state:
            (stop,) = [
                m["content"]["comm_id"]
                for m in execution.of("comm_open")
                if m["content"]["data"]["state"].get("description") == "Stop"
            ]
            kernel.click(stop)
            clicked.append(True)

    execution = kernel.run("%%codex --kernel-run allow\nWait.", on_message=stop_while_running, timeout=25)
    assert clicked
    _ok(execution)  # the run was stopped, not the turn
    assert execution.seconds < 15
    told = _told(offline.model.requests[-1])
    assert "The user stopped the run (Stop)" in told
    assert kernel.value("_codex_result.final_response").startswith("Told:")


def test_the_kernel_interrupt_stops_a_hanging_run_and_the_turn_goes_on(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(function_call("run_python", {"code": "import time\ntime.sleep(30)"}), _echo)
    sent: list[bool] = []

    def interrupt_while_running(kernel: Kernel, execution: Execution, msg: dict[str, Any]) -> None:
        if not sent and "running Codex" in json.dumps(msg["content"].get("data", {}).get("state", {})):
            kernel.manager.interrupt_kernel()  # what Jupyter's interrupt button does
            sent.append(True)

    execution = kernel.run("%%codex --kernel-run allow\nWait.", on_message=interrupt_while_running, timeout=25)
    assert sent
    _ok(execution)
    assert execution.seconds < 15
    assert "interrupted" in _told(offline.model.requests[-1]).lower()
    assert kernel.value("_codex_result.final_response").startswith("Told:")
