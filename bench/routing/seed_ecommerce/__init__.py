"""Seed-replication suite: the reference routing experiment's seven e-commerce routes.

`manifests.yaml` holds the routes (validated as `AgentManifest`s); `templated_{train,val,test}.jsonl`
are generated from their examples by `python -m bench.routing.seed_ecommerce.generate`;
`human.jsonl` is a hand-written test set, independent of the templates. See README.md.
"""

from __future__ import annotations

from pathlib import Path

from agents.base import AgentManifest
from agents.registry import load_manifest_list

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
