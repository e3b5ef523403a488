"""Sessions through the traffic layer: each client sees only its own session.

Two real sites and the controller behind the builtin router and behind a real HAProxy.
Clients with their own cookie jars and one with none take turns; a response's cookies
reach only the client whose request caused them. (The builtin router once proxied
through one httpx client whose cookie jar replayed the last login to every cookieless
client: these tests fail against that router.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.cluster import Cluster
from tests.support.edge import TRAFFIC_LAYERS, edge_cluster
from tests.support.oidc import REDIRECT, code_request

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
SESSION = "standby_session"


@pytest.fixture(params=TRAFFIC_LAYERS)
def edge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Cluster, str]]:
    with edge_cluster(tmp_path, request.param) as running:
        yield running


def _seed(cluster: Cluster, url: str) -> tuple[dict[str, str], str]:
    admin = cluster.admin()
    r = httpx.post(f"{url}/admin/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
    assert r.status_code == 201, r.text
    ids = {}
    for name in ("alice", "bob"):
        r = httpx.post(
            f"{url}/admin/tenants/acme/users",
            json={"username": name, "password": PASSWORD},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    r = httpx.post(
        f"{url}/admin/tenants/acme/clients",
        json={"name": "app", "redirect_uris": [REDIRECT], "first_party": True},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return ids, str(r.json()["client_id"])


def _session_cookies(resp: httpx.Response) -> list[str]:
    return [c for c in resp.headers.get_list("set-cookie") if c.startswith(f"{SESSION}")]


def test_each_client_sees_only_its_own_session(edge: tuple[Cluster, str]) -> None:
    cluster, url = edge
    ids, client_id = _seed(cluster, url)
    alice, bob = httpx.Client(base_url=url), httpx.Client(base_url=url)
    # a client that never sends a cookie: a fresh connection and no jar for every request
    def stranger(method: str, path: str, **kw: object) -> httpx.Response:
        with httpx.Client(base_url=url) as c:
            return c.request(method, path, **kw)  # type: ignore[arg-type]

    try:
        login_a = alice.post("/t/acme/login", json={"username": "alice", "password": PASSWORD})
        assert login_a.status_code == 200, login_a.text
        assert len(_session_cookies(login_a)) == 1
        cookie_a = alice.cookies.get(SESSION)
        assert cookie_a

        # right after alice signed in, a client with no cookie is nobody
        r = stranger("GET", "/t/acme/session")
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "no_session"
        assert cookie_a not in r.headers.get("set-cookie", "")

        # a wrong password signs nobody in, and hands out no one else's session
        r = stranger("POST", "/t/acme/login", json={"username": "alice", "password": "wrong-pw"})
        assert r.status_code == 401, r.text
        assert _session_cookies(r) == []
        r = stranger("GET", "/t/acme/authorize", params=code_request(client_id))
        assert r.status_code == 200, (r.status_code, r.headers.get("location"))
        assert "text/html" in r.headers["content-type"]
        assert "password" in r.text.lower()  # the login page, not a code for alice
        assert "location" not in r.headers

        login_b = bob.post("/t/acme/login", json={"username": "bob", "password": PASSWORD})
        assert login_b.status_code == 200, login_b.text
        cookie_b = bob.cookies.get(SESSION)
        assert cookie_b and cookie_b != cookie_a
        assert cookie_a not in login_b.headers.get("set-cookie", "")

        # interleaved: each sees itself, the stranger sees nobody, every time
        for _ in range(3):
            assert alice.get("/t/acme/session").json()["user_id"] == ids["alice"]
            assert stranger("GET", "/t/acme/session").status_code == 401
            assert bob.get("/t/acme/session").json()["user_id"] == ids["bob"]
            assert stranger("GET", "/t/acme/session").status_code == 401

        # alice's code flow ends with a code; the stranger's still with the login page
        r = alice.get("/t/acme/authorize", params=code_request(client_id))
        assert r.status_code in (302, 303), r.text
        assert urlsplit(r.headers["location"]).netloc == urlsplit(REDIRECT).netloc
        assert "code=" in r.headers["location"]
        r = stranger("GET", "/t/acme/authorize", params=code_request(client_id))
        assert r.status_code == 200 and "location" not in r.headers

        # logging alice out clears her cookie, on her client only; bob is still bob
        out = alice.post("/t/acme/logout")
        assert out.status_code == 200 and out.json()["logged_out"] is True
        assert alice.get("/t/acme/session").status_code == 401
        assert bob.get("/t/acme/session").json()["user_id"] == ids["bob"]
        assert stranger("GET", "/t/acme/session").status_code == 401
    finally:
        alice.close()
        bob.close()


def test_a_cookie_sent_once_is_not_reused(edge: tuple[Cluster, str]) -> None:
    """A client that sends its session cookie once and then stops is not served as that
    user on its next, cookieless request (nor is anyone else)."""
    cluster, url = edge
    ids, _ = _seed(cluster, url)
    with httpx.Client(base_url=url) as login:
        r = login.post("/t/acme/login", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 200
        token = login.cookies.get(SESSION)
    assert token
    with httpx.Client(base_url=url) as once:
        r = once.get("/t/acme/session", headers={"cookie": f"{SESSION}={token}"})
        assert r.json()["user_id"] == ids["alice"]
        once.cookies.clear()
        r = once.get("/t/acme/session")
        assert r.status_code == 401, r.text
