"""What the customer's answers mean: an order number, an email address, an item of the order."""

from __future__ import annotations

import re
from typing import Optional, Tuple


def first_value(value: object) -> str:
    """A slot filled from several entities holds a list; the first is what the user meant."""
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value or "")


def normalize_order_number(value: object) -> Optional[str]:
    """ "#a-7781 " -> "A-7781"; None for nothing usable."""
    cleaned = re.sub(r"\s+", "", first_value(value)).lstrip("#").upper()
    return cleaned or None


def normalize_email(value: object) -> Optional[str]:
    cleaned = first_value(value).strip().strip(".,;<>").lower()
    return cleaned if re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", cleaned) else None


def match_product(products: Tuple[str, ...], wanted: str) -> Optional[str]:
    """The order's product that the customer's words name ("the shoes" -> "blue running shoes")."""
    words = _words(wanted)
    scored = [(len(words & _words(product)), product) for product in products]
    best = max(scored, default=(0, None))
    return best[1] if best[0] > 0 and [s for s, _ in scored].count(best[0]) == 1 else None


_FILLER = {"the", "a", "an", "my", "of", "from", "for", "one", "pair", "set", "this", "that", "it", "i", "order"}


def _words(text: str) -> set:
    return {w.rstrip("s") for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _FILLER}
