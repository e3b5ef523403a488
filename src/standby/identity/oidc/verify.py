"""Verifying our JWTs against a JWK Set: signature (joserfc), then iss/aud/exp/typ.

Parsed keys are cached by kid, so verifying costs one signature check and a claims pass;
this is also what a resource server holding a cached JWKS does (see bench/tokens.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, GuestProtocol, OKPKey, RSAKey, import_key

ALGORITHMS = ("RS256", "ES256", "EdDSA")
# Built once: joserfc would otherwise build a registry for every token it checks.
REGISTRY = jws.JWSRegistry(algorithms=list(ALGORITHMS))


class InvalidToken(Exception):
    """The token is not one of ours, or not valid now; the message says which check failed."""


class UnknownKey(InvalidToken):
    """Signed with a key id this JWK Set does not have (perhaps one newer than it)."""


class Verifier:
    """Verify compact JWTs with keys from a JWK Set; ``now`` (seconds) can be injected."""

    def __init__(
        self,
        jwks: dict[str, Any],
        *,
        leeway: int = 0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.leeway = leeway
        self.now = now
        self.keys: dict[str, RSAKey | ECKey | OKPKey] = {}
        for jwk in jwks.get("keys", []):
            if "kid" in jwk:
                self.keys[jwk["kid"]] = import_key(jwk)  # type: ignore[assignment]

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str | None = None,
        typ: str | None = None,
        check_exp: bool = True,
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def pick(obj: GuestProtocol) -> RSAKey | ECKey | OKPKey:
            header = seen["header"] = obj.headers()
            kid = header.get("kid")
            key = self.keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise UnknownKey("signed with a key that is not in the JWK Set")
            return key

        try:
            obj = jws.deserialize_compact(token, pick, registry=REGISTRY)
            claims = json.loads(obj.payload)
        except UnknownKey:
            raise
        except (JoseError, ValueError, UnicodeError) as exc:
            raise InvalidToken("not a JWS signed by a key of this issuer") from exc
        header = seen["header"]
        if typ is not None and str(header.get("typ", "")).lower() not in (
            typ,
            f"application/{typ}",
        ):
            raise InvalidToken(f"token type is not {typ}")
        if not isinstance(claims, dict):
            raise InvalidToken("claims are not a JSON object")
        check_claims(claims, issuer, audience, self.now(), self.leeway, check_exp)
        return claims


def check_claims(
    claims: dict[str, Any],
    issuer: str,
    audience: str | None,
    now: float,
    leeway: int,
    check_exp: bool = True,
) -> None:
    if claims.get("iss") != issuer:
        raise InvalidToken("issued by another issuer")
    if audience is not None:
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if audience not in auds:
            raise InvalidToken("issued for another audience")
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise InvalidToken("no expiry")
    if check_exp and now >= exp + leeway:
        raise InvalidToken("expired")
