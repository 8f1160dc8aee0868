"""Keep a secret out of the logs: Telegram's bot token is part of every Bot API URL, which httpx
logs at INFO ("HTTP Request: POST https://api.telegram.org/bot<token>/sendMessage ...") and an
error may quote.

It belongs to the Telegram package: the bot token is what it hides, and only the Telegram channel
and poller install it. It guards the processes' log lines, not the conversation log
(bot/conversation_log/), which keeps what users and the bot said."""

from __future__ import annotations

import logging

# Their INFO lines name every request's URL.
URL_LOGGERS = ("httpx", "httpcore")


class SecretFilter(logging.Filter):
    """Replaces the secret with a placeholder in a record's message and traceback."""

    def __init__(self, secret: str, placeholder: str) -> None:
        super().__init__()
        self.secret, self.placeholder = secret, placeholder

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, self.placeholder), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = record.exc_text.replace(self.secret, self.placeholder)
        return True


def hide_in_logs(secret: str, placeholder: str = "[TOKEN]") -> None:
    """Quiet the URL loggers to WARNING, and write `placeholder` for `secret` in whatever every
    handler configured so far writes (call it once logging is set up)."""
    for name in URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    loggers = [
        logging.getLogger(),
        *(item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)),
    ]
    for handler in {handler for logger in loggers for handler in logger.handlers}:
        if not any(isinstance(f, SecretFilter) and f.secret == secret for f in handler.filters):
            handler.addFilter(SecretFilter(secret, placeholder))
