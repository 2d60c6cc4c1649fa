"""`sidebar-assistant run` and `sidebar-assistant dev-token`."""

from __future__ import annotations

import click

from backend.settings import Settings


@click.command("run")
@click.option(
    "--instances",
    type=click.IntRange(1, 16),
    default=None,
    help="Server processes to start (default: INSTANCES).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port of the first instance (default: PORT)."
)
def run(instances: int | None, port: int | None) -> None:
    """Run the assistant on the embedded defaults (Redis, archive, offline models)."""
    from backend.assistant import prepare_demo_tenant
    from backend.launcher import run as run_cluster

    overrides = {k: v for k, v in {"instances": instances, "port": port}.items() if v is not None}
    settings = Settings(**overrides)
    prepare = prepare_demo_tenant if settings.turn_handler == "orchestrator" else None
    raise SystemExit(run_cluster(settings, prepare=prepare))


@click.command("dev-token")
@click.option("--tenant", default="demo", show_default=True)
@click.option("--user", "user_id", default="agent-1", show_default=True)
@click.option("--name", "user_name", default="Demo Agent", show_default=True)
@click.option("--role", type=click.Choice(["agent", "admin"]), default=None, help="admin opens /dev/insights")
def dev_token(tenant: str, user_id: str, user_name: str, role: str | None) -> None:
    """Print a signed token for AUTH_MODE=dev (local development and tests only)."""
    from backend.auth import DevTokenAuthenticator, load_or_create_secret

    settings = Settings()
    if settings.auth_mode != "dev":
        raise click.ClickException("dev tokens only work with AUTH_MODE=dev")
    secret = (
        settings.secret_key.get_secret_value()
        if settings.secret_key
        else load_or_create_secret(settings.data_dir)
    )
    try:
        click.echo(
            DevTokenAuthenticator(secret, settings.dev_token_ttl_seconds).mint(
                tenant, user_id, user_name, role=role
            )
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
