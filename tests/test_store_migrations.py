"""Schema migrations: a store made by the first release (revision 0001) upgrades to the
current schema in place, keeping its rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from standby.store import Store, migrate
from standby.store.schema import clients, consents, refresh_tokens

# What revision 0002 added; dropped again to turn a new store into a 0001 one.
ADDED = {
    "clients": ["first_party", "resource_servers"],
    "refresh_tokens": ["access_jti", "access_expires_at"],
}


def test_a_first_release_store_upgrades_in_place(store_url: str) -> None:
    store = Store(store_url, "site-a")
    try:
        store.create(role="primary")
        engine = store.engine
        with engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_refresh_tokens_session_id"))
            consents.drop(conn)
            for table, columns in ADDED.items():
                for column in columns:
                    conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
            conn.execute(
                sa.text(
                    "INSERT INTO clients (id, tenant, name, redirect_uris, "
                    "post_logout_redirect_uris, grant_types, scopes, "
                    "token_endpoint_auth_method, created_at) VALUES ('c1', 't1', 'old', '[]', "
                    "'[]', '[\"client_credentials\"]', '[]', 'client_secret_basic', 1)"
                )
            )
        migrate.upgrade(engine)
        assert (
            migrate.current(engine) == ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head()
        )
        inspector = sa.inspect(engine)
        for table, columns in ADDED.items():
            assert set(columns) <= {c["name"] for c in inspector.get_columns(table)}
        assert "ix_refresh_tokens_session_id" in {
            i["name"] for i in inspector.get_indexes("refresh_tokens")
        }
        assert inspector.has_table("consents")
        with store.read() as conn:
            old = conn.execute(sa.select(clients).where(clients.c.id == "c1")).mappings().one()
            assert (old["first_party"], old["resource_servers"]) == (False, "[]")
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(refresh_tokens)).scalar() == 0
            )
        migrate.upgrade(engine)  # at head: nothing to do
    finally:
        store.close()
