"""A bounded workload through the router: logins, token requests and user writes, each
recorded in the acknowledgement log with who acknowledged it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from standby.drills.acks import Ack

OPS = ("login", "write", "token")


@dataclass
class OidcClient:
    client_id: str
    client_secret: str
    redirect_uri: str


@dataclass
class WorkloadConfig:
    base_url: str  # the router
    tenant: str
    admin_token: str
    users: list[tuple[str, str]]  # (username, password) that exist before the drill
    client: OidcClient | None = None
    concurrency: int = 4
    max_requests: int = 20_000  # bound on the whole run
    pause: float = 0.01  # between one worker's requests
    error_pause: float = 0.1  # after a failed request
    # As long as a browser or an OIDC library waits, not less: during a failover the
    # router holds requests (traffic.hold_s) rather than failing them.
    timeout: float = 10.0
    write_prefix: str = "w"


def error_kind(exc: Exception) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connect_error"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection_dropped"
    return type(exc).__name__


def _http_kind(resp: httpx.Response) -> str:
    code = ""
    try:
        body = resp.json()
        if isinstance(body, dict):
            code = str(body.get("error") or body.get("error_code") or "")
    except ValueError:
        pass
    return f"http_{resp.status_code} {code}".strip()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Workload:
    config: WorkloadConfig
    acks: list[Ack] = field(default_factory=list)
    milestones: list[dict[str, Any]] = field(default_factory=list)
    grant_mode: str = "none"  # refresh_token | client_credentials | none
    grant_note: str = ""
    _refresh: dict[str, str] = field(default_factory=dict)
    # One refresh at a time per user, as an application holding one refresh token does:
    # two workers rotating the same token at once would be reuse (and revoke the family).
    _refreshing: dict[str, asyncio.Lock] = field(default_factory=dict)

    def milestone(self, name: str, **detail: Any) -> None:
        self.milestones.append(
            {"at": time.time(), "mono": time.monotonic(), "kind": name, "source": "drill", **detail}
        )

    async def _request(
        self, client: httpx.AsyncClient, op: str, key: str, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        send_mono, send_wall = time.monotonic(), time.time()
        resp: httpx.Response | None = None
        error: str | None = None
        try:
            resp = await client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            error = error_kind(exc)
        recv_mono, recv_wall = time.monotonic(), time.time()
        ok = resp is not None and resp.status_code in (200, 201)
        if resp is not None and not ok:
            error = _http_kind(resp)
        epoch = resp.headers.get("standby-epoch") if resp is not None else None
        self.acks.append(
            Ack(
                op=op,
                key=key,
                send_mono=send_mono,
                recv_mono=recv_mono,
                send_wall=send_wall,
                recv_wall=recv_wall,
                ok=ok,
                status=resp.status_code if resp is not None else None,
                error=error,
                site=resp.headers.get("standby-site") if resp is not None else None,
                epoch=int(epoch) if epoch and epoch.isdigit() else None,
            )
        )
        return resp if ok else None

    def _last(self, op: str, key: str) -> Ack:
        """This key's latest acknowledgement (other workers append theirs meanwhile)."""
        return next(a for a in reversed(self.acks) if a.op == op and a.key == key)

    # -- token setup -------------------------------------------------------------------

    async def prepare_tokens(self) -> str:
        """Get a refresh token per user via the authorization-code flow when the OIDC part
        serves it; otherwise fall back to client_credentials, and say so."""
        c = self.config
        if c.client is None:
            self.grant_mode, self.grant_note = "none", "no OIDC client: token requests skipped"
            return self.grant_note
        base = f"{c.base_url}/t/{c.tenant}"
        async with httpx.AsyncClient(timeout=5.0) as client:
            username, password = c.users[0]
            for username, password in c.users:
                token = await self._authorization_code(client, base, username, password)
                if token is None:
                    break
                self._refresh[username] = token
        if self._refresh:
            self.grant_mode = "refresh_token"
            self.grant_note = f"OIDC refresh_token grant for {len(self._refresh)} users"
        else:
            self.grant_mode = "client_credentials"
            self.grant_note = (
                "the authorization endpoint gave no code, so no refresh tokens: token "
                "requests use the client_credentials grant instead"
            )
        return self.grant_note

    async def _authorization_code(
        self, client: httpx.AsyncClient, base: str, username: str, password: str
    ) -> str | None:
        c = self.config
        assert c.client is not None
        client.cookies.clear()
        login = await client.post(
            f"{base}/login", json={"username": username, "password": password}
        )
        if login.status_code != 200:
            return None
        verifier, challenge = _pkce()
        params = {
            "response_type": "code",
            "client_id": c.client.client_id,
            "redirect_uri": c.client.redirect_uri,
            "scope": "openid offline_access",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        resp = await client.get(f"{base}/authorize", params=params)
        location = resp.headers.get("location", "")
        code = parse_qs(urlsplit(location).query).get("code", [None])[0]
        if resp.status_code not in (302, 303) or not code:
            return None
        token = await client.post(
            f"{base}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": c.client.redirect_uri,
                "code_verifier": verifier,
            },
            auth=(c.client.client_id, c.client.client_secret),
        )
        if token.status_code != 200:
            return None
        refresh = token.json().get("refresh_token")
        return str(refresh) if refresh else None

    # -- the run -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, max_seconds: float) -> None:
        """Workers send requests until ``stop`` is set, ``max_seconds`` pass, or the
        request bound is reached."""
        deadline = time.monotonic() + max_seconds
        workers = [
            asyncio.create_task(self._worker(i, stop, deadline))
            for i in range(self.config.concurrency)
        ]
        await asyncio.gather(*workers)

    async def _worker(self, index: int, stop: asyncio.Event, deadline: float) -> None:
        c = self.config
        n = 0
        async with httpx.AsyncClient(timeout=c.timeout) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                if len(self.acks) >= c.max_requests:
                    return
                op = OPS[(index + n) % len(OPS)]
                user = c.users[(index * 7 + n) % len(c.users)]
                if op == "login":
                    ok = await self.login(client, *user)
                elif op == "write":
                    ok = await self.write(client, f"{c.write_prefix}-{index}-{n}")
                else:
                    ok = await self.token(client, user)
                n += 1
                # a client that just failed backs off a little, as Retry-After asks
                await asyncio.sleep(c.pause if ok else max(c.pause, c.error_pause))

    async def login(self, client: httpx.AsyncClient, username: str, password: str) -> bool:
        c = self.config
        client.cookies.clear()
        url = f"{c.base_url}/t/{c.tenant}/login"
        body = {"username": username, "password": password}
        return await self._request(client, "login", username, "POST", url, json=body) is not None

    async def write(self, client: httpx.AsyncClient, username: str) -> bool:
        c = self.config
        url = f"{c.base_url}/admin/tenants/{c.tenant}/users"
        headers = {"Authorization": f"Bearer {c.admin_token}"}
        body = {"username": username, "display_name": "drill write"}
        resp = await self._request(
            client, "write", username, "POST", url, json=body, headers=headers
        )
        return resp is not None

    async def token(self, client: httpx.AsyncClient, user: tuple[str, str]) -> bool:
        c = self.config
        if c.client is None or self.grant_mode == "none":
            return False
        url = f"{c.base_url}/t/{c.tenant}/token"
        auth = (c.client.client_id, c.client.client_secret)
        username = user[0]
        if self.grant_mode == "refresh_token" and username in self._refresh:
            async with self._refreshing.setdefault(username, asyncio.Lock()):
                form = {"grant_type": "refresh_token", "refresh_token": self._refresh[username]}
                resp = await self._request(
                    client, "token", username, "POST", url, data=form, auth=auth
                )
                if resp is not None and resp.json().get("refresh_token"):
                    self._refresh[username] = resp.json()["refresh_token"]
                elif self._last("token", username).error == "http_400 invalid_grant":
                    # the token was lost or revoked: sign in again, as an application would
                    base = f"{c.base_url}/t/{c.tenant}"
                    again = await self._authorization_code(client, base, *user)
                    if again:
                        self._refresh[username] = again
            return resp is not None
        form = {"grant_type": "client_credentials"}
        key = c.client.client_id
        return (
            await self._request(client, "token", key, "POST", url, data=form, auth=auth) is not None
        )
