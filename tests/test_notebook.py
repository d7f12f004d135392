"""The demo notebook, executed headlessly as nbconvert and nbclient run it, offline."""

from __future__ import annotations

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
    # As `jupyter nbconvert --execute --ExecutePreprocessor.store_widget_state=False`.
    client = NotebookClient(
        notebook, timeout=120, store_widget_state=False, resources={"metadata": {"path": str(where)}}, **hooks
    )
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
        # The saved output carries the final transcript besides the widget.
        assert {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"} <= set(data)
        assert "completed" in data["text/plain"]

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
