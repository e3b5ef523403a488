"""What a standby site does for OIDC: discovery, JWKS, introspection, userinfo and
client_credentials work from replicated data without writing; grants that must be
remembered answer 503 temporarily_unavailable (Retry-After) and write nothing."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from standby.identity import keys
from standby.server import Site, create_app
from standby.store import Store
from tests.support.identity import PASSWORD, identity_site
from tests.support.oidc import REDIRECT, basic, machine_client, make_client, parse_form, query_of


def test_standby_serves_reads_and_refuses_grants_that_write(tmp_path: Path, store_url: str) -> None:
    with identity_site(tmp_path, store_url) as ids:
        ids.client.follow_redirects = False
        ids.tenant("acme")
        ids.user("alice")
        keys.ensure_active_key(ids.site)
        machine = machine_client(ids)
        web = make_client(ids, first_party=True, resource_servers=[machine["client_id"]])
        m_auth = basic(machine["client_id"], machine["client_secret"])
        w_auth = basic(web["client_id"], web["client_secret"])
        # a session, a code and tokens made on the primary
        page = ids.client.get(
            "/t/acme/authorize",
            params={
                "response_type": "code",
                "client_id": web["client_id"],
                "redirect_uri": REDIRECT,
                "scope": "openid profile",
            },
        )
        form = parse_form(page.text)
        done = ids.client.post(
            form.action or "", data={**form.fields, "username": "alice", "password": PASSWORD}
        )
        code = query_of(done.headers["location"])["code"]
        tokens = ids.client.post(
            "/t/acme/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
            headers=w_auth,
        ).json()
        session_cookie = dict(ids.client.cookies)

        store = Store(f"sqlite:///{tmp_path / 'standby.db'}", "site-b")
        store.create(role="standby")
        store.apply(ids.store.iter_records())
        standby = Site(
            ids.site.settings.model_copy(update={"site": "site-b", "role": "standby"}),
            ids.site.secrets,
            store,
        )
        standby.parts["clock"] = ids.clock
        sb = TestClient(create_app(standby), follow_redirects=False, cookies=session_cookie)
        head = store.head().lsn
        try:
            assert sb.get("/readyz").status_code == 200
            meta = sb.get("/t/acme/.well-known/openid-configuration").json()
            assert meta == ids.client.get("/t/acme/.well-known/openid-configuration").json()
            assert sb.get("/t/acme/jwks").json() == ids.client.get("/t/acme/jwks").json()
            cc = sb.post("/t/acme/token", data={"grant_type": "client_credentials"}, headers=m_auth)
            assert cc.status_code == 200, cc.text
            intro = sb.post(
                "/t/acme/introspect", data={"token": tokens["access_token"]}, headers=m_auth
            )
            assert intro.json()["active"] is True
            info = sb.get(
                "/t/acme/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            assert info.status_code == 200 and info.json()["preferred_username"] == "alice"
            for form_data, auth in (
                ({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, w_auth),
                (
                    {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT},
                    w_auth,
                ),
            ):
                r = sb.post("/t/acme/token", data=form_data, headers=auth)
                assert r.status_code == 503, r.text
                assert r.json()["error"] == "temporarily_unavailable"
                assert r.headers["retry-after"]
                # nothing changed: a traffic layer may hold it for the primary
                assert r.headers["standby-refused"] == "before-write"
            revoke = sb.post(
                "/t/acme/revoke", data={"token": tokens["refresh_token"]}, headers=w_auth
            )
            assert (revoke.status_code, revoke.json()["error"]) == (503, "temporarily_unavailable")
            silent = sb.get(
                "/t/acme/authorize",
                params={
                    "response_type": "code",
                    "client_id": web["client_id"],
                    "redirect_uri": REDIRECT,
                    "scope": "openid",
                    "prompt": "none",
                    "state": "s",
                },
            )
            # nothing written: a page marked for the traffic layer and write forwarding
            # (which send it on to the primary), not an error sent back to the application
            assert silent.status_code == 503 and "location" not in silent.headers
            assert silent.headers["standby-refused"] == "before-write"
            assert "primary" in silent.text
            assert store.head().lsn == head
        finally:
            sb.close()
            store.close()
