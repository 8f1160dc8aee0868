"""What one load-test conversation says: the support flows of tests/test_flows.py, in a row.

Order status with email verification, a FAQ, refund status, a cancellation (confirmed: the first
conversation cancels, the others hear it is already cancelled), a return, a hand-off to a person
(a ticket per conversation), thanks and goodbye: 20 messages, repeated or cut to the length asked.
"""

from __future__ import annotations

from typing import List

JANE, MIKE = "jane.doe@example.com", "mike.chen@example.com"  # actions/seed.yml's customers

FLOWS: List[List[str]] = [
    ["hello"],
    ["where is my order 12345?", JANE],
    ["how long does shipping take?"],
    ["where is my refund?", "55821", MIKE],
    ["I want to cancel my order", "100234", JANE, "yes"],
    ["I want to return an item", "55821", MIKE, "the toaster", "wrong size"],
    ["what are your opening hours?"],
    ["I want to talk to a human"],
    ["thanks", "bye"],
]


def script(messages: int) -> List[str]:
    """The first `messages` messages of the flows, repeated as often as needed."""
    flat = [message for flow in FLOWS for message in flow]
    return [flat[i % len(flat)] for i in range(messages)]
