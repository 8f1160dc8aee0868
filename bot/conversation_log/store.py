"""The conversation log: Rasa's SQL tracker store, redacting personal data before it is saved.

`rasa run` creates the store from the `tracker_store:` section of endpoints.yml (a SQLite file by
default, PostgreSQL or any SQLAlchemy database by URL; $LOG_STORE_URL overrides it) and keeps every
event of every conversation, so a restarted bot continues each conversation where it stopped.
The review export and the report read the same database back with `read_events`.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.orm import sessionmaker

from bot.conversation_log.redaction import Redactor
from nlu.settings import endpoints_section

URL_VARIABLE = "LOG_STORE_URL"
DEFAULT_DB = "logs/conversations.db"
EVENTS = SQLTrackerStore.SQLEvent.__table__


class LogStoreError(RuntimeError):
    """The log store cannot be configured or opened."""


def database_url(
    url: Optional[str] = None,
    dialect: str = "sqlite",
    db: str = DEFAULT_DB,
    port: Optional[int] = None,
    username: Optional[str] = None,
    password: Optional[str] = None,
    query: Optional[Dict[str, Any]] = None,
) -> str:
    """The SQLAlchemy URL as Rasa builds it: `url` ($LOG_STORE_URL first) is a whole URL, or the host
    for dialect, db, port, username, password; with neither it is the SQLite file `db`."""
    host = os.environ.get(URL_VARIABLE) or url
    built = SQLTrackerStore.get_db_url(dialect, host, port, db, username, password, query=query)
    return built if isinstance(built, str) else built.render_as_string(hide_password=False)


@dataclass(frozen=True)
class LogStoreSettings:
    """Where the log is and how it is redacted, as `rasa run` reads them from endpoints.yml."""

    url: str
    redactor: Redactor

    @classmethod
    def load(cls, endpoints: str, url: Optional[str] = None) -> "LogStoreSettings":
        """The `tracker_store:` section of `endpoints` (with ${VARIABLES} substituted, as rasa run
        does); `url` (e.g. from --url) overrides its database."""
        section = endpoints_section(Path(endpoints), "tracker_store")
        keys = ("url", "dialect", "db", "port", "username", "password", "query")
        return cls(
            url or database_url(**{key: section[key] for key in keys if key in section}),
            Redactor.from_config(section.get("redact", True), section.get("extra_patterns")),
        )


class RedactingSQLTrackerStore(SQLTrackerStore):
    """`SQLTrackerStore` that replaces emails, phone, card numbers and IBANs in message texts by placeholders.

    Only the saved copy is redacted: the turn in progress (slot mappings, forms, custom actions)
    sees what the user typed, and slot values are saved as set, so a flow that asked for an email
    can use it in later turns. Configured in endpoints.yml:

        tracker_store:
          type: bot.conversation_log.store.RedactingSQLTrackerStore
          db: logs/conversations.db    # SQLite file; or url: postgresql://user:pw@host/db
          redact: true                 # false keeps texts as typed
          extra_patterns: {CUSTOMER_ID: "..."}  # more placeholders: name -> regex

    $LOG_STORE_URL, when set, names the database whatever `url:`, `dialect:` or `db:` say, as
    TRITON_URL does for the `triton:` section: the password stays out of endpoints.yml.
    """

    engine: sa.engine.Engine  # made by SQLTrackerStore, remade by _remake_engine

    def __init__(
        self,
        domain: Optional[Domain] = None,
        host: Optional[str] = None,
        dialect: str = "sqlite",
        db: str = DEFAULT_DB,
        redact: bool = True,
        extra_patterns: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> None:
        self.redactor = Redactor.from_config(redact, extra_patterns)
        self._saving: Dict[str, asyncio.Task] = {}  # conversation id -> its save in progress
        url = os.environ.get(URL_VARIABLE) or host
        if not url and dialect == "sqlite":
            Path(db).parent.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its folder
        try:
            super().__init__(domain, dialect=dialect, host=url, db=db, **kwargs)
        except (ImportError, AttributeError) as error:
            # Rasa would quietly fall back to an in-memory store (and lose every conversation) on these.
            raise LogStoreError(
                f"Cannot open the log store configured in endpoints.yml (tracker_store): {error}"
            ) from error
        self._remake_engine()

    def _remake_engine(self) -> None:
        """The engine made again like Rasa's, with two changes. SQLAlchemy writes a failed statement's
        parameters (message texts, emails) into its error, and Rasa logs that error: this engine leaves
        them out. A database restart kills the pooled connections, and Rasa answers a failed read with a
        fresh conversation in memory: this engine tests a pooled connection before it uses it. A SQLite
        file is kept in write-ahead-log mode through pooled connections (`_pooled_sqlite`)."""
        url = self.engine.url
        self.engine.dispose()
        sqlite_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        kwargs = _pooled_sqlite() if sqlite_file else create_engine_kwargs(url)
        self.engine = sa.create_engine(url, hide_parameters=True, pool_pre_ping=True, **kwargs)
        if sqlite_file:
            sa.event.listen(self.engine, "connect", _write_ahead_log)
        self.sessionmaker = sessionmaker(bind=self.engine)

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        """SQLTrackerStore._retrieve with its query built once (`_events`), not per call through the ORM.
        With the count in `_additional_events`, reading a 100-to-300-event conversation back from SQLite
        and saving one turn took 6.5 and 3.1 ms of CPU instead of 7.1 and 3.9 ms. A save of the
        conversation in progress is waited for: the socket.io channel has sent the turn's answers
        before it, and whoever read them may read the conversation next (Rasa's tracker API)."""
        saving = self._saving.get(sender_id)
        if saving is not None:
            await asyncio.wait([saving])  # its failure is its caller's to handle
        with self.session_scope() as session:
            rows = session.execute(_events(fetch_events_from_all_sessions), {"sender_id": sender_id})
            events = [json.loads(data) for (data,) in rows]
        if not self.domain or not events:
            return None
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """SQLTrackerStore.save with its database work in a worker thread. The commit waits for the
        disk (SQLite's file, or PostgreSQL's log): a sync on the 2-core VM takes 0.5 ms at p50 but 50 ms
        at p99 and up to 350 ms, and Rasa's event loop, which calls save, answered nobody meanwhile.
        Rasa holds the conversation's lock until save returns, so nothing changes the tracker meanwhile."""
        await self.stream_events(tracker)
        saving = self._saving[tracker.sender_id] = asyncio.ensure_future(
            asyncio.to_thread(self._insert_new_events, tracker)
        )
        try:
            await saving
        finally:
            if self._saving.get(tracker.sender_id) is saving:
                del self._saving[tracker.sender_id]

    def _insert_new_events(self, tracker: DialogueStateTracker) -> None:
        """SQLTrackerStore.save's rows: the events not stored yet, redacted, in one transaction."""
        with self.session_scope() as session:
            rows = [_row(tracker.sender_id, event.as_dict()) for event in self._additional_events(session, tracker)]
            if rows:
                session.execute(EVENTS.insert(), rows)
            session.commit()

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator[Event]:
        """The events of the tracker's session not stored yet, as SQLTrackerStore.save finds them
        (by counting the session's stored events), with message texts redacted."""
        stored = session.execute(_count(_events(False)), {"sender_id": tracker.sender_id}).scalar_one()
        for event in itertools.islice(tracker.events, stored, len(tracker.events)):
            data = event.as_dict()
            redacted = self.redactor.redact_event(data)
            yield event if redacted is data else Event.from_parameters(redacted)


def _row(sender_id: str, data: Dict[str, Any]) -> Dict[str, Any]:
    """An event's row in Rasa's `events` table, its columns filled as SQLTrackerStore.save fills them."""
    return {
        "sender_id": sender_id,
        "type_name": data.get("event"),
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get("name"),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


def _pooled_sqlite() -> Dict[str, Any]:
    """Engine settings for a SQLite file: connections kept open in a pool (SQLAlchemy 1.4 opens one per
    session), shared by the event loop and the savers' threads. When the last connection to a
    write-ahead log closes, SQLite checkpoints and removes it: three syncs more per save."""
    return {"poolclass": sa.pool.QueuePool, "connect_args": {"check_same_thread": False}}


def _write_ahead_log(connection: Any, _record: Any) -> None:
    """SQLite's write-ahead log for a new connection: a commit appends to one file and syncs it once,
    where the default rollback journal syncs it and the database several times (p50 0.5 ms against
    8 ms a commit on the 2-core VM, p99 9 against 32), and readers no longer wait for a writer. Still
    durable: every commit is synced (synchronous=FULL, SQLite's default)."""
    connection.execute("PRAGMA journal_mode=WAL")


@functools.lru_cache(maxsize=None)
def _events(all_sessions: bool) -> sa.sql.Select:
    """Rasa's query for a conversation's stored events (SQLTrackerStore._event_query), their JSON only,
    for the bound `sender_id`: those since its latest session start (all of them before any), or of
    every session. Built once, so SQLAlchemy compiles it once per database."""
    sender = EVENTS.c.sender_id == sa.bindparam("sender_id")
    query = sa.select(EVENTS.c.data).where(sender).order_by(EVENTS.c.id)
    if all_sessions:
        return query
    session_start = (
        sa.select(sa.func.max(EVENTS.c.timestamp))
        .where(sender, EVENTS.c.type_name == SessionStarted.type_name)
        .scalar_subquery()
    )
    return query.where(sa.or_(EVENTS.c.timestamp >= session_start, session_start.is_(None)))


@functools.lru_cache(maxsize=None)
def _count(query: sa.sql.Select) -> sa.sql.Select:
    return sa.select(sa.func.count()).select_from(query.order_by(None).subquery())


@dataclass(frozen=True)
class StoredEvent:
    sender_id: str
    data: Dict[str, Any]

    @property
    def type(self) -> str:
        return self.data.get("event", "")

    @property
    def timestamp(self) -> float:
        return float(self.data.get("timestamp") or 0.0)


def read_events(
    url: str,
    since: Optional[float] = None,
    until: Optional[float] = None,
    senders: Optional[Sequence[str]] = None,
    types: Optional[Sequence[str]] = None,
) -> List[StoredEvent]:
    """Stored events in the order they happened, optionally in [since, until) and of some senders/types."""
    query = sa.select(EVENTS.c.sender_id, EVENTS.c.data).order_by(EVENTS.c.id)
    if since is not None:
        query = query.where(EVENTS.c.timestamp >= since)
    if until is not None:
        query = query.where(EVENTS.c.timestamp < until)
    if senders is not None:
        query = query.where(EVENTS.c.sender_id.in_(list(senders)))
    if types is not None:
        query = query.where(EVENTS.c.type_name.in_(list(types)))
    location = sa.engine.make_url(url)
    if location.get_backend_name() == "sqlite" and not Path(location.database or "").is_file():
        raise LogStoreError(
            f"There is no conversation log at {location.database!r}: the bot writes it (tracker_store in "
            "endpoints.yml) relative to the directory it runs in. Run this there, or name the log with --url."
        )
    engine = sa.create_engine(url, hide_parameters=True)  # its errors leave out the sender ids asked for
    try:
        with engine.connect() as connection:
            rows = connection.execute(query).all()
    except sa.exc.SQLAlchemyError as error:
        raise LogStoreError(
            f"Cannot read the conversation log at {location!r}: {error.__class__.__name__}: "
            f"{getattr(error, 'orig', error)}. Check tracker_store in endpoints.yml, $LOG_STORE_URL or --url, "
            "and that the bot has logged conversations there."
        ) from error
    finally:
        engine.dispose()
    return [StoredEvent(sender_id, json.loads(data)) for sender_id, data in rows]
