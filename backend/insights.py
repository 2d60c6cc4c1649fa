"""Insights for team leads: how the assistant is used, where it helps, where the knowledge base has gaps.

Pages and endpoints (docs/insights.md):

- `POST /zendesk/insights`  the app's `nav_bar` location (signed URL): Zendesk posts its ZAF JWT
                            (form field `token`). Admins (the verified token's `context.user.role`
                            is "admin") get the page with a short-lived insights token; anyone else
                            gets a refusal that shows nothing.
- `GET  /dev/insights?token=DEV_TOKEN`  AUTH_MODE=dev only: the same page for a dev token minted
                            with `sidebar-assistant dev-token --role admin`.
- `GET  /insights/api/report?start=YYYY-MM-DD&end=YYYY-MM-DD`  the page's data (JSON).
- `GET  /insights/api/export.csv?kind=daily|agents|gaps&start=…&end=…`  the same as CSV.

Both API endpoints take `Authorization: Bearer <insights token>`; the tenant comes from that
token only (a `tenant` parameter is refused). Everything is read from the session archive's
`SessionTurns` rows (store/insights.py): no second store. Exports hold ids, numbers and the
questions agents typed — never answer text or ticket text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
import numpy as np
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request

from backend.auth import AuthError, DevTokenAuthenticator
from backend.services import server_secret
from store.insights import GapRow, InsightsQueries, RawInsights, SqliteInsights
from store.sessions import ArchiveError, SqliteSessionArchive

if TYPE_CHECKING:
    from backend.services import Services

log = logging.getLogger(__name__)

bp = Blueprint("insights", __name__, template_folder="templates")

ADMIN_ROLE = "admin"
INSIGHTS_AUDIENCE = "sidebar-assistant.insights"
TOKEN_TTL_SECONDS = 3600  # the page reloads from Zendesk for a new one
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 14
MAX_CLUSTERED = 500  # newest gap questions clustered into topics (clustering is O(n²))
MAX_TOPICS = 25
TOP_AGENTS = 8  # agents drawn in the per-day chart; the table lists all
CSV_KINDS = ("daily", "agents", "gaps")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REFUSED = "Insights are for Zendesk admins of this account. Ask an admin for access."


@dataclass(frozen=True)
class Viewer:
    """Who is looking: from a verified token only."""

    tenant: str
    user_id: str
    user_name: str
    role: str


class InsightsTokens:
    """HS256 tokens for the insights API, keyed apart from session tokens (derived from the server
    secret with a purpose of their own), minted only for admins and checked again on every call."""

    def __init__(self, secret: str, ttl_seconds: int = TOKEN_TTL_SECONDS) -> None:
        self._key = hashlib.sha256(b"sidebar-assistant.insights-token\x00" + secret.encode()).digest()
        self.ttl_seconds = ttl_seconds

    def mint(self, viewer: Viewer, *, now: float | None = None) -> str:
        now = time.time() if now is None else now
        claims = {
            "aud": INSIGHTS_AUDIENCE,
            "sub": viewer.user_id,
            "tenant": viewer.tenant,
            "name": viewer.user_name,
            "role": viewer.role,
            "iat": int(now),
            "exp": int(now + self.ttl_seconds),
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str) -> Viewer:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=INSIGHTS_AUDIENCE,
                options={"require": ["exp", "iat", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.PyJWTError:
            raise AuthError("invalid token") from None
        tenant, sub = claims.get("tenant"), claims.get("sub")
        if not (isinstance(tenant, str) and tenant and isinstance(sub, str) and sub):
            raise AuthError("invalid token claims")
        return Viewer(tenant, sub, str(claims.get("name", ""))[:128], str(claims.get("role", "")))


# --- wiring ------------------------------------------------------------------------------------------


@dataclass
class InsightsService:
    tokens: InsightsTokens
    dev_tokens: DevTokenAuthenticator | None
    services: Services
    _queries: InsightsQueries | None = None

    def queries(self) -> InsightsQueries:
        """The archive's own database, opened on first use (a read connection of its own)."""
        if self._queries is None:
            archive = self.services.archive
            if isinstance(archive, SqliteSessionArchive):
                self._queries = SqliteInsights(archive.path)
            else:
                from store.spanner.insights import SpannerInsights
                from store.spanner.sessions import SpannerSessionArchive

                if not isinstance(archive, SpannerSessionArchive):
                    raise ArchiveError(f"no insights queries for a {type(archive).__name__}")
                self._queries = SpannerInsights(archive.config)
        return self._queries


