"""The gateway's config file (YAML or JSON): authentication, webhooks, links, limits.

One file serves the gateway and the worker (``notifications`` is the worker's; it is
accepted and ignored here). Every problem raises :class:`GatewayConfigError` naming the
culprit (``auth.jwt[0].hs256_secret_env``) and what to change. Secrets are read from the
environment variables the file names, never from the file itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._config_fields import (
    check_document,
    decode_webhook_secret,
    env_secret,
    list_field,
    name_field,
    only_keys,
    parse_links,
    read_document,
    require_mapping,
    text_field,
)
from ._config_types import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
    EXAMPLE_API_KEY,
    EXAMPLE_API_KEY_SHA256,
    EXAMPLE_SECRETS,
    MIN_HS256_SECRET_BYTES,
    APIKey,
    GatewayConfig,
    GatewayConfigError,
    JWTIssuer,
    WebhookSender,
    WorkspaceConfig,
    check_bind,
    is_loopback,
)
from ._jsonpath import JSONPath, JSONPathError

__all__ = [
    "EXAMPLE_API_KEY",
    "EXAMPLE_SECRETS",
    "GatewayConfig",
    "GatewayConfigError",
    "check_bind",
    "decode_webhook_secret",
    "is_loopback",
    "load_config",
    "parse_config",
    "read_document",
]

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Read and check the config file.

    Args:
        path: The file; defaults to ``$TRIGGERFLOW_GATEWAY_CONFIG``; neither gives the empty
            config (no authentication: loopback only).
        env: Where ``*_env`` secrets are read (default ``os.environ``).

    Raises:
        GatewayConfigError: Unreadable file, bad YAML/JSON, a missing or malformed key, an
            unset secret variable, a secret left at a documented example value.
    """
    env = os.environ if env is None else env
    data, source = read_document(path, env=env)
    if source is None:
        return GatewayConfig()
    return parse_config(data, env=env, source=source)


def parse_config(
    data: Any, *, env: Mapping[str, str] | None = None, source: str | None = None
) -> GatewayConfig:
    """Check an already parsed config document; see :func:`load_config`."""
    env = os.environ if env is None else env
    data = check_document(data, "gateway config")
    auth = data.get("auth") or {}
    require_mapping(auth, "auth")
    only_keys(auth, {"jwt", "api_keys"}, "auth")
    jwt = tuple(
        _jwt_issuer(entry, f"auth.jwt[{i}]", env)
        for i, entry in enumerate(list_field(auth.get("jwt"), "auth.jwt"))
    )
    api_keys = tuple(
        _api_key(entry, f"auth.api_keys[{i}]")
        for i, entry in enumerate(list_field(auth.get("api_keys"), "auth.api_keys"))
    )
    hashes = [key.sha256 for key in api_keys]
    if len(set(hashes)) != len(hashes):
        raise GatewayConfigError("auth.api_keys lists the same sha256 twice; keep one entry.")
    webhooks: dict[str, WebhookSender] = {}
    for i, entry in enumerate(list_field(data.get("webhooks"), "webhooks")):
        sender = _webhook(entry, f"webhooks[{i}]", env)
        if sender.sender in webhooks:
            raise GatewayConfigError(f"webhooks[{i}].sender {sender.sender!r} appears twice.")
        webhooks[sender.sender] = sender
    limits = data.get("limits") or {}
    require_mapping(limits, "limits")
    only_keys(limits, {"max_body_bytes"}, "limits")
    max_body = limits.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1024:
        raise GatewayConfigError(
            f"limits.max_body_bytes must be an integer >= 1024, got {max_body!r}."
        )
    links = parse_links(data.get("links"), env) if data.get("links") is not None else None
    workspace = _workspace(data["workspace"], env) if data.get("workspace") is not None else None
    return GatewayConfig(
        jwt=jwt,
        api_keys=api_keys,
        webhooks=webhooks,
        links=links,
        workspace=workspace,
        max_body_bytes=max_body,
        source=source,
    )


# ----------------------------------------------------------------------------- sections
def _jwt_issuer(entry: Any, where: str, env: Mapping[str, str]) -> JWTIssuer:
    require_mapping(entry, where)
    only_keys(
        entry,
        {
            "issuer",
            "audience",
            "hs256_secret_env",
            "jwks_file",
            "jwks_url",
            "tenant_claim",
            "groups_claim",
            "algorithms",
            "leeway_seconds",
        },
        where,
    )
    issuer = text_field(entry.get("issuer"), f"{where}.issuer")
    audience_raw = entry.get("audience")
    audiences = audience_raw if isinstance(audience_raw, list) else [audience_raw]
    audience = tuple(text_field(a, f"{where}.audience") for a in audiences)
    sources = [k for k in ("hs256_secret_env", "jwks_file", "jwks_url") if entry.get(k)]
    if len(sources) != 1:
        raise GatewayConfigError(
            f"{where} needs exactly one of hs256_secret_env, jwks_file or jwks_url "
            f"(got {sources or 'none'})."
        )
    secret = jwks = None
    jwks_file = jwks_url = None
    if sources[0] == "hs256_secret_env":
        name = text_field(entry["hs256_secret_env"], f"{where}.hs256_secret_env")
        secret = env_secret(env, name, f"{where}.hs256_secret_env").encode()
        if len(secret) < MIN_HS256_SECRET_BYTES:
            raise GatewayConfigError(
                f"{where}.hs256_secret_env: ${name} is {len(secret)} bytes; HS256 secrets need "
                f"at least {MIN_HS256_SECRET_BYTES} (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')."
            )
        default_algorithms: tuple[str, ...] = ("HS256",)
    else:
        default_algorithms = ("RS256", "ES256")
        if sources[0] == "jwks_file":
            jwks_file = text_field(entry["jwks_file"], f"{where}.jwks_file")
            jwks = _read_jwks(jwks_file, f"{where}.jwks_file")
        else:
            jwks_url = text_field(entry["jwks_url"], f"{where}.jwks_url")
            if not jwks_url.startswith(("https://", "http://")):
                raise GatewayConfigError(f"{where}.jwks_url must be an http(s) URL.")
    algorithms = (
        tuple(
            text_field(a, f"{where}.algorithms") for a in list_field(entry.get("algorithms"), where)
        )
        or default_algorithms
    )
    allowed = ("HS256",) if secret is not None else _ASYMMETRIC
    wrong = [a for a in algorithms if a not in allowed]
    if wrong:
        raise GatewayConfigError(
            f"{where}.algorithms {wrong} cannot be used with "
            f"{'a shared secret' if secret is not None else 'JWKS keys'}; allowed: "
            f"{list(allowed)} ('none' is never accepted)."
        )
    leeway = entry.get("leeway_seconds", 30)
    if isinstance(leeway, bool) or not isinstance(leeway, (int, float)) or not 0 <= leeway <= 300:
        raise GatewayConfigError(f"{where}.leeway_seconds must be 0-300 seconds.")
    return JWTIssuer(
        issuer=issuer,
        audience=audience,
        algorithms=algorithms,
        hs256_secret=secret,
        jwks_file=jwks_file,
        jwks_url=jwks_url,
        jwks=jwks,
        tenant_claim=text_field(entry.get("tenant_claim", "tenant"), f"{where}.tenant_claim"),
        groups_claim=text_field(entry.get("groups_claim", "groups"), f"{where}.groups_claim"),
        leeway_seconds=float(leeway),
        where=where,
    )


