"""Engines for the two supported databases, configured the same way for the same code path."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
_EXAMPLES = "sqlite:///PATH for a SQLite file or postgresql://USER@HOST:PORT/DB"


def normalize_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if is_postgres(url):
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so we can BEGIN IMMEDIATE for writes.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL is durable against process crashes (kill -9); FULL adds power loss.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def check_url(url: str) -> str:
    """``url`` if it names a store this program can open, else ValueError saying why and
    how to write one (a bare path gets the sqlite URL it probably meant)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"store URL {url!r} has no scheme; did you mean sqlite:///{url}? "
            f"(use {_EXAMPLES})"
        )
    if scheme not in SCHEMES:
        raise ValueError(f"unknown store URL scheme {scheme!r} in {describe(url)}; use {_EXAMPLES}")
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ValueError(f"SQLite store URL {url!r} names no file; use sqlite:///PATH")
        return url
    try:
        parsed = make_url(normalize_url(url))
    except (ArgumentError, ValueError):
        raise ValueError(f"cannot read store URL {describe(url)}; use {_EXAMPLES}") from None
    if not parsed.database:
        raise ValueError(f"store URL {describe(url)} names no database; use {_EXAMPLES}")
    return url


def describe(url: str) -> str:
    """The URL without its password, for logs and messages (also for a URL that does not
    parse: messages about bad URLs must not fail themselves)."""
    try:
        return make_url(normalize_url(url)).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", url)


def db_error_line(exc: DBAPIError) -> str:
    """The first line of the driver's own message about a database error (SQLAlchemy's
    text adds the statement and a link, the driver a hint; a person needs neither)."""
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc.orig).__name__
