"""The conversation log end to end, on SQLite and on a real PostgreSQL: REST conversations with a
real Triton go into the redacting SQL tracker store, every event is kept across a restart of Rasa,
the review export lists the least confident messages first, and a reviewed export dropped into
data/ retrains a model that gives the corrected intents.

Each Rasa is configured as docs/operations.md tells a user to: SQLite by the tracker_store section of
endpoints.yml (with an extra pattern), PostgreSQL by $LOG_STORE_URL, and one short-lived Rasa with
`redact: false` and `url:` in the section.

A small bot of three intents (and one that only a button sends) keeps `rasa train` (twice) cheap;
it runs with this project's pipeline and log store, and repeats the email and phone a user leaves,
as the support bot does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import httpx
import pytest
import sqlalchemy as sa
import yaml

from bot import services
from bot.conversation_log.redaction import Redactor
from bot.supervisor import Service, Supervisor
from tests.conftest import FAST_NLU, RASA_TOKEN, ROOT, free_port, rasa, write_project

BACKENDS = ["sqlite", "postgresql"]
URL_VARIABLE = "LOG_STORE_URL"  # the name docs/operations.md gives it
SENDER = "alice"
EMAIL, CARD, PHONE = "jane.doe@example.com", "4111 1111 1111 1111", "+1 555 123 4567"
PRIVATE = f"my email is {EMAIL}, card {CARD}, call me on {PHONE}"
CONTACT = f'/share_contact{{"email": "{EMAIL}", "phone": "{PHONE}"}}'  # a button's payload
WILL_CONTACT = "Thanks! I'll write to {email} or call you on {phone}."  # the bot's answer to it
CUSTOMER_ID = "C-204815"
REFUND = f"please refund my customer account {CUSTOMER_ID}"
EXTRA_PATTERNS = {"CUSTOMER_ID": r"\bC-\d{6}\b"}  # as in endpoints.yml's comment
# Texts no intent of the small bot covers; the reviewer files each backend's family under an intent.
FAMILIES = {
    "sqlite": (["zebra umbrella violin", "zebra umbrella garden", "zebra umbrella rocket"], "goodbye"),
    "postgresql": (["purple tractor pillow", "purple tractor lantern", "purple tractor meadow"], "greet"),
}

DOMAIN = {
    "version": "3.1",
    "intents": ["greet", "goodbye", "order_status", "share_contact"],  # share_contact comes from a button only
    "entities": ["order_id", "email", "phone"],
    "slots": {
        entity: {
            "type": "text",
            "influence_conversation": False,
            "mappings": [{"type": "from_entity", "entity": entity}],
        }
        for entity in ("order_id", "email", "phone")
    },
    "responses": {
        "utter_greet": [{"text": "Hello! How can I help?"}],
        "utter_goodbye": [{"text": "Goodbye!"}],
        "utter_order_status": [{"text": "Order {order_id} is on its way."}],
        "utter_will_contact": [{"text": WILL_CONTACT}],
        "utter_default": [{"text": "Sorry, I didn't get that."}],
    },
    "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
}
NLU = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
    - hey
    - hello there
    - good morning
    - good evening
    - hey there
    - hi bot
    - greetings
    - howdy
- intent: goodbye
  examples: |
    - bye
    - goodbye
    - see you later
    - see you
    - bye bye
    - good night
    - talk to you later
    - farewell
    - have a nice day
    - cya
- intent: order_status
  examples: |
    - where is my order 12345
    - what is the status of order 55821
    - has my order 98765 shipped
    - track order 100234
    - when will order 44512 arrive
    - where is my package
    - my order hasn't arrived
    - order status please
    - can you check my order 77310
    - is order 23456 on its way
"""
RULES = {
    "version": "3.1",
    "rules": [
        {"rule": f"answer {intent}", "steps": [{"intent": intent}, {"action": action}]}
        for intent, action in [
            ("greet", "utter_greet"),
            ("goodbye", "utter_goodbye"),
            ("order_status", "utter_order_status"),
            ("share_contact", "utter_will_contact"),
            ("nlu_fallback", "utter_default"),
        ]
    ],
}