def register_insights(app: Flask, svc: Services) -> InsightsService:
    secret = server_secret(svc.settings)
    dev = (
        DevTokenAuthenticator(secret, svc.settings.dev_token_ttl_seconds)
        if svc.settings.auth_mode == "dev"
        else None
    )
    service = InsightsService(InsightsTokens(secret), dev, svc)
    app.extensions["insights"] = service
    app.register_blueprint(bp)
    return service


def _service() -> InsightsService:
    return current_app.extensions["insights"]


def _secure(resp: Response, *, frame_ancestors: str) -> Response:
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {frame_ancestors}"
    )
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _refusal(message: str, status: int, frame_ancestors: str) -> Response:
    resp = Response(
        render_template("zendesk_error.html", message=message), status=status, mimetype="text/html"
    )
    return _secure(resp, frame_ancestors=frame_ancestors)


def _page(viewer: Viewer, *, ticket_base: str | None, frame_ancestors: str) -> Response:
    config = {
        "token": _service().tokens.mint(viewer),
        "tenant": viewer.tenant,
        "user": {"name": viewer.user_name or viewer.user_id},
        "ticketBase": ticket_base,  # agent ticket links, e.g. https://acme.zendesk.com/agent/tickets/
        "api": "/insights/api",
        "defaultDays": DEFAULT_RANGE_DAYS,
    }
    resp = Response(render_template("insights.html", config=config), mimetype="text/html")
    return _secure(resp, frame_ancestors=frame_ancestors)


# --- pages -------------------------------------------------------------------------------------------


@bp.post("/zendesk/insights")
def zendesk_page():
    auth = current_app.extensions["zendesk_sidebar"]
    dev = _service().services.settings.auth_mode == "dev"
    try:
        identity = auth.verifier.verify(request.form.get("token"))
    except AuthError as exc:
        log.info("insights refused: %s", exc)
        return _refusal(
            "The request could not be verified as coming from Zendesk.", 401, "'self' https://*.zendesk.com"
        )
    ancestors = f"'self' {identity.origin}" if dev else identity.origin
    if identity.role != ADMIN_ROLE:
        log.info("insights refused to a non-admin (%s)", identity.tenant)
        return _refusal(_REFUSED, 403, ancestors)
    viewer = Viewer(identity.tenant, identity.user_id, identity.user_name, ADMIN_ROLE)
    return _page(viewer, ticket_base=f"{identity.origin}/agent/tickets/", frame_ancestors=ancestors)


@bp.get("/dev/insights")
def dev_page():
    service = _service()
    if service.dev_tokens is None:
        abort(404)
    try:
        principal, role = service.dev_tokens.role_of({"token": request.args.get("token", "")})
    except AuthError as exc:
        return _refusal(f"Dev token refused: {exc}.", 401, "'self'")
    if role != ADMIN_ROLE:
        return _refusal(_REFUSED, 403, "'self'")
    viewer = Viewer(principal.tenant, principal.user_id, principal.user_name, ADMIN_ROLE)
    return _page(viewer, ticket_base=None, frame_ancestors="'self'")


# --- API ---------------------------------------------------------------------------------------------


class BadRequest(ValueError):
    pass


