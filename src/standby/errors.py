"""Errors that reach people: a stable machine code, a human message, an HTTP status."""

from __future__ import annotations

# Set on a 503 ``not_writable`` answer when the write was refused before anything changed,
# so a traffic layer may send the same request to another site.
REFUSED_HEADER = "Standby-Refused"
REFUSED_BEFORE_WRITE = "before-write"


class ApiError(Exception):
    """An error a client caused or must handle; rendered as JSON {error, message}."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, object]:
        return {"error": self.error, "message": self.message, **self.extra}


def bad_request(message: str, error: str = "invalid_request") -> ApiError:
    return ApiError(400, error, message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} does not exist")


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def unauthorized(message: str = "missing or wrong credentials") -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})
