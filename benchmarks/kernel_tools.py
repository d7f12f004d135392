"""Time of the kernel tools Codex calls most, on a namespace with big data in it.

Times, in this process (no kernel needed: the tools are plain functions of the namespace):

- ``list_variables`` on 100 variables: a 1,000,000-row DataFrame, a 1,000,000-value Series,
  a 1000 × 1000 and a 10,000,000-element array, and 96 small values (numbers, strings, lists, dicts);
- ``inspect_variable`` on a 10,000,000-row DataFrame (dtypes, head, describe() on a sample);
- ``inspect_variable`` on a 10,000,000-element array and on a 1 MB string;
- ``run_python`` of a one-line expression (the tool's own overhead).

Each is the median of ``--repeats`` calls, after one call to warm up. Targets: list_variables
under 10 ms, inspect_variable of the big frame under 50 ms.

Usage: ``python benchmarks/kernel_tools.py [--repeats N] [--quick]`` (needs pandas and numpy).
Numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from codex_magic._kernel_tools import inspect_variable, list_variables, run_python

TARGETS = {"list_variables": 0.010, "inspect_variable big frame": 0.050}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25, help="calls to time for each (median)")
    parser.add_argument("--quick", action="store_true", help="a few small runs: check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 2

    listed = _hundred_variables()
    rng = np.random.default_rng(1)
    inspected = {
        "big": pd.DataFrame({"a": np.arange(10_000_000), "b": rng.random(10_000_000)}),
        "vector": listed["vector"],
        "text": ("line of text\n" * 80_000)[:1_000_000],
    }
    rows: list[tuple[str, str, Callable[[], Any]]] = [
        ("list_variables", "list_variables, 100 variables", lambda: list_variables(listed)),
        (
            "inspect_variable big frame",
            "inspect_variable, 10M-row DataFrame",
            lambda: inspect_variable(inspected, "big"),
        ),
        ("", "inspect_variable, 10M-element array", lambda: inspect_variable(inspected, "vector")),
        ("", "inspect_variable, 1 MB string", lambda: inspect_variable(inspected, "text")),
        ("", "run_python, '1 + 1'", lambda: run_python({}, "1 + 1")),
    ]
    print(f"{'what':<40}{'median ms':>10}{'max ms':>9}{'target ms':>11}")
    for key, label, call in rows:
        seconds = _times(call, args.repeats)
        target = f"{TARGETS[key] * 1000:.0f}" if key else ""
        print(f"{label:<40}{statistics.median(seconds) * 1000:>10.2f}{max(seconds) * 1000:>9.2f}{target:>11}")
    return 0


def _hundred_variables() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    namespace: dict[str, Any] = {
        "frame": pd.DataFrame({"a": np.arange(1_000_000), "b": rng.random(1_000_000), "c": ["x"] * 1_000_000}),
        "series": pd.Series(rng.random(1_000_000), name="s"),
        "matrix": rng.random((1000, 1000)),
        "vector": np.arange(10_000_000, dtype=float),
    }
    for i in range(96):
        namespace[f"small_{i}"] = [i, str(i), {"k": list(range(i))}, float(i), "text " * i][i % 5]
    reply = list_variables(namespace)
    assert reply.text.startswith("100 variables"), reply.text[:200]
    return namespace


def _times(call: Callable[[], Any], repeats: int) -> list[float]:
    call()  # warm up: first calls pay for imports and caches
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


if __name__ == "__main__":
    raise SystemExit(main())
