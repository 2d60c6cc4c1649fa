"""Fixtures for the agent tests: demo tickets, the demo store's commerce API, contexts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from agents.base import AgentContext
from agents.commerce import DEMO_COMMERCE_DIR, LocalCommerceAPI
from agents.registry import AgentRegistry
from store.demo import DEMO_DATA_DIR


@pytest.fixture(scope="session")
def commerce() -> LocalCommerceAPI:
    return LocalCommerceAPI(DEMO_COMMERCE_DIR)


@pytest.fixture(scope="session")
def demo_tickets() -> dict[str, dict[str, Any]]:
    raw = json.loads((DEMO_DATA_DIR / "tickets" / "tickets.json").read_text(encoding="utf-8"))
    return {str(t["id"]): t for t in raw["tickets"]}


def sidebar_ticket(raw: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What the sidebar sends for a ticket (backend.protocol.Ticket: id as a string, extras kept)."""
    keep = ("subject", "description", "status", "tags", "custom_fields", "requester_id", "via")
    return {"id": str(raw["id"]), **{k: raw[k] for k in keep if k in raw}, **extra}


@pytest.fixture(scope="session")
def registry() -> AgentRegistry:
    return AgentRegistry()


@pytest.fixture
def make_ctx(demo_index, local_llm, commerce) -> Callable[..., AgentContext]:
    def make(ticket: dict[str, Any] | None = None, **kwargs: Any) -> AgentContext:
        kwargs.setdefault("services", {"commerce": commerce})
        return AgentContext(
            tenant="demo",
            ticket=ticket if ticket is not None else {"id": "1", "subject": "", "description": ""},
            knowledge=kwargs.pop("knowledge", demo_index),
            llm=kwargs.pop("llm", local_llm),
            **kwargs,
        )

    return make
