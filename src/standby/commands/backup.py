"""`standby backup create|list|verify|prune|archive`, `standby restore`, `standby log find`."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from standby.commands.common import load_site_config
from standby.output import emit, err_console, fail, table

if TYPE_CHECKING:
    from standby.backup.context import Backups
    from standby.settings import Secrets, SiteSettings

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="site config file", envvar="STANDBY_CONFIG")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]

backup_app = typer.Typer(
    help="Encrypted backups: create, list, verify by restoring, prune, archive the log.",
    no_args_is_help=True,
)
log_app = typer.Typer(help="Search the change log.", no_args_is_help=True)


def _load(config: Path) -> tuple[SiteSettings, Secrets]:
    return load_site_config(config)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Backup errors become one clear line and exit 1 (no traceback for people)."""
    from standby.backup.errors import BackupError
    from standby.settings import ConfigError

    try:
        yield
    except BackupError as exc:
        fail(str(exc), 1)
    except ConfigError as exc:
        fail(str(exc), 2)


def _open(config: Path) -> Backups:
    from standby.backup.context import Backups

    settings, secrets = _load(config)
    with _errors():
        return Backups.open(settings, secrets)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _ts(value: float | None) -> str:
    if not value:
        return "-"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _parse_time(value: str) -> int:
    """ISO 8601 (naive = UTC) or integer microseconds since 1970 -> microseconds."""
    if value.isdigit():
        return int(value)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"cannot read time {value!r}; use ISO 8601, e.g. 2026-01-31T03:10:00Z", 2)
        raise
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1_000_000)


# ---------------------------------------------------------------- backup ...


@backup_app.command("create")
def create(
    config: ConfigOpt,
    json_out: JsonOpt = False,
    canary: Annotated[bool, typer.Option(help="create the canary user if missing")] = True,
) -> None:
    """Take a backup set (snapshot of the store) now, then archive pending segments."""
    from standby.backup.create import create_set
    from standby.backup.segments import Archiver
    from standby.server import Site
    from standby.store import Store

    backups = _open(config)
    settings = backups.settings
    store = Store(settings.store.url, settings.site)
    store.create(role=settings.role)
    site = Site(settings, backups.secrets, store)
    with _errors():
        m = create_set(site, backups, canary=canary)
        if site.role == "primary":
            Archiver(
                store,
                backups.catalog,
                segment_seconds=settings.backup.segment_seconds,
                segment_records=settings.backup.segment_records,
            ).tick(force=True)
    store.close()
    size = sum(o["size"] for o in m["objects"])
    emit(
        m,
        json_out,
        f"[green]backup set {m['id']}[/]: lsn {m['lsn']} (epoch {m['epoch']}), "
        f"{sum(m['row_counts'].values())} rows, {size} bytes stored "
        f"in {backups.storage.description}",
    )


@backup_app.command("list")
def list_sets(config: ConfigOpt, json_out: JsonOpt = False) -> None:
    """Backup sets, the archived segments after them, and each set's last verification."""
    backups = _open(config)
    with _errors():
        sets = backups.catalog.sets(strict=False)
        segs = backups.catalog.segments()
        verified = backups.catalog.verifications()
    rows: list[dict[str, Any]] = []
    for s in sets:
        v = verified.get(str(s["id"]))
        rows.append(
            {
                "id": s["id"],
                "created_at": s.get("created_at"),
                "lsn": s.get("lsn"),
                "epoch": s.get("epoch"),
                "size": sum(o["size"] for o in s.get("objects", [])),
                "error": s.get("error"),
                "verified": None if v is None else {"ok": v["ok"], "at": v["at"]},
            }
        )
    data: dict[str, Any] = {
        "sets": rows,
        "segments": {
            "count": len(segs),
            "first_lsn": segs[0].first_lsn if segs else None,
            "last_lsn": max(s.last_lsn for s in segs) if segs else None,
        },
        "last_verified_ok": backups.catalog.last_verified_ok() if rows else None,
        "storage": backups.storage.description,
    }
    if json_out:
        emit(data, True)
        return
    table(
        [
            {
                "set": r["id"],
                "taken": _ts(r["created_at"]),
                "lsn": r["lsn"],
                "bytes": r["size"],
                "verified": r["error"]
                or (
                    "never"
                    if r["verified"] is None
                    else ("ok " if r["verified"]["ok"] else "FAILED ") + _ts(r["verified"]["at"])
                ),
            }
            for r in rows
        ],
        ["set", "taken", "lsn", "bytes", "verified"],
        title=f"backups in {backups.storage.description}",
        whole=("set",),
    )
    seg = data["segments"]
    emit(
        data,
        False,
        f"{seg['count']} archived segments (lsn {seg['first_lsn']}..{seg['last_lsn']}); "
        f"last verified restore: {_ts(data['last_verified_ok'])}",
    )


