"""The kernel tools Codex calls: look at the live kernel's variables and cells, and run code in it.

Each tool returns a :class:`ToolReply`, bounded (``MAX_TEXT`` characters, a few images), whose
``content_items()`` is what the app-server's ``item/tool/call`` reply carries. A bad argument or a
variable that fails to show itself becomes a failed reply the model can act on, never an exception.
Nothing here imports pandas, numpy or matplotlib: they are used only when the user already has.

Threading: :func:`run_python` runs code the way a cell does, so call it on the kernel's main
thread (where a SIGINT interrupt lands); while it runs it swaps ``sys.stdout``, ``sys.stderr``
and the shell's display publisher, which are process-wide.
"""

from __future__ import annotations

import ast
import base64
import inspect
import io
import itertools
import linecache
import os
import re
import reprlib
import sys
import time
import traceback
import types
import warnings
from collections.abc import Callable, Container, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from ._text import plain

__all__ = [
    "MAX_TEXT",
    "READ_ONLY",
    "TOOL_NAMES",
    "ToolReply",
    "check_arguments",
    "inspect_variable",
    "list_variables",
    "recent_cells",
    "run_python",
    "tool_specs",
]

TOOL_NAMES: tuple[str, ...] = ("list_variables", "inspect_variable", "run_python", "propose_cell", "recent_cells")
READ_ONLY: frozenset[str] = frozenset({"list_variables", "inspect_variable", "recent_cells", "propose_cell"})
MAX_TEXT = 20_000  # characters of text in one reply

MAX_VARIABLES = 200  # variables listed by list_variables
MAX_IMAGES = 4  # images in one run_python reply
MAX_IMAGE_BYTES = 2 * 1024 * 1024  # a bigger image is left out (the model's input has limits)
MAX_CELLS = 20  # recent_cells' largest count
SAMPLE = 100_000  # rows (or array elements) that describe() and statistics look at, beyond that many
SEED = 0  # the sample's seed, so the same data gives the same answer
DESCRIBE_COLUMNS = 20  # columns that describe() and head() show
ITEMS = 20  # items of a collection that inspect_variable shows

# Names a fresh IPython or ipykernel namespace holds for itself (besides _-names and modules).
_KERNEL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


def tool_specs() -> list[dict[str, Any]]:
    """The ``dynamicTools`` entries for ``thread/start``: name, description and input schema of each tool."""
    no_arguments: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    code = {"type": "string", "description": "Python source, as in a notebook cell."}
    return [
        {
            "name": "list_variables",
            "description": (
                "List the user's variables in the live Jupyter kernel: name, type, shape or length, memory size "
                f"and a short preview of each (at most {MAX_VARIABLES}; modules and IPython internals left out)."
            ),
            "inputSchema": no_arguments,
        },
        {
            "name": "inspect_variable",
            "description": (
                "Describe one variable of the live kernel: a DataFrame's dtypes, head and describe() (on a "
                f"{SAMPLE:,}-row sample of larger frames), an array's statistics, a collection's first items, "
                "a function's signature and docstring, or else a bounded repr. Runs no code of yours; "
                f"the answer is at most {MAX_TEXT:,} characters."
            ),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "name": {
                        "type": "string",
                        "description": "A variable name, or a dotted attribute path such as df.price or model.coef_.",
                    }
                },
                "required": ["name"],
                "additionalProperties": False,
            },
        },
        {
            "name": "run_python",
            "description": (
                "Run Python code in the user's live kernel namespace, like a notebook cell, after the user "
                "approves it; variables it assigns stay in the kernel. Returns stdout, stderr, the value of the "
                "last expression or the traceback, and new matplotlib figures or displayed images as images. "
                f"Output is bounded ({MAX_TEXT:,} characters, {MAX_IMAGES} images); top-level await is not "
                "supported. Keep runs short: the notebook waits for them."
            ),
            "inputSchema": {
                "type": "object",
                "properties": {"code": code},
                "required": ["code"],
                "additionalProperties": False,
            },
        },
        {
            "name": "propose_cell",
            "description": (
                "Put Python code in a new notebook cell below the current one, for the user to review and run. "
                "It never runs the code; use it for code the user should keep in the notebook."
            ),
            "inputSchema": {
                "type": "object",
                "properties": {"code": code},
                "required": ["code"],
                "additionalProperties": False,
            },
        },
        {
            "name": "recent_cells",
            "description": (
                "Show the notebook's most recently executed cells (source and Out value), oldest first, "
                "without the %%codex cell now running."
            ),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "count": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_CELLS,
                        "description": "How many cells (default 5).",
                    }
                },
                "additionalProperties": False,
            },
        },
    ]


