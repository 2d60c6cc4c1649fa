from __future__ import annotations

import pytest

from backend import protocol
from backend.auth import AuthError, DevTokenAuthenticator, load_or_create_secret
from backend.settings import Settings


def test_ticket_ids_are_normalised_and_bools_refused():
    assert protocol.parse(protocol.JoinPayload, {"ticket": {"id": 42}}).ticket.id == "42"
    with pytest.raises(protocol.ProtocolError):
        protocol.parse(protocol.JoinPayload, {"ticket": {"id": True}})


def test_message_limits_and_whitespace():
    with pytest.raises(protocol.ProtocolError) as exc:
        protocol.parse(protocol.MessagePayload, {"id": "a", "text": "x" * 11}, max_message_chars=10)
    assert exc.value.code == "message_too_long"
    with pytest.raises(protocol.ProtocolError) as exc:
        protocol.parse(protocol.MessagePayload, {"id": "a", "text": "   "})
    assert exc.value.code == "invalid_payload" and exc.value.message.startswith("text:")


@pytest.mark.parametrize("payload", [None, [], "x", 3, {"id": "<script>", "text": "hi"}])
def test_non_objects_and_bad_ids_are_refused(payload):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse(protocol.MessagePayload, payload)


def test_dev_tokens_round_trip_and_reject_tampering(tmp_path):
    auth = DevTokenAuthenticator("s3cret", 60)
    token = auth.mint("acme", "alice", "Alice")
    p = auth.authenticate({"token": token})
    assert (p.tenant, p.user_id, p.user_name) == ("acme", "alice", "Alice")
    with pytest.raises(AuthError, match="invalid token"):
        DevTokenAuthenticator("other-secret", 60).authenticate({"token": token})
    with pytest.raises(AuthError, match="missing token"):
        auth.authenticate({"tok": token})
    with pytest.raises(AuthError, match="malformed"):
        auth.authenticate({"token": "x" * 5000})
    with pytest.raises(ValueError):
        auth.mint("acme corp", "alice")


def test_error_messages_never_contain_the_token():
    token = DevTokenAuthenticator("a", 60).mint("acme", "alice")
    try:
        DevTokenAuthenticator("b", 60).authenticate({"token": token})
    except AuthError as exc:
        assert token not in str(exc)


def test_secret_is_created_once_and_shared(tmp_path):
    first = load_or_create_secret(tmp_path)
    assert load_or_create_secret(tmp_path) == first and len(first) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_settings_validate_and_read_env(monkeypatch):
    monkeypatch.setenv("SESSION_TTL_SECONDS", "60")
    monkeypatch.setenv("ARCHIVE_BACKEND", "sqlite")
    assert Settings(_env_file=None).session_ttl_seconds == 60
    monkeypatch.setenv("AUTH_MODE", "anonymous")
    with pytest.raises(ValueError, match="auth_mode"):
        Settings(_env_file=None)


def test_error_payload_names_the_cause():
    """docs/protocol.md, "chat:error": an error a client event caused names the event and, when
    the payload carried a valid one, the message id — even if the payload is refused for another
    reason."""
    assert protocol.cause_id(protocol.MESSAGE, {"id": "m-1", "text": "x" * 10**6}) == "m-1"
    assert protocol.cause_id(protocol.RETRY, {"id": "m-2"}) == "m-2"
    assert protocol.cause_id(protocol.FEEDBACK, {"message_id": "m-3.reply", "rating": "meh"}) == "m-3.reply"
    for event, data in [
        (protocol.MESSAGE, {"id": "<script>"}),
        (protocol.MESSAGE, [1, 2]),
        (protocol.MESSAGE, {"id": 7}),
        (protocol.JOIN, {"id": "t"}),
        ("admin:eval", {"id": "x"}),
    ]:
        assert protocol.cause_id(event, data) is None
    err = protocol.error(
        "rate_limited", "slow down", retryable=True, id="m-1", event=protocol.MESSAGE, retry_after=2.5
    )
    assert err == {
        "code": "rate_limited",
        "message": "slow down",
        "retryable": True,
        "id": "m-1",
        "event": protocol.MESSAGE,
        "retry_after": 2.5,
    }