@backup_app.command("verify")
def verify(
    config: ConfigOpt,
    latest: Annotated[bool, typer.Option("--latest", help="the newest set (default)")] = False,
    all_sets: Annotated[bool, typer.Option("--all", help="every set")] = False,
    set_id: Annotated[str | None, typer.Option("--set", help="one set by id")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Restore into a scratch store and check it; exit 1 if any check fails."""
    from standby.backup.verify import verify_set

    if latest + all_sets + (set_id is not None) > 1:
        fail("give one of --latest, --all or --set ID, not several", 2)
    backups = _open(config)
    with _errors():
        if all_sets:
            ids: list[str | None] = [
                str(s["id"]) for s in backups.catalog.sets(strict=False) if "error" not in s
            ]
        else:
            ids = [set_id]
        results = []
        with _progress(not json_out) as progress:
            for sid in ids:
                results.append(verify_set(backups, sid, progress))
    ok = bool(results) and all(r["ok"] for r in results)
    if json_out:
        emit({"ok": ok, "results": results}, True)
    else:
        for r in results:
            mark = "[green]ok[/]" if r["ok"] else "[bold red]FAILED[/]"
            lines = [f"{mark} set {r['set_id']} (verified {_ts(r['at'])})"]
            for name, c in r["checks"].items():
                lines.append(f"  {'ok ' if c['ok'] else 'BAD'} {name}: {c['detail']}")
            emit(r, False, "\n".join(lines))
    if not ok:
        raise typer.Exit(1)


@backup_app.command("prune")
def prune(
    config: ConfigOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show, delete nothing")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Apply retention (backup.keep_count, backup.keep_days)."""
    from standby.backup.prune import prune as do_prune

    backups = _open(config)
    with _errors():
        result = do_prune(backups, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    emit(
        result,
        json_out,
        "\n".join(
            [f"keep {sid}: {why}" for sid, why in result["keep_sets"].items()]
            + [f"{verb} set {sid}" for sid in result["delete_sets"]]
            + [f"{verb} {len(result['delete_segments'])} segments"]
        ),
    )


@backup_app.command("archive")
def archive(
    config: ConfigOpt,
    follow: Annotated[bool, typer.Option("--follow", help="keep archiving until stopped")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Seal the change-log records not yet archived into segments (once, or continuously)."""
    from standby.backup.segments import Archiver
    from standby.store import Store

    backups = _open(config)
    cfg = backups.settings.backup
    store = Store(backups.settings.store.url, backups.settings.site)
    archiver = Archiver(
        store,
        backups.catalog,
        segment_seconds=cfg.segment_seconds,
        segment_records=cfg.segment_records,
    )
    sealed: list[dict[str, Any]] = []
    with _errors(), contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --follow cleanly
        sealed.extend(archiver.tick(force=not follow))
        while follow:
            time.sleep(min(max(cfg.segment_seconds / 4, 0.05), 1.0))
            sealed.extend(archiver.tick())
    store.close()
    emit(
        {"sealed": len(sealed), "last_lsn": archiver.last_archived()},
        json_out,
        f"sealed {len(sealed)} segments; archived through lsn {archiver.last_archived()}",
    )


# ---------------------------------------------------------------- restore, log find


def restore(
    config: ConfigOpt,
    target_url: Annotated[str, typer.Option("--target-url", help="empty SQLite/PostgreSQL store")],
    to_time: Annotated[str | None, typer.Option("--to-time", help="ISO 8601 time")] = None,
    to_lsn: Annotated[int | None, typer.Option("--to-lsn", help="last LSN to include")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="only this tenant")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a non-empty target")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Restore the newest backup at or before a point, replaying archived segments."""
    from standby.backup.plan import Target
    from standby.backup.restore import restore as do_restore

    if to_time is not None and to_lsn is not None:
        fail("give --to-time or --to-lsn, not both", 2)
    target = Target(lsn=to_lsn, time_us=None if to_time is None else _parse_time(to_time))
    backups = _open(config)
    with _errors(), _progress(not json_out) as progress:
        report = do_restore(
            backups, target_url, target, tenant=tenant, force=force, progress=progress
        )
    r = report["reached"]
    human = (
        f"[green]restored[/] {report['target']} from set {report['set']}: "
        f"reached lsn {r['lsn']} (epoch {r['epoch']}, committed {r['time'] or '-'}); "
        f"{report['rows']} snapshot rows + {report['records_replayed']} records replayed"
    )
    for note in report["notes"]:
        human += f"\nnote: {note}"
    emit(report, json_out, human)


OPS = ("insert", "update", "delete")


def log_find(
    config: ConfigOpt,
    entity: Annotated[str | None, typer.Option(help="table, e.g. users")] = None,
    op: Annotated[str | None, typer.Option(help="insert, update or delete")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    first: Annotated[bool, typer.Option("--first", help="only the first match")] = False,
    from_backup: Annotated[
        bool, typer.Option("--from-backup", help="search the archived segments instead")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Find change-log records (e.g. the first of a mass delete) to restore just before."""
    from standby.backup import logfind
    from standby.store.schema import REPLICATED_TABLES

    # A typo would otherwise look like "no matching records", which is an answer.
    if entity is not None and entity not in REPLICATED_TABLES:
        fail(f"unknown entity {entity!r}; known: {', '.join(sorted(REPLICATED_TABLES))}", 2)
    if op is not None and op not in OPS:
        fail(f"unknown op {op!r}; use one of {', '.join(OPS)}", 2)
    since_us = None if since is None else _parse_time(since)
    settings, secrets = _load(config)
    with _errors():
        if from_backup:
            from standby.backup.context import Backups

            matches = logfind.from_archive(
                Backups.open(settings, secrets), entity, op, since_us, tenant
            )
            result = logfind.summarize(matches, first)
        else:
            from standby.store import Store

            store = Store(settings.store.url, settings.site)
            result = logfind.summarize(
                logfind.from_store(store, entity, op, since_us, tenant), first
            )
            store.close()
    if result["first"] is None:
        emit(result, json_out, "no matching change-log records")
        raise typer.Exit(1)
    f = result["first"]
    lines = [
        f"first match: lsn {f['lsn']} ({f['op']} {f['entity']} {f['key']}, "
        f"tenant {f['tenant']}, {f['time']})"
    ]
    for t in result["transactions"][:20]:
        lines.append(
            f"  transaction at lsn {t['first_lsn']}..{t['last_lsn']}: {t['count']} records, "
            f"{t['time']}"
        )
    lines.append(f"to restore just before it: --to-lsn {result['restore_before']}")
    emit(result, json_out, "\n".join(lines))


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")
    app.add_typer(log_app, name="log")
    log_app.command("find")(log_find)
    app.command("restore")(restore)
