"""The demo notebook, executed headlessly as nbconvert and nbclient run it, offline."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

pytestmark = [pytest.mark.kernel, pytest.mark.appserver]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "quickstart.ipynb"


def execute(name: str, where: Path, *, data: tuple[str, ...] = (), **hooks: Any) -> nbformat.NotebookNode:
    """Run a notebook of notebooks/ in ``where`` as nbconvert --execute does; return it run.

    ``data`` names files of notebooks/ the notebook reads, copied next to it; ``hooks`` are
    nbclient's (``on_cell_executed=...``).
    """
    for file in (name, *data):
        shutil.copy(NOTEBOOKS / file, where / file)
    notebook = nbformat.read(where / name, as_version=4)
    # As `jupyter nbconvert --execute`, with its default settings (widget state stored).
    client = NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(where)}}, **hooks)
    client.execute()
    return notebook


def _text(cell: nbformat.NotebookNode) -> str:
    """What a cell printed, and its outputs' text/plain, in order."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def test_quickstart_runs_offline_and_its_html_shows_the_turns(tmp_path: Path, jupyter_dirs: None) -> None:
    notebook = execute("quickstart.ipynb", tmp_path)

    codex_cells = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith("%%codex")]
    assert len(codex_cells) == 3
    for cell in codex_cells:
        (output,) = cell.outputs
        data = output["data"]
        # The finished turn's output is the static transcript: no widget to render.
        assert set(data) == {"text/html", "text/markdown", "text/plain"}
        assert "completed" in data["text/plain"]

    # Rendered with nbconvert's default settings: the answers are visible text on the page.
    html, _ = HTMLExporter().from_notebook_node(notebook)
    for expected in (
        "Codex agent from a notebook cell",  # the first answer
        "ls -1 | head -n 10",  # the command Codex ran
        "quickstart.ipynb",  # its output
        "this turn continues the same conversation",  # the follow-up
    ):
        assert expected in html
    assert "Error displaying widget" not in html


def test_approvals_notebook_headless_declines_each_request_visibly(tmp_path: Path, jupyter_dirs: None) -> None:
    notebook = execute("approvals.ipynb", tmp_path)
    backup, question = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith("%%codex")]
    backup_text = backup.outputs[0]["data"]["text/plain"]
    assert "declined: run a command outside the sandbox: mkdir -p backup" in backup_text
    assert "no interactive frontend (CodexMagic.headless_approval = 'decline')" in backup_text
    assert "You declined, so nothing was copied." in backup_text and not (tmp_path / "backup").exists()
    question_text = question.outputs[0]["data"]["text/plain"]
    assert "declined: a question: Which language should the example use?" in question_text
    assert "No answer, so I will pick Python." in question_text


