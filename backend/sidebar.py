"""The Zendesk sidebar over HTTP: the signed sidebar URL, token refresh, built assets, dev harness.

- `POST /zendesk/sidebar`   Zendesk posts the ZAF JWT here (form field `token`); the answer is the
                            sidebar page with a short-lived session token, or an error page that
                            shows nothing of the user.
- `POST /zendesk/session/refresh`  `{token}` → `{token, expires_in}` before the old one expires.
- `GET  /zendesk/assets/…`  the bundle built from zendesk_app/ (committed under backend/static/sidebar).
- `GET  /dev/sidebar`       AUTH_MODE=dev only: a stand-in for Zendesk's parent frame around the
                            real sidebar, fed with demo tickets and a dev-signed ZAF JWT.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request

from backend.auth import AuthError
from backend.dev_auth import (
    DEV_INSTALLATION_ID,
    DEV_SUBDOMAIN,
    dev_installation,
    load_or_create_dev_key,
    sign_zaf_token,
)
from backend.zendesk_auth import (
    Installation,
    RedisPresentationLog,
    SessionTokens,
    TenantConfig,
    ZafTokenVerifier,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    from backend.services import Services

log = logging.getLogger(__name__)

bp = Blueprint(
    "zendesk_sidebar",
    __name__,
    template_folder="templates",
    static_folder="static/sidebar",
    static_url_path="/zendesk/assets",
)

# What an agent sees for each refusal: clear, and never any data from the token.
_ERROR_TEXT = {
    "token expired": "This sidebar link has expired. Reload the ticket to open the assistant again.",
    "unknown app installation": "This Zendesk installation is not set up for the assistant.",
}
_DEFAULT_ERROR = "The request could not be verified as coming from Zendesk."
_NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")


@dataclass
class SidebarAuth:
    verifier: ZafTokenVerifier
    tokens: SessionTokens
    dev_key: RSAPrivateKey | None  # AUTH_MODE=dev only


def register_sidebar(app: Flask, svc: Services) -> SidebarAuth:
    settings = svc.settings
    installations: list[Installation] = []
    if settings.zendesk_tenants_file:
        installations = TenantConfig.load(settings.zendesk_tenants_file).installations
    elif settings.auth_mode == "zendesk":
        raise ValueError("AUTH_MODE=zendesk needs ZENDESK_TENANTS_FILE (see docs/zendesk_app.md)")
    dev_key = None
    if settings.auth_mode == "dev":
        dev_key = load_or_create_dev_key(settings.data_dir)
        installations.append(dev_installation(dev_key))
    # The same session tokens the Socket.IO authenticator checks (built once, in create_app).
    auth = SidebarAuth(ZafTokenVerifier(installations, RedisPresentationLog(svc.redis)), svc.tokens, dev_key)
    app.extensions["zendesk_sidebar"] = auth
    app.register_blueprint(bp)
    return auth


def _auth() -> SidebarAuth:
    return current_app.extensions["zendesk_sidebar"]


def _dev_mode() -> bool:
    return current_app.extensions["sidebar"].settings.auth_mode == "dev"


def _secure(resp: Response, *, frame_ancestors: str) -> Response:
    host = request.host
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws://{host} wss://{host}; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {frame_ancestors}"
    )
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _error_page(reason: str, status: int = 401) -> Response:
    resp = Response(
        render_template("zendesk_error.html", message=_ERROR_TEXT.get(reason, _DEFAULT_ERROR)),
        status=status,
        mimetype="text/html",
    )
    return _secure(resp, frame_ancestors="'self' https://*.zendesk.com")


@bp.post("/zendesk/sidebar")
def sidebar():
    auth = _auth()
    try:
        identity = auth.verifier.verify(request.form.get("token"))
    except AuthError as exc:
        log.info("sidebar refused: %s", exc)
        return _error_page(str(exc))
    principal = identity.principal()
    config = {
        # The session's age counts from when Zendesk signed the token, however often it is shown.
        "token": auth.tokens.mint(principal, auth_time=identity.issued_at),
        "expiresIn": auth.tokens.ttl_seconds,
        "refreshUrl": "/zendesk/session/refresh",
        "socketPath": "/socket.io",
        "user": {"name": principal.user_name},
        "tenant": principal.tenant,
    }
    resp = Response(render_template("zendesk_sidebar.html", config=config), mimetype="text/html")
    ancestors = f"'self' {identity.origin}" if _dev_mode() else identity.origin
    return _secure(resp, frame_ancestors=ancestors)


@bp.get("/zendesk/sidebar")
def sidebar_get():
    # Zendesk always POSTs a signed URL; a plain visit gets an explanation, not a page.
    return _error_page("not signed", status=400)


@bp.post("/zendesk/session/refresh")
def refresh():
    body = request.get_json(silent=True)
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token or len(token) > 4096:
        return jsonify(error='missing token: POST {"token": ...}'), 400
    try:
        fresh = _auth().tokens.refresh(token)
    except AuthError as exc:
        return jsonify(error=str(exc)), 401
    resp = jsonify(token=fresh, expires_in=_auth().tokens.ttl_seconds)
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- dev harness ---------------------------------------------------------------------------------


@bp.get("/dev/sidebar")
def dev_harness():
    if not _dev_mode():
        abort(404)
    resp = Response(
        render_template("dev_harness.html", tickets=demo_tickets(), subdomain=DEV_SUBDOMAIN),
        mimetype="text/html",
    )
    return _secure(resp, frame_ancestors="'self'")


@bp.post("/dev/sidebar/zaf-token")
def dev_zaf_token():
    """A ZAF-shaped JWT signed with the dev key: the harness posts it to the sidebar URL, so the
    same verification path as production runs (signature, audience, issuer, expiry, freshness)."""
    if not _dev_mode():
        abort(404)
    body = request.get_json(silent=True) or {}
    user_id = body.get("user_id", "agent-1") if isinstance(body, dict) else "agent-1"
    user_name = body.get("user_name", "Demo Agent") if isinstance(body, dict) else "Demo Agent"
    if not isinstance(user_id, str) or not _NAME.match(user_id):
        return jsonify(error=f"user_id must match {_NAME.pattern}"), 400
    if not isinstance(user_name, str) or len(user_name) > 128:
        return jsonify(error="user_name must be a string of at most 128 characters"), 400
    key = _auth().dev_key
    assert key is not None
    token = sign_zaf_token(
        key,
        subdomain=DEV_SUBDOMAIN,
        installation_id=DEV_INSTALLATION_ID,
        user_id=user_id,
        user_name=user_name,
    )
    resp = jsonify(token=token, action="/zendesk/sidebar")
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- demo tickets --------------------------------------------------------------------------------

_BUILTIN_TICKETS: list[dict[str, Any]] = [
    {
        "id": 1001,
        "subject": "My order arrived damaged",
        "description": "Hi, the kettle I ordered arrived with a cracked lid. Can I get a replacement or a refund?",
        "status": "open",
        "priority": "normal",
        "type": "problem",
        "tags": ["damaged", "refund"],
        "requester": {"id": 501, "name": "Dana Customer", "email": "dana@example.com"},
        "comments": [
            {
                "author": {"id": 501, "name": "Dana Customer", "role": "end-user"},
                "value": "Hi, the kettle I ordered arrived with a cracked lid. Can I get a replacement or a refund?",
            }
        ],
        "custom_fields": {"Order number": "A-10042"},
    },
    {
        "id": 1002,
        "subject": "How do I reset my password?",
        "description": "I can't log in and the reset email never arrives.",
        "status": "new",
        "priority": "high",
        "type": "question",
        "tags": ["login"],
        "requester": {"id": 502, "name": "Sam Shopper", "email": "sam@example.com"},
        "comments": [],
        "custom_fields": {},
    },
    {
        "id": 1003,
        "subject": "Change the delivery address of order A-10077",
        "description": "I moved last week. Can you ship my order to my new address instead?",
        "status": "pending",
        "priority": "low",
        "type": "task",
        "tags": ["shipping", "address"],
        "requester": {"id": 503, "name": "Alex Buyer", "email": "alex@example.com"},
        "comments": [],
        "custom_fields": {"Order number": "A-10077"},
    },
]


def demo_tickets(path: Path | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Tickets for the harness picker, shaped like ZAF's `ticket` object. The demo tenant's
    tickets.json (Zendesk API export shape) when present, else a few built-in ones."""
    from store.demo import DEMO_DATA_DIR

    path = path or DEMO_DATA_DIR / "tickets" / "tickets.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return _BUILTIN_TICKETS
    items = raw.get("tickets") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        return _BUILTIN_TICKETS
    # Open tickets first: those are the ones an agent works on in the sidebar.
    items = sorted(
        (t for t in items if isinstance(t, dict) and t.get("id") is not None),
        key=lambda t: str(t.get("status", "")) in {"solved", "closed"},
    )
    users = _demo_users(path.parent.parent / "users.json")
    fields = _demo_field_titles()
    tickets = [_zaf_ticket(t, users, fields) for t in items[:limit]]
    return tickets or _BUILTIN_TICKETS


