"""The Content-Security-Policy of the hosted pages: strict everywhere, and a page whose
form ends at a client (login, second factor, sign-out confirmation) also allows exactly
that client's redirect origin in ``form-action``. What Chromium does with these headers
is in test_oidc_browser.py; here, the header built for each page and client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from standby.identity import keys
from standby.identity.oidc.csp import origin_source, policy
from tests.support.identity import PASSWORD, IdSite, identity_site
from tests.support.oidc import REDIRECT, make_client, parse_form, pkce, query_of

STRICT = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
APP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://app.example; frame-ancestors 'none'"  # noqa: E501
IPV6_REDIRECT = "http://[::1]:8765/cb"


@pytest.mark.parametrize(
    ("uri", "source"),
    [
        ("https://app.example/cb", "https://app.example"),
        ("http://127.0.0.1:8123/cb?x=1", "http://127.0.0.1:8123"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("https://App.Example:8443/a/b", "https://app.example:8443"),
        ("https://user:pw@app.example/cb", "https://app.example"),
        ("https://bücher.example/cb", "https://xn--bcher-kva.example"),
        (IPV6_REDIRECT, None),  # browsers drop an IPv6 literal as an invalid source
        ("https://evil.example;script-src *", None),
        ("https://a.example, https://b.example", None),
        ("https://a_b.example/", None),
        ("https://app.example:99999/", None),
        ("javascript:alert(1)", None),
        ("/relative", None),
    ],
)
def test_origin_source(uri: str, source: str | None) -> None:
    assert origin_source(uri) == source


def test_policy_names_each_origin_once() -> None:
    assert policy() == STRICT
    assert policy([REDIRECT, "https://app.example/other"]) == APP
    assert policy([IPV6_REDIRECT]) == STRICT


SOURCE = re.compile(r"'self'|https?://[a-z0-9-]+(\.[a-z0-9-]+)*(:\d+)?")


@given(st.lists(st.text(max_size=60) | st.from_regex(r"https?://[^/]{0,30}/?", fullmatch=True)))
def test_policy_never_carries_more_than_origins(uris: list[str]) -> None:
    """Whatever a redirect URI holds, the header keeps its four directives and
    ``form-action`` lists only 'self' and well-formed origins."""
    directives = policy(uris).split("; ")
    assert [d.split(" ", 1)[0] for d in directives] == [
        "default-src",
        "style-src",
        "form-action",
        "frame-ancestors",
    ]
    assert directives[0] == "default-src 'none'" and directives[3] == "frame-ancestors 'none'"
    sources = directives[2].split(" ")[1:]
    assert sources[0] == "'self'" and all(SOURCE.fullmatch(s) for s in sources)
    assert len(sources) == len(set(sources)) <= 1 + len(uris)


# ------------------------------------------------------------------ the pages' headers


@pytest.fixture
def ids(tmp_path: Path) -> Iterator[IdSite]:
    with identity_site(tmp_path, f"sqlite:///{tmp_path / 'store.db'}") as s:
        s.tenant("acme")
        s.user("alice")
        keys.ensure_active_key(s.site)
        s.client.follow_redirects = False
        yield s


def _client(ids: IdSite, redirect: str = REDIRECT) -> str:
    body = make_client(
        ids,
        first_party=True,  # no consent page between the login and the redirect
        token_endpoint_auth_method="none",
        redirect_uris=[redirect],
        post_logout_redirect_uris=["https://app.example/bye"],
    )
    return str(body["client_id"])


def _authorize(ids: IdSite, client_id: str, redirect: str = REDIRECT) -> Any:
    q = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": "openid",
        "state": "s",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
    }
    return ids.client.get("/t/acme/authorize?" + urlencode(q))


def _submit(ids: IdSite, page: Any, **values: str) -> Any:
    form = parse_form(page.text)
    return ids.client.post(form.action or "", data={**form.fields, **values})


def _csp(resp: Any) -> str:
    return str(resp.headers["content-security-policy"])


def test_login_and_totp_pages_allow_the_clients_origin(ids: IdSite) -> None:
    cid = _client(ids)
    page = _authorize(ids, cid)
    assert page.status_code == 200 and _csp(page) == APP
    wrong = _submit(ids, page, username="alice", password="wrong password")
    assert wrong.status_code == 401 and _csp(wrong) == APP

    assert ids.login().status_code == 200
    secret = ids.client.post("/t/acme/mfa/totp/enroll").json()["secret"]
    code = pyotp.TOTP(secret).at(ids.clock.seconds)
    assert ids.client.post("/t/acme/mfa/totp/confirm", json={"code": code}).status_code == 200
    ids.client.cookies.clear()
    step2 = _submit(ids, _authorize(ids, cid), username="alice", password=PASSWORD)
    assert step2.status_code == 200 and 'name="totp"' in step2.text
    assert _csp(step2) == APP
    assert step2.headers["x-frame-options"] == "DENY"


def test_error_pages_allow_only_self(ids: IdSite) -> None:
    unknown = ids.client.get("/t/acme/authorize?client_id=nobody&redirect_uri=" + REDIRECT)
    assert unknown.status_code == 400 and _csp(unknown) == STRICT
    cid = _client(ids)
    other = _authorize(ids, cid, redirect="https://evil.example/cb")
    assert other.status_code == 400 and _csp(other) == STRICT


def test_sign_out_confirmation_allows_the_post_logout_origin(ids: IdSite) -> None:
    cid = _client(ids)
    assert ids.login().status_code == 200
    q = {"client_id": cid, "post_logout_redirect_uri": "https://app.example/bye"}
    ask = ids.client.get("/t/acme/end-session?" + urlencode(q))
    assert ask.status_code == 200 and "Sign out" in ask.text and _csp(ask) == APP
    plain = ids.client.get("/t/acme/end-session")
    assert plain.status_code == 200 and _csp(plain) == STRICT


def test_an_ipv6_redirect_is_forwarded_by_a_page_of_this_site(ids: IdSite) -> None:
    """CSP cannot name [::1], so the login POST answers with a same-origin page that
    forwards (Refresh header and a link) instead of a redirect Chromium would block."""
    cid = _client(ids, IPV6_REDIRECT)
    page = _authorize(ids, cid, IPV6_REDIRECT)
    assert _csp(page) == STRICT
    done = _submit(ids, page, username="alice", password=PASSWORD)
    assert done.status_code == 200, done.text
    delay, target = done.headers["refresh"].split("; url=", 1)
    assert delay == "0" and target.startswith(IPV6_REDIRECT + "?")
    assert query_of(target)["code"] and query_of(target)["state"] == "s"
    assert f'href="{target.replace("&", "&amp;")}"' in done.text
    assert _csp(done) == STRICT and ids.client.cookies.get("standby_session")
