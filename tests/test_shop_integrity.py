"""Each order write happens once however many identical requests arrive at the same moment, and
the action server answers only callers that present ACTION_SERVER_TOKEN.

Against real parts: a PostgreSQL server (bot/engines/postgres.py) shared by two `python -m actions`
processes (one of them with two workers) that get action calls as Rasa sends them; the shop's
functions in threads on SQLite; the CLI as an operator starts it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, List

import httpx
import pytest
import rasa
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import read_endpoint_config
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from actions import db, shop
from actions.models import OPEN, Order, Refund, Return, Ticket, reference
from actions.server import TOKEN_VARIABLE
from bot.supervisor import Service, Supervisor
from tests.bot_texts import said
from tests.conftest import ROOT, free_port
from tests.listeners import listening_addresses

TOKEN = "integrity-test-secret"
SILENT_BEFORE_WRITING_S = 8  # longer than Sanic's default keep-alive timeout (5 s)
JANE, MIKE = "jane.doe@example.com", "mike.chen@example.com"
DOMAIN = Domain.load(str(ROOT / "domain.yml"))
CANCEL = {"order_id": "100234", "email": JANE, "confirm_cancel": True}  # processing, $76.00
RETURN = {"order_id": "55821", "email": MIKE, "product": "electric kettle", "return_reason": "it leaks"}
RACERS = 20
VERIFIED_IN = "verified_conversation"  # actions.common.VERIFIED_IN: the conversation that verified the email


def environment(**variables: str) -> Dict[str, str]:
    """This process's environment without the action server's settings, plus `variables`."""
    base = {k: v for k, v in os.environ.items() if k not in (TOKEN_VARIABLE, "ACTIONS_HOST", db.DATABASE_URL_VARIABLE)}
    return {**base, "RASA_TELEMETRY_ENABLED": "false", **variables}


def action_server(name: str, port: int, env: Dict[str, str], *flags: str, host: str = "127.0.0.1") -> Service:
    return Service(
        name,
        [sys.executable, "-m", "actions", "--port", str(port), *flags],
        f"http://{host}:{port}/health",
        env=env,
        cwd=ROOT,
    )


def action_call(action: str, sender: str, slots: Dict, said: str = "yes", intent: str = "affirm") -> Dict:
    """The JSON Rasa posts to /webhook (rasa.core.actions.action.RemoteAction._action_call_format)
    for a conversation with `slots` filled whose user just said `said`; an email in `slots` is one
    this conversation verified, as the forms' validators record it."""
    if "email" in slots:
        slots = {**slots, VERIFIED_IN: sender}
    parsed = {"text": said, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    events = [
        ActionExecuted("action_listen"),
        UserUttered(said, parsed["intent"], [], {**parsed, "intent_ranking": [parsed["intent"]]}),
        *(SlotSet(name, value) for name, value in slots.items()),
    ]
    tracker = DialogueStateTracker.from_events(sender, events, slots=DOMAIN.slots)
    return {
        "next_action": action,
        "sender_id": sender,
        "tracker": tracker.current_state(EventVerbosity.ALL),
        "version": rasa.__version__,
        "domain": DOMAIN.as_dict(),
    }


def count(url: str, model, **where) -> int:
    with db.transaction(url) as session:
        return session.scalar(select(func.count()).select_from(model).filter_by(**where))


@pytest.fixture(scope="module")
def shared_shop(postgres, tmp_path_factory) -> Iterator[Dict]:
    """Two action servers on one empty PostgreSQL shop: the first listens where ACTIONS_HOST says,
    the second (two workers) where --host says although ACTIONS_HOST says otherwise."""
    url = postgres.database("shared_shop")
    env = environment(**{db.DATABASE_URL_VARIABLE: url, TOKEN_VARIABLE: TOKEN, "ACTIONS_HOST": "127.0.0.2"})
    ports = [free_port(), free_port()]
    supervisor = Supervisor(tmp_path_factory.mktemp("shared-shop-servers"))
    try:
        supervisor.start(action_server("actions-a", ports[0], env, host="127.0.0.2"), timeout_s=60)
        supervisor.start(
            action_server("actions-b", ports[1], env, "--host", "127.0.0.1", "--workers", "2"), timeout_s=60
        )
        yield {
            "url": url,
            "ports": ports,
            "supervisor": supervisor,
            "webhooks": [f"http://127.0.0.2:{ports[0]}/webhook", f"http://127.0.0.1:{ports[1]}/webhook"],
        }
    finally:
        supervisor.stop(grace_s=5)


@pytest.fixture(scope="module")
def lone_server(tmp_path_factory) -> Iterator[int]:
    """An action server started with neither --host nor ACTIONS_HOST; its port."""
    port = free_port()
    shop_url = f"sqlite:///{tmp_path_factory.mktemp('lone-shop') / 'shop.db'}"
    supervisor = Supervisor(tmp_path_factory.mktemp("lone-server"))
    try:
        supervisor.start(
            action_server("actions", port, environment(**{TOKEN_VARIABLE: TOKEN, db.DATABASE_URL_VARIABLE: shop_url})),
            timeout_s=60,
        )
        yield port
    finally:
        supervisor.stop(grace_s=5)


def test_identical_calls_at_once_across_two_servers_write_once(shared_shop, tmp_path, monkeypatch):
    """20 cancels of one order, 20 returns of one item and 5 hand-offs of one conversation, posted
    at the same moment to both servers (three processes) with the header that Rasa builds from
    endpoints.yml: every call is answered 200 with the first call's result, each written once."""
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    endpoints = []
    for i, webhook in enumerate(shared_shop["webhooks"]):
        path = tmp_path / f"endpoints-{i}.yml"
        path.write_text(
            yaml.safe_dump(
                {"action_endpoint": {"url": webhook, "headers": {"Authorization": "Bearer ${ACTION_SERVER_TOKEN}"}}}
            )
        )
        endpoints.append(read_endpoint_config(str(path), "action_endpoint"))
    assert endpoints[0].headers == {"Authorization": f"Bearer {TOKEN}"}
    calls = (
        [("action_cancel_order", f"cancel-{i}", CANCEL) for i in range(RACERS)]
        + [("action_start_return", f"return-{i}", RETURN) for i in range(RACERS)]
        + [("action_human_handoff", "handoff", {"email": JANE})] * 5
    )

    async def post_all() -> List[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post(endpoints[i % 2].url, json=action_call(*call), headers=endpoints[i % 2].headers)
                    for i, call in enumerate(calls)
                )
            )

    replies = asyncio.run(post_all())
    assert [r.status_code for r in replies] == [200] * len(calls), [r.text[:300] for r in replies if r.is_error]
    texts = [" ".join(said(m, slots) for m in r.json()["responses"]) for r, (_, _, slots) in zip(replies, calls)]
    cancels, returns, handoffs = texts[:RACERS], texts[RACERS : 2 * RACERS], texts[2 * RACERS :]

    assert sum(t.startswith("Done: order 100234 is cancelled. Your refund of $76.00") for t in cancels) == 1, cancels
    assert sum(t == "Order 100234 is already cancelled; the refund of $76.00 is on its way." for t in cancels) == 19
    url = shared_shop["url"]
    assert count(url, Order, number="100234", status="cancelled") == 1
    assert count(url, Refund, order_number="100234") == 1

    with db.transaction(url) as session:
        [created] = session.scalars(select(Return).filter_by(order_number="55821")).all()
        refunds = session.scalars(select(Refund).filter_by(order_number="55821")).all()
        assert [(r.return_id, r.amount_cents, r.status) for r in refunds] == [(created.id, 3500, "awaiting_return")]
    assert sum(t.startswith("Your return for the electric kettle is registered") for t in returns) == 1, returns
    assert (
        sum(
            t == f"A return for the electric kettle already exists: its reference is {created.reference}."
            for t in returns
        )
        == 19
    )
    assert all(created.reference in t for t in returns)

    with db.transaction(url) as session:
        [ticket] = session.scalars(select(Ticket).filter_by(conversation_id="handoff")).all()
    assert ticket.status == OPEN and all(f"your ticket number is {ticket.reference}" in t for t in handoffs), handoffs
    logs = "".join(shared_shop["supervisor"].tail(name, lines=1000) for name in ("actions-a", "actions-b"))
    assert "ERROR" not in logs and "Traceback" not in logs


