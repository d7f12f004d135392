"""The %%codex option line, the CodexMagic settings and the cell transformer, in an
in-process shell, with the turn itself stubbed out (no app-server, no model)."""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from codex_magic._magic import EFFORTS, SANDBOXES, CodexMagic


class Sent(Exception):
    """Raised by the stub instead of running the turn: the cell got that far."""


class SentAwaited(Sent):
    """The same, from the awaited path (kernels only)."""


@dataclass
class Turn:
    """What the magic handed to the runner."""

    prompt: str
    settings: Any
    timeout: float | None


class Recorder:
    """Stands in for the runner's TurnRun: records the turn, runs nothing."""

    turns: ClassVar[list[Turn]] = []

    def __init__(self, session: Any, prompt: str, settings: Any, make_view: Any, **options: Any) -> None:
        self.turns.append(Turn(prompt, settings, options.get("timeout")))
        self.kernel = options.get("kernel")

    def run_blocking(self) -> Any:
        raise Sent()

    async def run_async(self) -> Any:
        raise SentAwaited()


@pytest.fixture(scope="module")
def ip() -> Iterator[Any]:
    """The in-process shell with codex_magic loaded and the runner stubbed."""
    from IPython.testing.globalipapp import get_ipython

    from codex_magic import _runner

    shell = get_ipython()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_runner, "TurnRun", Recorder)
        shell.run_line_magic("load_ext", "codex_magic")
        try:
            yield shell
        finally:
            shell.run_line_magic("unload_ext", "codex_magic")


@pytest.fixture
def magic(ip: Any) -> Iterator[CodexMagic]:
    """The loaded CodexMagic; its settings are put back after the test."""
    found = ip.magics_manager.registry["CodexMagic"]
    saved = {name: getattr(found, name) for name in found.trait_names(config=True)}
    section = dict.get(ip.config, "CodexMagic")  # later tests' magics load from the shell's config
    section = None if section is None else section.copy()
    Recorder.turns.clear()
    yield found
    if section is None:
        ip.config.pop("CodexMagic", None)
    else:
        ip.config["CodexMagic"] = section
    for name, value in saved.items():
        setattr(ip.magics_manager.registry["CodexMagic"], name, value)


def sent(ip: Any, line: str, cell: str = "hello") -> Turn:
    """Run a %%codex cell that must reach the runner; what it handed over."""
    Recorder.turns.clear()
    with pytest.raises(Sent):
        ip.run_cell_magic("codex", line, cell)
    (turn,) = Recorder.turns
    return turn


def refused(ip: Any, line: str, cell: str = "hello") -> str:
    """Run a %%codex cell that must be refused; the UsageError's message."""
    with pytest.raises(UsageError) as caught:
        ip.run_cell_magic("codex", line, cell)
    return str(caught.value)


# -- 1: posix quoting --------------------------------------------------------------


def test_cwd_with_a_space_quoted_or_escaped(ip: Any, magic: CodexMagic, tmp_path: Path) -> None:
    spaced = tmp_path / "my project"
    spaced.mkdir()
    for line in (f'--cwd "{spaced}"', f"--cwd '{spaced}'", f"--cwd {tmp_path}/my\\ project"):
        assert sent(ip, line).settings.cwd == str(spaced), line


def test_quoted_values_lose_their_quotes(ip: Any, magic: CodexMagic) -> None:
    assert sent(ip, '--model "gpt-5.1"').settings.model == "gpt-5.1"
    assert sent(ip, "-m 'gpt-5.1' --effort 'low'").settings.effort == "low"
    assert sent(ip, '--model="my model"').settings.model == "my model"


# -- 2: any line gives settings or a one-line UsageError ----------------------------


def test_unbalanced_quote_is_a_usage_error(ip: Any, magic: CodexMagic) -> None:
    for line in ('--model "x', "--model 'x", "--cwd x\\"):
        message = refused(ip, line)
        assert "quot" in message or "backslash" in message, message


