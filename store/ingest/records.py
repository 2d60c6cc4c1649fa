"""Zendesk export records -> Documents. One function per source; each validates its record.

A parser returns a Document, or None for a record that is valid but not knowledge (a draft
article, an unsolved ticket, an inactive macro), or raises RecordError with a clear message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from store.knowledge.types import AUDIENCE_AGENTS, AUDIENCE_EVERYONE, Document, InvalidQueryError

SOURCES = ("help-center", "tickets", "macros", "markdown")
_SURROGATE_RE = re.compile("[\udc80-\udcff]")
_SEARCHABLE_TICKET_STATUSES = {"solved", "closed"}


class RecordError(ValueError):
    """One input record is unusable; the message says why (never contains secrets)."""


@dataclass(frozen=True)
class IngestLimits:
    max_title_chars: int = 500
    max_body_chars: int = 200_000
    max_comments: int = 500
    max_file_bytes: int = 50_000_000
    max_markdown_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        for name in (
            "max_title_chars",
            "max_body_chars",
            "max_comments",
            "max_file_bytes",
            "max_markdown_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")


def record_label(raw: Any) -> str | None:
    """The record's Zendesk id as text, if it has a usable one (for error messages and sweeps)."""
    if isinstance(raw, dict):
        rid = raw.get("id")
        if isinstance(rid, int) and not isinstance(rid, bool):
            return str(rid)
        if isinstance(rid, str) and rid.strip():
            return rid.strip()
    return None


