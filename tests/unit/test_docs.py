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


def test_architecture_doc_names_only_files_that_exist_and_the_walk_the_test_allows():
    """docs/architecture.md is read by newcomers first: every path it names must exist, and the
    frame count of one turn's walk is the bound tests/integration/test_turn_walk.py enforces."""
    import re

    root = DOCS.parent
    text = (DOCS / "architecture.md").read_text()
    named = set(
        re.findall(
            r"\b((?:backend|orchestrator|agents|vertex_interface|store|tests|bench|testkit|docs)"
            r"/[\w/.<>-]*\.(?:py|md))\b",
            text,
        )
    )
    # Relative names inside a package ("routing/decisions.py") are resolved against orchestrator/.
    named |= {f"orchestrator/{m}" for m in re.findall(r"`(routing/[\w/]+\.py)`", text)}
    assert len(named) > 20
    missing = sorted(p for p in named if "<" not in p and not (root / p).exists())
    assert missing == [], f"docs/architecture.md names files that do not exist: {missing}"
    walk = (root / "tests" / "integration" / "test_turn_walk.py").read_text()
    bound = int(re.search(r"^MAX_FRAMES = (\d+)", walk, re.M).group(1))
    assert f"the stack holds {bound} project frames" in text
