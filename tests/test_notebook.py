"""The demo notebook, executed headlessly as nbconvert and nbclient run it, offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

pytestmark = [pytest.mark.kernel, pytest.mark.appserver]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "quickstart.ipynb"


def execute(name: str, where: Path) -> nbformat.NotebookNode:
    """Run a notebook of notebooks/ in ``where`` as nbconvert --execute does; return it run."""
    shutil.copy(NOTEBOOKS / name, where / name)
    notebook = nbformat.read(where / name, as_version=4)
    # As `jupyter nbconvert --execute --ExecutePreprocessor.store_widget_state=False`.
    NotebookClient(notebook, timeout=120, store_widget_state=False, resources={"metadata": {"path": str(where)}}).execute()
    return notebook


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
