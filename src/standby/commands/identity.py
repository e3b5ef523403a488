"""`standby tenant|user|client ...`: administer identity data from the shell.

Works on the store of ``--config`` directly; every change goes through the change log
with an audit event whose actor is ``cli``. Passwords come from a hidden prompt or
``--password-stdin`` (``--password`` exists for scripts but lands in shell history)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from standby.commands.common import load_site_config
from standby.output import emit, fail, table

if TYPE_CHECKING:
    from standby.server import Site

ACTOR = "cli"

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="site config file", envvar="STANDBY_CONFIG")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="tenant id")]
UsernameArg = Annotated[str, typer.Argument(help="the user's username")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from the first line of stdin")
]
PasswordOpt = Annotated[
    str | None,
    typer.Option("--password", help="the password (for scripts; visible in shell history)"),
]

tenant_app = typer.Typer(help="Tenants: create and list.", no_args_is_help=True)
user_app = typer.Typer(
    help="Users: create, list, set password, disable, delete.", no_args_is_help=True
)
client_app = typer.Typer(help="OIDC clients: create and list.", no_args_is_help=True)


@contextmanager
def _site(config: Path) -> Iterator[Site]:
    """The site of ``config`` (store opened, not served); errors become exit codes."""
    from standby.errors import ApiError
    from standby.server import Site
    from standby.store import Store, StoreError

    settings, secrets = load_site_config(config)
    store = Store(settings.store.url, settings.site)
    try:
        store.create(role=settings.role)
        yield Site(settings, secrets, store)
    except ApiError as exc:
        fail(f"{exc.message} ({exc.error})", 1)
    except StoreError as exc:
        fail(str(exc), 1)
    finally:
        store.close()


def _when(us: int | None) -> str:
    return "" if us is None else datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _password(from_stdin: bool, given: str | None, prompt: str = "Password") -> str:
    if given is not None:
        return given
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            fail("--password-stdin: no password on stdin", 1)
        return line
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


def _user_id(site: Site, tenant: str, username: str) -> str:
    from standby.identity.tenants import require_tenant
    from standby.identity.users import find_user

    require_tenant(site, tenant)
    user = find_user(site, tenant, username)
    if user is None:
        fail(f"no user {username!r} in tenant {tenant!r}; see `standby user list -t {tenant}`", 1)
        raise AssertionError  # unreachable: fail exits
    return str(user["id"])


# ---------------------------------------------------------------- tenants


@tenant_app.command("create")
def tenant_create(
    config: ConfigOpt,
    tenant_id: Annotated[str, typer.Argument(help="tenant id: lower-case letters, digits, -")],
    name: Annotated[str | None, typer.Option(help="display name (default: the id)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a tenant."""
    from standby.identity.tenants import create_tenant

    with _site(config) as site:
        row = create_tenant(site, tenant_id, name or tenant_id, ACTOR)
    emit(row, json_out, f"created tenant [bold]{row['id']}[/] ({row['name']})")


@tenant_app.command("list")
def tenant_list(config: ConfigOpt, json_out: JsonOpt = False) -> None:
    """List tenants."""
    from standby.identity.tenants import list_tenants

    with _site(config) as site:
        rows = list_tenants(site)
    if json_out:
        emit(rows, True)
        return
    rows = [{**r, "created": _when(r["created_at"])} for r in rows]
    table(rows, ["id", "name", "created"], whole=("id",))


# ---------------------------------------------------------------- users


