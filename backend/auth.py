"""Authentication hook: every Socket.IO connect presents a token that becomes a Principal.

`AUTH_MODE=dev` uses HMAC-signed tokens minted by `sidebar-assistant dev-token` (and printed
by `make run`); `AUTH_MODE=zendesk` verifies the ZAF JWT flow behind the same interface.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any, Protocol

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from orchestrator.turn import Principal

_NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,128}$")
# Zendesk's user roles (https://developer.zendesk.com/api-reference/ticketing/users/users/, `role`).
ZENDESK_ROLES = ("end-user", "agent", "admin")
MAX_TOKEN_CHARS = 4096


class AuthError(Exception):
    """Refused connect. The message is safe to show: it never contains the token."""


class Authenticator(Protocol):
    def authenticate(self, auth_payload: Any) -> Principal: ...


def _token_from(auth_payload: Any) -> str:
    if not isinstance(auth_payload, dict) or not isinstance(auth_payload.get("token"), str):
        raise AuthError("missing token: connect with auth={'token': ...}")
    token = auth_payload["token"]
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise AuthError("malformed token")
    return token


class DevTokenAuthenticator:
    """Tokens signed with the server secret; for local development and tests only."""

    salt = "sidebar-assistant.dev-token"

    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=self.salt)
        self.max_age_seconds = max_age_seconds

    def mint(
        self,
        tenant: str,
        user_id: str,
        user_name: str = "",
        group_ids: tuple[str, ...] | None = None,
        role: str | None = None,
    ) -> str:
        for label, value in (("tenant", tenant), ("user_id", user_id)):
            if not _NAME.match(value):
                raise ValueError(f"{label} must match {_NAME.pattern}")
        claims: dict[str, Any] = {"tenant": tenant, "user_id": user_id, "user_name": user_name[:128]}
        if group_ids is not None:
            claims["group_ids"] = list(group_ids_of(list(group_ids)) or ())
        if role is not None:
            # The Zendesk role a dev token plays ("admin" opens the insights page, backend/insights.py).
            if role not in ZENDESK_ROLES:
                raise ValueError(f"role must be one of {ZENDESK_ROLES}")
            claims["role"] = role
        return self._serializer.dumps(claims)

    def role_of(self, auth_payload: Any) -> tuple[Principal, str | None]:
        """The principal and the Zendesk role a valid dev token carries (None: no role claim)."""
        principal = self.authenticate(auth_payload)
        claims = self._serializer.loads(_token_from(auth_payload), max_age=self.max_age_seconds)
        role = claims.get("role")
        return principal, role if role in ZENDESK_ROLES else None

    def authenticate(self, auth_payload: Any) -> Principal:
        token = _token_from(auth_payload)
        try:
            claims = self._serializer.loads(token, max_age=self.max_age_seconds)
        except SignatureExpired:
            raise AuthError("token expired") from None
        except BadSignature:
            raise AuthError("invalid token") from None
        if not isinstance(claims, dict) or not all(
            isinstance(claims.get(k), str) and _NAME.match(claims[k]) for k in ("tenant", "user_id")
        ):
            raise AuthError("invalid token claims")
        return Principal(
            claims["tenant"],
            claims["user_id"],
            str(claims.get("user_name", "")),
            group_ids_of(claims.get("group_ids")),
        )


_GROUP_ID = re.compile(r"^[0-9]{1,20}$")
MAX_GROUPS = 500


def group_ids_of(value: Any) -> tuple[str, ...] | None:
    """Zendesk group ids from a verified claim: a list of ids, or of group objects with an `id`
    (the shape of ZAF's `currentUser.groups`). None when absent or not a list (unknown)."""
    if not isinstance(value, list):
        return None
    out: list[str] = []
    for item in value[:MAX_GROUPS]:
        raw = item.get("id") if isinstance(item, dict) else item
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not _GROUP_ID.match(str(raw)):
            continue
        out.append(str(raw))
    return tuple(dict.fromkeys(out))


def load_or_create_secret(data_dir: Path) -> str:
    """A per-deployment secret kept in DATA_DIR, shared by every local instance."""
    path = data_dir / "secret_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = data_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        # link() is atomic and fails if the name exists: the first instance's secret wins.
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
