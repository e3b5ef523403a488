"""A tenant's issuer and endpoint URLs, and the discovery document that names them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from standby.identity.tenants import require_tenant

if TYPE_CHECKING:
    from standby.server import Site

SCOPES = ["openid", "profile", "email", "offline_access"]
GRANTS = ["authorization_code", "refresh_token", "client_credentials"]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
ASSERTION_ALGS = ["RS256", "ES256", "EdDSA"]
ACR_PWD = "urn:standby:acr:pwd"  # noqa: S105 - an acr value, not a secret
ACR_MFA = "urn:standby:acr:mfa"


def issuer(site: Site, tenant: str) -> str:
    return f"{site.settings.base_url().rstrip('/')}/t/{tenant}"


def no_public_url(site: Site) -> str | None:
    """Why issuers are at risk when ``http.public_url`` is unset (None when it is set)."""
    if site.settings.http.public_url:
        return None
    return (
        "http.public_url is not set: issuers are this site's own address "
        f"{site.settings.own_url()}/t/<tenant>, so they change when another site serves and "
        "relying parties then reject the tokens; set the same http.public_url (the URL "
        "clients use, e.g. the router's) on every site"
    )


def endpoints(site: Site, tenant: str) -> dict[str, str]:
    base = issuer(site, tenant)
    return {
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
        "jwks_uri": f"{base}/jwks",
        "revocation_endpoint": f"{base}/revoke",
        "introspection_endpoint": f"{base}/introspect",
        "end_session_endpoint": f"{base}/end-session",
    }


def discovery(site: Site, tenant: str, signing_algs: list[str]) -> dict[str, Any]:
    """OpenID Provider Metadata (OIDC Discovery 1.0, RFC 8414) for what Standby offers."""
    require_tenant(site, tenant)
    client_auth = [m for m in AUTH_METHODS if m != "none"]
    return {
        "issuer": issuer(site, tenant),
        **endpoints(site, tenant),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANTS,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algs,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": [ACR_PWD, ACR_MFA],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "sid",
            "name",
            "preferred_username",
            "email",
        ],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "access_token_signing_alg_values_supported": signing_algs,
    }
