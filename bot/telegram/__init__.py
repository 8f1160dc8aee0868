"""The Telegram channel: the Rasa input channel (`channel`), `python -m bot telegram` (`polling`),
their shared settings, and how bot texts become Telegram messages (`format`)."""
