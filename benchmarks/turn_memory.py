"""What a long session of %%codex turns leaves in the kernel: widget models and memory.

Runs N one-message turns (and a command turn every tenth) in a real ipykernel against
the real codex app-server and the scripted model, and prints, after the first turn and
after the last, the number of ipywidgets models open in the kernel and the kernel's
resident memory (VmRSS).

Usage: ``python benchmarks/turn_memory.py [--turns N] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._model_process import ModelProcess  # noqa: E402
from codex_magic.scripted_model import exec_command, message, write_codex_config  # noqa: E402
from tests.conftest import Kernel  # noqa: E402

SETUP = "import gc as _gc, ipywidgets as _w"
PROBE = (
    "_gc.collect() * 0 + len(_w.Widget.widgets), "
    "int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])"
)


def _probe(kernel: Kernel) -> tuple[int, int]:
    widgets, rss = kernel.value(f"'%d %d' % ({PROBE})").split()
    return int(widgets), int(rss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100, help="turns to run")
    parser.add_argument("--quick", action="store_true", help="a few small runs: check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.turns = 10
    with tempfile.TemporaryDirectory() as tmp, ModelProcess() as model:
        home, work = Path(tmp, "home"), Path(tmp, "work")
        work.mkdir()
        write_codex_config(home, model.url)
        for turn in range(args.turns):
            if turn % 10 == 9:
                model.add(exec_command("echo hi"), message("Ran it."))
            else:
                model.add(message(f"Answer {turn}."))
        for name in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            os.environ[name] = str(Path(tmp, name))
        kernel = Kernel({"CODEX_HOME": str(home)}, work)
        try:
            kernel.run("%load_ext codex_magic")
            kernel.run(SETUP)
            kernel.run("%%codex\nTurn 0.")
            first = _probe(kernel)
            for turn in range(1, args.turns):
                execution = kernel.run(f"%%codex\nTurn {turn}.")
                assert execution.error is None, execution.error
            last = _probe(kernel)
        finally:
            kernel.shutdown()
    print(f"{'after':<16}{'widget models':>15}{'kernel RSS MiB':>16}")
    print(f"{'turn 1':<16}{first[0]:>15}{first[1] / 1024:>16.1f}")
    print(f"{f'turn {args.turns}':<16}{last[0]:>15}{last[1] / 1024:>16.1f}")
    print(
        f"per turn: {(last[0] - first[0]) / max(args.turns - 1, 1):.2f} widget models, "
        f"{(last[1] - first[1]) / max(args.turns - 1, 1):.1f} KiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
