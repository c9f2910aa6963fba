"""The CMDB database: SQLite by default, Postgres by URL (`ITSM_DB_URL`), versioned
migrations applied on connect. SQL is written once with `?` placeholders."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

DEFAULT_URL = "sqlite:///.itsm/cmdb.sqlite3"

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "cmdb, change calendar and records, notification ledger",
        [
            """CREATE TABLE cmdb_ci (name TEXT PRIMARY KEY, ci_class TEXT NOT NULL,
                   criticality TEXT NOT NULL, owner_group TEXT NOT NULL)""",
            "CREATE TABLE cmdb_service (name TEXT PRIMARY KEY, owner_group TEXT NOT NULL)",
            """CREATE TABLE cmdb_ci_service (ci TEXT NOT NULL, service TEXT NOT NULL,
                   PRIMARY KEY (ci, service))""",
            """CREATE TABLE change_record (change_id TEXT NOT NULL, ci TEXT NOT NULL, outcome TEXT NOT NULL,
                   title TEXT NOT NULL, closed_at TEXT NOT NULL, idempotency_key TEXT NOT NULL,
                   PRIMARY KEY (change_id, ci))""",
            """CREATE TABLE change_calendar (change_id TEXT NOT NULL, ci TEXT NOT NULL, start_at TEXT NOT NULL,
                   end_at TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (change_id, ci))""",
            "CREATE INDEX change_calendar_ci ON change_calendar (ci, state)",
            """CREATE TABLE notification_ledger (idempotency_key TEXT PRIMARY KEY, message_id TEXT NOT NULL,
                   channel TEXT NOT NULL, recipients TEXT NOT NULL, subject TEXT NOT NULL, sent_at TEXT NOT NULL)""",
        ],
    ),
    (
        2,
        "incident records",
        [
            """CREATE TABLE incident_record (idempotency_key TEXT PRIMARY KEY, incident_id TEXT NOT NULL,
                   ci TEXT NOT NULL, priority TEXT NOT NULL, resolution_code TEXT NOT NULL,
                   resolved_at TEXT NOT NULL)""",
            "CREATE INDEX incident_record_ci ON incident_record (ci, resolved_at)",
        ],
    ),
    (
        3,
        "fulfillment: access grants, assets, accounts",
        [
            """CREATE TABLE fulfillment_record (idempotency_key TEXT PRIMARY KEY, item_id TEXT NOT NULL,
                   action TEXT NOT NULL, subject TEXT NOT NULL, resource TEXT NOT NULL, detail TEXT NOT NULL,
                   created_at TEXT NOT NULL, undone_at TEXT)""",
            "CREATE INDEX fulfillment_record_item ON fulfillment_record (item_id)",
        ],
    ),
    (
        4,
        "problems: known errors, incident occurrences per CI, the open problem of a CI",
        [
            """CREATE TABLE known_error (problem_id TEXT NOT NULL, ci TEXT NOT NULL, title TEXT NOT NULL,
                   root_cause TEXT NOT NULL, workaround TEXT NOT NULL, revision INTEGER NOT NULL,
                   recorded_at TEXT NOT NULL, retired_at TEXT, PRIMARY KEY (problem_id, ci))""",
            "CREATE INDEX known_error_ci ON known_error (ci, retired_at)",
            """CREATE TABLE incident_occurrence (incident_id TEXT PRIMARY KEY, ci TEXT NOT NULL,
                   opened_at TEXT NOT NULL, problem_id TEXT)""",
            "CREATE INDEX incident_occurrence_ci ON incident_occurrence (ci, opened_at)",
            """CREATE TABLE problem_open (ci TEXT PRIMARY KEY, problem_id TEXT NOT NULL, claimed_by TEXT,
                   claimed_at TEXT NOT NULL)""",
        ],
    ),
    (
        5,
        "grant revocations: who revoked a fulfillment grant, why, keyed for retries",
        [
            """CREATE TABLE grant_revocation (idempotency_key TEXT PRIMARY KEY, grant_key TEXT NOT NULL,
                   revoked_by TEXT NOT NULL, reason TEXT NOT NULL, revoked INTEGER NOT NULL,
                   revoked_at TEXT NOT NULL)""",
            "CREATE INDEX grant_revocation_grant ON grant_revocation (grant_key)",
        ],
    ),
]


def utc_text(moment: datetime) -> str:
    """Timestamps are stored as ISO-8601 UTC text, which sorts and compares in both engines."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