def outcome(ip: Any, line: str) -> Turn | str:
    """The turn a line gives, or its UsageError's message; nothing else may happen."""
    out, err = io.StringIO(), io.StringIO()
    Recorder.turns.clear()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            ip.run_cell_magic("codex", line, "hello")
    except Sent:
        (turn,) = Recorder.turns
        result: Turn | str = turn
    except UsageError as error:
        result = str(error)
    except SystemExit as exit:  # argparse's way out: must never reach the user
        pytest.fail(f"SystemExit({exit.code}) for {line!r}")
    assert (out.getvalue(), err.getvalue()) == ("", ""), line  # nothing printed on the side
    return result


def check(ip: Any, line: str) -> None:
    result = outcome(ip, line)
    if isinstance(result, str):
        assert result and "\n" not in result and "\r" not in result, (line, result)
        return
    options = result.settings
    assert os.path.isdir(options.cwd)
    assert options.sandbox in SANDBOXES
    assert options.effort is None or options.effort in EFFORTS
    assert options.model is None or (isinstance(options.model, str) and options.model.strip())
    assert result.timeout is None or (math.isfinite(result.timeout) and result.timeout > 0)


ODD_VALUES = [
    "",
    " ",
    '"',
    "'",
    "\\",
    '"x',
    "x'",
    "\\\\",
    "a b",
    "é",
    "日本",
    "\u200b",
    "\x00",
    "\n",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "-1",
    "-0",
    "0",
    "1.5",
    "1_0",
    "--",
    "-",
    "--new",
    "print",
    "__builtins__",
    "In",
    "_",
    "_i1",
    "_3",
    "get_ipython",
    "class",
    "None",
    "high",
    "ultra",
    "read-only",
    "~",
    "/",
    ".",
    "$HOME",
]


@st.composite
def option_lines(draw: st.DrawFn) -> str:
    """Lines made of the parser's own option names and odd values, sometimes quoted."""
    names = sorted(CodexMagic.codex_cell.parser._option_string_actions)
    words = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(names + ["--modle", "hello", "-"]))
        value = draw(st.one_of(st.sampled_from(ODD_VALUES), st.text(max_size=8)))
        quote = draw(st.sampled_from(["", "'", '"']))
        joiner = draw(st.sampled_from([" ", "=", "  "]))
        words.append(f"{name}{joiner}{quote}{value}{quote}" if draw(st.booleans()) else name)
    return " ".join(words)


PROPERTY = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(line=st.text(max_size=40))
def test_any_text_gives_settings_or_a_usage_error(ip: Any, line: str) -> None:
    check(ip, line)


@PROPERTY
@given(line=option_lines())
def test_option_lines_give_settings_or_a_usage_error(ip: Any, line: str) -> None:
    check(ip, line)


# -- 3: timeouts ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-1", "--timeout=-inf", "soon"])
def test_timeout_must_be_finite_and_not_negative(ip: Any, magic: CodexMagic, value: str) -> None:
    line = value if value.startswith("--") else f"--timeout {value}"
    message = refused(ip, line)
    assert "--timeout" in message and "finite number >= 0" in message, message


def test_timeout_zero_means_no_limit(ip: Any, magic: CodexMagic) -> None:
    assert sent(ip, "--timeout 0").timeout is None
    assert sent(ip, "--timeout 2.5").timeout == 2.5


# -- 4: --out names ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "__builtins__",
        "print",
        "get_ipython",
        "In",
        "Out",
        "_",
        "__",
        "___",
        "_i",
        "_ii",
        "_iii",
        "_oh",
        "_dh",
        "_ih",
        "_7",
        "_i7",
        "exit",
        "quit",
        "open",
        "class",
        "__name__",
        "ｐｒｉｎｔ",
    ],
)
def test_out_refuses_names_the_shell_needs(ip: Any, magic: CodexMagic, name: str) -> None:
    message = refused(ip, f"--out {name}")
    assert "--out" in message and "e.g. --out " in message, message
    suggested = message.rsplit("e.g. --out ", 1)[1].split()[0].rstrip(".,;:)")
    assert isinstance(sent(ip, f"--out {suggested}").settings.cwd, str)  # the suggestion is accepted


def test_out_refuses_what_is_not_a_name(ip: Any, magic: CodexMagic) -> None:
    for line in ("--out 1x", "--out a-b", "--out ''"):
        assert "--out" in refused(ip, line)


