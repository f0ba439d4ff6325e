"""Engine and session creation; every SQLite/Postgres difference outside repositories lives here.

SQLite has no row locks, so a write transaction takes the database write lock up front
(``BEGIN IMMEDIATE``); reads use a deferred ``BEGIN`` so they never queue behind writers (WAL).
Postgres runs at READ COMMITTED and relies on row locks and conditional updates.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session

from allegiance.config import get_settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


_writer_locks: dict[str, threading.Lock] = {}


def _serialised_connection(url: str) -> type[sqlite3.Connection]:
    """A sqlite3 connection class whose write transactions queue on a per-file lock.

    SQLite's busy handler polls with growing sleeps and serves waiters in no order, so under
    load some writers wait for seconds. Threads of one process queue here instead, in arrival
    order, and hold the lock from BEGIN IMMEDIATE until COMMIT or ROLLBACK has finished.
    Other processes still meet the busy handler.
    """
    writer = _writer_locks.setdefault(url, threading.Lock())

    class SerialisedConnection(sqlite3.Connection):
        holds_writer = False

        def take_writer_lock(self) -> None:
            writer.acquire()
            self.holds_writer = True

        def _release(self) -> None:
            if self.holds_writer:
                self.holds_writer = False
                writer.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._release()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._release()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._release()

    return SerialisedConnection


def _make_engine(url: str) -> Engine:
    settings = get_settings()
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 30,
                "factory": _serialised_connection(url),
            },
            pool_size=settings.pool_size,
            max_overflow=settings.pool_max_overflow,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # the driver must not open transactions itself: we emit BEGIN below
            dbapi_connection.isolation_level = None
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            if mode != "IMMEDIATE":
                conn.exec_driver_sql("BEGIN")
                return
            dbapi = conn.connection.dbapi_connection
            dbapi.take_writer_lock()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                dbapi.rollback()  # releases the lock
                raise

        return engine
    return create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_pre_ping=True,
    )


def get_engine(url: str | None = None) -> Engine:
    url = normalize_url(url or get_settings().database_url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _make_engine(url)
        return engine


def dispose_engine(url: str) -> None:
    """Close and forget the engine of ``url`` (a throwaway database is about to go away)."""
    url = normalize_url(url)
    with _lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


@contextmanager
def write_session(engine: Engine | Connection | None = None) -> Iterator[Session]:
    """A session whose transaction commits once at the end, or rolls back on any error.
    ``engine`` may be one connection held for a series of transactions (``bulk_connection``)."""
    engine = engine or get_engine()
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# SQLite, for one connection that writes a bulk load: a WAL checkpoint every 32 MiB of WAL
# instead of every 4 MiB. An import's batch writes several MiB of pages (orders arrive in file
# order, not in the order of their time indexes), so with the default nearly every commit
# copied its pages back into the database file at once; now pages that several batches
# change are copied once. (A larger page cache did not measurably help; it costs memory.)
BULK_SQLITE_PRAGMAS = {"wal_autocheckpoint": 8_192}


@contextmanager
def bulk_connection(engine: Engine) -> Iterator[Connection]:
    """One connection for a long series of write transactions (an import's batches).

    On SQLite it gets ``BULK_SQLITE_PRAGMAS`` while the block runs (restored before the
    connection goes back to the pool). Durability is unchanged: every commit is as safe as
    any other (WAL, ``synchronous=NORMAL``); a checkpoint only happens later.
    """
    pragmas = BULK_SQLITE_PRAGMAS
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            yield conn
            return
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        saved = {name: dbapi.execute(f"PRAGMA {name}").fetchone()[0] for name in pragmas}
        for name, value in pragmas.items():
            dbapi.execute(f"PRAGMA {name}={int(value)}")
        try:
            yield conn
        finally:
            for name, value in saved.items():
                dbapi.execute(f"PRAGMA {name}={int(value)}")


@contextmanager
def read_session(engine: Engine | None = None) -> Iterator[Session]:
    """A read-only session: a deferred transaction on SQLite, never committed."""
    engine = engine or get_engine()
    conn_engine = engine.execution_options(sqlite_begin="DEFERRED")
    with Session(conn_engine, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            # keep what was loaded usable after the block: detach, then end the transaction
            session.expunge_all()
            session.rollback()


def dialect_insert(session: Session) -> Any:
    """The dialect's INSERT construct (both support ON CONFLICT ... DO NOTHING / DO UPDATE)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_converters: dict[tuple[str, str, tuple[str, ...]], list[Any]] = {}


def _converter(column: Any, dialect: str) -> Any:
    from sqlalchemy import JSON

    from allegiance.kit.orm import UTCDateTime

    column_type = column.type
    if isinstance(column_type, UTCDateTime):
        if dialect == "sqlite":
            # the same text form SQLAlchemy's SQLite DATETIME stores (ordered as text)
            seen: dict[Any, str] = {}

            def sqlite_time(value: Any) -> Any:
                if value is None:
                    return None
                text = seen.get(value)
                if text is None:
                    text = (
                        value.astimezone(UTC).strftime(SQLITE_TIMESTAMP)
                        if value.tzinfo is not None
                        else value.strftime(SQLITE_TIMESTAMP)
                    )
                    if len(seen) > 10_000:
                        seen.clear()
                    seen[value] = text
                return text

            return sqlite_time
        return lambda value: value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(column_type, JSON):
        import orjson

        if dialect == "sqlite":
            return lambda value: None if value is None else orjson.dumps(value).decode()
        return _jsonb
    return None


def _jsonb(value: Any) -> Any:
    from psycopg.types.json import Jsonb

    return None if value is None else Jsonb(value)


def _copy_json(value: Any) -> Any:
    """A JSON value for ``COPY``: its text, encoded by orjson (the server parses it into the
    same jsonb as ``Jsonb``'s ``json.dumps`` text); what orjson refuses (an integer beyond 64
    bits) goes the ``Jsonb`` way."""
    import orjson

    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _jsonb(value)


SQLITE_TIMESTAMP = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's DATETIME text on SQLite


def sqlite_timestamp(value: datetime | None) -> str | None:
    """A datetime as the text ``UTCDateTime`` stores on SQLite (ordered as text)."""
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo is not None else value
    return utc.strftime(SQLITE_TIMESTAMP)


def bulk_insert(
    session: Session,
    table: Any,
    rows: list[dict[str, Any]],
    *,
    skip_conflicts_on: tuple[str, ...] | None = None,
) -> None:
    """``executemany`` straight on the driver for large batches (imports, bookings).

    SQLAlchemy's per-parameter processing dominates big inserts; here each column's value
    conversion is decided once. All rows must have the same keys. ``skip_conflicts_on`` names
    a unique key whose duplicates are silently skipped.
    """
    if not rows:
        return
    from operator import itemgetter

    columns = tuple(rows[0].keys())
    getter = itemgetter(*columns)
    values = (
        [getter(row) for row in rows] if len(columns) > 1 else [(row[columns[0]],) for row in rows]
    )
    bulk_insert_values(session, table, columns, values, skip_conflicts_on=skip_conflicts_on)


def bulk_insert_values(
    session: Session,
    table: Any,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    *,
    skip_conflicts_on: tuple[str, ...] | None = None,
) -> None:
    """``bulk_insert`` for rows given as tuples in ``columns`` order (no dict per row)."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect.name
    key = (table.name, dialect, columns)
    converters = _converters.get(key)
    if converters is None:
        converters = [_converter(table.c[name], dialect) for name in columns]
        _converters[key] = converters
    if dialect == "postgresql" and not skip_conflicts_on and len(rows) >= COPY_MIN_ROWS:
        _copy_rows(conn, table.name, columns, converters, rows)
        return
    marker = "?" if dialect == "sqlite" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    if skip_conflicts_on:
        # same syntax on SQLite (3.24+) and Postgres
        sql += f" ON CONFLICT ({', '.join(skip_conflicts_on)}) DO NOTHING"
    convert = [(i, fn) for i, fn in enumerate(converters) if fn is not None]
    params: list[Any] = rows
    if convert:
        params = []
        for row in rows:
            values = list(row)
            for i, fn in convert:
                values[i] = fn(values[i])
            params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


COPY_MIN_ROWS = 100  # from this many rows on, Postgres inserts go through COPY


def _copy_rows(
    conn: Any,
    table: str,
    columns: tuple[str, ...],
    converters: list[Any],
    rows: list[tuple[Any, ...]],
) -> None:
    """Postgres ``COPY ... FROM STDIN``: one statement for the whole batch, rows encoded by the
    driver in C instead of an ``executemany`` that handles each row in Python. A duplicate key
    raises the same ``IntegrityError`` as an INSERT would."""
    import psycopg
    from sqlalchemy.exc import IntegrityError

    convert = [
        (i, _copy_json if fn is _jsonb else fn) for i, fn in enumerate(converters) if fn is not None
    ]
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    driver = conn.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                if convert:
                    values = list(row)
                    for i, fn in convert:
                        values[i] = fn(values[i])
                    copy.write_row(values)
                else:
                    copy.write_row(row)
    except psycopg.IntegrityError as exc:
        raise IntegrityError(sql, None, exc) from exc


def refresh_statistics(engine: Engine, tables: tuple[str, ...]) -> None:
    """Update the planner's statistics after a bulk load (Postgres; a no-op on SQLite).

    Autovacuum may be off, or simply not have caught up with a load: without statistics the
    planner can pick a scan of the whole tenant for lookups by id.
    """
    if is_sqlite(engine):
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE " + ", ".join(_analyzed(table) for table in tables))
        conn.commit()


def _analyzed(name: str) -> str:
    """``table (columns)`` without the JSON columns: no query filters on a payload, and their
    statistics were most of the work (orders: 0.4 s of 0.5 s per run during an import)."""
    from sqlalchemy import JSON

    from allegiance.kit.orm import Base

    table = Base.metadata.tables.get(name)
    if table is None:
        return name
    columns = [c.name for c in table.columns if not isinstance(c.type, JSON)]
    return f"{name} ({', '.join(columns)})"
