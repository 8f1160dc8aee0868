"""Bot texts as Telegram messages: at most 4096 characters each, in MarkdownV2 that Telegram accepts.

Rasa responses are plain text with a little Markdown (**bold**, *italic* or _italic_, `code`,
[label](url)). Those become MarkdownV2 entities; every other character Telegram treats as markup
is escaped, so no text can make sendMessage fail with "can't parse entities".
"""

from __future__ import annotations

import re
from typing import List

from telegram.helpers import escape_markdown

MAX_MESSAGE_LENGTH = 4096
_BREAKS = ("\n\n", "\n", " ")  # preferred places to cut a long text, best first

_MARKDOWN = re.compile(
    r"\[(?P<label>[^\]\n]+)\]\((?P<url>https?://[^)\s]+)\)"
    r"|\*\*(?P<bold>[^*\n]+)\*\*"
    r"|`(?P<code>[^`\n]+)`"
    r"|(?<![\w*])\*(?P<star>[^*\n]+)\*(?![\w*])"
    r"|(?<!\w)_(?P<under>[^_\n]+)_(?!\w)"
)


def to_markdown_v2(text: str) -> str:
    """The text with its simple Markdown as MarkdownV2 entities and everything else escaped."""
    parts, done = [], 0
    for match in _MARKDOWN.finditer(text):
        parts.append(escape_markdown(text[done : match.start()], version=2))
        if match["label"] is not None:
            url = escape_markdown(match["url"], version=2, entity_type="text_link")
            parts.append(f"[{escape_markdown(match['label'], version=2)}]({url})")
        elif match["bold"] is not None:
            parts.append(f"*{escape_markdown(match['bold'], version=2)}*")
        elif match["code"] is not None:
            parts.append(f"`{escape_markdown(match['code'], version=2, entity_type='code')}`")
        else:
            parts.append(f"_{escape_markdown(match['star'] or match['under'], version=2)}_")
        done = match.end()
    parts.append(escape_markdown(text[done:], version=2))
    return "".join(parts)


def split_message(text: str, limit: int = MAX_MESSAGE_LENGTH) -> List[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, line or word break where possible."""
    text = text.strip()
    pieces = []
    while len(text) > limit:
        window = text[: limit + 1]
        cut = next((i for i in (window.rfind(sep) for sep in _BREAKS) if i > limit // 2), limit)
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*pieces, text] if text else pieces
