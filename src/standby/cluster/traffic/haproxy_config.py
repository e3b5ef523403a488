"""haproxy.cfg for a topology: the frontend at ``traffic.listen``, one server per site
with HTTP health checks of /readyz and a sticky cookie, the admin-level runtime socket
the controller drives, a log line, timeouts, and retries only of what cannot have
changed anything.

Weights and states start as the controller wants them (the primary ready at 100, the
others in maintenance at 0, see ``state.py``), so an HAProxy (re)started from this file
sends nothing to a standby even before the controller has corrected it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from standby.cluster.topology import Topology
from standby.cluster.traffic.builtin import listen_address
from standby.cluster.traffic.state import wanted_state
from standby.cluster.traffic.weights import initial_weights

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")


def log_line(target: str) -> str:
    """The ``log`` line for ``stdout``, ``stderr``, a unix socket path (``/dev/log``) or a
    syslog ``host:port`` over UDP; ValueError naming what is accepted otherwise."""
    if target in ("stdout", "stderr"):
        # raw: one line per request, no syslog header (HAProxy runs in the foreground)
        return f"    log {target} format raw local0"
    if target.startswith("/") or _HOST_PORT.match(target):
        return f"    log {target} local0"
    raise ValueError(
        f"log target {target!r}: use stdout, stderr, a unix socket path such as /dev/log, "
        "or a syslog host:port"
    )


def render_config(
    topology: Topology,
    socket_path: str | None = None,
    *,
    check_interval_ms: int | None = None,
    pidfile: str | None = None,
    primary: str | None = None,
    log: str = "stdout",
) -> str:
    """The config; ``primary`` is the site that takes traffic (the DCS's leader), by
    default the topology's primary."""
    traffic = topology.traffic
    host, port = listen_address(traffic.listen)
    sock = socket_path or traffic.haproxy.socket
    inter = check_interval_ms or max(50, int(traffic.health_interval * 1000))
    names = [s.name for s in topology.sites]
    leader = primary or next(s.name for s in topology.sites if s.role == "primary")
    if leader not in names:
        raise ValueError(f"{leader!r} is not a site of the topology ({', '.join(names)})")
    weights = initial_weights(leader, names)
    lines = [
        "global",
        f"    stats socket {sock} mode 600 level admin",
        "    maxconn 4096",
        log_line(log),
    ]
    if pidfile:
        lines.append(f"    pidfile {pidfile}")
    lines += [
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option forwardfor",
        # A request is sent again only when it never reached a site (the connection
        # failed), or, for GET/HEAD/OPTIONS, when the site closed without answering;
        # each retry may pick another server. Never a 503 (strict sync mode answers one
        # after committing) and never a POST a site may have committed before dying.
        "    retries 2",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response",
        "    timeout connect 1s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        # a health check may take longer than its interval on a busy site (without this
        # the interval is the check's timeout, and a slow /readyz marks every site down)
        "    timeout check 2s",
        "",
        "frontend standby_in",
        f"    bind {host}:{port}",
        f"    default_backend {traffic.haproxy.backend}",
        "",
        f"backend {traffic.haproxy.backend}",
        "    balance roundrobin",
        "    option httpchk GET /readyz",
        "    http-check expect status 200",
        f"    cookie {traffic.sticky_cookie} insert indirect nocache",
        "    http-request disable-l7-retry unless METH_GET || METH_OPTIONS",
    ]
    for site in topology.sites:
        parts = urlsplit(site.url)
        weight = weights[site.name]
        # a standby starts in maintenance: no sticky client is pinned to it
        disabled = " disabled" if wanted_state(weight) == "maint" else ""
        lines.append(
            f"    server {site.name} {parts.hostname}:{parts.port} weight {weight} "
            f"check inter {inter} fall 2 rise 1 cookie {site.name}{disabled}"
        )
    return "\n".join(lines) + "\n"


def write_config(
    topology: Topology,
    path: Path,
    socket_path: str | None = None,
    *,
    primary: str | None = None,
    log: str = "stdout",
) -> Path:
    path.write_text(render_config(topology, socket_path, primary=primary, log=log))
    return path