def _read_jwks(path: str, where: str) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GatewayConfigError(f"{where}: cannot read JWKS {path!r}: {error}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise GatewayConfigError(f"{where}: {path!r} is not a JWKS document ({{'keys': [...]}}).")
    from jwt import PyJWKSet
    from jwt.exceptions import PyJWKSetError

    try:
        PyJWKSet.from_dict(document)
    except PyJWKSetError as error:
        raise GatewayConfigError(f"{where}: {path!r} has no usable key: {error}.") from None
    return document


def _api_key(entry: Any, where: str) -> APIKey:
    require_mapping(entry, where)
    only_keys(entry, {"sha256", "subject", "tenant", "groups"}, where)
    digest = entry.get("sha256")
    if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
        raise GatewayConfigError(
            f"{where}.sha256 must be the 64 hex digits of the key's sha256 (python -c "
            '"import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())" '
            "KEY), not the key itself."
        )
    if digest.lower() == EXAMPLE_API_KEY_SHA256:
        raise GatewayConfigError(
            f"{where}.sha256 is the hash of the documented example key {EXAMPLE_API_KEY!r}; "
            "generate a key of your own."
        )
    return APIKey(
        sha256=digest.lower(),
        subject=name_field(entry.get("subject"), f"{where}.subject"),
        tenant=name_field(entry.get("tenant"), f"{where}.tenant"),
        groups=tuple(
            name_field(g, f"{where}.groups") for g in list_field(entry.get("groups"), where)
        ),
    )


def _webhook(entry: Any, where: str, env: Mapping[str, str]) -> WebhookSender:
    require_mapping(entry, where)
    only_keys(entry, {"sender", "secret_env", "tenant", "message", "tolerance_seconds"}, where)
    sender = name_field(entry.get("sender"), f"{where}.sender")
    name = text_field(entry.get("secret_env"), f"{where}.secret_env")
    raw = env_secret(env, name, f"{where}.secret_env")
    secrets = tuple(
        decode_webhook_secret(part, f"{where}.secret_env (${name})") for part in raw.split()
    )
    message = entry.get("message")
    require_mapping(message, f"{where}.message")
    only_keys(message, {"name", "correlation_key", "ttl_seconds"}, f"{where}.message")
    try:
        key_path = JSONPath.parse(message.get("correlation_key"))
    except JSONPathError as error:
        raise GatewayConfigError(f"{where}.message.correlation_key: {error}") from None
    ttl = message.get("ttl_seconds")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
        raise GatewayConfigError(f"{where}.message.ttl_seconds must be a positive integer.")
    tolerance = entry.get("tolerance_seconds", DEFAULT_WEBHOOK_TOLERANCE_SECONDS)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 1 <= tolerance <= 3600:
        raise GatewayConfigError(f"{where}.tolerance_seconds must be 1-3600 seconds.")
    return WebhookSender(
        sender=sender,
        secrets=secrets,
        tenant=name_field(entry.get("tenant"), f"{where}.tenant"),
        message_name=name_field(message.get("name"), f"{where}.message.name"),
        correlation_key=key_path,
        ttl_seconds=ttl,
        tolerance_seconds=tolerance,
    )


def _workspace(entry: Any, env: Mapping[str, str]) -> WorkspaceConfig:
    """``workspace: {url, token_env?}``: where the inbox reads referenced records."""
    require_mapping(entry, "workspace")
    only_keys(entry, {"url", "token_env"}, "workspace")
    url = text_field(entry.get("url"), "workspace.url").rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise GatewayConfigError("workspace.url must be an absolute http(s) URL.")
    token = None
    if entry.get("token_env") is not None:
        name = text_field(entry["token_env"], "workspace.token_env")
        token = env_secret(env, name, "workspace.token_env")
        if len(token) < 16:
            raise GatewayConfigError(
                f"workspace.token_env: ${name} is {len(token)} characters; Workspace tokens have "
                "at least 16."
            )
    return WorkspaceConfig(url=url, token=token)