def test_the_listening_address_is_the_flag_else_actions_host_else_localhost(shared_shop, lone_server):
    assert listening_addresses(lone_server) == {"127.0.0.1"}
    assert listening_addresses(shared_shop["ports"][0]) == {"127.0.0.2"}  # ACTIONS_HOST
    assert listening_addresses(shared_shop["ports"][1]) == {"127.0.0.1"}  # --host over ACTIONS_HOST


def test_identical_writes_in_threads_on_sqlite_wait_for_each_other(tmp_path, monkeypatch):
    """BEGIN IMMEDIATE: without it, two of these transactions that read and then write make SQLite
    answer one of them "database is locked" at once, a BackendUnavailable for the customer."""
    monkeypatch.setenv(db.DATABASE_URL_VARIABLE, f"sqlite:///{tmp_path / 'shop.db'}")
    db.sessions()  # the schema and demo data, before the race
    writes: List[Callable[[], shop.Outcome]] = (
        [lambda: shop.cancel_order("100234", JANE)] * RACERS
        + [lambda: shop.start_return("55821", MIKE, "kettle", "it leaks")] * RACERS
        + [lambda: shop.change_address("48213", MIKE, "7 Oak Avenue, Portland, OR 97201")] * 5
        + [lambda: shop.open_ticket("handoff", "help")] * 5
    )
    start = threading.Barrier(len(writes))

    def at_once(write: Callable[[], shop.Outcome]) -> shop.Outcome:
        start.wait()
        return write()

    with ThreadPoolExecutor(len(writes)) as pool:
        outcomes = list(pool.map(at_once, writes))

    groups = [outcomes[:RACERS], outcomes[RACERS : 2 * RACERS], outcomes[2 * RACERS : -5], outcomes[-5:]]
    for group in groups:
        assert [o.done_now for o in group].count(True) == 1, group
        assert len({(o.reference, o.detail) for o in group}) == 1, group
    assert count(None, Refund, order_number="100234") == 1
    assert count(None, Return) == 1 and count(None, Refund, order_number="55821") == 1
    assert count(None, Ticket) == 1


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])  # slow: PostgreSQL
def test_the_database_refuses_a_second_effect_itself(backend, request, tmp_path, monkeypatch):
    """The last line of defence, should a write ever skip its lock: a second cancellation refund,
    a second refund for a return and a second open ticket of a conversation are refused."""
    url = (
        f"sqlite:///{tmp_path / 'shop.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres").database("second_effect")
    )
    monkeypatch.setenv(db.DATABASE_URL_VARIABLE, url)
    shop.start_return("77310", JANE, "running shoes", "too small")
    shop.start_return("77310", JANE, "socks", "too small")  # two returns of one order: two refunds
    shop.cancel_order("100234", JANE)
    shop.open_ticket("c-1", "help")
    with db.transaction() as session:
        session.scalars(select(Ticket)).one().status = "closed"
        first_return = session.scalars(select(Return.id).order_by(Return.id)).first()
    shop.open_ticket("c-1", "help again")  # a new ticket once the first is closed
    duplicates = [
        Refund(order_number="100234", amount_cents=1, status="pending"),
        Refund(order_number="77310", return_id=first_return, amount_cents=1, status="awaiting_return"),
        Ticket(conversation_id="c-1", summary="again"),
    ]
    for duplicate in duplicates:
        with pytest.raises(IntegrityError):
            with db.transaction() as session:
                session.add(duplicate)
    assert count(url, Refund, order_number="77310") == 2 and count(url, Ticket, status=OPEN) == 1


