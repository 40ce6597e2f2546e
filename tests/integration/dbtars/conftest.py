"""A throw-away db_tars on the MariaDB server, a SELECT-only user, and an importer harness.

Each ``tars_db`` is its own database (``tc_dbtars_<random>``) and its own user
(``tcro_<random>``, granted SELECT on that database and nothing else); both are dropped
after the test. Writers connect as root, like the framework's own services would.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa

from tarscascade.dbtars import DbTarsImporter, DbTarsSource, ImportOptions, Lease
from tarscascade.model import ChangeEvent
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.store import SqlStore
from tests.conftest import MYSQL_ADMIN_URL, _admin_engine
from tests.integration.dbtars.schema import SHAPES, ddl
from tests.integration.dbtars.writers import TarsWriters

pytestmark = pytest.mark.db


@dataclass
class TarsDb:
    name: str
    shape: str
    user: str
    password: str
    host: str
    port: int
    admin_user: str
    admin_password: str
    writers: list[TarsWriters] = field(default_factory=list)

    @property
    def ro_url(self) -> str:
        return f"mysql://{self.user}:{self.password}@{self.host}:{self.port}/{self.name}"

    def connect_admin(self) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.admin_user,
            password=self.admin_password,
            database=self.name,
            charset="utf8mb4",
        )

    def writer(self, **kw: Any) -> TarsWriters:
        w = TarsWriters(self.connect_admin, **kw)
        self.writers.append(w)
        return w


def _server() -> sa.URL:
    return sa.make_url(MYSQL_ADMIN_URL)


def create_tars_db(shape: str) -> TarsDb:
    url = _server()
    engine = _admin_engine(MYSQL_ADMIN_URL)
    try:
        engine.connect().close()
    except sa.exc.OperationalError as exc:
        engine.dispose()
        pytest.skip(f"MariaDB unreachable: {exc.orig}")
    tag = secrets.token_hex(5)
    db = TarsDb(
        name=f"tc_dbtars_{tag}",
        shape=shape,
        user=f"tcro_{tag}",
        password=secrets.token_hex(8),
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        admin_user=url.username or "root",
        admin_password=url.password or "",
    )
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {db.name} CHARACTER SET utf8")
        for stmt in ddl(shape):
            conn.exec_driver_sql(f"USE {db.name}")
            conn.exec_driver_sql(stmt)
        conn.exec_driver_sql(f"CREATE USER '{db.user}'@'%%' IDENTIFIED BY '{db.password}'")
        conn.exec_driver_sql(f"GRANT SELECT ON {db.name}.* TO '{db.user}'@'%%'")
    engine.dispose()
    return db


def drop_tars_db(db: TarsDb) -> None:
    for w in db.writers:
        w.close()
    engine = _admin_engine(MYSQL_ADMIN_URL)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP USER IF EXISTS '{db.user}'@'%%'")
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {db.name}")
    engine.dispose()


@pytest.fixture(params=SHAPES)
def tars_db(request: pytest.FixtureRequest) -> Iterator[TarsDb]:
    """A db_tars in each shape (db_tars.sql and TarsWeb-altered)."""
    db = create_tars_db(request.param)
    yield db
    drop_tars_db(db)


@pytest.fixture
def tars_db_sql() -> Iterator[TarsDb]:
    """A db_tars in the db_tars.sql shape only (tests not about the schema's shape)."""
    db = create_tars_db("sql")
    yield db
    drop_tars_db(db)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Harness:
    """A registry core over a store, and an importer driven tick by tick on a fake clock.

    The importer's schedule (P, S, F) runs on the fake clock, the database's clock is the
    real one: ``tick(advance)`` moves the schedule, then runs one importer step, and
    returns the change-log events it wrote.
    """

    P, S, F = 1.0, 5.0, 300.0

    def __init__(self, db: TarsDb, store_url: str, **options: Any) -> None:
        self.db = db
        self.store_url = store_url
        self.clock = FakeClock()
        self.options = ImportOptions(
            poll_interval=self.P,
            signature_interval=self.S,
            full_interval=self.F,
            clock=self.clock,
            **options,
        )
        self.store: SqlStore | None = None
        self.core: RegistryCore | None = None
        self.source: DbTarsSource | None = None
        self.importer: DbTarsImporter | None = None

    async def start(self) -> Harness:
        self.store = SqlStore.open(self.store_url)
        self.core = RegistryCore(self.store, RegistryOptions(node_timeout=0, reload_interval=0))
        await self.core.start()
        self.source = DbTarsSource(self.db.ro_url)
        self.source.check()
        lease = Lease(self.source, f"tarscascade.importer.{self.store.epoch}")
        self.importer = DbTarsImporter(self.core, self.source, lease, self.options)
        return self

    async def close(self) -> None:
        if self.importer is not None:
            await self.importer.aclose()
        if self.core is not None:
            await self.core.aclose()
        if self.source is not None:
            self.source.close()
        if self.store is not None:
            self.store.close()

    @property
    def imp(self) -> DbTarsImporter:
        assert self.importer is not None
        return self.importer

    @property
    def reg(self) -> RegistryCore:
        assert self.core is not None
        return self.core

    async def tick(self, advance: float | None = None) -> list[ChangeEvent]:
        assert self.store is not None
        self.clock.t += self.P if advance is None else advance
        before = self.store.current_revision()  # events anyone writes during the tick
        await self.imp.tick()
        return self.store.changes_since(before, 1_000_000)


@pytest.fixture
async def harness_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Callable[..., Any]]:
    made: list[Harness] = []

    async def make(db: TarsDb, store_url: str | None = None, **options: Any) -> Harness:
        url = store_url or f"sqlite:///{tmp_path_factory.mktemp('store') / 'store.db'}"
        h = Harness(db, url, **options)
        made.append(h)
        return await h.start()

    yield make
    for h in made:
        await h.close()
