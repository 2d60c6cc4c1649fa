"""Routers by name: one place that knows how each is built (the app, `eval-router`, benchmarks).

    keyword        trigger words, no model                       (offline)
    semantic       MiniLM nearest examples                        (offline, needs `embed`)
    semantic-head  MiniLM + a trained classification head         (offline, needs `embed`)
    functiongemma  constrained FunctionGemma decoding             (offline, loads a 270M model)
    gemini         the controlled-generation controller           (needs `llm`)
    cascade        a local router above, the gemini controller when it is unsure (needs `llm`)

Also `RouterWarmup`: loads a slow router (FunctionGemma) in the background so readiness can
report it, instead of the first turn paying for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, SerializeAsAny

from agents.base import AgentManifest
from orchestrator.routing.base import Router
from orchestrator.routing.cascade import CascadeConfig, CascadeRouter

log = logging.getLogger(__name__)

Embed = Callable[[list[str]], np.ndarray]
RouterName = Literal["keyword", "semantic", "semantic-head", "functiongemma", "gemini", "cascade"]
LocalRouterName = Literal["keyword", "semantic", "semantic-head", "functiongemma"]
ROUTER_NAMES: tuple[str, ...] = get_args(RouterName)
LOCAL_ROUTER_NAMES: tuple[str, ...] = get_args(LocalRouterName)


class RouterConfig(BaseModel):
    """What the routers need beyond the manifests (typed, validated, serialisable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cascade: CascadeConfig = CascadeConfig()
    cascade_local: LocalRouterName = "semantic"
    # A FunctionGemmaConfig, typed loosely so importing this module does not import torch;
    # SerializeAsAny dumps all of its fields.
    functiongemma: SerializeAsAny[BaseModel] | None = None


class RouterUnavailable(ValueError):
    """The router cannot be built here (missing model files, module, embedder or LLM)."""


def check_adapter(path: str | Path | None) -> None:
    """A configured FunctionGemma adapter must be a directory with a peft adapter in it."""
    if path is None:
        return
    p = Path(path)
    if not p.is_dir():
        raise RouterUnavailable(
            f"FunctionGemma adapter directory {p} does not exist; train one "
            "(python -m orchestrator.routing.functiongemma.train) or point FUNCTIONGEMMA_ADAPTER at one"
        )
    if not (p / "adapter_config.json").is_file():
        raise RouterUnavailable(f"{p} is not a peft adapter directory (no adapter_config.json)")


def build_router(
    name: str,
    manifests: Sequence[AgentManifest],
    *,
    embed: Embed | None = None,
    llm: object | None = None,
    config: RouterConfig | None = None,
) -> Router:
    """The router `name` over these manifests. Raises RouterUnavailable with the reason when
    something it needs is missing."""
    config = config or RouterConfig()
    if name not in ROUTER_NAMES:
        raise RouterUnavailable(f"unknown router {name!r}; choose one of {', '.join(ROUTER_NAMES)}")
    if name == "keyword":
        from orchestrator.routing.keyword import KeywordRouter

        return KeywordRouter(manifests)
    if name == "semantic":
        from orchestrator.routing.semantic import SemanticRouter

        return SemanticRouter(_need_embed(embed, name), manifests)
    if name == "semantic-head":
        try:
            from orchestrator.routing.head import SemanticHeadRouter
        except ImportError as exc:
            raise RouterUnavailable(
                f"the semantic-head router is not available in this build ({exc})"
            ) from exc
        return SemanticHeadRouter(_need_embed(embed, name), manifests)
    if name == "functiongemma":
        # Checked before the import: a missing adapter should not cost a torch import to report.
        check_adapter(getattr(config.functiongemma, "adapter_path", None))
        from orchestrator.routing.functiongemma.router import FunctionGemmaConfig, FunctionGemmaRouter

        fg = config.functiongemma or FunctionGemmaConfig()
        if not isinstance(fg, FunctionGemmaConfig):
            raise RouterUnavailable("RouterConfig.functiongemma must be a FunctionGemmaConfig")
        return FunctionGemmaRouter(manifests, fg)
    if name == "gemini":
        from orchestrator.routing.gemini import GeminiController

        if llm is None:
            raise RouterUnavailable("the gemini router needs an LLM")
        return GeminiController(llm, manifests)  # type: ignore[arg-type]
    # cascade
    if llm is None:
        raise RouterUnavailable("the cascade router needs an LLM for its remote (gemini) router")
    local = build_router(config.cascade_local, manifests, embed=embed, llm=llm, config=config)
    remote = build_router("gemini", manifests, llm=llm, config=config)
    return CascadeRouter(local, remote, config.cascade)


def _need_embed(embed: Embed | None, name: str) -> Embed:
    if embed is None:
        raise RouterUnavailable(f"the {name} router needs an embedding function")
    return embed


def needs_fallback(name: str, config: RouterConfig | None = None) -> bool:
    """Whether the router can raise RoutingError (model down, unparseable output), so the
    orchestrator should have a fallback router. The cascade absorbs its remote's failures but
    not its local router's."""
    config = config or RouterConfig()
    if name == "cascade":
        return config.cascade_local in ("functiongemma", "semantic-head")
    return name in ("gemini", "functiongemma", "semantic-head")


class RouterWarmup:
    """Runs a router's `warm_up()` (if it has one) on a daemon thread; `status()` is what
    readiness reports: "ok", "warming up (…)", or "failed: …"."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._done = threading.Event()
        self._error: str | None = None
        self._started: float | None = None
        self.seconds: float | None = None

    def start(self) -> RouterWarmup:
        warm = getattr(self.router, "warm_up", None)
        if not callable(warm):
            self.seconds = 0.0
            self._done.set()
            return self
        self._started = time.perf_counter()

        def run() -> None:
            try:
                warm()
                log.info("router %s warm in %.1f s", self.router.name, time.perf_counter() - self._started)
            except Exception as exc:  # reported through readiness, not raised
                self._error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.exception("router %s failed to warm up", self.router.name)
            finally:
                self.seconds = time.perf_counter() - (self._started or 0.0)
                self._done.set()

        threading.Thread(target=run, name=f"warm-{self.router.name}", daemon=True).start()
        return self

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self._error is None

    def wait(self, timeout: float | None = None) -> bool:
        self._done.wait(timeout)
        return self.ready

    def status(self) -> str:
        if self._error is not None:
            return f"failed: {self._error}"
        if self._done.is_set():
            return "ok"
        since = time.perf_counter() - (self._started or time.perf_counter())
        return f"warming up ({since:.0f} s)"
