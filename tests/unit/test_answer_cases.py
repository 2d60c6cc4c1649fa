"""The answer-benchmark cases are well formed and agree with the demo data (fast, no model).

Every expected fact must be stated by a source the case lists, no forbidden fact may be stated
by one (a forbidden fact must really be wrong for that question), and no question may copy a
run of words from the tenant's text (a question that quotes the article wording would measure
lexical lookup, not answering).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from datetime import datetime
from functools import cache
from pathlib import Path

import pytest

from bench.answers.cases import CATEGORIES, Case, Turn, load_cases

DEMO = Path(__file__).resolve().parents[2] / "store" / "demo_data"
MIN_CASES = 200
MIN_CI_CASES = 30
COPY_RUN = 6  # consecutive words a question may not share with the tenant's text


def _strip_html(body: str) -> str:
    # Tags become spaces so table cells and list items do not run together.
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def _load(rel: str, key: str) -> list[dict]:
    return json.loads((DEMO / rel).read_text(encoding="utf-8"))[key]


def _date_forms(record_json: str) -> str:
    """Human spellings of every ISO timestamp in a record, as an answer would render them."""
    forms: list[str] = []
    for stamp in sorted(set(re.findall(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z?", record_json))):
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        forms += [
            when.date().isoformat(),
            f"{when.day} {when:%B %Y}",
            f"{when:%B} {when.day}, {when.year}",
            f"{when.day} {when:%b}",
            f"{when.day:02d}.{when.month:02d}.{when.year}",
        ]
    return " ".join(forms)


@cache
def _source_texts() -> dict[str, str]:
    texts: dict[str, str] = {}
    for art in _load("help_center/articles.json", "articles"):
        texts[f"article:{art['id']}"] = f"{art['title']} {_strip_html(art['body'])}"
    for macro in _load("macros/macros.json", "macros"):
        values = [a["value"] for a in macro["actions"] if isinstance(a.get("value"), str)]
        texts[f"macro:{macro['id']}"] = " ".join([macro["title"], macro.get("description") or "", *values])
    for ticket in _load("tickets/tickets.json", "tickets"):
        comments = [c.get("body") or c.get("plain_body") or "" for c in ticket.get("comments", [])]
        texts[f"ticket:{ticket['id']}"] = " ".join([ticket["subject"], ticket["description"], *comments])
    for order in _load("commerce/orders.json", "orders"):
        dumped = json.dumps(order, ensure_ascii=False)
        texts[f"order:{order['order_number']}"] = f"{dumped} {_date_forms(dumped)}"
    for product in _load("commerce/products.json", "products"):
        texts[f"product:{product['sku']}"] = json.dumps(product, ensure_ascii=False)
    for customer in _load("commerce/customers.json", "customers"):
        dumped = json.dumps(customer, ensure_ascii=False)
        texts[f"customer:{customer['id']}"] = dumped
        texts[f"customer:{customer['email']}"] = dumped
    return texts


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _runs(words: list[str], n: int = COPY_RUN) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@cache
def _tenant_runs() -> frozenset[tuple[str, ...]]:
    """Every run of COPY_RUN words in the articles, tickets and macros."""
    runs: set[tuple[str, ...]] = set()
    for key, text in _source_texts().items():
        if key.split(":", 1)[0] in ("article", "ticket", "macro"):
            runs |= _runs(_words(text))
    return frozenset(runs)


def _is_prefix(source: str) -> bool:
    return source.endswith((":", "*"))


@cache
def _cases() -> tuple[Case, ...]:
    return tuple(load_cases())


def _turns() -> list[tuple[str, int, Turn]]:
    return [(case.id, i, turn) for case in _cases() for i, turn in enumerate(case.turns)]


def test_enough_cases_in_every_category_and_split() -> None:
    cases = _cases()
    assert len(cases) >= MIN_CASES, f"{len(cases)} cases, want at least {MIN_CASES}"
    by_category = {cat: {c.split for c in cases if c.category == cat} for cat in CATEGORIES}
    missing = [cat for cat, splits in by_category.items() if splits != {"dev", "test"}]
    assert not missing, f"categories without both a dev and a test case: {missing}"


def test_ci_subset_is_large_enough_and_dev_only() -> None:
    ci = [c for c in _cases() if c.ci]
    assert len(ci) >= MIN_CI_CASES, f"{len(ci)} ci cases, want at least {MIN_CI_CASES}"
    assert not [c.id for c in ci if c.split != "dev"], "ci cases must come from the dev split"


def test_case_ids_are_unique() -> None:
    dupes = [k for k, n in Counter(c.id for c in _cases()).items() if n > 1]
    assert not dupes


def test_tickets_exist() -> None:
    known = {int(k.split(":", 1)[1]) for k in _source_texts() if k.startswith("ticket:")}
    unknown = [(c.id, c.ticket) for c in _cases() if c.ticket is not None and c.ticket not in known]
    assert not unknown, f"cases on tickets that are not in tickets.json: {unknown}"


def test_sources_exist() -> None:
    texts = _source_texts()
    unknown = [
        (case_id, i, s)
        for case_id, i, turn in _turns()
        for s in turn.sources
        if not _is_prefix(s) and s not in texts
    ]
    assert not unknown, f"unknown source ids: {unknown[:10]}"


def test_expected_facts_are_in_a_listed_source() -> None:
    texts = _source_texts()
    problems = []
    for case_id, i, turn in _turns():
        if any(_is_prefix(s) for s in turn.sources):
            continue  # an open-ended source ("order:") cannot be resolved here
        listed = [texts[s] for s in turn.sources if s in texts]
        for pattern in turn.expect:
            if not any(re.search(pattern, text, re.IGNORECASE) for text in listed):
                problems.append(f"{case_id} turn {i}: {pattern!r} is in none of {turn.sources}")
    assert not problems, "\n".join(problems[:20])


def test_forbidden_facts_are_not_in_a_listed_source() -> None:
    texts = _source_texts()
    problems = []
    for case_id, i, turn in _turns():
        for pattern in turn.forbid:
            hits = [s for s in turn.sources if s in texts and re.search(pattern, texts[s], re.IGNORECASE)]
            if hits:
                problems.append(f"{case_id} turn {i}: forbidden {pattern!r} is stated by {hits}")
    assert not problems, "\n".join(problems[:20])


def test_questions_do_not_copy_the_tenant_text() -> None:
    tenant = _tenant_runs()
    copied = []
    for case_id, i, turn in _turns():
        shared = _runs(_words(turn.ask)) & tenant
        if shared:
            copied.append(f"{case_id} turn {i}: {' '.join(sorted(shared)[0])!r}")
    assert not copied, "\n".join(copied[:20])


@pytest.mark.parametrize("pattern", [r"3[–-]5 business days", r"30[- ]days?"])
def test_source_text_keeps_numbers_and_dashes(pattern: str) -> None:
    # The checks above are only as good as the text they run on: the HTML stripping must keep
    # en dashes and numbers intact, or every expectation would pass or fail for the wrong reason.
    assert re.search(
        pattern, _source_texts()["article:360000000127"] + _source_texts()["article:360000000121"]
    )
