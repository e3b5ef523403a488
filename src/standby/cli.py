"""The `standby` command: thin sub-commands that call into the parts."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from standby.commands.common import ConfigOpt, JsonOpt, load_config
from standby.commands.group import Commands
from standby.output import emit, fail
from standby.settings import ConfigError, SiteSettings, load_secrets
from standby.store import Store

app = typer.Typer(
    help="Standby: an identity provider built for disaster recovery.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=Commands,
)


def load(config: Path) -> SiteSettings:
    return load_config(config, with_secrets=False)[0]


def open_store(config: Path) -> tuple[SiteSettings, Store]:
    settings = load(config)
    store = Store(settings.store.url, settings.site)
    store.create(role=settings.role)
    return settings, store


@app.command()
def serve(config: ConfigOpt) -> None:
    """Run the site's HTTP service."""
    from standby import listen
    from standby.server import build_site

    settings = load(config)
    try:
        secrets = load_secrets(settings)
        # The port first: a busy one must stop us before the store or keys are touched.
        sock = listen.bind(settings.http.host, settings.http.port, f"http.port in {config}")
    except (ConfigError, listen.ListenError) as exc:
        fail(str(exc), 2)
        return
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    _, api = build_site(settings, secrets)
    listen.serve(api, sock, log_level=settings.log_level, access_log=False)


@app.command("verify-log")
def verify_log(config: ConfigOpt, json_out: JsonOpt = False) -> None:
    """Check the change log's hash chain; exit 1 naming the first bad LSN."""
    from standby.store.verify import verify_store

    _, store = open_store(config)
    report = verify_store(store)
    if report.ok:
        emit(
            report.to_dict(),
            json_out,
            f"[green]ok[/]: {report.checked} records verified "
            f"(lsn {report.first_lsn}..{report.last_lsn})",
        )
        return
    emit(
        report.to_dict(),
        json_out,
        f"[bold red]change log broken at lsn {report.first_bad_lsn}[/]: {report.problem}",
    )
    raise typer.Exit(1)


def _register_commands() -> None:
    """Attach each part's command group (one module per part under standby.commands)."""
    from standby.commands import (
        backup,
        cluster,
        cluster_init,
        demo,
        identity,
        init,
        keys,
        replication,
        router,
        traffic,
    )

    parts = (init, identity, keys, backup, replication, cluster, cluster_init, router, traffic)
    for part in (*parts, demo):
        part.register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