def check_arguments(tool: str, arguments: Any) -> str | None:
    """An error text the model can act on when ``arguments`` do not fit ``tool``'s schema, else None."""
    if tool not in TOOL_NAMES:
        return f"Unknown tool {tool!r}. The kernel tools are: {', '.join(TOOL_NAMES)}."
    if not isinstance(arguments, dict):
        return f"The arguments of {tool} must be a JSON object, not {type(arguments).__name__}."
    required = {"inspect_variable": "name", "run_python": "code", "propose_cell": "code"}.get(tool)
    if required is not None:
        value = arguments.get(required)
        if not isinstance(value, str) or not value.strip():
            got = "missing" if value is None else f"got {type(value).__name__} {_LINE.repr(value)}"
            return f"{tool} needs {required!r}, a non-empty string ({got})."
        if tool == "inspect_variable" and not _is_path(value):
            return (
                f"{tool}'s name must be a variable name or a dotted attribute path such as df.price, "
                f"not {value!r}; use run_python for other expressions."
            )
    if tool == "recent_cells":
        count = arguments.get("count")
        if count is not None and (type(count) is not int or not 1 <= count <= MAX_CELLS):
            return f"recent_cells' count must be an integer from 1 to {MAX_CELLS}, not {count!r}."
    return None


@dataclass(frozen=True)
class ToolReply:
    """What a tool gives back: text, images as ``data:`` URLs, and whether it succeeded."""

    text: str
    images: tuple[str, ...] = ()  # data: URLs (image/png or image/jpeg)
    success: bool = True

    def content_items(self) -> list[dict[str, Any]]:
        """The app-server's ``contentItems``: the text, then each image."""
        items: list[dict[str, Any]] = [{"type": "inputText", "text": self.text}]
        items.extend({"type": "inputImage", "imageUrl": url} for url in self.images)
        return items

    def preview(self, limit: int = 300) -> str:
        """The reply as one short line (at most ``limit`` characters), for the transcript."""
        suffix = ""
        if self.images:
            suffix = f" (+{len(self.images)} image{'s' if len(self.images) > 1 else ''})"
        line = " ".join(self.text[: limit * 4].split())
        room = max(limit - len(suffix), 1)
        if len(line) > room:
            line = line[: room - 1] + "\u2026"
        return (line + suffix)[:limit]


def _reply(text: str, images: Sequence[str] = (), *, success: bool = True) -> ToolReply:
    # Every reply goes out through here: no control sequences, no registered secrets, bounded.
    return ToolReply(_cut_middle(plain(text), MAX_TEXT), tuple(images), success)


# -- list_variables ------------------------------------------------------------------------------


def list_variables(namespace: Mapping[str, Any], hidden: Container[str] = ()) -> ToolReply:
    """The user's variables, one line each: name, type, shape or length, memory size and a preview."""
    names = [name for name, value in namespace.items() if is_user_variable(name, value, hidden)]
    if not names:
        return _reply("The kernel has no user variables yet.")
    lines = [f"{_count(len(names), 'variable')} (name | type | shape or length | size | preview):"]
    used = len(lines[0])
    budget = MAX_TEXT - 200  # room for the closing note
    listed = 0
    for name in names[:MAX_VARIABLES]:
        line = _variable_line(name, namespace[name])
        if used + len(line) + 1 > budget:
            break
        lines.append(line)
        used += len(line) + 1
        listed += 1
    if listed < len(names):
        lines.append(
            f"... and {len(names) - listed} more not listed (at most {MAX_VARIABLES} variables and "
            f"{MAX_TEXT:,} characters); inspect_variable works on any of them."
        )
    return _reply("\n".join(lines))


def is_user_variable(name: str, value: Any, hidden: Container[str] = ()) -> bool:
    """Whether a name of the namespace is the user's: not IPython's, not a module, not hidden."""
    if not isinstance(name, str) or name.startswith("_") or isinstance(value, types.ModuleType):
        return False
    if name in _KERNEL_NAMES or (name == "open" and _is_builtin_open(value)):
        return False
    return not _is_hidden(name, value, hidden)


def _is_hidden(name: str, value: Any, hidden: Container[str]) -> bool:
    # Like %who: a hidden name the user has since reassigned is the user's variable again.
    if name not in hidden:
        return False
    return not isinstance(hidden, Mapping) or hidden[name] is value


