"""Memory of N kernels, each with its own codex app-server, against N kernels sharing one.

Starts N real kernels (through jupyter_client) with ``CodexMagic.app_server = "kernel"``
(the default), runs one one-message ``%%codex`` turn in each against the scripted model,
and sums the memory of every process the kernels started (their app-servers; in shared
mode the one server and each kernel's bridge); then the same with ``"shared"``. The
kernels themselves are the same both ways and are reported apart.

Memory is read from ``/proc``: VmRSS (counts shared pages once per process), RssAnon
(private memory) and PSS from ``smaps_rollup`` (shared pages divided among the processes
that map them: the fairest total).

Usage: ``python benchmarks/shared_memory.py [--kernels N] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._model_process import ModelProcess  # noqa: E402
from codex_magic.scripted_model import message, write_codex_config  # noqa: E402
from tests.conftest import Kernel  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", type=int, default=10, help="kernels each way")
    parser.add_argument("--quick", action="store_true", help="two kernels: check that it runs")
    args = parser.parse_args()
    count = 2 if args.quick else args.kernels
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ModelProcess() as model:
        home, work = Path(tmp, "home"), Path(tmp, "work")
        work.mkdir()
        write_codex_config(home, model.url)
        model.add(*[message("Hello.")] * (2 * count))
        for name in ("JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            os.environ[name] = str(Path(tmp, name))
        for mode in ("kernel", "shared"):
            kernels = [Kernel({"CODEX_HOME": str(home)}, work) for _ in range(count)]
            try:
                pids = []
                for kernel in kernels:
                    _ok(kernel.run(f'%load_ext codex_magic\n%config CodexMagic.app_server = "{mode}"'))
                    _ok(kernel.run("%%codex\nSay hello."))
                    pids.append(int(kernel.value("__import__('os').getpid()")))
                time.sleep(2)  # let start-up allocations settle
                started = {pid for kernel_pid in pids for pid in _descendants(kernel_pid)}
                rows.append((mode, len(started), _memory(started), _memory(set(pids))))
                if mode == "shared":
                    _ok(kernels[0].run("%codex stop"))
                    for pid in started:  # the shared server outlives kernels: stop it here
                        _kill(pid)
            finally:
                for kernel in kernels:
                    kernel.shutdown()
    print(f"{count} kernels, one turn each; memory of the processes the kernels started (MiB)")
    print(f"{'app_server':<12}{'processes':>10}{'VmRSS':>9}{'RssAnon':>9}{'PSS':>8}   kernels themselves: VmRSS, PSS")
    for mode, processes, started, kernels_memory in rows:
        print(
            f"{mode:<12}{processes:>10}{started[0]:>9.0f}{started[1]:>9.0f}{started[2]:>8.0f}"
            f"   {kernels_memory[0]:.0f}, {kernels_memory[2]:.0f}"
        )
    (_, _, own, _), (_, _, shared, _) = rows
    print(f"shared / own: VmRSS {shared[0] / own[0]:.2f}x, PSS {shared[2] / own[2]:.2f}x")
    return 0


def _ok(execution: object) -> None:
    error = getattr(execution, "error", None)
    if error is not None:
        raise SystemExit(f"cell failed: {error}")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _memory(pids: set[int]) -> tuple[float, float, float]:
    """VmRSS, RssAnon and PSS of the processes, summed, in MiB."""
    rss = anon = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            rss += int(fields["VmRSS"].split()[0])
            anon += int(fields["RssAnon"].split()[0])
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as smaps:
                pss += next(int(line.split()[1]) for line in smaps if line.startswith("Pss:"))
        except (OSError, KeyError, StopIteration, ValueError):
            continue
    return rss / 1024, anon / 1024, pss / 1024


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 15)
    except OSError:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
