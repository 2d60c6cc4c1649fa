"""FunctionGemma's prompt format: ONE module shared by training and inference.

Follows Google's "FunctionGemma formatting and best practices"
(https://ai.google.dev/gemma/docs/functiongemma/formatting-and-best-practices): Gemma turns
(`<start_of_turn>role` … `<end_of_turn>`), a `developer` turn holding the declarations, tool
declarations between `<start_function_declaration>`/`<end_function_declaration>`, calls between
`<start_function_call>`/`<end_function_call>` written `call:NAME{arg:<escape>value<escape>}`, and
`<escape>` as the only string delimiter. Several calls in one model turn = agents run in parallel.

Every agent becomes one function with one `query` string parameter; two pseudo-functions stand
for "answer directly" and "ask a clarifying question", so the model's only job is to pick calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agents.base import NAME_PATTERN, AgentManifest
from orchestrator.routing.decisions import CLARIFY, RESPOND

START_DECL = "<start_function_declaration>"
END_DECL = "<end_function_declaration>"
START_CALL = "<start_function_call>"
END_CALL = "<end_function_call>"
START_RESPONSE = "<start_function_response>"
END_RESPONSE = "<end_function_response>"
ESCAPE = "<escape>"
START_TURN = "<start_of_turn>"
END_TURN = "<end_of_turn>"

# The tokens FunctionGemma was trained with; a plain Gemma 3 tokenizer lacks them.
CONTROL_TOKENS: tuple[str, ...] = (
    START_DECL,
    END_DECL,
    START_CALL,
    END_CALL,
    START_RESPONSE,
    END_RESPONSE,
    ESCAPE,
)

# The pseudo-functions are the routing pseudo labels (the adapter was trained on these names).
PSEUDO_FUNCTIONS = (RESPOND, CLARIFY)

DEVELOPER_PROMPT = "You are a model that can do function calling with the following functions"
ARG = "query"

_NAME_RE = re.compile(NAME_PATTERN)
_CALL_RE = re.compile(
    re.escape(START_CALL) + r"call:(?P<name>[A-Za-z0-9_]+)\{(?P<args>.*?)\}" + re.escape(END_CALL),
    re.DOTALL,
)
_ARG_RE = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z0-9_]*):" + re.escape(ESCAPE) + r"(?P<value>.*?)" + re.escape(ESCAPE)
)


class FormatError(ValueError):
    """Model output (or input to render) that does not follow the FunctionGemma format."""


@dataclass(frozen=True)
class FunctionDeclaration:
    name: str
    description: str
    parameters: dict[str, str] = field(default_factory=lambda: {ARG: "The question to send."})

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise FormatError(f"function name {self.name!r} must match {NAME_PATTERN}")
        if not self.description.strip():
            raise FormatError(f"function {self.name!r} needs a description")


@dataclass(frozen=True)
class FunctionCall:
    name: str
    args: dict[str, str] = field(default_factory=dict)


def clean_text(text: str) -> str:
    """Strip control tokens from free text: a query must never close a string or open a call
    (the same defence as escaping quotes in JSON)."""
    for tok in (*CONTROL_TOKENS, START_TURN, END_TURN, "<bos>", "<eos>"):
        text = text.replace(tok, " ")
    return " ".join(text.split())


def _one_line(text: str, limit: int = 300) -> str:
    return clean_text(text)[:limit]


def declarations_from_manifests(
    manifests: Iterable[AgentManifest], *, pseudo: bool = True, examples: int = 0
) -> list[FunctionDeclaration]:
    """One function per enabled agent (sorted by name so the prefix, and its KV cache, is stable),
    then the pseudo-functions. `examples` > 0 appends that many `when_to_use` examples to the
    description (longer prefix, more signal for an untrained model)."""
    out = []
    for m in sorted((m for m in manifests if m.enabled), key=lambda m: m.name):
        if m.name in PSEUDO_FUNCTIONS:
            raise FormatError(f"agent name {m.name!r} is reserved for a pseudo-function")
        desc = _one_line(m.description)
        if examples:
            desc += " E.g. " + "; ".join(_one_line(e, 80) for e in m.when_to_use[:examples])
        out.append(FunctionDeclaration(m.name, desc, {ARG: f"The question for the {m.title.lower()} agent."}))
    if not out:
        raise FormatError("no enabled agents to declare")
    if pseudo:
        out.append(
            FunctionDeclaration(
                RESPOND,
                "Answer directly without looking anything up: greetings, thanks, small talk, questions about the assistant.",
                {ARG: "The user's message."},
            )
        )
        out.append(
            FunctionDeclaration(
                CLARIFY,
                "Ask the user a clarifying question when the request is too vague to pick a source.",
                {ARG: "The user's message."},
            )
        )
    return out


def render_declaration(decl: FunctionDeclaration) -> str:
    props = ",".join(
        f"{k}:{{description:{ESCAPE}{_one_line(v)}{ESCAPE},type:{ESCAPE}STRING{ESCAPE}}}"
        for k, v in decl.parameters.items()
    )
    required = ",".join(f"{ESCAPE}{k}{ESCAPE}" for k in decl.parameters)
    return (
        f"{START_DECL}declaration:{decl.name}{{description:{ESCAPE}{_one_line(decl.description, 600)}{ESCAPE},"
        f"parameters:{{properties:{{{props}}},required:[{required}],type:{ESCAPE}OBJECT{ESCAPE}}}}}{END_DECL}"
    )


def render_prefix(decls: Sequence[FunctionDeclaration]) -> str:
    """The constant part of every prompt (without `<bos>`, which the tokenizer adds): the
    developer turn with all declarations. Computed once into a KV cache."""
    if not decls:
        raise FormatError("at least one declaration is needed")
    names = [d.name for d in decls]
    if len(set(names)) != len(names):
        raise FormatError(f"duplicate function names: {names}")
    body = "".join(render_declaration(d) for d in decls)
    return f"{START_TURN}developer\n{DEVELOPER_PROMPT}{body}{END_TURN}\n"


def render_query(query: str) -> str:
    """The per-turn part: the user's turn and the opening of the model's turn."""
    q = clean_text(query)
    if not q:
        raise FormatError("empty query")
    return f"{START_TURN}user\n{q}{END_TURN}\n{START_TURN}model\n"


def render_call(call: FunctionCall) -> str:
    if not _NAME_RE.match(call.name):
        raise FormatError(f"invalid function name {call.name!r}")
    args = ",".join(f"{k}:{ESCAPE}{clean_text(v)}{ESCAPE}" for k, v in call.args.items())
    return f"{START_CALL}call:{call.name}{{{args}}}{END_CALL}"


def render_calls(calls: Sequence[FunctionCall]) -> str:
    """The model's whole answer (the training completion): the calls, then the end of turn."""
    if not calls:
        raise FormatError("at least one call is needed")
    return "".join(render_call(c) for c in calls) + END_TURN


