"""Running `standby` commands in-process (typer's CliRunner) and reading what a person sees."""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from standby.cli import app

# Wide enough that rich wraps nothing a test looks for.
runner = CliRunner(env={"COLUMNS": "250"})


@dataclass
class Ran:
    code: int
    out: str  # standard output as printed
    err: str  # standard error as printed

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run(*args: str, input: str | None = None) -> Ran:
    """`standby ARGS...`; exceptions a command lets escape become the result's output
    (exit code 1 and the traceback), as a person running it would see them."""
    result = runner.invoke(app, list(args), input=input)
    err = result.stderr if result.stderr_bytes is not None else ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        err += "".join(traceback.format_exception(result.exception))
    return Ran(result.exit_code, result.stdout, err)
