"""`standby keys list|stage|rotate|retire|remove`: the site's OIDC signing keys.

Works on the site's store directly (the running server notices within seconds); writes
go through the change log, so a standby receives them by replication and refuses them
itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from standby.commands.common import open_site
from standby.output import emit, fail, table

if TYPE_CHECKING:
    from standby.server import Site

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="site config file", envvar="STANDBY_CONFIG")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
KidArg = Annotated[str, typer.Argument(help="the key id (kid), see `standby keys list`")]

keys_app = typer.Typer(
    help="OIDC signing keys: staged -> active -> retired -> removed.", no_args_is_help=True
)


def _site(config: Path) -> Site:
    return open_site(config)


def _when(us: int | None) -> str:
    if us is None:
        return ""
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")


@keys_app.command("list")
def list_(config: ConfigOpt, json_out: JsonOpt = False) -> None:
    """Every key with its state and the times it changed state."""
    from standby.identity import keys

    site = _site(config)
    rows = keys.list_keys(site)
    data = [{k: v for k, v in r.items() if k != "public_jwk"} for r in rows]
    if json_out:
        emit({"site": site.name, "keys": data}, True)
        return
    if not rows:
        emit({}, False, "no signing keys yet (the server creates one at start-up)")
        return
    table(
        [
            {
                "kid": r["id"],
                "alg": r["alg"],
                "state": r["state"],
                "created": _when(r["created_at"]),
                "activated": _when(r["activated_at"]),
                "retired": _when(r["retired_at"]),
                "removed": _when(r["removed_at"]),
            }
            for r in rows
        ],
        ["kid", "alg", "state", "created", "activated", "retired", "removed"],
        title=f"signing keys of {site.name}",
        whole=("kid",),
    )


def _change(config: Path, json_out: bool, op: Callable[[Site], list[str]]) -> None:
    from standby.identity.keys import KeyOpError
    from standby.store import NotWritable

    site = _site(config)
    try:
        done = op(site)
    except NotWritable as exc:
        fail(f"{exc}; change keys on the primary (they replicate here)")
        return
    except KeyOpError as exc:
        fail(str(exc))
        return
    out: dict[str, Any] = {"site": site.name, "done": done}
    emit(out, json_out, "\n".join(done) or "nothing to do")


@keys_app.command("stage")
def stage(config: ConfigOpt, json_out: JsonOpt = False) -> None:
    """Publish a new key in JWKS without signing with it (rotate activates it later)."""
    from standby.identity import keys

    _change(config, json_out, keys.stage)


@keys_app.command("rotate")
def rotate(config: ConfigOpt, json_out: JsonOpt = False) -> None:
    """Sign with the oldest staged key (or a new one) from now on; retire the active key."""
    from standby.identity import keys

    _change(config, json_out, keys.rotate)


@keys_app.command("retire")
def retire(kid: KidArg, config: ConfigOpt, json_out: JsonOpt = False) -> None:
    """Stop a key signing; it stays published until every token it signed has expired."""
    from standby.identity import keys

    _change(config, json_out, lambda site: keys.retire(site, kid))


@keys_app.command("remove")
def remove(
    kid: KidArg,
    config: ConfigOpt,
    force: Annotated[
        bool, typer.Option("--force", help="do not wait for tokens it signed to expire")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Destroy a retired (or staged) key and stop publishing it."""
    from standby.identity import keys

    _change(config, json_out, lambda site: keys.remove(site, kid, force=force))


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
