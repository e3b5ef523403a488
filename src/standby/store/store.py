"""The store: the one write path (row change + change-log record in one transaction),
reads, site-local metadata, and applying records shipped from another site."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from standby.store.engine import is_postgres, make_engine, normalize_url
from standby.store.records import GENESIS_HASH, Position, Record, canonical_json, chain_hash
from standby.store.schema import (
    REPLICATED_TABLES,
    change_log,
    metadata,
    store_meta,
    timeline_history,
)

ADVISORY_LOCK_KEY = 0x5374_6E64  # "Stnd": serialises change-log appends on PostgreSQL
_HEAD_SQL = "SELECT lsn, hash, epoch, committed_at FROM change_log ORDER BY lsn DESC LIMIT 1"
_LOG_COLUMNS = [c.name for c in change_log.c]
_WRITE_META_SQL = "SELECT name, value FROM store_meta WHERE name IN ('role', 'fenced', 'epoch')"


def _append_sql(postgres: bool) -> str:
    """INSERT for one change-log record in the driver's own named-parameter style."""
    marks = [f"%({c})s" if postgres else f":{c}" for c in _LOG_COLUMNS]
    # Column names come from the schema, never from input.
    cols = ", ".join(_LOG_COLUMNS)
    return f"INSERT INTO change_log ({cols}) VALUES ({', '.join(marks)})"  # noqa: S608


def now_us() -> int:
    return time.time_ns() // 1000


class StoreError(Exception):
    """The store cannot do what was asked; the message says why."""


class NotWritable(StoreError):
    """This site must not accept writes (it is a standby, fenced, or has lost its lease).

    ``committed`` is False when the write was refused before anything changed (the request
    may safely go to another site) and True when it committed here but cannot be
    acknowledged (strict synchronous replication): sending that again would repeat it."""

    def __init__(self, message: str, *, committed: bool = False) -> None:
        super().__init__(message)
        self.committed = committed


class ApplyError(StoreError):
    """Shipped records do not fit this store (gap, broken chain, wrong epoch)."""


class Conflict(StoreError):
    """A write violates a uniqueness rule (e.g. a duplicate username)."""


@dataclass(frozen=True)
class Head:
    lsn: int
    hash: str
    epoch: int
    committed_at: int

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.lsn)


def _table(entity: str | Table) -> Table:
    name = entity if isinstance(entity, str) else entity.name
    try:
        return REPLICATED_TABLES[name]
    except KeyError:
        raise StoreError(f"{name!r} is not a replicated table") from None


