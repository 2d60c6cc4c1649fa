"""ZAF signed-URL tokens as Zendesk documents them, checked against our verifier.

What Zendesk documents ("Building a server-side app - Part 5: Securing the app",
https://developer.zendesk.com/documentation/apps/build-an-app/building-a-server-side-app/part-5-secure-the-app/):

    "Zendesk signs the ZAF JWT with an RSA digital signature known as RS256."
    "To decode the ZAF JWT, the PyJWT library needs your Zendesk app's public key and installation id."

and its validation code is `jwt.decode(token, key, algorithms=['RS256'], audience=audience)` with
`ZENDESK_APP_AUD = https://{subdomain}.zendesk.com/api/v2/apps/installations/{installation_id}.json`:
the signature with the app's public key (GET /api/v2/apps/{app_id}/public_key.pem, "Get App Public
Key", https://developer.zendesk.com/api-reference/ticketing/apps/apps/#get-app-public-key), the
audience, and the expiry. Nothing there promises a `jti`, a user id in `sub` or at a `context`
path, or one exact `iss` form (verifiers in the wild accept `acme.zendesk.com` and
`https://acme.zendesk.com`).

The tokens here are built without our signer (backend.dev_auth.sign_zaf_token): header and
claims are serialised and RS256-signed with `cryptography` directly, in the shape of the
tutorial's example account, and the tutorial's own check is run next to ours as the reference.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from backend.auth import AuthError
from backend.dev_auth import public_pem
from backend.zendesk_auth import (
    LEEWAY_SECONDS,
    Installation,
    RedisPresentationLog,
    ZafTokenVerifier,
)

SUBDOMAIN, INSTALLATION_ID = "acme", "360001234567"
ZENDESK_APP_AUD = f"https://{SUBDOMAIN}.zendesk.com/api/v2/apps/installations/{INSTALLATION_ID}.json"


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def verifier(app_key, redis_client) -> ZafTokenVerifier:
    inst = Installation(subdomain=SUBDOMAIN, installation_id=INSTALLATION_ID, public_key=public_pem(app_key))
    return ZafTokenVerifier([inst], RedisPresentationLog(redis_client))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rs256(key: rsa.RSAPrivateKey, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """A compact JWS (RFC 7515) signed RS256 (RSASSA-PKCS1-v1_5 with SHA-256), written out by hand."""
    head = _b64(json.dumps(header or {"typ": "JWT", "alg": "RS256"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(signature)}"


def documented_claims(now: float, **changes: Any) -> dict[str, Any]:
    """The claims the documentation names (aud, exp, iat, iss) for the example installation."""
    claims: dict[str, Any] = {
        "iss": f"{SUBDOMAIN}.zendesk.com",
        "aud": ZENDESK_APP_AUD,
        "iat": int(now),
        "exp": int(now) + 300,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def tutorial_accepts(token: str, key: rsa.RSAPrivateKey) -> bool:
    """The tutorial's check. (PyJWT >= 2.10 also insists that a `sub` is a string, which the
    tutorial's pinned PyJWT did not and Zendesk does not promise: that one check is off here.)"""
    try:
        jwt.decode(
            token,
            public_pem(key),
            algorithms=["RS256"],
            audience=ZENDESK_APP_AUD,
            options={"verify_sub": False},
        )
    except jwt.InvalidTokenError:
        return False
    return True


