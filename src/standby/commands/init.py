"""`standby init`: write one site's config and secrets file, and create its store.

A standby created from its primary (``--role standby --primary-url URL --secrets-from
FILE``) takes the primary's public URL unless ``--public-url`` says it: it asks the
primary (``GET /healthz``), and when the primary does not answer, reads the primary's
``standby.yaml`` beside the secrets file. Sites that disagree on it are refused here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from standby.output import emit, err_console, fail
from standby.settings import ConfigError, check_public_url, load_settings, write_site

ROLES = ("primary", "standby")


def _primary_says(primary_url: str) -> tuple[str, str | None] | None:
    """(where, its public URL) from the primary's public /healthz; None if no answer."""
    try:
        resp = httpx.get(f"{primary_url.rstrip('/')}/healthz", timeout=3.0)
        body = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(body, dict) or "public_url" not in body:
        return None
    value = body["public_url"]
    return f"the primary at {primary_url}", value if isinstance(value, str) else None


def _primary_config_says(secrets_from: Path | None) -> tuple[str, str | None] | None:
    """(where, its public URL) from the primary's standby.yaml beside its secrets file."""
    config = secrets_from.parent / "standby.yaml" if secrets_from else None
    if config is None or not config.exists():
        return None
    return str(config), load_settings(config, env={}).http.public_url


def _public_url(
    role: str, explicit: str | None, primary_url: str | None, secrets_from: Path | None
) -> tuple[str | None, str]:
    """The public URL to write, and where it came from."""
    if explicit is not None:
        try:
            explicit = check_public_url(explicit)
        except ValueError as exc:
            raise ConfigError(f"--public-url: {exc}") from None
    if role != "standby" or primary_url is None:
        return explicit, "--public-url"
    learned = _primary_says(primary_url) or _primary_config_says(secrets_from)
    if learned is None:
        if explicit is not None:
            return explicit, "--public-url"
        raise ConfigError(
            f"cannot learn the public URL: the primary at {primary_url} does not answer and "
            "no standby.yaml is beside --secrets-from; pass --public-url URL (the same on "
            "every site)"
        )
    source, theirs = learned
    if explicit is not None and explicit != theirs:
        raise ConfigError(
            f"--public-url {explicit} differs from the primary's public URL "
            f"{theirs or '(none set)'} (from {source}); every site of a deployment has the "
            "same public URL: set it on the primary too"
        )
    return theirs, f"from {source}" if theirs else f"{source} has none"


def init(
    site: Annotated[str, typer.Option(help="site name, e.g. site-a")],
    dir: Annotated[Path, typer.Option("--dir", help="folder for config, secrets and store")],
    port: Annotated[int, typer.Option(help="HTTP port")] = 8080,
    role: Annotated[str, typer.Option(help="primary or standby")] = "primary",
    public_url: Annotated[
        str | None,
        typer.Option(
            help="the URL clients use (router, load balancer): every site's issuer base; "
            "a standby takes its primary's when not given"
        ),
    ] = None,
    store_url: Annotated[str | None, typer.Option(help="store URL (default: SQLite file)")] = None,
    primary_url: Annotated[
        str | None, typer.Option(help="standby only (required): the primary site's own URL")
    ] = None,
    secrets_from: Annotated[
        Path | None,
        typer.Option(help="copy this secrets file (a standby shares its primary's secrets)"),
    ] = None,
    controller_url: Annotated[
        str | None, typer.Option(help="the controller this site renews its lease with")
    ] = None,
    peer_url: Annotated[
        list[str] | None,
        typer.Option(help="another site of the cluster (repeat for each); vouches in failsafe"),
    ] = None,
) -> None:
    """Write a site config and a secrets file (mode 0600), and create the store."""
    from standby.store import Store

    if role not in ROLES:
        fail(f"--role {role!r} is not a role; use primary or standby", 2)
    if role == "standby" and not primary_url:
        fail("--role standby needs --primary-url URL (the primary site's own address)", 2)
    if role == "primary" and primary_url:
        fail("--primary-url is for a standby (--role standby); a primary follows no one", 2)
    try:
        public, source = _public_url(role, public_url, primary_url, secrets_from)
        overrides: dict[str, Any] = {"http": {"port": port}, "role": role}
        if public:
            overrides["http"]["public_url"] = public
        if store_url:
            overrides["store"] = {"url": store_url}
        if primary_url:
            overrides["replication"] = {"primary_url": primary_url}
        if controller_url or peer_url:
            overrides["cluster"] = {
                **({"controller_url": controller_url} if controller_url else {}),
                **({"peer_urls": list(peer_url)} if peer_url else {}),
            }
        config_path, secrets_path = write_site(dir, site, overrides, secrets_from)
        settings = load_settings(config_path)
    except ConfigError as exc:
        fail(str(exc), 2)
        return
    store = Store(settings.store.url, settings.site)
    store.create(role=settings.role)
    store.close()
    if public:
        issuer = f"issuers: {public}/t/<tenant> ({source})"
    else:
        issuer = f"[yellow]warning[/]: no public URL ({source}); issuers are this site's own "
        issuer += f"{settings.own_url()}/t/<tenant> and change on failover: set http.public_url"
        err_console.print(issuer)
    emit(
        {"config": str(config_path), "secrets": str(secrets_path), "public_url": public},
        False,
        f"wrote {config_path} and {secrets_path} (mode 0600); store ready.\n"
        + (f"{issuer}\n" if public else "")
        + f"next: standby serve --config {config_path}",
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
