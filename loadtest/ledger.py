"""What a load test sent and got back, per conversation, and its audit against the conversation log.

Every user message the test sent and every answer it received must be in PostgreSQL's `events`
table exactly once, in the conversation it belongs to: a missing one is lost, an extra one is
duplicated (two replicas handling one conversation at once would do that without the lock store).
A request that failed on the client's side (a timeout, a refused connection, an HTTP error) proves
nothing either way: its message may or may not have been stored, and answers the client never saw
may be. The audit counts those apart, so that loss means loss. An answer can be a failure too: the
bot's apology when a custom action could not run (bot/rasa_patches/action_failures.py) comes with HTTP 200.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence

import sqlalchemy as sa

from bot.conversation_log.redaction import Redactor
from bot.rasa_patches.action_failures import APOLOGY


@dataclass
class Failure:
    message: int  # index in `sent` of the message whose request failed
    reason: str  # "HTTP 503", "ReadTimeout", "no answer within 60 s", "connect: ConnectionError", ...


@dataclass
class Conversation:
    sent: List[str] = field(default_factory=list)  # user messages, in order
    answers: List[str] = field(default_factory=list)  # the bot's texts, in order
    failures: List[Failure] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        """The request of the last message sent (or, before any, of the conversation's start) failed."""
        self.failures.append(Failure(len(self.sent) - 1, reason))


@dataclass
class Ledger:
    conversations: Dict[str, Conversation] = field(default_factory=dict)  # by conversation id

    def conversation(self, conversation_id: str) -> Conversation:
        return self.conversations.setdefault(conversation_id, Conversation())

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({cid: asdict(c) for cid, c in self.conversations.items()}))

    @classmethod
    def load(cls, path: Path) -> "Ledger":
        return cls(
            {
                cid: Conversation(c["sent"], c["answers"], [Failure(**f) for f in c["failures"]])
                for cid, c in json.loads(path.read_text()).items()
            }
        )


@dataclass
class Audit:
    conversations: int
    events_expected: int  # messages answered plus answers received
    events_stored: int
    lost: int  # an answered message or a received answer missing from the log
    duplicated: int  # a message stored more often than sent; an answer more often than received
    unseen: int  # answers stored for messages whose request failed: the client gave up, nothing was lost
    out_of_order: int  # conversations whose stored messages are in another order than sent
    errors: int  # requests that failed on the client's side
    failures: Dict[str, int]  # those by reason
    apologies: int  # answers saying a custom action failed (the action server refused, timed out or broke)


def audit(ledger: Ledger, log_url: str) -> Audit:
    """Compare the ledger with the user and bot events stored at `log_url`, the ledger's texts
    redacted as the shipped tracker_store redacts both the customer's and the bot's."""
    stored = _stored_texts(list(ledger.conversations), log_url)
    redactor = Redactor()
    lost = duplicated = unseen = out_of_order = expected = stored_count = 0
    for cid, conversation in ledger.conversations.items():
        sent = [redactor.redact(m) for m in conversation.sent]
        received = [redactor.redact(m) for m in conversation.answers]  # "... by email at [EMAIL]"
        failed = {f.message for f in conversation.failures}
        answered = [m for i, m in enumerate(sent) if i not in failed]
        users, bots = stored[cid]["user"], stored[cid]["bot"]
        expected += len(answered) + len(received)
        stored_count += len(users) + len(bots)
        lost += _missing(answered, users) + _missing(received, bots)
        extra_users, extra_bots = _missing(users, sent), _missing(bots, received)
        duplicated += extra_users + (0 if failed else extra_bots)
        unseen += extra_bots if failed else 0
        out_of_order += not extra_users and not _in_order(users, sent)
    reasons = Counter(f.reason for c in ledger.conversations.values() for f in c.failures)
    return Audit(
        len(ledger.conversations),
        expected,
        stored_count,
        lost,
        duplicated,
        unseen,
        out_of_order,
        sum(reasons.values()),
        dict(reasons.most_common()),
        sum(answer == APOLOGY for c in ledger.conversations.values() for answer in c.answers),
    )


def _stored_texts(ids: List[str], log_url: str) -> Dict[str, Dict[str, List[str]]]:
    """The texts of the user and bot events of each conversation in the log, in the order stored."""
    stored: Dict[str, Dict[str, List[str]]] = {cid: {"user": [], "bot": []} for cid in ids}
    if not ids:
        return stored
    engine = sa.create_engine(log_url, hide_parameters=True)
    query = sa.text(
        "SELECT sender_id, type_name, data FROM events WHERE sender_id IN :ids AND type_name IN ('user', 'bot') "
        "ORDER BY id"
    ).bindparams(sa.bindparam("ids", expanding=True))
    try:
        with engine.connect() as connection:
            for sender, kind, data in connection.execute(query, {"ids": ids}):
                stored[sender][kind].append(json.loads(data).get("text") or "")
    finally:
        engine.dispose()
    return stored


def _missing(expected: Sequence[str], found: Sequence[str]) -> int:
    """How many of `expected` (counting repeats) are not in `found`."""
    return sum((Counter(expected) - Counter(found)).values())


def _in_order(stored: Sequence[str], sent: Sequence[str]) -> bool:
    """Whether `stored` is `sent` with some messages left out (those whose request failed), in order."""
    remaining = iter(sent)
    return all(any(message == candidate for candidate in remaining) for message in stored)
