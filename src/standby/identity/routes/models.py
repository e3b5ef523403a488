"""Request bodies: unknown fields are refused and every string has a maximum length."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=200)]
Username = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f]+$")]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Email = Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Uri = Annotated[str, Field(min_length=1, max_length=2000)]
Short = Annotated[str, Field(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantCreate(Body):
    id: Annotated[str, Field(min_length=1, max_length=63)]
    name: Name


class TenantUpdate(Body):
    name: Name


class UserCreate(Body):
    username: Username
    password: Password | None = None
    email: Email | None = None
    display_name: Name | None = None


class UserUpdate(Body):
    email: Email | None = None
    display_name: Name | None = None
    disabled: bool | None = None
    unlock: bool | None = None


class PasswordSet(Body):
    password: Password


class ResetTokenIssue(Body):
    ttl: Annotated[int, Field(ge=60, le=7 * 86400)] = 3600


class SessionRevoke(Body):
    session_id: Short | None = None


class GroupCreate(Body):
    name: Name
    roles: Annotated[list[Short], Field(max_length=100)] = []


class GroupUpdate(Body):
    name: Name | None = None
    roles: Annotated[list[Short], Field(max_length=100)] | None = None


class MemberAdd(Body):
    user_id: Short


UriList = Annotated[list[Uri], Field(max_length=50)]
ShortList = Annotated[list[Short], Field(max_length=50)]


class ClientCreate(Body):
    name: Name
    redirect_uris: UriList = []
    post_logout_redirect_uris: UriList = []
    grant_types: ShortList = ["authorization_code", "refresh_token"]
    scopes: ShortList = ["openid", "profile", "email"]
    token_endpoint_auth_method: Short = "client_secret_basic"  # noqa: S105 - a method name
    jwks: dict[str, Any] | None = None
    first_party: bool = False
    resource_servers: ShortList = []


class ClientUpdate(Body):
    name: Name | None = None
    redirect_uris: UriList | None = None
    post_logout_redirect_uris: UriList | None = None
    grant_types: ShortList | None = None
    scopes: ShortList | None = None
    first_party: bool | None = None
    resource_servers: ShortList | None = None


class Login(Body):
    username: Annotated[str, Field(min_length=1, max_length=200)]
    password: Password
    totp: Annotated[str, Field(max_length=16)] | None = None
    recovery_code: Annotated[str, Field(max_length=64)] | None = None


class TotpConfirm(Body):
    code: Annotated[str, Field(min_length=1, max_length=16)]


class PasswordReset(Body):
    token: Annotated[str, Field(min_length=1, max_length=256)]
    new_password: Password
