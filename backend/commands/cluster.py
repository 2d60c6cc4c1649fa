"""`sidebar-assistant run-cluster`: two (or more) instances behind a local nginx."""

from __future__ import annotations

from pathlib import Path

import click

from backend.settings import Settings


@click.command("run-cluster")
@click.option(
    "--instances", type=click.IntRange(1, 16), default=2, show_default=True, help="Server processes."
)
@click.option(
    "--port",
    type=click.IntRange(1, 65530),
    default=None,
    help="nginx port; instances use the next ones (default: PORT).",
)
@click.option("--nginx", "nginx_binary", default=None, help="nginx binary (default: PATH, then /usr/sbin).")
@click.option(
    "--template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="nginx config template (default: infra/nginx/cluster.conf.template).",
)
def run_cluster(instances: int, port: int | None, nginx_binary: str | None, template: Path | None) -> None:
    """Run N instances behind nginx with sticky sessions: the scale-out path, locally."""
    from backend.assistant import prepare_demo_tenant
    from backend.cluster import DEFAULT_TEMPLATE, find_nginx
    from backend.cluster import run_cluster as run

    try:
        find_nginx(nginx_binary)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    template = template or DEFAULT_TEMPLATE
    if not template.is_file():
        raise click.ClickException(f"nginx template not found: {template} (run from a source checkout)")
    settings = Settings(**({"port": port} if port is not None else {}))
    prepare = prepare_demo_tenant if settings.turn_handler == "orchestrator" else None
    try:
        code = run(
            settings, instances=instances, nginx_binary=nginx_binary, template=template, prepare=prepare
        )
    except (RuntimeError, TimeoutError) as exc:  # a process that would not start: say which
        raise click.ClickException(str(exc)) from None
    raise SystemExit(code)
