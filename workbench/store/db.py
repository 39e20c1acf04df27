"""Engines and schema migrations for the store: one SQLAlchemy engine per URL, upgraded with alembic on open.

`make_engine(url)` returns an engine set up for concurrent raters: on SQLite the file (and its folder) is
created, WAL journaling and a busy timeout are switched on, foreign keys are enforced, and SQLAlchemy emits
the BEGIN itself so that write transactions can take the write lock up front (`BEGIN IMMEDIATE`).
`migrate(engine)` brings the schema to the newest alembic revision (migrations live in `migrations/`
beside this file) under a lock, so several processes opening a new database at once create it once.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from workbench.errors import WorkbenchError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 5  # seconds to open a connection to PostgreSQL
PG_STATEMENT_MS = 15_000  # the longest one statement may run
# Any fixed number: every process that migrates a PostgreSQL database takes the same advisory lock.
_PG_MIGRATION_LOCK = 0x5742_5354


def make_engine(url: str) -> Engine:
    """An engine for `url` (SQLite or PostgreSQL through psycopg), set up for many concurrent writers."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        # A URL that does not parse may still hold a password ("user:secret@host" without its scheme): not quoted.
        shown = re.sub(r":[^:@/]*@", ":***@", str(url))
        raise WorkbenchError(f"The database URL {shown!r} is not a valid SQLAlchemy URL.") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        # A database that does not answer must fail a request in seconds, not hold one of the app's worker
        # threads for minutes: bounded connect, statement and pool waits.
        connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT_S, "options": f"-c statement_timeout={PG_STATEMENT_MS}"}
        return create_engine(
            parsed, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=10, connect_args=connect_args
        )
    except NoSuchModuleError:
        raise WorkbenchError(
            f"No database driver for {parsed.drivername!r}; use sqlite:/// or postgresql+psycopg://."
        ) from None


def _sqlite_engine(parsed) -> Engine:
    database = parsed.database
    in_memory = not database or database == ":memory:"
    if not in_memory and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    # An in-memory database lives in one connection: every thread must share it (handy for UI tests).
    pool = {"poolclass": StaticPool} if in_memory else {}
    engine = create_engine(parsed, connect_args=connect_args, **pool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # SQLAlchemy, not the sqlite3 module, decides when a transaction begins (see `_on_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")  # readers never block the one writer
            # Every commit reaches the disk before it is acknowledged: a vote the page confirmed survives even a
            # power cut (NORMAL could lose the last commits then); votes are few enough that the fsync is cheap.
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # A deferred transaction that reads and then writes can fail with "database is locked" without
        # waiting; IMMEDIATE takes the write lock at BEGIN, where the busy timeout applies.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions take SQLite's write lock when they begin."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def _alembic_config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision shipped with this code."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision` in place (never drops data); a no-op when it is already there.

    The upgrade runs in one transaction that first takes a lock (SQLite's write lock, or a PostgreSQL
    advisory lock), so concurrent openers wait and then find the work done.
    """
    from alembic import command

    if revision == "head" and current_revision(engine) == head_revision():
        return
    with writer(engine).connect() as conn:
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            command.upgrade(_alembic_config(conn), revision)
