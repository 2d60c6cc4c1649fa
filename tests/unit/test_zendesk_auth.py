"""ZAF JWT verification (signature, expiry, audience, issuer, installation, presentations), session tokens."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.auth import AuthError, DevTokenAuthenticator
from backend.dev_auth import DevModeAuthenticator, public_pem, sign_zaf_token
from backend.zendesk_auth import (
    Installation,
    RedisPresentationLog,
    SessionTokens,
    TenantConfig,
    ZafTokenVerifier,
    ZendeskSessionAuthenticator,
)
from orchestrator.turn import Principal

SECRET = "unit-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def verifier(key, other_key, redis_client) -> ZafTokenVerifier:
    return ZafTokenVerifier(
        [
            Installation(
                subdomain="acme", installation_id="77", public_key=public_pem(key), tenant="acme-co"
            ),
            Installation(subdomain="globex", installation_id="88", public_key=public_pem(other_key)),
        ],
        RedisPresentationLog(redis_client),
    )


def token(key, **kw) -> str:
    args = {"subdomain": "acme", "installation_id": "77", "user_id": "1234", "user_name": "Ada Agent"}
    args.update(kw)
    return sign_zaf_token(key, **args)


def refused(verifier, tok) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(tok)
    message = str(info.value)
    assert "Ada" not in message and (not isinstance(tok, str) or not tok or tok not in message)
    return message


def test_valid_token_gives_tenant_user_and_origin(verifier, key):
    identity = verifier.verify(token(key))
    assert identity.tenant == "acme-co"
    assert (identity.subdomain, identity.installation_id) == ("acme", "77")
    assert (identity.user_id, identity.user_name) == ("1234", "Ada Agent")
    assert identity.origin == "https://acme.zendesk.com"
    assert identity.principal() == Principal("acme-co", "1234", "Ada Agent")


def test_tenant_defaults_to_the_subdomain(verifier, other_key):
    assert verifier.verify(token(other_key, subdomain="globex", installation_id="88")).tenant == "globex"


def test_forged_signature_is_refused(verifier, other_key):
    assert refused(verifier, token(other_key)) == "invalid token: bad signature"


def test_tampered_claims_are_refused(verifier, key):
    header, _, sig = token(key).split(".")
    claims = jwt.decode(token(key), options={"verify_signature": False})
    claims["sub"] = "999"
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert refused(verifier, f"{header}.{body}.{sig}") == "invalid token: bad signature"


def test_expired_token_is_refused(verifier, key):
    assert refused(verifier, token(key, now=time.time() - 600, ttl_seconds=300)) == "token expired"


def test_wrong_audience_is_refused(verifier, key):
    not_installation = token(key, extra={"aud": "https://evil.example.com/zendesk/sidebar"})
    assert refused(verifier, not_installation) == "invalid token: audience is not an app installation"
    # A token for one account's installation, signed with another account's key.
    assert (
        refused(verifier, token(key, subdomain="globex", installation_id="88"))
        == "invalid token: bad signature"
    )


def test_wrong_issuer_is_refused(verifier, key):
    assert refused(verifier, token(key, extra={"iss": "globex.zendesk.com"})) == "invalid token: wrong issuer"


def test_unknown_installation_is_refused(verifier, key):
    assert refused(verifier, token(key, installation_id="78")) == "unknown app installation"
    assert refused(verifier, token(key, subdomain="initech")) == "unknown app installation"


def test_presentations_are_counted_until_the_token_expires(verifier, key, redis_client):
    tok = token(key, ttl_seconds=60)
    assert [verifier.verify(tok).presentations for _ in range(3)] == [1, 2, 3]
    (name,) = redis_client.keys("zaf:seen:*")
    assert 60 < redis_client.ttl(name) <= 60 + 30
    assert tok not in name.decode() if isinstance(name, bytes) else tok not in name


@pytest.mark.parametrize("bad", [None, "", 42, "a" * 9000, "not.a.jwt", "abc"])
def test_malformed_tokens_are_refused(verifier, bad):
    assert "token" in refused(verifier, bad)


def test_algorithm_confusion_is_refused(verifier, key):
    claims = jwt.decode(token(key), options={"verify_signature": False})
    hs = jwt.encode(claims, "a-guessable-secret-of-some-length", algorithm="HS256")
    assert refused(verifier, hs) == "invalid token: RS256 expected"
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert refused(verifier, unsigned) == "invalid token: RS256 expected"


def test_token_without_a_user_gets_an_identity_of_its_own(verifier, key):
    tok = token(key, extra={"sub": None, "context": {"product": "support"}})
    first, second = verifier.verify(tok), verifier.verify(tok)
    assert not first.user_from_token and first.user_id.startswith("zaf-")
    # Never one shared "unknown" agent: two loads of the same token are two identities.
    assert first.user_id != second.user_id and first.tenant == second.tenant == "acme-co"


def test_user_ids_are_made_safe(verifier, key):
    identity = verifier.verify(token(key, user_id="a b/c<d>"))
    assert identity.user_id == "a_b_c_d_"


def test_tenant_config_loads_and_reports_errors(tmp_path, key):
    path = tmp_path / "tenants.json"
    path.write_text(
        json.dumps(
            {"installations": [{"subdomain": "acme", "installation_id": 77, "public_key": public_pem(key)}]}
        )
    )
    (inst,) = TenantConfig.load(path).installations
    assert (inst.subdomain, inst.installation_id, inst.tenant_name) == ("acme", "77", "acme")
    path.write_text(
        json.dumps({"installations": [{"subdomain": "acme", "installation_id": 1, "public_key": "nope"}]})
    )
    with pytest.raises(ValueError, match="public_key is not a PEM public key"):
        TenantConfig.load(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="is not JSON"):
        TenantConfig.load(path)
    with pytest.raises(ValueError, match="cannot read"):
        TenantConfig.load(tmp_path / "missing.json")
    path.write_text(
        json.dumps(
            {"installations": [{"subdomain": "Bad Sub", "installation_id": 1, "public_key": public_pem(key)}]}
        )
    )
    with pytest.raises(ValueError, match="subdomain"):
        TenantConfig.load(path)


# --- session tokens ---------------------------------------------------------------------------

ADA = Principal("acme-co", "1234", "Ada Agent")


def test_session_token_round_trip_and_connect():
    tokens = SessionTokens(SECRET, ttl_seconds=900)
    tok = tokens.mint(ADA)
    assert tokens.verify(tok)[0] == ADA
    assert ZendeskSessionAuthenticator(tokens).authenticate({"token": tok}) == ADA


def test_expired_session_token_refuses_connect_but_refreshes():
    tokens = SessionTokens(SECRET, ttl_seconds=900, max_age_seconds=3600)
    old = tokens.mint(ADA, now=time.time() - 1000)
    auth = ZendeskSessionAuthenticator(tokens)
    with pytest.raises(AuthError, match="token expired"):
        auth.authenticate({"token": old})
    fresh = tokens.refresh(old)
    assert auth.authenticate({"token": fresh}) == ADA
    claims = jwt.decode(fresh, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900
    # The original sign-in time is carried over: refreshing never extends the absolute limit.
    assert claims["auth_time"] == jwt.decode(old, options={"verify_signature": False})["auth_time"]


def test_refresh_stops_at_the_absolute_limit():
    tokens = SessionTokens(SECRET, ttl_seconds=900, max_age_seconds=3600)
    signed_in = time.time() - 3500
    tok = tokens.mint(ADA, auth_time=signed_in, now=signed_in + 3000)
    # The last token expires with the session, not 15 minutes later.
    assert jwt.decode(tok, options={"verify_signature": False})["exp"] == int(signed_in + 3600)
    tokens.refresh(tok)  # still inside the limit
    with pytest.raises(AuthError, match="session too old"):
        tokens.refresh(tok, now=signed_in + 3601)


def test_session_tokens_from_another_secret_or_tampered_are_refused():
    tokens = SessionTokens(SECRET)
    other = SessionTokens("another-secret-0123456789abcdef")
    with pytest.raises(AuthError, match="invalid token"):
        tokens.verify(other.mint(ADA))
    header, body, sig = tokens.mint(ADA).split(".")
    with pytest.raises(AuthError):
        tokens.verify(f"{header}.{body}x.{sig}")
    with pytest.raises(AuthError, match="malformed"):
        tokens.verify("garbage")
    with pytest.raises(AuthError, match="missing token"):
        ZendeskSessionAuthenticator(tokens).authenticate({})
    with pytest.raises(ValueError, match="at least 16"):
        SessionTokens("short")


def test_dev_mode_accepts_both_token_kinds_and_reports_expiry():
    tokens = SessionTokens(SECRET)
    dev = DevTokenAuthenticator(SECRET, 3600)
    both = DevModeAuthenticator(SECRET, 3600, ZendeskSessionAuthenticator(tokens))
    assert both.authenticate({"token": dev.mint("demo", "u1")}).user_id == "u1"
    assert both.authenticate({"token": tokens.mint(ADA)}) == ADA
    with pytest.raises(AuthError, match="token expired"):
        both.authenticate({"token": tokens.mint(ADA, now=time.time() - 2000)})
    with pytest.raises(AuthError, match="invalid token"):
        both.authenticate({"token": "x.y.z"})
