"""Reading the shared config file: the document, its top level, and checked fields.

The gateway (:mod:`._config`) and the worker (:mod:`._config_worker`) read one YAML or JSON
file; both check their sections with these, so a key reads and fails the same way in
either. Every problem raises :class:`GatewayConfigError` naming the key and the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..plugin.links import DEFAULT_LINK_TTL_SECONDS
from ..plugin.webhook_signing import decode_secret
from ._config_types import (
    CONFIG_ENV,
    EXAMPLE_SECRETS,
    MIN_LINK_SECRET_BYTES,
    MIN_WEBHOOK_SECRET_BYTES,
    NAME_PATTERN,
    GatewayConfigError,
    LinksConfig,
)

TOP_LEVEL = {"auth", "webhooks", "links", "limits", "notifications", "workspace"}
"""The sections one file may have (each reader ignores the others' sections)."""


def check_document(data: Any, what: str) -> dict[str, Any]:
    """The document as a mapping of known sections (None reads as empty)."""
    if data is None:
        data = {}
    require_mapping(data, "the config file")
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise GatewayConfigError(
            f"Unknown top-level key(s) {unknown} in the {what}; known: {sorted(TOP_LEVEL)}."
        )
    return data


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


def parse_links(entry: Any, env: Mapping[str, str]) -> LinksConfig:
    require_mapping(entry, "links")
    only_keys(entry, {"secret_env", "base_url", "ttl_seconds"}, "links")
    base_url = text_field(entry.get("base_url"), "links.base_url").rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise GatewayConfigError("links.base_url must be an absolute http(s) URL.")
    name = text_field(entry.get("secret_env"), "links.secret_env")
    secret = env_secret(env, name, "links.secret_env").encode()
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


def env_secret(env: Mapping[str, str], name: str, where: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise GatewayConfigError(f"{where}: environment variable {name} is not set (or empty).")
    if value in EXAMPLE_SECRETS:
        raise GatewayConfigError(
            f"{where}: ${name} is a documented example value; generate a secret of your own."
        )
    return value


def require_mapping(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise GatewayConfigError(f"{where} must be a mapping, got {type(value).__name__}.")


def only_keys(value: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(value) - known)
    if unknown:
        raise GatewayConfigError(f"{where} has unknown key(s) {unknown}; known: {sorted(known)}.")


def list_field(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise GatewayConfigError(f"{where} must be a list, got {type(value).__name__}.")
    return value


def text_field(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GatewayConfigError(f"{where} must be a non-empty string, got {value!r}.")
    return value.strip()


def name_field(value: Any, where: str) -> str:
    text = text_field(value, where)
    if not NAME_PATTERN.match(text):
        raise GatewayConfigError(
            f"{where} {text!r} must be 1-128 characters of letters, digits and _.:@|+/- "
            "(it goes into ids and visibility queries)."
        )
    return text
