"""Wiring: Settings → LLM, knowledge index, agents, routers → the Assistant (TurnHandler).

The one place that knows every layer's configuration; each layer gets plain values or its own
typed config object.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.commerce import HttpCommerceAPI, LocalCommerceAPI
from agents.http import HttpClientConfig
from agents.registry import AgentRegistry
from backend.settings import CASCADE_THRESHOLD_REPORT, Settings
from orchestrator.orchestrator import Assistant
from orchestrator.routing import SemanticRouter
from orchestrator.routing.base import Router, RoutingContext
from orchestrator.routing.cascade import CascadeConfig
from orchestrator.routing.factory import RouterConfig, build_router, needs_fallback
from orchestrator.routing.shadow import ShadowRouter
from store.factory import KNOWLEDGE_FILENAME, open_knowledge_index
from store.knowledge import KnowledgeIndex
from store.spanner.connection import SpannerConfig
from vertex_interface import LLM, LLMConfig, create_llm

log = logging.getLogger(__name__)


def llm_config(settings: Settings) -> LLMConfig:
    return LLMConfig(
        backend=settings.llm_backend,
        project=settings.google_cloud_project,
        location=settings.google_cloud_location,
        gemini_model=settings.gemini_model,
        embedding_model=settings.embedding_model,
        thinking_level=None
        if settings.gemini_thinking_level == "default"
        else settings.gemini_thinking_level,
        thinking_budget=settings.gemini_thinking_budget,
    )


def spanner_config(settings: Settings, dimensions: int) -> SpannerConfig:
    """Where the Spanner archive and index live (ARCHIVE_BACKEND=spanner)."""
    if not settings.spanner_project or not settings.spanner_instance:
        raise ValueError("ARCHIVE_BACKEND=spanner needs SPANNER_PROJECT and SPANNER_INSTANCE")
    emulator = os.environ.get("SPANNER_EMULATOR_HOST")
    return SpannerConfig(
        project=settings.spanner_project,
        instance=settings.spanner_instance,
        database=settings.spanner_database,
        emulator_host=emulator,
        # The emulator has no vector indexes: exact distances there, approximate in production.
        vector_search="exact" if emulator else "approx",
        dimensions=dimensions,
    )


class LLMEmbedder:
    """The store's Embedder protocol over the LLM layer (Vertex embeddings in production)."""

    def __init__(self, llm: LLM, dimensions: int) -> None:
        self.llm, self.dimensions = llm, dimensions

    def embed(self, texts: list[str], *, task_type: str):
        return self.llm.embed(texts, task_type=task_type)


def build_llm(settings: Settings) -> tuple[LLM, object]:
    """The LLM and the embedder the knowledge index uses (one MiniLM model shared offline)."""
    config = llm_config(settings)
    if config.backend == "local":
        from vertex_interface.local_embedder import LocalEmbedder

        embedder = LocalEmbedder()
        if (
            "embedding_dimensions" in settings.model_fields_set
            and settings.embedding_dimensions != embedder.dimensions
        ):
            raise ValueError(
                f"EMBEDDING_DIMENSIONS={settings.embedding_dimensions}, but LLM_BACKEND=local embeds with "
                f"MiniLM ({embedder.dimensions} dimensions)"
            )
        return create_llm(config, embedder=embedder), embedder
    # One setting: the width Vertex is asked for is the width the index (and its DDL) expects.
    dims = settings.embedding_dimensions
    llm = create_llm(config, embedding_dimensions=dims)
    return llm, LLMEmbedder(llm, dimensions=dims)


def open_index(settings: Settings, embedder) -> KnowledgeIndex:
    spanner = spanner_config(settings, embedder.dimensions) if settings.archive_backend == "spanner" else None
    return open_knowledge_index(
        settings.archive_backend,
        embedder=embedder,
        sqlite_path=Path(settings.data_dir) / KNOWLEDGE_FILENAME,
        spanner=spanner,
    )


def router_config(settings: Settings) -> RouterConfig:
    """The routers' typed config from the settings (FunctionGemma's only when it is used: its
    module imports torch)."""
    functiongemma = None
    if settings.uses_functiongemma:
        from orchestrator.routing.functiongemma.model import BaseModelConfig
        from orchestrator.routing.functiongemma.router import FunctionGemmaConfig

        base = (
            BaseModelConfig(source="functiongemma", functiongemma_path=str(settings.functiongemma_base_path))
            if settings.functiongemma_base_path
            else BaseModelConfig()
        )
        functiongemma = FunctionGemmaConfig(
            base=base,
            adapter_path=str(settings.functiongemma_adapter_dir),
            quantize_int8=settings.functiongemma_int8,
        )
    return RouterConfig(
        cascade=CascadeConfig(
            local_threshold=settings.cascade_local_threshold,
            remote_threshold=settings.cascade_remote_threshold,
            source=CASCADE_THRESHOLD_REPORT,
        ),
        cascade_local=settings.cascade_local,
        functiongemma=functiongemma,
    )


