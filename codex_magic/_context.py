"""What a ``%%codex`` cell attaches from the notebook when asked: outputs, cells, variables.

Off by default: without ``--with-output``, ``--with-cells`` or ``--vars`` the prompt is
sent as written. :class:`OutputRecorder` keeps the last cells' displayed outputs (a
plot is a display, not an ``Out`` value), so ``--with-output`` can send them, images
as images. Imports neither the SDK nor ipywidgets.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._provenance import KEY as PROVENANCE_KEY

# The kernel tools' bounds apply here too; the module itself loads at the first use (it
# is not needed at %load_ext, where the recorder is installed).

_KEPT_CELLS = 10  # cells whose displayed outputs the recorder keeps
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_IMAGE_TYPES = ("image/png", "image/jpeg")
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
VAR_CHARS = 3_000  # characters of one variable's repr put into the prompt


@dataclass
class Output:
    """What one cell showed: its displays' and its result's text and images."""

    texts: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # data: URLs

    def add(self, data: Mapping[str, Any]) -> None:
        from ._kernel_tools import MAX_IMAGE_BYTES, MAX_IMAGES, data_url

        if _WIDGET_VIEW in data:
            return  # a widget (a %%codex turn's own view): nothing to read in it
        mime = next((m for m in _IMAGE_TYPES if data.get(m)), None)
        if mime is not None:
            url = data_url(mime, data[mime])
            if len(url) <= MAX_IMAGE_BYTES * 4 // 3 + 64 and len(self.images) < MAX_IMAGES:
                self.images.append(url)
        elif data.get("text/plain"):
            self.texts.append(str(data["text/plain"]))


class OutputRecorder:
    """Keeps what the last cells displayed, by execution count (installed at %load_ext)."""

    def __init__(self) -> None:
        self.outputs: OrderedDict[int, Output] = OrderedDict()
        self.cell = 0  # the number of the cell running (or that ran last), as the notebook shows it
        self._shell: Any = None
        self._publish: Any = None

    def install(self, shell: Any) -> None:
        """Record every display the shell publishes from now on."""
        publisher = getattr(shell, "display_pub", None)
        if publisher is None or self._shell is not None:
            return
        self._shell, self._publish = shell, publisher.publish
        self._cell_started()
        # A cell's plots are displayed after it ran (the inline backend's post_execute), when
        # the execution count has moved on: number the cell at its start instead.
        shell.events.register("pre_run_cell", self._cell_started)

        def publish(data: Any, *args: Any, **kwargs: Any) -> Any:
            metadata = kwargs.get("metadata", args[0] if args else None)
            try:
                if not (isinstance(metadata, Mapping) and PROVENANCE_KEY in metadata):  # a turn's own transcript
                    self.record(self.cell, data)
            except Exception:  # noqa: BLE001 - recording must never stop a display
                pass
            return self._publish(data, *args, **kwargs)

        publisher.publish = publish

    def _cell_started(self, _info: Any = None) -> None:
        # In[] holds the cells before this one: its length is this cell's number. (The
        # shell's execution_count is already one ahead here in IPython 9, not in 8.)
        self.cell = len(self._shell.user_ns.get("In") or [""])

    def uninstall(self) -> None:
        """Stop recording (%unload_ext)."""
        if self._shell is not None:
            try:
                self._shell.events.unregister("pre_run_cell", self._cell_started)
            except ValueError:
                pass
            publisher = self._shell.display_pub
            if getattr(publisher, "publish", None) is not self._publish:
                try:
                    del publisher.publish  # the instance attribute that wraps the class's method
                except AttributeError:
                    pass
        self._shell = self._publish = None

    def record(self, count: int, data: Any) -> None:
        if not isinstance(data, Mapping):
            return
        output = self.outputs.get(count)
        if output is None:
            output = self.outputs[count] = Output()
            while len(self.outputs) > _KEPT_CELLS:
                self.outputs.popitem(last=False)
        output.add(data)


@dataclass
class Attached:
    """What a cell's options attach to its prompt."""

    prompt: str
    images: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was attached, for the transcript


