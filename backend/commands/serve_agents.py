"""`sidebar-assistant serve-agents [--agents a,b] [--port P]` — our built-in agents over A2A."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from backend.settings import Settings


@click.command("serve-agents")
@click.option(
    "--agents",
    "names",
    default="",
    help="Comma-separated agent names to serve (default: every enabled built-in agent).",
)
@click.option("--host", default=None, help="Interface to bind (default: HOST).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8090, show_default=True, help="Port; 0 picks a free one."
)
@click.option(
    "--public-url",
    default=None,
    help="Base URL callers reach this service at, for the agent cards (default: http://HOST:PORT).",
)
@click.option(
    "--api-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="A2A_API_KEYS_FILE",
    default=None,
    help="YAML {tenant: [sha256 of an API key, ...]}: per-tenant keys accepted besides sidebar tokens.",
)
def serve_agents(
    names: str, host: str | None, port: int, public_url: str | None, api_keys: Path | None
) -> None:
    """Expose built-in agents as A2A servers (agent card + JSON-RPC per agent, under /agents/NAME/)."""
    import uvicorn

    from backend.a2a_server import CallerAuth, build_app, load_api_keys, select_agents
    from backend.assistant import build_assistant, prepare_demo_tenant
    from backend.observability import configure_logging
    from backend.services import build_authenticator, server_secret, session_tokens

    settings = Settings()
    configure_logging(settings.log_level, json_logs=settings.log_format == "json")
    try:
        keys = load_api_keys(api_keys) if api_keys else {}
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"API keys file: {exc}") from None
    prepare_demo_tenant(settings)
    assistant = build_assistant(settings)
    try:
        agents = select_agents(assistant, names.split(","))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    host = host or settings.host
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    base_url = (public_url or f"http://{host}:{bound}").rstrip("/")
    secret = server_secret(settings)
    authenticator = build_authenticator(settings, secret, session_tokens(settings, secret))
    app = build_app(assistant, agents, base_url, CallerAuth(authenticator, keys))
    server = uvicorn.Server(uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False))
    click.echo(f"A2A_READY {base_url}", err=False)
    for agent in agents:
        click.echo(f"  {agent.name}: {base_url}/agents/{agent.name}/.well-known/agent-card.json")
    try:
        server.run(sockets=[sock])
    finally:
        assistant.close()
