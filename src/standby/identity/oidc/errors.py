"""OAuth 2 / OIDC error responses, named exactly as the specs name them."""

from __future__ import annotations

from standby.errors import REFUSED_BEFORE_WRITE, REFUSED_HEADER, ApiError
from standby.store import NotWritable


def oauth_error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> ApiError:
    """``{"error": ..., "error_description": ...}`` (plus ``message`` like every ApiError)."""
    return ApiError(status, error, description, headers, error_description=description)


def invalid_request(description: str) -> ApiError:
    return oauth_error("invalid_request", description)


def invalid_grant(description: str) -> ApiError:
    return oauth_error("invalid_grant", description)


def invalid_scope(description: str) -> ApiError:
    return oauth_error("invalid_scope", description)


def unauthorized_client(description: str) -> ApiError:
    return oauth_error("unauthorized_client", description)


def invalid_client(description: str, basic: bool = True) -> ApiError:
    # RFC 6749 5.2: 401, and a WWW-Authenticate challenge for the scheme the client used.
    headers = {"WWW-Authenticate": 'Basic realm="standby"'} if basic else None
    return oauth_error("invalid_client", description, 401, headers)


def invalid_token(description: str) -> ApiError:
    # RFC 6750 3.1
    return oauth_error(
        "invalid_token",
        description,
        401,
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


def temporarily_unavailable(description: str) -> ApiError:
    return oauth_error("temporarily_unavailable", description, 503, {"Retry-After": "1"})


def needs_primary(description: str, exc: NotWritable) -> ApiError:
    """503 ``temporarily_unavailable`` for a request this site could not write. Unless the
    write committed here (strict sync), it is marked refused before anything changed, so a
    traffic layer may hold it for the primary instead of failing it."""
    headers = {"Retry-After": "1"}
    if not exc.committed:
        headers[REFUSED_HEADER] = REFUSED_BEFORE_WRITE
    return oauth_error("temporarily_unavailable", description, 503, headers)
