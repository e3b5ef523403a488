"""One output layer for the CLI: human text via rich by default, JSON with --json."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    elif human is not None:
        console.print(human)
    else:
        console.print_json(json.dumps(data, default=str))


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    console.print(t)


def fail(message: str, code: int = 1) -> None:
    """Print an error for a person and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise SystemExit(code)
