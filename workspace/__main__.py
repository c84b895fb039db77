"""Command line: ``python -m workspace serve`` and ``python -m workspace migrate``.

``serve`` is configured by arguments or environment variables (:data:`SERVE_ENV`; arguments
win). A malformed value stops the command with one line naming the variable, and so does an
empty ``WORKSPACE_TOKENS`` with a ``--host`` that is not a loopback address (other machines
could reach the service without authentication). SIGTERM stops
accepting connections and gives requests in flight ``WORKSPACE_GRACEFUL_SHUTDOWN_SECONDS``
to finish before the database is closed. ``GET /healthz`` answers 200 while the database is
reachable and 503 otherwise.
"""

# Top layer (entry point): the command line over http.service and storage.sql. The docstring
# above is the --help description, so it stays as the user reads it.

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import uvicorn
from sqlalchemy.engine import make_url

from workspace.http.guard import MIN_TOKEN_LENGTH, TOKEN_HINT, parse_tokens
from workspace.http.service import DEFAULT_DATABASE_URL, create_app
from workspace.storage.sql.store import SQLWorkspace

ENV_HOST = "WORKSPACE_HOST"
ENV_PORT = "WORKSPACE_PORT"
ENV_DATABASE_URL = "WORKSPACE_DATABASE_URL"
ENV_TOKENS = "WORKSPACE_TOKENS"
ENV_MAX_BODY_BYTES = "WORKSPACE_MAX_BODY_BYTES"
ENV_LOG_LEVEL = "WORKSPACE_LOG_LEVEL"
ENV_GRACEFUL_SHUTDOWN = "WORKSPACE_GRACEFUL_SHUTDOWN_SECONDS"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_LOG_LEVEL = "info"
DEFAULT_GRACEFUL_SHUTDOWN_SECONDS = 30.0
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

# Every variable ``serve`` reads, with what it means (docs/operations.md has the table).
SERVE_ENV: dict[str, str] = {
    ENV_HOST: f"interface to listen on (default {DEFAULT_HOST}; 0.0.0.0 in a container)",
    ENV_PORT: f"port to listen on (default {DEFAULT_PORT})",
    ENV_DATABASE_URL: "database URL or SQLite path (default ./workspace.db)",
    ENV_TOKENS: (
        "token1:tenantA,token2:tenantB (tokens of 16+ characters, each once); empty: no auth, "
        "tenant 'default', only on a loopback --host (dev only)"
    ),
    ENV_MAX_BODY_BYTES: "request body limit in bytes (default 8 MiB); larger bodies get 413",
    ENV_LOG_LEVEL: f"{', '.join(LOG_LEVELS)} (default {DEFAULT_LOG_LEVEL})",
    ENV_GRACEFUL_SHUTDOWN: (
        "on SIGTERM, seconds requests in flight get to finish "
        f"(default {DEFAULT_GRACEFUL_SHUTDOWN_SECONDS:g})"
    ),
}


class ConfigError(ValueError):
    """A malformed argument or environment variable (the message names it)."""


@dataclass(frozen=True)
class ServeConfig:
    """Resolved ``serve`` settings."""

    host: str
    port: int
    database_url: str | None
    max_body_bytes: int | None
    log_level: str
    graceful_shutdown_seconds: float
    max_json_elements: int | None = None
    busy_timeout: float | None = None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workspace", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (OpenAPI at /docs)")
    serve.add_argument("--host", default=None, help=f"default ${ENV_HOST} or {DEFAULT_HOST}")
    serve.add_argument("--port", type=int, default=None, help=f"default ${ENV_PORT} or 8080")
    serve.add_argument(
        "--database-url",
        default=None,
        help=f"database URL or SQLite path (default: ${ENV_DATABASE_URL} or ./workspace.db)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        help=f"request body limit (default: ${ENV_MAX_BODY_BYTES} or 8 MiB)",
    )
    serve.add_argument("--log-level", default=None, choices=LOG_LEVELS)
    serve.add_argument(
        "--max-json-elements",
        type=int,
        default=None,
        help="most JSON values in a request body (default 100000); more get 400",
    )
    serve.add_argument(
        "--busy-timeout",
        type=float,
        default=None,
        help="SQLite: seconds a write waits for another process's lock before the request "
        "gets 503 with Retry-After (default 5)",
    )
    migrate = sub.add_parser("migrate", help="create or upgrade the database schema and exit")
    migrate.add_argument("--database-url", default=None)
    return parser


def _int(env: Mapping[str, str], name: str, low: int, high: int | None = None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer.") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name}={value} must be {bounds}.")
    return value


