"""Regenerate the templated splits of the seed-replication suite (deterministic, seeded).

    .venv/bin/python -m bench.routing.seed_ecommerce.generate [--check]

The reference experiment's method, through the product's own generator
(`orchestrator.routing.functiongemma.data.generate`): every `when_to_use` base example as-is
and in polite / casual / urgent forms (half with a typo) plus a typo-only form; counter-examples
go to the route they belong to; the split is by base example, so no test item is a variation
of a training item. The reference task is single-label over seven routes, so multi-agent
examples are switched off (`multi=0`) and the respond/clarify pseudo-labels are dropped. Texts
that normalise to a `human.jsonl` query are excluded (there are none; the test enforces it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.routing.seed_ecommerce import HUMAN, SPLITS, load_suite, templated_path
from orchestrator.routing.functiongemma.data import DataConfig, RouterExample, generate
from orchestrator.routing.training.evaluation import load_labelled

CONFIG = DataConfig(seed=0, multi=0)


def build() -> dict[str, list[RouterExample]]:
    manifests = load_suite()
    names = {m.name for m in manifests}
    exclude = [e.text for e in load_labelled(HUMAN)] if HUMAN.is_file() else []
    splits = generate(manifests, CONFIG, exclude=exclude)
    return {split: [e for e in splits[split] if e.label in names] for split in SPLITS}


def render(items: list[RouterExample]) -> str:
    return "".join(
        json.dumps({"text": e.text, "label": e.label, "source": e.source, "kind": e.kind}, ensure_ascii=False)
        + "\n"
        for e in items
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed files are stale")
    args = parser.parse_args(argv)
    stale = []
    for split, items in build().items():
        path: Path = templated_path(split)
        text = render(items)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"{path}: {len(items)} examples")
    if stale:
        print(f"stale: {', '.join(stale)} (run python -m bench.routing.seed_ecommerce.generate)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