def test_out_stores_the_result(ip: Any, magic: CodexMagic, monkeypatch: pytest.MonkeyPatch) -> None:
    from codex_magic import _runner

    class Done(Recorder):
        interrupt_reason = None

        def run_blocking(self) -> Any:
            return result

    result = SimpleNamespace(status=SimpleNamespace(value="completed"), final_response="the answer")
    monkeypatch.setattr(_runner, "TurnRun", Done)
    monkeypatch.setattr(_runner, "raise_for_status", lambda result, **_: None)
    ip.run_cell_magic("codex", "--out answer", "hello")
    assert ip.user_ns["answer"] is ip.user_ns["_codex_result"] is result


# -- 5: empty values -----------------------------------------------------------------


@pytest.mark.parametrize("line", ["--model ''", '--model "  "', "-m ''", "--cwd ''", "--cwd ' '", "--model="])
def test_empty_values_are_refused(ip: Any, magic: CodexMagic, line: str) -> None:
    message = refused(ip, line)
    assert "empty" in message or "blank" in message, message


# -- 6: a prompt on the magic's line -----------------------------------------------


def test_prompt_on_the_magic_line_says_where_it_goes(ip: Any, magic: CodexMagic) -> None:
    message = refused(ip, "hello there")
    assert "in the cell below the %%codex line" in message and "unrecognized" not in message, message
    assert "cell below" in refused(ip, "--new what now?")


def test_unknown_option_suggests_the_right_one(ip: Any, magic: CodexMagic) -> None:
    message = refused(ip, "--modle gpt-5")
    assert "unrecognized arguments: --modle" in message and "--model" in message, message
    assert "%%codex?" in refused(ip, "--bogus")


# -- 7: help ---------------------------------------------------------------------------


def test_help_shows_the_magic_names(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_cell("%%codex?")
    cell_help = capsys.readouterr().out
    assert "%%codex [--model" in cell_help and "%%%codex" not in cell_help, cell_help
    ip.run_cell("%codex?")
    line_help = capsys.readouterr().out
    assert "%codex new" in line_help and "%%codex?" in line_help and "%%%" not in line_help, line_help


# -- 8: kernel-wide settings -------------------------------------------------------


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ('effort = "bogus"', "effort"),
        ('effort = "ultra-max"', "effort"),
        ('sandbox = "anything"', "sandbox"),
        ('approval = "always"', "approval"),
        ('headless_approval = "maybe"', "headless_approval"),
        ("timeout = -1", "finite number >= 0"),
        ("timeout = float('nan')", "finite number >= 0"),
        ("retry_timeout = float('inf')", "finite number >= 0"),
        ("approval_timeout = -1", "finite number >= 0"),
        ("startup_timeout = 0", "finite number > 0"),
        ('model = ""', "model"),
        ('model = "  "', "model"),
        ('cwd = ""', "cwd"),
    ],
)
def test_bad_config_fails_visibly_and_keeps_the_old_value(
    ip: Any,
    magic: CodexMagic,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    assignment: str,
    expected: str,
) -> None:
    name = assignment.split(" =")[0]
    before = getattr(magic, name)
    capsys.readouterr()
    result = ip.run_cell(f"%config CodexMagic.{assignment}")
    assert isinstance(result.error_in_exec, UsageError), result
    err = capsys.readouterr().err
    assert err.startswith("UsageError: ") and err.count("\n") == 1 and expected in err, err
    assert not caplog.records  # no second copy of the error in the log
    assert getattr(magic, name) == before
    ip.run_line_magic("unload_ext", "codex_magic")
    ip.run_line_magic("load_ext", "codex_magic")  # a new CodexMagic, from the shell's config
    assert getattr(ip.magics_manager.registry["CodexMagic"], name) == before


def test_good_config_is_kept(ip: Any, magic: CodexMagic) -> None:
    for assignment in (
        'effort = "high"',
        'model = "m1"',
        "model = None",
        "timeout = 0",
        "approval_timeout = 5",
        "startup_timeout = 0.5",
        'sandbox = "read-only"',
    ):
        result = ip.run_cell(f"%config CodexMagic.{assignment}")
        assert result.success, (assignment, result.error_in_exec)
    assert (magic.effort, magic.model, magic.approval_timeout, magic.sandbox) == ("high", None, 5.0, "read-only")
    assert sent(ip, "").settings.effort == "high"
    result = ip.run_cell("%config CodexMagic.effort")  # reading a value still works
    assert result.result == "high"