def _is_builtin_open(value: Any) -> bool:
    # IPython puts its own wrapper of open() in the namespace.
    return value is open or getattr(value, "__wrapped__", None) is open


def _variable_line(name: str, value: Any) -> str:
    try:
        kind = _short_name(type(value))
        shape = _shape(value)
        size = _human(_nbytes(value))
        preview = _one_line(_preview(value), 100)
    except Exception as error:  # a variable that cannot show itself still gets its line
        return f"{name} | {_short_name(type(value))} | ? | ? | <{_error_line(error)}>"
    return f"{name} | {kind} | {shape} | {size} | {preview}"


def _shape(value: Any) -> str:
    if isinstance(value, type):
        return ""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        return "shape (" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    if hasattr(type(value), "__len__"):
        try:
            return f"len {len(value):,}"
        except Exception:
            return ""
    return ""


def _nbytes(value: Any) -> int | None:
    pd = _module("pandas")
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
        usage = value.memory_usage(deep=False)
        return int(usage.sum() if isinstance(value, pd.DataFrame) else usage)
    np = _module("numpy")
    if np is not None and isinstance(value, np.ndarray):
        return int(value.nbytes)
    try:
        return sys.getsizeof(value)
    except Exception:
        return None


def _preview(value: Any) -> str:
    pd, np = _module("pandas"), _module("numpy")
    if pd is not None and isinstance(value, pd.DataFrame):
        return "columns: " + _names(value.columns, 90)
    if pd is not None and isinstance(value, pd.Series):
        return f"{value.dtype}: " + _items(value.iloc[:6].tolist(), len(value))
    if np is not None and isinstance(value, np.ndarray):
        return f"{value.dtype}: " + _items(value.flat[:6].tolist(), value.size)
    if isinstance(value, type):
        bases = ", ".join(base.__qualname__ for base in value.__bases__ if base is not object)
        return f"class {_short_name(value)}({bases})"
    if inspect.isroutine(value):
        return f"{getattr(value, '__name__', '?')}{_signature(value)}"
    return _LINE.repr(value)


def _items(values: list[Any], total: int) -> str:
    shown = [format(v, ".6g") if isinstance(v, float) else _LINE.repr(v) for v in values[:5]]
    return "[" + ", ".join(shown) + (", \u2026]" if total > len(shown) else "]")


def _names(names: Any, limit: int) -> str:
    text = ""
    for label in names:
        piece = (", " if text else "") + str(label)
        if len(text) + len(piece) > limit:
            return f"{text}, \u2026 ({len(names)} in all)"
        text += piece
    return text


# -- inspect_variable ----------------------------------------------------------------------------


def inspect_variable(namespace: Mapping[str, Any], name: str, hidden: Container[str] = ()) -> ToolReply:
    """A detailed, bounded description of one variable (or dotted attribute path) of the kernel."""
    if not isinstance(name, str) or not _is_path(name.strip()):
        return _reply(
            f"{name!r} is not a variable name or a dotted attribute path such as df.price; "
            "use run_python for other expressions.",
            success=False,
        )
    first, *attributes = name.strip().split(".")
    if first not in namespace or _is_hidden(first, namespace[first], hidden):
        return _reply(
            f"No variable named {first!r} in the kernel. Call list_variables to see what exists.", success=False
        )
    value, path = namespace[first], first
    try:
        for attribute in attributes:
            try:
                value = getattr(value, attribute)
            except AttributeError:
                return _reply(f"{path} ({type(value).__qualname__}) has no attribute {attribute!r}.", success=False)
            path += "." + attribute
        return _reply(_describe(path, value))
    except Exception as error:  # a property that raises, a broken __repr__, a failing describe()
        return _reply(f"Could not inspect {path}: {_error_line(error)}", success=False)