@dataclass
class Chat:
    """One backend's conversation: what was said, and the tracker before and after Rasa restarted."""

    url: str  # the database
    endpoints: str  # the project's endpoints file Rasa ran with
    env: Dict[str, str]  # the variables Rasa ran with on top of the test's environment
    sent: List[str]
    replies: List[str]
    before_restart: List[dict]
    after_restart: List[dict]
    reply_after_restart: List[str]
    events: List[dict]  # the whole conversation, as Rasa's API shows it at the end

    @property
    def typed(self) -> List[str]:
        """The messages that went through NLU: not button payloads or /intent triggers."""
        return [text for text in self.sent if not text.startswith("/")]


@dataclass
class SmallBot:
    project: Path
    model: Path


@pytest.fixture(scope="module")
def small_bot(tmp_path_factory, triton) -> SmallBot:
    """Three intents, no entity annotations (one model to fine-tune), the project's NLU pipeline and
    rules only: `rasa train` takes about a minute."""
    nlu = {**FAST_NLU, "validation_fraction": 0.0}  # every example is learnt, reviewed ones included
    project = write_project(tmp_path_factory.mktemp("log-store-bot"), triton, nlu, policies=[{"name": "RulePolicy"}])
    config = yaml.safe_load((project / "config.yml").read_text())
    for component in config["pipeline"]:
        if component["name"] == "FallbackClassifier":
            component["threshold"] = 0.7  # unknown texts fall back, so the export has some
        if component["name"].endswith("BertTritonNLU"):
            # Models of its own in the shared test Triton: loading them leaves the support bot's alone.
            component["triton_model_name"] = "log_store_nlu"
    (project / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    endpoints = yaml.safe_load((project / "endpoints.yml").read_text())
    endpoints["triton"]["timeout"] = 20.0  # two Rasa servers share the CPU: a slow answer must not fall back
    (project / "endpoints.yml").write_text(yaml.safe_dump(endpoints, sort_keys=False))
    (project / "domain.yml").write_text(yaml.safe_dump(DOMAIN, sort_keys=False))
    (project / "credentials.yml").write_text("rest:\n")
    shutil.rmtree(project / "data")  # the support bot's files and topic folders: this bot has data of its own
    (project / "data").mkdir()
    (project / "data" / "nlu.yml").write_text(NLU)
    (project / "data" / "rules.yml").write_text(yaml.safe_dump(RULES, sort_keys=False))
    rasa("train", "--fixed-model-name", "small", cwd=project)
    return SmallBot(project, project / "models" / "small.tar.gz")


def endpoints_for(project: Path, name: str, **options) -> str:
    """The project's endpoints, written as endpoints-<name>.yml, with this repository's tracker_store
    section changed by `options`."""
    endpoints = yaml.safe_load((project / "endpoints.yml").read_text())
    endpoints["tracker_store"] = {**yaml.safe_load((ROOT / "endpoints.yml").read_text())["tracker_store"], **options}
    file_name = f"endpoints-{name}.yml"
    (project / file_name).write_text(yaml.safe_dump(endpoints))
    return file_name


def tracker_store_section(project: Path, endpoints: str) -> dict:
    return yaml.safe_load((project / endpoints).read_text())["tracker_store"]


def environment(**variables: str) -> Dict[str, str]:
    """This process's environment plus `variables`; a LOG_STORE_URL of the developer's own is left out,
    as it would send every test's log into one database."""
    return {**{key: value for key, value in os.environ.items() if key != URL_VARIABLE}, **variables}


def rasa_server(bot: SmallBot, name: str, endpoints: str, env: Dict[str, str]) -> Tuple[Service, str]:
    """`rasa run` of the small bot with the project's `endpoints` file and `env`; the service and its URL."""
    port = free_port()
    rasa_url = f"http://localhost:{port}"
    service = services.rasa(
        port,
        RASA_TOKEN,
        endpoints,
        model=bot.model,
        env=environment(RASA_TELEMETRY_ENABLED="false", **env),
        cwd=bot.project,
        name=f"rasa-{name}",
    )
    return service, rasa_url


@pytest.fixture(scope="module")
def chats(small_bot, postgres, tmp_path_factory) -> Dict[str, Chat]:
    """For each backend: a REST conversation, Rasa stopped and started again, and one more message.

    SQLite is the tracker_store section as shipped, plus a customer-id pattern; PostgreSQL is named by
    $LOG_STORE_URL, which wins over the `url:` of another database left in the section.
    The PostgreSQL conversation starts once the SQLite one's Rasa is up (Triton has loaded the model
    by then); from there the two run side by side, which saves a Rasa start-up's worth of time."""
    project = small_bot.project
    database = postgres.database("conversations")
    setups = {
        "sqlite": (
            f"sqlite:///{project / 'logs' / 'conversations.db'}",
            endpoints_for(project, "sqlite", extra_patterns=EXTRA_PATTERNS),
            {},
        ),
        "postgresql": (
            database,
            endpoints_for(project, "postgresql", url=postgres.database("not_used")),
            {URL_VARIABLE: database},
        ),
    }
    logs = {backend: tmp_path_factory.mktemp(f"logs-{backend}") for backend in setups}
    first_up = threading.Event()
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(chat_across_a_restart, small_bot, "sqlite", *setups["sqlite"], logs["sqlite"], first_up)
        while not first_up.wait(1) and not first.done():
            pass
        second = pool.submit(chat_across_a_restart, small_bot, "postgresql", *setups["postgresql"], logs["postgresql"])
        return {"sqlite": first.result(), "postgresql": second.result()}


def chat_across_a_restart(
    bot: SmallBot,
    backend: str,
    url: str,
    endpoints: str,
    env: Dict[str, str],
    log_dir: Path,
    up: Optional[threading.Event] = None,
) -> Chat:
    rasa_service, rasa_url = rasa_server(bot, backend, endpoints, env)
    family, _ = FAMILIES[backend]
    sent = [
        "hi",
        "hello friend",
        "where is my order 12345?",
        PRIVATE,
        CONTACT,
        REFUND,
        *family,
        "  " + family[0].upper() + " ",
        '/order_status{"order_id": "12345"}',
    ]
    supervisor = Supervisor(log_dir)
    try:
        supervisor.start(rasa_service, timeout_s=300)
        if up:
            up.set()
        replies = [text for message in sent for text in say(rasa_url, message)]
        before = tracker_events(rasa_url)
        supervisor.stop()
        supervisor.start(rasa_service, timeout_s=300)
        after = tracker_events(rasa_url)
        reply_after = say(rasa_url, "/order_status")
        events = tracker_events(rasa_url)
    finally:
        supervisor.stop()
    return Chat(url, endpoints, env, sent + ["/order_status"], replies, before, after, reply_after, events)


def say(rasa_url: str, text: str) -> List[str]:
    response = httpx.post(f"{rasa_url}/webhooks/rest/webhook", json={"sender": SENDER, "message": text}, timeout=60)
    response.raise_for_status()
    return [message.get("text", "") for message in response.json()]


def tracker_events(rasa_url: str) -> List[dict]:
    response = httpx.get(
        f"{rasa_url}/conversations/{SENDER}/tracker", params={"include_events": "ALL", "token": RASA_TOKEN}, timeout=60
    )
    response.raise_for_status()
    return response.json()["events"]


def stored_rows(url: str) -> List[dict]:
    """Every stored event of the conversation, straight from the database."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": SENDER}
            )
            return [json.loads(data) for (data,) in rows]
    finally:
        engine.dispose()


def bot_cli(*args: str, cwd: Path, env: Optional[Dict[str, str]] = None) -> str:
    """`python -m bot ...` in the project, as a user runs it, with `env` on top of the test's environment."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(PYTHONPATH=str(ROOT), **(env or {})),
    )
    assert result.returncode == 0, (
        f"python -m bot {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    assert not result.stderr.strip(), result.stderr[-3000:]  # quiet: no warnings, no log noise
    return result.stdout


def export(chat: Chat, project: Path, out: Path, *extra: str) -> str:
    today = date.today().isoformat()
    bot_cli(
        "--endpoints",
        chat.endpoints,
        "export",
        "--since",
        today,
        "--until",
        today,
        "--out",
        str(out),
        *extra,
        cwd=project,
        env=chat.env,
    )  # the bot's own settings: its LOG_STORE_URL, if any, names the database
    return out.read_text()


def examples(review_yaml: str) -> List[tuple]:
    """(intent, annotated text, confidence, fallback) of each example, in file order."""
    found, intent = [], None
    for line in review_yaml.splitlines():
        if line.startswith("- intent: "):
            intent = line.split()[2]
        match = re.match(r'  - text: (".*")  # ([\d.]+)(, fallback)?', line)
        if match:
            found.append((intent, json.loads(match.group(1)), float(match.group(2)), bool(match.group(3))))
    return found


@pytest.fixture(scope="module")
def reviews(chats, small_bot, tmp_path_factory) -> Dict[str, str]:
    """Each backend's review export of today, written by `python -m bot export`."""
    out = tmp_path_factory.mktemp("reviews")
    return {backend: export(chat, small_bot.project, out / f"review-{backend}.yml") for backend, chat in chats.items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_bot_messages_are_stored_redacted_but_sent_as_they_were(chats, backend):
    """The bot repeats the email and phone of a button the user pressed: the user reads them, the log
    holds placeholders."""
    chat = chats[backend]
    assert WILL_CONTACT.format(email=EMAIL, phone=PHONE) in chat.replies
    stored = [r["text"] for r in stored_rows(chat.url) if r["event"] == "bot"]
    assert WILL_CONTACT.format(email="[EMAIL]", phone="[PHONE]") in stored
    assert not [text for text in stored if EMAIL in text or PHONE in text]


# The SQLite section adds a customer-id pattern, the PostgreSQL one has the default patterns only.
@pytest.mark.parametrize(
    "backend, stored", [("sqlite", "please refund my customer account [CUSTOMER_ID]"), ("postgresql", REFUND)]
)
def test_extra_patterns_in_endpoints_are_stored_as_their_placeholder(chats, small_bot, backend, stored):
    chat = chats[backend]
    extra_patterns = tracker_store_section(small_bot.project, chat.endpoints).get("extra_patterns")
    assert extra_patterns == (EXTRA_PATTERNS if backend == "sqlite" else None)
    users = [r["text"] for r in stored_rows(chat.url) if r["event"] == "user"]
    assert [text for text in users if text.startswith("please refund")] == [stored]


def test_log_store_url_in_the_environment_wins_over_url_in_endpoints(chats, small_bot):
    """docs/operations.md's way to PostgreSQL: $LOG_STORE_URL (with the password) names the database, whatever
    `url:` the section holds."""
    chat = chats["postgresql"]
    section_url = tracker_store_section(small_bot.project, chat.endpoints)["url"]
    assert chat.env == {URL_VARIABLE: chat.url} and section_url != chat.url
    engine = sa.create_engine(section_url)
    try:
        assert not sa.inspect(engine).has_table("events"), f"Rasa logged into `url:` {section_url}, not ${URL_VARIABLE}"
    finally:
        engine.dispose()
    assert len(stored_rows(chat.url)) == len(chat.events)


def test_redact_false_in_endpoints_stores_messages_as_typed(small_bot, postgres, tmp_path):
    """A short-lived Rasa of its own, since `redact: false` holds for its whole log; its database is
    the `url:` of the section."""
    url = postgres.database("unredacted")
    endpoints = endpoints_for(small_bot.project, "unredacted", url=url, redact=False)
    rasa_service, rasa_url = rasa_server(small_bot, "unredacted", endpoints, {})
    supervisor = Supervisor(tmp_path)
    try:
        supervisor.start(rasa_service, timeout_s=300)
        replies = [text for message in (PRIVATE, CONTACT) for text in say(rasa_url, message)]
    finally:
        supervisor.stop()
    rows = stored_rows(url)
    assert [r["text"] for r in rows if r["event"] == "user"] == [PRIVATE, CONTACT]
    assert [r["text"] for r in rows if r["event"] == "bot"] == replies
    assert WILL_CONTACT.format(email=EMAIL, phone=PHONE) in replies


def plain(annotated: str) -> str:
    """An example's text without its entity annotations."""
    from rasa.shared.nlu.training_data.entities_parser import replace_entities

    return replace_entities(annotated)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_event_is_stored_with_its_nlu_result(chats, backend):
    chat = chats[backend]
    rows = stored_rows(chat.url)
    assert [(r["event"], r.get("timestamp")) for r in rows] == [(e["event"], e.get("timestamp")) for e in chat.events]
    users = [r for r in rows if r["event"] == "user"]
    assert len(users) == len(chat.sent)
    redactor = Redactor()  # the bot's messages repeat an email and a phone the user left
    bot_texts = [r["text"] for r in rows if r["event"] == "bot"]
    assert bot_texts == [redactor.redact(text) for text in chat.replies + chat.reply_after_restart]
    typed = [r for r in users if not r["text"].startswith("/")]
    assert len(typed) == len(chat.typed)
    for row in typed:
        parse = row["parse_data"]
        assert parse["intent"]["name"] and 0 < parse["intent"]["confidence"] <= 1
        assert len(parse["intent_ranking"]) >= 3
        assert isinstance(parse["entities"], list)
        assert set(parse["nlu_model_versions"]) == {"log_store_nlu"}
        assert isinstance(parse["nlu_model_versions"]["log_store_nlu"], int)
        assert row["metadata"]["model_id"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_emails_cards_and_phones_are_stored_as_placeholders(chats, backend):
    rows = stored_rows(chats[backend].url)
    private = next(r for r in rows if r["event"] == "user" and "my email is" in r["text"])
    assert private["text"] == "my email is [EMAIL], card [CARD], call me on [PHONE]"
    assert private["parse_data"]["text"] == private["text"]
    messages = json.dumps([r for r in rows if r["event"] in ("user", "bot")])
    for value in (EMAIL, CARD, CARD.replace(" ", ""), PHONE, "555 123"):
        assert value not in messages


@pytest.mark.parametrize("backend", BACKENDS)
def test_restarted_rasa_continues_the_conversation(chats, backend):
    chat = chats[backend]
    assert chat.after_restart == chat.before_restart
    assert chat.events[: len(chat.before_restart)] == chat.before_restart
    assert chat.reply_after_restart == ["Order 12345 is on its way."]  # the slot set before the restart


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slot_filled_from_an_email_survives_save_and_retrieve(backend, postgres, tmp_path):
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import SlotSet, UserUttered

    from bot.conversation_log import story_export
    from bot.conversation_log.store import RedactingSQLTrackerStore, read_events

    url = postgres.database("slots") if backend == "postgresql" else f"sqlite:///{tmp_path / 'slots.db'}"
    domain = Domain.from_dict(
        {
            "entities": ["email"],
            "slots": {"email": {"type": "text", "mappings": [{"type": "from_entity", "entity": "email"}]}},
        }
    )
    text = f"it is {EMAIL} for order 12345"
    entities = [
        {"entity": "email", "start": 6, "end": 26, "value": EMAIL},
        {"entity": "order_id", "start": 37, "end": 42, "value": "12345"},
    ]

    async def save_then_retrieve():
        tracker = await RedactingSQLTrackerStore(domain, host=url).get_or_create_tracker("bob")
        tracker.update(UserUttered(text, {"name": "inform", "confidence": 0.9}, entities))
        tracker.update(SlotSet("email", EMAIL))
        await RedactingSQLTrackerStore(domain, host=url).save(tracker)
        assert tracker.latest_message.text == text  # the turn in progress keeps what was typed
        return await RedactingSQLTrackerStore(domain, host=url).retrieve("bob")  # as after a restart

    stored = asyncio.run(save_then_retrieve())
    assert stored.get_slot("email") == EMAIL
    assert stored.latest_message.text == "it is [EMAIL] for order 12345"
    spans = [
        (e["entity"], e["value"], stored.latest_message.text[e["start"] : e["end"]])
        for e in stored.latest_message.entities
    ]
    assert spans == [("email", "[EMAIL]", "[EMAIL]"), ("order_id", "12345", "12345")]
    stories = story_export.render(read_events(url), domain, Redactor(), None, None)  # the slot, redacted
    assert EMAIL not in stories and "- email: '[EMAIL]'" in stories and "[12345](order_id)" in stories


def sqlite_log(path: Path):
    """The log store on the SQLite file `path`, for a domain of one intent."""
    from rasa.shared.core.domain import Domain

    from bot.conversation_log.store import RedactingSQLTrackerStore

    return RedactingSQLTrackerStore(Domain.from_dict({"intents": ["greet"]}), db=str(path))


async def greeting(store, sender: str):
    """`sender`'s conversation from `store` with "hello" said in it, not saved yet."""
    from rasa.shared.core.events import UserUttered

    tracker = await store.get_or_create_tracker(sender)
    tracker.update(UserUttered("hello", {"name": "greet", "confidence": 1.0}))
    return tracker


def user_texts(tracker) -> List[str]:
    """What the user said in `tracker`, in order."""
    from rasa.shared.core.events import UserUttered

    return [event.text for event in tracker.events if isinstance(event, UserUttered)]


def test_a_sqlite_log_is_read_while_another_connection_writes_to_it(tmp_path):
    """The SQLite log is kept in write-ahead-log mode: a conversation is read back while another
    connection holds the file's exclusive write lock. In SQLite's default rollback journal the read
    would wait for that lock, then fail with "database is locked"."""
    path = tmp_path / "conversations.db"
    store = sqlite_log(path)

    async def save_then_read_while_locked():
        await store.save(await greeting(store, "carol"))
        writer = sqlite3.connect(path, isolation_level=None, timeout=0)
        try:
            writer.execute("BEGIN EXCLUSIVE")
            writer.execute("INSERT INTO events (sender_id, type_name, data) VALUES ('dave', 'user', '{}')")
            return await store.retrieve("carol")
        finally:
            writer.close()

    assert user_texts(asyncio.run(save_then_read_while_locked())) == ["hello"]
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_rasa_answers_others_while_a_save_waits_for_the_database(tmp_path):
    """A save whose commit waits (here for another connection's write lock; in production for the
    disk) leaves Rasa's event loop free: another conversation is read meanwhile, and the save ends
    once the lock is released. On the event loop, the save would hold it until SQLite gave up. A
    read of the conversation being saved waits for the save, so it sees the turn (the socket.io
    channel has sent the turn's answers before the save)."""
    path = tmp_path / "conversations.db"
    store = sqlite_log(path)

    async def save_while_locked():
        tracker = await greeting(store, "erin")
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        saving = asyncio.create_task(store.save(tracker))
        assert await store.retrieve("frank") is None  # answered while the save waits
        reading = asyncio.create_task(store.retrieve("erin"))
        await asyncio.sleep(0.2)
        waited = not saving.done() and not reading.done()
        writer.execute("ROLLBACK")
        writer.close()
        await saving
        return waited, await reading

    waited, stored = asyncio.run(save_while_locked())
    assert waited
    assert user_texts(stored) == ["hello"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_review_export_lists_the_least_confident_first(reviews, backend, tmp_path):
    from rasa.shared.nlu.training_data.loading import load_data

    from bot.conversation_log.review_export import normalized

    review = reviews[backend]
    found = examples(review)
    urgency = [(not fallback, confidence) for _, _, confidence, fallback in found]
    assert urgency[0] == min(urgency)
    groups: Dict[str, List[tuple]] = {}
    for intent, *rest in found:
        groups.setdefault(intent, []).append(tuple(rest))
    headers = [line.split()[2] for line in review.splitlines() if line.startswith("- intent: ")]
    assert headers == list(groups)  # one group per predicted intent
    firsts = [(not members[0][2], members[0][1]) for members in groups.values()]
    assert firsts == sorted(firsts)
    for members in groups.values():
        assert [(not m[2], m[1]) for m in members] == sorted((not m[2], m[1]) for m in members)
    texts = [plain(text) for _, text, _, _ in found]
    family, _ = FAMILIES[backend]
    assert sorted(normalized(t) for t in texts if normalized(t).startswith(family[0][:8])) == sorted(
        family
    )  # once each
    assert "hi" not in texts  # already a training example
    assert "my email is [EMAIL], card [CARD], call me on [PHONE]" in texts
    assert EMAIL not in review and "4111" not in review
    (tmp_path / "review.yml").write_text(review)
    loaded = load_data(str(tmp_path / "review.yml"))
    assert len(loaded.intent_examples) == len(found)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conversations_export_as_test_stories(chats, small_bot, backend, tmp_path):
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

    stories = export(chats[backend], small_bot.project, tmp_path / "test_chats.yml", "--stories")
    assert EMAIL not in stories and "4111" not in stories
    assert "[EMAIL]" in stories
    reader = YAMLStoryReader(Domain.load(str(small_bot.project / "domain.yml")))
    steps = reader.read_from_file(tmp_path / "test_chats.yml", skip_validation=False)
    users = [e for step in steps for e in step.events if type(e).__name__ == "UserUttered"]
    assert len(users) == len(chats[backend].sent)


@pytest.mark.parametrize("backend", BACKENDS)
def test_report_counts_conversations_intents_and_confidence(chats, small_bot, backend, tmp_path):
    chat = chats[backend]
    bot_cli(
        "report",
        "--url",
        chat.url,
        "--since",
        date.today().isoformat(),
        "--out-dir",
        str(tmp_path),
        cwd=small_bot.project,
    )
    report = (tmp_path / "report.md").read_text()
    typed = len(chat.typed)
    assert "| conversations (senders) | 1 |" in report
    assert f"| user messages | {len(chat.sent)} |" in report
    assert f"| typed (through NLU) | {typed} |" in report
    assert re.search(rf"\| fallback rate \| [\d.]+% \(\d+ of {typed}\) \|", report)
    histogram = re.findall(r"\| \d\.\d-\d\.\d \| (\d+) \|", report)
    assert len(histogram) == 10 and sum(map(int, histogram)) == typed
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reviewed_exports_in_data_retrain_the_corrected_intents(
    chats, reviews, small_bot, triton, tmp_path, monkeypatch
):
    from rasa.core.agent import Agent

    from bot.conversation_log.review_export import normalized

    project = tmp_path / "project"
    shutil.copytree(small_bot.project, project, ignore=shutil.ignore_patterns("models", "logs", ".rasa"))
    for backend in chats:
        family, corrected = FAMILIES[backend]
        # The reviewer files the family under the right intent and deletes the rest.
        reviewed = [text for _, text, _, _ in examples(reviews[backend]) if normalized(plain(text)) in family]
        assert len(reviewed) == len(family)
        (project / "data" / f"reviewed-{backend}.yml").write_text(
            yaml.safe_dump(
                {"version": "3.1", "nlu": [{"intent": corrected, "examples": "".join(f"- {t}\n" for t in reviewed)}]}
            )
        )
    # Fine-tuned, or on a repeated run with a shared RASA_CACHE_DIRECTORY restored from that cache:
    # what the model answers below shows that it learnt the review either way.
    rasa("train", "--fixed-model-name", "retrained", cwd=project)

    monkeypatch.setenv("RASA_ENDPOINTS", str(project / "endpoints.yml"))
    agent = Agent.load(str(project / "models" / "retrained.tar.gz"))
    for backend, chat in chats.items():
        family, corrected = FAMILIES[backend]
        before = {r["text"]: r["parse_data"] for r in stored_rows(chat.url) if r["event"] == "user"}
        for text in family:
            result = asyncio.run(agent.parse_message(text))
            assert result["intent"]["name"] == corrected, (text, result["intent_ranking"][:3])
            old = next(i["confidence"] for i in before[text]["intent_ranking"] if i["name"] == corrected)
            assert result["intent"]["confidence"] > old
