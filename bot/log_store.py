"""Where the tracker store was before bot/conversation_log/. An endpoints.yml that still names
`bot.log_store.RedactingSQLTrackerStore` stops Rasa here with the new name: Rasa's answer to a type
it cannot import is to keep every conversation in memory, with one warning line, and lose them."""

from bot.conversation_log.store import LogStoreError

raise LogStoreError(
    "tracker_store type bot.log_store.RedactingSQLTrackerStore is now "
    "bot.conversation_log.store.RedactingSQLTrackerStore: change `type:` in endpoints.yml"
)
