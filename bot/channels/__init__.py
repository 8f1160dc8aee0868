"""Rasa input channels for REST, socket.io and the terminal (Telegram's is bot/telegram/channel.py),
and what every channel shares: conversation ids that say which channel they belong to, user text
cleaned before Rasa sees it, one queue for the messages a process works on at once.

Rasa imports this package in every `rasa run` of the bot (credentials.yml names its channels) before
it loads the model: the one place the bot's changes to Rasa's behaviour are installed (bot/rasa_patches).
"""

from bot import rasa_patches

rasa_patches.install()
