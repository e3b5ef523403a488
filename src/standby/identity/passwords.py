"""Password hashing (argon2id with the site's parameters) and the password policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from standby.errors import ApiError
from standby.identity.common_passwords import COMMON_PASSWORDS
from standby.settings import PasswordSettings

if TYPE_CHECKING:
    from standby.server import Site

PART = "passwords"


class Passwords:
    """argon2id hashing with the configured cost, and the site's password policy."""

    def __init__(self, settings: PasswordSettings) -> None:
        self.settings = settings
        self.hasher = PasswordHasher(
            time_cost=settings.time_cost,
            memory_cost=settings.memory_cost,
            parallelism=settings.parallelism,
            type=Type.ID,
        )
        self._dummy: str | None = None

    def hash(self, pw: str) -> str:
        return self.hasher.hash(pw)

    def verify(self, hash: str | None, pw: str) -> bool:
        """True if ``pw`` matches ``hash``. With no hash, spends the same time and says no,
        so an unknown username cannot be told apart by timing."""
        if not hash:
            if self._dummy is None:
                self._dummy = self.hash("standby-timing-equaliser")
            hash, pw = self._dummy, pw + "\x00"
        try:
            return self.hasher.verify(hash, pw)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hash: str) -> bool:
        """True when ``hash`` was made with other parameters than the site's current ones."""
        try:
            return self.hasher.check_needs_rehash(hash)
        except (InvalidHashError, ValueError):
            return True

    def check_policy(self, pw: str, username: str | None = None) -> None:
        """Raise ApiError 400 ``weak_password`` saying what to change, or return."""
        s = self.settings
        if len(pw) < s.min_length:
            raise _weak(f"password has {len(pw)} characters; use at least {s.min_length}")
        if len(pw) > s.max_length:
            raise _weak(f"password is over {s.max_length} characters; use a shorter one")
        if username and pw.casefold() == username.casefold():
            raise _weak("password must not be the username; choose another")
        if pw.casefold() in COMMON_PASSWORDS:
            raise _weak("password is one of the most common passwords; choose another")


def _weak(message: str) -> ApiError:
    return ApiError(400, "weak_password", message)


def passwords_for(site: Site) -> Passwords:
    """The site's Passwords (built once from its settings, kept in ``site.parts``)."""
    pw: Passwords | None = site.parts.get(PART)
    if pw is None:
        pw = Passwords(site.settings.password)
        site.parts[PART] = pw
    return pw
