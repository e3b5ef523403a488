"""What every command group shares: the --config/--json options and loading a site."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from standby.output import fail
from standby.settings import ConfigError, Secrets, SiteSettings, load_secrets, load_settings

if TYPE_CHECKING:
    from standby.server import Site

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="site config file", envvar="STANDBY_CONFIG")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def load_config(config: Path, *, with_secrets: bool = True) -> tuple[SiteSettings, Secrets | None]:
    """Settings (and secrets) of a site; a bad config is one clear message and exit 2."""
    try:
        settings = load_settings(config)
        return settings, load_secrets(settings) if with_secrets else None
    except ConfigError as exc:
        fail(str(exc), 2)
        raise  # unreachable: fail() exits


def load_site_config(config: Path) -> tuple[SiteSettings, Secrets]:
    settings, secrets = load_config(config)
    assert secrets is not None
    return settings, secrets


def open_site(config: Path) -> Site:
    """The site of ``config`` with its store opened (and created if new), not served."""
    from standby.server import Site
    from standby.store import Store

    settings, secrets = load_site_config(config)
    store = Store(settings.store.url, settings.site)
    store.create(role=settings.role)
    return Site(settings, secrets, store)