def _is_path(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _describe(path: str, value: Any) -> str:
    pd, np = _module("pandas"), _module("numpy")
    if pd is not None and isinstance(value, pd.DataFrame):
        return _describe_frame(path, value, pd, np)
    if pd is not None and isinstance(value, pd.Series):
        return _describe_series(path, value, pd, np)
    if np is not None and isinstance(value, np.ndarray):
        return _describe_array(path, value, np)
    head = f"{path}: {_qualified(type(value))}"
    if isinstance(value, str):
        start = value[:2000]
        more = f" (the first {len(start):,} of {len(value):,} characters)" if len(value) > len(start) else ""
        count = value.count("\n") + 1
        size = _human(sys.getsizeof(value))
        return f"{head}, {len(value):,} characters, {count:,} lines, {size}\nstart{more}:\n{start}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value[:400])
        return f"{head}, {len(value):,} bytes\nstart: {data!r}" + (" ..." if len(value) > 400 else "")
    if isinstance(value, type) or inspect.isroutine(value):
        return _describe_callable(path, value)
    if isinstance(value, Mapping):
        lines = [f"{head}, {_count(len(value), 'item')}, {_human(_nbytes(value))}"]
        if value:
            lines.append(f"first {min(ITEMS, len(value))} items:" if len(value) > ITEMS else "items:")
            pairs = itertools.islice(value.items(), ITEMS)
            lines.extend(f"  {_ITEM.repr(key)}: {_ITEM.repr(item)}" for key, item in pairs)
        return "\n".join(lines)
    if isinstance(value, (Sequence, AbstractSet)) and not isinstance(value, str):
        lines = [f"{head}, {_count(len(value), 'item')}, {_human(_nbytes(value))}"]
        if len(value):
            ordered = isinstance(value, Sequence)
            label = f"first {ITEMS} items" if ordered else f"{ITEMS} of its items"
            lines.append((label if len(value) > ITEMS else "items") + ":")
            for index, item in enumerate(itertools.islice(value, ITEMS)):
                lines.append(f"  [{index}] {_ITEM.repr(item)}" if ordered else f"  {_ITEM.repr(item)}")
        return "\n".join(lines)
    return _describe_other(head, value)


def _describe_frame(path: str, frame: Any, pd: Any, np: Any) -> str:
    rows, columns = frame.shape
    lines = [f"{path}: pandas.DataFrame, {rows:,} rows \u00d7 {columns:,} columns, {_human(_nbytes(frame))}"]
    lines.append("index: " + _one_line(f"{type(frame.index).__name__} {frame.index.dtype}", 200))
    shown = frame.iloc[:, :DESCRIBE_COLUMNS] if columns > DESCRIBE_COLUMNS else frame
    if columns > DESCRIBE_COLUMNS:
        lines.append(f"(dtypes, head and describe() show the first {DESCRIBE_COLUMNS} of {columns:,} columns)")
    lines.append("dtypes:")
    lines.extend(f"  {_one_line(str(column), 80)}: {dtype}" for column, dtype in shown.dtypes.items())
    lines.append("head(5):")
    lines.append(shown.head(5).to_string(max_colwidth=40))
    if rows and columns:
        sample, note = _sample_rows(shown, pd, np)
        lines.append(f"describe(){note}:")
        lines.append(_describe_table(sample))
    return "\n".join(lines)


def _describe_series(path: str, series: Any, pd: Any, np: Any) -> str:
    label = _one_line(repr(series.name), 80)
    lines = [
        f"{path}: pandas.Series {label}, {len(series):,} values, dtype {series.dtype}, {_human(_nbytes(series))}",
        "head(5):",
        series.head(5).to_string(max_rows=5),
    ]
    if len(series):
        sample, note = _sample_rows(series, pd, np)
        lines.append(f"describe(){note}:")
        lines.append(_describe_table(sample))
    return "\n".join(lines)


def _sample_rows(data: Any, pd: Any, np: Any) -> tuple[Any, str]:
    # describe() sorts for its percentiles: on a big frame it would take seconds, so look at
    # a fixed-seed sample (drawn with replacement: cheap to draw, sorted for a cache-friendly take).
    rows = len(data)
    if rows <= SAMPLE:
        return data, ""
    picks = np.sort(np.random.default_rng(SEED).integers(0, rows, SAMPLE))
    return data.take(picks), f" of a random sample of {SAMPLE:,} of the {rows:,} rows (seed {SEED})"


def _describe_table(data: Any) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = data.describe(include="all") if data.ndim == 2 else data.describe()
    except Exception as error:
        return f"  (describe() failed: {_error_line(error)})"
    return str(table.to_string(max_colwidth=40) if table.ndim == 2 else table.to_string())


def _describe_array(path: str, array: Any, np: Any) -> str:
    lines = [f"{path}: numpy.ndarray, shape {array.shape}, dtype {array.dtype}, {_human(array.nbytes)}"]
    if array.size and array.dtype.kind in "biufmM":
        sample, note = array, ""
        if array.size > SAMPLE:
            picks = np.random.default_rng(SEED).integers(0, array.size, SAMPLE)
            sample = array.flat[picks]
            note = f" (of a random sample of {SAMPLE:,} of the {array.size:,} elements, seed {SEED})"
        lines.append(_array_statistics(sample, np) + note)
    if array.ndim == 0:
        lines.append(f"value: {_ITEM.repr(array.item())}")
    elif array.size:
        corner = tuple(slice(0, 10 if axis == array.ndim - 1 else 5) for axis in range(array.ndim))
        label = ", ".join(":10" if axis == array.ndim - 1 else ":5" for axis in range(array.ndim))
        text = np.array2string(array[corner], max_line_width=120, threshold=1000)
        lines.append(f"{path}[{label}]:\n{_cut_middle(text, 4000)}")
    return "\n".join(lines)


def _array_statistics(sample: Any, np: Any) -> str:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if sample.dtype.kind in "mM":
            return f"min {np.min(sample)}, max {np.max(sample)}"
        parts = []
        if sample.dtype.kind == "f":
            nans = int(np.count_nonzero(np.isnan(sample)))
            stats = (np.nanmin(sample), np.nanmax(sample), np.nanmean(sample), np.nanstd(sample))
            if nans:
                parts.append(f"NaN {nans:,}")
        else:
            stats = (np.min(sample), np.max(sample), np.mean(sample), np.std(sample))
        low, high, mean, std = (_LINE.repr(v.item() if hasattr(v, "item") else v) for v in stats)
        return ", ".join([f"min {low}", f"max {high}", f"mean {mean}", f"std {std}", *parts])


def _describe_callable(path: str, value: Any) -> str:
    name = _short_name(value)
    if isinstance(value, type):
        bases = ", ".join(_qualified(base) for base in value.__bases__)
        lines = [f"{path}: class {name}({bases})", f"constructor: {name}{_signature(value)}"]
    else:
        lines = [f"{path}: {_qualified(type(value))}", f"signature: {name}{_signature(value)}"]
    where = _where(value)
    if where:
        lines.append(f"defined in {where}")
    doc = inspect.getdoc(value)
    if doc:
        lines.append("doc:\n" + _cut_middle(doc, 4000))
    if isinstance(value, type):
        public = [attr for attr in vars(value) if not attr.startswith("_")]
        if public:
            lines.append(f"its own public attributes ({len(public)}): " + _names(public, 1500))
    elif inspect.isfunction(value) or inspect.ismethod(value):
        try:
            source = inspect.getsource(value)
        except (OSError, TypeError):
            source = ""
        if source:
            lines.append("source:\n" + _cut_middle(source, 6000))
    return "\n".join(lines)


def _where(value: Any) -> str:
    try:
        source = inspect.getsourcefile(value) or inspect.getfile(value)
    except TypeError:
        return ""
    try:
        line = inspect.getsourcelines(value)[1] if inspect.isroutine(value) else 0
    except (OSError, TypeError):
        line = 0
    return f"{source}, line {line}" if line else source


def _describe_other(head: str, value: Any) -> str:
    size = _nbytes(value)
    lines = [f"{head}{', ' + _human(size) if size is not None else ''}"]
    shape = _shape(value)
    if shape:
        lines.append(shape)
    lines.append("repr: " + _cut_middle(_ITEM_LONG.repr(value), 8000))
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict) and fields and not isinstance(value, types.ModuleType):
        shown = [f"  {key}: {_ITEM.repr(item)}" for key, item in itertools.islice(fields.items(), ITEMS * 2)]
        more = f" (the first {len(shown)} of {len(fields)})" if len(fields) > len(shown) else ""
        lines.append(f"attributes{more}:")
        lines.extend(shown)
    if isinstance(value, types.ModuleType):
        doc = inspect.getdoc(value)
        if doc:
            lines.append("doc:\n" + _cut_middle(doc, 2000))
    return "\n".join(lines)