def attach(
    prompt: str,
    shell: Any,
    recorder: OutputRecorder | None,
    *,
    with_output: int | None = None,
    with_cells: int | None = None,
    with_vars: bool = False,
) -> Attached:
    """The prompt with what the options ask for; ``with_output=0`` means the last output shown.

    Raises ValueError with a message for the user when the output asked for does not exist.
    """
    from ._kernel_tools import MAX_TEXT, recent_cells

    attached = Attached(prompt)
    if with_vars:
        attached.prompt, names = fill_variables(prompt, shell.user_ns, getattr(shell, "user_ns_hidden", {}))
        if names:
            attached.notes.append("variables: " + ", ".join(f"{{{name}}}" for name in names))
    parts: list[str] = []
    if with_cells:
        history = getattr(shell, "history_manager", None)
        inputs = getattr(history, "input_hist_raw", None) or shell.user_ns.get("In") or []
        cells = recent_cells(inputs, shell.user_ns.get("Out") or {}, with_cells)
        parts.append(f"The notebook's last cells, before this one:\n{cells.text}")
        attached.notes.append(f"the last {with_cells} cells' source")
    if with_output is not None:
        number, output = _output(shell, recorder, with_output)
        text = "\n".join(output.texts)
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT] + f"\n[... {len(text) - MAX_TEXT:,} characters cut ...]"
        shown = f"The output of cell [{number}]" + (f":\n{text}" if text else ":")
        if output.images:
            shown += f"\n({len(output.images)} image{'s' if len(output.images) > 1 else ''} attached)"
        parts.append(shown)
        attached.images.extend(output.images)
        what = [f"{len(output.images)} image(s)"] if output.images else []
        what += [f"{len(text):,} characters of text"] if text else []
        attached.notes.append(f"the output of cell [{number}] ({', '.join(what) or 'empty'})")
    if parts:
        attached.prompt = attached.prompt + "\n\n" + "\n\n".join(parts)
    return attached


def _output(shell: Any, recorder: OutputRecorder | None, number: int) -> tuple[int, Output]:
    """Cell ``number``'s output (0: the last cell before this one that showed something)."""
    current = recorder.cell if recorder is not None else len(shell.user_ns.get("In") or [""]) - 1
    results: Mapping[int, Any] = shell.user_ns.get("Out") or {}
    recorded = recorder.outputs if recorder is not None else {}
    if number == 0:
        shown = [n for n in list(recorded) + list(results) if n < current and (n in results or _has(recorded[n]))]
        if not shown:
            raise ValueError(
                "no cell before this one has shown an output yet: run one, or name it with --with-output N"
            )
        number = max(shown)
    output = Output()
    if number in recorded:
        output.texts.extend(recorded[number].texts)
        output.images.extend(recorded[number].images)
    if number in results:
        data, _ = shell.display_formatter.format(results[number])
        output.add(data)
    if not output.texts and not output.images:
        raise ValueError(f"cell [{number}] showed no output that can be sent: pick another with --with-output N")
    return number, output


def _has(output: Output) -> bool:
    return bool(output.texts or output.images)


def fill_variables(prompt: str, namespace: Mapping[str, Any], hidden: Any = ()) -> tuple[str, list[str]]:
    """``{name}`` replaced by that variable's bounded repr where ``name`` is a user variable.

    Every other brace, ``$`` and backslash stays as written: ``{0}``, ``{x + 1}``, ``{{``
    and ``{unknown}`` are left alone.
    """
    from ._kernel_tools import bounded_repr, is_user_variable

    used: list[str] = []

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in namespace or not is_user_variable(name, namespace[name], hidden):
            return match.group(0)
        if name not in used:
            used.append(name)
        return bounded_repr(namespace[name], VAR_CHARS)

    return _VARIABLE.sub(value, prompt), used
