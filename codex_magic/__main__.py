"""``python -m codex_magic enable|disable|reset|status [--user]``: auto-load in new kernels."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._autoload import (
    HOOK_FILE,
    HOOK_MODULE,
    AutoloadConfigError,
    Level,
    decision,
    hook_dirs,
    installed_hooks,
    level,
    levels,
)

_CHOICES = {"enable": True, "disable": False, "reset": None}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line: write or remove a choice file, then say what new kernels will do."""
    parser = argparse.ArgumentParser(
        prog="python -m codex_magic",
        description="Turn auto-load of %%codex in new IPython kernels on or off. "
        "A choice of the user beats the environment's; without any choice it is on.",
    )
    parser.add_argument(
        "action",
        choices=[*_CHOICES, "status"],
        help="enable or disable auto-load, reset (forget this level's choice), or status "
        "(the state and the files that decide it)",
    )
    parser.add_argument(
        "--user",
        action="store_true",
        help="your own choice, in JUPYTER_CONFIG_DIR (default ~/.jupyter); "
        f"default: the environment's, in {sys.prefix}/etc/jupyter",
    )
    args = parser.parse_args(argv)
    if args.action == "status" and args.user:
        parser.error("status shows every level: drop --user")
    try:
        if args.action != "status":
            print(_write(level(user=args.user), _CHOICES[args.action]))
        else:
            _print_levels()
        print(_summary())
    except AutoloadConfigError as error:
        parser.exit(1, f"{parser.prog}: {error}\n")
    return 0


def _write(place: Level, choice: bool | None) -> str:
    """Write (or, for ``None``, remove) the choice file of a level; what was done, in a line."""
    where = "for you" if place.name == "user" else f"for the environment {sys.prefix}"
    try:
        if choice is None:
            if not place.path.exists():
                return f"nothing to reset {where}: no {place.path}"
            place.path.unlink()
            return f"removed {place.path}: the choice {where} is forgotten"
        place.path.parent.mkdir(parents=True, exist_ok=True)
        place.path.write_text(json.dumps({"autoload": choice}) + "\n", encoding="utf-8")
    except OSError as error:
        fix = "use --user to choose for yourself" if place.name == "environment" else "check its permissions"
        raise AutoloadConfigError(f"cannot write {place.path} ({error.strerror}): {fix}") from None
    return f"{'enabled' if choice else 'disabled'} auto-load {where}: wrote {place.path}"


def _print_levels() -> None:
    print("choices, highest priority first (python -m codex_magic enable|disable [--user] writes them):")
    for place in levels():
        try:
            choice = {True: "enable", False: "disable", None: "-"}[place.choice]
        except AutoloadConfigError as error:
            choice = f"unreadable: {error}"
        print(f"  {place.name:<20} {place.path}  {choice}")
    hooks = installed_hooks()
    print(f"kernel hook: {', '.join(map(str, hooks)) if hooks else 'none'}")


def _summary() -> str:
    """What new kernels will do, and the file that decides it."""
    enabled, place = decision()
    if not enabled:
        assert place is not None
        return f"auto-load is off: {place.path} disables it ({place.name} level)"
    if not installed_hooks():
        searched = ", ".join(str(d / HOOK_FILE) for d in hook_dirs())
        return (
            f"auto-load is off: no kernel hook loads {HOOK_MODULE} (looked for {searched}): "
            "reinstall codex-magic into this environment with pip (not pip install --user)"
        )
    why = f": {place.path} enables it ({place.name} level)" if place else " (the default)"
    return f"auto-load is on: new kernels of {sys.prefix} load codex_magic{why}"


if __name__ == "__main__":
    raise SystemExit(main())
