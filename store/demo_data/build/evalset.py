"""Labelled retrieval queries: resolve the readable references in sources/queries.py to index ids.

References: ``article:<key>``, ``macro:<key>``, ``ticket:@<scenario>`` (every ticket of that scenario)
and ``ticket:@<scenario>#<n>`` (only the n-th ticket, 0-based, in id order).
"""

from __future__ import annotations

from typing import Any


def build_eval(
    article_keys: dict[str, int],
    tickets_by_scenario: dict[str, list[int]],
    macro_keys: dict[str, int],
    article_ids: set[int],
) -> list[dict[str, Any]]:
    from store.demo_data.sources.queries import QUERIES

    out = []
    seen: set[str] = set()
    for query, refs, hint in QUERIES:
        if query in seen:
            raise ValueError(f"duplicate query {query!r}")
        seen.add(query)
        relevant: list[str] = []
        for ref in refs:
            kind, _, key = ref.partition(":")
            if kind == "article":
                relevant.append(f"article:{article_keys[key]}")
            elif kind == "macro":
                relevant.append(f"macro:{macro_keys[key]}")
            elif kind == "ticket":
                scenario, _, idx = key.lstrip("@").partition("#")
                ids = sorted(tickets_by_scenario[scenario])
                relevant.extend(f"ticket:{i}" for i in ([ids[int(idx)]] if idx else ids))
            else:
                raise ValueError(f"bad reference {ref!r} in query {query!r}")
        if hint not in ("article", "ticket", "macro"):
            raise ValueError(f"bad kind_hint {hint!r}")
        out.append({"query": query, "relevant": relevant, "kind_hint": hint})
    del article_ids  # ids are resolved from keys, which build_help_center already validated
    return out
