"""Signing keys: generated with joserfc, private halves sealed under the KEK (aad = kid),
written through the change log so every site holds the same keys.

The decisions (when to stage, activate, retire, remove) are in ``key_lifecycle``; this
module reads the rows, carries the actions out, and keeps a small in-process cache of
parsed keys so signing a token costs no key parsing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key
from sqlalchemy import select

from standby.crypto import seal, unseal
from standby.identity import key_lifecycle as lc
from standby.identity.clock import US, now
from standby.store import NotWritable, StoreError, Writer
from standby.store.schema import signing_keys

if TYPE_CHECKING:
    from standby.server import Site

log = logging.getLogger("standby.identity.keys")

AnyKey = RSAKey | ECKey | OKPKey
KEYRING_PART = "oidc.keyring"
# Rows are re-read this often (seconds) and after every key change made here; a standby
# (or the CLI in another process) changes key rows without going through this cache.
RELOAD_SECONDS = 1.0


class KeyOpError(StoreError):
    """A key operation was refused; the message says why and what to do."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    key: AnyKey


def generate(alg: str) -> AnyKey:
    if alg == "RS256":
        key: AnyKey = RSAKey.generate_key(2048)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256")
    elif alg == "EdDSA":
        key = OKPKey.generate_key("Ed25519")
    else:
        raise KeyOpError(f"unsupported signing algorithm {alg!r}; use RS256, ES256 or EdDSA")
    return key


def policy(site: Site) -> lc.Policy:
    o = site.settings.oidc
    return lc.Policy(
        max_token_lifetime=max(o.access_token_ttl, o.id_token_ttl) * US,
        rotation=None if o.rotation_days is None else int(o.rotation_days * 86400 * US),
        prepublish=int(o.prepublish_hours * 3600 * US),
    )


def _state(row: dict[str, Any]) -> lc.KeyState:
    return lc.KeyState(
        row["id"],
        row["state"],
        row["created_at"],
        row["activated_at"],
        row["retired_at"],
        row["removed_at"],
    )


