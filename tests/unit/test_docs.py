"""Docs that are generated or enumerated from code must not drift from it."""

from pathlib import Path

from backend import protocol
from backend.settings import settings_table

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_configuration_doc_embeds_the_current_settings_table():
    text = (DOCS / "configuration.md").read_text()
    start = text.index("<!-- settings-table:start -->") + len("<!-- settings-table:start -->")
    end = text.index("<!-- settings-table:end -->")
    assert text[start:end].strip() == settings_table().strip(), "run: python -m backend.settings"


def test_protocol_doc_names_every_event():
    text = (DOCS / "protocol.md").read_text()
    for event in (*protocol.CLIENT_EVENTS, *protocol.SERVER_EVENTS):
        assert f"`{event}`" in text, event


def _event_rows() -> dict[str, str]:
    text = (DOCS / "protocol.md").read_text()
    return {line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `")}


def test_protocol_doc_names_every_payload_field():
    from backend.sessions import Session
    from backend.socket_events import _state

    rows = _event_rows()
    models = {
        protocol.JOIN: protocol.JoinPayload,
        protocol.MESSAGE: protocol.MessagePayload,
        protocol.RETRY: protocol.RetryPayload,
        protocol.FEEDBACK: protocol.FeedbackPayload,
    }
    for event, model in models.items():
        for name in model.model_fields:
            assert name in rows[event], f"{event}: field {name} is not in docs/protocol.md"
    session = Session(id="s", tenant="t", user_id="u", ticket_id="1")
    for name in [*_state(session, resumed=False, hydrated=False, elapsed=0.0), "agents"]:
        assert name in rows[protocol.STATE], f"{protocol.STATE}: field {name} is not in docs/protocol.md"


def test_protocol_agent_names_match_the_manifest_pattern():
    from agents.base import NAME_PATTERN

    assert protocol.AGENT_NAME_PATTERN == NAME_PATTERN