def _check_utf8(value: Any, path: str = "record") -> None:
    """Strings decoded with surrogateescape carry lone surrogates where bytes were not UTF-8."""
    if isinstance(value, str):
        if _SURROGATE_RE.search(value):
            raise RecordError(f"{path} contains bytes that are not valid UTF-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_utf8(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_utf8(item, f"{path}[{i}]")


def _require(raw: dict, field: str, kind: type | tuple[type, ...]) -> Any:
    if field not in raw or raw[field] is None:
        raise RecordError(f"missing field {field!r}")
    value = raw[field]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise RecordError(f"field {field!r} must be {names}, got {type(value).__name__}")
    return value


def _opt_str(raw: dict, field: str, default: str = "") -> str:
    value = raw.get(field)
    if value is None:
        return default
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise RecordError(f"field {field!r} must be a string")
    return str(value)


def _str_list(raw: dict, field: str) -> tuple[str, ...]:
    value = raw.get(field) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"field {field!r} must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _ident(raw: dict) -> str:
    rid = record_label(raw)
    if rid is None:
        raise RecordError("missing or invalid field 'id'")
    if not re.fullmatch(r"[A-Za-z0-9_.:/\-]{1,200}", rid):
        raise RecordError(f"invalid id {rid!r}")
    return rid


def _check_sizes(title: str, body: str, limits: IngestLimits) -> None:
    if not title.strip():
        raise RecordError("empty title")
    if len(title) > limits.max_title_chars:
        raise RecordError(f"title longer than {limits.max_title_chars} characters")
    if len(body) > limits.max_body_chars:
        raise RecordError(f"body is {len(body):,} characters; the limit is {limits.max_body_chars:,}")


def _document(**kwargs: Any) -> Document:
    try:
        return Document(**kwargs)
    except InvalidQueryError as exc:
        raise RecordError(str(exc)) from exc


def _ids(value: Any) -> list[str]:
    """Zendesk ids (integers, or numeric strings) of a list field; anything else is dropped."""
    if not isinstance(value, list):
        return []
    return [
        str(v)
        for v in value
        if (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.isdigit())
    ]


def segment_audience(segment_id: str, segment: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Which support agents may see content restricted to this Help Center user segment.

    From the User Segments API (https://developer.zendesk.com/api-reference/help_center/help-center-api/user_segments/):
    `user_type` "signed_in_users" (authenticated users) or "staff" (agents and Help Center
    managers) both include agents; for `group_ids`, `organization_ids`, `tags` and `or_tags` "an
    empty array means that access is not restricted by the attribute"; `added_user_ids` are in
    "regardless of matching tags or other criteria". Zendesk's "Creating user segments" article: for
    agents the organization is ignored. Agents' tags are not known here, so a tag-restricted segment
    is shown only to its added users (hidden rather than guessed). An unknown segment (its
    definition could not be read) is shown to nobody. "segment:<id>" always names the segment."""
    keys = [f"segment:{segment_id}"]
    if not isinstance(segment, Mapping) or segment.get("user_type") not in {"signed_in_users", "staff"}:
        return tuple(keys)
    keys.extend(f"user:{u}" for u in _ids(segment.get("added_user_ids")))
    if segment.get("tags") or segment.get("or_tags"):
        return tuple(keys)
    groups = _ids(segment.get("group_ids"))
    if groups:
        keys.extend(f"group:{g}" for g in groups)
    else:
        keys.append(AUDIENCE_AGENTS)
    return tuple(keys)


def article_visibility(
    raw: Mapping[str, Any], segments: Mapping[str, Mapping[str, Any]] | None
) -> tuple[bool, tuple[str, ...]]:
    """(internal, audience) of a Help Center article. Articles API
    (https://developer.zendesk.com/api-reference/help_center/help-center-api/articles/):
    `user_segment_id` is "The id of the user segment which defines who can see this article. Set to
    null to make it accessible to everyone"; on Enterprise `user_segment_ids` lists several ("accessed
    by users with any of the user segment ids in the array")."""
    ids = _ids(raw.get("user_segment_ids"))
    single = raw.get("user_segment_id")
    if single is not None:
        if isinstance(single, bool) or not (
            isinstance(single, int) or (isinstance(single, str) and single.isdigit())
        ):
            raise RecordError("field 'user_segment_id' must be an id or null")
        ids.insert(0, str(single))
    if not ids:
        return False, (AUDIENCE_EVERYONE,)
    keys: list[str] = []
    for sid in dict.fromkeys(ids):
        # `is not None`, not truthiness: a lazily read mapping (UserSegments) is empty until asked.
        keys.extend(segment_audience(sid, segments.get(sid) if segments is not None else None))
    return True, tuple(keys)


def parse_article(
    raw: Any,
    tenant: str,
    limits: IngestLimits,
    *,
    segments: Mapping[str, Mapping[str, Any]] | None = None,
) -> Document | None:
    """Help Center API article (`GET /api/v2/help_center/{locale}/articles`). `segments`: user
    segment definitions by id (as text), for articles restricted to one."""
    if not isinstance(raw, dict):
        raise RecordError("article is not a JSON object")
    _check_utf8(raw)
    rid = _ident(raw)
    if raw.get("draft") is True:
        return None
    title = _require(raw, "title", str)
    body = _require(raw, "body", str)
    _check_sizes(title, body, limits)
    internal, audience = article_visibility(raw, segments)
    return _document(
        internal=internal,
        audience=audience,
        tenant=tenant,
        kind="article",
        external_id=rid,
        title=title.strip(),
        body=body,
        body_format="html",
        source="help-center",
        url=_opt_str(raw, "html_url"),
        locale=_opt_str(raw, "locale", "en-us"),
        tags=_str_list(raw, "label_names"),
        updated_at=_opt_str(raw, "updated_at"),
    )


def _escape_md(text: str) -> str:
    # Customer text is data, not markup: neutralise line-leading headings/rules/HTML.
    return re.sub(r"(?m)^(\s*)([#>=<\-*+|`~])", r"\1\\\2", text.strip())


def parse_ticket(
    raw: Any, tenant: str, limits: IngestLimits, *, default_locale: str = "en-us"
) -> Document | None:
    """The public document of a ticket (see parse_ticket_documents)."""
    docs = parse_ticket_documents(raw, tenant, limits, default_locale=default_locale)
    return docs[0] if docs else None


def internal_notes_id(ticket_doc_id: str) -> str:
    """Index id of a ticket's internal notes document: `ticket:<id>:internal`."""
    return f"{ticket_doc_id}:internal"


def parse_ticket_documents(
    raw: Any, tenant: str, limits: IngestLimits, *, default_locale: str = "en-us"
) -> list[Document]:
    """Ticket with its comments (`{"id", "subject", "description", "status", "comments": [...]}`).

    Only solved/closed tickets are knowledge: their conversation shows how a problem was resolved.
    The public conversation is one document (the last public agent comment indexed as the
    resolution); internal notes — comments with `public: false`, "false if an internal note"
    (https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/) — are a second,
    internal document (`ticket:<id>:internal`), so their text never mixes into public evidence."""
    if not isinstance(raw, dict):
        raise RecordError("ticket is not a JSON object")
    _check_utf8(raw)
    rid = _ident(raw)
    status = _require(raw, "status", str).lower()
    if status not in _SEARCHABLE_TICKET_STATUSES:
        return []
    subject = _opt_str(raw, "subject").strip() or _opt_str(raw, "raw_subject").strip()
    description = _opt_str(raw, "description")
    comments = raw.get("comments") or []
    if not isinstance(comments, list):
        raise RecordError("field 'comments' must be a list")
    if len(comments) > limits.max_comments:
        raise RecordError(f"{len(comments)} comments; the limit is {limits.max_comments}")
    if not subject:
        raise RecordError("missing field 'subject'")
    requester = raw.get("requester_id")
    public: list[tuple[str, str]] = []  # (role, text)
    notes: list[str] = []
    for i, comment in enumerate(comments):
        if not isinstance(comment, dict):
            raise RecordError(f"comment #{i} is not a JSON object")
        text = comment.get("plain_body") or comment.get("body")
        if not isinstance(text, str):
            raise RecordError(f"comment #{i} has no text body")
        if not text.strip():
            continue
        if comment.get("public") is False:
            notes.append(text.strip())  # internal notes: their own, internal document
            continue
        author = comment.get("author_id")
        role = "Customer" if requester is not None and author == requester else "Agent"
        public.append((role, text.strip()))
    if public and description and public[0][1] == description.strip():
        public = public[1:]  # Zendesk repeats the description as the first comment
    resolution_index = max((i for i, (role, _) in enumerate(public) if role == "Agent"), default=None)
    parts = [f"## Problem\n\n{_escape_md(description or subject)}"]
    conversation = [p for i, p in enumerate(public) if i != resolution_index]
    if conversation:
        parts.append(
            "## Conversation\n\n" + "\n\n".join(f"**{r}:** {_escape_md(t)}" for r, t in conversation)
        )
    if resolution_index is not None:
        parts.append(f"## Resolution\n\n{_escape_md(public[resolution_index][1])}")
    body = "\n\n".join(parts)
    _check_sizes(subject, body, limits)
    common = {
        "tenant": tenant,
        "kind": "ticket",
        "body_format": "markdown",
        "source": "tickets",
        "url": _ticket_url(raw, rid),
        "locale": _opt_str(raw, "locale", default_locale),
        "tags": _str_list(raw, "tags"),
        "updated_at": _opt_str(raw, "updated_at"),
    }
    docs = [_document(external_id=rid, title=subject, body=body, **common)]
    if notes:
        note_body = "## Internal notes\n\n" + "\n\n".join(_escape_md(n) for n in notes)
        _check_sizes(subject, note_body, limits)
        docs.append(
            _document(
                external_id=internal_notes_id(rid),
                title=f"{subject} (internal notes)"[: limits.max_title_chars],
                body=note_body,
                internal=True,
                # Agents see a ticket's internal notes; customers never do.
                audience=(AUDIENCE_AGENTS,),
                **common,
            )
        )
    return docs


def _ticket_url(raw: dict, rid: str) -> str:
    url = _opt_str(raw, "html_url") or _opt_str(raw, "url")
    # The API gives https://x.zendesk.com/api/v2/tickets/1.json; agents want the agent UI link.
    match = re.match(r"^(https?://[^/]+)/api/v2/tickets/", url)
    return f"{match.group(1)}/agent/tickets/{rid}" if match else url


_ACTION_LABELS = {
    "status": "Set status",
    "priority": "Set priority",
    "type": "Set type",
    "set_tags": "Set tags",
    "current_tags": "Add tags",
    "remove_tags": "Remove tags",
    "group_id": "Assign to group",
    "assignee_id": "Assign to agent",
    "subject": "Set subject",
}


def parse_macro(
    raw: Any, tenant: str, limits: IngestLimits, *, default_locale: str = "en-us"
) -> Document | None:
    """Macro (`GET /api/v2/macros`): title, description and what it does; active macros only."""
    if not isinstance(raw, dict):
        raise RecordError("macro is not a JSON object")
    _check_utf8(raw)
    rid = _ident(raw)
    if raw.get("active") is False:
        return None
    title = _require(raw, "title", str).strip()
    actions = raw.get("actions") or []
    if not isinstance(actions, list):
        raise RecordError("field 'actions' must be a list")
    replies: list[str] = []
    effects: list[str] = []
    private_reply = False
    for i, action in enumerate(actions):
        if not isinstance(action, dict) or not isinstance(action.get("field"), str):
            raise RecordError(f"action #{i} must be an object with a 'field'")
        field, value = action["field"], action.get("value")
        if field in {"comment_value", "comment_value_html"}:
            # comment_value is either the text or ["channel:all", text].
            text = value[-1] if isinstance(value, list) and value else value
            if not isinstance(text, str):
                raise RecordError(f"action #{i} ({field}) has no text")
            if field == "comment_value_html":
                from store.knowledge.chunking import html_to_text

                text = html_to_text(text)
            replies.append(text.strip())
        elif field == "comment_mode_is_public":
            public_reply = str(value).lower() == "true"
            private_reply = not public_reply
            effects.append("Reply is public" if public_reply else "Reply is an internal note")
        else:
            label = _ACTION_LABELS.get(field, f"Set {field}")
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            effects.append(f"{label}: {shown}")
    parts = [_escape_md(_opt_str(raw, "description"))] if _opt_str(raw, "description").strip() else []
    if replies:
        parts.append("## Reply\n\n" + "\n\n".join(_escape_md(r) for r in replies))
    if effects:
        parts.append("## Actions\n\n" + "\n".join(f"- {_escape_md(e)}" for e in effects))
    body = "\n\n".join(parts)
    _check_sizes(title, body, limits)
    restricted, audience = macro_restriction(raw.get("restriction"))
    return _document(
        internal=restricted or private_reply,
        audience=audience,
        tenant=tenant,
        kind="macro",
        external_id=rid,
        title=title,
        body=body,
        body_format="markdown",
        source="macros",
        url=_opt_str(raw, "url"),
        locale=_opt_str(raw, "locale", default_locale),
        tags=_str_list(raw, "restriction_tags") if isinstance(raw.get("restriction_tags"), list) else (),
        updated_at=_opt_str(raw, "updated_at"),
    )


def macro_restriction(restriction: Any) -> tuple[bool, tuple[str, ...]]:
    """(restricted, audience) from a macro's `restriction`. Macros API
    (https://developer.zendesk.com/api-reference/ticketing/business-rules/macros/): "Access to this
    macro. A null value allows unrestricted access for all users in the account"; otherwise
    `{"type": "Group", "id", "ids"}` or `{"type": "User", "id"}`. A restriction we cannot read is
    shown to nobody rather than to everyone."""
    if restriction is None:
        return False, (AUDIENCE_EVERYONE,)
    if not isinstance(restriction, Mapping):
        raise RecordError("field 'restriction' must be an object or null")
    kind = str(restriction.get("type") or "").lower()
    ids = _ids(restriction.get("ids")) or _ids([restriction.get("id")])
    if kind == "group" and ids:
        return True, tuple(f"group:{i}" for i in ids)
    if kind == "user" and ids:
        return True, tuple(f"user:{i}" for i in ids)
    return True, ("segment:unreadable-restriction",)


_FRONT_MATTER_RE = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def parse_markdown(
    text: str, rel_path: str, tenant: str, limits: IngestLimits, *, default_locale: str = "en-us"
) -> Document:
    """A Markdown file; optional YAML front matter: title, id, kind, url, locale, tags."""
    import yaml

    _check_utf8(text, rel_path)
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER_RE.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            raise RecordError(f"invalid front matter: {exc}") from exc
        if not isinstance(loaded, dict):
            raise RecordError("front matter must be a mapping")
        meta = loaded
        text = text[match.end() :]
    title = meta.get("title")
    if title is None:
        heading = re.search(r"(?m)^#\s+(.+?)\s*#*\s*$", text)
        title = (
            heading.group(1) if heading else rel_path.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("-", " ")
        )
    if not isinstance(title, str):
        raise RecordError("front matter 'title' must be a string")
    stem = rel_path.rsplit(".", 1)[0]
    external_id = str(meta.get("id") or f"md/{stem}")
    if not re.fullmatch(r"[A-Za-z0-9_.:/\-]{1,200}", external_id):
        raise RecordError(f"invalid id {external_id!r} (derived from the path or front matter)")
    tags = meta.get("tags") or []
    if not isinstance(tags, list):
        raise RecordError("front matter 'tags' must be a list")
    _check_sizes(title, text, limits)
    return _document(
        tenant=tenant,
        kind=str(meta.get("kind") or "article"),
        external_id=external_id,
        title=title.strip(),
        body=text,
        body_format="markdown",
        source="markdown",
        url=str(meta.get("url") or ""),
        locale=str(meta.get("locale") or default_locale),
        tags=tuple(str(t) for t in tags),
        updated_at=str(meta.get("updated_at") or ""),
    )