@user_app.command("create")
def user_create(
    config: ConfigOpt,
    tenant: TenantOpt,
    username: UsernameArg,
    email: Annotated[str | None, typer.Option(help="e-mail address")] = None,
    display_name: Annotated[str | None, typer.Option(help="display name")] = None,
    password_stdin: StdinOpt = False,
    password: PasswordOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a user (the password is prompted for, hidden, unless given another way)."""
    from standby.identity.users import create_user

    pw = _password(password_stdin, password)
    with _site(config) as site:
        row = create_user(
            site, tenant, username, pw, email=email, display_name=display_name, actor=ACTOR
        )
    emit(row, json_out, f"created user [bold]{row['username']}[/] (id {row['id']}) in {tenant}")


@user_app.command("list")
def user_list(config: ConfigOpt, tenant: TenantOpt, json_out: JsonOpt = False) -> None:
    """List a tenant's users."""
    from standby.identity.tenants import require_tenant
    from standby.identity.users import list_users

    with _site(config) as site:
        require_tenant(site, tenant)
        rows: list[dict[str, Any]] = []
        after = None
        for _ in range(100_000):  # bounded: pages of 1000
            page = list_users(site, tenant, after, 1000)
            rows += page
            if len(page) < 1000:
                break
            after = page[-1]["username"]
    if json_out:
        emit(rows, True)
        return
    shown = [
        {
            **r,
            "locked": "yes" if r["locked_until"] else "",
            "totp": "yes" if r["totp_enabled"] else "",
        }
        for r in rows
    ]
    table(
        shown, ["id", "username", "email", "disabled", "locked", "totp"], whole=("id", "username")
    )


@user_app.command("set-password")
def user_set_password(
    config: ConfigOpt,
    tenant: TenantOpt,
    username: UsernameArg,
    password_stdin: StdinOpt = False,
    password: PasswordOpt = None,
) -> None:
    """Set a user's password (clears a lockout, ends their sessions)."""
    from standby.identity.users import set_password

    pw = _password(password_stdin, password, "New password")
    with _site(config) as site:
        set_password(site, tenant, _user_id(site, tenant, username), pw, ACTOR)
    emit({"username": username, "password_set": True}, False, f"password set for {username}")


@user_app.command("disable")
def user_disable(
    config: ConfigOpt,
    tenant: TenantOpt,
    username: UsernameArg,
    enable: Annotated[bool, typer.Option("--enable", help="enable the user again")] = False,
) -> None:
    """Disable a user (ends their sessions), or enable them again with --enable."""
    from standby.identity.users import update_user

    with _site(config) as site:
        uid = _user_id(site, tenant, username)
        update_user(site, tenant, uid, {"disabled": not enable}, ACTOR)
    emit({}, False, f"{username} {'enabled' if enable else 'disabled'}")


@user_app.command("delete")
def user_delete(
    config: ConfigOpt,
    tenant: TenantOpt,
    username: UsernameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Delete a user with their sessions, memberships and MFA."""
    from standby.identity.users import delete_user

    if not yes:
        typer.confirm(f"delete user {username!r} from {tenant!r}?", abort=True)
    with _site(config) as site:
        delete_user(site, tenant, _user_id(site, tenant, username), ACTOR)
    emit({}, False, f"deleted {username}")


# ---------------------------------------------------------------- clients


@client_app.command("create")
def client_create(
    config: ConfigOpt,
    tenant: TenantOpt,
    name: Annotated[str, typer.Option(help="client name")],
    redirect_uri: Annotated[
        list[str] | None, typer.Option("--redirect-uri", help="allowed redirect URI (repeat)")
    ] = None,
    grant_type: Annotated[
        list[str] | None, typer.Option("--grant-type", help="grant type (repeat)")
    ] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="scope (repeat)")] = None,
    auth_method: Annotated[
        str, typer.Option(help="client_secret_basic | client_secret_post | private_key_jwt | none")
    ] = "client_secret_basic",
    json_out: JsonOpt = False,
) -> None:
    """Register an OIDC client; a confidential client's secret is printed once."""
    from standby.identity.clients import create_client

    with _site(config) as site:
        row = create_client(
            site,
            tenant,
            name,
            redirect_uris=redirect_uri or [],
            grant_types=grant_type or ["authorization_code", "refresh_token"],
            scopes=scope or ["openid", "profile", "email"],
            token_endpoint_auth_method=auth_method,
            actor=ACTOR,
        )
    secret = row.get("client_secret")
    human = f"created client [bold]{row['client_id']}[/] ({name})"
    if secret:
        human += f"\nclient_secret: {secret}\n(shown once: store it now)"
    emit(row, json_out, human)


@client_app.command("list")
def client_list(config: ConfigOpt, tenant: TenantOpt, json_out: JsonOpt = False) -> None:
    """List a tenant's clients."""
    from standby.identity.clients import list_clients
    from standby.identity.tenants import require_tenant

    with _site(config) as site:
        require_tenant(site, tenant)
        rows = list_clients(site, tenant)
    if json_out:
        emit(rows, True)
        return
    shown = [{**r, "redirect_uris": " ".join(r["redirect_uris"])} for r in rows]
    table(
        shown,
        ["client_id", "name", "token_endpoint_auth_method", "redirect_uris"],
        whole=("client_id",),
    )


def register(app: typer.Typer) -> None:
    groups: list[tuple[typer.Typer, str]] = [
        (tenant_app, "tenant"),
        (user_app, "user"),
        (client_app, "client"),
    ]
    for sub, name in groups:
        app.add_typer(sub, name=name)
