"""codex-magic: OpenAI's Codex coding agent in Jupyter and IPython.

``%load_ext codex_magic`` registers the ``%%codex`` cell magic and the ``%codex``
line magic. Loading is cheap: the Codex SDK and the ``codex app-server`` process
start at the first turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import (
    AppServerError,
    CodexMagicError,
    NotLoggedInError,
    OutputSchemaError,
    ReplayMissingError,
    TurnBusyError,
    TurnError,
    TurnFailedError,
    TurnInterruptedError,
)
from ._provenance import provenance

if TYPE_CHECKING:
    from ._result import RunResult

__version__ = "0.1.0"
__all__ = [
    "AppServerError",
    "CodexMagicError",
    "NotLoggedInError",
    "OutputSchemaError",
    "ReplayMissingError",
    "RunResult",
    "TurnBusyError",
    "TurnError",
    "TurnFailedError",
    "TurnInterruptedError",
    "load_ipython_extension",
    "provenance",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    # RunResult subclasses the SDK's TurnResult: import the SDK only when asked.
    if name == "RunResult":
        from ._result import RunResult

        return RunResult
    raise AttributeError(f"module 'codex_magic' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%codex`` and ``%codex`` (called by ``%load_ext codex_magic``)."""
    from ._magic import CodexMagic, transform_codex_cell

    magic = CodexMagic(shell=ipython, parent=ipython)
    ipython.register_magics(magic)
    if magic not in ipython.configurables:  # IPython >= 9 adds every Magics itself
        ipython.configurables.append(magic)
    # First, before IPython's prompt stripping, so the cell's text reaches Codex as written.
    transformers = ipython.input_transformers_cleanup
    if transform_codex_cell not in transformers:
        transformers.insert(0, transform_codex_cell)
    ipython.events.register("post_run_cell", magic.record_error)  # for %codex fix
    from ._context import OutputRecorder

    magic.recorder = OutputRecorder()  # for --with-output
    magic.recorder.install(ipython)
    config = ipython.find_line_magic("config")  # resolved: IPython may load it lazily
    if config is not None and not hasattr(config, "codex_magic_wraps"):
        ipython.magics_manager.magics["line"]["config"] = magic.checked_config(config)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics and stop the app-server (called by ``%unload_ext codex_magic``)."""
    from ._magic import CodexMagic, transform_codex_cell

    while transform_codex_cell in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(transform_codex_cell)
    line_magics = ipython.magics_manager.magics["line"]
    config = line_magics.get("config")
    if hasattr(config, "codex_magic_wraps"):
        line_magics["config"] = config.codex_magic_wraps
    magic = ipython.magics_manager.registry.pop("CodexMagic", None)
    if magic is not None:
        try:
            ipython.events.unregister("post_run_cell", magic.record_error)
        except ValueError:
            pass
        if magic.recorder is not None:
            magic.recorder.uninstall()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("codex", None)
    ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, CodexMagic)]
    modules = __import__("sys").modules
    if "codex_magic._session" in modules:
        from ._session import close_session

        close_session()
    if "codex_magic._replay" in modules:
        from ._replay import HISTORY

        HISTORY.reset()  # the thread is gone with the app-server


def _loaded_magic() -> Any:
    from IPython import get_ipython

    shell = get_ipython()
    magic = shell.magics_manager.registry.get("CodexMagic") if shell else None
    if magic is None:
        from IPython.core.error import UsageError

        raise UsageError("codex_magic is not loaded: run %load_ext codex_magic first.")
    return magic


async def _run_fix_async(text: str) -> None:
    """What a transformed ``%codex fix`` cell awaits."""
    await _loaded_magic().codex_fix_async(text)


async def _run_cell_async(line: str, cell: str) -> None:
    """What a transformed ``%%codex`` cell awaits."""
    await _loaded_magic().codex_cell_async(line, cell)