# -- recent_cells --------------------------------------------------------------------------------


def recent_cells(inputs: Sequence[str], outputs: Mapping[int, Any], count: int = 5) -> ToolReply:
    """The last ``count`` cells before the running one: each source and, if any, its Out value."""
    count = min(max(count if isinstance(count, int) else 5, 1), MAX_CELLS)  # None (JSON null): the default
    last = len(inputs) - 2  # inputs[-1] is the %%codex cell running now; inputs[0] is ""
    numbers = list(range(max(1, last - count + 1), last + 1))
    if not numbers:
        return _reply("No cells have run before this one.")
    blocks: list[str] = []
    budget = MAX_TEXT - 200
    for number in reversed(numbers):  # the most recent first, so the cut drops the oldest
        block = f"In [{number}]:\n{str(inputs[number]).rstrip()}"
        if number in outputs:
            block += f"\nOut[{number}]: {_cut_middle(_OUT.repr(outputs[number]), 3000)}"
        if len(block) + 2 > budget:
            if blocks:
                break
            block = _cut_middle(block, budget)
        blocks.append(block)
        budget -= len(block) + 2
    text = "\n\n".join(reversed(blocks))
    if len(blocks) < len(numbers):
        text = (
            f"({len(numbers) - len(blocks)} older cells left out: the reply is at most {MAX_TEXT:,} characters)\n\n"
            + text
        )
    return _reply(text)


