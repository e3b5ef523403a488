"""The hosted pages in a real browser: headless Chromium (Debian's) driven by Playwright,
through the traffic layer (the builtin router and a real HAProxy) in front of two real
sites. The client's redirect URIs are a real server on another loopback origin (IPv4,
and the IPv6 loopback that CSP cannot name), so the browser really goes there.

Chromium checks a form's ``form-action`` against every hop of its POST's redirects: with
``form-action 'self'`` alone it blocked every sign-in ("Sending form data to
'.../authorize/login' violates ...") and the login tests here stayed on the form. Every
test also asserts that the browser reported nothing: no console message, no
``securitypolicyviolation`` event."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt as pyjwt
import pyotp
import pytest
from playwright.sync_api import Browser

from tests.support.browser import Landing, Watched, chromium, watched_page
from tests.support.cluster import Cluster
from tests.support.edge import TRAFFIC_LAYERS, edge_cluster
from tests.support.identity import PASSWORD
from tests.support.oidc import pkce

pytestmark = pytest.mark.slow

LOOPBACKS = ["127.0.0.1", "::1"]
SESSION = "standby_session"


class Env:
    """One cluster behind one traffic layer, the client application's two origins, a
    public client registered for both (first-party: no consent page; the consent test
    registers a third-party one), and Chromium."""

    def __init__(self, cluster: Cluster, url: str, apps: dict[str, Landing], browser: Browser):
        self.cluster, self.url, self.apps, self.browser = cluster, url, apps, browser
        admin = cluster.admin()
        r = httpx.post(f"{url}/admin/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        assert r.status_code == 201, r.text
        self.client_id = self.register("browser-app", first_party=True)

    def register(self, name: str, **extra: Any) -> str:
        """A public client for both of the application's origins; its client_id."""
        r = httpx.post(
            f"{self.url}/admin/tenants/acme/clients",
            json={
                "name": name,
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "redirect_uris": [f"{a.url}/cb" for a in self.apps.values()],
                "post_logout_redirect_uris": [f"{a.url}/bye" for a in self.apps.values()],
                **extra,
            },
            headers=self.cluster.admin(),
        )
        assert r.status_code == 201, r.text
        return str(r.json()["client_id"])

    def user(self, prefix: str) -> str:
        name = f"{prefix}-{secrets.token_hex(4)}"
        r = httpx.post(
            f"{self.url}/admin/tenants/acme/users",
            json={"username": name, "password": PASSWORD},
            headers=self.cluster.admin(),
        )
        assert r.status_code == 201, r.text
        return name

    def authorize_url(self, app: Landing, challenge: str, state: str, **extra: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,  # extra may name another
            "redirect_uri": f"{app.url}/cb",
            "scope": "openid profile",
            "state": state,
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return f"{self.url}/t/acme/authorize?{urlencode(query)}"

    def redeem(
        self, app: Landing, code: str, verifier: str, client_id: str | None = None
    ) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/t/acme/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{app.url}/cb",
                "client_id": client_id or self.client_id,
                "code_verifier": verifier,
            },
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, Landing]]:
    started = {host: Landing(host).start() for host in LOOPBACKS}
    try:
        yield started
    finally:
        for app in started.values():
            app.stop()


@pytest.fixture(scope="module", params=TRAFFIC_LAYERS)
def env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    apps: dict[str, Landing],
    browser: Browser,
) -> Iterator[Env]:
    root: Path = tmp_path_factory.mktemp(f"browser-{request.param}")
    # No failover here: health checks at 0.5 s (HAProxy times a check out after its
    # interval) keep a loaded machine's slow /readyz from marking both sites down.
    with edge_cluster(root, request.param, {"health_interval": 0.5}) as (cluster, url):
        yield Env(cluster, url, apps, browser)


@pytest.fixture
def tab(env: Env) -> Iterator[Watched]:
    with watched_page(env.browser) as watched:
        yield watched


