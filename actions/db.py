"""The shop's database: an engine from SHOP_DATABASE_URL, the schema, the demo data, transactions.

`SHOP_DATABASE_URL` takes any SQLAlchemy URL (e.g. postgresql://user:pw@host/shop); the default is
`sqlite:///shop.db`, a file in the directory the action server starts in (the project's root under
`make run`). The schema is created and actions/seed.yml loaded on first use, idempotently.
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
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from actions.models import Base, Customer, Order, OrderItem

logger = logging.getLogger(__name__)

DATABASE_URL_VARIABLE = "SHOP_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///shop.db"
SEED_FILE = Path(__file__).with_name("seed.yml")

_sessions: Dict[str, sessionmaker] = {}
_lock = threading.Lock()


def database_url() -> str:
    return os.environ.get(DATABASE_URL_VARIABLE) or DEFAULT_DATABASE_URL


def make_engine(url: str) -> Engine:
    """An engine whose schema exists and whose demo data is loaded."""
    engine = create_engine(url, future=True, pool_pre_ping=True)
    Base.metadata.create_all(engine)
    with Session(engine, future=True) as session, session.begin():
        seed(session, SEED_FILE)
    return engine


def sessions(url: Optional[str] = None) -> sessionmaker:
    """One session factory per URL, its database prepared on first use."""
    url = url or database_url()
    with _lock:
        if url not in _sessions:
            _sessions[url] = sessionmaker(make_engine(url), future=True, expire_on_commit=False)
        return _sessions[url]


@contextmanager
def transaction(url: Optional[str] = None) -> Iterator[Session]:
    """A session whose changes are committed together at the end, or not at all on an error."""
    with sessions(url)() as session, session.begin():
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
        items=[OrderItem(product=i["product"], quantity=i.get("quantity", 1), price_cents=round(i["price"] * 100))
               for i in spec["items"]],
    )
