"""Fault injection: services on a PostgreSQL of their own that a test may restart, capabilities behind a
recording proxy that a test may cut."""

import shutil
import uuid
from collections.abc import Iterator

import pytest

from matcha.launcher.postgres import EmbeddedPostgres
from tests.conductor.conftest import conductor_settings, embedding_proxy, isolated_database  # noqa: F401 (fixtures)
from tests.review.conftest import review, review_for, review_server, review_settings, start_review  # noqa: F401


@pytest.fixture
def restartable_postgres(state_dir) -> Iterator[EmbeddedPostgres]:
    """A server of its own, kept on disk across `stop()` and `start()` (same socket, same URL)."""
    data_dir = state_dir / f"faults-{uuid.uuid4().hex[:8]}" / "postgres"
    postgres = EmbeddedPostgres(data_dir)
    postgres.start()
    yield postgres
    postgres.stop()
    shutil.rmtree(data_dir.parent, ignore_errors=True)
