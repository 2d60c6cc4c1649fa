"""Zendesk authentication: the ZAF JWT of a signed sidebar URL, and our short-lived session tokens.

Flow (server-side app, `signedUrls: true` in the manifest):

1. Zendesk POSTs the sidebar URL with a form field `token`: an RS256 JWT signed with the app's
   private key. `ZafTokenVerifier.verify` checks what Zendesk documents ("Building a server-side
   app - Part 5: Securing the app", https://developer.zendesk.com/documentation/apps/build-an-app/building-a-server-side-app/part-5-secure-the-app/):
   the RS256 signature with the app's public key, `aud` = the installation URL (which carries the
   installation id), and `exp`/`iat` with leeway. Everything else is optional: `iss`, when sent,
   must name the account (with or without `https://`); the agent comes from `sub` or `context`
   when present. A token may be presented more than once (several ticket tabs can get identical
   tokens); replay is bounded by freshness (`iat` at most MAX_TOKEN_AGE_SECONDS old) and by
   sessions that count their age from the token's `iat`, and each presentation is counted.
2. The page is rendered with a session token (`SessionTokens.mint`, HS256 with the server secret,
   15 minutes by default) that the sidebar refreshes before it expires and presents on every
   Socket.IO connect; `ZendeskSessionAuthenticator` turns it into a Principal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.auth import ZENDESK_ROLES, AuthError, _token_from, group_ids_of
from orchestrator.turn import Principal

log = logging.getLogger(__name__)

# Zendesk's ZAF JWT: aud is the app installation's API URL (it names the account and installation).
_AUD = re.compile(
    r"^https://(?P<subdomain>[a-z0-9][a-z0-9\-]{0,62})\.zendesk\.com/api/v2/apps/installations/"
    r"(?P<installation_id>[0-9]{1,20})\.json$"
)
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.@\-]")
# A user given as an API URL ("https://acme.zendesk.com/api/v2/users/123.json") is user 123.
_USER_URL = re.compile(r"/api/v2/users/(?P<id>[0-9]{1,20})(?:\.json)?$")
MAX_ZAF_TOKEN_CHARS = 8192
# A little skew between Zendesk's clock and ours is tolerated on exp and iat.
LEEWAY_SECONDS = 30
# Zendesk signs the token for the page load that POSTs it, seconds before; an older token is a
# replay whatever its exp says. Generous, so a slow network never refuses a real load.
MAX_TOKEN_AGE_SECONDS = 600
SESSION_ISSUER = "sidebar-assistant"
SESSION_AUDIENCE = "sidebar-assistant.session"


def installation_audience(subdomain: str, installation_id: str) -> str:
    return f"https://{subdomain}.zendesk.com/api/v2/apps/installations/{installation_id}.json"


class Installation(BaseModel):
    """One installed copy of the app: which Zendesk account, which key, which of our tenants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subdomain: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,62}$")
    installation_id: str = Field(pattern=r"^[0-9]{1,20}$")
    public_key: str = Field(description="PEM of the app's RSA public key (Zendesk shows it per app).")
    tenant: str = Field("", pattern=r"^$|^[A-Za-z0-9_.@\-]{1,128}$")

    @field_validator("installation_id", mode="before")
    @classmethod
    def _id_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("public_key")
    @classmethod
    def _pem(cls, v: str) -> str:
        try:
            key = serialization.load_pem_public_key(v.encode())
        except ValueError as exc:
            raise ValueError(f"public_key is not a PEM public key ({exc})") from None
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
            raise ValueError("public_key must be an RSA key of at least 2048 bits")
        return v

    @property
    def tenant_name(self) -> str:
        return self.tenant or self.subdomain


