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
