"""Time of a replayed %%codex cell against the same cell run live, in fresh kernels.

A notebook of one-message ``%%codex`` cells with ``CodexMagic.replay = "auto"`` runs twice,
each time in a new kernel (as Run All after a restart does), against the real codex
app-server and the scripted model: the first run calls the model and records each turn,
the second replays them. Times are as a frontend sees them (execute request to idle).

Usage: ``python benchmarks/replay.py [--cells N] [--quick]``. Numbers depend on the machine;
compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._model_process import ModelProcess  # noqa: E402
from codex_magic.scripted_model import message, write_codex_config  # noqa: E402
from tests.conftest import Kernel  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10, help="%%codex cells in the notebook")
    parser.add_argument("--quick", action="store_true", help="a few small runs: check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.cells = 3

    with tempfile.TemporaryDirectory() as tmp, ModelProcess() as model:
        home, work = Path(tmp, "home"), Path(tmp, "work")
        work.mkdir()
        write_codex_config(home, model.url)
        model.add(*[message("Hello.")] * args.cells)
        for name in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            os.environ[name] = str(Path(tmp, name))
        runs = {}
        for run in ("live", "replayed"):
            kernel = Kernel({"CODEX_HOME": str(home)}, work)
            try:
                _cell(kernel, '%load_ext codex_magic\n%config CodexMagic.replay = "auto"')
                runs[run] = [_cell(kernel, f"%%codex\nSay hello, {n}.") for n in range(args.cells)]
            finally:
                kernel.shutdown()
        recordings = len(list(Path(work, "codex-recordings").glob("*.jsonl")))

    live, replayed = runs["live"], runs["replayed"]
    print(f"{'what':<46}{'live':>9}{'replayed':>10}{'ratio':>8}")
    rows = [
        ("first %%codex cell of a fresh kernel", live[0], replayed[0]),
        (
            f"later %%codex cell (median of {args.cells - 1})",
            statistics.median(live[1:]),
            statistics.median(replayed[1:]),
        ),
    ]
    for label, a, b in rows:
        print(f"{label:<46}{a:>9.3f}{b:>10.3f}{b / a:>7.2f}x")
    print(f"recordings written: {recordings}; model requests: {args.cells} live, 0 replayed")
    return 0


def _cell(kernel: Kernel, code: str) -> float:
    execution = kernel.run(code)
    if execution.error is not None or execution.reply["content"]["status"] != "ok":
        raise SystemExit(f"cell failed: {code!r}: {execution.error or execution.stderr}")
    return execution.seconds


if __name__ == "__main__":
    raise SystemExit(main())
