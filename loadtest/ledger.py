"""What a load test sent and got back, per conversation, and its audit against the conversation log.

Every user message the test sent and every answer it received must be in PostgreSQL's `events`
table exactly once, in the conversation it belongs to: a missing one is lost, an extra one is
duplicated (two replicas handling one conversation at once would do that without the lock store).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import sqlalchemy as sa

from bot.conversation_log.redaction import Redactor


@dataclass
class Conversation:
    sent: List[str] = field(default_factory=list)  # user messages, in order
    answers: List[str] = field(default_factory=list)  # the bot's texts, in order
    errors: int = 0  # requests that failed or timed out


@dataclass
class Ledger:
    conversations: Dict[str, Conversation] = field(default_factory=dict)  # by conversation id

    def conversation(self, conversation_id: str) -> Conversation:
        return self.conversations.setdefault(conversation_id, Conversation())

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({cid: vars(c) for cid, c in self.conversations.items()}))

    @classmethod
    def load(cls, path: Path) -> "Ledger":
        return cls({cid: Conversation(**c) for cid, c in json.loads(path.read_text()).items()})


@dataclass
class Audit:
    conversations: int
    events_expected: int  # messages sent plus answers received
    events_stored: int
    lost: int
    duplicated: int
    out_of_order: int  # conversations whose stored messages are in another order than sent
    errors: int


def audit(ledger: Ledger, log_url: str) -> Audit:
    """Compare the ledger with the user and bot events stored at `log_url` (texts redacted as the
    shipped tracker_store redacts them)."""
    redactor = Redactor()
    ids = list(ledger.conversations)
    stored: Dict[str, Dict[str, List[str]]] = {cid: {"user": [], "bot": []} for cid in ids}
    engine = sa.create_engine(log_url, hide_parameters=True)
    query = sa.text(
        "SELECT sender_id, type_name, data FROM events WHERE sender_id IN :ids AND type_name IN ('user', 'bot') "
        "ORDER BY id"
    ).bindparams(sa.bindparam("ids", expanding=True))
    try:
        with engine.connect() as connection:
            for sender, kind, data in connection.execute(query, {"ids": ids}) if ids else []:
                stored[sender][kind].append(json.loads(data).get("text") or "")
    finally:
        engine.dispose()
    lost = duplicated = out_of_order = expected = stored_count = 0
    for cid, conversation in ledger.conversations.items():
        for kind, mine in (("user", [redactor.redact(m) for m in conversation.sent]), ("bot", conversation.answers)):
            theirs = stored[cid][kind]
            expected, stored_count = expected + len(mine), stored_count + len(theirs)
            lost += sum((Counter(mine) - Counter(theirs)).values())
            duplicated += sum((Counter(theirs) - Counter(mine)).values())
            out_of_order += kind == "user" and Counter(mine) == Counter(theirs) and mine != theirs
    errors = sum(c.errors for c in ledger.conversations.values())
    return Audit(len(ids), expected, stored_count, lost, duplicated, out_of_order, errors)
