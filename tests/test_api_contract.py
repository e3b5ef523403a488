"""The site's HTTP contract as a client reads it: /openapi.json declares every status the
API really answers (observed here, not listed by hand) and the form bodies of the OAuth
endpoints; a 405 names what is allowed; a body that is not JSON says so; internal cluster
routes authenticate the caller before they look at the body."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.identity import PASSWORD, IdSite, identity_site
from tests.support.oidc import make_client


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with identity_site(tmp_path, store_url, {"lockout": {"max_failures": 2}}) as s:
        s.tenant()
        s.user()
        yield s


def _operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The document's operation whose path template matches the concrete ``path``."""
    for template, operations in doc["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return dict(operations[method.lower()])
    raise AssertionError(f"{method} {path} is not in the document")


def test_document_declares_every_status_the_api_answers(ids: IdSite) -> None:
    doc = ids.client.get("/openapi.json").json()
    secret = ids.site.secrets.replication_secret.get_secret_value()
    client = make_client(ids)
    wrong = {"Authorization": "Bearer wrong"}
    seen: list[tuple[str, str, int]] = []

    def call(method: str, path: str, **kw: Any) -> None:
        kw.setdefault("headers", ids.admin)
        seen.append((method, path, ids.client.request(method, path, **kw).status_code))

    call("POST", "/admin/tenants", json={"id": "acme", "name": "again"})  # 409
    call("POST", "/admin/tenants", json={"id": "Not Valid!", "name": "x"})  # 400
    call("POST", "/admin/tenants", json={"id": "t2", "name": "x"}, headers=wrong)  # 401
    call("GET", "/admin/tenants/nope")  # 404
    call("POST", "/admin/tenants", json={"id": "t3", "name": "x" * 70000})  # 413
    for _ in range(3):  # 401 twice, then 423 locked
        call("POST", "/t/acme/login", json={"username": "alice", "password": "wrong!!"}, headers={})
    call("POST", "/t/acme/token", data={}, headers={})  # 400: no grant_type
    call(
        "POST",
        "/t/acme/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], "wrong"),
        headers={},
    )  # 401 invalid_client
    call("POST", "/t/acme/introspect", data={"token": "x"}, headers={})  # 401
    call("POST", "/t/acme/revoke", data={}, headers={})  # 401 or 400
    call("GET", "/t/acme/userinfo", headers={})  # 401
    call("GET", "/t/nope/jwks", headers={})  # 404
    call("POST", "/cluster/failsafe", json={"site": "x", "epoch": 1}, headers={})  # 401
    call(
        "POST",
        "/cluster/failsafe",
        json={"epoch": 0},
        headers={"Authorization": f"Bearer {secret}"},
    )  # 400
    ids.site.set_role("standby")
    call("POST", "/admin/tenants", json={"id": "t4", "name": "x"})  # 503
    call("POST", "/t/acme/login", json={"username": "alice", "password": PASSWORD}, headers={})
    statuses = {status for _, _, status in seen}
    assert {400, 401, 404, 409, 413, 423, 503} <= statuses, seen
    for method, path, status in seen:
        declared = _operation(doc, method, path)["responses"]
        assert str(status) in declared, (method, path, status, sorted(declared))
    ops = [op for operations in doc["paths"].values() for op in operations.values()]
    assert all("422" not in op["responses"] for op in ops)  # bad input is a 400, never a 422
    ids_ = [op["operationId"] for op in ops]
    assert len(ids_) == len(set(ids_)), "operation ids must be unique"


def test_document_has_the_oauth_form_bodies(ids: IdSite) -> None:
    doc = ids.client.get("/openapi.json").json()
    for path, required in (
        ("/t/{tenant}/token", "grant_type"),
        ("/t/{tenant}/introspect", "token"),
        ("/t/{tenant}/revoke", "token"),
    ):
        body = doc["paths"][path]["post"]["requestBody"]
        schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
        assert required in schema["required"] and required in schema["properties"], schema
        assert "client_id" in schema["properties"], schema
    token = doc["paths"]["/t/{tenant}/token"]["post"]["requestBody"]["content"]
    props = token["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert {"code", "redirect_uri", "code_verifier", "refresh_token", "scope"} <= set(props)


def test_405_names_the_allowed_methods(ids: IdSite) -> None:
    r = ids.client.put("/healthz")
    assert r.status_code == 405 and r.headers["allow"] == "GET", r.headers
    assert r.json()["error"] == "method_not_allowed" and "GET" in r.json()["message"]
    r = ids.client.put("/admin/tenants", headers=ids.admin)
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_a_body_that_is_not_a_json_object_is_named_so(ids: IdSite) -> None:
    head = ids.head()
    for raw in (b'{"username": "x",', b"not json", b"[1, 2]", b'"x"', b""):
        r = ids.client.post(
            "/admin/tenants/acme/users",
            content=raw,
            headers={**ids.admin, "content-type": "application/json"},
        )
        assert r.status_code == 400, (raw, r.text)
        message = r.json()["message"]
        assert message.startswith("the body must be a JSON object"), (raw, message)
        assert "decode error" not in message
    assert ids.head() == head


def test_cluster_routes_authenticate_before_reading_the_body(ids: IdSite) -> None:
    secret = ids.site.secrets.replication_secret.get_secret_value()
    for path in ("/cluster/failsafe", "/cluster/prepare"):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            for raw in (b"{not json", b'{"unexpected": true}', b""):
                r = ids.client.post(
                    path, content=raw, headers={**headers, "content-type": "application/json"}
                )
                assert r.status_code == 401, (path, headers, raw, r.text)
                assert r.json()["error"] == "unauthorized"
        good = {"Authorization": f"Bearer {secret}", "content-type": "application/json"}
        r = ids.client.post(path, content=b"{not json", headers=good)
        assert r.status_code == 400 and "JSON object" in r.json()["message"], r.text
        r = ids.client.post(path, content=b'{"unexpected": true}', headers=good)
        assert r.status_code == 400 and "epoch" in r.json()["message"], r.text
    r = ids.client.post(
        "/cluster/failsafe",
        json={"site": "site-b", "epoch": 1},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert r.status_code == 200 and r.json()["confirmed"] is False  # this site is a primary
