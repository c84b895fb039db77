"""Command line: ``python -m workspace serve`` and ``python -m workspace migrate``.

``serve`` is configured by arguments or environment variables (:data:`SERVE_ENV`; arguments
win). A malformed value stops the command with one line naming the variable. SIGTERM stops
accepting connections and gives requests in flight ``WORKSPACE_GRACEFUL_SHUTDOWN_SECONDS``
to finish before the database is closed. ``GET /healthz`` answers 200 while the database is
reachable and 503 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
    ENV_TOKENS: "token1:tenantA,token2:tenantB; empty: no auth, tenant 'default' (dev only)",
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
    return ServeConfig(
        host=args.host or env.get(ENV_HOST, "").strip() or DEFAULT_HOST,
        port=port or DEFAULT_PORT,
        database_url=args.database_url or env.get(ENV_DATABASE_URL, "").strip() or None,
        max_body_bytes=body,
        log_level=level,
        graceful_shutdown_seconds=grace,
    )


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).
        env: Environment (default ``os.environ``).

    Returns:
        The exit code: 0, or 2 for a configuration error.
    """
    args = _parser().parse_args(argv)
    environ = os.environ if env is None else env
    if args.command == "migrate":
        from workspace.service import DEFAULT_DATABASE_URL
        from workspace.sql import SQLWorkspace

        url = args.database_url or environ.get(ENV_DATABASE_URL) or DEFAULT_DATABASE_URL

        async def migrate() -> None:
            async with SQLWorkspace.from_url(url):
                pass

        asyncio.run(migrate())
        print(f"workspace schema is up to date at {url}")
        return 0

    import uvicorn

    from workspace.service import create_app

    try:
        config = serve_config(args, environ)
        app = create_app(database_url=config.database_url, max_body_bytes=config.max_body_bytes)
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
