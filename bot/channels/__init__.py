"""Rasa input channels for REST and socket.io (Telegram's is bot/telegram_channel.py), and what
every channel shares: conversation ids that say which channel they belong to, and user text
cleaned before Rasa sees it."""
