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
