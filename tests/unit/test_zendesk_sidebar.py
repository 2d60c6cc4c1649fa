"""The sidebar's HTTP side through Flask's test client: signed URL, refresh, harness, modes."""

from __future__ import annotations

import json
import re
import time

import pytest
import socketio
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.app import create_app
from backend.auth import AuthError, DevTokenAuthenticator
from backend.dev_auth import public_pem, sign_zaf_token
from backend.sidebar import demo_tickets
from tests.conftest import TEST_SECRET


@pytest.fixture
def make_app(settings):
    apps = []

    def make(**updates):
        app = create_app(settings.model_copy(update=updates))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["sidebar"].shutdown()


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def zendesk_app(make_app, tmp_path, key):
    tenants = tmp_path / "tenants.json"
    tenants.write_text(
        json.dumps(
            {
                "installations": [
                    {
                        "subdomain": "acme",
                        "installation_id": "77",
                        "public_key": public_pem(key),
                        "tenant": "acme",
                    }
                ]
            }
        )
    )
    return make_app(auth_mode="zendesk", zendesk_tenants_file=tenants)


def config_of(html: str) -> dict:
    match = re.search(r'<script id="sidebar-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no sidebar config in the page"
    return json.loads(match.group(1))


def zaf(key, **kw):
    args = {"subdomain": "acme", "installation_id": "77", "user_id": "42", "user_name": "Ada <b>Agent</b>"}
    return sign_zaf_token(key, **{**args, **kw})


def test_signed_url_renders_the_sidebar_with_a_session_token(zendesk_app, key):
    client = zendesk_app.test_client()
    resp = client.post(
        "/zendesk/sidebar?origin=https://acme.zendesk.com&app_guid=g1", data={"token": zaf(key)}
    )
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    config = config_of(html)
    assert config["user"]["name"] == "Ada <b>Agent</b>"
    assert "<b>Agent" not in html  # the name is JSON-escaped inside the script element
    principal = zendesk_app.extensions["sidebar"].authenticator.authenticate({"token": config["token"]})
    assert (principal.tenant, principal.user_id) == ("acme", "42")
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors https://acme.zendesk.com" in csp and "script-src 'self'" in csp
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("case", ["forged", "expired", "wrong_audience", "stale", "missing"])
def test_refused_tokens_get_an_error_page_without_user_data(zendesk_app, key, case):
    client = zendesk_app.test_client()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tok = {
        "forged": lambda: zaf(other),
        "expired": lambda: zaf(key, now=1_000_000),
        "wrong_audience": lambda: zaf(key, extra={"aud": "https://assistant.example.com/zendesk/sidebar"}),
        # Signed 20 minutes ago with an hour to live: a replay, whatever exp says.
        "stale": lambda: zaf(key, now=time.time() - 1200, ttl_seconds=3600),
        "missing": lambda: "",
    }[case]()
    resp = client.post("/zendesk/sidebar", data={"token": tok})
    assert resp.status_code == 401
    html = resp.get_data(as_text=True)
    assert 'id="auth-error"' in html
    assert "Ada" not in html and "sidebar-config" not in html and (not tok or tok not in html)
    if case in ("expired", "stale"):
        assert "expired" in html


def test_the_same_signed_url_opens_in_a_second_tab(zendesk_app, key):
    """Zendesk documents no jti; identical tokens for two tabs must both open the sidebar."""
    client = zendesk_app.test_client()
    signed = time.time() - 30
    tok = zaf(key, now=signed)
    pages = [client.post("/zendesk/sidebar", data={"token": tok}) for _ in range(2)]
    assert [p.status_code for p in pages] == [200, 200]
    tokens = zendesk_app.extensions["zendesk_sidebar"].tokens
    for page in pages:
        _, claims = tokens.verify(config_of(page.get_data(as_text=True))["token"])
        # The session's absolute limit counts from Zendesk's signature, not from this load.
        assert claims["auth_time"] == int(signed)


def test_zendesk_mode_has_no_harness_and_refuses_dev_tokens(zendesk_app):
    client = zendesk_app.test_client()
    assert client.get("/dev/sidebar").status_code == 404
    assert client.post("/dev/sidebar/zaf-token", json={}).status_code == 404
    dev_token = DevTokenAuthenticator(TEST_SECRET, 3600).mint("acme", "mallory")
    with pytest.raises(AuthError):
        zendesk_app.extensions["sidebar"].authenticator.authenticate({"token": dev_token})


def test_zendesk_mode_needs_a_tenant_file(make_app):
    with pytest.raises(ValueError, match="ZENDESK_TENANTS_FILE"):
        make_app(auth_mode="zendesk")


def test_plain_get_explains_instead_of_rendering(zendesk_app):
    resp = zendesk_app.test_client().get("/zendesk/sidebar")
    assert resp.status_code == 400
    assert "could not be verified" in resp.get_data(as_text=True)


def test_refresh_endpoint(zendesk_app, key):
    client = zendesk_app.test_client()
    token = config_of(client.post("/zendesk/sidebar", data={"token": zaf(key)}).get_data(as_text=True))[
        "token"
    ]
    resp = client.post("/zendesk/session/refresh", json={"token": token})
    assert resp.status_code == 200
    assert resp.json["expires_in"] == 900
    assert (
        zendesk_app.extensions["sidebar"].authenticator.authenticate({"token": resp.json["token"]}).user_id
        == "42"
    )
    assert client.post("/zendesk/session/refresh", json={"token": token + "x"}).status_code == 401
    assert client.post("/zendesk/session/refresh", json={}).status_code == 400
    assert client.post("/zendesk/session/refresh", data="nope").status_code == 400


def test_dev_harness_runs_the_same_verification(make_app):
    app = make_app(auth_mode="dev")
    client = app.test_client()
    page = client.get("/dev/sidebar")
    assert page.status_code == 200 and b'id="app-frame"' in page.data
    minted = client.post("/dev/sidebar/zaf-token", json={"user_id": "agent-7", "user_name": "Seven"}).json
    resp = client.post(minted["action"], data={"token": minted["token"]})
    token = config_of(resp.get_data(as_text=True))["token"]
    principal = app.extensions["sidebar"].authenticator.authenticate({"token": token})
    assert (principal.tenant, principal.user_id, principal.user_name) == ("demo", "agent-7", "Seven")
    # A second tab with the same token opens too (Zendesk documents no single use).
    assert client.post(minted["action"], data={"token": minted["token"]}).status_code == 200
    assert client.post("/dev/sidebar/zaf-token", json={"user_id": "bad id!"}).status_code == 400
    # The dev key persists in DATA_DIR: a second process verifies tokens signed by the first.
    assert (app.extensions["sidebar"].settings.data_dir / "dev_zaf_key.pem").exists()


def test_demo_tickets_from_an_export_or_built_in(tmp_path):
    path = tmp_path / "tickets.json"
    path.write_text(
        json.dumps(
            {
                "tickets": [
                    {"id": 1, "subject": "Solved one", "status": "solved", "requester_id": 5, "comments": []},
                    {
                        "id": 2,
                        "subject": "Open one",
                        "status": "open",
                        "requester_id": 5,
                        "tags": ["a"],
                        "custom_fields": [{"id": 9, "value": "x"}, {"id": 10, "value": None}],
                        "comments": [
                            {"author_id": 5, "body": "hello", "public": True},
                            {"author_id": 6, "body": "note", "public": False},
                        ],
                    },
                ]
            }
        )
    )
    first, second = demo_tickets(path)
    assert (first["id"], first["status"]) == (2, "open")  # open tickets first
    assert first["custom_fields"] == {"9": "x"}
    assert [c["author"]["role"] for c in first["comments"]] == ["end-user", "agent"]
    assert first["comments"][1]["public"] is False
    assert second["id"] == 1
    built_in = demo_tickets(tmp_path / "missing.json")
    assert len(built_in) >= 3 and all(t["subject"] for t in built_in)


def test_zendesk_mode_end_to_end_over_socketio(live_app, tmp_path, key):
    """Signed URL → session token → Socket.IO connect, join and a streamed answer on a live server."""
    import requests

    from testkit.client import SidebarClient

    tenants = tmp_path / "tenants.json"
    tenants.write_text(
        json.dumps(
            {"installations": [{"subdomain": "acme", "installation_id": "77", "public_key": public_pem(key)}]}
        )
    )
    server = live_app(settings={"auth_mode": "zendesk", "zendesk_tenants_file": tenants})
    page = requests.post(f"{server.url}/zendesk/sidebar", data={"token": zaf(key)}, timeout=10)
    assert page.status_code == 200
    token = config_of(page.text)["token"]
    client = SidebarClient()
    client.connect(server.url, token)
    try:
        state = client.join({"id": 5, "subject": "Where is my parcel?"})
        assert state["thread"] == []
        done = client.ask("q1", "where is it")
        assert done["message"]["text"] == "echo: where is it"
    finally:
        client.disconnect()
    # A dev token opens nothing in zendesk mode.
    intruder = SidebarClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        intruder.connect(server.url, DevTokenAuthenticator(TEST_SECRET, 3600).mint("acme", "42"))
    assert intruder.connect_errors[0]["message"] in ("malformed token", "invalid token")


@pytest.mark.parametrize("mode", ["dev", "zendesk"])
def test_the_sidebar_pages_and_the_socket_share_one_session_token_signer(make_app, tmp_path, key, mode):
    """Built once in create_app (backend/services.py): what the page mints, the connect accepts."""
    from orchestrator.turn import Principal

    tenants = tmp_path / "tenants.json"
    tenants.write_text(json.dumps({"installations": []}))
    app = make_app(auth_mode=mode, zendesk_tenants_file=tenants)
    svc = app.extensions["sidebar"]
    assert app.extensions["zendesk_sidebar"].tokens is svc.tokens
    principal = Principal("acme", "7", "Ann", ("900",))
    assert svc.authenticator.authenticate({"token": svc.tokens.mint(principal)}) == principal