ACCEPTED = {
    "documented claims only, no user": {},
    "iss with https://": {"iss": f"https://{SUBDOMAIN}.zendesk.com"},
    "no iss": {"iss": None},
    "numeric sub": {"sub": 1234},
    "sub as a user API URL": {"sub": f"https://{SUBDOMAIN}.zendesk.com/api/v2/users/1234.json"},
    "context and a query-string hash": {
        "qsh": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        "context": {"product": "support", "location": "ticket_sidebar"},
    },
    "aud as a list": {"aud": [ZENDESK_APP_AUD]},
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_tokens_the_documentation_allows_are_accepted(verifier, app_key, case):
    now = time.time()
    tok = rs256(app_key, documented_claims(now, **ACCEPTED[case]))
    assert tutorial_accepts(tok, app_key)
    identity = verifier.verify(tok)
    assert (identity.subdomain, identity.installation_id) == (SUBDOMAIN, INSTALLATION_ID)
    assert identity.origin == f"https://{SUBDOMAIN}.zendesk.com"
    if "sub" in ACCEPTED[case]:
        assert identity.user_id == "1234" and identity.user_from_token
    assert identity.issued_at == int(now)


def test_the_same_token_opens_in_several_tabs_at_once(verifier, app_key):
    """RS256 over identical claims gives identical tokens; tabs opened together must all open."""
    now = time.time()
    a = rs256(app_key, documented_claims(now, sub=42))
    assert a == rs256(app_key, documented_claims(now, sub=42))  # deterministic: PKCS#1 v1.5
    results: list[Any] = []

    def open_tab() -> None:
        try:
            results.append(verifier.verify(a))
        except AuthError as exc:  # pragma: no cover - the failure this test exists to catch
            results.append(exc)

    tabs = [threading.Thread(target=open_tab) for _ in range(4)]
    for t in tabs:
        t.start()
    for t in tabs:
        t.join()
    assert all(not isinstance(r, AuthError) for r in results), results
    assert sorted(r.presentations for r in results) == [1, 2, 3, 4]
    assert {r.user_id for r in results} == {"42"}


def test_a_replayed_token_buys_no_longer_session(verifier, app_key):
    """Sessions minted from a token count their age from its iat, not from each presentation."""
    signed = time.time() - 120
    tok = rs256(app_key, documented_claims(signed, sub=7))
    assert verifier.verify(tok).issued_at == int(signed)
    assert verifier.verify(tok).issued_at == int(signed)


REFUSED = {
    "expired beyond the leeway": ({"exp": -LEEWAY_SECONDS - 5}, "token expired"),
    "other installation": (
        {"aud": f"https://{SUBDOMAIN}.zendesk.com/api/v2/apps/installations/1.json"},
        "unknown app installation",
    ),
    "not an installation URL": ({"aud": "https://assistant.example.com/zendesk/sidebar"}, "audience"),
    "iss of another account": ({"iss": "globex.zendesk.com"}, "wrong issuer"),
    "no exp": ({"exp": None}, "invalid token"),
    "no aud": ({"aud": None}, "audience"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_tokens_the_documentation_rules_out_are_refused(verifier, app_key, case):
    now = time.time()
    changes, reason = REFUSED[case]
    changes = {k: (int(now) + v if k == "exp" and isinstance(v, int) else v) for k, v in changes.items()}
    tok = rs256(app_key, documented_claims(now, **changes))
    with pytest.raises(AuthError, match=reason):
        verifier.verify(tok)


def test_signature_must_be_the_apps_key(verifier, app_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tok = rs256(other, documented_claims(time.time()))
    assert not tutorial_accepts(tok, app_key)
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify(tok)
    hs = jwt.encode(documented_claims(time.time()), "guessable-shared-secret-of-length", algorithm="HS256")
    with pytest.raises(AuthError, match="RS256 expected"):
        verifier.verify(hs)


def test_exp_and_iat_allow_clock_skew(verifier, app_key):
    now = time.time()
    just_expired = documented_claims(now, exp=int(now) - LEEWAY_SECONDS // 2)
    assert verifier.verify(rs256(app_key, just_expired))
    ahead = documented_claims(now, iat=int(now) + LEEWAY_SECONDS // 2)  # Zendesk's clock a bit fast
    assert verifier.verify(rs256(app_key, ahead))
    with pytest.raises(AuthError, match="future"):
        verifier.verify(rs256(app_key, documented_claims(now, iat=int(now) + 10 * LEEWAY_SECONDS)))


def test_a_stale_token_is_refused_even_if_its_exp_is_far(verifier, app_key):
    """Replay defence without single use: a token is good for minutes after Zendesk signed it."""
    old = time.time() - verifier.max_token_age_seconds - 2 * LEEWAY_SECONDS
    tok = rs256(app_key, documented_claims(old, exp=int(time.time()) + 3600))
    assert tutorial_accepts(tok, app_key)  # the tutorial's check alone would take it
    with pytest.raises(AuthError, match="token expired"):
        verifier.verify(tok)
