"""The A2A remote agent's pieces without a network: manifests, the outgoing message, part →
evidence mapping, cards → routing examples, credentials (incl. google-auth's real ID-token flow
against a local token endpoint), and serve-agents' caller authentication and request reading.

Shapes follow the A2A 1.0 specification (https://a2a-protocol.org/v1.0.0/specification/;
Part is one type with `text` / `raw` / `url` / `data`, Artifact has `artifactId`, `name`,
`parts`; the card lists `skills[].examples`). Cloud Run service-to-service auth: a Google-signed
ID token whose audience is the receiving service's URL
(https://cloud.google.com/run/docs/authenticating/service-to-service).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
import pytest
from a2a.types.a2a_pb2 import AgentCard, AgentInterface, AgentSkill, Artifact, Message, Part, Role
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import json_format, struct_pb2
from pydantic import ValidationError

from agents.base import A2ASpec, AgentManifest
from agents.registry import AgentLoadError, load_manifest
from agents.remote_a2a import (
    Collected,
    Credentials,
    PartMapper,
    SecretUnavailable,
    build_message,
    card_location,
    check_card,
    examples_from_card,
    ticket_context,
)
from agents.scaffold import ScaffoldError, scaffold_agent
from backend.a2a_server import CallerAuth, agent_card, load_api_keys, read_request
from backend.auth import DevTokenAuthenticator
from testkit.agents import ScriptedAgent, manifest

SPEC = A2ASpec(url="https://ops.example.com/.well-known/agent-card.json")


def a2a_manifest(**a2a) -> dict:
    return {
        "name": "warehouse",
        "description": "The ops team's warehouse agent.",
        "kind": "a2a",
        "a2a": {"url": "https://ops.example.com", **a2a},
    }


def data(value) -> Part:
    return Part(data=json_format.ParseDict(value, struct_pb2.Value()))


# --- manifests -----------------------------------------------------------------------------------
def test_a2a_manifest_needs_no_examples_but_other_kinds_still_need_ten():
    assert AgentManifest.model_validate(a2a_manifest()).when_to_use == []
    with pytest.raises(ValidationError, match="at least 10 items"):
        AgentManifest.model_validate(
            {"name": "x_agent", "description": "A retrieval agent.", "when_to_use": ["a"]}
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"a2a": None}, "needs an `a2a:` section"),
        ({"a2a": {"url": "ftp://ops.example.com"}}, r"http\(s\) URL"),
        ({"a2a": {"url": "https://user:pw@ops.example.com"}}, r"http\(s\) URL"),
        (
            {"a2a": {"url": "https://ops.example.com", "auth": {"type": "bearer"}}},
            "secret_env or secret_file",
        ),
        (
            {"a2a": {"url": "https://ops.example.com", "auth": {"type": "bearer", "token": "x"}}},
            "Extra inputs",
        ),
        ({"tools": [{"name": "do_it", "description": "does it"}]}, "declares no tools"),
    ],
)
def test_a2a_manifest_errors(change, message):
    with pytest.raises(ValidationError, match=message):
        AgentManifest.model_validate({**a2a_manifest(), **change})


def test_only_kind_a2a_may_have_an_a2a_section():
    m = {**a2a_manifest(), "kind": "dumb", "when_to_use": [f"q {i}" for i in range(10)]}
    with pytest.raises(ValidationError, match="only kind a2a"):
        AgentManifest.model_validate(m)


@pytest.mark.parametrize(
    ("url", "base", "path"),
    [
        (
            "https://a.example.com/.well-known/agent-card.json",
            "https://a.example.com",
            "/.well-known/agent-card.json",
        ),
        (
            "https://a.example.com/agents/kb/.well-known/agent-card.json",
            "https://a.example.com/agents/kb",
            "/.well-known/agent-card.json",
        ),
        ("https://a.example.com/cards/kb.json", "https://a.example.com/cards", "/kb.json"),
        ("https://a.example.com/kb/", "https://a.example.com/kb", "/.well-known/agent-card.json"),
    ],
)
def test_card_location(url, base, path):
    assert card_location(url) == (base, path)


# --- the outgoing message ------------------------------------------------------------------------
def test_ticket_context_is_bounded_and_leaves_internal_notes_out():
    ticket = {
        "id": 5,
        "subject": "Broken kettle",
        "description": "word " * 5000,
        "requester": {"name": "Ann", "email": "ann@example.com", "phone": "+31 6"},
        "comments": [
            {"text": "public reply", "public": True},
            {"text": "INTERNAL fraud note", "public": False},
        ],
        "custom_fields": [{"id": 1, "value": "BO-100218"}, {"id": 2, "value": None}],
    }
    for limit in (200, 1000, 4000):
        ctx = ticket_context(ticket, limit)
        assert len(json.dumps(ctx, ensure_ascii=False)) <= limit
        assert "fraud" not in json.dumps(ctx) and "phone" not in json.dumps(ctx)
    ctx = ticket_context(ticket, 4000)
    assert ctx["subject"] == "Broken kettle" and ctx["custom_fields"] == [{"id": "1", "value": "BO-100218"}]
    assert ctx["comments"] == [{"text": "public reply"}]


def test_message_carries_query_text_and_ticket_data():
    msg = build_message("where is it?", {"id": "1", "subject": "Parcel"}, SPEC)
    assert msg.role == Role.ROLE_USER and msg.message_id
    assert msg.parts[0].text == "where is it?"
    assert json_format.MessageToDict(msg.parts[1].data) == {"ticket": {"id": "1", "subject": "Parcel"}}


# --- parts → evidence ----------------------------------------------------------------------------
def collected(*artifacts: Artifact, reply: list[Part] | None = None) -> Collected:
    got = Collected()
    for a in artifacts:
        got.add_artifact(a, append=False)
    got.reply = reply or []
    return got


def test_text_data_and_url_parts_become_cited_evidence():
    art = Artifact(
        artifact_id="a1",
        name="Schedule",
        parts=[
            Part(text="Open 7-22."),
            Part(url="https://ops.example.com/venlo"),
            data(
                {
                    "sources": [
                        {
                            "id": "doc 1",
                            "title": "Venlo",
                            "text": "Venlo is open.",
                            "url": "javascript:x",
                            "score": 7,
                        }
                    ]
                }
            ),
            data({"site": "Venlo", "capacity": 3.0}),
        ],
    )
    mapped = PartMapper("warehouse", "Warehouse", SPEC).map(collected(art))
    by_id = {e.id: e for e in mapped.evidence}
    source = by_id["a2a:warehouse:doc_1"]
    assert (
        source.title == "Venlo" and source.url is None and source.score == 1.0
    )  # unsafe URL dropped, score clipped
    text = by_id["a2a:warehouse:a1"]
    assert text.url == "https://ops.example.com/venlo" and text.kind == "a2a" and text.agent == "warehouse"
    assert text.text == "Open 7-22.\n\ncapacity: 3\nsite: Venlo"
    assert mapped.malformed == 0 and mapped.oversized == 0


def test_malformed_and_oversized_parts_are_dropped_and_counted():
    bad = Artifact(
        artifact_id="bad", parts=[Part(), data(42), Part(url="file:///etc/passwd"), Part(text="  ")]
    )
    big = Artifact(artifact_id="big", parts=[Part(text="x" * 30_000)])
    good = Artifact(artifact_id="ok", parts=[Part(text="fine")])
    mapped = PartMapper("w", "W", SPEC).map(collected(bad, big, good))
    assert [e.id for e in mapped.evidence] == ["a2a:w:ok"]
    assert mapped.malformed == 4 and mapped.oversized == 1


def test_appended_artifact_chunks_join_and_internal_flag_is_kept():
    got = Collected()
    got.add_artifact(Artifact(artifact_id="a", parts=[Part(text="first")]), append=False)
    got.add_artifact(Artifact(artifact_id="a", parts=[Part(text="second")]), append=True)
    spec = SPEC.model_copy(update={"internal": True})
    (e,) = PartMapper("w", "W", spec).map(got).evidence
    assert e.text == "first\n\nsecond" and e.internal


def test_a_direct_reply_maps_when_there_are_no_artifacts():
    mapped = PartMapper("w", "W", SPEC).map(
        collected(reply=[Part(text="Yes."), data({"url": "https://x.example/a"})])
    )
    assert [(e.id, e.url) for e in mapped.evidence] == [("a2a:w:reply", "https://x.example/a")]


# --- cards ---------------------------------------------------------------------------------------
def card(**kw) -> AgentCard:
    return AgentCard(
        name="Ops",
        supported_interfaces=[AgentInterface(url="https://ops.example.com/", protocol_binding="JSONRPC")],
        **kw,
    )


def test_skill_examples_become_routing_examples():
    c = card(skills=[AgentSkill(id="a", name="A", description="About a", examples=["q1", "q2", "q1", "q3"])])
    assert examples_from_card(c) == ["q1", "q2", "q3"]
    sparse = card(skills=[AgentSkill(id="a", name="A", description="Warehouse hours and pickups")])
    assert examples_from_card(sparse) == ["Warehouse hours and pickups"]


def test_a_card_without_a_usable_interface_is_refused():
    check_card(card())
    with pytest.raises(ValueError, match="no JSON-RPC"):
        check_card(
            AgentCard(
                name="x", supported_interfaces=[AgentInterface(url="https://x", protocol_binding="GRPC")]
            )
        )
    with pytest.raises(ValueError, match="no name"):
        check_card(AgentCard())


# --- credentials ---------------------------------------------------------------------------------
def test_bearer_secret_from_env_or_file_never_inline(tmp_path, monkeypatch):
    spec = A2ASpec(url="https://ops.example.com", auth={"type": "bearer", "secret_env": "OPS_TOKEN"})
    creds = Credentials(spec, "https://ops.example.com")
    with pytest.raises(SecretUnavailable, match="OPS_TOKEN is not set"):
        creds.header()
    monkeypatch.setenv("OPS_TOKEN", "s3cr3t")
    assert creds.header() == "Bearer s3cr3t"
    (tmp_path / "token").write_text("from-file\n")
    spec = A2ASpec(
        url="https://ops.example.com", auth={"type": "bearer", "secret_file": str(tmp_path / "token")}
    )
    assert Credentials(spec, "https://ops.example.com").header() == "Bearer from-file"


class _TokenEndpoint(BaseHTTPRequestHandler):
    """Google's OAuth token endpoint as google-auth calls it for a service account's ID token: a
    JWT-bearer grant whose assertion names `target_audience`; answers with `id_token`."""

    key = None
    seen: list[dict] = []

    def do_POST(self):
        body = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        claims = jwt.decode(body["assertion"][0], options={"verify_signature": False})
        type(self).seen.append({"grant_type": body["grant_type"][0], **claims})
        token = jwt.encode(
            {
                "aud": claims["target_audience"],
                "exp": int(time.time()) + 3600,
                "iss": "https://accounts.google.com",
            },
            self.key,
            algorithm="RS256",
        )
        payload = json.dumps({"id_token": token}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_google_id_token_for_cloud_run_through_google_auth(tmp_path, monkeypatch):
    """The real google-auth path (`id_token.fetch_id_token` with a service account file), its
    token endpoint played locally; the audience is the remote service's URL; the token is reused."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _TokenEndpoint.key, _TokenEndpoint.seen = pem, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sa = {
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k1",
            "private_key": pem.decode(),
            "client_email": "sidebar@p.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"http://127.0.0.1:{server.server_port}/token",
        }
        (tmp_path / "sa.json").write_text(json.dumps(sa))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "sa.json"))
        spec = A2ASpec(
            url="https://billing-abc-ew.a.run.app/.well-known/agent-card.json",
            auth={"type": "google_id_token"},
        )
        creds = Credentials(spec, card_location(spec.url)[0])
        header = creds.header()
        assert header.startswith("Bearer ")
        claims = jwt.decode(header[7:], options={"verify_signature": False})
        assert claims["aud"] == "https://billing-abc-ew.a.run.app"
        assert creds.header() == header and len(_TokenEndpoint.seen) == 1  # cached until near expiry
        assert _TokenEndpoint.seen[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    finally:
        server.shutdown()


def test_google_id_token_without_credentials_is_a_clear_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    spec = A2ASpec(url="https://x.a.run.app", auth={"type": "google_id_token"})
    with pytest.raises(SecretUnavailable, match="no Google ID token"):
        Credentials(spec, "https://x.a.run.app").header()


# --- scaffold --------------------------------------------------------------------------------------
def test_scaffold_a2a_folder_is_a_valid_manifest_only_folder(tmp_path):
    folder = scaffold_agent(
        "billing", "a2a", tmp_path, url="https://billing.example.com/.well-known/agent-card.json"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "manifest.yaml"]
    m = load_manifest(folder)
    assert m.kind == "a2a" and m.a2a is not None and m.a2a.auth.type == "none" and m.when_to_use == []
    assert "secret_env" in (folder / "manifest.yaml").read_text()  # the auth TODO shows how
    with pytest.raises(ScaffoldError, match="--url"):
        scaffold_agent("billing2", "a2a", tmp_path)
    with pytest.raises(ScaffoldError, match="--url"):
        scaffold_agent("billing3", "dumb", tmp_path, url="https://x.example.com")
    with pytest.raises(ScaffoldError, match="invalid --url"):
        scaffold_agent("billing4", "a2a", tmp_path, url="javascript:alert(1)")


def test_an_a2a_folder_with_an_agent_py_is_not_needed(tmp_path):
    folder = scaffold_agent("ops", "a2a", tmp_path, url="https://ops.example.com")
    (folder / "manifest.yaml").write_text(
        (folder / "manifest.yaml").read_text().replace("kind: a2a", "kind: api")
    )
    with pytest.raises(AgentLoadError):
        load_manifest(folder)  # an a2a section on another kind is refused


# --- serve-agents: callers and requests ----------------------------------------------------------------
SECRET = "unit-test-secret-0123456789"


def test_caller_auth_accepts_sidebar_tokens_and_hashed_api_keys(tmp_path):
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"globex:\n  - sha256:{hashlib.sha256(b'k-globex').hexdigest()}\n")
    dev = DevTokenAuthenticator(SECRET, 3600)
    auth = CallerAuth(dev, load_api_keys(keys))
    assert auth.principal(f"Bearer {dev.mint('acme', 'agent-7', 'Ann')}").tenant == "acme"
    assert auth.principal("Bearer k-globex").tenant == "globex"
    for header in (None, "", "Bearer ", "Basic k-globex", "Bearer k-other", "Bearer " + "x" * 9000):
        assert auth.principal(header) is None
    keys.write_text("globex: [not-a-hash]\n")
    with pytest.raises(ValueError, match="sha256"):
        load_api_keys(keys)


