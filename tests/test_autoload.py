"""Auto-load: the kernel hook loads %%codex in every new kernel, and python -m codex_magic turns it off and on.

The kernels run in a temporary environment (a venv that sees .venv's packages), so its
``sys.prefix`` is a temporary directory: the hook is copied to ``PREFIX/etc/ipython`` as pip
installs it from the wheel, and ``python -m codex_magic`` writes the environment's choice under
``PREFIX/etc/jupyter``. The user's level is the ``jupyter_dirs`` fixture's JUPYTER_CONFIG_DIR and
IPYTHONDIR, so nothing outside tmp_path is touched.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.application import ENV_CONFIG_DIRS  # before a test points sys.prefix elsewhere

from codex_magic import __main__ as cli
from codex_magic import _autoload
from codex_magic.scripted_model import message

from .conftest import Kernel, Offline

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "jupyter-config" / "ipython" / _autoload.HOOK_FILE
# In the kernel: is %%codex there, is the SDK imported, which extensions are loaded.
PROBE = (
    "__import__('json').dumps(['codex' in get_ipython().magics_manager.magics['cell'], "
    "'openai_codex' in __import__('sys').modules, sorted(get_ipython().extension_manager.loaded)])"
)


def _make_prefix(path: Path) -> Path:
    """A venv at ``path`` that imports .venv's packages (codex_magic, ipykernel) but has its own sys.prefix."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=60)
    (purelib,) = path.glob("lib/python3*/site-packages")
    (purelib / "venv_packages.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")
    return path


