"""The load test's audit (loadtest/ledger.py) tells a lost event from a request the client gave up on.

The rows are written in Rasa's own `events` table (SQLTrackerStore's schema) in SQLite, the single
replica's conversation log; the audit reads it as it reads PostgreSQL's.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from bot.conversation_log.store import EVENTS
from bot.rasa_patches.action_failures import APOLOGY
from loadtest.ledger import Conversation, Failure, Ledger, audit


def log_with(tmp_path, rows) -> str:
    url = f"sqlite:///{tmp_path / 'conversations.db'}"
    engine = sa.create_engine(url)
    EVENTS.metadata.create_all(engine)
    with engine.begin() as connection:
        for sender, kind, text in rows:
            data = json.dumps({"event": kind, "text": text})
            connection.execute(EVENTS.insert().values(sender_id=sender, type_name=kind, timestamp=0, data=data))
    engine.dispose()
    return url


def test_a_clean_conversation_is_all_stored_once(tmp_path):
    ledger = Ledger({"rest:a": Conversation(["hello", "thanks"], ["Hi!", "You're welcome."])})
    url = log_with(tmp_path, [("rest:a", "user", "hello"), ("rest:a", "bot", "Hi!"), ("rest:a", "user", "thanks"),
                              ("rest:a", "bot", "You're welcome.")])  # fmt: skip
    result = audit(ledger, url)
    assert (result.lost, result.duplicated, result.unseen, result.out_of_order, result.errors) == (0, 0, 0, 0, 0)
    assert result.events_expected == result.events_stored == 4


def test_a_timed_out_message_and_its_late_answer_are_not_loss_or_duplicates(tmp_path):
    conversation = Conversation(["hello", "thanks"], ["Hi!"], [Failure(1, "ReadTimeout")])
    url = log_with(tmp_path, [("rest:a", "user", "hello"), ("rest:a", "bot", "Hi!"), ("rest:a", "user", "thanks"),
                              ("rest:a", "bot", "You're welcome.")])  # fmt: skip
    result = audit(Ledger({"rest:a": conversation}), url)
    assert (result.lost, result.duplicated, result.unseen, result.errors) == (0, 0, 1, 1)
    assert result.failures == {"ReadTimeout": 1}


def test_an_answered_message_missing_from_the_log_is_lost_and_a_second_copy_duplicated(tmp_path):
    ledger = Ledger({"rest:a": Conversation(["hello", "thanks"], ["Hi!", "You're welcome."])})
    url = log_with(tmp_path, [("rest:a", "user", "hello"), ("rest:a", "bot", "Hi!"), ("rest:a", "bot", "Hi!"),
                              ("rest:a", "bot", "You're welcome.")])  # fmt: skip
    result = audit(ledger, url)
    assert (result.lost, result.duplicated, result.unseen) == (1, 1, 0)


def test_messages_stored_in_another_order_are_counted(tmp_path):
    ledger = Ledger({"rest:a": Conversation(["hello", "thanks"], [])})
    url = log_with(tmp_path, [("rest:a", "user", "thanks"), ("rest:a", "user", "hello")])
    assert audit(ledger, url).out_of_order == 1


def test_the_ledger_survives_its_file(tmp_path):
    ledger = Ledger({"socketio:x": Conversation(["hi"], [], [Failure(0, "no answer within 60 s")])})
    ledger.save(tmp_path / "ledger.json")
    assert Ledger.load(tmp_path / "ledger.json") == ledger


def test_texts_are_compared_as_the_log_redacts_them(tmp_path):
    ledger = Ledger({"rest:a": Conversation(["it's jane.doe@example.com"], ["We'll write to jane.doe@example.com."])})
    url = log_with(tmp_path, [("rest:a", "user", "it's [EMAIL]"), ("rest:a", "bot", "We'll write to [EMAIL].")])
    result = audit(ledger, url)
    assert (result.lost, result.duplicated) == (0, 0)


def test_the_apology_for_a_failed_action_is_counted(tmp_path):
    ledger = Ledger({"rest:a": Conversation(["where is my order 12345?"], [APOLOGY])})
    url = log_with(tmp_path, [("rest:a", "user", "where is my order 12345?"), ("rest:a", "bot", APOLOGY)])
    assert audit(ledger, url).apologies == 1
