"""Bearer-JWT authentication shared by every service.

Tokens carry `sub`, `merchant_id` and `role` (`merchant` | `ops`). HS256 with a shared secret for development;
RS256 with a PEM public key or a JWKS URL for an external identity provider.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from shared.clock import utcnow
from shared.errors import Forbidden, Unauthorized
from shared.settings import ServiceSettings

Role = Literal["merchant", "ops"]


class Principal(BaseModel):
    sub: str
    merchant_id: str
    role: Role


class TokenVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        self._algorithm = settings.auth_jwt_algorithm
        self._audience = settings.auth_audience
        self._issuer = settings.auth_issuer
        self._jwks = jwt.PyJWKClient(settings.auth_jwks_url) if settings.auth_jwks_url else None
        if self._algorithm == "HS256":
            self._key: str | None = settings.auth_jwt_secret.get_secret_value()
        else:
            self._key = settings.auth_jwt_public_key

    def verify(self, token: str) -> Principal:
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._key
            claims = jwt.decode(
                token,
                key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
            return Principal.model_validate(claims)
        except (jwt.PyJWTError, ValidationError) as exc:
            raise Unauthorized("invalid bearer token") from exc


def mint_token(
    secret: str, *, sub: str, merchant_id: str, role: Role, ttl: dt.timedelta = dt.timedelta(hours=12)
) -> str:
    """A development HS256 token."""
    now = utcnow()
    claims = {"sub": sub, "merchant_id": merchant_id, "role": role, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


_bearer = HTTPBearer(auto_error=False, description="JWT with sub, merchant_id and role")


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(credentials.credentials)


def _require(role: Role):
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role != role:
            raise Forbidden(f"this action needs the {role} role")
        return principal

    return check


Merchant = Annotated[Principal, Depends(_require("merchant"))]
Ops = Annotated[Principal, Depends(_require("ops"))]
AnyUser = Annotated[Principal, Depends(current_principal)]
