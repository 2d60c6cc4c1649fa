"""ThreadMessage.meta is a typed model (backend/sessions.py ReplyMeta) whose JSON is the dict the
sidebar always got (docs/protocol.md, Message.meta): only the keys that were set, unknown keys of
an archive written by another version kept, and the turn-id helpers of the turn contract."""

from __future__ import annotations

import json

from backend.sessions import ReplyError, ReplyMeta, ThreadMessage
from orchestrator.turn import message_id_of, new_turn_id


def _meta(message: ThreadMessage) -> dict:
    return json.loads(message.model_dump_json())["meta"]


def test_a_reply_sends_only_the_keys_that_were_set():
    streaming = ThreadMessage(
        id="q1.reply", role="assistant", status="streaming", reply_to="q1",
        meta=ReplyMeta(instance="i1", attempt=1, started_at=12.5),
    )  # fmt: skip
    assert _meta(streaming) == {"instance": "i1", "attempt": 1, "started_at": 12.5}
    assert _meta(ThreadMessage(id="q1", role="user")) == {}

    # Settled: the owner is removed, the outcome added; a None that was set is sent as null.
    streaming.meta.merge(ReplyMeta(routing=None, timings={"total_s": 1}, cost={}, thinking=[]))
    streaming.meta.unset("instance")
    assert _meta(streaming) == {
        "attempt": 1, "started_at": 12.5, "routing": None, "timings": {"total_s": 1}, "cost": {}, "thinking": [],
    }  # fmt: skip
    failed = ThreadMessage(id="r", role="assistant", meta=ReplyMeta(error=ReplyError(code="x", message="m")))
    assert _meta(failed) == {"error": {"code": "x", "message": "m"}}


def test_an_archived_reply_round_trips_with_keys_this_version_does_not_know():
    stored = {"attempt": 2, "shadow": {"status": "pending", "turn": "q1:abc"}, "future_key": [1]}
    message = ThreadMessage.model_validate({"id": "q1.reply", "role": "assistant", "meta": stored})
    assert message.meta.attempt == 2 and message.meta.shadow["status"] == "pending"
    assert _meta(message) == stored
    assert _meta(ThreadMessage.model_validate_json(message.model_dump_json())) == stored


def test_a_turn_id_names_its_message_even_when_the_message_id_has_colons():
    for message_id in ("q1", "a:b:c", "7f3c.reply"):
        turn = new_turn_id(message_id)
        assert turn.startswith(f"{message_id}:") and message_id_of(turn) == message_id
    assert new_turn_id("q1") != new_turn_id("q1")  # one per attempt
