"""No secret reaches the change log (and so replication and backups) in clear."""

from __future__ import annotations

from pathlib import Path

import pyotp

from standby.identity.sessions import SESSION_COOKIE
from tests.support.identity import PASSWORD, identity_site


def test_change_log_payloads_hold_no_secret_in_clear(tmp_path: Path, store_url: str) -> None:
    secrets: list[str] = [PASSWORD]
    with identity_site(tmp_path, store_url) as ids:
        ids.tenant()
        uid = ids.user()
        r = ids.login()
        secrets.append(r.cookies[SESSION_COOKIE])
        enrol = ids.client.post("/t/acme/mfa/totp/enroll").json()
        secrets.append(enrol["secret"])
        totp = pyotp.TOTP(enrol["secret"])
        confirm = ids.client.post(
            "/t/acme/mfa/totp/confirm", json={"code": totp.at(ids.clock.seconds)}
        )
        codes = confirm.json()["recovery_codes"]
        secrets += codes + [c.replace("-", "") for c in codes]
        ids.clock.advance(30)
        ids.login(totp=totp.at(ids.clock.seconds))
        ids.login(password="a wrong guess at it")  # failures are audited: not with the guess
        secrets.append("a wrong guess at it")
        new_pw = "the second passphrase"
        ids.client.post(
            f"/admin/tenants/acme/users/{uid}/password",
            json={"password": new_pw},
            headers=ids.admin,
        )
        secrets.append(new_pw)
        token = ids.client.post(
            f"/admin/tenants/acme/users/{uid}/reset-token", headers=ids.admin
        ).json()["token"]
        secrets.append(token)
        third = "the third passphrase"
        assert (
            ids.client.post(
                "/t/acme/password/reset", json={"token": token, "new_password": third}
            ).status_code
            == 200
        )
        secrets.append(third)
        client = ids.client.post(
            "/admin/tenants/acme/clients",
            json={"name": "app", "redirect_uris": ["https://app.example/cb"]},
            headers=ids.admin,
        ).json()
        secrets.append(client["client_secret"])
        secrets.append(ids.site.secrets.admin_token.get_secret_value())

        payloads = ids.payloads()
        assert len(payloads) > 15
        log = "\n".join(payloads)
        for secret in secrets:
            assert secret not in log, f"a secret ({secret[:4]}...) is in the change log"
        # the sealed TOTP seed and the hashes are there, which is what should replicate
        assert "gcm1:" in log and "$argon2id$" in log