class TenantConfig(BaseModel):
    """The `ZENDESK_TENANTS_FILE`: `{"installations": [{subdomain, installation_id, public_key, tenant?}]}`."""

    model_config = ConfigDict(extra="forbid")

    installations: list[Installation] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> TenantConfig:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read Zendesk tenant config {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"Zendesk tenant config {path} is not JSON: {exc.msg} (line {exc.lineno})"
            ) from None
        try:
            config = cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"Zendesk tenant config {path}: {where}: {first['msg']}") from None
        return config


@dataclass(frozen=True)
class ZafIdentity:
    """What a verified ZAF JWT says: the account, the installation, the agent."""

    tenant: str
    subdomain: str
    installation_id: str
    user_id: str
    user_name: str
    origin: str
    # When Zendesk signed the token: sessions minted from it count their age from here, so
    # presenting the same token again never buys a longer session.
    issued_at: float = 0.0
    # How often this exact token has been presented (1 for the first); several tabs may share one.
    presentations: int = 1
    # False when the token named no agent: the identity is then this page load's alone.
    user_from_token: bool = True
    # The agent's group ids when the signed token carries them (`context.user.groups`); None:
    # unknown, so articles restricted to groups are not shown. Never taken from the browser.
    group_ids: tuple[str, ...] | None = None
    # The agent's Zendesk role when the signed token carries it (`context.user.role`: "admin",
    # "agent"); None: unknown, which never opens anything reserved to admins.
    role: str | None = None

    def principal(self) -> Principal:
        return Principal(self.tenant, self.user_id, self.user_name, self.group_ids)


class PresentationLog(Protocol):
    def record(self, key: str, ttl_seconds: int) -> int: ...


class RedisPresentationLog:
    """Counts presentations of each token (`INCR` + `EXPIRE` until the token expires anyway).

    A count, never a refusal: Zendesk documents no `jti`, and RS256 tokens with identical claims
    are identical, so a second ticket tab can legitimately present the same token. Accounting only,
    so a Redis failure logs and lets the verified token through."""

    def __init__(self, client: Any, prefix: str = "zaf:seen:") -> None:
        self._client = client
        self._prefix = prefix

    def record(self, key: str, ttl_seconds: int) -> int:
        try:
            pipe = self._client.pipeline()
            pipe.incr(self._prefix + key)
            pipe.expire(self._prefix + key, max(1, ttl_seconds))
            count, _ = pipe.execute()
            return int(count)
        except Exception as exc:  # accounting must never block a verified sign-in
            log.warning("zaf token presentation not recorded: %s", type(exc).__name__)
            return 0


