"""The `standby` command group: what every sub-command gets without asking.

- Failures any command that opens a store can meet (a database that does not answer or
  refuses, a store URL the driver cannot read, a store that says no) become one line for
  a person and a non-zero exit, never a traceback. Commands still handle their own
  part's errors; this is the floor under them.
- Help shows no value type on flags, which take no value (typer's rich help prints
  ``<bool>`` there).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import ArgumentError, DBAPIError
from typer.core import TyperGroup, TyperOption
from typer.models import Context

from standby.output import fail
from standby.store import StoreError
from standby.store.engine import db_error_line


def _flags_take_no_value(cmd: Any) -> None:
    """Blank the metavar of every flag under ``cmd`` (help options included), so help
    shows none; an option that takes a value keeps its type."""
    params = [*cmd.params, cmd.get_help_option(Context(cmd))]
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    for sub in getattr(cmd, "commands", {}).values():
        _flags_take_no_value(sub)


class Commands(TyperGroup):
    """The top-level group; sub-commands run inside it, so its ``invoke`` sees their errors."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        _flags_take_no_value(self)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            fail(
                f"database error: {db_error_line(exc)} "
                "(check store.url in the config, and that the database is running)",
                1,
            )
        except ArgumentError as exc:
            fail(f"cannot use the store URL: {' '.join(str(exc).split())}", 2)
        except StoreError as exc:
            fail(str(exc), 1)
