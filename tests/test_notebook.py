"""The demo notebook, executed headlessly as nbconvert and nbclient run it, offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

pytestmark = [pytest.mark.kernel, pytest.mark.appserver]

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_runs_offline_and_its_html_shows_the_turns(tmp_path: Path, jupyter_dirs: None) -> None:
    shutil.copy(NOTEBOOK, tmp_path / "quickstart.ipynb")
    notebook = nbformat.read(tmp_path / "quickstart.ipynb", as_version=4)
    # As `jupyter nbconvert --execute --ExecutePreprocessor.store_widget_state=False`.
    NotebookClient(notebook, timeout=120, store_widget_state=False, resources={"metadata": {"path": str(tmp_path)}}).execute()

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