def _demo_users(path: Path) -> dict[Any, dict[str, Any]]:
    """users.json (Zendesk API shape) by id, for requester and comment author names."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    items = raw.get("users") if isinstance(raw, dict) else raw
    return {u["id"]: u for u in items or [] if isinstance(u, dict) and "id" in u}


def _demo_field_titles() -> dict[str, str]:
    try:  # the demo data builder knows the custom fields' titles; ids serve when it is absent
        from store.demo_data.build.tickets import TICKET_FIELDS
    except Exception:
        return {}
    return {str(f["id"]): str(f["title"]) for f in TICKET_FIELDS}


def _zaf_ticket(
    raw: dict[str, Any], users: dict[Any, dict[str, Any]], fields: dict[str, str]
) -> dict[str, Any]:
    requester_id = raw.get("requester_id")
    requester = users.get(requester_id, {})
    comments = []
    for c in raw.get("comments") or []:
        if not isinstance(c, dict):
            continue
        author = c.get("author_id")
        is_requester = requester_id is not None and author == requester_id
        user = users.get(author, {})
        comments.append(
            {
                "author": {
                    "id": author,
                    "name": user.get("name") or ("Requester" if is_requester else "Agent"),
                    "role": user.get("role") or ("end-user" if is_requester else "agent"),
                },
                "value": str(c.get("plain_body") or c.get("body") or ""),
                "public": c.get("public", True) is not False,
            }
        )
    custom = {
        fields.get(str(f.get("id")), str(f.get("id"))): f.get("value")
        for f in raw.get("custom_fields") or []
        if isinstance(f, dict) and f.get("value") not in (None, "")
    }
    return {
        "id": raw.get("id"),
        "subject": str(raw.get("subject") or raw.get("raw_subject") or ""),
        "description": str(raw.get("description") or ""),
        "status": str(raw.get("status") or "open"),
        "priority": raw.get("priority"),
        "type": raw.get("type"),
        "tags": [t for t in raw.get("tags") or [] if isinstance(t, str)],
        "requester": {
            "id": requester_id,
            "name": requester.get("name") or "Requester",
            "email": requester.get("email"),
            # ZAF's user object carries the user's locale, as the Users API does.
            "locale": requester.get("locale"),
        },
        "comments": comments,
        "custom_fields": custom,
        "updated_at": raw.get("updated_at") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