def _viewer() -> Viewer:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.startswith("Bearer ") else ""
    if not token or len(token) > 4096:
        raise AuthError("missing token: send Authorization: Bearer <insights token>")
    viewer = _service().tokens.verify(token)
    if viewer.role != ADMIN_ROLE:  # never minted for others; checked again all the same
        raise PermissionError(_REFUSED)
    return viewer


def parse_range(args: Any, *, today: date | None = None) -> tuple[str, str]:
    """`start`/`end` as ISO dates (inclusive, UTC days); the last DEFAULT_RANGE_DAYS by default."""
    today = today or datetime.now(UTC).date()
    end_s = args.get("end") or today.isoformat()
    start_s = (
        args.get("start") or (date.fromisoformat(end_s) - timedelta(days=DEFAULT_RANGE_DAYS - 1)).isoformat()
    )
    for name, value in (("start", start_s), ("end", end_s)):
        if not isinstance(value, str) or not _DAY.match(value):
            raise BadRequest(f"{name} must be a date like 2026-01-31")
        try:
            date.fromisoformat(value)
        except ValueError:
            raise BadRequest(f"{name} is not a calendar date") from None
    start, end = date.fromisoformat(start_s), date.fromisoformat(end_s)
    if start > end:
        raise BadRequest("start is after end")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise BadRequest(f"the range is longer than {MAX_RANGE_DAYS} days")
    return start_s, end_s


def _api(fn):
    """Every API failure is a clear JSON error; nothing about the token is echoed."""

    def wrapper():
        try:
            if "tenant" in request.args:
                raise BadRequest("the tenant comes from your sign-in, not from the request")
            return fn(_viewer())
        except AuthError as exc:
            return jsonify(error=str(exc)), 401
        except PermissionError as exc:
            return jsonify(error=str(exc)), 403
        except BadRequest as exc:
            return jsonify(error=str(exc)), 400
        except ArchiveError:
            log.exception("insights: archive unavailable")
            return jsonify(error="The session archive is unavailable; try again shortly."), 503

    wrapper.__name__ = fn.__name__
    return wrapper


@bp.get("/insights/api/report")
@_api
def report(viewer: Viewer):
    start, end = parse_range(request.args)
    raw = _service().queries().fetch(viewer.tenant, start, end)
    resp = jsonify(build_report(raw, start, end))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/insights/api/export.csv")
