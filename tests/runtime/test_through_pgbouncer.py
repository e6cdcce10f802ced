"""The services through a real PgBouncer in transaction pooling mode, as the production overlay runs them.

Each transaction may land on another server session there: no named prepared statement may outlive its
transaction, session settings must not stick to a server connection other clients get next, and LISTEN needs a
direct connection of its own. The pooler keeps the server connections within its pool whatever the clients.
"""

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from google.protobuf import json_format

from matcha.conductor.app import build_conductor_service
from matcha.conductor.settings import ConductorSettings
from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.embedding.store import SEARCH_SERVER_SETTINGS
from matcha.review.app import assemble_review_service
from matcha.review.settings import ReviewSettings
from matcha.review.v1 import review_pb2, review_pb2_grpc
from matcha.runtime.database import Database, load_migrations
from matcha.runtime.settings import ServiceSettings, load_settings
from tests.deploy.pgbouncer import PgBouncer, running_pgbouncer
from tests.review.conftest import REVIEWER, eventually, write_service_token
from tests.review.test_review_resume import REVIEWED_COPY_PLAN, approve, start_run, wait_for_run
from tests.support import free_port

POOL_SIZE = 3
# Far longer than the test waits for a wake-up: only a notification can wake the waiters in time.
POLL_SECONDS = 60.0


@pytest.fixture
async def pooled_role(postgres_url) -> AsyncIterator[str]:
    """The role the services log in with through PgBouncer: its sessions in pg_stat_activity are the pool's."""
    role = f"pooled_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
        yield role
    finally:
        await admin.close()


@pytest.fixture
def pgbouncer(postgres_url, pooled_role) -> Iterator[PgBouncer]:
    with running_pgbouncer(postgres_url, pool_size=POOL_SIZE, users=[pooled_role]) as pooler:
        yield pooler


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


class ServerSessions:
    """Samples, while work runs, how many server sessions the pooled role holds on PostgreSQL."""

    def __init__(self, admin_url: str, role: str) -> None:
        self._admin_url = admin_url
        self._role = role
        self.most = 0
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "ServerSessions":
        connection = await asyncpg.connect(self._admin_url)

        async def sample() -> None:
            try:
                while True:
                    count = await connection.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", self._role
                    )
                    self.most = max(self.most, count)
                    await asyncio.sleep(0.02)
            finally:
                await connection.close()

        self._task = asyncio.create_task(sample())
        return self

    async def __aexit__(self, *exc_info) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_session_settings_hold_in_transactions_and_never_stick_to_the_pools_server_connections(
    pgbouncer, pooled_role, isolated_database
):
    pooled_url = pgbouncer.url(pooled_role, database_name(isolated_database))
    # What PgBouncer does with a session setting sent at connection: it refuses the connection.
    with pytest.raises(asyncpg.ProtocolViolationError, match="unsupported startup parameter"):
        await asyncpg.connect(pooled_url, server_settings={"synchronous_commit": "off"})

    database = Database(
        pooled_url, server_settings=SEARCH_SERVER_SETTINGS, session_url=isolated_database, transaction_pooler=True
    )
    await database.connect([])
    try:
        for _ in range(5):
            async with database.transaction() as connection:
                assert await connection.fetchval("SHOW hnsw.ef_search") == SEARCH_SERVER_SETTINGS["hnsw.ef_search"]
        # Another client holds every server connection of the pool at once: none kept the setting.
        others = [await asyncpg.connect(pooled_url, statement_cache_size=0) for _ in range(POOL_SIZE)]
        try:
            seen = set()
            for other in others:
                await other.execute("BEGIN")
                seen.add(await other.fetchval("SELECT current_setting('hnsw.ef_search', true)"))
            assert SEARCH_SERVER_SETTINGS["hnsw.ef_search"] not in seen
        finally:
            for other in others:
                await other.close()
    finally:
        await database.close()


async def test_processes_starting_together_apply_each_migration_once_through_the_pooler(
    pgbouncer, pooled_role, isolated_database
):
    migrations = load_migrations("conductor", "matcha.conductor.migrations")
    pooled_url = pgbouncer.url(pooled_role, database_name(isolated_database))
    # More processes than server connections: those waiting for the migration lock queue in PgBouncer.
    databases = [
        Database(pooled_url, pool_size=2, session_url=isolated_database, transaction_pooler=True)
        for _ in range(POOL_SIZE + 3)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(database.connect(migrations) for database in databases)), 60)
    finally:
        for database in databases:
            await database.close()
    admin = await asyncpg.connect(isolated_database)
    try:
        applied = await admin.fetch(
            "SELECT version, count(*) AS times FROM matcha_schema_migrations WHERE component = 'conductor' "
            "GROUP BY version ORDER BY version"
        )
    finally:
        await admin.close()
    assert [(row["version"], row["times"]) for row in applied] == [(m.version, 1) for m in migrations]


