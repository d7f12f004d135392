"""The widget in a real browser: JupyterLab and Jupyter Notebook 7, headless Debian Chromium,
Playwright.

The quickstart and the control test run in both frontends (test ids ``lab`` and ``notebook7``),
served by one ``jupyter lab`` server: JupyterLab at ``/lab/tree/NAME``, Notebook 7 at
``/notebooks/NAME``. The two build their pages from the same components (cells, outputs,
widgets, menus, dialogs) and read the same user settings; they differ in the URL and in where
the page shows the kernel's state (JupyterLab: the status bar; Notebook 7, which has none: the
kernel status in its top bar). The screenshots the README uses come from the JupyterLab runs;
the Notebook 7 runs write theirs into the test's temp dir.

The quickstart: runs every cell of ``notebooks/quickstart.ipynb`` (offline: its first cell starts
the scripted model), checks that each ``%%codex`` widget rendered with its final transcript, and
takes a screenshot of the cell that runs a command: into the test's temp dir, or where
``CODEX_MAGIC_SCREENSHOT`` says (``CODEX_MAGIC_SCREENSHOT=docs/widget.png`` refreshes the
README's).

Control while a turn runs: a notebook whose scripted model asks to run a command outside a
read-only sandbox, then streams slowly. The test clicks Approve in the widget and sees the
command's output, then clicks Stop and sees the turn interrupted. The approval, before the click,
is screenshotted into the test's temp dir, or where ``CODEX_MAGIC_APPROVAL_SCREENSHOT`` says
(``CODEX_MAGIC_APPROVAL_SCREENSHOT=docs/approval.png`` refreshes the README's).

The notebook agent: ``notebooks/notebook_agent.ipynb``, with its first ``%%codex`` cell asking
before it runs code in the kernel (the notebook allows the run, to run headless). The test sees
Codex's code in the request box, clicks Approve, sees the turn complete with the chart and the
answer, and finds the cell Codex proposed as a new, unrun cell below the second ``%%codex`` cell.
The widget of the first turn is screenshotted into the test's temp dir, or where
``CODEX_MAGIC_SCREENSHOT_AGENT`` says (``CODEX_MAGIC_SCREENSHOT_AGENT=docs/notebook_agent.png``
refreshes the README's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .browser import chromium_page, jupyterlab, missing_requirements
from .conftest import IN_CI

# JupyterLab starts kernels: these are in the kernel tier too.
pytestmark = [pytest.mark.browser, pytest.mark.kernel]

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
SCREENSHOT_WIDTH = 900

# What each %%codex cell's widget shows at the end, in notebook order.
EXPECTED = [
    ["completed", "runs OpenAI's Codex agent"],
    ["completed", "ls -1 | head -n 10", "exit 0", "quickstart.ipynb", "I listed"],
    ["completed", "this turn continues the same conversation"],
]
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
# Text that means a widget did not render.
BROKEN = ["Error displaying widget", "Loading widget", "model not found"]

# JavaScript, JupyterLab: the notebook's kernel is connected and idle, and no dialog is open.
# The execution indicator alone reads "idle" too early (before a kernel exists); the status
# bar's kernel item reads "<kernel> | Idle" only once the kernel's websocket is up.
KERNEL_READY_JS = """() => {
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const kernel = document.querySelector(".jp-StatusBar-TextItem[title^='Change kernel']");
  return !document.querySelector('.jp-Dialog')
    && indicator && indicator.getAttribute('data-status') === 'idle'
    && kernel && /\\| Idle$/.test(kernel.innerText.trim()) && !/^No Kernel/.test(kernel.innerText);
}"""

# JavaScript, Notebook 7 (no status bar): the same, read from its toolbar and top bar. The
# execution indicator reads "idle" too early here as well, while the toolbar's kernel name says
# "No Kernel". The top bar's kernel status has no class until the kernel's first status, then
# says "Kernel Initializing", "Kernel Connecting" (class -info, -warn or -error), and empties,
# keeping only the class -fade, once the kernel reports busy or idle over its websocket.
NOTEBOOK7_KERNEL_READY_JS = """() => {
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const kernel = document.querySelector('.jp-Toolbar-kernelName');
  const status = document.querySelector('.jp-NotebookKernelStatus');
  return !document.querySelector('.jp-Dialog')
    && indicator && indicator.getAttribute('data-status') === 'idle'
    && kernel && kernel.innerText.trim() !== '' && !/^No Kernel/.test(kernel.innerText.trim())
    && status && status.classList.contains('jp-NotebookKernelStatus-fade')
    && status.textContent.trim() === '';
}"""


@dataclass(frozen=True)
class Frontend:
    """A notebook frontend of the test's server: a notebook's page, and when its kernel is ready."""

    id: str
    page: str  # path and query of a notebook's page: {name}, {token}
    kernel_ready_js: str

    def url(self, lab: Any, name: str) -> str:
        return lab.url + self.page.format(name=name, token=lab.token)


LAB = Frontend("lab", "/lab/tree/{name}?reset&token={token}", KERNEL_READY_JS)
NOTEBOOK7 = Frontend("notebook7", "/notebooks/{name}?token={token}", NOTEBOOK7_KERNEL_READY_JS)
FRONTENDS = pytest.mark.parametrize("frontend", [LAB, NOTEBOOK7], ids=lambda frontend: frontend.id)

# JavaScript: every code cell has a prompt number, every %%codex output shows a finished
# turn, and nothing on the page says a widget failed. A finished turn's widget is replaced by
# its static transcript (text/html), whose outer div has the widget root's class, codex-magic:
# one selector for both, rendered alike by both frontends.
DONE_JS = """([broken]) => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  if (!cells.length) return false;
  for (const cell of cells) {
    const prompt = cell.querySelector('.jp-InputArea-prompt');
    if (!prompt || !/^\\[\\d+\\]:$/.test(prompt.innerText.trim())) return false;
    const source = cell.querySelector('.cm-content');
    if (source && source.innerText.trimStart().startsWith('%%codex')) {
      const widget = cell.querySelector('.jp-OutputArea .codex-magic');
      if (!widget || !/completed|failed|interrupted/.test(widget.innerText)) return false;
    }
  }
  const text = document.body.innerText;
  return !broken.some((b) => text.includes(b));
}"""


@FRONTENDS
def test_quickstart_widgets_render(tmp_path: Path, frontend: Frontend) -> None:
    _require_browser(frontend)
    # The notebook's directory shows in the screenshot (the command lists it): a short path.
    root = Path(tempfile.mkdtemp(prefix="quickstart-"))
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    shot = _screenshot_path(frontend, "CODEX_MAGIC_SCREENSHOT", tmp_path / "widget.png")
    _in_jupyterlab(tmp_path, root, lambda page, lab: _run_quickstart(page, frontend, lab, shot))


def _require_browser(frontend: Frontend) -> None:
    """Skip without a browser; in CI, fail instead."""
    missing = missing_requirements(notebook7=frontend is NOTEBOOK7)
    if missing:
        if IN_CI:
            pytest.fail(f"the browser test cannot run in CI: {missing}", pytrace=False)
        pytest.skip(missing)


def _screenshot_path(frontend: Frontend, variable: str, default: Path) -> Path:
    """Where the screenshot goes: ``variable`` names the README's, which JupyterLab's run takes."""
    return Path((frontend is LAB and os.environ.get(variable)) or default)


def _in_jupyterlab(tmp_path: Path, root: Path, run: Callable[[Any, Any], None]) -> None:
    """Call ``run(page, lab)`` with JupyterLab serving ``root`` and a Chromium page; remove root.

    On failure, the error says where the full-page screenshot is and ends with JupyterLab's log.
    """
    page_png = tmp_path / "page.png"
    try:
        with jupyterlab(root, tmp_path / "lab") as lab, chromium_page(1200, 1400) as page:
            try:
                run(page, lab)
            except Exception as error:
                _full_screenshot(page, page_png)
                raise AssertionError(
                    f"{type(error).__name__}: {error}\nfull-page screenshot: {page_png}\n{lab.log_tail()}"
                ) from error
            _full_screenshot(page, page_png)
        if lab.killed:  # JupyterLab's shutdown left them (a kernel or the codex app-server)
            warnings.warn(f"processes left after JupyterLab shut down, killed: {lab.killed}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _full_screenshot(page: Any, path: Path) -> None:
    try:
        page.screenshot(path=str(path), full_page=True, timeout=15_000)
    except Exception:  # the screenshot is for debugging; it must not hide the real failure
        pass


def _run_quickstart(page: Any, frontend: Frontend, lab: Any, screenshot: Path) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    _open_notebook(page, frontend, lab, NOTEBOOK.name)
    timings["open"] = time.monotonic() - started
    _run_all(page)

    # An async %%codex cell may leave the status bar Idle while it runs: wait on the cells
    # themselves (prompt numbers, the widgets' final status), not on the kernel status.
    try:
        page.wait_for_function(DONE_JS, arg=[BROKEN], timeout=180_000, polling=200)
    except Exception:
        pass  # the checks below say what is missing
    timings["run"] = time.monotonic() - started - timings["open"]

    cells = page.locator(".jp-Notebook .jp-CodeCell")
    sources = [cells.nth(i).locator(".cm-content").inner_text() for i in range(cells.count())]
    prompts = [cells.nth(i).locator(".jp-InputArea-prompt").inner_text().strip() for i in range(cells.count())]
    unfinished = [
        (source.splitlines()[0] if source else "", prompt)
        for source, prompt in zip(sources, prompts)
        if not re.fullmatch(r"\[\d+\]:", prompt)
    ]
    assert not unfinished, f"cells that did not finish (first line, prompt): {unfinished}"

    codex_cells = [i for i, source in enumerate(sources) if source.lstrip().startswith("%%codex")]
    assert len(codex_cells) == len(EXPECTED), f"%%codex cells: {codex_cells} in {sources}"
    for index, expected in zip(codex_cells, EXPECTED):
        cell = cells.nth(index)
        widget = cell.locator(".jp-OutputArea .codex-magic")
        output = cell.locator(".jp-OutputArea").inner_text()
        assert widget.count() == 1, f"cell {index}: no codex widget in the output: {output!r}"
        text = widget.inner_text()
        for phrase in expected:
            assert phrase in text, f"cell {index}: {phrase!r} not in the widget: {text!r}"

    body = page.locator("body").inner_text()
    for phrase in BROKEN:
        assert phrase not in body, f"{phrase!r} on the page"
    errors = [text for text in page.locator(STDERR).all_inner_texts() if "Traceback" in text or "Error" in text]
    assert not errors, f"error output: {errors}"
    result_cell = next(i for i, source in enumerate(sources) if "_codex_result.status" in source)
    result_text = cells.nth(result_cell).locator(".jp-OutputArea").inner_text()
    assert "completed" in result_text and "exit code 0" in result_text, result_text

    _screenshot_cell(page, cells.nth(codex_cells[1]), screenshot)
    timings["total"] = time.monotonic() - started
    print("browser timings:", {k: round(v, 1) for k, v in timings.items()})


def _open_notebook(page: Any, frontend: Frontend, lab: Any, name: str) -> None:
    """Open a notebook of the server's root dir and wait until its kernel is idle."""
    page.set_default_timeout(60_000)
    response = page.goto(frontend.url(lab, name), wait_until="domcontentloaded")
    # A 404 here for Notebook 7: its server extension is not enabled (`jupyter server extension list`).
    assert response is not None and response.ok, (
        f"{frontend.id}: the page of {name} answered {response and response.status}"
    )
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
    # The kernel is connected and idle before anything runs (see the frontend's kernel_ready_js).
    _dismiss_dialogs(page, frontend)
    page.wait_for_function(frontend.kernel_ready_js, timeout=120_000, polling=100)
    # Both frontends default to windowingMode "contentVisibility", which marks the notebook so:
    # the user settings (browser.LAB_SETTINGS) did not reach this frontend.
    assert page.locator(".jp-content-visibility-mode").count() == 0, f"{frontend.id}: the notebook is windowed"