def serve_config(args: argparse.Namespace, env: Mapping[str, str]) -> ServeConfig:
    """Resolve ``serve``'s settings: arguments, then environment, then defaults.

    Args:
        args: Parsed ``serve`` arguments.
        env: The environment.

    Returns:
        The settings.

    Raises:
        ConfigError: Naming the argument or variable that is malformed.
    """
    port = args.port if args.port is not None else _int(env, ENV_PORT, 1, 65535)
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} must be between 1 and 65535.")
    body = args.max_body_bytes
    if body is None:
        body = _int(env, ENV_MAX_BODY_BYTES, 1)
    elif body < 1:
        raise ConfigError(f"--max-body-bytes {body} must be >= 1.")
    level = args.log_level or env.get(ENV_LOG_LEVEL, "").strip().lower() or DEFAULT_LOG_LEVEL
    if level not in LOG_LEVELS:
        raise ConfigError(f"{ENV_LOG_LEVEL}={level!r} is not one of {', '.join(LOG_LEVELS)}.")
    raw_grace = env.get(ENV_GRACEFUL_SHUTDOWN, "").strip()
    grace = DEFAULT_GRACEFUL_SHUTDOWN_SECONDS
    if raw_grace:
        try:
            grace = float(raw_grace)
        except ValueError:
            raise ConfigError(f"{ENV_GRACEFUL_SHUTDOWN}={raw_grace!r} is not seconds.") from None
        if not grace >= 0:
            raise ConfigError(f"{ENV_GRACEFUL_SHUTDOWN}={raw_grace} must be >= 0.")
    elements = getattr(args, "max_json_elements", None)
    if elements is not None and elements < 1:
        raise ConfigError(f"--max-json-elements {elements} must be >= 1.")
    busy = getattr(args, "busy_timeout", None)
    if busy is not None and not 0 <= busy <= 3600:
        raise ConfigError(f"--busy-timeout {busy} must be between 0 and 3600 seconds.")
    return ServeConfig(
        host=args.host or env.get(ENV_HOST, "").strip() or DEFAULT_HOST,
        port=port or DEFAULT_PORT,
        database_url=args.database_url or env.get(ENV_DATABASE_URL, "").strip() or None,
        max_body_bytes=body,
        log_level=level,
        graceful_shutdown_seconds=grace,
        max_json_elements=elements,
        busy_timeout=busy,
    )


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine.

    Args:
        host: ``--host`` value: an IP address or a host name.

    Returns:
        True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for anything
        else, including ``0.0.0.0``, ``::`` and other host names.
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_auth(host: str, tokens: Mapping[str, str]) -> None:
    """Refuse to serve without tokens on an address other machines can reach.

    Args:
        host: The bind address.
        tokens: The parsed ``WORKSPACE_TOKENS``.

    Raises:
        ConfigError: With the fix, when there are no tokens and the address is not loopback.
    """
    if tokens or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to serve without authentication on {host!r}, which is not a loopback "
        f"address: set {ENV_TOKENS}=<token>:<tenant> (tokens of at least {MIN_TOKEN_LENGTH} "
        f"characters; {TOKEN_HINT}), "
        f"or listen on 127.0.0.1 (--host / {ENV_HOST}) for local development."
    )


def mask_password(text: str, url: str) -> str:
    """Replace the password of ``url`` wherever it appears in ``text``.

    Args:
        text: Any text (an error message).
        url: The database URL.

    Returns:
        The text with ``***`` for the password.
    """
    if "://" not in url:
        return text
    try:
        password = make_url(url).password
    except Exception:
        return text
    return text.replace(str(password), "***") if password else text


def display_url(url: str) -> str:
    """A database URL safe to print: the password is masked.

    Args:
        url: A database URL or SQLite path.

    Returns:
        The URL with ``***`` for its password (a path is returned unchanged).
    """
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        # Unparseable: show only the scheme rather than risk printing a secret.
        return url.split("://", 1)[0] + "://***"


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).
        env: Environment (default ``os.environ``).

    Returns:
        The exit code: 0, 1 when ``migrate`` fails, or 2 for a configuration error.
    """
    args = _parser().parse_args(argv)
    environ = os.environ if env is None else env
    if args.command == "migrate":
        url = args.database_url or environ.get(ENV_DATABASE_URL) or DEFAULT_DATABASE_URL

        async def migrate() -> None:
            async with SQLWorkspace.from_url(url):
                pass

        try:
            asyncio.run(migrate())
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            detail = mask_password(lines[0] if lines else "", url)
            print(
                f"error: cannot migrate the workspace schema at {display_url(url)}: "
                f"{type(exc).__name__}: {detail}",
                file=sys.stderr,
            )
            return 1
        print(f"workspace schema is up to date at {display_url(url)}")
        return 0

    try:
        config = serve_config(args, environ)
        tokens = parse_tokens(environ.get(ENV_TOKENS, ""))
        check_auth(config.host, tokens)
        app = create_app(
            database_url=config.database_url,
            tokens=tokens,
            max_body_bytes=config.max_body_bytes,
            max_json_elements=config.max_json_elements,
            busy_timeout=config.busy_timeout,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        timeout_graceful_shutdown=math.ceil(config.graceful_shutdown_seconds),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