class Keyring:
    """This process's view of the signing keys; cheap to ask on every request."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._loaded_at: float | None = None
        self._parsed: dict[tuple[str, str], AnyKey] = {}
        self._jwks: dict[str, Any] = {"keys": []}

    def rows(self) -> list[dict[str, Any]]:
        mono = time.monotonic()
        with self._lock:
            if self._loaded_at is None or mono - self._loaded_at >= RELOAD_SECONDS:
                with self.site.store.read() as conn:
                    rows = [
                        dict(r)
                        for r in conn.execute(
                            select(signing_keys).order_by(signing_keys.c.created_at)
                        ).mappings()
                    ]
                self._rows = rows
                self._loaded_at = mono
                pub = [json.loads(r["public_jwk"]) for r in rows if r["state"] in lc.PUBLISHED]
                self._jwks = {"keys": pub}
            return self._rows

    def jwks(self) -> dict[str, Any]:
        self.rows()
        return self._jwks

    def private(self, row: dict[str, Any]) -> AnyKey:
        cache_key = (row["id"], row["private_jwk"])
        cached = self._parsed.get(cache_key)
        if cached is not None:
            return cached
        raw = unseal(self.site.secrets.kek_bytes(), row["private_jwk"], aad=row["id"])
        key = import_key(json.loads(raw))
        if not isinstance(key, RSAKey | ECKey | OKPKey):
            raise KeyOpError(f"signing key {row['id']} is not an asymmetric key")
        self._parsed[cache_key] = key
        return key

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = None

    def reload_if_older(self, seconds: float) -> bool:
        """Re-read the rows on the next use if the last read is older than ``seconds``
        (a token names a key we have not seen: it may have just replicated). False when
        they were read more recently, so unknown key ids cannot make every request read."""
        with self._lock:
            if self._loaded_at is not None and time.monotonic() - self._loaded_at < seconds:
                return False
            self._loaded_at = None
            return True


def keyring(site: Site) -> Keyring:
    ring = site.parts.get(KEYRING_PART)
    if not isinstance(ring, Keyring):
        ring = site.parts[KEYRING_PART] = Keyring(site)
    return ring


# ------------------------------------------------------------------ reads


def list_keys(site: Site) -> list[dict[str, Any]]:
    """Every key row without its private half (for the CLI and status pages)."""
    return [{k: v for k, v in r.items() if k != "private_jwk"} for r in keyring(site).rows()]


def public_jwks(site: Site) -> dict[str, Any]:
    """The JWK Set verifiers fetch: staged, active and retired keys (never removed ones)."""
    return keyring(site).jwks()


def active_row(site: Site) -> dict[str, Any] | None:
    active = [r for r in keyring(site).rows() if r["state"] == "active"]
    return max(active, key=lambda r: (r["activated_at"] or 0, r["id"])) if active else None


def signing_key(site: Site) -> SigningKey:
    """The key that signs now. A primary with none makes one; a standby waits for one
    to arrive by replication (NotWritable says so)."""
    row = active_row(site)
    if row is None:
        ensure_active_key(site)
        row = active_row(site)
        if row is None:  # pragma: no cover - ensure_active_key raises instead
            raise KeyOpError("no active signing key")
    return SigningKey(row["id"], row["alg"], keyring(site).private(row))


# ------------------------------------------------------------------ writes


def _insert_new(w: Writer, site: Site, alg: str, state: str, at: int) -> dict[str, Any]:
    key = generate(alg)
    kid = key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    private = {**key.as_dict(private=True), "kid": kid, "alg": alg}
    sealed = seal(site.secrets.kek_bytes(), json.dumps(private).encode(), aad=kid)
    return w.insert(
        signing_keys,
        {
            "id": kid,
            "tenant": None,
            "alg": alg,
            "state": state,
            "public_jwk": json.dumps(public, sort_keys=True),
            "private_jwk": sealed,
            "created_at": at,
            "activated_at": at if state == "active" else None,
            "retired_at": None,
            "removed_at": None,
        },
    )


def _carry_out(w: Writer, site: Site, actions: list[lc.Action], at: int) -> list[str]:
    done: list[str] = []
    for a in actions:
        if a.kind == "generate":
            state = "active" if a.activate else "staged"
            row = _insert_new(w, site, site.settings.oidc.signing_alg, state, at)
            done.append(f"generated {row['id']} ({state}): {a.reason}")
        elif a.kind == "activate" and a.kid:
            w.update(signing_keys, a.kid, {"state": "active", "activated_at": at})
            done.append(f"activated {a.kid}: {a.reason}")
        elif a.kind == "retire" and a.kid:
            w.update(signing_keys, a.kid, {"state": "retired", "retired_at": at})
            done.append(f"retired {a.kid}: {a.reason}")
        elif a.kind == "remove" and a.kid:
            # The private half is destroyed; the row stays as a record of the key's life.
            w.update(signing_keys, a.kid, {"state": "removed", "removed_at": at, "private_jwk": ""})
            done.append(f"removed {a.kid}: {a.reason}")
    return done


def _locked_states(w: Writer) -> list[lc.KeyState]:
    rows = w.conn.execute(select(signing_keys).with_for_update()).mappings()
    return [_state(dict(r)) for r in rows]


def _write(site: Site, decide: Any) -> list[str]:
    at = now(site)
    with site.store.write() as w:
        actions = decide(_locked_states(w), at)
        done = _carry_out(w, site, actions, at)
    keyring(site).invalidate()
    for line in done:
        log.info(json.dumps({"event": "signing_key", "site": site.name, "action": line}))
    return done


def ensure_active_key(site: Site) -> list[str]:
    """Make sure one key signs (bootstrap); does nothing when one already does."""
    if active_row(site) is not None:
        return []

    def decide(keys: list[lc.KeyState], _at: int) -> list[lc.Action]:
        if any(k.state == "active" for k in keys):
            return []
        staged = sorted((k for k in keys if k.state == "staged"), key=lambda k: k.created_at)
        if staged:
            return [lc.Action("activate", staged[0].kid, reason="no active key")]
        return [lc.Action("generate", activate=True, reason="no signing key")]

    return _write(site, decide)


def run_schedule(site: Site) -> list[str]:
    """One step of the automatic lifecycle (scheduled rotation, removal after expiry)."""
    pol = policy(site)
    return _write(site, lambda keys, at: lc.plan(keys, at, pol))


def stage(site: Site) -> list[str]:
    """Publish a new key that does not sign yet (rotate later activates it)."""
    return _write(site, lambda _k, _at: [lc.Action("generate", reason="staged by operator")])


def rotate(site: Site) -> list[str]:
    """Activate the oldest staged key (a new one if none is staged); retire the active one.

    Verifiers learn a key from JWKS; a staged key has been published already, a key
    made here is published from now on (verifiers refetch on an unknown kid)."""

    def decide(keys: list[lc.KeyState], _at: int) -> list[lc.Action]:
        staged = sorted((k for k in keys if k.state == "staged"), key=lambda k: k.created_at)
        acts: list[lc.Action] = []
        if staged:
            acts.append(lc.Action("activate", staged[0].kid, reason="rotated by operator"))
        else:
            acts.append(lc.Action("generate", activate=True, reason="rotated by operator"))
        acts += [
            lc.Action("retire", k.kid, reason="rotated by operator")
            for k in keys
            if k.state == "active"
        ]
        return acts

    return _write(site, decide)


def _find(keys: list[lc.KeyState], kid: str) -> lc.KeyState:
    for k in keys:
        if k.kid == kid:
            return k
    raise KeyOpError(f"no signing key with kid {kid!r}; see `standby keys list`")


def retire(site: Site, kid: str) -> list[str]:
    """Stop a key signing; if it was the active key, another one takes over first."""

    def decide(keys: list[lc.KeyState], _at: int) -> list[lc.Action]:
        key = _find(keys, kid)
        if key.state in ("retired", "removed"):
            raise KeyOpError(f"key {kid} is already {key.state}")
        acts: list[lc.Action] = []
        if key.state == "active":
            others = sorted(
                (k for k in keys if k.state == "staged" and k.kid != kid),
                key=lambda k: k.created_at,
            )
            if others:
                acts.append(lc.Action("activate", others[0].kid, reason=f"{kid} retired"))
            else:
                acts.append(lc.Action("generate", activate=True, reason=f"{kid} retired"))
        acts.append(lc.Action("retire", kid, reason="retired by operator"))
        return acts

    return _write(site, decide)


def remove(site: Site, kid: str, *, force: bool = False) -> list[str]:
    """Destroy a key that no unexpired token can need (``force`` skips the wait)."""
    pol = policy(site)

    def decide(keys: list[lc.KeyState], at: int) -> list[lc.Action]:
        key = _find(keys, kid)
        why = lc.why_not_remove(key, at, pol)
        if why and not (force and key.state == "retired"):
            raise KeyOpError(why + ("" if key.state != "retired" else "; --force skips the wait"))
        return [lc.Action("remove", kid, reason="removed by operator")]

    return _write(site, decide)


# ------------------------------------------------------------------ the schedule


RETRY_SECONDS = 1.0


def schedule_interval(site: Site) -> float:
    """How often the background task looks at the key set (seconds)."""
    return 60.0


async def key_schedule(site: Site) -> None:
    """Background task: bootstrap a key on a primary, then follow the lifecycle policy."""
    while True:  # for the process lifetime; the server cancels it at shutdown
        settled = True
        if site.role == "primary":
            try:
                await asyncio.to_thread(_schedule_step, site)
            except NotWritable:
                # e.g. the lease is not granted yet at start-up: a site without a signing
                # key is not ready, so try again soon rather than at the next full interval
                settled = False
            except Exception as exc:  # noqa: BLE001 - keep the schedule alive; log why
                settled = False
                log.error(json.dumps({"event": "key_schedule_failed", "error": str(exc)}))
        await asyncio.sleep(schedule_interval(site) if settled else RETRY_SECONDS)


def _schedule_step(site: Site) -> None:
    # Without rotation_days the plan only bootstraps and removes expired retired keys.
    if lc.plan([_state(r) for r in keyring(site).rows()], now(site), policy(site)):
        run_schedule(site)
