"""Server requests as questions for the user: what is asked, the choices, the reply.

The app-server asks the client before Codex runs a command outside its sandbox,
changes files, widens its permissions or calls an MCP tool that needs approval, and
when Codex (or an MCP server) asks the user something. Each request becomes a
:class:`Request`: the choices it offers, the fields to fill in, and the reply in the
app-server's wire shape for whichever choice is made. Pure: no IPython, no widgets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._text import shown_command

Json = dict[str, Any]

COMMAND = "item/commandExecution/requestApproval"
FILE_CHANGE = "item/fileChange/requestApproval"
PERMISSIONS = "item/permissions/requestApproval"
QUESTION = "item/tool/requestUserInput"
ELICITATION = "mcpServer/elicitation/request"
TOOL_CALL = "item/tool/call"

# The requests a person can answer; client tool calls are answered by code, not asked,
# except a kernel tool that runs code (see Request.is_kernel_run).
ASKABLE = (COMMAND, FILE_CHANGE, PERMISSIONS, QUESTION, ELICITATION)
KERNEL_RUN_TOOL = "run_python"

# The --approval choices: when Codex asks, and who answers (see _session for the wire form).
APPROVAL_POLICIES = ("on-request", "untrusted", "never", "auto-review")
# Whether Codex may run code in the kernel (--kernel-run, CodexMagic.kernel_run).
KERNEL_RUN_POLICIES = ("ask", "allow", "never")
# What a request gets where nobody can answer it (CodexMagic.headless_approval).
HEADLESS_POLICIES = ("decline", "accept", "cancel")

ACCEPT, ACCEPT_FOR_SESSION, DECLINE, CANCEL, SUBMIT = "accept", "acceptForSession", "decline", "cancel", "submit"
# An MCP tool approved from now on: Codex writes approval_mode = "approve" for the tool
# into CODEX_HOME/config.toml.
ACCEPT_ALWAYS = "acceptAlways"
# Code run in the kernel without asking again until the turn ends.
ACCEPT_FOR_TURN = "acceptForTurn"


@dataclass(frozen=True)
class Choice:
    """A button: its key, its label and its look (an ipywidgets button style)."""

    key: str
    label: str
    style: str = ""


@dataclass(frozen=True)
class Field:
    """One thing to fill in: pick one of ``options``, or type (when ``free_text``)."""

    id: str
    label: str
    question: str = ""
    options: tuple[str, ...] = ()
    descriptions: tuple[str, ...] = ()
    free_text: bool = False
    secret: bool = False
    required: bool = False
    kind: str = "string"  # for MCP forms: string, number, integer or boolean


class AnswerError(ValueError):
    """The answers do not fit the request (a required field is empty, a number is not one)."""


_DECISION_CHOICES = {
    ACCEPT: Choice(ACCEPT, "Approve", "success"),
    ACCEPT_FOR_SESSION: Choice(ACCEPT_FOR_SESSION, "Approve for this session", "success"),
    ACCEPT_ALWAYS: Choice(ACCEPT_ALWAYS, "Always allow this tool", "success"),
    ACCEPT_FOR_TURN: Choice(ACCEPT_FOR_TURN, "Approve for this turn", "success"),
    DECLINE: Choice(DECLINE, "Decline", "warning"),
    CANCEL: Choice(CANCEL, "Cancel the turn", "danger"),
}
_WORDS = {
    ACCEPT: "approved",
    ACCEPT_FOR_SESSION: "approved for the session",
    ACCEPT_FOR_TURN: "approved for the turn",
    DECLINE: "declined",
    CANCEL: "cancelled",
    SUBMIT: "answered",
}
# An approved MCP tool call's ``_meta.persist``: how long the approval lasts.
_PERSIST_WORDS: dict[str | None, str] = {
    "session": "approved for the session",
    "always": "approved, and allowed from now on",
}


def decline_response(method: str) -> Json:
    """The reply that declines a server request of this kind."""
    if method in (COMMAND, FILE_CHANGE):
        return {"decision": DECLINE}
    if method == PERMISSIONS:
        return {"permissions": {}, "scope": "turn"}
    if method == QUESTION:
        return {"answers": {}}
    if method == ELICITATION:
        return {"action": DECLINE, "content": None}
    if method == TOOL_CALL:
        return {
            "contentItems": [{"type": "inputText", "text": "This tool is not available."}],
            "success": False,
        }
    return {}


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Request:
    """One server request, as the user is asked it."""

    def __init__(self, method: str, params: Mapping[str, Any] | None) -> None:
        self.method = method
        self.params: Json = dict(params or {})
        self.item: Json | None = None  # the transcript's item the request is about (a file change's diff)

    # -- what it is -------------------------------------------------------------------

    @property
    def askable(self) -> bool:
        """Whether a person can answer it."""
        return self.method in ASKABLE or self.is_kernel_run

    @property
    def is_kernel_run(self) -> bool:
        """A client tool call that runs Codex's code in the user's kernel: asked first."""
        return self.method == TOOL_CALL and self.params.get("tool") == KERNEL_RUN_TOOL

    @property
    def code(self) -> str:
        """The code a kernel run would run."""
        arguments = self.params.get("arguments")
        return _s(arguments.get("code")) if isinstance(arguments, dict) else ""

    @property
    def is_tool_approval(self) -> bool:
        """An MCP elicitation that is Codex asking to call an MCP tool."""
        meta = self.params.get("_meta")
        return (
            self.method == ELICITATION and isinstance(meta, dict) and meta.get("codex_approval_kind") == "mcp_tool_call"
        )

    @property
    def kind(self) -> str:
        """A short name: command, file change, permissions, question, MCP tool, MCP request."""
        return {
            COMMAND: "command",
            FILE_CHANGE: "file change",
            PERMISSIONS: "permissions",
            QUESTION: "question",
            ELICITATION: "MCP tool" if self.is_tool_approval else "MCP request",
            TOOL_CALL: "kernel code" if self.is_kernel_run else "tool call",
        }.get(self.method, self.method)

    def command_ask(self) -> str:
        """What a command request asks, e.g. "run a command outside the sandbox".

        The app-server sends no flag for leaving the sandbox. Under ``untrusted`` a command
        that stays in the sandbox is asked about with the same params as one that leaves
        it, except that only a request to leave it carries a ``reason``: the model's
        justification for ``sandbox_permissions="require_escalated"``, or Codex's "retry
        without sandbox?" after the sandbox blocked a command. Network access and added
        permissions come with their own fields.
        """
        params = self.params
        if params.get("kind") == "writeStdin":
            return "write to a running command"
        network = params.get("networkApprovalContext")
        if isinstance(network, dict) and _s(network.get("host")):
            return f"run a command with network access to {_s(network.get('host'))}"
        if params.get("additionalPermissions"):
            return "run a command with more permissions"
        if _s(params.get("reason")):
            return "run a command outside the sandbox"
        return "run a command"

    def summary(self) -> str:
        """One line: what is asked, and why."""
        params = self.params
        reason = _s(params.get("reason"))
        if self.method == COMMAND:
            what = f"{self.command_ask()}: {shown_command(_s(params.get('command')))}"
        elif self.method == FILE_CHANGE:
            root = _s(params.get("grantRoot"))
            what = "change files" + (f" under {root}" if root else "")
        elif self.method == PERMISSIONS:
            what = "more permissions: " + (", ".join(permission_lines(params.get("permissions"))) or "none listed")
        elif self.method == QUESTION:
            questions = [_s(q.get("question")) or _s(q.get("header")) for q in self._questions()]
            what = "a question: " + " / ".join(q for q in questions if q)
        elif self.method == ELICITATION:
            what = f"{_s(params.get('serverName')) or 'an MCP server'}: {_s(params.get('message'))}"
        elif self.is_kernel_run:
            lines = [line for line in self.code.splitlines() if line.strip()]
            more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
            what = f"run code in the kernel: {lines[0].strip() if lines else ''}{more}"
        elif self.method == TOOL_CALL:
            what = f"a client tool call: {_s(params.get('tool'))}"
        else:
            what = self.method
        return what + (f" ({reason})" if reason else "")

    # -- what can be answered ---------------------------------------------------------

    def choices(self) -> list[Choice]:
        """The buttons, in order; decline is always among them."""
        if self.method in (COMMAND, FILE_CHANGE):
            available = self._available()
            offered = [d for d in available if isinstance(d, str)] or [ACCEPT, ACCEPT_FOR_SESSION, DECLINE, CANCEL]
            keys = [d for d in _DECISION_CHOICES if d in offered or d == DECLINE]
            # Decisions that also change Codex's rules come after the plain approvals.
            amendments = [
                Choice(f"{_OPTION}{index}", label, "info")
                for index, decision in enumerate(available)
                if (label := _amendment_label(decision))
            ]
            plain = [_DECISION_CHOICES[k] for k in keys]
            split = sum(k in (ACCEPT, ACCEPT_FOR_SESSION) for k in keys)
            return plain[:split] + amendments + plain[split:]
        if self.method == PERMISSIONS:
            return [
                Choice(ACCEPT, "Grant for this turn", "success"),
                Choice(ACCEPT_FOR_SESSION, "Grant for this session", "success"),
                _DECISION_CHOICES[DECLINE],
            ]
        if self.method == QUESTION:
            return [Choice(SUBMIT, "Answer", "primary"), Choice(DECLINE, "Skip", "warning")]
        if self.is_kernel_run:
            return [_DECISION_CHOICES[key] for key in (ACCEPT, ACCEPT_FOR_TURN, DECLINE, CANCEL)]
        if self.method == ELICITATION:
            if self.is_tool_approval:
                persist = (self.params.get("_meta") or {}).get("persist") or []
                keys = [ACCEPT] + ([ACCEPT_FOR_SESSION] if "session" in persist else [])
                keys += ([ACCEPT_ALWAYS] if "always" in persist else []) + [DECLINE, CANCEL]
                return [_DECISION_CHOICES[k] for k in keys]
            accept = Choice(ACCEPT, "Open the link, then continue" if self._mode() == "url" else "Submit", "success")
            return [accept, _DECISION_CHOICES[DECLINE], Choice(CANCEL, "Cancel", "danger")]
        return [_DECISION_CHOICES[DECLINE]]

    def fields(self) -> list[Field]:
        """What to fill in before answering: questions, or an MCP form's properties."""
        if self.method == QUESTION:
            fields = []
            for index, q in enumerate(self._questions()):
                listed = [o for o in q.get("options") or [] if isinstance(o, dict)]
                fields.append(
                    Field(
                        id=_s(q.get("id")) or str(index),
                        label=_s(q.get("header")),
                        question=_s(q.get("question")),
                        options=tuple(_s(o.get("label")) for o in listed),
                        descriptions=tuple(_s(o.get("description")) for o in listed),
                        free_text=bool(q.get("isOther")) or not listed,
                        secret=bool(q.get("isSecret")),
                        required=True,
                    )
                )
            return fields
        if self.method == ELICITATION and not self.is_tool_approval and self._mode() != "url":
            schema = self.params.get("requestedSchema")
            if not isinstance(schema, dict):
                return []
            required = set(schema.get("required") or [])
            fields = []
            for name, spec in (schema.get("properties") or {}).items():
                spec = spec if isinstance(spec, dict) else {}
                kind = _s(spec.get("type")) or "string"
                options: tuple[str, ...] = ()
                descriptions: tuple[str, ...] = ()
                if isinstance(spec.get("enum"), list):
                    options = tuple(str(v) for v in spec["enum"])
                    names = spec.get("enumNames")
                    descriptions = tuple(str(n) for n in names) if isinstance(names, list) else ()
                elif isinstance(spec.get("oneOf"), list):
                    consts = [o for o in spec["oneOf"] if isinstance(o, dict) and "const" in o]
                    options = tuple(str(o["const"]) for o in consts)
                    descriptions = tuple(_s(o.get("title")) for o in consts)
                elif kind == "boolean":
                    options = ("true", "false")
                fields.append(
                    Field(
                        id=str(name),
                        label=_s(spec.get("title")) or str(name),
                        question=_s(spec.get("description")),
                        options=options,
                        descriptions=descriptions,
                        free_text=not options,
                        required=name in required,
                        kind=kind,
                    )
                )
            return fields
        return []

    # -- the reply --------------------------------------------------------------------

    def respond(self, choice: str, answers: Mapping[str, str] | None = None) -> Json:
        """The reply for a choice (and the filled-in fields); AnswerError if they do not fit."""
        answers = answers or {}
        if self.is_kernel_run:
            # Not a wire reply: the runner runs the code (or not) and answers the tool call.
            if choice not in (ACCEPT, ACCEPT_FOR_TURN, DECLINE, CANCEL):
                raise AnswerError(f"not a decision: {choice}")
            return {"decision": choice}
        if choice == DECLINE:
            return decline_response(self.method)
        if self.method in (COMMAND, FILE_CHANGE):
            if choice.startswith(_OPTION) and choice[len(_OPTION) :].isdigit():
                available = self._available()
                index = int(choice[len(_OPTION) :])
                if index < len(available) and _amendment_label(available[index]):
                    return {"decision": available[index]}
            if choice not in (ACCEPT, ACCEPT_FOR_SESSION, CANCEL):
                raise AnswerError(f"not a decision: {choice}")
            return {"decision": choice}
        if self.method == PERMISSIONS:
            asked = self.params.get("permissions")
            granted = {k: v for k, v in (asked or {}).items() if k in ("fileSystem", "network") and v is not None}
            return {"permissions": granted, "scope": "session" if choice == ACCEPT_FOR_SESSION else "turn"}
        if self.method == QUESTION:
            replies: Json = {}
            for field in self.fields():
                answer = (answers.get(field.id) or "").strip()
                if not answer:
                    raise AnswerError(f"answer '{field.label or field.question or field.id}' first, or Skip")
                replies[field.id] = {"answers": [answer]}
            return {"answers": replies}
        if self.method == ELICITATION:
            if choice == CANCEL:
                return {"action": CANCEL, "content": None}
            if self.is_tool_approval:
                reply: Json = {"action": ACCEPT, "content": None}
                if choice in (ACCEPT_FOR_SESSION, ACCEPT_ALWAYS):
                    reply["_meta"] = {"persist": "session" if choice == ACCEPT_FOR_SESSION else "always"}
                return reply
            if self._mode() == "url":
                return {"action": ACCEPT, "content": None}
            return {"action": ACCEPT, "content": self._content(answers)}
        return decline_response(self.method)

    def withdrawn(self) -> Json:
        """The reply when nobody will answer (the turn was stopped or ended)."""
        if self.method in (COMMAND, FILE_CHANGE) or self.is_kernel_run:
            return {"decision": CANCEL}
        if self.method == ELICITATION:
            return {"action": CANCEL, "content": None}
        return decline_response(self.method)

    def accepted(self) -> Json:
        """The reply that approves as asked, where that needs no answers; else a decline."""
        if self.method in (COMMAND, FILE_CHANGE, PERMISSIONS) or self.is_tool_approval or self.is_kernel_run:
            return self.respond(ACCEPT)
        return decline_response(self.method)

    def word(self, reply: Json) -> str:
        """What the reply did, as a past-tense word for the transcript."""
        if self.method in (COMMAND, FILE_CHANGE) or self.is_kernel_run:
            decision = reply.get("decision")
            if isinstance(decision, dict):
                network = (decision.get("applyNetworkPolicyAmendment") or {}).get("network_policy_amendment") or {}
                if network:
                    return "host allowed" if network.get("action") == "allow" else "host blocked"
                return "approved, and allowed from now on"
            return _WORDS.get(str(decision), "declined")
        if self.method == PERMISSIONS:
            if not reply.get("permissions"):
                return "declined"
            return "granted for the session" if reply.get("scope") == "session" else "granted for the turn"
        if self.method == QUESTION:
            return "answered" if reply.get("answers") else "declined"
        if self.method == ELICITATION:
            action = reply.get("action")
            if action == ACCEPT:
                if not self.is_tool_approval:
                    return "answered"
                persist = (reply.get("_meta") or {}).get("persist")
                return _PERSIST_WORDS.get(persist, "approved")
            return "cancelled" if action == CANCEL else "declined"
        return "declined"

    def answer_text(self, reply: Json) -> str:
        """The answers a reply carries, for the transcript; secret ones are hidden."""
        if self.method == QUESTION:
            fields = {f.id: f for f in self.fields()}
            parts = []
            for qid, answer in (reply.get("answers") or {}).items():
                field = fields.get(qid)
                shown = "(hidden)" if field and field.secret else ", ".join(map(str, answer.get("answers") or []))
                parts.append(f"{(field.label or field.question) if field else qid}: {shown}")
            return "; ".join(parts)
        content = reply.get("content")
        if self.method == ELICITATION and isinstance(content, dict):
            return "; ".join(f"{key}: {value}" for key, value in content.items())
        return ""

    # -- helpers ----------------------------------------------------------------------

    def _available(self) -> list[Any]:
        return list(self.params.get("availableDecisions") or [])

    def _questions(self) -> list[Json]:
        return [q for q in self.params.get("questions") or [] if isinstance(q, dict)]

    def _mode(self) -> str:
        return _s(self.params.get("mode")) or "form"

    def _content(self, answers: Mapping[str, str]) -> Json:
        content: Json = {}
        for field in self.fields():
            raw = (answers.get(field.id) or "").strip()
            if not raw:
                if field.required:
                    raise AnswerError(f"fill in '{field.label}' first, or Decline")
                continue
            content[field.id] = _typed(raw, field)
        return content


