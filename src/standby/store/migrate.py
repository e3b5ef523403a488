"""Schema migrations (alembic), run programmatically against a store's engine."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("standby.store")


def _config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; one log line if that changed anything (alembic's
    own lines are quieted in the package's __init__)."""
    before = current(engine)
    command.upgrade(_config(engine), revision)
    after = current(engine)
    if after != before:
        log.info(json.dumps({"event": "store_migrated", "from": before, "to": after}))


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