def test_a_database_made_before_the_unique_indexes_gets_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    added = {"one_refund_per_return", "one_cancellation_refund_per_order", "one_open_ticket_per_conversation"}
    engine = db.make_engine(url)
    with engine.begin() as connection:
        for name in added:
            connection.exec_driver_sql(f"DROP INDEX {name}")
    engine.dispose()
    engine = db.make_engine(url)
    assert added <= {index["name"] for table in ("refunds", "tickets") for index in inspect(engine).get_indexes(table)}
    engine.dispose()


def test_a_write_that_loses_a_race_to_the_unique_index_answers_with_the_winner(postgres, monkeypatch):
    """A hand-off has no row to lock before it inserts: another transaction inserts the
    conversation's open ticket while ours waits on the index; ours then gets the first ticket."""
    url = postgres.database("lost_race")
    monkeypatch.setenv(db.DATABASE_URL_VARIABLE, url)
    db.sessions(url)
    engine = create_engine(url, future=True)
    try:
        with Session(engine, future=True) as winner:
            first = Ticket(conversation_id="c-race", summary="first")
            winner.add(first)
            winner.flush()
            first.reference = winner_reference = reference("TCK", first.id)
            winner.flush()
            with ThreadPoolExecutor(1) as pool:
                loser = pool.submit(shop.open_ticket, "c-race", "second")
                assert _statement_waiting_for_a_lock(engine).startswith("INSERT INTO tickets")
                winner.commit()
                outcome = loser.result(timeout=30)
    finally:
        engine.dispose()
    assert outcome == shop.Outcome(winner_reference, False)
    assert count(url, Ticket, conversation_id="c-race") == 1