def test_read_request_takes_query_and_bounded_ticket_and_ignores_tenant_claims():
    msg = Message(
        parts=[
            Part(text="warranty?"),
            data({"ticket": {"subject": "S", "tenant": "globex"}, "tenant": "globex"}),
        ]
    )
    query, ticket = read_request(msg)
    assert query == "warranty?" and ticket == {"subject": "S"}


def test_agent_card_is_generated_from_the_manifest():
    agent = ScriptedAgent(manifest("kb", "Help Center articles for the benchmark.", ["refund policy"]))
    c = json_format.MessageToDict(agent_card(agent, "https://a2a.example.com/"))
    assert c["name"] == "Kb" and c["description"] == "Help Center articles for the benchmark."
    assert c["supportedInterfaces"] == [
        {"url": "https://a2a.example.com/agents/kb/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    ]
    assert c["skills"][0]["examples"] == list(agent.manifest.when_to_use)
    assert c["capabilities"] == {"streaming": True}


def test_new_agent_cli_scaffolds_an_a2a_folder_and_says_why_its_card_is_not_usable(tmp_path):
    from click.testing import CliRunner

    from backend.cli import cli

    url = "http://127.0.0.1:9/.well-known/agent-card.json"  # nothing listens on the discard port
    out = CliRunner().invoke(
        cli, ["new-agent", "billing", "--kind", "a2a", "--url", url, "--path", str(tmp_path)]
    )
    assert out.exit_code == 0, out.output
    assert "Agent card not usable yet: agent card cannot be fetched (cannot connect)" in out.output
    assert load_manifest(tmp_path / "billing").a2a.url == url
    refused = CliRunner().invoke(cli, ["new-agent", "billing2", "--kind", "a2a", "--path", str(tmp_path)])
    assert refused.exit_code != 0 and "--url" in refused.output


def test_serve_agents_refuses_unauthenticated_and_oversized_calls(tmp_path):
    """The ASGI app itself (Starlette's test client, no process): the card is public, calls need a
    verified caller, bodies are capped."""
    from starlette.testclient import TestClient

    from backend.a2a_server import MAX_BODY_BYTES, build_app
    from orchestrator.orchestrator import Assistant
    from orchestrator.routing.keyword import KeywordRouter

    agent = ScriptedAgent(manifest("kb", "Help Center articles for the test.", ["refund policy"]))
    assistant = Assistant([agent], KeywordRouter([agent.manifest]), None, None)  # type: ignore[arg-type]
    key = "k-acme-0123456789"
    app = build_app(
        assistant,
        [agent],
        "http://testserver",
        CallerAuth(None, {hashlib.sha256(key.encode()).hexdigest(): "acme"}),
    )
    with TestClient(app) as client:
        assert client.get("/agents/kb/.well-known/agent-card.json").json()["name"] == "Kb"
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "nope"}}
        assert client.post("/agents/kb/", json=rpc).status_code == 401
        ok = client.post(
            "/agents/kb/", json=rpc, headers={"Authorization": f"Bearer {key}", "A2A-Version": "1.0"}
        )
        assert ok.status_code == 200 and ok.json()["error"]["code"] == -32001  # TaskNotFound: for this caller
        big = client.post(
            "/agents/kb/", content=b"x" * (MAX_BODY_BYTES + 1), headers={"Authorization": f"Bearer {key}"}
        )
        assert big.status_code == 413
    assistant.close()
