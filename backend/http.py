"""Plain HTTP routes: liveness, readiness and a small index page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis
from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from store.sessions import ArchiveError

if TYPE_CHECKING:
    from backend.services import Services

bp = Blueprint("http", __name__)


def _svc() -> Services:
    return current_app.extensions["sidebar"]


@bp.get("/healthz")
def healthz():
    """Process is alive; says nothing about its dependencies (Cloud Run liveness)."""
    return jsonify(status="ok", instance=_svc().instance_id)


@bp.get("/readyz")
def readyz():
    """Ready to serve: Redis and the archive both answer and the router is warm (a FunctionGemma
    router loads its model in the background at start); otherwise 503 with the reason."""
    svc = _svc()
    checks: dict[str, str] = {}
    try:
        svc.redis.ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    try:
        svc.archive.ping()
        checks["archive"] = "ok"
    except ArchiveError as exc:
        checks["archive"] = f"unreachable: {exc}"
    if svc.router_warmup is not None:
        checks["router"] = svc.router_warmup.status()
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), (200 if ready else 503)


@bp.get("/metrics")
def metrics():
    """Prometheus exposition of this instance's metrics."""
    return Response(generate_latest(_svc().metrics.registry), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/")
def index():
    svc = _svc()
    return jsonify(
        service="zendesk-sidebar-assistant",
        instance=svc.instance_id,
        auth_mode=svc.settings.auth_mode,
        socketio_path="/socket.io",
        docs="docs/protocol.md",
    )