ORDER_WRITES = {
    "cancel": ("100234", lambda: shop.cancel_order("100234", JANE)),
    "return": ("55821", lambda: shop.start_return("55821", MIKE, "kettle", "it leaks")),
    "address": ("48213", lambda: shop.change_address("48213", MIKE, "7 Oak Avenue, Portland, OR 97201")),
}


@pytest.mark.parametrize("write", ORDER_WRITES)
def test_an_order_write_locks_the_order_before_it_reads_it(write, postgres, monkeypatch):
    """On PostgreSQL the write's first statement is SELECT ... FOR UPDATE of the order: it waits
    while another transaction holds the order, and reads the order only once that one ended."""
    url = postgres.database(f"lock_{write}")
    monkeypatch.setenv(db.DATABASE_URL_VARIABLE, url)
    db.sessions(url)
    number, operation = ORDER_WRITES[write]
    engine = create_engine(url, future=True)
    try:
        with Session(engine, future=True) as holder:
            holder.execute(select(Order).filter_by(number=number).with_for_update())
            with ThreadPoolExecutor(1) as pool:
                writing = pool.submit(operation)
                waiting = _statement_waiting_for_a_lock(engine)
                holder.rollback()
                assert writing.result(timeout=30).done_now
    finally:
        engine.dispose()
    assert waiting.startswith("SELECT orders.") and waiting.endswith("FOR UPDATE"), waiting


