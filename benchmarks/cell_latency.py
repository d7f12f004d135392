"""Latency of %load_ext and of one-message %%codex cells, against the raw SDK, in one kernel.

Runs a real ipykernel (through jupyter_client, as a frontend does) against the real
codex app-server and the scripted model, and times, as a frontend sees them (execute
request to idle):

- ``%load_ext codex_magic``;
- the first one-message ``%%codex`` cell (SDK import, app-server start, thread start, turn);
- later one-message ``%%codex`` cells (median);
- the same turns through the raw SDK in the same kernel process: a cell that creates
  ``Codex()``, starts a thread and runs one turn, then cells that run one more turn
  each with ``thread.run(...)`` (median), alternating with the later ``%%codex`` cells;
- the raw SDK's first cell again in a fresh kernel, where it pays for importing the SDK.

Usage: ``python benchmarks/cell_latency.py [--turns N] [--quick]``. Numbers depend on the machine;
compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._model_process import ModelProcess  # noqa: E402
from codex_magic.scripted_model import message, write_codex_config  # noqa: E402
from tests.conftest import Kernel  # noqa: E402

# %load_ext codex_magic, timed in the kernel too (printed), apart from the cell's round trip.
LOAD = """\
import time as _time
_started = _time.perf_counter()
get_ipython().run_line_magic("load_ext", "codex_magic")
print(_time.perf_counter() - _started)
"""
RAW_SETUP = """\
from openai_codex import ApprovalMode, Codex, Sandbox
raw_codex = Codex()
raw_thread = raw_codex.thread_start(approval_mode=ApprovalMode.deny_all, sandbox=Sandbox.workspace_write)
raw_result = raw_thread.run("Say hello.")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10, help="later turns to time (median)")
    parser.add_argument("--quick", action="store_true", help="a few small runs: check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.turns = 2

    with tempfile.TemporaryDirectory() as tmp, ModelProcess() as model:
        home, work = Path(tmp, "home"), Path(tmp, "work")
        work.mkdir()
        write_codex_config(home, model.url)
        model.add(*[message("Hello.")] * (2 * args.turns + 5))
        # As installed packages run: from bytecode caches (pip writes them at install time; an
        # environment with PYTHONDONTWRITEBYTECODE would compile every module at each import).
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        compileall.compile_dir(str(ROOT / "codex_magic"), quiet=1)
        for name in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "JUPYTER_CONFIG_DIR"):
            os.environ[name] = str(Path(tmp, name))
        # Auto-load off (the user's choice): %load_ext is measured, not a no-op.
        Path(tmp, "JUPYTER_CONFIG_DIR").mkdir()
        Path(tmp, "JUPYTER_CONFIG_DIR", "codex_magic.json").write_text('{"autoload": false}')
        kernel = Kernel({"CODEX_HOME": str(home)}, work)
        try:
            timings = _measure(kernel, args.turns)
        finally:
            kernel.shutdown()
        # The raw SDK's first turn again in a kernel of its own, where it pays its import too.
        fresh = Kernel({"CODEX_HOME": str(home)}, work)
        try:
            timings["raw first, fresh kernel"] = [_cell(fresh, RAW_SETUP)]
        finally:
            fresh.shutdown()

    first_raw, later_raw = timings["raw first"], statistics.median(timings["raw later"])
    later_magic = statistics.median(timings["%%codex later"])
    print(f"{'what':<42}{'seconds':>9}")
    rows = [
        ("an empty cell (the round trip)", timings["empty cell"][0]),
        ("%load_ext codex_magic (its cell)", timings["%load_ext"][0]),
        ("  of it in the kernel", timings["%load_ext in the kernel"][0]),
        ("first %%codex cell (starts everything)", timings["%%codex first"][0]),
        (f"later %%codex cell (median of {args.turns})", later_magic),
        ("raw SDK: Codex() + thread + first turn", first_raw[0]),
        ("  the same in a fresh kernel (+ SDK import)", timings["raw first, fresh kernel"][0]),
        (f"raw SDK: later thread.run() cell (median of {args.turns})", later_raw),
    ]
    for label, seconds in rows:
        print(f"{label:<42}{seconds:>9.3f}")
    ratio = timings["%%codex first"][0] / timings["raw first, fresh kernel"][0]
    print(f"first %%codex cell / raw SDK first turn in a fresh kernel: {ratio:.2f}x")
    print(f"later %%codex cell / raw SDK turn cell: {later_magic / later_raw:.2f}x")
    return 0


def _cell(kernel: Kernel, code: str) -> float:
    execution = kernel.run(code)
    if execution.error is not None or execution.reply["content"]["status"] != "ok":
        raise SystemExit(f"cell failed: {code!r}: {execution.error or execution.stderr}")
    return execution.seconds


def _measure(kernel: Kernel, turns: int) -> dict[str, list[float]]:
    def cell(code: str) -> float:
        execution = kernel.run(code)
        if execution.error is not None or execution.reply["content"]["status"] != "ok":
            raise SystemExit(f"cell failed: {code!r}: {execution.error or execution.stderr}")
        if code == LOAD:
            in_kernel.append(float(execution.stdout))
        return execution.seconds

    in_kernel: list[float] = []

    timings: dict[str, list[float]] = {
        "empty cell": [cell("pass")],
        "%load_ext": [cell(LOAD)],
        "%%codex first": [cell("%%codex\nSay hello.")],
        "raw first": [cell(RAW_SETUP)],
        "%%codex later": [],
        "raw later": [],
    }
    for _ in range(turns):  # alternating, so that a change in the machine's load hits both
        timings["%%codex later"].append(cell("%%codex\nSay hello."))
        timings["raw later"].append(cell('raw_result = raw_thread.run("Say hello.")'))
    timings["%load_ext in the kernel"] = in_kernel
    return timings


if __name__ == "__main__":
    raise SystemExit(main())
