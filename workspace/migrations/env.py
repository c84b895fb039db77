"""Alembic environment for the workspace schema.

The package runs migrations itself from ``SQLWorkspace.setup()``, passing an open connection
(already inside a transaction that holds the setup lock) in ``config.attributes["connection"]``.
For development, ``alembic -x url=sqlite:///path.db upgrade head`` with
``script_location = workspace/migrations`` also works.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from workspace.storage.sql.schema import VERSION_TABLE


def _run(connection: object) -> None:
    context.configure(connection=connection, version_table=VERSION_TABLE)  # type: ignore[arg-type]
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("pass -x url=<sync SQLAlchemy URL> or set sqlalchemy.url")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