# -- run_python ----------------------------------------------------------------------------------

_RUNS = itertools.count(1)
_CODEX_MAGIC = re.compile(r"^\s*%{1,2}codex\b", re.MULTILINE)


@dataclass
class _Run:
    """What one run_python produced besides its captured output."""

    result: str = ""  # the last expression's value, as text
    images: list[tuple[str, str]] = field(default_factory=list)  # (data URL, what it shows)
    failure: str = ""  # the traceback, or what stopped the run
    interrupted: bool = False


def run_python(
    namespace: dict[str, Any],
    code: str,
    *,
    shell: Any = None,
    interruptible: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> ToolReply:
    """Run ``code`` in ``namespace`` like a cell; reply with its output, last value, error and images.

    With ``shell`` (the kernel's InteractiveShell), magics work and rich displays made during
    the run are captured instead of reaching the notebook; new matplotlib figures are rendered
    to PNG and closed, so they reach Codex and not the notebook. ``interruptible()`` is
    entered around the code alone, not the capture's set-up: where a kernel interrupt may
    raise (see ``InterruptLatch.raising``).
    """
    if not isinstance(code, str) or not code.strip():
        return _reply("run_python needs 'code', a non-empty string of Python.", success=False)
    if _CODEX_MAGIC.search(code):
        return _reply(
            "run_python cannot run %codex or %%codex: that would start a turn inside this one.", success=False
        )
    if shell is not None:
        try:
            code = shell.transform_cell(code)
        except Exception as error:
            return _reply(f"Could not read the code as a cell: {_error_line(error)}", success=False)
    filename = f"<codex-run-{next(_RUNS)}>"
    try:
        body, last = _compile(code, filename)
    except SyntaxError as error:
        if _awaits(code, filename):
            return _reply(
                "Top-level await is not supported in run_python: wrap the code in a function and run it "
                "with asyncio in a thread, or propose a cell for the user to run.",
                success=False,
            )
        return _reply("".join(traceback.format_exception_only(type(error), error)), success=False)
    # Like IPython's cells: tracebacks, and functions defined here, show their source lines.
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)

    # The kernel has IPython loaded already; the import is here to keep this module's own light.
    from IPython.utils.capture import capture_output

    run = _Run()
    before = _open_figures()
    shown: Any = None  # the last value, when it already went out as an image
    started = time.monotonic()
    with capture_output(stdout=True, stderr=True, display=shell is not None) as captured:
        try:
            with interruptible():
                exec(body, namespace)
                if last is not None:
                    value = eval(last, namespace)
                    try:
                        run.result, run.images = _result(value, shell)
                    except Exception as error:  # the code ran; only showing its value failed
                        run.result = f"<the value's repr failed: {_error_line(error)}>"
                    shown = value if run.images else None
        except KeyboardInterrupt as error:
            run.interrupted = True
            run.failure = _user_traceback(error, filename)
        except SystemExit as error:  # the code called sys.exit(): report it, the kernel stays
            run.failure = f"The code raised SystemExit({error.code!r}); the kernel keeps running."
        except Exception as error:
            run.failure = _user_traceback(error, filename)
        try:
            run.images += _new_figures(before, shown)
        except KeyboardInterrupt:
            run.interrupted = True
    seconds = time.monotonic() - started
    try:
        return _run_reply(run, captured, seconds)
    except KeyboardInterrupt:  # a deadline that fired just as the run ended: the run is over anyway
        run.interrupted = True
        return _run_reply(run, captured, seconds)


