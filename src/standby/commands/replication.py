"""`standby replication status` and `standby reconcile ...`: one site's replication."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from standby.commands.common import load_site_config
from standby.output import emit, fail, table

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="site config file", envvar="STANDBY_CONFIG")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]

replication_app = typer.Typer(
    help="This site's replication: role, epoch, lag.", no_args_is_help=True
)
reconcile_app = typer.Typer(
    help="Review writes quarantined at rejoin and re-apply them on the primary.",
    no_args_is_help=True,
)


def _site(config: Path) -> tuple[Any, str]:
    settings, secrets = load_site_config(config)
    return settings, secrets.replication_secret.get_secret_value()


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@replication_app.command("status")
def status(config: ConfigOpt, json_out: JsonOpt = False) -> None:
    """Role, epoch, head, applied LSN, lag (records, bytes, seconds), standbys, fencing."""
    settings, secret = _site(config)
    url = settings.own_url()  # this site itself, not the public URL in front of it
    try:
        resp = httpx.get(f"{url}/replication/status", headers=_auth(secret), timeout=5.0)
    except httpx.HTTPError as exc:
        fail(f"cannot reach site {settings.site!r} at {url}: {exc}; is `standby serve` running?")
        return
    if resp.status_code != 200:
        fail(f"{url} answered {resp.status_code}: {resp.text[:300]}")
    data = resp.json()
    lag = data.get("lag") or {}
    lines = [
        f"site {data['site']}: [bold]{data['role']}[/] on epoch {data['epoch']}, "
        f"head lsn {data['head_lsn']}, mode {data['mode']}"
        + (" [red](degraded to async)[/]" if data.get("degraded") else "")
        + (" [red](writes blocked: no standby)[/]" if data.get("writes_blocked") else ""),
    ]
    if data.get("fenced"):
        lines.append(f"[bold red]fenced[/]: {data['fenced']}")
    if data["role"] == "standby":
        state = "connected" if data.get("connected") else "[red]not connected[/]"
        lines.append(
            f"following {data.get('primary_url')} ({state}), applied lsn {data['applied_lsn']}"
        )
        if data.get("last_error"):
            lines.append(f"[red]last error[/]: {data['last_error']}")
    if lag:
        lines.append(f"lag: {lag['records']} records, {lag['bytes']} bytes, {lag['seconds']:.3f} s")
    for name, peer in (data.get("standbys") or {}).items():
        plag = peer["lag"]
        lines.append(
            f"standby {name}: acked lsn {peer['acked_lsn']}, "
            f"{'connected' if peer['connected'] else 'disconnected'}, lag {plag['records']} "
            f"records / {plag['seconds']:.3f} s"
        )
    emit(data, json_out, "\n".join(lines))


def _store(config: Path) -> tuple[Any, Any, str]:
    from standby.store import Store

    settings, secret = _site(config)
    store = Store(settings.store.url, settings.site)
    store.create(role=settings.role)
    return settings, store, secret


def _named_entries(store: Any, ids: list[int]) -> list[dict[str, Any]]:
    from standby.replication import quarantine

    rows = quarantine.entries(store, ids=ids)
    missing = sorted(set(ids) - {r["id"] for r in rows})
    if missing:
        fail(f"no quarantine entries with ids {missing}; see `standby reconcile list`")
    return rows


@reconcile_app.command("list")
def reconcile_list(
    config: ConfigOpt,
    status: Annotated[
        str | None, typer.Option(help="pending, reapplied or dismissed (default: all)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Quarantined changes on this site (kept at rejoin, never applied elsewhere yet)."""
    from standby.replication import quarantine

    _, store, _ = _store(config)
    rows = quarantine.entries(store, status)
    if json_out:
        emit([{k: v for k, v in r.items() if k != "record"} for r in rows], True)
        return
    if not rows:
        emit([], False, "no quarantined changes")
        return
    table(
        rows,
        ["id", "status", "lsn", "epoch", "tenant", "entity", "key", "op", "divergence_lsn"],
        title="quarantined changes",
    )
    summary = quarantine.summarize(
        quarantine.record_of(r) for r in rows if r["status"] == "pending"
    )
    emit(
        summary,
        False,
        f"{summary['records']} pending; by entity: "
        + ", ".join(f"{k}: {v['records']}" for k, v in summary["by_entity"].items()),
    )


@reconcile_app.command("show")
def reconcile_show(
    config: ConfigOpt,
    ids: Annotated[list[int], typer.Argument(help="quarantine entry ids")],
    json_out: JsonOpt = False,
) -> None:
    """Full records (row images) of quarantined changes."""

    _, store, _ = _store(config)
    rows = _named_entries(store, ids)
    emit(rows, json_out, json.dumps(rows, indent=2, default=str))


@reconcile_app.command("apply")
def reconcile_apply(
    config: ConfigOpt,
    ids: Annotated[list[int], typer.Argument(help="quarantine entry ids to re-apply")],
    primary: Annotated[
        str | None, typer.Option(help="the current primary's URL (default: the one followed)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-apply chosen quarantined changes on the current primary, as new writes."""
    from standby.replication import quarantine

    settings, store, secret = _store(config)
    rows = _named_entries(store, ids)
    done = [r["id"] for r in rows if r["status"] != "pending"]
    if done:
        fail(f"entries {done} are already resolved; nothing was applied")
    url = primary or store.get_meta("primary_url") or settings.replication.primary_url
    if not url:
        fail("this site follows no primary; name it with --primary URL")
    try:
        resp = httpx.post(
            f"{url.rstrip('/')}/replication/reapply",
            json={"records": [r["record"] for r in rows], "reason": "standby reconcile"},
            headers=_auth(secret),
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach the primary at {url}: {exc}; nothing was applied")
        return
    if resp.status_code != 200:
        fail(f"{url} refused ({resp.status_code}): {resp.text[:300]}; nothing was applied")
    result = resp.json()
    quarantine.resolve(store, ids, "reapplied")
    emit(
        {**result, "ids": ids},
        json_out,
        f"re-applied {len(ids)} change(s) on {result['site']} (epoch {result['epoch']}) "
        f"as lsn {result['lsns'][0] if result['lsns'] else '-'}..",
    )


@reconcile_app.command("dismiss")
def reconcile_dismiss(
    config: ConfigOpt,
    ids: Annotated[list[int], typer.Argument(help="quarantine entry ids to dismiss")],
    json_out: JsonOpt = False,
) -> None:
    """Mark quarantined changes as reviewed and not to be re-applied (they stay recorded)."""
    from standby.replication import quarantine

    _, store, _ = _store(config)
    _named_entries(store, ids)  # fails naming unknown ids
    n = quarantine.resolve(store, ids, "dismissed")
    emit({"dismissed": ids}, json_out, f"dismissed {n} change(s); they stay in the table")


def register(app: typer.Typer) -> None:
    app.add_typer(replication_app, name="replication")
    app.add_typer(reconcile_app, name="reconcile")
