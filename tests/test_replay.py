"""Record and replay: --replay auto records a turn and replays it without calling the model.

In-process against the real app-server and the scripted model; the last tests execute a
notebook twice in fresh kernels, as `jupyter nbconvert --execute` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.error import UsageError
from nbclient import NotebookClient

from codex_magic import ReplayMissingError
from codex_magic.scripted_model import exec_command, message

from .conftest import Offline

pytestmark = pytest.mark.appserver


def _recordings() -> list[Path]:
    return sorted(Path("codex-recordings").glob("*.jsonl"))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_auto_records_a_turn_then_replays_it_without_the_model(shell: Any, offline: Offline) -> None:
    offline.model.add(message("The answer."))
    shell.run_cell_magic("codex", "--replay auto --new", "Say one thing.")
    live = shell.user_ns["_codex_result"]
    assert len(offline.model.requests) == 1
    (path,) = _recordings()
    header, *rest = _lines(path)
    assert header["prompt"] == "Say one thing." and header["previous"] == ""
    assert [line["item"]["type"] for line in rest if "item" in line] == ["userMessage", "agentMessage"]
    assert rest[-1]["result"]["final_response"] == "The answer."

    shell.run_cell_magic("codex", "--replay auto --new", "Say one thing.")
    replayed = shell.user_ns["_codex_result"]
    assert len(offline.model.requests) == 1  # not called again
    # The recorded result, with the types of a live one.
    assert type(replayed) is type(live)
    assert replayed.final_response == live.final_response == "The answer."
    assert [type(item) for item in replayed.items] == [type(item) for item in live.items]
    assert [item.root.type for item in replayed.items] == [item.root.type for item in live.items]
    assert replayed.usage == live.usage and replayed.status == live.status and replayed.id == live.id
    assert replayed.elapsed == live.elapsed  # the original time
    note = replayed.notices[-1]
    assert note[0] == "replay" and path.name in note[1] and "the model was not called" in note[1]
    assert "replayed from" in replayed._repr_html_()


def test_an_edited_cell_or_an_earlier_edited_cell_calls_the_model(shell: Any, offline: Offline) -> None:
    offline.model.add(*(message(f"answer {n}") for n in range(5)))
    shell.run_cell_magic("codex", "--replay auto --new", "First.")
    shell.run_cell_magic("codex", "--replay auto", "Second.")
    assert len(offline.model.requests) == 2 and len(_recordings()) == 2
    # The same two cells again: both replayed.
    shell.run_cell_magic("codex", "--replay auto --new", "First.")
    shell.run_cell_magic("codex", "--replay auto", "Second.")
    assert len(offline.model.requests) == 2
    assert shell.user_ns["_codex_result"].final_response == "answer 1"
    # The second cell edited: it runs live.
    shell.run_cell_magic("codex", "--replay auto --new", "First.")
    shell.run_cell_magic("codex", "--replay auto", "Second, edited.")
    assert len(offline.model.requests) == 3
    # The first edited: the second (unchanged) runs live too, its history changed.
    shell.run_cell_magic("codex", "--replay auto --new", "First, edited.")
    shell.run_cell_magic("codex", "--replay auto", "Second.")
    assert len(offline.model.requests) == 5
    # Other options that change the turn are part of the key.
    offline.model.add(message("read-only"))
    shell.run_cell_magic("codex", "--replay auto --new --sandbox read-only", "First.")
    assert len(offline.model.requests) == 6


def test_only_without_a_recording_fails_in_one_line_naming_the_cell(shell: Any, offline: Offline) -> None:
    with pytest.raises(ReplayMissingError) as error:
        shell.run_cell_magic("codex", "--replay only --new", "Summarize the data.\nThen plot it.")
    message_text = str(error.value)
    assert "\n" not in message_text
    assert "no recording of this cell (In [" in message_text and "'Summarize the data.'" in message_text
    assert "--replay auto" in message_text
    assert offline.model.requests == []
    assert error.value._render_traceback_() == [f"ReplayMissingError: {message_text}"]


def test_off_calls_the_model_every_time_and_records_nothing(shell: Any, offline: Offline) -> None:
    offline.model.add(message("one"), message("two"))
    shell.run_cell_magic("codex", "--new", "Hello.")
    shell.run_cell_magic("codex", "--new", "Hello.")
    assert len(offline.model.requests) == 2
    assert not Path("codex-recordings").exists()


def test_replayed_turns_are_in_the_context_of_the_next_live_turn(shell: Any, offline: Offline) -> None:
    offline.model.add(message("Blue, recorded."), message("Noted."))
    shell.run_cell_magic("codex", "--replay auto --new", "My favourite colour is blue.")
    # A fresh kernel: the extension loaded again, no app-server, no thread.
    shell.run_line_magic("unload_ext", "codex_magic")
    shell.run_line_magic("load_ext", "codex_magic")
    shell.run_cell_magic("codex", "--replay auto", "My favourite colour is blue.")
    assert len(offline.model.requests) == 1
    shell.run_cell_magic("codex", "", "What is my favourite colour?")
    request = offline.model.requests[-1]
    assert "My favourite colour is blue." in request.input_texts("user")
    assert "Blue, recorded." in request.input_texts("assistant")
    assert request.input_texts("user")[-1] == "What is my favourite colour?"


def test_recordings_hold_no_secret_no_home_path_and_say_where_they_were_cut(
    shell: Any, offline: Offline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(offline.workspace.parent))
    monkeypatch.setattr("codex_magic._replay.MAX_CHARS", 500)
    secret = "sk-test-9f8e7d6c5b4a39281706"
    monkeypatch.setenv("NOTEBOOK_API_TOKEN", secret)  # hidden wherever a turn is shown
    offline.model.add(
        exec_command("seq 1 2000; pwd"),
        message(f"The key is {secret}. " + "long " * 200),
    )
    shell.run_cell_magic("codex", "--replay auto --new", f"Count, and keep {secret} safe.")
    (path,) = _recordings()
    text = path.read_text(encoding="utf-8")
    assert secret not in text and "••••••••" in text
    assert str(offline.workspace) not in text and "~/work" in text
    header = _lines(path)[0]
    assert "cut:" in header["note"]
    assert "more characters left out of the recording" in text
    # Replayed, the cut output says so, and the answer keeps its hidden secret hidden.
    shell.run_cell_magic("codex", "--replay auto --new", f"Count, and keep {secret} safe.")
    result = shell.user_ns["_codex_result"]
    assert len(offline.model.requests) == 2  # the command's turn made two model requests, once
    assert secret not in (result.final_response or "")


def test_a_bad_replay_mode_is_refused_with_the_choices(shell: Any, offline: Offline) -> None:
    with pytest.raises(UsageError, match="off, auto, only|'off', 'auto', 'only'"):
        shell.run_cell_magic("codex", "--replay sometimes", "Hello.")
    with pytest.raises(UsageError, match="replay"):
        shell.run_line_magic("config", "CodexMagic.replay = 'sometimes'")
    assert offline.model.requests == []


# -- a notebook run twice in fresh kernels ---------------------------------------------------------------


def _notebook(*prompts: str, mode: str = "auto") -> nbformat.NotebookNode:
    cells = [
        nbformat.v4.new_code_cell(f"%load_ext codex_magic\n%config CodexMagic.replay = {mode!r}"),
        *(nbformat.v4.new_code_cell(f"%%codex\n{prompt}") for prompt in prompts),
        nbformat.v4.new_code_cell("print(_codex_result.final_response)"),
    ]
    return nbformat.v4.new_notebook(cells=cells)


def _execute(notebook: nbformat.NotebookNode, where: Path) -> nbformat.NotebookNode:
    client = NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(where)}})
    client.execute()
    return notebook


@pytest.mark.kernel
def test_a_notebook_run_twice_with_auto_calls_the_model_only_the_first_time(
    tmp_path: Path, offline: Offline, jupyter_dirs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in offline.env.items():
        monkeypatch.setenv(key, value)
    offline.model.add(message("Paris."), exec_command("echo recorded"), message("It printed recorded."))
    first = _execute(_notebook("The capital of France?", "Run a command."), tmp_path)
    assert len(offline.model.requests) == 3
    nbformat.write(first, tmp_path / "first.ipynb")

    second = _execute(_notebook("The capital of France?", "Run a command."), tmp_path)
    assert len(offline.model.requests) == 3  # all replayed
    assert first.cells[-1].outputs[0].text == second.cells[-1].outputs[0].text == "It printed recorded.\n"
    for cell in second.cells[1:3]:
        (output,) = cell.outputs
        assert "replayed from codex-recordings/" in output.data["text/plain"]
        assert output.metadata["codex_magic"]["replayed"].startswith("codex-recordings/")
        assert "echo recorded" in second.cells[2].outputs[0].data["text/html"]
    # The saved notebook's provenance says which turns were replayed.
    nbformat.write(second, tmp_path / "second.ipynb")
    from codex_magic import provenance

    rows = provenance(tmp_path / "second.ipynb")
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    assert [bool(row["replayed"]) for row in rows] == [True, True]
    first_rows = provenance(tmp_path / "first.ipynb")
    first_rows = first_rows.to_dict("records") if hasattr(first_rows, "to_dict") else first_rows
    assert [row["turn_id"] for row in rows] == [row["turn_id"] for row in first_rows]

    # With `only`, an edited cell fails clearly and nothing calls the model.
    edited = _notebook("The capital of Italy?", mode="only")
    with pytest.raises(Exception) as error:
        _execute(edited, tmp_path)
    assert "ReplayMissingError: no recording of this cell" in str(error.value)
    assert len(offline.model.requests) == 3
    assert os.listdir(tmp_path / "codex-recordings")
