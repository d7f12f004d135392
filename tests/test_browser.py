"""The quickstart notebook in a real browser: JupyterLab, headless Debian Chromium, Playwright.

Runs every cell of ``notebooks/quickstart.ipynb`` (offline: its first cell starts the scripted
model), checks that each ``%%codex`` widget rendered in JupyterLab with its final transcript, and
takes a screenshot of the cell that runs a command: into the test's temp dir, or where
``CODEX_MAGIC_SCREENSHOT`` says (``CODEX_MAGIC_SCREENSHOT=docs/widget.png`` refreshes the README's).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from .browser import chromium_page, jupyterlab, missing_requirements
from .conftest import IN_CI

pytestmark = pytest.mark.browser

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

# JavaScript: the notebook's kernel is connected and idle, and no dialog is open.
KERNEL_READY_JS = """() => {
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const kernel = document.querySelector(".jp-StatusBar-TextItem[title^='Change kernel']");
  return !document.querySelector('.jp-Dialog')
    && indicator && indicator.getAttribute('data-status') === 'idle'
    && kernel && /\\| Idle$/.test(kernel.innerText.trim()) && !/^No Kernel/.test(kernel.innerText);
}"""

# JavaScript: every code cell has a prompt number, every %%codex output shows a finished
# widget, and nothing on the page says a widget failed.
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


def test_quickstart_widgets_render_in_jupyterlab(tmp_path: Path) -> None:
    missing = missing_requirements()
    if missing:
        if IN_CI:
            pytest.fail(f"the browser test cannot run in CI: {missing}", pytrace=False)
        pytest.skip(missing)

    # The notebook's directory shows in the screenshot (the command lists it): a short path.
    root = Path(tempfile.mkdtemp(prefix="quickstart-"))
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    page_png = tmp_path / "page.png"
    try:
        with jupyterlab(root, tmp_path / "lab") as lab, chromium_page(1200, 1400) as page:
            try:
                shot = Path(os.environ.get("CODEX_MAGIC_SCREENSHOT") or tmp_path / "widget.png")
                _run_quickstart(page, lab.url, lab.token, shot)
            except Exception as error:
                _full_screenshot(page, page_png)
                raise AssertionError(
                    f"{type(error).__name__}: {error}\n"
                    f"full-page screenshot: {page_png}\n{lab.log_tail()}"
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


def _run_quickstart(page: Any, url: str, token: str, screenshot: Path) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    page.set_default_timeout(60_000)
    page.goto(f"{url}/lab/tree/{NOTEBOOK.name}?reset&token={token}", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
    # The kernel is connected and idle before anything runs. The execution indicator alone reads
    # "idle" too early (before a kernel exists); the status bar's kernel item reads
    # "<kernel> | Idle" only once the kernel's websocket is up.
    _dismiss_dialogs(page)
    page.wait_for_function(KERNEL_READY_JS, timeout=120_000, polling=100)
    timings["open"] = time.monotonic() - started

    page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
    page.locator(".lm-Menu").get_by_text("Run All Cells", exact=True).click()
    # Every code cell is queued ([*]) or done ([n]) at once: Run All reached the kernel.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]"
        ".every((p) => /^\\[(\\*|\\d+)\\]:$/.test(p.innerText.trim()))",
        timeout=30_000,
        polling=100,
    )

    # An async %%codex cell may leave the status bar Idle while it runs: wait on the cells
    # themselves (prompt numbers, the widgets' final status), not on the kernel status.
    try:
        page.wait_for_function(DONE_JS, arg=[BROKEN], timeout=180_000, polling=200)
    except Exception:
        pass  # the checks below say what is missing
    timings["run"] = time.monotonic() - started - timings["open"]

    cells = page.locator(".jp-Notebook .jp-CodeCell")
    sources = [cells.nth(i).locator(".cm-content").inner_text() for i in range(cells.count())]
    prompts = [
        cells.nth(i).locator(".jp-InputArea-prompt").inner_text().strip()
        for i in range(cells.count())
    ]
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
    errors = [
        text
        for text in page.locator(STDERR).all_inner_texts()
        if "Traceback" in text or "Error" in text
    ]
    assert not errors, f"error output: {errors}"
    result_cell = next(i for i, source in enumerate(sources) if "_codex_result.status" in source)
    result_text = cells.nth(result_cell).locator(".jp-OutputArea").inner_text()
    assert "completed" in result_text and "exit code 0" in result_text, result_text

    _screenshot_cell(page, cells.nth(codex_cells[1]), screenshot)
    timings["total"] = time.monotonic() - started
    print("browser timings:", {k: round(v, 1) for k, v in timings.items()})


def _dismiss_dialogs(page: Any) -> None:
    """Accept a "Select Kernel" dialog, should a JupyterLab ignore autoStartDefaultKernel."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if page.evaluate(KERNEL_READY_JS):
            return
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
            dialog.wait_for(state="detached")
        time.sleep(0.1)


def _screenshot_cell(page: Any, cell: Any, path: Path) -> None:
    """Write the cell (request and widget) to ``path``, about SCREENSHOT_WIDTH wide."""
    viewport = page.viewport_size
    width = cell.bounding_box()["width"]
    page.set_viewport_size(
        {"width": round(viewport["width"] + SCREENSHOT_WIDTH - width), "height": viewport["height"]}
    )
    page.wait_for_function(
        "([el, want]) => Math.abs(el.getBoundingClientRect().width - want) < 4",
        arg=[cell.element_handle(), SCREENSHOT_WIDTH],
        timeout=10_000,
    )
    page.mouse.move(0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cell.screenshot(path=str(path), animations="disabled")
