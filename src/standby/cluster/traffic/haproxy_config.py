"""haproxy.cfg for a topology: the frontend at ``traffic.listen``, one server per site
with HTTP health checks of /readyz and a sticky cookie, the admin-level runtime socket
the controller drives, a log line, timeouts, retries only of what cannot have changed
anything, and a hold: a request that arrives while no server can take it (the primary
is down, the standby not yet promoted) waits up to ``traffic.hold_s`` for one, as in
the builtin router (a small Lua action, ``HOLD_LUA``, written beside the config).

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

HOLD_FILE = "standby-hold.lua"
HOLD_STEP_MS = 20
# ``nbsrv(backend)`` counts the servers HAProxy would route to now (up, weight above 0,
# not in maintenance or drained); msleep yields, so a held request costs no CPU. The
# loop is bounded by the hold time.
HOLD_LUA = f"""-- Standby: hold a request while no server of the backend can take it (a failover
-- under way), up to hold_ms; then HAProxy routes it, or answers 503.
core.register_action("standby_hold", {{ "http-req" }}, function(txn, backend, hold_ms)
  local limit = tonumber(hold_ms) or 0
  local waited = 0
  while waited < limit and (txn.f:nbsrv(backend) or 0) == 0 do
    core.msleep({HOLD_STEP_MS})
    waited = waited + {HOLD_STEP_MS}
  end
end, 2)
"""

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
    hold_lua: Path | None = None,
) -> str:
    """The config; ``primary`` is the site that takes traffic (the DCS's leader), by
    default the topology's primary; ``hold_lua``: where ``HOLD_LUA`` is (no hold without
    it, nor with ``traffic.hold_s: 0``)."""
    traffic = topology.traffic
    host, port = listen_address(traffic.listen)
    sock = socket_path or traffic.haproxy.socket
    inter = check_interval_ms or max(50, int(traffic.health_interval * 1000))
    names = [s.name for s in topology.sites]
    leader = primary or next(s.name for s in topology.sites if s.role == "primary")
    if leader not in names:
        raise ValueError(f"{leader!r} is not a site of the topology ({', '.join(names)})")
    weights = initial_weights(leader, names)
    hold_ms = int(traffic.hold_s * 1000) if hold_lua is not None else 0
    lines = [
        "global",
        f"    stats socket {sock} mode 600 level admin",
        "    maxconn 4096",
        log_line(log),
    ]
    if hold_ms:
        lines.append(f"    lua-load {hold_lua}")
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
    if hold_ms:
        backend = traffic.haproxy.backend
        lines.append(f"    http-request lua.standby_hold {backend} {hold_ms}")
    for site in topology.sites:
        parts = urlsplit(site.url)
        weight = weights[site.name]
        # a standby starts in maintenance: no sticky client is pinned to it
        disabled = " disabled" if wanted_state(weight) == "maint" else ""
        # A refused connection marks the server down at once, not after `fall` checks:
        # the requests after it are held for the next primary instead of being sent to
        # a dead one (whose retry can only come back to no server at all).
        lines.append(
            f"    server {site.name} {parts.hostname}:{parts.port} weight {weight} "
            f"check inter {inter} fall 2 rise 1 observe layer4 error-limit 1 "
            f"on-error mark-down cookie {site.name}{disabled}"
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
    """The config at ``path`` and the hold's Lua beside it (``HOLD_FILE``)."""
    hold = path.resolve().with_name(HOLD_FILE)
    hold.write_text(HOLD_LUA)
    path.write_text(render_config(topology, socket_path, primary=primary, log=log, hold_lua=hold))
    return path
