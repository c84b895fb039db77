"""Command line: ``python -m workspace serve`` and ``python -m workspace migrate``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workspace", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (OpenAPI at /docs)")
    serve.add_argument("--host", default=os.environ.get("WORKSPACE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("WORKSPACE_PORT", "8080")))
    serve.add_argument(
        "--database-url",
        default=None,
        help="database URL or SQLite path (default: $WORKSPACE_DATABASE_URL or ./workspace.db)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        help="request body limit (default: $WORKSPACE_MAX_BODY_BYTES or 8 MiB)",
    )
    serve.add_argument("--log-level", default="info")
    migrate = sub.add_parser("migrate", help="create or upgrade the database schema and exit")
    migrate.add_argument("--database-url", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        from workspace.service import DEFAULT_DATABASE_URL
        from workspace.sql import SQLWorkspace

        url = args.database_url or os.environ.get("WORKSPACE_DATABASE_URL") or DEFAULT_DATABASE_URL

        async def migrate() -> None:
            async with SQLWorkspace.from_url(url):
                pass

        asyncio.run(migrate())
        print(f"workspace schema is up to date at {url}")
        return 0

    import uvicorn

    from workspace.service import create_app

    try:
        app = create_app(database_url=args.database_url, max_body_bytes=args.max_body_bytes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