async def test_a_reviewed_run_completes_through_pgbouncer_and_wakes_up_by_notification(
    pgbouncer,
    pooled_role,
    isolated_database,
    postgres_url,
    serve,
    connect,
    issuer,
    state_dir,
    tmp_path,
    tenant,
):
    pooled_url = pgbouncer.url(pooled_role, database_name(isolated_database))
    through_pgbouncer = {
        "database_url": pooled_url,
        "database_session_url": isolated_database,
        "database_transaction_pooler": True,
    }
    review_port, conductor_port = free_port(), free_port()
    conductor_config = ConductorSettings(
        **through_pgbouncer,
        state_dir=state_dir,
        listen_address=f"127.0.0.1:{conductor_port}",
        conductor_endpoints={"matcha.review.v1.ReviewService": f"127.0.0.1:{review_port}"},
        conductor_lease_seconds=2.0,
        conductor_poll_seconds=POLL_SECONDS,
    )
    review_config = ReviewSettings(
        **through_pgbouncer,
        state_dir=state_dir,
        listen_address=f"127.0.0.1:{review_port}",
        review_conductor_address=f"127.0.0.1:{conductor_port}",
        review_publish_dir=tmp_path / "published",
        review_service_tokens_dir=tmp_path / "tokens",
        review_delivery_poll_seconds=POLL_SECONDS,
    )
    review_config.tokens_dir.mkdir()
    write_service_token(issuer, review_config.tokens_dir, tenant)
    # Each service applies its migrations (and its access ledger's) through the pooler at start. Review first:
    # the conductor asks it for its clearance as it starts.
    async with (
        ServerSessions(postgres_url, pooled_role) as sessions,
        serve(assemble_review_service(review_config).definition, review_config) as review_server,
        serve(build_conductor_service(conductor_config), conductor_config) as conductor_server,
    ):
        analyst = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant, subject="ana"))
        run = await start_run(analyst, REVIEWED_COPY_PLAN, text="Our walking shoes are here.")
        waiting = await wait_for_run(analyst, run.id, states=(conductor_pb2.RUN_STATE_WAITING,))
        item_id = json_format.MessageToDict(waiting.steps[0].output)

        # The notifications' connections are direct sessions, not the pool's.
        listeners = await eventually(lambda: listening_roles(postgres_url, database_name(isolated_database)))
        assert pooled_role not in listeners

        watch = analyst.WatchRun(conductor_pb2.WatchRunRequest(run_id=run.id))
        rita = review_pb2_grpc.ReviewServiceStub(connect(review_server, tenant, roles=REVIEWER, subject="rita"))
        item = (await rita.Get(review_pb2.GetRequest(item_id=item_id))).item
        decided = time.monotonic()
        await rita.Decide(approve(item))
        # Decision -> outbox (review's LISTEN) -> signal -> run resumed (conductor's LISTEN) -> event.
        async for reply in watch:
            if reply.event.run_state == conductor_pb2.RUN_STATE_SUCCEEDED:
                break
        woken_after = time.monotonic() - decided
        assert woken_after < 10, f"the run finished {woken_after:.1f} s after the decision: polled, not woken"

        finished = await wait_for_run(analyst, run.id)
        assert json_format.MessageToDict(finished.outputs)["status"] == "REVIEW_STATUS_APPROVED"
        # The audit chain is read with a cursor, which prepares a named statement in its transaction.
        auditor = conductor_pb2_grpc.ConductorServiceStub(connect(conductor_server, tenant, roles=("auditor",)))
        for _ in range(3):
            verified = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest())
            assert verified.intact and verified.records_checked > 0
    assert 1 <= sessions.most <= POOL_SIZE, f"{sessions.most} server sessions for a pool of {POOL_SIZE}"


async def listening_roles(admin_url: str, database: str) -> set[str]:
    admin = await asyncpg.connect(admin_url)
    try:
        rows = await admin.fetch(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN %'", database
        )
    finally:
        await admin.close()
    return {row["usename"] for row in rows}


# One process's work with a cursor, which prepares a named statement inside its transaction and leaves it on the
# server connection (asyncpg closes it later, from wherever its next statement lands).
CURSOR_PROCESS = """
import asyncio, sys
from matcha.runtime.database import Database

async def main(pooled_url, session_url):
    database = Database(pooled_url, pool_size=1, session_url=session_url, transaction_pooler=True)
    await database.connect([])
    async with database.transaction() as connection:
        assert [row[0] async for row in connection.cursor("SELECT generate_series(1, 3)")] == [1, 2, 3]
    await database.close()

asyncio.run(main(*sys.argv[1:]))
"""


def test_processes_numbering_their_statements_alike_do_not_collide_on_a_shared_server_connection(
    postgres_url, pooled_role, isolated_database
):
    """Every process numbers its statements from 1: the second gets the server connection the first left its
    statement on (a pool of 1), and would be refused with "prepared statement already exists"."""
    with running_pgbouncer(postgres_url, pool_size=1, users=[pooled_role]) as pooler:
        pooled_url = pooler.url(pooled_role, database_name(isolated_database))
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", CURSOR_PROCESS, pooled_url, isolated_database],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr[-2000:]


def test_a_service_behind_a_pooler_without_a_direct_url_refuses_to_start(monkeypatch, postgres_url):
    """Its notifications would silently stop: LISTEN through a transaction pooler hears nothing."""
    monkeypatch.setenv("MATCHA_DATABASE_URL", postgres_url)
    monkeypatch.setenv("MATCHA_DATABASE_TRANSACTION_POOLER", "true")
    monkeypatch.delenv("MATCHA_DATABASE_SESSION_URL", raising=False)
    with pytest.raises(SystemExit, match="MATCHA_DATABASE_SESSION_URL"):
        load_settings(ServiceSettings)
    monkeypatch.setenv("MATCHA_DATABASE_SESSION_URL", postgres_url)
    assert load_settings(ServiceSettings).database_session_url == postgres_url
