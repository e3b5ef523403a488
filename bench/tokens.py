"""Token issuance and verification rates.

    python bench/tokens.py [--seconds 5] [--threads 4] [--algs RS256,ES256,EdDSA]

1. client_credentials issuance over HTTP against a real `standby serve` process (one
   uvicorn worker, SQLite store, client_secret_basic with keep-alive connections from
   --threads client threads), then the same load against node-oidc-provider (the peer in
   DESIGN.md; installed with npm into a temporary folder, bench/tokens_peer.mjs), and
   the ratio; plus issuance in-process (client auth + signing, no HTTP) per algorithm.
2. ID-token verification with a cached JWKS on one core: Standby's verifier
   (standby.identity.oidc.verify.Verifier, joserfc underneath) side by side with PyJWT
   verifying the same tokens with the same cached keys, and the ratio.
The design targets: verification >= 20k/s on one core; issuance >= node-oidc-provider.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import jwt as pyjwt  # noqa: E402
from starlette.datastructures import FormData, Headers  # noqa: E402
from tests.support.identity import open_site  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402
from tests.support.sites import SiteProcess, load_site, make_site_dir  # noqa: E402

from standby.identity import keys  # noqa: E402
from standby.identity.oidc import grants  # noqa: E402
from standby.identity.oidc.client_auth import authenticate_client  # noqa: E402
from standby.identity.oidc.tokens import id_token  # noqa: E402
from standby.identity.oidc.verify import Verifier  # noqa: E402
from standby.identity.users import find_user  # noqa: E402


def rate(fn: Callable[[], Any], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        n += 50
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def basic(cid: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()}


def hammer(token_url: str, auth: dict[str, str], seconds: float, threads: int) -> float:
    """client_credentials requests from ``threads`` keep-alive clients for ``seconds``."""
    form = {"grant_type": "client_credentials", "scope": "api"}
    with httpx.Client() as c:  # warm up: key bootstrap, secret cache
        r = c.post(token_url, data=form, headers=auth)
        assert r.status_code == 200, r.text
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> None:
        with httpx.Client() as c:
            while time.perf_counter() < deadline:
                r = c.post(token_url, data=form, headers=auth)
                assert r.status_code == 200, r.text
                counts[i] += 1

    start = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 30)
    return sum(counts) / (time.perf_counter() - start)


def http_issuance(root: Path, seconds: float, threads: int) -> float:
    config = make_site_dir(root, "bench-http")
    _, secrets = load_site(config)
    admin = {"Authorization": f"Bearer {secrets.admin_token.get_secret_value()}"}
    proc = SiteProcess(config).start()
    try:
        url = proc.url
        httpx.post(f"{url}/admin/tenants", json={"id": "bench", "name": "B"}, headers=admin)
        app = httpx.post(
            f"{url}/admin/tenants/bench/clients",
            json={"name": "m", "grant_types": ["client_credentials"], "scopes": ["api"]},
            headers=admin,
        ).json()
        auth = basic(app["client_id"], app["client_secret"])
        return hammer(f"{url}/t/bench/token", auth, seconds, threads)
    finally:
        proc.stop()


def peer_issuance(root: Path, seconds: float, threads: int) -> float | None:
    """node-oidc-provider on the same machine and load, or None if node is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    peer = root / "peer"
    peer.mkdir(exist_ok=True)
    if not (peer / "node_modules" / "oidc-provider").exists():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(peer), "oidc-provider@9"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    shutil.copy(Path(__file__).with_name("tokens_peer.mjs"), peer / "peer.mjs")
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(peer / "peer.mjs"), str(port)],
        cwd=peer,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        auth = basic("bench", "bench-secret-bench-secret-bench-secret")
        return hammer(f"http://127.0.0.1:{port}/token", auth, seconds, threads)
    finally:
        proc.terminate()
        proc.wait(10)


def alg_row(root: Path, alg: str, seconds: float) -> str:
    ids = open_site(
        make_site_dir(root, f"bench-{alg.lower()}", extra={"oidc": {"signing_alg": alg}})
    )
    site = ids.site
    ids.tenant("bench")
    ids.user("alice", tenant="bench")
    user = find_user(site, "bench", "alice")
    assert user is not None
    r = ids.client.post(
        "/admin/tenants/bench/clients",
        json={"name": "m", "grant_types": ["client_credentials"], "scopes": ["api"]},
        headers=ids.admin,
    ).json()
    keys.ensure_active_key(site)
    headers = Headers(basic(r["client_id"], r["client_secret"]))
    form = FormData({"grant_type": "client_credentials"})

    def issue() -> None:
        client = authenticate_client(site, "bench", form, headers)
        grants.client_credentials(site, "bench", client, {"grant_type": "client_credentials"})

    issue_rate = rate(issue, seconds)
    issuer = f"{site.settings.base_url()}/t/bench"
    tokens = [
        id_token(
            site,
            "bench",
            user=user,
            client_id="app",
            scope="openid profile",
            auth_time=ids.clock.t,
            amr=["pwd"],
            nonce=f"n{i}",
        )
        for i in range(500)
    ]
    jwks = keys.public_jwks(site)
    ours = Verifier(jwks)
    pykeys = {k["kid"]: pyjwt.PyJWK(k) for k in jwks["keys"]}
    it_a, it_b = iter(range(10**12)), iter(range(10**12))

    def ours_verify() -> None:
        ours.verify(tokens[next(it_a) % 500], issuer=issuer, audience="app")

    def pyjwt_verify() -> None:
        t = tokens[next(it_b) % 500]
        k = pykeys[pyjwt.get_unverified_header(t)["kid"]]
        pyjwt.decode(t, k.key, algorithms=[alg], audience="app", issuer=issuer)

    a = rate(ours_verify, seconds)
    b = rate(pyjwt_verify, seconds)
    ids.close()
    return f"  {alg:6} {a:16,.0f}/s {b:10,.0f}/s {a / b:6.2f}x   {issue_rate:8,.0f} tokens/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--algs", default="RS256,ES256,EdDSA")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="standby-bench-tokens-"))

    print(f"client_credentials issuance (RS256, {args.seconds:.0f} s each)")
    http_rate = http_issuance(root, args.seconds, args.threads)
    print(f"  standby, HTTP, {args.threads} client threads:           {http_rate:8,.0f} tokens/s")
    peer = peer_issuance(root, args.seconds, args.threads)
    if peer is None:
        print("  node-oidc-provider: not measured (node/npm not installed)")
    else:
        print(f"  node-oidc-provider (opaque tokens), same load:  {peer:8,.0f} tokens/s")
        print(f"  ratio standby / node-oidc-provider:             {http_rate / peer:8.2f}x")

    print("\nverification with a cached JWKS, one core (same tokens for both libraries)")
    print(f"  {'alg':6} {'standby verifier':>18} {'PyJWT':>12} {'ratio':>7}   in-process issue")
    for alg in args.algs.split(","):
        print(alg_row(root, alg, args.seconds))


if __name__ == "__main__":
    main()