class ZafTokenVerifier:
    def __init__(
        self,
        installations: Iterable[Installation],
        presentations: PresentationLog,
        *,
        max_token_age_seconds: int = MAX_TOKEN_AGE_SECONDS,
    ) -> None:
        self._installations = list(installations)
        self._presentations = presentations
        self.max_token_age_seconds = max_token_age_seconds

    def _find(self, subdomain: str, installation_id: str) -> Installation | None:
        for inst in self._installations:
            if inst.subdomain == subdomain and inst.installation_id == installation_id:
                return inst
        return None

    def verify(self, token: Any, *, now: float | None = None) -> ZafIdentity:
        """Verify what Zendesk documents or raise AuthError; the message never contains the token or claims."""
        if not isinstance(token, str) or not token or len(token) > MAX_ZAF_TOKEN_CHARS:
            raise AuthError("missing or malformed token")
        try:
            header = jwt.get_unverified_header(token)
            # Unverified only to pick the installation's key; everything is verified below.
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        if header.get("alg") != "RS256":
            raise AuthError("invalid token: RS256 expected")
        inst = self._installation_of(unverified.get("aud"))
        now = time.time() if now is None else now
        try:
            claims = jwt.decode(
                token,
                inst.public_key,
                algorithms=["RS256"],
                audience=installation_audience(inst.subdomain, inst.installation_id),
                leeway=LEEWAY_SECONDS,
                # Documented: signature, aud, exp, iat. iss is checked below, in both forms; sub
                # and jti are not promised in any form (PyJWT >= 2.10 would refuse a numeric sub).
                options={
                    "require": ["exp", "iat", "aud"],
                    "verify_iss": False,
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("invalid token: wrong audience") from None
        except jwt.InvalidSignatureError:
            raise AuthError("invalid token: bad signature") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("invalid token: issued in the future") from None
        except jwt.PyJWTError:
            raise AuthError("invalid token") from None
        if "iss" in claims and not _issuer_matches(claims["iss"], inst.subdomain):
            raise AuthError("invalid token: wrong issuer")
        issued_at = float(claims["iat"])
        if now - issued_at > self.max_token_age_seconds + LEEWAY_SECONDS:
            raise AuthError("token expired")
        named = _user_of(claims)
        user = named
        if user is None:
            # Zendesk does not promise an agent in the token. An identity of this page load alone
            # keeps agents apart (never one shared "unknown" user); the thread lasts the load.
            user = (f"zaf-{secrets.token_hex(8)}", "")
            log.warning("zaf token for %s/%s names no user", inst.subdomain, inst.installation_id)
        ttl = int(float(claims["exp"]) - now) + LEEWAY_SECONDS
        seen = self._presentations.record(hashlib.sha256(token.encode()).hexdigest(), ttl)
        if seen > 1:
            log.info("zaf token presented %d times (%s/%s)", seen, inst.subdomain, inst.installation_id)
        return ZafIdentity(
            tenant=inst.tenant_name,
            subdomain=inst.subdomain,
            installation_id=inst.installation_id,
            user_id=user[0],
            user_name=user[1],
            origin=f"https://{inst.subdomain}.zendesk.com",
            issued_at=min(issued_at, now),
            presentations=max(seen, 1),
            user_from_token=named is not None,
            group_ids=_groups_of(claims) if named is not None else None,
            role=_role_of(claims) if named is not None else None,
        )

    def _installation_of(self, aud: Any) -> Installation:
        # RFC 7519 allows aud as a string or a list of strings.
        for candidate in aud if isinstance(aud, list) else [aud]:
            match = _AUD.match(candidate) if isinstance(candidate, str) else None
            if match:
                inst = self._find(match["subdomain"], match["installation_id"])
                if inst is None:
                    raise AuthError("unknown app installation")
                return inst
        raise AuthError("invalid token: audience is not an app installation")


def _issuer_matches(iss: Any, subdomain: str) -> bool:
    """`<subdomain>.zendesk.com`, as Zendesk's examples write it, or the same with `https://`."""
    host = f"{subdomain}.zendesk.com"
    return isinstance(iss, str) and iss.rstrip("/") in (host, f"https://{host}")


def _user_of(claims: dict[str, Any]) -> tuple[str, str] | None:
    """The agent, when the token names one: `sub`, `context.user_id` or `context.user.id`."""
    context = claims.get("context") if isinstance(claims.get("context"), dict) else {}
    user = context.get("user") if isinstance(context.get("user"), dict) else {}
    for raw_id in (claims.get("sub"), context.get("user_id"), user.get("id")):
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id).strip() == "":
            continue
        text = str(raw_id).strip()
        match = _USER_URL.search(text)
        user_id = _SAFE_ID.sub("_", match["id"] if match else text)[:128]
        name = claims.get("name") or user.get("name") or ""
        return user_id, str(name)[:128] if isinstance(name, str) else ""
    return None


def _groups_of(claims: dict[str, Any]) -> tuple[str, ...] | None:
    """The agent's groups when the signed token carries them. Zendesk documents no group claim,
    so this reads `context.user.groups` (ids or group objects, ZAF's currentUser shape) and
    otherwise returns None (unknown)."""
    context = claims.get("context") if isinstance(claims.get("context"), dict) else {}
    user = context.get("user") if isinstance(context.get("user"), dict) else {}
    return group_ids_of(user.get("groups"))


def _role_of(claims: dict[str, Any]) -> str | None:
    """The agent's role when the signed token carries it. Zendesk documents no role claim, so this
    reads `context.user.role` (ZAF's currentUser shape: "end-user", "agent" or "admin", as the
    Users API's `role`) and otherwise returns None. Never taken from the browser."""
    context = claims.get("context") if isinstance(claims.get("context"), dict) else {}
    user = context.get("user") if isinstance(context.get("user"), dict) else {}
    role = user.get("role")
    return role if role in ZENDESK_ROLES else None


class SessionTokens:
    """Short-lived HS256 session tokens for the Socket.IO connect; refreshable up to a hard limit."""

    def __init__(self, secret: str, ttl_seconds: int = 900, max_age_seconds: int = 12 * 3600) -> None:
        if len(secret) < 16:
            raise ValueError("the session token secret must be at least 16 characters")
        # A key of its own, derived from the server secret (which also signs dev tokens).
        self._secret = hashlib.sha256(b"sidebar-assistant.session-token\x00" + secret.encode()).digest()
        self.ttl_seconds = ttl_seconds
        self.max_age_seconds = max_age_seconds

    def mint(self, principal: Principal, *, auth_time: float | None = None, now: float | None = None) -> str:
        now = time.time() if now is None else now
        auth_time = now if auth_time is None else auth_time
        # Never past the absolute limit: a tab refreshing forever must come back through Zendesk.
        exp = min(now + self.ttl_seconds, auth_time + self.max_age_seconds)
        return jwt.encode(
            {
                "iss": SESSION_ISSUER,
                "aud": SESSION_AUDIENCE,
                "sub": principal.user_id,
                "tenant": principal.tenant,
                "name": principal.user_name,
                # Carried from the verified Zendesk token; absent when unknown.
                **({"groups": list(principal.group_ids)} if principal.group_ids is not None else {}),
                "iat": int(now),
                "exp": int(exp),
                "auth_time": int(auth_time),
            },
            self._secret,
            algorithm="HS256",
        )

    def verify(self, token: str, *, allow_expired: bool = False) -> tuple[Principal, dict[str, Any]]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=SESSION_AUDIENCE,
                issuer=SESSION_ISSUER,
                options={"require": ["exp", "iat", "sub", "auth_time"], "verify_exp": not allow_expired},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:  # a DecodeError subclass: must come first
            raise AuthError("invalid token") from None
        except jwt.DecodeError:
            raise AuthError("malformed token") from None
        except jwt.PyJWTError:
            raise AuthError("invalid token") from None
        tenant, sub = claims.get("tenant"), claims.get("sub")
        if not all(isinstance(v, str) and v and not _SAFE_ID.search(v) for v in (tenant, sub)):
            raise AuthError("invalid token claims")
        return Principal(
            tenant, sub, str(claims.get("name", ""))[:128], group_ids_of(claims.get("groups"))
        ), claims

    def refresh(self, token: str, *, now: float | None = None) -> str:
        """A fresh token for the same principal, until `max_age_seconds` after the Zendesk sign-in.

        An expired token may be refreshed too: a laptop that slept past the 15 minutes must be
        able to resume. Socket connects never accept an expired token; the refresh endpoint is
        bounded by the absolute limit instead (an access/refresh pair folded into one token)."""
        principal, claims = self.verify(token, allow_expired=True)
        now = time.time() if now is None else now
        auth_time = float(claims["auth_time"])
        if now >= auth_time + self.max_age_seconds:
            raise AuthError("session too old: reopen the app from Zendesk")
        return self.mint(principal, auth_time=auth_time, now=now)


class ZendeskSessionAuthenticator:
    """AUTH_MODE=zendesk: a Socket.IO connect presents the session token from the sidebar page."""

    def __init__(self, tokens: SessionTokens) -> None:
        self.tokens = tokens

    def authenticate(self, auth_payload: Any) -> Principal:
        principal, _ = self.tokens.verify(_token_from(auth_payload))
        return principal