def _run_all(page: Any) -> None:
    """Run All Cells from the menu; return once every code cell is queued or done."""
    page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
    page.locator(".lm-Menu").get_by_text("Run All Cells", exact=True).click()
    # Every code cell is queued ([*]) or done ([n]) at once: Run All reached the kernel.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]"
        ".every((p) => /^\\[(\\*|\\d+)\\]:$/.test(p.innerText.trim()))",
        timeout=30_000,
        polling=100,
    )


def _dismiss_dialogs(page: Any, frontend: Frontend) -> None:
    """Accept a "Select Kernel" dialog, should a frontend ignore autoStartDefaultKernel."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if page.evaluate(frontend.kernel_ready_js):
            return
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
            dialog.wait_for(state="detached")
        time.sleep(0.1)


def _screenshot_cell(page: Any, cell: Any, path: Path, *, showing: Any = None) -> None:
    """Write an element (a cell, or its output) to ``path``, SCREENSHOT_WIDTH wide.

    ``showing``: a part of a live widget that must be in the picture. A widget box re-creates
    its children's views from the first one that changed whenever its children change
    (ipywidgets' ViewList), and the new views fill in asynchronously: a part seen a moment ago
    can be missing, leaving the element shorter, while the picture is taken. Then take it again.
    """
    viewport = page.viewport_size
    width = cell.bounding_box()["width"]
    page.set_viewport_size({"width": round(viewport["width"] + SCREENSHOT_WIDTH - width), "height": viewport["height"]})
    page.wait_for_function(
        "([el, want]) => Math.abs(el.getBoundingClientRect().width - want) < 4",
        arg=[cell.element_handle(), SCREENSHOT_WIDTH],
        timeout=10_000,
    )
    page.mouse.move(0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    heights = []
    for _attempt in range(5):
        if showing is not None:
            showing.wait_for(state="visible", timeout=10_000)
        height = cell.bounding_box()["height"]
        png = cell.screenshot(path=str(path), animations="disabled")
        pictured = struct.unpack(">I", png[20:24])[0]  # the PNG header's height, in CSS pixels here
        heights.append((round(height), pictured))
        if showing is None or (abs(pictured - height) < 2 and showing.is_visible()):
            return
    raise AssertionError(f"{path.name}: the element kept changing (height shown, pictured): {heights}")


# The notebook of the control test. Its first cell serves the scripted model: a turn that asks
# to run a command outside the read-only sandbox and then answers the command's output, and a
# turn that streams slowly (about a minute) so that the test can stop it.
CONTROL_NOTEBOOK = "control.ipynb"
CONTROL_COMMAND = f"mkdir -p backup && cp {CONTROL_NOTEBOOK} backup/ && ls backup"
CONTROL_SETUP = f"""\
# Offline: a scripted model stands in for OpenAI's API (see codex_magic.scripted_model).
import os, tempfile
from codex_magic.scripted_model import Reply, ScriptedModel, exec_command, message, reasoning, write_codex_config

model = ScriptedModel([
    [
        reasoning("The sandbox is read-only: writing the backup needs approval."),
        exec_command(
            {CONTROL_COMMAND!r},
            sandbox_permissions="require_escalated",
            justification="Copy the notebook into backup/ (the sandbox is read-only)",
        ),
    ],
    lambda request: message("Backed up: backup/" + request.function_call_outputs()[-1].strip().splitlines()[-1]),
    Reply([message("Reading the backup, cell by cell. " * 60, deltas=True)], delay=0.2),
]).start()
home = tempfile.mkdtemp(prefix="codex-home-")
write_codex_config(home, model.url)
os.environ["CODEX_HOME"] = home
os.environ["CODEX_APP_SERVER_DISABLE_MANAGED_CONFIG"] = "1"
"""
CONTROL_CELLS = [
    CONTROL_SETUP,
    "%load_ext codex_magic",
    "%%codex --sandbox read-only\nBack this notebook up into backup/.",
    "%%codex\nNow read the backup, cell by cell.",
]

# JavaScript: every code cell has a prompt number and the kernel is idle.
ALL_DONE_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return prompts.length > 0 && prompts.every((p) => /^\\[\\d+\\]:$/.test(p.innerText.trim()))
    && indicator && indicator.getAttribute('data-status') === 'idle';
}"""


@FRONTENDS
def test_approve_and_stop(tmp_path: Path, frontend: Frontend) -> None:
    """Approve a command with a mouse click and see its output; stop a slow turn."""
    _require_browser(frontend)
    root = Path(tempfile.mkdtemp(prefix="control-"))
    _write_notebook(root / CONTROL_NOTEBOOK, CONTROL_CELLS)
    shot = _screenshot_path(frontend, "CODEX_MAGIC_APPROVAL_SCREENSHOT", tmp_path / "approval.png")
    _in_jupyterlab(tmp_path, root, lambda page, lab: _run_control(page, frontend, lab, root, shot))


def _write_notebook(path: Path, sources: list[str]) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(json.dumps(notebook), encoding="utf-8")


def _run_control(page: Any, frontend: Frontend, lab: Any, root: Path, screenshot: Path) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    _open_notebook(page, frontend, lab, CONTROL_NOTEBOOK)
    timings["open"] = time.monotonic() - started
    _run_all(page)
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    asking, slow = cells.nth(2), cells.nth(3)

    # The approval: the request, with its buttons, while the command waits for the click.
    widget = asking.locator(".jp-OutputArea .codex-magic")
    approve = widget.get_by_role("button", name="Approve", exact=True)
    approve.wait_for(state="visible", timeout=120_000)
    for label in ("Decline", "Cancel the turn"):
        widget.get_by_role("button", name=label, exact=True).wait_for(state="visible", timeout=10_000)
    _stop_button(widget).wait_for(state="visible", timeout=10_000)
    asked = ["Codex asks to run a command outside the sandbox", CONTROL_COMMAND, "read-only", "running"]
    _wait_text(widget, asked, timeout=10)
    assert not (root / "backup").exists(), "the command ran before the click"
    _assert_rendered(page)
    timings["asked"] = time.monotonic() - started - timings["open"]
    _screenshot_cell(page, asking.locator(".jp-OutputArea"), screenshot, showing=approve)

    approve.click()  # Playwright's mouse: moves to the button, presses and releases
    _wait_text(widget, ["completed", "exit 0", "Backed up: backup/" + CONTROL_NOTEBOOK], timeout=60)
    assert widget.get_by_role("button", name="Approve", exact=True).count() == 0
    assert (root / "backup" / CONTROL_NOTEBOOK).is_file()
    outputs = [t.strip() for t in widget.locator("pre").all_inner_texts()]
    assert CONTROL_NOTEBOOK in outputs, f"the command's output is not shown: {outputs}"
    _wait_text(widget, ["approved", "the user"], timeout=10)
    timings["approved"] = time.monotonic() - started - timings["open"] - timings["asked"]

    # The slow turn: Stop as soon as its message streams.
    slow_widget = slow.locator(".jp-OutputArea .codex-magic")
    _wait_text(slow_widget, ["running", "Reading the backup"], timeout=60)
    stop = _stop_button(slow_widget)
    clicked = time.monotonic()
    stop.click()
    _wait_text(slow_widget, ["interrupted"], timeout=10)
    timings["stopped"] = time.monotonic() - clicked
    page.wait_for_function(ALL_DONE_JS, timeout=30_000, polling=100)
    assert stop.count() == 0, "the Stop button is still shown"
    # The interrupted turn keeps its text so far, and the cell says how it ended.
    assert "Reading the backup" in slow_widget.inner_text()
    errors = [(i, cells.nth(i).locator(STDERR).all_inner_texts()) for i in range(cells.count())]
    assert [e for e in errors if e[1]] == [(3, errors[3][1])], errors
    assert "TurnInterruptedError" in "".join(errors[3][1]), errors[3]
    _assert_rendered(page)
    timings["total"] = time.monotonic() - started
    print("browser timings:", {k: round(v, 1) for k, v in timings.items()})


def _stop_button(widget: Any) -> Any:
    # The button's name starts with its icon's glyph.
    return widget.get_by_role("button", name=re.compile(r"Stop$"))


def _wait_text(element: Any, phrases: list[str], timeout: float) -> None:
    """Wait until the element's text holds every phrase; say which are missing if not.

    The locator is read afresh each time: JupyterLab re-renders an output when its display
    is updated, which replaces the widget's element.
    """
    deadline = time.monotonic() + timeout
    while True:
        text = element.inner_text(timeout=max(1, deadline - time.monotonic()) * 1000)
        missing = [p for p in phrases if p not in text]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{missing} not shown within {timeout} s: {text!r}")
        time.sleep(0.1)


def _assert_rendered(page: Any) -> None:
    body = page.locator("body").inner_text()
    for phrase in BROKEN:
        assert phrase not in body, f"{phrase!r} on the page"


# The notebook agent: notebooks/notebook_agent.ipynb as a user runs it, except that its first
# %%codex cell asks before running code (the notebook allows it, to run headless).
AGENT_NOTEBOOK = REPO / "notebooks" / "notebook_agent.ipynb"
AGENT_ALLOWS = "%%codex --kernel-run allow\n"
PROPOSED = "# proposed by Codex"

# JavaScript: every code cell has a prompt number, except a proposed cell (never run), and the
# kernel is idle.
AGENT_DONE_JS = """([proposed]) => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return cells.length > 0 && indicator && indicator.getAttribute('data-status') === 'idle'
    && cells.every((cell) => {
      const prompt = cell.querySelector('.jp-InputArea-prompt').innerText.trim();
      const source = cell.querySelector('.cm-content').innerText;
      return /^\\[\\d+\\]:$/.test(prompt) || source.startsWith(proposed);
    });
}"""


def test_notebook_agent_in_jupyterlab(tmp_path: Path) -> None:
    """Approve Codex's run in the kernel, see the turn complete and the proposed cell below."""
    _require_browser(LAB)
    root = Path(tempfile.mkdtemp(prefix="agent-"))
    notebook = json.loads(AGENT_NOTEBOOK.read_text(encoding="utf-8"))
    allowing = [c for c in notebook["cells"] if "".join(c["source"]).startswith(AGENT_ALLOWS)]
    assert len(allowing) == 1, f"no cell of {AGENT_NOTEBOOK.name} starts with {AGENT_ALLOWS!r}"
    allowing[0]["source"] = "%%codex\n" + "".join(allowing[0]["source"])[len(AGENT_ALLOWS) :]
    (root / AGENT_NOTEBOOK.name).write_text(json.dumps(notebook), encoding="utf-8")
    shutil.copy(AGENT_NOTEBOOK.parent / "sales.csv", root / "sales.csv")
    shot = Path(os.environ.get("CODEX_MAGIC_SCREENSHOT_AGENT") or tmp_path / "notebook_agent.png")
    _in_jupyterlab(tmp_path, root, lambda page, lab: _run_agent(page, lab, shot))


def _run_agent(page: Any, lab: Any, screenshot: Path) -> None:
    import pandas as pd

    sales = pd.read_csv(AGENT_NOTEBOOK.parent / "sales.csv", thousands=",")
    by_month = sales.groupby("month", sort=False)["revenue"].sum()
    answer = f"Revenue peaked in {by_month.idxmax()} ({by_month.max():,})"
    timings: dict[str, float] = {}
    started = time.monotonic()
    _open_notebook(page, LAB, lab, AGENT_NOTEBOOK.name)
    timings["open"] = time.monotonic() - started
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    sources = [cells.nth(i).locator(".cm-content").inner_text() for i in range(cells.count())]
    plot, fix = [i for i, source in enumerate(sources) if source.startswith("%%codex")]
    _run_all(page)

    # Codex looked at the kernel, then asks before running its code: the code is in the box.
    widget = cells.nth(plot).locator(".jp-OutputArea .codex-magic")
    approve = widget.get_by_role("button", name="Approve", exact=True)
    approve.wait_for(state="visible", timeout=120_000)
    for label in ("Approve for this turn", "Decline", "Cancel the turn"):
        widget.get_by_role("button", name=label, exact=True).wait_for(state="visible", timeout=10_000)
    asked = ["Codex asks to run code in this kernel", "by_month.plot.bar(", "list_variables", "inspect_variable"]
    _wait_text(widget, asked, timeout=10)
    assert "by_month" not in _cell_output(cells.nth(sources.index("by_month"))), "the code ran before the click"
    _assert_rendered(page)
    timings["asked"] = time.monotonic() - started - timings["open"]

    approve.click()
    _wait_text(widget, ["completed", answer], timeout=60)
    assert widget.get_by_role("button", name="Approve", exact=True).count() == 0
    charts = widget.locator("img[src^='data:image/png']")
    assert charts.count() == 1, f"the chart Codex saw is not in the widget ({charts.count()} images)"
    timings["approved"] = time.monotonic() - started - timings["open"] - timings["asked"]

    # The rest runs; the proposed cell is a new cell right below the second %%codex cell, not run.
    page.wait_for_function(AGENT_DONE_JS, arg=[PROPOSED], timeout=60_000, polling=100)
    now = [cells.nth(i).locator(".cm-content").inner_text() for i in range(cells.count())]
    assert len(now) == len(sources) + 1, f"cells now: {now}"
    assert now[: fix + 1] == sources[: fix + 1] and now[fix + 2 :] == sources[fix + 1 :], now
    proposed = cells.nth(fix + 1)
    assert now[fix + 1].splitlines()[0] == PROPOSED, now[fix + 1]
    assert 'pd.to_numeric(sales["revenue"]' in now[fix + 1]
    assert not re.search(r"\d", proposed.locator(".jp-InputArea-prompt").inner_text()), "the proposed cell ran"
    assert proposed.locator(".jp-OutputArea-output").count() == 0
    _wait_text(cells.nth(fix).locator(".jp-OutputArea .codex-magic"), ["completed", "propose_cell"], timeout=10)
    assert "Jun    1895" in _cell_output(cells.nth(sources.index("by_month")))  # Codex's variable

    errors = [text for text in page.locator(STDERR).all_inner_texts() if text.strip()]
    assert not errors, f"error output: {errors}"
    _assert_rendered(page)
    _screenshot_cell(page, cells.nth(plot).locator(".jp-OutputArea"), screenshot)
    timings["total"] = time.monotonic() - started
    print("browser timings:", {k: round(v, 1) for k, v in timings.items()})


def _cell_output(cell: Any) -> str:
    return cell.locator(".jp-OutputArea").inner_text()