class Database:
    def __init__(self, url: str = DEFAULT_URL, busy_timeout: float = 30.0) -> None:
        """`busy_timeout`: how long a SQLite write waits for a lock held elsewhere before
        failing (the activity then retries with backoff)."""
        self.url = url
        self.busy_timeout = busy_timeout
        if url.startswith("sqlite:///"):
            self.kind = "sqlite"
            self.path = Path(url.removeprefix("sqlite:///"))
        elif url.startswith(("postgres://", "postgresql://")):
            self.kind = "postgres"
        else:
            raise ValueError(f"unsupported database URL {url!r} (use sqlite:///PATH or postgresql://...)")
        self._migrated = False
        self._local = threading.local()  # SQLite: each thread keeps its connection

    def _connect(self):
        if self.kind == "sqlite":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            return conn
        import psycopg  # optional extra: pip install 'itsmflow[postgres]'

        return psycopg.connect(self.url, autocommit=True)

    def _thread_connection(self):
        """SQLite: this thread's connection, opened once. Opening one per transaction cost
        about 1 ms each (the file, the WAL index, the schema read again): a few per activity.
        None when this thread is already inside a transaction (it gets one of its own)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return None if conn.in_transaction else conn

    @contextmanager
    def transaction(self) -> Iterator["Cursor"]:
        """One transaction; commits on success, rolls back on error."""
        if not self._migrated:
            self.migrate()
        kept = self._thread_connection() if self.kind == "sqlite" else None
        conn = kept or self._connect()
        began = False
        try:
            # Postgres: READ COMMITTED whatever the server's default, which the advisory locks
            # of Cursor.serialize rely on (each statement sees what committed before it).
            conn.execute("BEGIN IMMEDIATE" if self.kind == "sqlite" else "BEGIN ISOLATION LEVEL READ COMMITTED")
            began = True
            yield Cursor(conn, self.kind)
            conn.execute("COMMIT")
        except BaseException:
            if began:  # a BEGIN that failed (database locked) has nothing to roll back
                try:
                    conn.execute("ROLLBACK")
                except Exception:
                    if kept is not None:  # a connection in an unknown state is not kept (closed below)
                        self._local.conn = kept = None
                    raise
            raise
        finally:
            if kept is None:
                conn.close()

    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version."""
        conn = self._connect()
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            cursor = Cursor(conn, self.kind)
            for version, description, statements in MIGRATIONS:
                conn.execute("BEGIN IMMEDIATE" if self.kind == "sqlite" else "BEGIN")
                try:
                    if cursor.one("SELECT version FROM schema_migrations WHERE version = ?", (version,)):
                        conn.execute("COMMIT")
                        continue
                    for statement in statements:
                        cursor.execute(statement)
                    cursor.execute(
                        "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                        (version, description, utc_text(datetime.now(timezone.utc))),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            self._migrated = True
            return MIGRATIONS[-1][0]
        finally:
            conn.close()


class Cursor:
    def __init__(self, conn, kind: str) -> None:
        self._conn, self._kind = conn, kind

    def execute(self, sql: str, params: tuple = ()) -> int:
        if self._kind == "postgres":
            sql = sql.replace("?", "%s")
        cursor = self._conn.execute(sql, params)
        return cursor.rowcount

    def serialize(self, key: str) -> None:
        """Until this transaction ends, every other transaction serializing on `key` waits.
        SQLite's BEGIN IMMEDIATE already serializes all writers; Postgres (READ COMMITTED)
        takes a transaction-scoped advisory lock on the key's hash."""
        if self._kind == "postgres":
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def all(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self._kind == "postgres":
            sql = sql.replace("?", "%s")
        return list(self._conn.execute(sql, params).fetchall())

    def one(self, sql: str, params: tuple = ()) -> tuple | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def value(self, sql: str, params: tuple = ()) -> Any:
        """The first column of the row the query must find (a count, a key just written)."""
        row = self.one(sql, params)
        if row is None:
            raise LookupError(f"no row for {sql!r}")
        return row[0]
