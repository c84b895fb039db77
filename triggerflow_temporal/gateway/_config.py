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

from ..plugin.links import DEFAULT_LINK_TTL_SECONDS
from ..plugin.webhook_signing import decode_secret
from ._config_types import (
    CONFIG_ENV,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
    EXAMPLE_API_KEY,
    EXAMPLE_API_KEY_SHA256,
    EXAMPLE_SECRETS,
    MIN_HS256_SECRET_BYTES,
    MIN_LINK_SECRET_BYTES,
    MIN_WEBHOOK_SECRET_BYTES,
    NAME_PATTERN,
    APIKey,
    GatewayConfig,
    GatewayConfigError,
    JWTIssuer,
    LinksConfig,
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
_TOP_LEVEL = {"auth", "webhooks", "links", "limits", "notifications", "workspace"}


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


def read_document(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> tuple[Any, str | None]:
    """The parsed YAML or JSON document and its path; ``(None, None)`` without a file.

    The gateway and the worker (``triggerflow-temporal worker --config``) read one file.

    Args:
        path: The file; defaults to ``$TRIGGERFLOW_GATEWAY_CONFIG``.
        env: Where that variable is read (default ``os.environ``).

    Raises:
        GatewayConfigError: Unreadable file, or not valid YAML/JSON.
    """
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_ENV) or None
    if path is None:
        return None, None
    source = str(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise GatewayConfigError(
            f"Cannot read the config file {source!r}: {error.strerror or error}. Pass "
            f"--config FILE or set {CONFIG_ENV} to a readable YAML or JSON file."
        ) from None
    return _parse_text(text, source), source


def _parse_text(text: str, source: str) -> Any:
    if source.endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as error:
            raise GatewayConfigError(f"{source} is not valid JSON: {error}.") from None
    import yaml

    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as error:
        raise GatewayConfigError(f"{source} is not valid YAML: {error}") from None


def parse_config(
    data: Any, *, env: Mapping[str, str] | None = None, source: str | None = None
) -> GatewayConfig:
    """Check an already parsed config document; see :func:`load_config`."""
    env = os.environ if env is None else env
    if data is None:
        data = {}
    _require_mapping(data, "the config file")
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise GatewayConfigError(
            f"Unknown top-level key(s) {unknown} in the gateway config; known: "
            f"{sorted(_TOP_LEVEL)}."
        )
    auth = data.get("auth") or {}
    _require_mapping(auth, "auth")
    _only(auth, {"jwt", "api_keys"}, "auth")
    jwt = tuple(
        _jwt_issuer(entry, f"auth.jwt[{i}]", env)
        for i, entry in enumerate(_list(auth.get("jwt"), "auth.jwt"))
    )
    api_keys = tuple(
        _api_key(entry, f"auth.api_keys[{i}]")
        for i, entry in enumerate(_list(auth.get("api_keys"), "auth.api_keys"))
    )
    hashes = [key.sha256 for key in api_keys]
    if len(set(hashes)) != len(hashes):
        raise GatewayConfigError("auth.api_keys lists the same sha256 twice; keep one entry.")
    webhooks: dict[str, WebhookSender] = {}
    for i, entry in enumerate(_list(data.get("webhooks"), "webhooks")):
        sender = _webhook(entry, f"webhooks[{i}]", env)
        if sender.sender in webhooks:
            raise GatewayConfigError(f"webhooks[{i}].sender {sender.sender!r} appears twice.")
        webhooks[sender.sender] = sender
    limits = data.get("limits") or {}
    _require_mapping(limits, "limits")
    _only(limits, {"max_body_bytes"}, "limits")
    max_body = limits.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1024:
        raise GatewayConfigError(
            f"limits.max_body_bytes must be an integer >= 1024, got {max_body!r}."
        )
    links = _links(data.get("links"), env) if data.get("links") is not None else None
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
    _require_mapping(entry, where)
    _only(
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
    issuer = _text(entry.get("issuer"), f"{where}.issuer")
    audience_raw = entry.get("audience")
    audiences = audience_raw if isinstance(audience_raw, list) else [audience_raw]
    audience = tuple(_text(a, f"{where}.audience") for a in audiences)
    sources = [k for k in ("hs256_secret_env", "jwks_file", "jwks_url") if entry.get(k)]
    if len(sources) != 1:
        raise GatewayConfigError(
            f"{where} needs exactly one of hs256_secret_env, jwks_file or jwks_url "
            f"(got {sources or 'none'})."
        )
    secret = jwks = None
    jwks_file = jwks_url = None
    if sources[0] == "hs256_secret_env":
        name = _text(entry["hs256_secret_env"], f"{where}.hs256_secret_env")
        secret = _secret(env, name, f"{where}.hs256_secret_env").encode()
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
            jwks_file = _text(entry["jwks_file"], f"{where}.jwks_file")
            jwks = _read_jwks(jwks_file, f"{where}.jwks_file")
        else:
            jwks_url = _text(entry["jwks_url"], f"{where}.jwks_url")
            if not jwks_url.startswith(("https://", "http://")):
                raise GatewayConfigError(f"{where}.jwks_url must be an http(s) URL.")
    algorithms = (
        tuple(_text(a, f"{where}.algorithms") for a in _list(entry.get("algorithms"), where))
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
        tenant_claim=_text(entry.get("tenant_claim", "tenant"), f"{where}.tenant_claim"),
        groups_claim=_text(entry.get("groups_claim", "groups"), f"{where}.groups_claim"),
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
    _require_mapping(entry, where)
    _only(entry, {"sha256", "subject", "tenant", "groups"}, where)
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
        subject=_name(entry.get("subject"), f"{where}.subject"),
        tenant=_name(entry.get("tenant"), f"{where}.tenant"),
        groups=tuple(_name(g, f"{where}.groups") for g in _list(entry.get("groups"), where)),
    )


def _webhook(entry: Any, where: str, env: Mapping[str, str]) -> WebhookSender:
    _require_mapping(entry, where)
    _only(entry, {"sender", "secret_env", "tenant", "message", "tolerance_seconds"}, where)
    sender = _name(entry.get("sender"), f"{where}.sender")
    name = _text(entry.get("secret_env"), f"{where}.secret_env")
    raw = _secret(env, name, f"{where}.secret_env")
    secrets = tuple(
        decode_webhook_secret(part, f"{where}.secret_env (${name})") for part in raw.split()
    )
    message = entry.get("message")
    _require_mapping(message, f"{where}.message")
    _only(message, {"name", "correlation_key", "ttl_seconds"}, f"{where}.message")
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
        tenant=_name(entry.get("tenant"), f"{where}.tenant"),
        message_name=_name(message.get("name"), f"{where}.message.name"),
        correlation_key=key_path,
        ttl_seconds=ttl,
        tolerance_seconds=tolerance,
    )


def decode_webhook_secret(secret: str, where: str) -> bytes:
    """The signing key of a Standard Webhooks secret ``whsec_<base64>``.

    Raises:
        GatewayConfigError: Wrong prefix, not base64, too short, or a documented example.
    """
    if secret in EXAMPLE_SECRETS:
        raise GatewayConfigError(f"{where} is a documented example secret; generate your own.")
    try:
        return decode_secret(secret, min_bytes=MIN_WEBHOOK_SECRET_BYTES)
    except ValueError as error:
        raise GatewayConfigError(f"{where}: {error}") from None


def _links(entry: Any, env: Mapping[str, str]) -> LinksConfig:
    _require_mapping(entry, "links")
    _only(entry, {"secret_env", "base_url", "ttl_seconds"}, "links")
    base_url = _text(entry.get("base_url"), "links.base_url").rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise GatewayConfigError("links.base_url must be an absolute http(s) URL.")
    name = _text(entry.get("secret_env"), "links.secret_env")
    secret = _secret(env, name, "links.secret_env").encode()
    if len(secret) < MIN_LINK_SECRET_BYTES:
        raise GatewayConfigError(
            f"links.secret_env: ${name} is {len(secret)} bytes; use at least "
            f"{MIN_LINK_SECRET_BYTES}."
        )
    # How long a link minted by a worker stays valid (the worker reads it; the gateway
    # checks each token's own expiry).
    ttl = entry.get("ttl_seconds", DEFAULT_LINK_TTL_SECONDS)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise GatewayConfigError(
            f"links.ttl_seconds must be a positive number of seconds (default "
            f"{DEFAULT_LINK_TTL_SECONDS:g}, 7 days), got {ttl!r}."
        )
    return LinksConfig(base_url=base_url, secret=secret, ttl_seconds=float(ttl))


def _workspace(entry: Any, env: Mapping[str, str]) -> WorkspaceConfig:
    """``workspace: {url, token_env?}``: where the inbox reads referenced records."""
    _require_mapping(entry, "workspace")
    _only(entry, {"url", "token_env"}, "workspace")
    url = _text(entry.get("url"), "workspace.url").rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise GatewayConfigError("workspace.url must be an absolute http(s) URL.")
    token = None
    if entry.get("token_env") is not None:
        name = _text(entry["token_env"], "workspace.token_env")
        token = _secret(env, name, "workspace.token_env")
        if len(token) < 16:
            raise GatewayConfigError(
                f"workspace.token_env: ${name} is {len(token)} characters; Workspace tokens have "
                "at least 16."
            )
    return WorkspaceConfig(url=url, token=token)


# ------------------------------------------------------------------------------ helpers
def _secret(env: Mapping[str, str], name: str, where: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise GatewayConfigError(f"{where}: environment variable {name} is not set (or empty).")
    if value in EXAMPLE_SECRETS:
        raise GatewayConfigError(
            f"{where}: ${name} is a documented example value; generate a secret of your own."
        )
    return value


def _require_mapping(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise GatewayConfigError(f"{where} must be a mapping, got {type(value).__name__}.")


def _only(value: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(value) - known)
    if unknown:
        raise GatewayConfigError(f"{where} has unknown key(s) {unknown}; known: {sorted(known)}.")


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise GatewayConfigError(f"{where} must be a list, got {type(value).__name__}.")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GatewayConfigError(f"{where} must be a non-empty string, got {value!r}.")
    return value.strip()


def _name(value: Any, where: str) -> str:
    text = _text(value, where)
    if not NAME_PATTERN.match(text):
        raise GatewayConfigError(
            f"{where} {text!r} must be 1-128 characters of letters, digits and _.:@|+/- "
            "(it goes into ids and visibility queries)."
        )
    return text
