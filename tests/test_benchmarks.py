"""Every benchmark runs, in its quick mode, so that none rots (their numbers are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.appserver]

BENCHMARKS = sorted(
    p for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py") if not p.name.startswith("_")
)


def test_every_benchmark_is_listed() -> None:
    assert {p.stem for p in BENCHMARKS} == {
        "cell_latency",
        "kernel_tools",
        "replay",
        "shared_memory",
        "turn_memory",
        "widget_stream",
    }


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_the_benchmark_runs_in_quick_mode(script: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, f"{script.name} failed:\n{run.stdout}\n{run.stderr[-3000:]}"
    assert run.stdout.strip(), f"{script.name} printed nothing"
