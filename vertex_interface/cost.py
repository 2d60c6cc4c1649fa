"""Token and cost accounting, following the seed cost model.

Each model call costs ``(prompt + context) x input price + output x output price``, where *prompt* is
the constant part (system instruction, history, question) and *context* the variable retrieved
sources. A ``UsageLedger`` collects one record per call, tagged with session, turn and agent, and rolls
them up per model turn (a record), per agent turn, per orchestrator turn and per session.

A call to a model with no price in ``LLMConfig.prices`` is recorded at $0 but never silently: the
first such call per model logs a warning, and every one counts in ``UsageTotals.unpriced_calls``
(exported as ``sidebar_llm_unpriced_calls_total``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .config import ModelPrice
from .types import CallKind, CallTags, Usage

log = logging.getLogger(__name__)

_warned_unpriced: set[str] = set()
_warned_lock = threading.Lock()


def warn_unpriced(model: str) -> bool:
    """Log, once per process and model, that a model has no price (returns whether it logged)."""
    with _warned_lock:
        if model in _warned_unpriced:
            return False
        _warned_unpriced.add(model)
    log.warning(
        "no price for model %r: its calls are recorded at $0 and counted in "
        "sidebar_llm_unpriced_calls_total; add it to LLMConfig.prices",
        model,
    )
    return True


def cost_usd(price: ModelPrice | None, input_tokens: int, output_tokens: int) -> float:
    if price is None:
        return 0.0
    return (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1_000_000


@dataclass(frozen=True)
class UsageRecord:
    kind: CallKind
    backend: str
    usage: Usage
    tags: CallTags = field(default_factory=CallTags)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class UsageTotals:
    calls: int = 0
    input_tokens: int = 0
    context_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    # Calls whose model had no price: their share of cost_usd is a missing number, not $0.
    unpriced_calls: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens - self.context_tokens

    def add(self, usage: Usage) -> UsageTotals:
        return UsageTotals(
            self.calls + 1,
            self.input_tokens + usage.input_tokens,
            self.context_tokens + usage.context_tokens,
            self.output_tokens + usage.output_tokens,
            self.cost_usd + usage.cost_usd,
            self.unpriced_calls + (0 if usage.priced else 1),
        )

    def as_dict(self) -> dict[str, float | int]:
        d = asdict(self)
        d["prompt_tokens"] = self.prompt_tokens
        d["cost_usd"] = round(self.cost_usd, 8)
        return d


class UsageLedger:
    """Thread-safe list of usage records with roll-ups. One per process or per session: callers choose."""

    def __init__(self) -> None:
        self._records: list[UsageRecord] = []
        self._lock = threading.Lock()

    def record(self, record: UsageRecord) -> None:
        if not record.usage.priced:
            warn_unpriced(record.usage.model)
        with self._lock:
            self._records.append(record)

    def discard(self, *, session_id: str, turn_id: str | None = None) -> UsageTotals:
        """Drop a finished session's (or turn's) records (a process-wide ledger must not grow forever);
        returns their totals so the caller can persist them with the session."""

        def mine(r: UsageRecord) -> bool:
            return r.tags.session_id == session_id and (turn_id is None or r.tags.turn_id == turn_id)

        with self._lock:
            taken = [r for r in self._records if mine(r)]
            self._records = [r for r in self._records if not mine(r)]
        out = UsageTotals()
        for r in taken:
            out = out.add(r.usage)
        return out

    def records(self, predicate: Callable[[UsageRecord], bool] | None = None) -> list[UsageRecord]:
        with self._lock:
            items = list(self._records)
        return [r for r in items if predicate is None or predicate(r)]

    def totals(
        self, *, session_id: str | None = None, turn_id: str | None = None, agent: str | None = None
    ) -> UsageTotals:
        """Sum over the records matching every given tag (all records when none is given)."""
        out = UsageTotals()
        for r in self.records():
            if session_id is not None and r.tags.session_id != session_id:
                continue
            if turn_id is not None and r.tags.turn_id != turn_id:
                continue
            if agent is not None and r.tags.agent != agent:
                continue
            out = out.add(r.usage)
        return out

    def by_turn(self, session_id: str) -> dict[str | None, UsageTotals]:
        return self._group(lambda r: r.tags.turn_id, lambda r: r.tags.session_id == session_id)

    def by_agent(self, session_id: str, turn_id: str) -> dict[str | None, UsageTotals]:
        return self._group(
            lambda r: r.tags.agent, lambda r: r.tags.session_id == session_id and r.tags.turn_id == turn_id
        )

    def by_session(self) -> dict[str | None, UsageTotals]:
        return self._group(lambda r: r.tags.session_id, lambda r: True)

    def by_model(self) -> dict[str, UsageTotals]:
        return self._group(lambda r: r.usage.model, lambda r: True)  # type: ignore[return-value]

    def _group(
        self, key: Callable[[UsageRecord], str | None], keep: Callable[[UsageRecord], bool]
    ) -> dict[str | None, UsageTotals]:
        groups: dict[str | None, UsageTotals] = defaultdict(UsageTotals)
        for r in self.records(keep):
            groups[key(r)] = groups[key(r)].add(r.usage)
        return dict(groups)
