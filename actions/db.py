"""The shop's database: an engine from SHOP_DATABASE_URL, the schema, the demo data, transactions.

`SHOP_DATABASE_URL` takes a SQLite or PostgreSQL SQLAlchemy URL (e.g. postgresql://user:pw@host/shop);
the default is `sqlite:///shop.db`, a file in the directory the action server starts in (the project's
root under `make run`). The schema is created and actions/seed.yml loaded on first use, idempotently,
by one process at a time (several action servers and workers may share a database).

Writes lock what they read, so that two identical requests at the same moment do the work once:
`transaction(write=True)` starts SQLite's transaction with BEGIN IMMEDIATE (writers queue for up to
SQLITE_BUSY_TIMEOUT_S instead of failing), and shop.py reads PostgreSQL rows with FOR UPDATE.
The engine never puts SQL parameters (customers' emails, messages) in logs or error messages.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Dict, Iterator, Optional

import yaml
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from actions.models import Base, Customer, Order, OrderItem

logger = logging.getLogger(__name__)

DATABASE_URL_VARIABLE = "SHOP_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///shop.db"
SEED_FILE = Path(__file__).with_name("seed.yml")
DIALECTS = ("sqlite", "postgresql")  # the ones SQLAlchemy creates models.py's partial unique indexes on
SQLITE_BUSY_TIMEOUT_S = 10  # a write waits its turn that long: transactions take milliseconds
WRITE = "shop_write"  # the execution option that marks a transaction that will write
SCHEMA_LOCK = 50550001  # the PostgreSQL advisory lock held while one process creates the schema and seeds

_sessions: Dict[str, sessionmaker] = {}
_lock = threading.Lock()


def database_url() -> str:
    return os.environ.get(DATABASE_URL_VARIABLE) or DEFAULT_DATABASE_URL


def make_engine(url: str) -> Engine:
    """An engine whose schema exists, with every index (also on a database an older version made), and
    whose demo data is loaded: in one transaction that other processes doing the same wait for."""
    engine = create_engine(url, future=True, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name not in DIALECTS:
        raise ArgumentError(
            f"{DATABASE_URL_VARIABLE} names a {engine.dialect.name} database; the shop runs on "
            f"{' or '.join(DIALECTS)} only (it relies on their partial unique indexes)"
        )
    if engine.dialect.name == "sqlite":
        _begin_sqlite_explicitly(engine)
    with Session(engine, future=True) as session, session.begin():
        connection = session.connection(execution_options={WRITE: True})
        if engine.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK)))
        Base.metadata.create_all(connection)
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                index.create(connection, checkfirst=True)
        seed(session, SEED_FILE)
    return engine


def _begin_sqlite_explicitly(engine: Engine) -> None:
    """SQLAlchemy's recipe for pysqlite transactions: the driver's own BEGIN is turned off and ours
    emitted, BEGIN IMMEDIATE for a write. A plain (deferred) transaction that reads and then writes
    fails at once with "database is locked" when another one wrote meanwhile; an immediate one takes
    the write lock first, so a second writer waits and then reads what the first one wrote."""

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE) else "BEGIN")


def sessions(url: Optional[str] = None) -> sessionmaker:
    """One session factory per URL, its database prepared on first use."""
    url = url or database_url()
    with _lock:
        if url not in _sessions:
            _sessions[url] = sessionmaker(make_engine(url), future=True, expire_on_commit=False)
        return _sessions[url]


@contextmanager
def transaction(url: Optional[str] = None, write: bool = False) -> Iterator[Session]:
    """A session whose changes are committed together at the end, or not at all on an error.

    `write=True` for one that reads what it then changes: on SQLite it holds the write lock from the
    start (on PostgreSQL the reads lock their rows with FOR UPDATE).
    """
    with sessions(url)() as session, session.begin():
        if write:
            session.connection(execution_options={WRITE: True})
        yield session


def seed(session: Session, path: Path, today: Optional[date] = None) -> int:
    """Add the demo customers and orders of `path` that are missing; return how many orders."""
    today = today or date.today()
    data = yaml.safe_load(path.read_text())
    added = 0
    for entry in data["customers"]:
        customer = session.scalars(select(Customer).filter_by(email=entry["email"])).one_or_none()
        if customer is None:
            customer = Customer(name=entry["name"], email=entry["email"], phone=entry.get("phone"))
            session.add(customer)
        for spec in entry["orders"]:
            if session.get(Order, str(spec["number"])) is None:
                customer.orders.append(_order(spec, today))
                added += 1
    if added:
        logger.info("Seeded %d demo orders from %s", added, path)
    return added


def _order(spec: Dict, today: date) -> Order:
    def day(key: str, sign: int = -1) -> Optional[date]:
        return None if key not in spec else today + timedelta(days=sign * spec[key])

    return Order(
        number=str(spec["number"]),
        status=spec["status"],
        placed_on=day("placed_days_ago"),
        shipped_on=day("shipped_days_ago"),
        delivered_on=day("delivered_days_ago"),
        expected_on=day("expected_in_days", sign=1),
        shipping_address=spec["address"],
        carrier=spec.get("carrier"),
        tracking_number=spec.get("tracking_number"),
        items=[
            OrderItem(product=i["product"], quantity=i.get("quantity", 1), price_cents=round(i["price"] * 100))
            for i in spec["items"]
        ],
    )
