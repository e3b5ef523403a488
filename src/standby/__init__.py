"""Standby: a self-hosted identity provider built for disaster recovery."""

import logging

# Alembic logs at INFO when imported (its plugins) and on every store open (its migration
# context): noise on every `standby serve`. Its warnings still show, and a migration that
# runs gets its own line from standby.store.migrate.
logging.getLogger("alembic").setLevel(logging.WARNING)