def _compile(code: str, filename: str) -> tuple[types.CodeType, types.CodeType | None]:
    # dont_inherit: this module's `from __future__ import annotations` must not reach user code.
    tree = ast.parse(code, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        expression = tree.body.pop()
        assert isinstance(expression, ast.Expr)
        last = compile(ast.Expression(expression.value), filename, "eval", dont_inherit=True)
    return compile(tree, filename, "exec", dont_inherit=True), last


def _awaits(code: str, filename: str) -> bool:
    try:
        compiled = compile(code, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError:
        return False
    return bool(compiled.co_flags & inspect.CO_COROUTINE)


_HANDLER = os.path.join("codex_magic", "_interrupts.py")


def _user_traceback(error: BaseException, filename: str) -> str:
    """The traceback from the run's code on (the frames before it left out), no colours.

    An interrupt that came before the code started has only the exception's line.
    """
    frames = error.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename != filename:
        frames = frames.tb_next
    described = traceback.TracebackException(type(error), error, frames)
    while described.stack and described.stack[-1].filename.endswith(_HANDLER):  # where SIGINT was raised
        described.stack.pop()
    return "".join(described.format())


def _result(value: Any, shell: Any) -> tuple[str, list[tuple[str, str]]]:
    if value is None:
        return "", []
    if shell is None:
        return _RESULT.repr(value), []
    data, _ = shell.display_formatter.format(value, include=("text/plain", "image/png", "image/jpeg"))
    images = [(data_url(mime, data[mime]), "the result") for mime in ("image/png", "image/jpeg") if data.get(mime)]
    return str(data.get("text/plain", "")), images


def _open_figures() -> list[Any]:
    if "matplotlib.pyplot" not in sys.modules:
        return []
    # pyplot's registry of open figures: pyplot has no public way to list them without
    # making each one current in turn.
    from matplotlib._pylab_helpers import Gcf

    return [manager.canvas.figure for manager in Gcf.get_all_fig_managers()]


def _new_figures(before: list[Any], shown: Any) -> list[tuple[str, str]]:
    """Render the figures the run opened to PNG, and close them so the notebook does not show them."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    images = []
    for figure in _open_figures():
        if any(figure is old for old in before):
            continue
        try:
            if figure is shown:  # already an image, as the run's result
                continue
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", bbox_inches="tight")
            label = f"figure {figure.number}" if getattr(figure, "number", None) is not None else "a figure"
            images.append((data_url("image/png", buffer.getvalue()), label))
        except Exception as error:
            images.append(("", f"a figure that could not be rendered: {_error_line(error)}"))
        finally:
            pyplot.close(figure)
    return images


def data_url(mime: str, data: bytes | str) -> str:
    """An image as a data: URL, from its bytes or from base64 text (as display data holds it)."""
    encoded = base64.b64encode(data).decode() if isinstance(data, bytes) else "".join(data.split())
    return f"data:{mime};base64,{encoded}"


def _displays(captured: Any) -> tuple[list[str], list[tuple[str, str]]]:
    texts, images = [], []
    for output in captured.outputs or ():
        data = output.data or {}
        mime = next((m for m in ("image/png", "image/jpeg") if data.get(m)), None)
        if mime is not None:
            images.append((data_url(mime, data[mime]), "a displayed image"))
        elif "text/plain" in data:
            texts.append(str(data["text/plain"]))
        elif data:
            texts.append(f"(a display of {', '.join(sorted(data))} without text)")
    return texts, images


def _run_reply(run: _Run, captured: Any, seconds: float) -> ToolReply:
    displays, shown = _displays(captured)
    images, notes = _bounded_images(shown + run.images)
    sections = [
        ("stdout", captured.stdout),
        ("stderr", captured.stderr),
        *(("display", text) for text in displays),
        ("images", "\n".join(notes)),
    ]
    if run.interrupted:
        where = f"\n{run.failure}" if run.failure else ""
        stopped = f"The run was interrupted (KeyboardInterrupt) after {seconds:.1f} s; the output above is what it printed so far."
        sections.append(("interrupted", stopped + where))
    elif run.failure:
        sections.append(("error", run.failure))
    if run.result:
        sections.append(("result", run.result))
    text = _fit([(label, plain(body)) for label, body in sections if body])
    if not text:
        text = "The code ran without output; its last statement is not an expression."
    return _reply(text, images, success=not (run.failure or run.interrupted))


def _bounded_images(images: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    kept: list[str] = []
    notes: list[str] = []
    for url, what in images:
        if not url:
            notes.append(f"left out: {what}")
            continue
        size = (len(url) - url.index(",") - 1) * 3 // 4
        if len(kept) >= MAX_IMAGES:
            notes.append(f"left out: {what} (at most {MAX_IMAGES} images per run)")
        elif size > MAX_IMAGE_BYTES:
            notes.append(f"left out: {what}, {_human(size)} (images are limited to {_human(MAX_IMAGE_BYTES)})")
        else:
            kept.append(url)
            notes.append(f"image {len(kept)}: {what}, {url[5 : url.index(';')]}, {_human(size)}")
    return kept, notes


def _fit(sections: list[tuple[str, str]]) -> str:
    """Join labelled sections within MAX_TEXT, cutting the middle of the longest ones first."""
    overhead = sum(len(label) + 4 for label, _ in sections)
    budget = MAX_TEXT - overhead
    lengths = sorted(len(body) for _, body in sections)
    # The largest per-section limit under which everything fits (water filling).
    limit, left = budget, budget
    for index, length in enumerate(lengths):
        share = left // (len(lengths) - index)
        if length > share:
            limit = share
            break
        left -= length
    return "\n".join(f"[{label}]\n{_cut_middle(body.rstrip(), limit)}" for label, body in sections)


# -- bounded text --------------------------------------------------------------------------------


class _Repr(reprlib.Repr):
    """reprlib's bounded repr, also for subclasses of the builtin containers, saying when a repr fails."""

    def __init__(self, *, size: int, items: int, level: int, strict: bool) -> None:
        super().__init__()
        self.maxstring = self.maxother = self.maxlong = size
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdeque = self.maxarray = items
        self.maxdict = items
        self.maxlevel = level
        self.strict = strict  # a failing repr of the object itself raises (nested ones never do)

    def repr1(self, x: Any, level: int) -> str:
        kind = type(x)
        if kind not in (dict, list, set, frozenset):
            for base in (dict, list, set, frozenset):
                if isinstance(x, base):  # defaultdict, OrderedDict, a list subclass: bounded too
                    inner = getattr(self, f"repr_{base.__name__}")(x, level)
                    return f"{kind.__name__}({inner})"
        try:
            return super().repr1(x, level)
        except Exception as error:
            if self.strict and level == self.maxlevel:
                raise
            return f"<{kind.__name__}: repr failed: {_error_line(error)}>"

    def repr_instance(self, x: Any, level: int) -> str:
        return _cut_middle(repr(x), self.maxother)


_LINE = _Repr(size=60, items=5, level=2, strict=False)  # list_variables' previews
_ITEM = _Repr(size=300, items=10, level=3, strict=False)  # one item of a collection
_ITEM_LONG = _Repr(size=8000, items=50, level=4, strict=True)  # the inspected value itself
_OUT = _Repr(size=3000, items=50, level=4, strict=False)  # an Out value in recent_cells
_RESULT = _Repr(size=MAX_TEXT, items=500, level=6, strict=False)  # run_python's last value


def bounded_repr(value: Any, limit: int = 3000) -> str:
    """A repr of at most ``limit`` characters, whatever the value (a failing repr says so)."""
    return _cut_middle(_OUT.repr(value), limit)


def _cut_middle(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: its head and tail, and how much was cut between them."""
    if len(text) <= limit:
        return text
    # The marker's length depends on the number in it; len(text) bounds that number's width.
    keep = max(limit - len(_cut_marker(len(text))), 0)
    return text[: keep // 2] + _cut_marker(len(text) - keep) + text[len(text) - (keep - keep // 2) :]


def _cut_marker(cut: int) -> str:
    return f"\n[... {cut:,} characters cut ...]\n"


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text[: limit * 4].split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _error_line(error: BaseException) -> str:
    return _one_line(f"{type(error).__name__}: {error}", 300)


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    if size < 1024:
        return f"{size} B"
    amount = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        amount /= 1024
        if amount < 1024:
            break
    return f"{amount:.1f} {unit}"


def _qualified(kind: type) -> str:
    """``kind``'s name with its top-level package: ``pandas.DataFrame``, ``dict``, ``Model``."""
    module = getattr(kind, "__module__", None) or "builtins"
    if module in ("builtins", "__main__"):
        return _short_name(kind)
    return f"{module.split('.')[0]}.{_short_name(kind)}"


def _short_name(value: Any) -> str:
    """A class's or function's qualified name, without the function it was defined in."""
    name = str(getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or "?")
    return name.rpartition("<locals>.")[2]


def _signature(value: Any) -> str:
    try:
        return str(inspect.signature(value))
    except (TypeError, ValueError):
        return "(...)"


def _module(name: str) -> Any:
    # Only a module the user has already imported: importing pandas here would cost a second.
    return sys.modules.get(name)
