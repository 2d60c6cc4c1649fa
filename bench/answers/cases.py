"""Answer-benchmark cases: the format, its validation and the loader.

Cases live in ``bench/answers/data/*.yaml`` (a YAML list per file). One case::

    - id: policy-return-window-en-1        # unique, stable
      split: dev                           # dev (tune on it) | test (report only, never tune)
      category: policy                     # one of CATEGORIES
      ticket: 41308                        # a demo ticket id (sent in the sidebar's payload), or null
      turns:                               # asked in order in one session
        - ask: "how long has a customer got to send stuff back?"
          expect: ['\\b30 days\\b']        # regexes (case-insensitive) that must ALL match the answer
          forbid: ['\\b14 days\\b']        # regexes (wrong facts) that must NOT match the answer
          sources: ["article:360000301"]   # ids of sources that hold the expected facts; an id ending
                                           # in ":" or "*" is a prefix ("order:", "article:*")
          decline: false                   # true: the assistant must say it has no answer
      customer_text:                       # optional: what the customer wrote, in their language
        subject: "Artikel fehlt"           # (the demo tickets are all written in English); it
        description: "Hallo, ..."          # replaces the subject, description and opening comment

A turn with no ``expect`` and ``decline: false`` is context only (asked, not scored). The case
is right when every scored turn is right. Questions are written the way support agents type;
they never copy a sentence from the data. Numbers in expectations come from
``store/demo_data/POLICIES.md`` and the demo records.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DATA_DIR = Path(__file__).resolve().parent / "data"

CATEGORIES = (
    "policy",  # a policy fact from the Help Center
    "order",  # this ticket's order (order system)
    "product",  # this ticket's / a named product (catalogue)
    "customer",  # this ticket's customer (CRM / order history)
    "ticket",  # the ticket itself: summary, last comment, what was promised
    "multi_turn",  # follow-ups with pronouns and ordinals
    "two_source",  # policy + this order
    "german",  # asked in German on the German articles / tickets
    "unanswerable",  # must be declined
    "draft",  # "what should I tell the customer?"
    "brief",  # the ticket brief on open (ask: "@brief"): the order's state and the customer's ask
)
# A turn asking this is not sent: it scores the brief the sidebar got on join (bench/answers/run.py).
BRIEF_ASK = "@brief"
Category = Literal[
    "policy",
    "order",
    "product",
    "customer",
    "ticket",
    "multi_turn",
    "two_source",
    "german",
    "unanswerable",
    "draft",
    "brief",
]


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ask: str = Field(min_length=2, max_length=2000)
    expect: list[str] = Field(default_factory=list)
    forbid: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    decline: bool = False

    @field_validator("expect", "forbid")
    @classmethod
    def _regexes_compile(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Turn:
        if self.decline and self.expect:
            raise ValueError("a turn that must be declined expects no facts")
        if self.expect and not self.sources:
            raise ValueError(f"turn {self.ask!r}: expected facts need the source ids that hold them")
        return self

    @property
    def scored(self) -> bool:
        return bool(self.expect) or self.decline


class CustomerText(BaseModel):
    """The ticket as the customer wrote it in another language: the demo tickets are English, so a
    reply-language case rewrites the customer's side of a demo ticket (its records stay)."""

    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=2, max_length=200)
    description: str = Field(min_length=10, max_length=2000)


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{2,80}$")
    split: Literal["dev", "test"]
    category: Category
    ticket: int | None = None
    turns: list[Turn] = Field(min_length=1, max_length=6)
    note: str = ""
    # In the fixed subset `make test` runs with a floor (tests/integration/test_answer_floor.py).
    ci: bool = False
    customer_text: CustomerText | None = None

    @model_validator(mode="after")
    def _has_a_scored_turn(self) -> Case:
        if not any(t.scored for t in self.turns):
            raise ValueError(f"case {self.id}: no scored turn")
        if self.customer_text is not None and self.ticket is None:
            raise ValueError(f"case {self.id}: customer_text rewrites a ticket; name one")
        return self


def load_cases(data_dir: Path = DATA_DIR, *, split: str | None = None) -> list[Case]:
    """Every case under ``data_dir`` (sorted by file, then as written); ``split`` filters."""
    cases: list[Case] = []
    for path in sorted(data_dir.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if not isinstance(raw, list):
            raise ValueError(f"{path.name}: expected a list of cases")
        for i, item in enumerate(raw):
            try:
                cases.append(Case.model_validate(item))
            except ValueError as exc:
                raise ValueError(f"{path.name} case #{i + 1}: {exc}") from None
    dupes = [k for k, n in Counter(c.id for c in cases).items() if n > 1]
    if dupes:
        raise ValueError(f"duplicate case ids: {dupes[:5]}")
    return [c for c in cases if split is None or c.split == split]
