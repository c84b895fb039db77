"""Who is calling: bearer JWTs (HS256 or JWKS) and API keys, gateway side.

A request's ``Authorization: Bearer <credential>`` is a JWT when it has the three dotted
parts of one, else an API key. JWTs are verified with PyJWT against the issuer named in
the token (its ``iss`` picks the configured issuer; signature, ``alg``, ``iss``, ``aud``,
``exp`` and ``nbf`` are checked). API keys are compared by sha256, in constant time, against
every configured hash. Either gives a :class:`Principal`; anything else is a 401 with
``WWW-Authenticate``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from ._config_types import NAME_PATTERN, GatewayConfig, JWTIssuer
from ._problems import Problem, unavailable

REALM = "triggerflow"
logger = logging.getLogger("triggerflow_temporal.gateway")


@dataclass(frozen=True)
class Principal:
    """The verified caller.

    Attributes:
        subject: Who (JWT ``sub``, the API key's subject, ``webhook:<sender>``).
        tenant: Whose executions it sees and acts on.
        groups: Its groups (``candidate_groups`` of an interrupt match against these).
        method: How it was authenticated: ``jwt``, ``api_key``, ``webhook``, ``link``,
            ``message`` or ``none`` (loopback without configured authentication).
    """

    subject: str
    tenant: str
    groups: tuple[str, ...] = ()
    method: str = "jwt"
    claims: Mapping[str, Any] = field(default_factory=lambda: {}, compare=False, repr=False)

    def as_actor(self) -> dict[str, Any]:
        """The JSON form recorded on executions: ``{subject, tenant, groups, method}``."""
        return {
            "subject": self.subject,
            "tenant": self.tenant,
            "groups": list(self.groups),
            "method": self.method,
        }


ANONYMOUS = Principal(subject="anonymous", tenant="default", groups=(), method="none")


def unauthorized(detail: str, *, error: str | None = "invalid_token") -> Problem:
    """A 401 whose ``WWW-Authenticate`` follows RFC 6750."""
    challenge = f'Bearer realm="{REALM}"'
    if error:
        safe = detail.replace('"', "'").replace("\\", "/")[:200]
        challenge += f', error="{error}", error_description="{safe}"'
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal` (or a 401 problem).

    Args:
        config: The gateway config (its ``auth`` section).
    """

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._issuers = {issuer.issuer: issuer for issuer in config.jwt}
        self._jwks: dict[str, PyJWKSet] = {
            issuer.issuer: PyJWKSet.from_dict(issuer.jwks)
            for issuer in config.jwt
            if issuer.jwks is not None
        }
        self._jwks_clients: dict[str, PyJWKClient] = {
            issuer.issuer: PyJWKClient(issuer.jwks_url, cache_keys=True, lifespan=300, timeout=5)
            for issuer in config.jwt
            if issuer.jwks_url is not None
        }
        self._keys = [(key.sha256.encode(), key) for key in config.api_keys]

    @property
    def required(self) -> bool:
        """Whether requests must carry credentials (any method configured)."""
        return self._config.has_auth

    async def authenticate(self, authorization: str | None) -> Principal:
        """Verify the ``Authorization`` header.

        Raises:
            Problem: 401 when the header is missing, malformed or does not verify; 503 when
                the issuer's JWKS cannot be fetched.
        """
        if not self.required:
            return ANONYMOUS
        if not authorization:
            raise unauthorized(
                "This request needs 'Authorization: Bearer <token or API key>'.", error=None
            )
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise unauthorized(
                "The Authorization header must be 'Bearer <token or API key>'.",
                error="invalid_request",
            )
        if credential.count(".") == 2:
            return await self._from_jwt(credential)
        return self._from_api_key(credential)

    # ---------------------------------------------------------------------- API keys
    def _from_api_key(self, credential: str) -> Principal:
        digest = hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest().encode()
        found = None
        for expected, key in self._keys:  # no early exit: time does not tell which key
            if hmac.compare_digest(digest, expected):
                found = key
        if found is None:
            raise unauthorized("The API key is not known to this gateway.")
        return Principal(
            subject=found.subject, tenant=found.tenant, groups=found.groups, method="api_key"
        )

    # --------------------------------------------------------------------------- JWTs
    async def _from_jwt(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError) as error:
            raise unauthorized(f"The bearer token is not a well-formed JWT ({error}).") from None
        issuer = self._issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise unauthorized(
                f"The token's issuer {unverified.get('iss')!r} is not trusted by this gateway."
            )
        algorithm = header.get("alg")
        if algorithm not in issuer.algorithms:
            raise unauthorized(
                f"The token is signed with alg {algorithm!r}; issuer {issuer.issuer!r} is "
                f"trusted with {list(issuer.algorithms)} only."
            )
        key = await self._key(issuer, token, header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=list(issuer.audience),
                issuer=issuer.issuer,
                leeway=issuer.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("The token has expired; get a new one.") from None
        except jwt.ImmatureSignatureError:
            raise unauthorized("The token is not valid yet (nbf/iat in the future).") from None
        except jwt.InvalidAudienceError:
            raise unauthorized(
                f"The token's audience is not {list(issuer.audience)} (issuer {issuer.issuer!r})."
            ) from None
        except (jwt.PyJWTError, TypeError, ValueError) as error:
            # TypeError/ValueError: a key of another family than ``alg`` (RSA key, ES256).
            raise unauthorized(f"The token does not verify: {error}.") from None
        return self._principal(issuer, claims)

    async def _key(self, issuer: JWTIssuer, token: str, header: Mapping[str, Any]) -> Any:
        if issuer.hs256_secret is not None:
            return issuer.hs256_secret
        kid = header.get("kid")
        keyset = self._jwks.get(issuer.issuer)
        if keyset is not None:
            return _pick(keyset, kid, issuer, header.get("alg"))
        client = self._jwks_clients[issuer.issuer]
        try:
            signing: PyJWK = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as error:
            raise unavailable(
                f"The JWKS of issuer {issuer.issuer!r} ({issuer.jwks_url}) cannot be fetched "
                f"({error}); retry shortly."
            ) from None
        except (jwt.PyJWKClientError, jwt.PyJWTError) as error:
            raise unauthorized(
                f"No key of issuer {issuer.issuer!r} verifies it: {error}."
            ) from None
        _check_family(signing, header.get("alg"), issuer)
        return signing.key

    def _principal(self, issuer: JWTIssuer, claims: Mapping[str, Any]) -> Principal:
        subject = claims.get("sub")
        tenant = claims.get(issuer.tenant_claim)
        if not isinstance(subject, str) or not NAME_PATTERN.match(subject):
            raise unauthorized(
                "The token's 'sub' must be 1-128 characters of letters, digits and _.:@|+/-."
            )
        if not isinstance(tenant, str) or not NAME_PATTERN.match(tenant):
            raise unauthorized(
                f"The token has no usable tenant: claim {issuer.tenant_claim!r} must name one "
                "(1-128 characters of letters, digits and _.:@|+/-)."
            )
        raw_groups = claims.get(issuer.groups_claim) or []
        if isinstance(raw_groups, str):
            raw_groups = raw_groups.split()
        if not isinstance(raw_groups, list) or not all(
            isinstance(g, str) and NAME_PATTERN.match(g) for g in raw_groups
        ):
            raise unauthorized(
                f"The token's {issuer.groups_claim!r} claim must be a list of group names."
            )
        return Principal(
            subject=subject,
            tenant=tenant,
            groups=tuple(raw_groups),
            method="jwt",
            claims=dict(claims),
        )


def _pick(keyset: PyJWKSet, kid: Any, issuer: JWTIssuer, algorithm: Any) -> Any:
    keys = list(keyset.keys)
    found: PyJWK | None = None
    if kid is not None:
        found = next((key for key in keys if key.key_id == kid), None)
        if found is None:
            raise unauthorized(f"Issuer {issuer.issuer!r} has no key with kid {kid!r}.")
    elif len(keys) == 1:
        found = keys[0]
    else:
        raise unauthorized(f"The token names no 'kid'; issuer {issuer.issuer!r} has several keys.")
    _check_family(found, algorithm, issuer)
    return found.key


_FAMILIES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}


def _check_family(key: PyJWK, algorithm: Any, issuer: JWTIssuer) -> None:
    """The key's type must fit ``alg`` (an RSA key never verifies an ES256 token)."""
    wanted = _FAMILIES.get(str(algorithm)[:2])
    if wanted is None or key.key_type != wanted:
        raise unauthorized(
            f"The token's alg {algorithm!r} does not fit issuer {issuer.issuer!r}'s "
            f"{key.key_type} key {key.key_id!r}."
        )
