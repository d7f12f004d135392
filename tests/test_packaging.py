"""The built artifacts: a wheel and an sdist that twine accepts, with the kernel hook, py.typed and one version.

The build runs without isolation (the test extra brings hatchling), so it needs no network.
``.ci/run`` installs the wheel into a fresh venv and runs the demo and a kernel with it.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import codex_magic
from codex_magic import _autoload

ROOT = Path(__file__).resolve().parent.parent
VERSION = codex_magic.__version__
HOOK = Path("jupyter-config", "ipython", _autoload.HOOK_FILE)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from it, in a temporary directory."""
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)]
    done = subprocess.run(build, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_twine_accepts_the_wheel_and_the_sdist(dist: Path) -> None:
    artifacts = sorted(p.name for p in dist.iterdir())
    assert artifacts == [f"codex_magic-{VERSION}-py3-none-any.whl", f"codex_magic-{VERSION}.tar.gz"]
    check = [sys.executable, "-m", "twine", "check", "--strict", *(str(dist / name) for name in artifacts)]
    done = subprocess.run(check, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_the_wheel_holds_the_kernel_hook_py_typed_and_the_version(dist: Path) -> None:
    with zipfile.ZipFile(dist / f"codex_magic-{VERSION}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        hook = f"codex_magic-{VERSION}.data/data/etc/ipython/{_autoload.HOOK_FILE}"
        assert wheel.read(hook) == (ROOT / HOOK).read_bytes()
        assert wheel.read("codex_magic/py.typed") == b""
        metadata = wheel.read(f"codex_magic-{VERSION}.dist-info/METADATA").decode()
    assert {"codex_magic/__init__.py", "codex_magic/__main__.py", "codex_magic/_autoload.py"} <= names
    assert f"\nVersion: {VERSION}\n" in metadata
    assert not [name for name in names if name.startswith("tests/") or "__pycache__" in name]


def test_the_sdist_holds_jupyter_config_and_no_caches(dist: Path) -> None:
    with tarfile.open(dist / f"codex_magic-{VERSION}.tar.gz") as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
        pkg_info = sdist.extractfile(f"codex_magic-{VERSION}/PKG-INFO")
        assert pkg_info is not None
        assert f"\nVersion: {VERSION}\n" in pkg_info.read().decode()
    assert {str(HOOK), "codex_magic/py.typed", "pyproject.toml", "README.md", "tests/conftest.py"} <= names
    assert not [name for name in names if name.startswith((".venv", ".hypothesis", ".mypy_cache", "out/", "dist/"))]


def test_the_version_has_one_source() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"] == {"path": "codex_magic/__init__.py"}