_OPTION = "option:"  # a choice key for the request's own decision at this index


def _amendment_label(decision: Any) -> str:
    """The button label of a decision that changes Codex's rules; "" for any other."""
    if not isinstance(decision, dict):
        return ""
    execpolicy = (decision.get("acceptWithExecpolicyAmendment") or {}).get("execpolicy_amendment")
    if isinstance(execpolicy, list) and execpolicy:
        return "Always allow: " + " ".join(map(str, execpolicy))
    network = (decision.get("applyNetworkPolicyAmendment") or {}).get("network_policy_amendment")
    if isinstance(network, dict) and network.get("host"):
        verb = "Always allow" if network.get("action") == "allow" else "Always block"
        return f"{verb} network access to {network['host']}"
    return ""


def _typed(raw: str, field: Field) -> Any:
    """A form answer as its schema's type."""
    if field.kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise AnswerError(f"'{field.label}' is true or false")
        return raw.lower() == "true"
    if field.kind in ("number", "integer"):
        try:
            number = float(raw)
        except ValueError:
            raise AnswerError(f"'{field.label}' must be a number, not {raw!r}") from None
        if field.kind == "integer":
            if not number.is_integer():
                raise AnswerError(f"'{field.label}' must be a whole number, not {raw!r}")
            return int(number)
        return number
    return raw


def permission_lines(permissions: Any) -> list[str]:
    """The permissions a request asks for, one short line each."""
    if not isinstance(permissions, dict):
        return []
    lines = []
    network = permissions.get("network")
    if isinstance(network, dict) and network.get("enabled"):
        lines.append("network access")
    files = permissions.get("fileSystem")
    if isinstance(files, dict):
        entries = [e for e in files.get("entries") or [] if isinstance(e, dict)]
        for entry in entries:
            path = entry.get("path")
            path = path if isinstance(path, dict) else {}
            where = _s(path.get("path")) or _s(path.get("pattern")) or json.dumps(path.get("value", path))
            lines.append(f"{_s(entry.get('access')) or 'access'} {where}")
        if not entries:
            for access in ("read", "write"):
                lines.extend(f"{access} {p}" for p in files.get(access) or [] if isinstance(p, str))
    return lines
