"""Auto-load: ``%%codex`` in every new IPython kernel of the environment, unless turned off.

Two kinds of file decide it:

- The kernel hook, ``PREFIX/etc/ipython/ipython_kernel_config.json``, installed with the
  package (hatch shared data from ``jupyter-config/``). ipykernel reads
  ``ipython_kernel_config.{py,json}`` from the IPython profile, ``sys.prefix/etc/ipython``,
  ``/usr/local/etc/ipython`` and ``/etc/ipython`` (not from Jupyter's config path, and no
  ``.d`` directory). The hook lists this module in ``InteractiveShellApp.extra_extensions``,
  which a profile's ``c.InteractiveShellApp.extensions = [...]`` leaves alone.
- The choice, ``codex_magic.json`` (``{"autoload": true|false}``) in a Jupyter config
  directory, written by ``python -m codex_magic enable|disable [--user]``. The first level
  that has one decides, highest priority first: user (``JUPYTER_CONFIG_DIR``, default
  ``~/.jupyter``), ``JUPYTER_CONFIG_PATH``, environment (``sys.prefix/etc/jupyter``), system.
  None: on.

At kernel start the hook imports this module only; it loads ``codex_magic`` through the
extension manager, which imports neither the SDK nor IPython's widgets.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import CodexMagicError

CHOICE_FILE = "codex_magic.json"
HOOK_FILE = "ipython_kernel_config.json"
HOOK_MODULE = __name__


class AutoloadConfigError(CodexMagicError):
    """A ``codex_magic.json`` choice file that cannot be read."""


@dataclass(frozen=True)
class Level:
    """One place a choice can be made: its name and its ``codex_magic.json``."""

    name: str
    path: Path

    @property
    def choice(self) -> bool | None:
        """``True``/``False`` as the file says, ``None`` without a file."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise AutoloadConfigError(f"cannot read {self.path}: {error.strerror}") from None
        try:
            choice = json.loads(text).get("autoload")
        except (ValueError, AttributeError):
            choice = None
        if not isinstance(choice, bool):
            raise AutoloadConfigError(
                f'{self.path} must hold {{"autoload": true}} or {{"autoload": false}}: '
                f"fix it, or delete it ({self.name} level)"
            )
        return choice


def level(*, user: bool) -> Level:
    """The level ``python -m codex_magic`` writes: the user's, or the environment's (``sys.prefix``)."""
    if user:
        from jupyter_core.paths import jupyter_config_dir

        return Level("user", Path(jupyter_config_dir(), CHOICE_FILE))
    return Level("environment", Path(sys.prefix, "etc", "jupyter", CHOICE_FILE))


def levels() -> list[Level]:
    """The places a choice is looked for, highest priority first (read at each call)."""
    from jupyter_core.paths import SYSTEM_CONFIG_PATH

    extra = [p for p in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    found = [level(user=True)]
    found += [Level("JUPYTER_CONFIG_PATH", Path(p, CHOICE_FILE)) for p in extra]
    found += [level(user=False)]
    found += [Level("system", Path(p, CHOICE_FILE)) for p in SYSTEM_CONFIG_PATH]
    return found


def decision() -> tuple[bool, Level | None]:
    """Whether auto-load is on, and the level that says so (``None``: the default, on)."""
    for each in levels():
        choice = each.choice
        if choice is not None:
            return choice, each
    return True, None


def hook_dirs() -> list[Path]:
    """IPython's environment and system config directories, where the hook can be installed."""
    from IPython.core.application import SYSTEM_CONFIG_DIRS

    return [Path(sys.prefix, "etc", "ipython"), *(Path(p) for p in SYSTEM_CONFIG_DIRS)]


def installed_hooks() -> list[Path]:
    """The kernel config files of ``hook_dirs()`` that load this module."""
    hooks = []
    for directory in hook_dirs():
        try:
            config = json.loads((directory / HOOK_FILE).read_text(encoding="utf-8"))
            extensions = config["InteractiveShellApp"]["extra_extensions"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(extensions, list) and HOOK_MODULE in extensions:
            hooks.append(directory / HOOK_FILE)
    return hooks


def load_ipython_extension(ipython: Any) -> None:
    """Load ``codex_magic`` unless auto-load is off (the kernel hook calls this at start)."""
    enabled, _ = decision()
    if enabled:
        ipython.extension_manager.load_extension("codex_magic")
        _quiet_load_ext(ipython)


def _quiet_load_ext(ipython: Any) -> None:
    # Notebooks start with %load_ext codex_magic so they run in any kernel; once auto-loaded,
    # that cell does nothing, without IPython's "already loaded ... %reload_ext" notice.
    original = ipython.find_line_magic("load_ext")  # resolved: IPython may load it lazily
    if original is None or hasattr(original, "codex_magic_wraps"):
        return

    @functools.wraps(original)
    def load_ext(module_str: str) -> Any:
        if module_str.strip() == "codex_magic" and "codex_magic" in ipython.extension_manager.loaded:
            return None
        return original(module_str)

    load_ext.codex_magic_wraps = original  # type: ignore[attr-defined]
    ipython.magics_manager.magics["line"]["load_ext"] = load_ext
