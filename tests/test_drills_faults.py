"""Faults and process handling for drills: a TCP partition proxy, SIGSTOP stalls, kill -9,
and a process group that stops what it started even when the drill fails."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from standby.drills.faults import TcpProxy, kill9, stall
from standby.drills.processes import ProcessError, ProcessGroup, pid_alive


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[-1].split()[0]


async def _echo_server() -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _cut(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(4), 5) == b""
    except ConnectionResetError:
        return True


def test_tcp_proxy_partition_and_heal() -> None:
    async def scenario() -> None:
        server = await _echo_server()
        port = server.sockets[0].getsockname()[1]
        proxy = await TcpProxy("127.0.0.1", port).start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.read(4), 5) == b"ping"
            proxy.partition()
            # the open connection is cut, and new ones get nowhere
            assert await _cut(reader)
            r2, w2 = await asyncio.open_connection("127.0.0.1", proxy.port)
            w2.write(b"x")
            assert await _cut(r2)
            proxy.heal()
            r3, w3 = await asyncio.open_connection("127.0.0.1", proxy.port)
            w3.write(b"back")
            assert await asyncio.wait_for(r3.read(4), 5) == b"back"
            w3.close()
        finally:
            await proxy.stop()
            server.close()

    asyncio.run(scenario())


def test_stall_stops_then_continues_a_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:

        async def scenario() -> str:
            task = asyncio.create_task(stall(proc.pid, 0.5))
            await asyncio.sleep(0.2)
            during = _state(proc.pid)
            await task
            return during

        assert asyncio.run(scenario()) == "T"
        assert _state(proc.pid) in ("S", "R")
        kill9(proc.pid)
        proc.wait(10)
        assert proc.returncode == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_process_group_stops_everything_even_on_error(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    group = ProcessGroup(tmp_path / "logs")
    with pytest.raises(RuntimeError, match="drill went wrong"), group:
        group.start("one", sleeper)
        two = group.start("two", sleeper)
        two.signal(__import__("signal").SIGSTOP)  # a stalled one must be stopped too
        raise RuntimeError("drill went wrong")
    pids = group.all_pids()
    assert len(pids) == 2 and not any(pid_alive(p) for p in pids)
    assert (tmp_path / "logs" / "one.log").exists()


def test_process_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    with ProcessGroup(tmp_path) as group, pytest.raises(ProcessError, match="boom"):
        group.start(
            "bad",
            [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
            health_url="http://127.0.0.1:9/never",
        )


def test_an_interrupt_while_a_process_starts_waits_until_its_pid_is_recorded(
    tmp_path: Path,
) -> None:
    """Ctrl-C during start-up: the new process is recorded first, so it is stopped."""
    import os
    import signal as sig

    from standby.drills.processes import Managed, interrupts_deferred

    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), sig.SIGINT)  # arrives while "starting"
        reached_the_end = True
    assert reached_the_end
    managed = Managed("sleeper", ["sleep", "30"], tmp_path / "sleeper.log", None)
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_deferred():
            os.kill(os.getpid(), sig.SIGINT)
            managed.start()
        assert managed.pids and managed.running()  # recorded, so it can be stopped
    finally:
        managed.stop(grace=5)
    assert not managed.running()