def parse_calls(text: str, allowed: Iterable[str]) -> list[FunctionCall]:
    """Strictly parse model output into calls. Anything but a sequence of well-formed calls to
    declared functions (optionally followed by `<end_of_turn>` / `<start_function_response>`) is
    a FormatError naming what was wrong."""
    allowed = set(allowed)
    rest = text.strip()
    for stop in (END_TURN, START_RESPONSE, "<eos>"):
        if rest.endswith(stop):
            rest = rest[: -len(stop)].rstrip()
    calls: list[FunctionCall] = []
    pos = 0
    while pos < len(rest):
        m = _CALL_RE.match(rest, pos)
        if not m:
            raise FormatError(f"malformed function call at offset {pos}: {rest[pos : pos + 60]!r}")
        name = m["name"]
        if name not in allowed:
            raise FormatError(f"unknown function {name!r}; declared: {sorted(allowed)}")
        args: dict[str, str] = {}
        raw = m["args"]
        apos = 0
        while apos < len(raw):
            am = _ARG_RE.match(raw, apos)
            if not am:
                raise FormatError(f"malformed arguments for {name!r}: {raw[apos : apos + 60]!r}")
            if am["key"] in args:
                raise FormatError(f"duplicate argument {am['key']!r} for {name!r}")
            args[am["key"]] = am["value"]
            apos = am.end()
            if apos < len(raw):
                if raw[apos] != ",":
                    raise FormatError(f"expected ',' between arguments of {name!r}")
                apos += 1
        calls.append(FunctionCall(name, args))
        pos = m.end()
    if not calls:
        raise FormatError("no function call in model output")
    return calls
