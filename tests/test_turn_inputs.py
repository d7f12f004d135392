"""What a cell sends besides its text, and what it gets back: --schema, --image, steering.

Against the real app-server and the scripted model: in-process (the blocking path) and in a
real kernel, with the comm messages a frontend sends.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from codex_magic import OutputSchemaError
from codex_magic.scripted_model import Reply, ScriptedRequest, message

from .conftest import Execution, Kernel, Offline

pytestmark = pytest.mark.appserver

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _user_content(request: ScriptedRequest) -> list[dict[str, Any]]:
    messages = [item for item in request.input if item.get("type") == "message" and item.get("role") == "user"]
    return list(messages[-1].get("content") or []) if messages else []


# -- --schema ---------------------------------------------------------------------------------------


def test_schema_from_a_pydantic_class_gives_a_model_instance(shell: Any, offline: Offline) -> None:
    shell.run_cell(
        "from pydantic import BaseModel\nclass Peak(BaseModel):\n    month: str\n    revenue: int\n    note: str | None = None"
    )
    offline.model.add(message('{"month": "Mar", "revenue": 2140, "note": null}'))
    shell.run_cell_magic("codex", "--schema Peak", "Which month peaked?")
    result = shell.user_ns["_codex_result"]
    assert type(result.parsed).__name__ == "Peak" and result.parsed.revenue == 2140 and result.schema_error is None
    sent = offline.model.requests[-1].body["text"]["format"]
    assert sent["type"] == "json_schema" and sent["strict"] is True
    # Strict mode: every property required and the object closed; the optional one stays nullable.
    assert (
        sent["schema"]["required"] == ["month", "revenue", "note"] and sent["schema"]["additionalProperties"] is False
    )


def test_schema_from_a_dict_gives_the_json_value(shell: Any, offline: Offline) -> None:
    shell.user_ns["shape"] = {"type": "object", "properties": {"total": {"type": "integer"}}, "required": ["total"]}
    offline.model.add(message('{"total": 12}'))
    shell.run_cell_magic("codex", "--schema shape", "Count them.")
    assert shell.user_ns["_codex_result"].parsed == {"total": 12}


def test_an_answer_that_does_not_validate_keeps_the_text_and_says_why(
    shell: Any, offline: Offline, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("from pydantic import BaseModel\nclass Peak(BaseModel):\n    month: str\n    revenue: int")
    offline.model.add(message('{"month": "Mar", "revenue": "a lot"}'))
    with pytest.raises(OutputSchemaError) as caught:
        shell.run_cell_magic("codex", "--schema Peak", "Which month peaked?")
    text = str(caught.value)
    assert "the answer does not match Peak: revenue:" in text and "\n" not in text
    result = shell.user_ns["_codex_result"]
    assert caught.value.result is result and result.parsed is None
    assert result.final_response == '{"month": "Mar", "revenue": "a lot"}'  # the raw text is kept
    assert "does not match Peak" in capsys.readouterr().out  # the view says why


@pytest.mark.parametrize(
    ("setup", "line", "expected"),
    [
        ("", "--schema Missing", "--schema Missing: no such variable"),
        ("not_a_schema = 3", "--schema not_a_schema", "not_a_schema is a int: --schema takes a pydantic model class"),
        ("bad = {'type': 'object', 'properties': 5}", "--schema bad", "it is not a valid JSON schema"),
        ("listy = {'type': 'array'}", "--schema listy", "must describe an object"),
    ],
)
def test_a_bad_schema_is_a_usage_error(shell: Any, offline: Offline, setup: str, line: str, expected: str) -> None:
    shell.run_cell(setup)
    with pytest.raises(UsageError, match=expected):
        shell.run_cell_magic("codex", line, "Hello")
    assert offline.model.requests == []


# -- --image -------------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Any:
    """A local web server for tmp_path (an image URL without the network)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_image_file_and_url_reach_the_model(shell: Any, offline: Offline, tmp_path: Path, served: str) -> None:
    picture = tmp_path / "chart.png"
    picture.write_bytes(PNG)
    offline.model.add(message("A tiny image."))
    shell.run_cell_magic("codex", f"--image {picture} --image {served}/chart.png", "What is this?")
    images = [part for part in _user_content(offline.model.requests[-1]) if part.get("type") == "input_image"]
    inline = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert [image["image_url"] for image in images] == [inline, inline]
    shown = shell.user_ns["_codex_result"]._repr_html_()
    assert "chart.png" in shown and "images sent" in shown


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("missing.png", "no such file"),
        ("notes.txt", "not an image Codex takes"),
        ("http://127.0.0.1:9/none.png", "could not fetch it"),
    ],
)
def test_a_bad_image_is_a_usage_error_before_anything_is_sent(
    shell: Any, offline: Offline, value: str, expected: str
) -> None:
    Path("notes.txt").write_text("not a picture")
    with pytest.raises(UsageError, match=expected):
        shell.run_cell_magic("codex", f"--image {value}", "Look.")
    assert offline.model.requests == []


# -- steering -------------------------------------------------------------------------------------------


def _steering(execution: Execution) -> tuple[str, str]:
    """The comm ids of the turn's steering box and its Send button."""
    opened = {m["content"]["comm_id"]: m["content"]["data"]["state"] for m in execution.of("comm_open")}
    box = next(c for c, s in opened.items() if str(s.get("placeholder", "")).startswith("Add to this turn"))
    send = next(
        c for c, s in opened.items() if s.get("_model_name") == "ButtonModel" and s.get("description") == "Send"
    )
    return box, send


@pytest.mark.kernel
def test_a_steer_reaches_the_model_mid_turn(kernel: Kernel, offline: Offline) -> None:
    offline.model.add(Reply(items=[message("slow " * 200, deltas=True)], delay=0.02), message("Cats, then."))
    sent: list[bool] = []

    def steer_when_streaming(kernel: Kernel, execution: Execution, msg: dict[str, Any]) -> None:
        state = json.dumps(msg["content"].get("data", {}).get("state", {}))
        # The box appears once the turn has run for a second (STEER_AFTER).
        if not sent and msg["msg_type"] == "comm_open" and '"Send"' in state:
            box, send = _steering(execution)
            kernel.update(box, {"value": "Also mention cats."})
            kernel.click(send)
            sent.append(True)

    execution = kernel.run("%%codex\nTalk slowly.", on_message=steer_when_streaming)
    assert execution.error is None, execution.error
    assert sent
    assert offline.model.requests[-1].input_texts("user")[-1] == "Also mention cats."
    assert kernel.value("_codex_result.final_response") == "Cats, then."
    final = execution.of("update_display_data")[-1]["content"]["data"]
    assert "you, during the turn" in final["text/html"] and "Also mention cats." in final["text/html"]
    # The box is gone with the finished widget: its models are closed.
    box, send = _steering(execution)
    closed = {m["content"]["comm_id"] for m in execution.of("comm_close")}
    assert {box, send} <= closed


def test_a_steer_after_the_turn_ended_is_said_to_be_refused(shell: Any, offline: Offline) -> None:
    from codex_magic._runner import TurnRun

    runs: list[TurnRun] = []
    original = TurnRun.begin

    def keep(self: TurnRun) -> None:
        runs.append(self)
        original(self)

    offline.model.add(message("done"))
    TurnRun.begin = keep  # type: ignore[method-assign]
    try:
        shell.run_cell_magic("codex", "", "Hello")
    finally:
        TurnRun.begin = original  # type: ignore[method-assign]
    run = runs[0]
    run.steer("too late")
    run._drain()
    assert any("not sent, the turn has ended" in notice.text for notice in run.transcript.notices)