@_api
def export(viewer: Viewer):
    kind = request.args.get("kind", "daily")
    if kind not in CSV_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(CSV_KINDS)}")
    start, end = parse_range(request.args)
    raw = _service().queries().fetch(viewer.tenant, start, end)
    body = export_csv(kind, raw, start, end)
    resp = Response(body, mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="insights-{kind}-{start}-{end}.csv"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


# --- the report --------------------------------------------------------------------------------------


def _days(start: str, end: str) -> list[str]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _route_label(action: str, agents: str) -> str:
    if action in ("respond", "clarify"):
        return action
    return agents or "no sources"


def build_report(raw: RawInsights, start: str, end: str) -> dict[str, Any]:
    days = _days(start, end)
    by_day = {d.day: d for d in raw.daily}

    def series(attr: str) -> list[float]:
        return [getattr(by_day[d], attr) if d in by_day else 0 for d in days]

    totals = {
        k: sum(getattr(d, k) for d in raw.daily)
        for k in (
            "questions",
            "thumbs_up",
            "thumbs_down",
            "inserted",
            "drafts",
            "drafts_inserted",
            "declined",
            "wrong_sources",
            "errors",
            "input_tokens",
            "output_tokens",
        )
    }
    totals["cost_usd"] = round(sum(d.cost_usd for d in raw.daily), 6)
    agents: dict[str, dict[str, Any]] = {}
    for row in raw.agents:
        a = agents.setdefault(
            row.user_id,
            {"user_id": row.user_id, "name": row.user_name or row.user_id, "questions": 0, "tickets": 0,
             "inserted": 0, "active_days": 0, "per_day": dict.fromkeys(days, 0)},
        )  # fmt: skip
        a["questions"] += row.questions
        a["tickets"] += row.tickets
        a["inserted"] += row.inserted
        a["active_days"] += 1
        a["per_day"][row.day] = row.questions
    agent_list = sorted(agents.values(), key=lambda a: (-a["questions"], a["user_id"]))
    for a in agent_list:
        a["per_active_day"] = round(a["questions"] / a["active_days"], 2) if a["active_days"] else 0
        a["per_day"] = [a["per_day"][d] for d in days]
    totals["agents"] = len(agent_list)
    totals["tickets"] = raw.tickets
    rated = totals["thumbs_up"] + totals["thumbs_down"]

    mix: dict[str, int] = defaultdict(int)
    for action, names, count in raw.routes:
        mix[_route_label(action, names)] += count
    latency: dict[str, list[float]] = defaultdict(list)
    for action, names, seconds in raw.latency:
        latency[_route_label(action, names)].append(seconds)
    everything = [s for _, _, s in raw.latency]
    routing = [
        {
            "route": label,
            "questions": count,
            "share": round(count / max(totals["questions"], 1), 4),
            "p50_s": _pct(latency.get(label, []), 50),
            "p95_s": _pct(latency.get(label, []), 95),
        }
        for label, count in sorted(mix.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return {
        "tenant_scoped": True,
        "range": {"start": start, "end": end, "days": days},
        "totals": {**totals, "helpful_rate": round(totals["thumbs_up"] / rated, 4) if rated else None},
        "adoption": {
            "questions": series("questions"),
            "agents": series("agents"),
            "tickets": series("tickets"),
            "by_agent": agent_list,
            "top_agents": [a["user_id"] for a in agent_list[:TOP_AGENTS]],
        },
        "helpfulness": {
            "thumbs_up": series("thumbs_up"),
            "thumbs_down": series("thumbs_down"),
            "inserted": series("inserted"),
            "drafts": series("drafts"),
            "drafts_inserted": series("drafts_inserted"),
        },
        "gaps": {
            "declined": series("declined"),
            "wrong_sources": series("wrong_sources"),
            "topics": cluster_gaps(raw.gaps),
        },
        "routing": {
            "mix": routing,
            "latency": {"p50_s": _pct(everything, 50), "p95_s": _pct(everything, 95)},
        },
        "cost": {
            "usd": [round(v, 6) for v in series("cost_usd")],
            "input_tokens": series("input_tokens"),
            "output_tokens": series("output_tokens"),
        },
    }


def cluster_gaps(gaps: list[GapRow]) -> list[dict[str, Any]]:
    """Declined and "wrong sources" questions grouped into topics: TF-IDF (words and word pairs)
    and average-linkage clustering by cosine distance, so "gift wrap for a sofa" and "can we gift
    wrap this order" land together. Each topic is named by its heaviest terms."""
    rows, labels, names = _gap_topics(gaps)
    topics: dict[int, list[GapRow]] = defaultdict(list)
    for label, row in zip(labels, rows, strict=True):
        topics[label].append(row)
    out = []
    for label, members in topics.items():
        members.sort(key=lambda g: -g.asked_at)
        examples = list(dict.fromkeys(g.question for g in members))[:3]
        tickets = list(dict.fromkeys(g.ticket_id for g in members))[:10]
        topic = names.get(label) or examples[0][:60]
        out.append(
            {
                "topic": topic,
                "count": len(members),
                "declined": sum(g.declined for g in members),
                "wrong_sources": sum(g.wrong_sources for g in members),
                "examples": examples,
                "tickets": tickets,
                "last_asked": datetime.fromtimestamp(members[0].asked_at, UTC).date().isoformat(),
                "suggestion": f"Write an article about “{topic}”",
            }
        )
    out.sort(key=lambda t: (-t["count"], t["topic"]))
    return out[:MAX_TOPICS]


def _gap_topics(gaps: list[GapRow]) -> tuple[list[GapRow], list[int], dict[int, str]]:
    """The newest MAX_CLUSTERED gap questions, each one's topic label, and the topics' names."""
    rows = [g for g in gaps[:MAX_CLUSTERED] if g.question.strip()]
    if not rows:
        return [], [], {}
    labels, names = _cluster([g.question for g in rows])
    return rows, labels, names


_WORD = re.compile(r"(?u)\b[^\W\d_]{2,}\b")


def _terms(text: str) -> list[str]:
    """Lower-cased words with a plural 's' folded ("lamps" → "lamp"), so short questions that
    name the same thing match; no stemmer dependency for this."""
    return [
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
        for w in _WORD.findall(text.lower())
    ]


def _cluster(texts: list[str]) -> tuple[list[int], dict[int, str]]:
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    stop = {_terms(w)[0] for w in ENGLISH_STOP_WORDS if _terms(w)} | set(ENGLISH_STOP_WORDS)
    vectorizer = TfidfVectorizer(
        tokenizer=lambda t: [w for w in _terms(t) if w not in stop],
        lowercase=False,
        token_pattern=None,
        sublinear_tf=True,
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words
        return [0] * len(texts), {}
    terms = vectorizer.get_feature_names_out()
    if len(texts) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        dense = matrix.toarray()
        # A question with no terms left has a zero vector (cosine undefined): give it its own topic.
        empty = ~dense.any(axis=1)
        dense[empty, 0] = 1e-6
        labels = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=0.8
        ).fit_predict(dense)
    names: dict[int, str] = {}
    for label in set(labels.tolist()):
        members = labels == label
        weights = np.asarray(matrix[members].sum(axis=0)).ravel()
        # Terms most of the topic's questions share, heaviest first; named in the order an agent
        # wrote them ("gift wrap", not "wrap gift").
        top = [terms[i] for i in weights.argsort()[::-1][:2] if weights[i] > 0]
        first = _terms(next(t for t, m in zip(texts, members, strict=True) if m))
        top.sort(key=lambda w: first.index(w) if w in first else len(first))
        names[int(label)] = " ".join(top)
    return [int(x) for x in labels], names


# --- CSV ---------------------------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Spreadsheet-safe: text that a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def export_csv(kind: str, raw: RawInsights, start: str, end: str) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    if kind == "daily":
        cols = ("day", "questions", "agents", "tickets", "thumbs_up", "thumbs_down", "inserted", "drafts",
                "drafts_inserted", "declined", "wrong_sources", "errors", "cost_usd", "input_tokens",
                "output_tokens")  # fmt: skip
        out.writerow(cols)
        for d in raw.daily:
            out.writerow([_cell(getattr(d, c)) if c != "cost_usd" else f"{d.cost_usd:.6f}" for c in cols])
    elif kind == "agents":
        out.writerow(("user_id", "user_name", "day", "questions", "tickets", "inserted"))
        for a in raw.agents:
            out.writerow([_cell(a.user_id), _cell(a.user_name), a.day, a.questions, a.tickets, a.inserted])
    else:
        # The agent's own question, the ticket id and why it is a gap: no answer, no ticket text.
        rows, labels, names = _gap_topics(raw.gaps)
        out.writerow(("topic", "day", "ticket_id", "user_id", "reason", "question"))
        for g, label in zip(rows, labels, strict=True):
            reason = "+".join(
                r for r, on in (("declined", g.declined), ("wrong_sources", g.wrong_sources)) if on
            )
            day = datetime.fromtimestamp(g.asked_at, UTC).date().isoformat()
            topic = names.get(label) or g.question[:60]
            out.writerow([_cell(topic), day, _cell(g.ticket_id), _cell(g.user_id), reason, _cell(g.question)])
    return buf.getvalue()
