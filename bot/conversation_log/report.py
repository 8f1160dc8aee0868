"""How the bot did over a period: conversations, messages, intents, fallbacks, confidence.

Writes `report.md` (the numbers) and `report.png` (intent distribution and confidence histogram).
Intent statistics count typed messages only: button payloads and /intent triggers skip NLU.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np

from bot.conversation_log.logged_messages import FALLBACK_INTENT, logged_messages
from bot.conversation_log.store import StoredEvent

BINS = np.linspace(0.0, 1.0, 11)


@dataclass(frozen=True)
class Report:
    period: str
    conversations: int
    user_messages: int
    bot_messages: int
    typed_messages: int
    intents: Counter  # what Rasa acted on, nlu_fallback included
    confidences: List[float]  # the model's confidence in its best intent, per typed message

    @property
    def fallback_rate(self) -> float:
        return self.intents[FALLBACK_INTENT] / self.typed_messages if self.typed_messages else 0.0

    def histogram(self) -> List[int]:
        return [int(n) for n in np.histogram(self.confidences, bins=BINS)[0]]


def build(events: List[StoredEvent], period: str) -> Report:
    messages = logged_messages(events)
    typed = [m for m in messages if m.typed]
    return Report(
        period=period,
        conversations=len({m.sender_id for m in messages}),
        user_messages=len(messages),
        bot_messages=sum(1 for e in events if e.type == "bot"),
        typed_messages=len(typed),
        intents=Counter(m.intent or "(none)" for m in typed),
        confidences=[m.confidence for m in typed if m.predicted is not None],
    )


def markdown(report: Report, plot_name: str) -> str:
    lines = [
        f"# Conversation report: {report.period}",
        "",
        "| | |",
        "| --- | --- |",
        f"| conversations (senders) | {report.conversations} |",
        f"| user messages | {report.user_messages} |",
        f"| typed (through NLU) | {report.typed_messages} |",
        f"| bot messages | {report.bot_messages} |",
        f"| fallback rate | {report.fallback_rate:.1%} ({report.intents[FALLBACK_INTENT]} of {report.typed_messages}) |",
        "",
        "## Intents",
        "",
        "| intent | messages | share |",
        "| --- | --- | --- |",
    ]
    total = report.typed_messages or 1
    lines += [f"| {intent} | {count} | {count / total:.1%} |" for intent, count in report.intents.most_common()]
    lines += ["", "## Confidence of the predicted intent", "", "| confidence | messages |", "| --- | --- |"]
    lines += [f"| {low:.1f}-{high:.1f} | {n} |" for low, high, n in zip(BINS, BINS[1:], report.histogram())]
    lines += ["", f"![intents and confidence]({plot_name})", ""]
    return "\n".join(lines)


def plot(report: Report, path: Path) -> None:
    logging.getLogger("matplotlib").setLevel(logging.ERROR)  # its style files log deprecations on load
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (intents, confidence) = plt.subplots(1, 2, figsize=(12, 5))
    names, counts = zip(*report.intents.most_common()) if report.intents else ((), ())
    intents.barh(list(reversed(names)), list(reversed(counts)), color="#1f6feb")
    intents.set_title("Intents (typed messages)")
    intents.set_xlabel("messages")
    confidence.hist(report.confidences, bins=BINS, color="#1f6feb", edgecolor="white")
    confidence.set_title(f"Confidence of the predicted intent (fallback rate {report.fallback_rate:.0%})")
    confidence.set_xlabel("confidence")
    confidence.set_ylabel("messages")
    confidence.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(f"Conversations {report.period}: {report.conversations}, user messages: {report.user_messages}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(report: Report, out_dir: Path) -> List[Path]:
    """report.md and report.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png, md = out_dir / "report.png", out_dir / "report.md"
    plot(report, png)
    md.write_text(markdown(report, png.name))
    return [md, png]
