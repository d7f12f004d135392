"""Cost of the live widget on heavy turns, against the raw SDK, in one kernel.

Two turns, each run twice in one real ipykernel (through jupyter_client) against the
real codex app-server and the scripted model: once as a ``%%codex`` cell (widget
view) and once consumed by the raw SDK without a widget (``thread.run(...)``):

- a message streamed as 20,000 text deltas;
- a command that prints 100,000 lines, then a short message;

and how long the first text of a turn takes to reach the screen: from the moment the
model writes its first text delta (``ScriptedModel.sent``) to the kernel's first update
that holds it (its message timestamp: a turn shows as plain output for its first
``LIVE_AFTER`` seconds, then as the widget), on a turn whose events come 0.3 s apart.

For each it prints the update messages the kernel sent (``comm_msg`` with method
``update``, and ``update_display_data`` but the last), the most of them sent within any one second (by the kernel's
message timestamps; a short turn's few fixed updates all fall in one second), the bytes of all widget and display messages, the
kernel's CPU time (``time.process_time()`` in the kernel, so the app-server is not
counted) and the wall time as the frontend sees it; then the ratio to the raw SDK.

Each turn runs ``--repeat`` times each way, alternating; the medians are printed.
The scripted model runs in a process of its own, apart from the frontend.

Usage: ``python benchmarks/widget_stream.py [--repeat N] [--quick]``. Compare ratios within one
run. ``--quick`` runs small turns once, to check that the benchmark works.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._model_process import ModelProcess  # noqa: E402
from codex_magic.scripted_model import Reply, exec_command, message, write_codex_config  # noqa: E402
from tests.conftest import Execution, Kernel  # noqa: E402

DELTAS = 20_000
LINES = 100_000

RAW_SETUP = """\
from openai_codex import ApprovalMode, Codex, Sandbox
raw_codex = Codex()
raw_thread = raw_codex.thread_start(approval_mode=ApprovalMode.deny_all, sandbox=Sandbox.workspace_write)
"""
CPU = "import time as _t; print(_t.process_time())"


def scenarios(deltas: int = DELTAS, lines: int = LINES) -> dict[str, list[object]]:
    """The scripted replies of each turn."""
    # 3 characters a delta, in paragraphs of 50 words as a long answer has them.
    words = [f"w{i % 10}" + ("\n\n" if i % 50 == 49 else " ") for i in range(deltas)]
    streamed = Reply([message("".join(words), deltas=True, chunk=3)])
    command = [exec_command(f"seq 1 {lines}", login=False), message("Printed them all.")]
    return {f"{deltas:,} text deltas": [streamed], f"{lines:,}-line command": command}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=25, help="runs of each turn each way (median)")
    parser.add_argument("--quick", action="store_true", help="small turns, once: check that it runs")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    turns = scenarios(500, 2_000) if args.quick else scenarios()
    with tempfile.TemporaryDirectory() as tmp, ModelProcess() as model:
        home, work = Path(tmp, "home"), Path(tmp, "work")
        work.mkdir()
        write_codex_config(home, model.url)
        for name in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            os.environ[name] = str(Path(tmp, name))
        kernel = Kernel({"CODEX_HOME": str(home)}, work)
        try:
            model.add(message("warm up"), message("warm up"))
            _ok(kernel.run("%load_ext codex_magic"))
            _ok(kernel.run("%%codex\nwarm up"))
            _ok(kernel.run(RAW_SETUP + 'raw_thread.run("warm up")'))
            print(f"medians of {repeat} runs each way")
            print(f"{'turn':<24}{'how':<10}{'updates':>8}{'in 1 s':>7}{'KiB sent':>10}{'CPU s':>8}{'wall s':>8}")
            for name, replies in turns.items():
                runs: dict[str, list[dict[str, float]]] = {"%%codex": [], "raw SDK": []}
                for _ in range(repeat):
                    model.add(*replies, *replies)
                    runs["%%codex"].append(_measure(kernel, "%%codex\nGo."))
                    runs["raw SDK"].append(_measure(kernel, 'raw_result = raw_thread.run("Go.")'))
                magic, raw = _median(runs["%%codex"]), _median(runs["raw SDK"])
                for how, row in (("%%codex", magic), ("raw SDK", raw)):
                    print(
                        f"{name:<24}{how:<10}{row['updates']:>8}{row['in 1 s']:>7}"
                        f"{row['bytes'] / 1024:>10.0f}{row['cpu']:>8.2f}{row['wall']:>8.2f}"
                    )
                pairs = sorted(m["wall"] / r["wall"] for m, r in zip(runs["%%codex"], runs["raw SDK"]))
                print(
                    f"{'':<24}wall ratio %%codex / raw SDK: {magic['wall'] / raw['wall']:.2f}x of the medians; "
                    f"run by run (back to back) median {statistics.median(pairs):.2f}x, "
                    f"range {pairs[0]:.2f}-{pairs[-1]:.2f}x"
                )
            latencies = [_first_text(kernel, model) for _ in range(2 if args.quick else 10)]
            print(
                f"first text on screen after the model sent it: median {statistics.median(latencies) * 1000:.1f} ms, "
                f"most {max(latencies) * 1000:.1f} ms ({len(latencies)} turns)"
            )
        finally:
            kernel.shutdown()
    return 0


def _first_text(kernel: Kernel, model: ModelProcess) -> float:
    """Seconds from the model writing a turn's first text delta to the widget update that shows it."""
    model.add(Reply([message("Firstword then the rest, slowly.", deltas=True, chunk=10)], delay=0.3))
    execution = _ok(kernel.run("%%codex\nTake your time."))
    sent = [when for when, kind in model.sent() if kind == "response.output_text.delta"]
    first_delta = sent[-4]  # this turn's: its message has four deltas of ten characters
    shown = next(
        m["header"]["date"].timestamp()
        for m in execution.of("comm_msg", "comm_open", "display_data", "update_display_data")
        if "Firstword" in json.dumps(m["content"]["data"].get("state", m["content"]["data"].get("text/html", "")))
    )
    return shown - first_delta


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def _ok(execution: Execution) -> Execution:
    if execution.error is not None or execution.reply["content"]["status"] != "ok":
        raise SystemExit(f"cell failed: {execution.error or execution.stderr}")
    return execution


def _measure(kernel: Kernel, code: str) -> dict[str, float]:
    before = float(_ok(kernel.run(CPU)).stdout)
    execution = _ok(kernel.run(code, timeout=300))
    after = float(_ok(kernel.run(CPU)).stdout)
    widget = execution.of("comm_msg", "comm_open", "display_data", "update_display_data")
    # Updates of the widget, and of the plain output a turn shows before the widget (the last
    # update_display_data, the finished transcript, is not a refresh).
    updates = [
        m
        for m in execution.of("comm_msg", "update_display_data")
        if m["msg_type"] == "update_display_data" or m["content"]["data"].get("method") == "update"
    ][:-1]
    sent = [m["header"]["date"].timestamp() for m in updates]
    return {
        "updates": len(updates),
        "in 1 s": max((bisect.bisect_right(sent, t + 1.0) - i for i, t in enumerate(sent)), default=0),
        "bytes": sum(len(json.dumps(m["content"])) for m in widget),
        "cpu": after - before,
        "wall": execution.seconds,
    }


if __name__ == "__main__":
    raise SystemExit(main())
