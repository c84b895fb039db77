"""FastAPI dependencies shared by the routes: the authenticated caller (gateway side)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ._auth import Authenticator, Principal

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A JWT from a configured issuer, or an API key.",
)


async def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Principal:
    """The verified caller (401 problem otherwise); documents the bearer scheme."""
    authenticator: Authenticator = request.app.state.authenticator
    return await authenticator.authenticate(request.headers.get("authorization"))


Caller = Annotated[Principal, Depends(current_principal)]
"""A route parameter of this type is the authenticated :class:`Principal`."""