def test_notebook_agent_runs_offline_and_codex_answers_from_the_kernel(tmp_path: Path, jupyter_dirs: None) -> None:
    import pandas as pd

    sales = pd.read_csv(NOTEBOOKS / "sales.csv", thousands=",")
    by_month = sales.groupby("month", sort=False)["revenue"].sum()
    best = f"Revenue peaked in **{by_month.idxmax()}** ({by_month.max():,})"
    payloads: dict[int, list[dict[str, Any]]] = {}

    def keep_payload(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        payloads[cell_index] = execute_reply["content"].get("payload") or []

    started = time.monotonic()
    notebook = execute("notebook_agent.ipynb", tmp_path, data=("sales.csv",), on_cell_executed=keep_payload)
    print(f"notebook_agent.ipynb ran in {time.monotonic() - started:.1f} s")

    code = [(i, c) for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    assert not [c.source for _, c in code for o in c.outputs if o.output_type == "error"]
    assert not [c.source for _, c in code for o in c.outputs if o.get("name") == "stderr"]
    (plot, plot_cell), (fix, _) = [(i, c) for i, c in code if c.source.startswith("%%codex")]
    assert plot_cell.source.startswith("%%codex --kernel-run allow")

    # The first turn: the kernel tools in order, the chart went back to Codex as an image, and the
    # answer was built from what the tools returned (the month with the highest revenue, counted
    # with the "1,200" that pandas reads as text).
    transcript = _text(plot_cell)
    assert "completed" in transcript and best in transcript
    assert transcript.index("list_variables(") < transcript.index("inspect_variable(") < transcript.index("run_python(")
    items = _text(next(c for i, c in code if i > plot and "_codex_result.items" in c.source))
    assert items.startswith(
        "list_variables: success=True, images=0\n"
        "inspect_variable: success=True, images=0\n"
        "run_python: success=True, images=1\n"
    )
    assert best in items
    assert "Jun    1895" in _text(next(c for i, c in code if c.source == "by_month"))  # Codex's variable

    # The second turn proposed a cell: the execute reply asks the frontend for a new cell below
    # (nbclient does not add it), and the turn's result holds the code. Nothing ran it.
    (proposal,) = [p for p in payloads[fix] if p.get("source") == "set_next_input"]
    assert proposal["replace"] is False
    header, _, proposed = proposal["text"].partition("\n")
    assert header == "# proposed by Codex" and 'pd.to_numeric(sales["revenue"]' in proposed
    assert not any(p.get("source") == "set_next_input" for i, ps in payloads.items() if i != fix for p in ps)
    assert _text(next(c for i, c in code if i > fix and "propose_cell" in c.source)).startswith(proposed + "\n")

    html, _ = HTMLExporter().from_notebook_node(notebook)
    for expected in (best.replace("**", "<strong>", 1).replace("**", "</strong>", 1), "propose_cell", "run_python"):
        assert expected in html
    assert "data:image/png;base64," in html  # the chart, under the run_python call
    assert "Error displaying widget" not in html


def _code_cell(notebook: nbformat.NotebookNode, start: str) -> nbformat.NotebookNode:
    """The one code cell whose source starts with ``start``."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(start)]
    return cell


def _errors(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """The (source, ename) of every error output of the notebook."""
    return [
        (c.source, o.ename)
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]


def test_structured_output_notebook_parses_answers_and_carries_on_past_the_schema_error(
    tmp_path: Path, jupyter_dirs: None
) -> None:
    started = time.monotonic()
    notebook = execute("structured_output.ipynb", tmp_path)
    print(f"structured_output.ipynb ran in {time.monotonic() - started:.1f} s")
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)  # every cell ran, the last ones too
    assert not [c.source for c in code for o in c.outputs if o.get("name") == "stderr"]

    # --schema Review: _codex_result.parsed is a Review instance, used as one.
    assert _code_cell(notebook, "%%codex --schema Review\nReview the").source.startswith("%%codex --schema Review")
    assert _text(_code_cell(notebook, "review = _codex_result.parsed")).startswith(
        "Review with 3 findings\nfile='report.py' line=42 severity='high' summary="
    )
    table = _text(_code_cell(notebook, "import pandas as pd"))
    assert table.split("\n")[0].split() == ["file", "line", "severity", "summary"]
    assert table.split("\n")[1].split()[:4] == ["0", "report.py", "42", "high"]
    by_severity = _text(_code_cell(notebook, "order = "))
    assert [line.split()[:2] for line in by_severity.splitlines()] == [
        ["high", "report.py:42"],
        ["medium", "report.py:88"],
        ["low", "loader.py:7"],
    ]
    sent = _text(_code_cell(notebook, "sent = _model.requests"))  # strict mode, as the API got it
    assert sent.startswith("type: json_schema | strict: True\n")
    finding = json.loads(sent.partition("\n")[2])  # Finding, closed and with every field required
    assert finding["additionalProperties"] is False and finding["required"] == ["file", "line", "severity", "summary"]
    assert finding["properties"]["severity"]["enum"] == ["low", "medium", "high"]

    # --schema shape (a JSON-schema dict): the JSON value, and --out keeps the result too.
    assert _text(_code_cell(notebook, "counts = _codex_result.parsed")) == (
        "dict {'total': 3, 'by_severity': {'high': 1, 'medium': 1, 'low': 1}}\ntotal: 3 | high: 1 | same result: True\n"
    )

    # The answer that does not validate: the tagged cell raised OutputSchemaError, its transcript
    # says why, and the cells after it ran (the raw text kept, the cleanup done).
    failing = _code_cell(notebook, "%%codex --schema Review\nNow review export.py.")
    assert failing.metadata["tags"] == ["raises-exception"]
    assert _errors(notebook) == [(failing.source, "OutputSchemaError")]
    (error,) = [o for o in failing.outputs if o.output_type == "error"]
    reason = "the answer does not match Review: findings.0.line: Input should be a valid integer"
    assert reason in error.evalue and "_codex_result.final_response" in error.evalue
    assert f"! schema: {reason}" in _text(failing)  # the reason, in the turn's transcript
    assert failing is code[-3]  # the last %%codex example, with the inspection and cleanup after it
    inspected = _text(_code_cell(notebook, 'print("status:", _codex_result.status.value)'))
    assert inspected.startswith(f"status: completed\nparsed: None\nwhy: {reason}")
    assert 'text: {"findings": [{"file": "export.py", "line": "forty-two", "severity": "critical"' in inspected
    assert _code_cell(notebook, "%unload_ext codex_magic").execution_count is not None

    html, _ = HTMLExporter().from_notebook_node(notebook)
    assert "OutputSchemaError" in html and reason in html and "Review with 3 findings" in html
    assert "Error displaying widget" not in html


def test_threads_notebook_forks_starts_afresh_and_resumes_the_first_conversation(
    tmp_path: Path, jupyter_dirs: None
) -> None:
    from codex_magic._text import short_id

    started = time.monotonic()
    notebook = execute("threads.ipynb", tmp_path)
    print(f"threads.ipynb ran in {time.monotonic() - started:.1f} s")
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert _errors(notebook) == []
    assert not [c.source for c in code for o in c.outputs if o.get("name") == "stderr"]
    ada, figures = "My name is Ada and I am checking the sales report.", "Which figures should I look at first?"

    # Two turns in one thread: the second carries the first.
    assert f"This thread holds 1 of your messages: {ada}" in _text(_code_cell(notebook, f"%%codex\n{ada}"))
    assert f"holds 2 of your messages: {ada} / {figures}" in _text(_code_cell(notebook, f"%%codex\n{figures}"))

    # %codex thread prints the id (and returns nothing); _codex_result.thread_id holds it.
    printed_id, saved = _text(_code_cell(notebook, "first = _codex_result.thread_id")).splitlines()
    first = printed_id
    assert saved == f"saved: {first}" and len(first) == 36
    named = _text(_code_cell(notebook, "%codex name"))
    assert named.startswith(f"Named thread {short_id(first)}: sales report with Ada\n")
    assert f"*  {short_id(first)}  sales report with Ada" in named  # %codex threads, in the same cell

    # h = %codex history: the thread's turns as results.
    assert (
        _text(_code_cell(notebook, "h = %codex history"))
        == f"2 turns\nYou said: {ada!r}. This thread holds 1 of your messages: {ada}\n"
    )

    # A fork carries the history; a new thread does not.
    forked = _text(_code_cell(notebook, "%codex fork"))
    assert forked.startswith(f"Forked thread {short_id(first)} into ")
    fork_id = forked.split(" into ")[1][:8]
    on_fork = _text(_code_cell(notebook, "%%codex\nSuppose the report is wrong."))
    assert f"thread {fork_id}" in on_fork and f"holds 3 of your messages: {ada} / {figures} / Suppose" in on_fork
    assert _text(_code_cell(notebook, 'print("on the fork:"')) == "on the fork: True\n"
    fresh = _text(_code_cell(notebook, "%%codex\nWhat do you know about me?"))
    assert "holds 1 of your messages: What do you know about me?" in fresh and ada not in fresh
    (listing,) = [_text(c) for c in code if c.source == "%codex threads"]
    rows = [line for line in listing.splitlines() if line[:1] in ("*", " ") and line.strip()[:1] != "-"][1:]
    assert len(rows) == 3 and rows[0].startswith("* ") and rows[2].split()[0] == short_id(first)

    # %codex resume {first}: back on the first thread, whose next turn carries its own two
    # messages and nothing of the fork or the new thread.
    resumed = _text(_code_cell(notebook, "%codex resume {first}"))
    assert resumed.startswith(f"Resumed thread {short_id(first)} (sales report with Ada): 2 turns")
    assert f"First prompt: {ada}" in resumed
    carried_on = _text(_code_cell(notebook, "%%codex\nRemind me: what is my name?"))
    assert f"thread {short_id(first)}" in carried_on
    assert f"holds 3 of your messages: {ada} / {figures} / Remind me: what is my name?" in carried_on
    assert "Suppose" not in carried_on and "What do you know" not in carried_on
    assert _text(_code_cell(notebook, 'print("back on the first thread:"')).startswith(
        "back on the first thread: True\n"
    )

    # %codex status: the app-server, the thread, and no secret (the setup cell sets a stand-in key).
    status = _text(_code_cell(notebook, "%codex status"))
    assert status.startswith("app-server ") and ", pid " in status and f"thread       {first}" in status
    key = "sk-demo-NOT-A-REAL-KEY-0123456789"
    assert key in _code_cell(notebook, "# Offline").source
    assert nbformat.writes(notebook).count(key) == 1  # only there: in no output, no widget state


def test_provenance_is_saved_and_read_back(tmp_path: Path, jupyter_dirs: None) -> None:
    import codex_magic

    notebook = execute("quickstart.ipynb", tmp_path)
    saved = tmp_path / "run.ipynb"
    nbformat.write(notebook, saved)
    rows = codex_magic.provenance(saved)
    assert len(rows) == 3  # one row per %%codex cell, in order
    first = rows.iloc[0].to_dict()
    assert first["status"] == "completed" and first["model"] == "scripted-model"
    assert first["sandbox"] == "workspace-write" and first["approval"] == "on-request"
    assert first["thread_id"] and first["turn_id"] and first["tokens_turn"] > 0
    assert first["package_version"] == codex_magic.__version__ and first["app_server_version"]
    assert first["started"] <= first["ended"]
    assert len(set(rows["thread_id"])) == 1  # the three turns continue one thread
    # Nothing secret and no absolute home path in what is saved.
    text = saved.read_text()
    home = str(Path.home())
    assert f'"cwd": "{home}' not in text
    # It survives nbconvert's HTML too: the notebook converts, the rows are unchanged.
    HTMLExporter().from_notebook_node(nbformat.read(saved, as_version=4))
    assert codex_magic.provenance(saved).equals(rows)


def test_replay_notebook_records_then_replays_without_a_model_request(tmp_path: Path, jupyter_dirs: None) -> None:
    first = execute("replay.ipynb", tmp_path)
    printed = "".join(_text(cell) for cell in first.cells if cell.cell_type == "code")
    assert "3 model requests in this run" in printed  # two turns; the second runs a command
    assert "(ran live)" in printed
    nbformat.write(first, tmp_path / "replay.ipynb")  # saved, as a user would

    # Run All again in a fresh kernel, on the saved notebook.
    second = nbformat.read(tmp_path / "replay.ipynb", as_version=4)
    NotebookClient(second, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(_text(cell) for cell in second.cells if cell.cell_type == "code")
    assert "0 model requests in this run" in printed
    assert "('replay', 'replayed from codex-recordings/" in printed
    codex_cells = [c for c in second.cells if c.cell_type == "code" and c.source.startswith("%%codex")]
    for before, after in zip([c for c in first.cells if c.source.startswith("%%codex")], codex_cells):
        (old,), (new,) = before.outputs, after.outputs
        assert "replayed from codex-recordings/" in new.data["text/plain"]
        assert new.metadata["codex_magic"]["turn_id"] == old.metadata["codex_magic"]["turn_id"]
    assert "ls -1 | head -n 10" in codex_cells[1].outputs[0].data["text/html"]
    # The provenance cell read the first run's saved outputs: one row per turn.
    table = second.cells[-1].outputs[0].data["text/plain"]
    assert table.count("completed") == 2 and "scripted-model" in table
