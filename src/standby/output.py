"""One output layer for the CLI: human text via rich by default, JSON with --json."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from standby.settings import redact_urls

console = Console()
err_console = Console(stderr=True)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    elif human is not None:
        console.print(human)
    else:
        console.print_json(json.dumps(data, default=str))


def table(
    rows: list[dict[str, Any]],
    columns: list[str],
    title: str | None = None,
    whole: tuple[str, ...] = (),
) -> None:
    """Rows as a table; the ``whole`` columns (ids a person types or copies) are never cut
    or wrapped: the other columns give up the room."""
    cells = [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    t = Table(title=title)
    for i, c in enumerate(columns):
        if c in whole:
            widest = max([len(c), *(len(row[i]) for row in cells)])
            t.add_column(c, no_wrap=True, min_width=widest)
        else:
            t.add_column(c)
    for row in cells:
        t.add_row(*row)
    console.print(t)


def fail(message: str, code: int = 1) -> None:
    """Print an error for a person and exit non-zero."""
    # One line whatever the terminal's width, so it can be read and grepped as one; a
    # database URL's password never reaches the screen.
    err_console.print(f"[bold red]error:[/] {redact_urls(message)}", soft_wrap=True)
    raise SystemExit(code)
