"""Zendesk authentication: the ZAF JWT of a signed sidebar URL, and our short-lived session tokens.

Flow (server-side app, `signedUrls: true` in the manifest):

1. Zendesk POSTs the sidebar URL with a form field `token`: an RS256 JWT signed with the app's
   private key. `ZafTokenVerifier.verify` checks the signature with the installation's public key
   (tenant config), `exp`/`iat`, `iss` (the account host), `aud` (the installation URL, which
   carries the installation id) and that the token was never presented before (jti cache in Redis).
2. The page is rendered with a session token (`SessionTokens.mint`, HS256 with the server secret,
   15 minutes by default) that the sidebar refreshes before it expires and presents on every
   Socket.IO connect; `ZendeskSessionAuthenticator` turns it into a Principal.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.auth import AuthError, DevTokenAuthenticator, _token_from
from orchestrator.turn import Principal

# Zendesk's ZAF JWT: iss is the account host, aud the app installation's API URL.
_ISS = re.compile(r"^(?P<subdomain>[a-z0-9][a-z0-9\-]{0,62})\.zendesk\.com$")
_AUD = re.compile(
    r"^https://(?P<subdomain>[a-z0-9][a-z0-9\-]{0,62})\.zendesk\.com/api/v2/apps/installations/"
    r"(?P<installation_id>[0-9]{1,20})\.json$"
)
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.@\-]")
MAX_ZAF_TOKEN_CHARS = 8192
# Zendesk's tokens live for minutes; a little skew between clocks is tolerated.
LEEWAY_SECONDS = 30
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

    def principal(self) -> Principal:
        return Principal(self.tenant, self.user_id, self.user_name)


class ReplayCache(Protocol):
    def first_use(self, key: str, ttl_seconds: int) -> bool: ...


class RedisReplayCache:
    """`SET NX EX`: the first presentation of a token id wins, until the token would expire anyway."""

    def __init__(self, client: Any, prefix: str = "zaf:jti:") -> None:
        self._client = client
        self._prefix = prefix

    def first_use(self, key: str, ttl_seconds: int) -> bool:
        return bool(self._client.set(self._prefix + key, "1", nx=True, ex=max(1, ttl_seconds)))


class ZafTokenVerifier:
    def __init__(self, installations: Iterable[Installation], replay: ReplayCache) -> None:
        self._installations = list(installations)
        self._replay = replay

    def _find(self, subdomain: str, installation_id: str) -> Installation | None:
        for inst in self._installations:
            if inst.subdomain == subdomain and inst.installation_id == installation_id:
                return inst
        return None

    def verify(self, token: Any) -> ZafIdentity:
        """Verify everything or raise AuthError; the message never contains the token or claims."""
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
        aud = unverified.get("aud")
        match = _AUD.match(aud) if isinstance(aud, str) else None
        if not match:
            raise AuthError("invalid token: audience is not an app installation")
        inst = self._find(match["subdomain"], match["installation_id"])
        if inst is None:
            raise AuthError("unknown app installation")
        try:
            claims = jwt.decode(
                token,
                inst.public_key,
                algorithms=["RS256"],
                audience=installation_audience(inst.subdomain, inst.installation_id),
                issuer=f"{inst.subdomain}.zendesk.com",
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("invalid token: wrong audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("invalid token: wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise AuthError("invalid token: bad signature") from None
        except jwt.PyJWTError:
            raise AuthError("invalid token") from None
        user_id, user_name = _user_of(claims)
        # Replay: a signed URL is good for one page load. jti when Zendesk sends one, else the token.
        jti = claims.get("jti")
        key = (
            f"{inst.subdomain}:{jti}"
            if isinstance(jti, str) and jti
            else hashlib.sha256(token.encode()).hexdigest()
        )
        ttl = int(claims["exp"] - time.time()) + LEEWAY_SECONDS
        if not self._replay.first_use(key, ttl):
            raise AuthError("token already used")
        return ZafIdentity(
            tenant=inst.tenant_name,
            subdomain=inst.subdomain,
            installation_id=inst.installation_id,
            user_id=user_id,
            user_name=user_name,
            origin=f"https://{inst.subdomain}.zendesk.com",
        )


def _user_of(claims: dict[str, Any]) -> tuple[str, str]:
    """The agent: `sub` (or `context.user_id` / `context.user.id`), with a display name if given."""
    context = claims.get("context") if isinstance(claims.get("context"), dict) else {}
    user = context.get("user") if isinstance(context.get("user"), dict) else {}
    raw_id = claims.get("sub") or context.get("user_id") or user.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id) == "":
        raise AuthError("invalid token: no user")
    user_id = _SAFE_ID.sub("_", str(raw_id))[:128]
    name = claims.get("name") or user.get("name") or ""
    return user_id, str(name)[:128] if isinstance(name, str) else ""


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
        return Principal(tenant, sub, str(claims.get("name", ""))[:128]), claims

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


class DevModeAuthenticator(DevTokenAuthenticator):
    """AUTH_MODE=dev: dev tokens (scripts, tests) and session tokens from the /dev/sidebar harness.

    A DevTokenAuthenticator first, so everything that tunes or mints dev tokens keeps working."""

    def __init__(self, secret: str, max_age_seconds: int, sessions: ZendeskSessionAuthenticator) -> None:
        super().__init__(secret, max_age_seconds)
        self.sessions = sessions

    def authenticate(self, auth_payload: Any) -> Principal:
        try:
            return super().authenticate(auth_payload)
        except AuthError as dev_error:
            try:
                return self.sessions.authenticate(auth_payload)
            except AuthError as exc:
                # "token expired" tells the sidebar to refresh; otherwise the dev token's reason.
                raise (exc if str(exc) == "token expired" else dev_error) from None


# --- dev installation: a local RSA key plays Zendesk's signing key --------------------------------

DEV_SUBDOMAIN = "demo"
DEV_INSTALLATION_ID = "1"
DEV_TENANT = "demo"


def load_or_create_dev_key(data_dir: Path) -> rsa.RSAPrivateKey:
    """The dev harness's stand-in for Zendesk's app key, generated once into DATA_DIR."""
    path = Path(data_dir) / "dev_zaf_key.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_suffix(f".{time.monotonic_ns()}.tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # atomic; when instances race, the first key wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    return loaded


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def dev_installation(key: rsa.RSAPrivateKey) -> Installation:
    return Installation(
        subdomain=DEV_SUBDOMAIN,
        installation_id=DEV_INSTALLATION_ID,
        public_key=public_pem(key),
        tenant=DEV_TENANT,
    )


def sign_zaf_token(
    key: rsa.RSAPrivateKey,
    *,
    subdomain: str,
    installation_id: str,
    user_id: str,
    user_name: str,
    ttl_seconds: int = 300,
    now: float | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A token shaped like the one Zendesk sends (dev harness and tests)."""
    now = time.time() if now is None else now
    claims: dict[str, Any] = {
        "iss": f"{subdomain}.zendesk.com",
        "aud": installation_audience(subdomain, installation_id),
        "sub": user_id,
        "iat": int(now),
        "exp": int(now + ttl_seconds),
        "jti": hashlib.sha256(f"{now}:{time.perf_counter_ns()}:{user_id}".encode()).hexdigest()[:32],
        "context": {
            "product": "support",
            "location": "ticket_sidebar",
            "user": {"id": user_id, "name": user_name},
        },
    }
    claims.update(extra or {})
    # None in `extra` removes a claim (tests of tokens that lack one).
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256")