@pytest.fixture
def prefix(tmp_path: Path, jupyter_dirs: None, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary environment with the hook installed, and the python3 kernel of this environment."""
    path = _make_prefix(tmp_path / "prefix")
    (path / "etc" / "ipython").mkdir(parents=True)
    shutil.copy(HOOK, path / "etc" / "ipython" / _autoload.HOOK_FILE)
    spec = tmp_path / "share" / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [str(path / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "prefix", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))  # before the environment's own
    monkeypatch.delenv("JUPYTER_CONFIG_PATH", raising=False)
    return path


def _codex_magic(prefix: Path, *args: str) -> str:
    """Run ``python -m codex_magic ARGS`` with the environment's python; its output."""
    done = subprocess.run(
        [str(prefix / "bin" / "python"), "-m", "codex_magic", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _probe(prefix: Path, tmp_path: Path, env: dict[str, str] | None = None) -> tuple[bool, bool, list[str]]:
    """Start a new kernel of the environment: is %%codex there, is the SDK imported, the extensions loaded."""
    kernel = Kernel(env or {}, tmp_path)
    try:
        assert kernel.value("__import__('sys').prefix") == str(prefix)
        codex, sdk, extensions = json.loads(kernel.value(PROBE))
        return codex, sdk, extensions
    finally:
        kernel.shutdown()


@pytest.mark.kernel
@pytest.mark.appserver
def test_installed_hook_loads_codex_in_a_new_kernel_without_load_ext_or_the_sdk(prefix: Path, offline: Offline) -> None:
    offline.model.add(message("Hello from an auto-loaded kernel."))
    kernel = Kernel(offline.env, offline.workspace)
    try:
        codex, sdk, extensions = json.loads(kernel.value(PROBE))
        assert codex and not sdk
        assert {"codex_magic", "codex_magic._autoload"} <= set(extensions)
        turn = kernel.run("%%codex\nHello")  # the first cell of the kernel: no %load_ext
        assert turn.error is None, turn.error
        assert kernel.value("_codex_result.final_response") == "Hello from an auto-loaded kernel."
        # A notebook's own %load_ext codex_magic is then a silent no-op, and unload/load still work.
        loaded = kernel.run("%load_ext codex_magic")
        assert loaded.error is None and loaded.stdout == "", loaded.stdout
        assert kernel.run("%unload_ext codex_magic").error is None
        assert json.loads(kernel.value(PROBE))[0] is False
        assert kernel.run("%load_ext codex_magic").error is None
        assert json.loads(kernel.value(PROBE))[0] is True
    finally:
        kernel.shutdown()


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("commands", "loaded"),
    [
        ([["disable"]], False),
        ([["disable"], ["enable", "--user"]], True),
        ([["enable"], ["disable", "--user"]], False),
        ([["disable", "--user"]], False),
        ([["disable", "--user"], ["reset", "--user"]], True),
    ],
    ids=["env-disable", "env-disable-user-enable", "env-enable-user-disable", "user-disable", "user-reset"],
)
def test_choices_decide_what_a_new_kernel_loads(
    prefix: Path, tmp_path: Path, commands: list[list[str]], loaded: bool
) -> None:
    for command in commands:
        said = _codex_magic(prefix, *command)
    assert f"auto-load is {'on' if loaded else 'off'}" in said
    assert _probe(prefix, tmp_path)[:2] == (loaded, False)


@pytest.mark.kernel
def test_a_users_own_extensions_load_too_and_their_files_are_untouched(prefix: Path, tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "some_other_ext.py").write_text(
        "def load_ipython_extension(ip):\n    ip.user_ns['some_other_ext_loaded'] = True\n"
    )
    profile = Path(tmp_path / "ipythondir" / "profile_default")
    profile.mkdir(parents=True)
    own = {
        profile / "ipython_kernel_config.py": 'c.InteractiveShellApp.extensions = ["some_other_ext"]\n',
        profile / "ipython_config.py": "c.InteractiveShell.autocall = 0\n",
        tmp_path / "jupyter_config_dir" / "jupyter_server_config.json": '{"ServerApp": {}}\n',
    }
    for path, text in own.items():
        path.write_text(text)
    env = {"PYTHONPATH": str(modules)}

    codex, sdk, extensions = _probe(prefix, tmp_path, env)
    assert codex and not sdk and {"codex_magic", "codex_magic._autoload", "some_other_ext"} <= set(extensions)
    _codex_magic(prefix, "disable", "--user")
    codex, sdk, extensions = _probe(prefix, tmp_path, env)
    assert not codex and "some_other_ext" in extensions and "codex_magic" not in extensions

    ipython_dir = tmp_path / "ipythondir"
    before = {path: path.read_bytes() for path in ipython_dir.rglob("*") if path.is_file()}
    for command in (["enable", "--user"], ["disable"], ["enable"], ["reset", "--user"], ["reset"]):
        _codex_magic(prefix, *command)
    assert {path: path.read_bytes() for path in ipython_dir.rglob("*") if path.is_file()} == before
    assert {path: path.read_bytes() for path in own} == {path: text.encode() for path, text in own.items()}
    assert sorted(p.name for p in (tmp_path / "jupyter_config_dir").iterdir()) == ["jupyter_server_config.json"]


# -- in-process: the command line and the choice files ----------------------------------------------


@pytest.fixture
def environment(tmp_path: Path, jupyter_dirs: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """sys.prefix pointed at an empty temporary environment; no system-wide files or hooks."""
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "env"))
    monkeypatch.delenv("JUPYTER_CONFIG_PATH", raising=False)
    monkeypatch.setattr("jupyter_core.paths.SYSTEM_CONFIG_PATH", [])
    monkeypatch.setattr("IPython.core.application.SYSTEM_CONFIG_DIRS", [])
    yield tmp_path / "env"


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(args) == 0
    return capsys.readouterr().out


def test_status_reports_the_state_and_the_files_that_decide_it(
    environment: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = tmp_path / "jupyter_config_dir" / "codex_magic.json"
    env = environment / "etc" / "jupyter" / "codex_magic.json"
    hook = environment / "etc" / "ipython" / _autoload.HOOK_FILE

    out = _main(capsys, "status")
    assert "kernel hook: none" in out
    assert out.splitlines()[-1].startswith(
        f"auto-load is off: no kernel hook loads codex_magic._autoload (looked for {hook})"
    )

    hook.parent.mkdir(parents=True)
    shutil.copy(HOOK, hook)
    out = _main(capsys, "status")
    assert f"kernel hook: {hook}" in out
    assert f"  user                 {user}  -" in out and f"  environment          {env}  -" in out
    assert out.splitlines()[-1] == f"auto-load is on: new kernels of {environment} load codex_magic (the default)"

    assert _main(capsys, "disable") == f"disabled auto-load for the environment {environment}: wrote {env}\n" + (
        f"auto-load is off: {env} disables it (environment level)\n"
    )
    assert json.loads(env.read_text()) == {"autoload": False}
    out = _main(capsys, "enable", "--user")
    assert out.splitlines() == [
        f"enabled auto-load for you: wrote {user}",
        f"auto-load is on: new kernels of {environment} load codex_magic: {user} enables it (user level)",
    ]
    out = _main(capsys, "status")
    assert f"  user                 {user}  enable" in out and f"  environment          {env}  disable" in out
    assert (
        _main(capsys, "reset", "--user").splitlines()[-1] == f"auto-load is off: {env} disables it (environment level)"
    )
    assert not user.exists()
    assert _main(capsys, "reset").startswith(
        f"removed {env}: the choice for the environment {environment} is forgotten"
    )
    assert _main(capsys, "reset").startswith(f"nothing to reset for the environment {environment}: no {env}")


def test_errors_are_one_line_with_the_fix(
    environment: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (environment / "etc").mkdir(parents=True)
    (environment / "etc" / "jupyter").write_text("a file where the directory should be")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["disable"])
    assert exit_.value.code == 1
    error = capsys.readouterr().err
    assert error == (
        f"python -m codex_magic: cannot write {environment}/etc/jupyter/codex_magic.json (File exists): "
        "use --user to choose for yourself\n"
    )

    user = tmp_path / "jupyter_config_dir" / "codex_magic.json"
    user.write_text("autoload: no")
    with pytest.raises(SystemExit):
        cli.main(["status"])
    assert capsys.readouterr().err == (
        f'python -m codex_magic: {user} must hold {{"autoload": true}} or {{"autoload": false}}: '
        "fix it, or delete it (user level)\n"
    )
    with pytest.raises(SystemExit) as exit_:
        cli.main(["status", "--user"])
    assert exit_.value.code == 2 and "status shows every level: drop --user" in capsys.readouterr().err


def test_the_hook_is_where_ipykernel_reads_it_and_shipped_by_the_wheel() -> None:
    tomllib = pytest.importorskip("tomllib")
    from ipykernel.kernelapp import IPKernelApp

    # ipykernel reads ipython_kernel_config.{py,json} (its name, "ipython-kernel") from sys.prefix/etc/ipython.
    assert IPKernelApp.name.replace("-", "_") + "_config.json" == _autoload.HOOK_FILE
    assert Path(ENV_CONFIG_DIRS[0]) == Path(sys.prefix, "etc", "ipython")
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    shared = wheel["shared-data"]
    assert shared == {str(HOOK.relative_to(ROOT)): f"etc/ipython/{_autoload.HOOK_FILE}"}
    assert json.loads(HOOK.read_text()) == {"InteractiveShellApp": {"extra_extensions": [_autoload.HOOK_MODULE]}}


def test_importing_the_hook_module_is_cheap() -> None:
    code = "import sys, codex_magic._autoload; assert not {'openai_codex', 'IPython', 'ipywidgets'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