def sign_in(env: Env, tab: Watched, app: Landing, username: str) -> tuple[str, dict[str, Any]]:
    """The code + PKCE flow through the hosted form; returns the state sent and the query
    the browser brought to the client's redirect URI."""
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)
    tab.page.goto(env.authorize_url(app, challenge, state))
    tab.page.fill("#username", username)
    tab.page.fill("#password", PASSWORD)
    tab.page.click("button[type=submit]")
    landed = tab.wait_for_url(f"{app.url}/cb?")
    path, query = app.seen[-1]
    assert path == "/cb" and query["state"] == state, (landed, app.seen[-1])
    return verifier, query


@pytest.mark.parametrize("host", LOOPBACKS)
def test_code_and_pkce_login_reaches_the_redirect_uri(env: Env, tab: Watched, host: str) -> None:
    app = env.apps[host]
    verifier, query = sign_in(env, tab, app, env.user("alice"))
    assert query["code"]
    tokens = env.redeem(app, query["code"], verifier)
    assert {"access_token", "id_token"} <= set(tokens)
    info = httpx.get(
        f"{env.url}/t/acme/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert info.status_code == 200, info.text
    assert info.json()["preferred_username"].startswith("alice-")
    tab.assert_clean()


def _not_a_current_code(totp: pyotp.TOTP) -> str:
    near = {totp.at(time.time() + 30 * k) for k in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in near)


def test_totp_step(env: Env, tab: Watched) -> None:
    username = env.user("totp")
    with httpx.Client(base_url=env.url) as own:
        r = own.post("/t/acme/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        secret = own.post("/t/acme/mfa/totp/enroll").json()["secret"]
        totp = pyotp.TOTP(secret)
        r = own.post("/t/acme/mfa/totp/confirm", json={"code": totp.now()})
        assert r.status_code == 200, r.text

    app = env.apps["127.0.0.1"]
    verifier, challenge = pkce()
    tab.page.goto(env.authorize_url(app, challenge, "totp-state"))
    tab.page.fill("#username", username)
    tab.page.fill("#password", PASSWORD)
    tab.page.click("button[type=submit]")
    tab.page.wait_for_selector("#totp")
    assert tab.page.inner_text("h1") == "Two-step verification"
    assert PASSWORD not in tab.page.content()

    tab.page.fill("#totp", _not_a_current_code(totp))
    tab.page.click("button[type=submit]")
    tab.page.wait_for_selector(".error")
    assert tab.page.url == f"{env.url}/t/acme/authorize/login"
    assert tab.page.inner_text(".error")

    # confirming used this step; the verifier accepts the next one (clock drift)
    tab.page.fill("#totp", totp.at(time.time() + 30))
    tab.page.click("button[type=submit]")
    tab.wait_for_url(f"{app.url}/cb?")
    path, query = app.seen[-1]
    assert query["state"] == "totp-state"
    tokens = env.redeem(app, query["code"], verifier)
    claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert "otp" in claims["amr"]
    tab.assert_clean(statuses=(401,))  # the wrong code's page


def _session_cookie(tab: Watched) -> str | None:
    values = [c.get("value") for c in tab.context.cookies() if c.get("name") == SESSION]
    return values[0] if values else None


def _session_live(env: Env, cookie: str) -> bool:
    r = httpx.get(f"{env.url}/t/acme/session", cookies={SESSION: cookie})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def _assert_signed_out(env: Env, tab: Watched, cookie: str) -> None:
    """The browser dropped its session cookie and the session itself is over."""
    assert _session_cookie(tab) is None
    assert not _session_live(env, cookie)


def _signed_in(tab: Watched, env: Env) -> str:
    cookie = _session_cookie(tab)
    assert cookie and _session_live(env, cookie)
    return cookie


@pytest.mark.parametrize("host", LOOPBACKS)
def test_logout_confirmed_on_the_page(env: Env, tab: Watched, host: str) -> None:
    app = env.apps[host]
    sign_in(env, tab, app, env.user("leaver"))
    cookie = _signed_in(tab, env)
    query = {
        "client_id": env.client_id,
        "post_logout_redirect_uri": f"{app.url}/bye",
        "state": "bye-state",
    }
    tab.page.goto(f"{env.url}/t/acme/end-session?{urlencode(query)}")
    assert tab.page.inner_text("h1") == "Sign out"
    tab.page.click("button[type=submit]")
    tab.wait_for_url(f"{app.url}/bye?")
    assert app.seen[-1] == ("/bye", {"state": "bye-state"})
    _assert_signed_out(env, tab, cookie)
    tab.assert_clean()


def test_logout_with_id_token_hint(env: Env, tab: Watched) -> None:
    app = env.apps["127.0.0.1"]
    verifier, code_query = sign_in(env, tab, app, env.user("hinted"))
    tokens = env.redeem(app, code_query["code"], verifier)
    cookie = _signed_in(tab, env)
    query = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": f"{app.url}/bye",
        "state": "hint-state",
    }
    tab.page.goto(f"{env.url}/t/acme/end-session?{urlencode(query)}")
    tab.wait_for_url(f"{app.url}/bye?")
    assert app.seen[-1] == ("/bye", {"state": "hint-state"})
    _assert_signed_out(env, tab, cookie)
    # the next authorization asks for the password again
    tab.page.goto(env.authorize_url(app, pkce()[1], "again"))
    assert tab.page.is_visible("#password")
    tab.assert_clean()


def test_error_pages_show_a_message_and_do_not_redirect(env: Env, tab: Watched) -> None:
    app = env.apps["127.0.0.1"]
    seen = len(app.seen)
    unknown = env.authorize_url(app, pkce()[1], "s").replace(env.client_id, "no-such-client")
    response = tab.page.goto(unknown)
    assert response is not None and response.status == 400
    assert "unknown client_id" in tab.page.inner_text(".error")
    assert tab.page.url == unknown

    username = env.user("typo")
    verifier, challenge = pkce()
    tab.page.goto(env.authorize_url(app, challenge, "typo-state"))
    tab.page.fill("#username", username)
    tab.page.fill("#password", "not the password")
    with tab.page.expect_response(f"{env.url}/t/acme/authorize/login") as answer:
        tab.page.click("button[type=submit]")
    assert answer.value.status == 401
    assert tab.page.inner_text(".error") == "wrong username or password"
    assert tab.page.url == f"{env.url}/t/acme/authorize/login"
    assert len(app.seen) == seen  # nothing reached the client

    # the form shown again with the error signs in
    tab.page.fill("#password", PASSWORD)
    tab.page.click("button[type=submit]")
    tab.wait_for_url(f"{app.url}/cb?")
    assert app.seen[-1][1]["state"] == "typo-state"
    assert env.redeem(app, app.seen[-1][1]["code"], verifier)["access_token"]
    tab.assert_clean(statuses=(400, 401))  # the unknown client's and the wrong password's


@pytest.mark.parametrize("host", LOOPBACKS)
def test_consent_page_allows_and_reaches_the_redirect_uri(
    env: Env, tab: Watched, host: str
) -> None:
    """A third-party client: after the password the consent page; Allow ends at the
    redirect URI with a code (the form's POST passes CSP), offline_access included."""
    app = env.apps[host]
    client_id = env.register(
        f"third-party-{secrets.token_hex(3)}", scopes=["openid", "profile", "offline_access"]
    )
    verifier, challenge = pkce()
    url = env.authorize_url(
        app, challenge, "consent-state", client_id=client_id, scope="openid offline_access"
    )
    tab.page.goto(url)
    tab.page.fill("#username", env.user("consenting"))
    tab.page.fill("#password", PASSWORD)
    tab.page.click("button[type=submit]")
    tab.page.wait_for_selector("button[value=allow]")
    assert tab.page.inner_text("h1") == "Allow access?"
    assert "a refresh token" in tab.page.content()
    tab.page.click("button[value=allow]")
    tab.wait_for_url(f"{app.url}/cb?")
    path, query = app.seen[-1]
    assert path == "/cb" and query["state"] == "consent-state"
    tokens = env.redeem(app, query["code"], verifier, client_id)
    assert tokens["refresh_token"] and tokens["scope"] == "openid offline_access"
    # remembered: the next authorization goes straight back with a code
    tab.page.goto(url.replace("consent-state", "again"))
    tab.wait_for_url(f"{app.url}/cb?")
    assert app.seen[-1][1]["state"] == "again" and app.seen[-1][1]["code"]
    tab.assert_clean()
