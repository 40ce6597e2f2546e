"""Shared fixtures. Databases: one suite over SQLite (a temp file), MariaDB and PostgreSQL.

Each session creates its own throwaway database on each server (``tc_test_<random>``) and
drops it at the end, so parallel runs and leftovers never collide; each test starts from
an empty schema. A server backend is skipped, with the reason, only when its server
cannot be reached. Admin URLs come from ``TC_TEST_MYSQL_URL`` / ``TC_TEST_PG_URL``.

Hypothesis: under ``CI=true`` (``.ci/run`` sets it) every property test runs derandomized and
without the example database, so CI runs the same examples every time and a random draw never
turns it red; locally the random profile explores, and a failure it finds becomes a pinned
``@example`` (``HYPOTHESIS_PROFILE`` picks a profile by name).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from hypothesis import settings

from tarscascade.store import SqlStore, schema
from tarscascade.store.engine import normalize_url

MYSQL_ADMIN_URL = os.environ.get("TC_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
PG_ADMIN_URL = os.environ.get("TC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
CONNECT_TIMEOUT_S = 5

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)


def _hypothesis_profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"


settings.load_profile(_hypothesis_profile())

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.db),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.db),
]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def _admin_engine(admin_url: str) -> sa.Engine:
    return sa.create_engine(
        normalize_url(admin_url),
        isolation_level="AUTOCOMMIT",  # CREATE/DROP DATABASE cannot run in a transaction
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        poolclass=sa.pool.NullPool,
    )


@pytest.fixture(scope="session")
def server_database(backend: str) -> Iterator[str | None]:
    """A fresh database on the backend's server for this session (None for SQLite)."""
    if backend == "sqlite":
        yield None
        return
    admin_url = MYSQL_ADMIN_URL if backend == "mariadb" else PG_ADMIN_URL
    engine = _admin_engine(admin_url)
    try:
        engine.connect().close()
    except sa.exc.OperationalError as exc:
        engine.dispose()
        shown = engine.url.render_as_string(hide_password=True)
        pytest.skip(f"{backend} server unreachable at {shown}: {str(exc.orig).strip()}")
    name = f"tc_test_{secrets.token_hex(6)}"
    with engine.connect() as conn:
        if backend == "mariadb":
            # latin1 on purpose: the tables must carry utf8mb4 themselves.
            conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET latin1")
        else:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield normalize_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            force = " WITH (FORCE)" if backend == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        engine.dispose()


@pytest.fixture
def db_url(
    backend: str, server_database: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database URL with no tarscascade tables yet; emptied again after the test."""
    if server_database is None:
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.db'}"
        return
    yield server_database
    engine = sa.create_engine(server_database, poolclass=sa.pool.NullPool)
    try:
        schema.metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture
def open_store(db_url: str) -> Iterator[Callable[[], SqlStore]]:
    """Open another SqlStore on the test's database (another 'registry'); all closed after."""
    opened: list[SqlStore] = []

    def factory() -> SqlStore:
        store = SqlStore.open(db_url)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], SqlStore]) -> SqlStore:
    return open_store()


@pytest.fixture
def raw(db_url: str) -> Iterator[sa.Engine]:
    """A plain engine for editing rows behind the store's back."""
    engine = sa.create_engine(normalize_url(db_url), poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()
