"""The conversation log: Rasa's tracker store writing every event to SQL with personal data
replaced by placeholders (`store`, `redaction`), and what reads it back: `python -m bot export`
and `python -m bot report` (`cli`)."""
