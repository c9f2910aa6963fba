"""The CMDB on both databases it supports: SQLite (the default) and Postgres (by URL, what
docker-compose.yml runs). Same migrations, same idempotent writes, and the decisions that
must be serialized (an exclusive calendar booking, a CI's problem suggestion) stay right
when workers race: N threads, one database, exactly one winner.

Postgres comes from $ITSM_TEST_POSTGRES_URL (`.ci/run` starts Debian's PostgreSQL and sets
it); each test gets its own schema. Without it the Postgres half skips, unless
ITSM_REQUIRE_POSTGRES=1 (CI)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from activities.cmdb import CmdbActivities, seed
from activities.db import MIGRATIONS, Database
from activities.models import IncidentOnCiInput, RecordChangeInput, RecordIncidentInput, ReserveInput
from activities.problems import ProblemActivities
from definitions import acme

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def postgres_url() -> str:
    url = os.environ.get("ITSM_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("ITSM_REQUIRE_POSTGRES") == "1":
        pytest.fail("ITSM_REQUIRE_POSTGRES=1 but ITSM_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    pytest.skip("ITSM_TEST_POSTGRES_URL is not set (a Postgres database to test against); "
                "ITSM_REQUIRE_POSTGRES=1 makes this fail")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'cmdb.sqlite3'}")
        return
    import psycopg

    base, schema = postgres_url(), f"itsm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    # A test that goes wrong waits on a lock for seconds, not for ever.
    options = f"-csearch_path={schema} -clock_timeout=30s -cstatement_timeout=60s"
    yield Database(f"{base}{separator}options={quote(options)}")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def race(count: int, work, timeout: float = 60.0) -> list:
    """Run work(i) for i in range(count) on as many threads, released together; fails (never
    hangs) when one does not finish in `timeout` seconds."""
    start, results, errors = threading.Barrier(count, timeout=timeout), [None] * count, []

    def one(index: int) -> None:
        try:
            start.wait()
            results[index] = work(index)
        except Exception as err:  # noqa: BLE001 (collected and re-raised below)
            errors.append(err)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), f"a racer is still running after {timeout:.0f} s"
    assert not errors, errors
    return results


def test_migrations_apply_once_and_the_schema_answers(database):
    assert database.migrate() == MIGRATIONS[-1][0]
    assert database.migrate() == MIGRATIONS[-1][0]
    seed(database, acme.ORGANISATION)
    seed(database, acme.ORGANISATION)
    with database.transaction() as cur:
        versions = [row[0] for row in cur.all("SELECT version FROM schema_migrations ORDER BY version")]
        services = cur.all("SELECT service FROM cmdb_ci_service WHERE ci = ? ORDER BY service", ("lb-01",))
    assert versions == [m[0] for m in MIGRATIONS]
    assert services and all(isinstance(s[0], str) for s in services)


def test_records_are_written_once_however_often_retried(database):
    cmdb = CmdbActivities(database)
    change = RecordChangeInput(key="CHG-1:closed", change_id="CHG-1", cis=["web-01", "web-02"], outcome="successful",
                               title="Patch", closed_at=T0)
    first, again = cmdb.record_change(change), cmdb.record_change(change)
    assert (first.written, again.written, again.already_present) == (2, 0, 2)
    incident = RecordIncidentInput(key="INC-1:resolved.1", incident_id="INC-1", ci="lb-01", priority="P1",
                                   code="fixed", resolved_at=T0)
    assert [cmdb.record_incident(incident) for _ in range(3)] == [True, False, False]
    with database.transaction() as cur:
        assert cur.all("SELECT change_id, ci, outcome FROM change_record ORDER BY ci") == [
            ("CHG-1", "web-01", "successful"), ("CHG-1", "web-02", "successful")]
        assert cur.all("SELECT incident_id, ci FROM incident_record") == [("INC-1", "lb-01")]


def test_racing_exclusive_bookings_of_one_slot_book_exactly_one(database):
    """The block policy's guarantee: check and book in one serialized transaction."""
    cmdb = CmdbActivities(database)
    database.migrate()

    def book(index: int):
        return cmdb.reserve_calendar(ReserveInput(change_id=f"CHG-{index}", cis=["db-prod-1"], start=T0,
                                                  end=T0 + timedelta(hours=1, minutes=index), exclusive=True))

    results = race(8, book)
    winners = [i for i, conflicts in enumerate(results) if conflicts == []]
    assert len(winners) == 1, results
    assert all(c.change_id == f"CHG-{winners[0]}" for conflicts in results if conflicts for c in conflicts)
    with database.transaction() as cur:
        assert cur.all("SELECT change_id FROM change_calendar WHERE state = 'scheduled'") == [(f"CHG-{winners[0]}",)]