class Writer:
    """One write transaction. Every row change appends one change-log record."""

    def __init__(self, store: Store, conn: Connection, epoch: int) -> None:
        self.store = store
        self.conn = conn
        self.epoch = epoch
        self._next: tuple[int, str, int] | None = None  # next lsn, prev hash, txn
        self._committed_at = 0
        self.records: list[Record] = []

    def _append(
        self, table: Table, key: str, op: str, row: dict[str, Any] | None, tenant: str | None
    ) -> Record:
        if self._next is None:
            # On PostgreSQL, Store.write() already holds the advisory lock that serialises
            # appends, so the head read here cannot race another writer.
            head = self.store._head(self.conn)
            self._next = (head.lsn + 1, head.hash, head.lsn + 1)
            # Monotonic commit times even if the wall clock steps back.
            self._committed_at = max(now_us(), head.committed_at)
        lsn, prev, txn = self._next
        payload = None if row is None else canonical_json(row)
        rec = Record(
            lsn=lsn,
            epoch=self.epoch,
            site=self.store.site,
            committed_at=self._committed_at,
            txn=txn,
            tenant=tenant,
            entity=table.name,
            key=key,
            op=op,
            payload=payload,
            prev_hash=prev,
            hash=chain_hash(
                prev,
                lsn,
                self.epoch,
                self.store.site,
                self._committed_at,
                txn,
                tenant,
                table.name,
                key,
                op,
                payload,
            ),
        )
        self.conn.exec_driver_sql(self.store._append_sql, rec.to_dict())
        self._next = (lsn + 1, rec.hash, txn)
        self.records.append(rec)
        return rec

    def get(self, entity: str | Table, key: str) -> dict[str, Any] | None:
        table = _table(entity)
        row = self.conn.execute(select(table).where(table.c.id == key)).mappings().first()
        return None if row is None else dict(row)

    def insert(self, entity: str | Table, row: dict[str, Any]) -> dict[str, Any]:
        table = _table(entity)
        full = _full_row(table, row)
        # No savepoint: a uniqueness error aborts the whole write transaction, which the
        # raised Conflict rolls back; callers never continue a write after one.
        try:
            self.conn.execute(insert(table), full)
        except IntegrityError as exc:
            raise Conflict(f"{table.name}: a row with the same unique value exists") from exc
        self._append(table, str(full["id"]), "insert", full, full.get("tenant"))
        return full

    def update(self, entity: str | Table, key: str, changes: dict[str, Any]) -> dict[str, Any]:
        table = _table(entity)
        current = self.get(table, key)
        if current is None:
            raise StoreError(f"{table.name} {key!r} does not exist")
        if "id" in changes and changes["id"] != key:
            raise StoreError("the id of a row cannot change")
        full = {**current, **changes}
        try:
            self.conn.execute(update(table).where(table.c.id == key).values(**changes))
        except IntegrityError as exc:
            raise Conflict(f"{table.name}: a row with the same unique value exists") from exc
        self._append(table, key, "update", full, full.get("tenant"))
        return full

    def delete(self, entity: str | Table, key: str) -> bool:
        table = _table(entity)
        current = self.get(table, key)
        if current is None:
            return False
        self.conn.execute(delete(table).where(table.c.id == key))
        self._append(table, key, "delete", None, current.get("tenant"))
        return True


