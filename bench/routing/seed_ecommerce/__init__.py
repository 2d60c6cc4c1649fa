"""Seed-replication suite: the reference routing experiment's seven e-commerce routes.

`manifests.yaml` holds the routes (validated as `AgentManifest`s); `templated_{train,val,test}.jsonl`
are generated from their examples by `python -m bench.routing.seed_ecommerce.generate`;
`human.jsonl` is a hand-written test set, independent of the templates. See README.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from agents.base import AgentManifest
from agents.registry import load_manifest_list

if TYPE_CHECKING:
    from orchestrator.routing.functiongemma.data import RouterExample

SUITE_DIR = Path(__file__).resolve().parent
MANIFESTS = SUITE_DIR / "manifests.yaml"
HUMAN = SUITE_DIR / "human.jsonl"
SPLITS = ("train", "val", "test")


def templated_path(split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    return SUITE_DIR / f"templated_{split}.jsonl"


def load_suite() -> list[AgentManifest]:
    """The seven routes, validated (a broken manifest raises ValueError naming the field)."""
    return load_manifest_list(MANIFESTS)


def training_examples() -> list[RouterExample]:
    """The templated train split as the FunctionGemma trainer takes it (labels split on "+")."""
    from orchestrator.routing.functiongemma.data import RouterExample

    rows = (json.loads(line) for line in templated_path("train").read_text().splitlines() if line.strip())
    return [
        RouterExample(
            r["text"], tuple(r["label"].split("+")), r.get("source", r["text"]), r.get("kind", "base")
        )
        for r in rows
        if r.get("text")
    ]


def train_split_manifests(manifests: list[AgentManifest], train: list[RouterExample]) -> list[AgentManifest]:
    """The routes with only the base and counter-examples the templated train split was made from,
    so the routers that learn from manifests (keyword, semantic, semantic-head) see the same data
    as FunctionGemma and none of the test split's base examples."""
    sources = {e.source for e in train}
    return [
        m.model_copy(
            update={
                "when_to_use": [q for q in m.when_to_use if q in sources],
                "counter_examples": [q for q in m.counter_examples if q in sources],
            }
        )
        for m in manifests
    ]