def _statement_waiting_for_a_lock(engine, timeout_s: float = 20) -> str:
    """The SQL of the first statement seen waiting for another transaction's lock in this database."""
    deadline = time.monotonic() + timeout_s
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.scalar(
                text(
                    "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            connection.rollback()  # a fresh snapshot of pg_stat_activity next time
            if waiting:
                return " ".join(waiting.split())
            time.sleep(0.05)
    raise AssertionError(f"no statement waited for a lock within {timeout_s} s")


def test_database_failures_name_no_parameters_or_quoted_values(postgres, monkeypatch):
    """hide_parameters=True and a BackendUnavailable message without the driver's quoted values:
    a conversation's summary and email never reach the action server's log this way."""
    url = postgres.database("failures")
    monkeypatch.setenv(db.DATABASE_URL_VARIABLE, url)
    with pytest.raises(shop.BackendUnavailable) as failed:  # too long for tickets.conversation_id
        shop.open_ticket("c" * 300, "customer: my card 4111 1111 1111 1111 was charged twice", JANE)
    message = str(failed.value)
    assert "open_ticket" in message and "DataError" in message and "SQLSTATE 22001" in message
    assert "4111" not in message and JANE not in message and "ccccc" not in message
    assert "4111" not in str(failed.value.__cause__) and JANE not in str(failed.value.__cause__)

    duplicate = IntegrityError(
        "INSERT INTO tickets ...",
        {"email": JANE},
        Exception(
            'duplicate key value violates unique constraint "one_open_ticket_per_conversation"\n'
            "DETAIL:  Key (conversation_id)=(c-secret) already exists."
        ),
    )
    assert shop.describe_failure(duplicate) == "IntegrityError (Exception)"
    down = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/shop", future=True)
    with pytest.raises(OperationalError) as refused:
        down.connect()
    assert "Connection refused" in shop.describe_failure(refused.value)


WEBHOOK_CALL = action_call("action_answer_faq", "auth", {}, "when are you open?", "faq_opening_hours")


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"}]
)
def test_calls_without_the_token_are_refused(lone_server, headers):
    base = f"http://127.0.0.1:{lone_server}"
    for reply in (
        httpx.post(f"{base}/webhook", json=WEBHOOK_CALL, headers=headers),
        httpx.get(f"{base}/actions", headers=headers),
    ):
        assert reply.status_code == 401
        assert "Authorization: Bearer <ACTION_SERVER_TOKEN>" in reply.json()["error"]
        assert TOKEN not in reply.text and reply.headers["WWW-Authenticate"] == "Bearer"


def test_health_is_open_and_the_token_opens_the_rest(lone_server):
    base, auth = f"http://127.0.0.1:{lone_server}", {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    assert {"name": "action_cancel_order"} in httpx.get(f"{base}/actions", headers=auth).json()
    reply = httpx.post(f"{base}/webhook", json=WEBHOOK_CALL, headers=auth)
    assert reply.status_code == 200 and "Monday" in said(reply.json()["responses"][0])


def test_a_call_written_seconds_after_connecting_is_answered(lone_server):
    """Rasa connects for every action call and, under load, may write the call seconds later: the
    server waits for it. (Sanic's default closed a silent connection after 5 s; Rasa logged "Cannot
    write to closing transport" and the customer got an apology.)"""
    body = json.dumps(WEBHOOK_CALL).encode()
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    reply = b""
    with socket.create_connection(("127.0.0.1", lone_server), timeout=30) as connection:
        time.sleep(SILENT_BEFORE_WRITING_S)
        try:
            connection.sendall(head.encode() + body)
            while chunk := connection.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass  # closed by the server: `reply` says what came before
    assert reply.startswith(b"HTTP/1.1 200"), f"answered {reply[:200]!r} (empty: the server closed the connection)"
    assert "Monday" in said(json.loads(reply.partition(b"\r\n\r\n")[2])["responses"][0])


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_no_server(token):
    env = environment() if token is None else environment(**{TOKEN_VARIABLE: token})
    result = subprocess.run(
        [sys.executable, "-m", "actions", "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ACTION_SERVER_TOKEN is not set" in result.stderr
    assert "export ACTION_SERVER_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')" in result.stderr
    assert "Authorization: Bearer ${ACTION_SERVER_TOKEN}\n" in result.stderr and "endpoints.yml" in result.stderr
