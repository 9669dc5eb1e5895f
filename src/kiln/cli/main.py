"""`kiln` console script: `kiln up` runs the workspace server in the foreground."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import click

from kiln import __version__


@click.group()
@click.version_option(__version__, prog_name="kiln")
def main() -> None:
    """Kiln: a self-hosted lakehouse workspace that speaks the Databricks REST API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--data-dir",
    default=".kiln",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the store, DBFS and the admin token live.",
)
@click.option("--log-level", default="info", show_default=True)
@click.option("--demo", is_flag=True, help="Seed a demo folder in the admin's home.")
def up(host: str, port: int, data_dir: Path, log_level: str, demo: bool) -> None:
    """Run the Kiln server in the foreground (SIGTERM or Ctrl+C stops it cleanly)."""
    import uvicorn

    from kiln.server import create_app
    from kiln.settings import KilnSettings

    settings = KilnSettings(host=host, port=port, data_dir=data_dir, demo=demo)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once shutdown is done; a no-op handler
    # makes a SIGTERM stop exit 0 after the graceful shutdown instead of dying by signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    click.echo(f"Kiln {__version__} starting at http://{shown}:{port}")
    click.echo(f"Admin token: {settings.admin_token_path} (created on first start, mode 0600)")
    server.run()
