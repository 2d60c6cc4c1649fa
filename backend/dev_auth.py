"""AUTH_MODE=dev only: a local RSA key plays Zendesk's signing key, and dev tokens sign in scripts.

Nothing here is used by the production verifier (backend/zendesk_auth.py): the dev harness
(`/dev/sidebar`) signs ZAF-shaped tokens with this key so that the same verification path as
production runs on them, and tests and benchmarks sign their own tokens with it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.auth import AuthError, DevTokenAuthenticator
from backend.zendesk_auth import Installation, ZendeskSessionAuthenticator, installation_audience
from orchestrator.turn import Principal

DEV_SUBDOMAIN = "demo"
DEV_INSTALLATION_ID = "1"
DEV_TENANT = "demo"


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
    """A token shaped like the one Zendesk sends (dev harness and tests): no `jti`, as Zendesk
    documents none; the agent in `sub` and `context.user`, which the verifier reads when present."""
    now = time.time() if now is None else now
    claims: dict[str, Any] = {
        "iss": f"{subdomain}.zendesk.com",
        "aud": installation_audience(subdomain, installation_id),
        "sub": user_id,
        "iat": int(now),
        "exp": int(now + ttl_seconds),
        "context": {
            "product": "support",
            "location": "ticket_sidebar",
            "user": {"id": user_id, "name": user_name},
        },
    }
    claims.update(extra or {})
    # None in `extra` removes a claim (tests of tokens that lack one).
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256")
