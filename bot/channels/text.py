"""What users type, made safe to store and parse before any channel hands it to Rasa."""

from __future__ import annotations

import unicodedata

# The NLU reads the first few thousand characters at most (its window cap); the rest would only
# cost time and tracker-store space.
MAX_TEXT_LENGTH = 10_000
_KEPT_CONTROLS = "\n\t"


def user_text(text: str) -> str:
    """The first MAX_TEXT_LENGTH characters of `text` without control characters but newline and
    tab (NUL, which PostgreSQL refuses to store; terminal escape sequences), and with U+FFFD for
    lone surrogates, which JSON can carry but no UTF-8 encoder (spaCy, the database) accepts."""
    kept = text[:MAX_TEXT_LENGTH]
    return "".join(
        "\ufffd" if unicodedata.category(c) == "Cs" else c
        for c in kept
        if c in _KEPT_CONTROLS or unicodedata.category(c) != "Cc"
    )
