"""Processes a drill starts (`standby serve`, `standby controller`, `standby router`):
logs to files, wait for health, kill or stop; a group stops all of them on exit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx


class ProcessError(RuntimeError):
    pass


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside the block take effect when it ends (main
    thread only; elsewhere signals are not delivered to Python code anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    caught = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, _frame: pending.append(signum)) for s in caught}
    try:
        yield
    finally:
        for caught_signal, handler in previous.items():
            signal.signal(caught_signal, handler)
        for signum in pending:
            signal.raise_signal(signum)


def standby_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "standby.cli", *args]


@dataclass
class Managed:
    name: str
    argv: list[str]
    log_path: Path
    health_url: str | None = None
    health_headers: dict[str, str] = field(default_factory=dict)
    health_status: int | None = None  # the status that means ready; None: any below 500
    proc: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)  # every pid this name ever had

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, env: dict[str, str] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A Ctrl-C between the fork and the record of the pid would leave a process that
        # nobody stops: the interrupt waits until the pid is recorded.
        with self.log_path.open("ab") as log, interrupts_deferred():
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # its own process group: kill -9 takes it all
            )
            self.pids.append(self.proc.pid)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        if self.health_url is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ProcessError(f"{self.name} exited during start:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                code = httpx.get(self.health_url, headers=self.health_headers, timeout=0.5)
                if code.status_code == self.health_status or (
                    self.health_status is None and code.status_code < 500
                ):
                    return
            time.sleep(0.05)
        raise ProcessError(f"{self.name} not healthy after {timeout}s:\n{self.log_tail()}")

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)

    def stop(self, grace: float = 5.0) -> None:
        if not self.running():
            return
        assert self.proc is not None
        self.signal(signal.SIGCONT)  # a stalled process cannot act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill9()


class ProcessGroup:
    """Everything a drill started; leaving the ``with`` block stops them all, also on
    errors and Ctrl-C."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, Managed] = {}

    def start(
        self,
        name: str,
        argv: list[str],
        health_url: str | None = None,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> Managed:
        managed = self.procs.get(name)
        if managed is None:
            managed = Managed(name, argv, self.log_dir / f"{name}.log", health_url)
            self.procs[name] = managed
        elif managed.running():
            raise ProcessError(f"{name} is already running (pid {managed.pid})")
        managed.argv, managed.health_url = argv, health_url
        managed.start(env)
        managed.wait_healthy(timeout)
        return managed

    def all_pids(self) -> list[int]:
        return [pid for m in self.procs.values() for pid in m.pids]

    def stop_all(self) -> None:
        for managed in reversed(list(self.procs.values())):
            managed.stop()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
