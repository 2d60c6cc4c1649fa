"""Create an instance/database with the schema — for the emulator and first-time setup."""

from __future__ import annotations

import contextlib

from store.spanner.connection import SpannerConfig, SpannerConnectionHandler
from store.spanner.ddl import all_ddl


def ensure_database(config: SpannerConfig, *, timeout: float = 120.0) -> None:
    """Create the instance (emulator only) and the database with all DDL if they do not exist.

    Against the emulator the VECTOR INDEX is left out (it is not supported there)."""
    from google.api_core.exceptions import AlreadyExists

    handler = SpannerConnectionHandler.for_config(config)
    client = handler.client()
    instance = client.instance(config.instance)
    if config.emulator_host and not instance.exists():
        config_name = f"{client.project_name}/instanceConfigs/emulator-config"
        with contextlib.suppress(AlreadyExists):
            client.instance(config.instance, configuration_name=config_name, node_count=1).create().result(
                timeout
            )
    database = instance.database(config.database)
    if database.exists():
        return
    ddl = all_ddl(config.dimensions, vector_index=config.emulator_host is None)
    with contextlib.suppress(AlreadyExists):
        instance.database(config.database, ddl_statements=ddl).create().result(timeout)


def drop_database(config: SpannerConfig) -> None:
    instance = SpannerConnectionHandler.for_config(config).client().instance(config.instance)
    database = instance.database(config.database)
    if database.exists():
        database.drop()