class NoTemporal:
    """_decide only touches the database; starting or signalling is tested with a server."""


def test_racing_incidents_on_one_ci_suggest_exactly_one_problem(database):
    """The policy's third incident within the window suggests the problem, however the
    three arrive: all at once on three workers, none is missed and none is doubled."""
    policy = acme.PROBLEM_POLICY
    problems = ProblemActivities(database, NoTemporal(), policy)
    database.migrate()
    count = policy.suggest_after

    def occur(index: int):
        return problems._decide(IncidentOnCiInput(incident_id=f"INC-{index}", ci="web-02",
                                                  opened_at=T0 + timedelta(seconds=index)))

    for attempt in range(5):  # several rounds: a lost race is a matter of timing
        ci = f"web-{attempt}"
        decisions = race(count, lambda i, attempt=attempt, ci=ci: problems._decide(IncidentOnCiInput(
            incident_id=f"INC-{attempt}-{i}", ci=ci, opened_at=T0)))
        suggested = [d for d in decisions if d.result.suggested]
        assert len(suggested) == 1, [d.result for d in decisions]
        assert sorted(suggested[0].start_with) == sorted(f"INC-{attempt}-{i}" for i in range(count))
        with database.transaction() as cur:
            assert cur.all("SELECT problem_id FROM problem_open WHERE ci = ?", (ci,)) == [
                (suggested[0].result.problem_id,)]
    assert occur(99).result.problem_id is None  # web-02 itself has one incident so far


async def test_a_change_and_an_incident_through_the_worker(env, task_queue, channel, database):
    """The processes on this database end to end: the change books and releases its slot
    and is recorded; the resolved incident is recorded; every notification is in the ledger."""
    from tests.workflows.helpers import Changes, complete, implementing, running_worker
    from tests.workflows.incident_helpers import Incidents
    from workflows.incident_models import IncidentResolveInput
    from workflows.models import ActorInput

    database.migrate()
    seed(database, acme.ORGANISATION)
    changes, incidents = Changes(env, task_queue), Incidents(env, task_queue)
    async with running_worker(env, task_queue, database, channel):
        try:
            change = await implementing(env, changes, cis=["web-01"])
            change = await complete(env, change.id, "erin")
            incident = await incidents.open(impact=3, urgency=3, group="network", ci="lb-01")
            await incidents.act(incident.id, "acknowledge", ActorInput(actor="dave"))
            incident = await incidents.act(incident.id, "resolve", IncidentResolveInput(actor="dave", code="fixed"))
        finally:
            await changes.terminate_open()
            await incidents.close_all()
    assert (change.state.value, incident.state.value) == ("closed", "resolved")
    with database.transaction() as cur:
        assert cur.all("SELECT change_id, ci, outcome FROM change_record") == [(change.id, "web-01", "successful")]
        assert cur.all("SELECT change_id, state FROM change_calendar") == [(change.id, "closed")]
        assert cur.all("SELECT incident_id, ci FROM incident_record") == [(incident.id, "lb-01")]
        ledger = {row[0] for row in cur.all("SELECT idempotency_key FROM notification_ledger")}
    assert ledger == {m.key for m in channel.sent} and len(ledger) >= 6


def test_a_failed_transaction_rolls_back_and_the_next_one_works(database):
    """SQLite keeps one connection per thread: a transaction that fails must leave it clean
    (nothing of the failed one committed, no transaction left open), and a connection that
    broke mid-transaction is replaced, not reused."""
    database.migrate()
    insert = "INSERT INTO problem_open (ci, problem_id, claimed_at) VALUES (?, ?, ?)"
    with pytest.raises(RuntimeError):
        with database.transaction() as cur:
            cur.execute(insert, ("web-01", "PRB-1", "t"))
            raise RuntimeError("the activity failed half way")
    with database.transaction() as cur:
        assert cur.all("SELECT ci FROM problem_open") == []
        cur.execute(insert, ("web-02", "PRB-2", "t"))
    if database.kind == "sqlite":
        with pytest.raises(Exception):  # noqa: B017 (the driver's own integrity error)
            with database.transaction() as cur:
                cur._conn.close()  # the connection breaks: ROLLBACK fails too
        assert getattr(database._local, "conn", None) is None
    got = race(4, lambda i: _read_problem_ids(database))
    assert got == [["PRB-2"]] * 4


def _read_problem_ids(database) -> list[str]:
    with database.transaction() as cur:
        return [row[0] for row in cur.all("SELECT problem_id FROM problem_open")]