def shadow_usage(llm: LLM, ctx: RoutingContext) -> dict[str, float] | None:
    """A shadow candidate's model usage, taken off the process ledger (it has no turn to be billed
    to) and reported with its decision."""
    if not ctx.session_id:
        return None
    totals = llm.ledger.discard(session_id=ctx.session_id, turn_id=ctx.turn_id)
    return {"cost_usd": round(totals.cost_usd, 8)} if totals.calls else None


LateShadow = Callable[[str, str, dict[str, Any]], Any]  # (session_id, turn_id, meta.shadow)


def build_routers(
    settings: Settings, llm: LLM, manifests: list, *, on_late_shadow: LateShadow | None = None
) -> tuple[Router, Router | None]:
    """The configured router and, for routers that can fail, the semantic router as fallback.
    `on_late_shadow` stores a shadow candidate's decision that finished after its turn."""

    def embed(texts: list[str]):
        return llm.embed(texts, task_type="SEMANTIC_SIMILARITY")

    config = router_config(settings)
    router = build_router(settings.router, manifests, embed=embed, llm=llm, config=config)
    if settings.router == "cascade" and not llm.capabilities.controlled_generation:
        log.warning(
            "ROUTER=cascade with LLM_BACKEND=%s: this LLM has no controlled generation, so "
            "every unsure turn keeps the %s decision (path local_fallback)",
            llm.backend,
            settings.cascade_local,
        )
    fallback = SemanticRouter(embed, manifests) if needs_fallback(settings.router, config) else None
    if settings.shadow_router != "none":
        # The candidate only watches: the fallback still backs the live router alone.
        shadow_config = config
        if settings.shadow_functiongemma_adapter_dir is not None and config.functiongemma is not None:
            # A retrained adapter watched beside the live one before it is promoted.
            fg = config.functiongemma.model_copy(
                update={"adapter_path": str(settings.shadow_functiongemma_adapter_dir)}
            )
            shadow_config = config.model_copy(update={"functiongemma": fg})
        candidate = build_router(
            settings.shadow_router, manifests, embed=embed, llm=llm, config=shadow_config
        )
        router = ShadowRouter(
            router, candidate, settle=lambda c: shadow_usage(llm, c), on_late=on_late_shadow
        )
        log.info("shadow mode: %s decides, %s runs beside it", router.live.name, candidate.name)
    return router, fallback


def build_assistant(
    settings: Settings,
    *,
    llm: LLM | None = None,
    index: KnowledgeIndex | None = None,
    on_late_shadow: LateShadow | None = None,
) -> Assistant:
    """`llm`/`index` may be passed in (tests share one model and a pre-built demo index);
    `on_late_shadow` is the backend's store for late shadow decisions (`build_routers`)."""
    if llm is None or index is None:
        built_llm, embedder = build_llm(settings)
        llm = llm or built_llm
        index = index or open_index(settings, embedder)
    registry = AgentRegistry([p for p in settings.agent_paths.split(":") if p.strip()], strict=False)
    for err in registry.errors:
        log.error("agent not loaded: %s", err)
    agents = registry.enabled()

    router, fallback = build_routers(
        settings, llm, [a.manifest for a in agents], on_late_shadow=on_late_shadow
    )
    if settings.commerce_api_url:
        key = settings.commerce_api_key.get_secret_value() if settings.commerce_api_key else None
        # The whole call, retries included, must fit inside the order agent's own timeout.
        commerce = HttpCommerceAPI(
            settings.commerce_api_url, api_key=key, config=HttpClientConfig(total_deadline_s=4.0)
        )
    else:
        commerce = LocalCommerceAPI()
    log.info(
        "assistant: %d agents (%s), router=%s, llm=%s",
        len(agents),
        ", ".join(a.name for a in agents),
        router.name,
        llm.backend,
    )
    return Assistant(agents, router, llm, index, services={"commerce": commerce}, fallback_router=fallback)


def prepare_demo_tenant(settings: Settings) -> None:
    """`sidebar-assistant run`, first start: ingest the bundled demo data (progress on stderr)."""
    if not settings.demo_tenant:
        return
    from store.demo import ensure_demo_tenant

    _, embedder = build_llm(settings)
    index = open_index(settings, embedder)
    try:
        reports = ensure_demo_tenant(index, settings.demo_tenant, progress=True)
    finally:
        index.close()
    for source, report in reports.items():
        log.info("demo tenant %s: %s", source, report)