def _full_row(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    unknown = set(row) - set(table.c.keys())
    if unknown:
        raise StoreError(f"{table.name}: unknown columns {sorted(unknown)}")
    full: dict[str, Any] = {}
    for col in table.c:
        if col.name in row:
            full[col.name] = row[col.name]
        elif col.default is not None and getattr(col.default, "is_scalar", False):
            full[col.name] = col.default.arg  # type: ignore[attr-defined]
        else:
            full[col.name] = None
    return full


class Store:
    """A site's store. ``write()`` is the only way identity data changes on a primary."""

    def __init__(
        self,
        url: str,
        site: str,
        *,
        engine: Engine | None = None,
        write_guard: Callable[[], None] | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self.site = site
        self.is_postgres = is_postgres(self.url)
        self._append_sql = _append_sql(self.is_postgres)
        self.engine = engine or make_engine(self.url)
        # Called at the start and just before commit of every write; raises NotWritable
        # when fencing or the lease says this site must stop acknowledging writes.
        self.write_guard = write_guard
        # Called after each write commits with the records it appended (sync replication,
        # metrics, archiving); may block, may raise to tell the client the write is unconfirmed.
        self.commit_hooks: list[Callable[[list[Record]], None]] = []
        self._meta_lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def create(self, role: str = "primary") -> None:
        """Create the schema (migrations) and this site's metadata, if not there yet."""
        from standby.store.migrate import upgrade

        upgrade(self.engine)
        with self.engine.begin() as conn:
            if self._meta(conn, "site") is None:
                self._set_meta(conn, "site", self.site)
                self._set_meta(conn, "role", role)
                self._set_meta(conn, "epoch", "1")
                if role == "primary":
                    conn.execute(
                        insert(timeline_history).values(
                            epoch=1,
                            start_lsn=1,
                            site=self.site,
                            created_at=now_us(),
                            reason="store created",
                        )
                    )

    def close(self) -> None:
        self.engine.dispose()

    def drop_all(self) -> None:
        """Remove every table (tests and `restore --force` only)."""
        metadata.drop_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))

    # ------------------------------------------------------------ metadata (site-local)

    @staticmethod
    def _meta(conn: Connection, name: str) -> str | None:
        return conn.execute(select(store_meta.c.value).where(store_meta.c.name == name)).scalar()

    @staticmethod
    def _set_meta(conn: Connection, name: str, value: str) -> None:
        done = conn.execute(
            update(store_meta).where(store_meta.c.name == name).values(value=value)
        ).rowcount
        if not done:
            conn.execute(insert(store_meta).values(name=name, value=value))

    def get_meta(self, name: str, default: str | None = None) -> str | None:
        with self.engine.connect() as conn:
            value = self._meta(conn, name)
        return default if value is None else value

    def set_meta(self, name: str, value: str) -> None:
        with self._meta_lock, self.engine.begin() as conn:
            self._set_meta(conn, name, value)

    def meta_items(self, prefix: str) -> dict[str, str]:
        """Site-local metadata whose names start with ``prefix`` (prefix removed)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(store_meta.c.name, store_meta.c.value).where(
                    store_meta.c.name.startswith(prefix, autoescape=True)
                )
            )
            return {name[len(prefix) :]: value for name, value in rows}

    @property
    def role(self) -> str:
        return self.get_meta("role", "primary") or "primary"

    @property
    def epoch(self) -> int:
        return int(self.get_meta("epoch", "1") or 1)

    # ------------------------------------------------------------ reads

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @staticmethod
    def _head(conn: Connection) -> Head:
        # Plain SQL on the hot path: this runs in every write transaction, and building a
        # Core statement costs several times what the indexed lookup itself does.
        row = conn.exec_driver_sql(_HEAD_SQL).first()
        if row is not None:
            return Head(row.lsn, row.hash, row.epoch, row.committed_at)
        cp = Store._meta(conn, "checkpoint")
        if cp:
            return Head(**json.loads(cp))
        return Head(0, GENESIS_HASH, 0, 0)

    def head(self) -> Head:
        with self.engine.connect() as conn:
            return self._head(conn)

    # ------------------------------------------------------------ the write path

    @contextmanager
    def _transaction(self, *, log_lock: bool) -> Iterator[Connection]:
        """A transaction that may append to or cut the change log: SQLite's write lock is
        taken at BEGIN (IMMEDIATE); on PostgreSQL ``log_lock`` takes the advisory lock
        first, before any row lock (a writer holding a row lock while waiting for it
        would deadlock with one that holds it and then updates that row)."""
        conn = self.engine.connect()
        try:
            if not self.is_postgres:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if log_lock and self.is_postgres:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
                yield conn
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[Writer]:
        """One write transaction on a primary; every change is logged. Refuses on a standby."""
        if self.write_guard:
            self.write_guard()
        with self._transaction(log_lock=True) as conn:
            meta = {name: value for name, value in conn.exec_driver_sql(_WRITE_META_SQL)}
            role = meta.get("role") or "primary"
            if role != "primary":
                raise NotWritable(f"site {self.site!r} is a {role}; writes go to the primary")
            if meta.get("fenced"):
                raise NotWritable(f"site {self.site!r} is fenced: {meta['fenced']}")
            writer = Writer(self, conn, int(meta.get("epoch") or 1))
            yield writer
            if self.write_guard:
                self.write_guard()
        if writer.records:
            for hook in self.commit_hooks:
                hook(writer.records)

    # ------------------------------------------------------------ the change log

    def records_after(
        self,
        lsn: int,
        *,
        limit: int = 1000,
        tenants: Sequence[str] | None = None,
        until_lsn: int | None = None,
        until_time: int | None = None,
    ) -> list[Record]:
        """Records with lsn > ``lsn`` in order, optionally filtered by tenant (global rows,
        tenant NULL, are always included) and cut at an LSN or commit time (inclusive)."""
        q = select(change_log).where(change_log.c.lsn > lsn)
        if tenants is not None:
            q = q.where(change_log.c.tenant.in_(list(tenants)) | change_log.c.tenant.is_(None))
        if until_lsn is not None:
            q = q.where(change_log.c.lsn <= until_lsn)
        if until_time is not None:
            q = q.where(change_log.c.committed_at <= until_time)
        q = q.order_by(change_log.c.lsn).limit(limit)
        with self.engine.connect() as conn:
            return [Record.from_dict(dict(r)) for r in conn.execute(q).mappings()]

    def iter_records(self, after: int = 0, batch: int = 5000, **filters: Any) -> Iterator[Record]:
        while True:
            recs = self.records_after(after, limit=batch, **filters)
            if not recs:
                return
            yield from recs
            after = recs[-1].lsn

    def trim(self, upto_lsn: int) -> int:
        """Remove change-log records with lsn <= ``upto_lsn``, leaving a checkpoint (lsn,
        hash) so the chain stays verifiable from there; returns how many went. Callers
        decide what is safe to trim (standby.store.trim.trim_point)."""
        with self._transaction(log_lock=True) as conn:  # no append interleaves
            head = self._head(conn)
            row = conn.execute(
                select(change_log).where(change_log.c.lsn == min(upto_lsn, head.lsn))
            ).first()
            if row is None:  # already trimmed (or nothing there)
                return 0
            cp = Head(row.lsn, row.hash, row.epoch, row.committed_at)
            self._set_meta(conn, "checkpoint", json.dumps(asdict(cp)))
            gone = conn.execute(delete(change_log).where(change_log.c.lsn <= cp.lsn))
            return int(gone.rowcount or 0)

    def oldest_lsn(self) -> int:
        with self.engine.connect() as conn:
            v = conn.execute(select(func.min(change_log.c.lsn))).scalar()
            return int(v) if v is not None else self._head(conn).lsn + 1

    def timeline(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(timeline_history).order_by(timeline_history.c.epoch))
            return [dict(r) for r in rows.mappings()]

    # ------------------------------------------------------------ applying shipped records

    def apply(self, records: Iterable[Record], *, check_chain: bool = True) -> Head:
        """Apply records from another site in one transaction; idempotent by LSN.

        Records at or below the head are skipped (already applied). With ``check_chain``,
        each record must follow the head exactly (next LSN, matching prev_hash) and carry
        a correct hash; otherwise nothing is applied and ApplyError says where it broke.
        """
        # Only a standby applies, and nothing else writes there: no log lock needed.
        with self._transaction(log_lock=False) as conn:
            head = self._head(conn)
            for rec in records:
                if rec.lsn <= head.lsn:
                    continue
                if rec.hash != rec.expected_hash():
                    raise ApplyError(f"record {rec.lsn}: hash does not match its contents")
                if check_chain and (rec.lsn != head.lsn + 1 or rec.prev_hash != head.hash):
                    raise ApplyError(
                        f"record {rec.lsn} does not follow {head.lsn} "
                        f"(expected lsn {head.lsn + 1} and prev_hash {head.hash[:12]})"
                    )
                if rec.epoch < head.epoch:
                    raise ApplyError(
                        f"record {rec.lsn} is on epoch {rec.epoch}, "
                        f"behind this store's {head.epoch}"
                    )
                apply_row(conn, rec)
                conn.exec_driver_sql(self._append_sql, rec.to_dict())
                head = Head(rec.lsn, rec.hash, rec.epoch, rec.committed_at)
            return head


def apply_row(conn: Connection, rec: Record) -> None:
    """Make the row named by a record match it: upsert its image, or delete it if present."""
    table = _table(rec.entity)
    conn.execute(delete(table).where(table.c.id == rec.key))
    if rec.op != "delete":
        row = rec.row() or {}
        known = {k: v for k, v in row.items() if k in table.c}
        conn.execute(insert(table).values(**known))
