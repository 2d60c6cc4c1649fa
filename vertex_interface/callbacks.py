"""Before/after callbacks around a call: telemetry, guardrails, test probes.

One small generic shape, reused for model calls here and meant for agent and tool calls in the
orchestrator: ``CallbackChain[Request, Result]``.

- a *before* callback gets the request; it returns ``None`` to let it through or ``Veto(reason)``
  to refuse it (the chain then raises ``Vetoed``, and nothing is sent);
- an *after* callback gets ``(request, result)``; it may raise a typed error to reject the result;
- an *error* callback gets ``(request, exception)`` for telemetry; its own failures are logged,
  never allowed to hide the original error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .errors import Vetoed

log = logging.getLogger(__name__)

RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class Veto:
    reason: str


BeforeCallback = Callable[[RequestT], "Veto | None"]
AfterCallback = Callable[[RequestT, ResultT], None]
ErrorCallback = Callable[[RequestT, BaseException], None]


def _name(fn: Callable[..., object]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


@dataclass
class CallbackChain(Generic[RequestT, ResultT]):
    before: list[Callable[[RequestT], Veto | None]] = field(default_factory=list)
    after: list[Callable[[RequestT, ResultT], None]] = field(default_factory=list)
    on_error: list[Callable[[RequestT, BaseException], None]] = field(default_factory=list)

    def run_before(self, request: RequestT) -> None:
        """Run before-callbacks in order; the first veto stops the chain and raises ``Vetoed``."""
        for cb in self.before:
            verdict = cb(request)
            if isinstance(verdict, Veto):
                raise Vetoed(verdict.reason, callback=_name(cb), model=getattr(request, "model", None))
            if verdict is not None:
                raise TypeError(f"before-callback {_name(cb)} must return None or Veto, not {verdict!r}")

    def run_after(self, request: RequestT, result: ResultT) -> None:
        for cb in self.after:
            cb(request, result)

    def run_error(self, request: RequestT, error: BaseException) -> None:
        for cb in self.on_error:
            try:
                cb(request, error)
            except Exception:
                log.exception("error callback %s failed", _name(cb))

    def extended(
        self,
        before: Iterable[Callable[[RequestT], Veto | None]] = (),
        after: Iterable[Callable[[RequestT, ResultT], None]] = (),
        on_error: Iterable[Callable[[RequestT, BaseException], None]] = (),
    ) -> CallbackChain[RequestT, ResultT]:
        """A new chain with extra callbacks appended (the original is left unchanged)."""
        return CallbackChain([*self.before, *before], [*self.after, *after], [*self.on_error, *on_error])