def test_setting_a_bad_value_in_code_raises(magic: CodexMagic) -> None:
    from traitlets import TraitError

    with pytest.raises(TraitError, match="finite number >= 0"):
        magic.approval_timeout = -1
    assert magic.approval_timeout == 600.0


# -- 9: efforts ------------------------------------------------------------------------


def test_effort_levels_are_the_sdks() -> None:
    from openai_codex.types import ReasoningEffort

    assert list(EFFORTS) == [effort.value for effort in ReasoningEffort]
    assert CodexMagic.class_traits()["effort"].values == EFFORTS


def test_replay_modes_are_the_replay_modules() -> None:
    from codex_magic._magic import REPLAY_MODES
    from codex_magic._replay import MODES

    assert REPLAY_MODES == MODES == CodexMagic.class_traits()["replay"].values


# -- 10: the cell's text reaches Codex as written -----------------------------------

PROMPTS = ">>> 1+1\n... more\nIn [1]: x = 2\n   ...: y = 3\n    indented\n"


def test_prompt_like_lines_reach_codex_verbatim(ip: Any, magic: CodexMagic) -> None:
    Recorder.turns.clear()
    result = ip.run_cell(f"%%codex\n{PROMPTS}")
    assert type(result.error_in_exec) is Sent, result  # outside a kernel: the blocking magic
    assert Recorder.turns[-1].prompt == PROMPTS.rstrip("\n")
    assert ip.transform_cell("%%codex --new\n>>> x\n") == "get_ipython().run_cell_magic('codex', '--new', '>>> x\\n')\n"
    # Through run_cell_magic the same; blank lines around the text are trimmed.
    assert sent(ip, "", f"\n  \n{PROMPTS}\n\n").prompt == PROMPTS.rstrip("\n")


@PROPERTY
@given(body=st.text(max_size=60))
def test_every_line_of_the_cell_reaches_codex(ip: Any, body: str) -> None:
    Recorder.turns.clear()
    result = ip.run_cell(f"%%codex\n{body}")
    if not body.strip():
        assert isinstance(result.error_in_exec, UsageError)
        return
    assert isinstance(result.error_in_exec, Sent), result
    prompt = Recorder.turns[-1].prompt
    assert all(line in prompt for line in body.splitlines() if line.strip()), prompt


def test_cell_with_leading_blank_lines_and_indentation(ip: Any, magic: CodexMagic) -> None:
    Recorder.turns.clear()
    result = ip.run_cell("\n\n  %%codex --effort low\n  >>> 1+1\n    In [2]: y\n")
    assert isinstance(result.error_in_exec, Sent), result
    turn = Recorder.turns[-1]
    assert turn.prompt == ">>> 1+1\n  In [2]: y" and turn.settings.effort == "low"


def test_transformer_runs_first_and_goes_on_unload(ip: Any) -> None:
    from codex_magic._magic import transform_codex_cell

    cleanup = ip.input_transformers_cleanup
    assert cleanup[0] is transform_codex_cell and cleanup.count(transform_codex_cell) == 1
    ip.run_line_magic("unload_ext", "codex_magic")
    try:
        assert transform_codex_cell not in ip.input_transformers_cleanup
        assert "codex" not in ip.magics_manager.magics["cell"]
    finally:
        ip.run_line_magic("load_ext", "codex_magic")
    assert ip.input_transformers_cleanup.count(transform_codex_cell) == 1


def test_other_cells_are_left_to_ipython(ip: Any) -> None:
    assert ip.transform_cell(">>> a = 1\n>>> b = 2\n") == "a = 1\nb = 2\n"
    assert ip.transform_cell("%%codex?\n").startswith("get_ipython().run_line_magic('pinfo'")
    # A %%codex cell is complete at a blank line, as any cell magic (terminal IPython).
    assert ip.input_transformer_manager.check_complete("%%codex\n>>> x\n")[0] == "incomplete"


def test_unload_restores_config(ip: Any) -> None:
    ip.run_line_magic("unload_ext", "codex_magic")
    try:
        assert ip.magics_manager.magics["line"]["config"].__self__.__class__.__name__ == "ConfigMagics"
    finally:
        ip.run_line_magic("load_ext", "codex_magic")
