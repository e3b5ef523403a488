"""Shared fixtures: a real PostgreSQL server per test session, stores on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from standby.store import Store
from tests.support.postgres import PostgresServer
from tests.support.s3 import S3Server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database, once on SQLite and once on a real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url, "site-a")
    s.create()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS) on loopback for the whole session."""
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url_pair(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """URLs of two empty databases of one kind: a primary's and its standby's."""
    from tests.support.replication import two_store_urls

    pg = request.getfixturevalue("postgres") if request.param == "postgres" else None
    return two_store_urls(request.param, tmp_path, pg)
