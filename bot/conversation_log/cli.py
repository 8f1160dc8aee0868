"""`python -m bot export` and `python -m bot report`: the conversation log for a period.

    python -m bot export --since 2024-05-01 --until 2024-05-31 --out review.yml
    python -m bot export --stories --since 2024-05-01 --out test_real_chats.yml
    python -m bot report --since 2024-05-01 --out-dir reports/

The database is the `tracker_store:` of endpoints.yml ($LOG_STORE_URL overrides it), or --url.
Dates are local; --until includes its whole day; without them the period is open.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Optional


def timestamp(value: str, end_of_day: bool = False) -> float:
    """`2024-05-01` or `2024-05-01T14:30`, local time, as a Unix timestamp."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2024-05-01 or 2024-05-01T14:30") from None
    if end_of_day and len(value) == 10:
        moment += timedelta(days=1)
    return moment.timestamp()


def _period(since: Optional[float], until: Optional[float]) -> str:
    def show(moment: Optional[float], open_end: str) -> str:
        return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M") if moment is not None else open_end

    return f"{show(since, 'start')} to {show(until, 'now')}"


def export(args: argparse.Namespace) -> int:
    from rasa.shared.core.domain import Domain

    from bot.conversation_log import review_export, story_export
    from bot.conversation_log.logged_messages import logged_messages
    from bot.conversation_log.store import LogStoreSettings, read_events

    settings = LogStoreSettings.load(args.endpoints, args.url)
    if args.stories:
        # Whole sessions: every event of the senders who wrote in the period, cut into sessions.
        senders = {e.sender_id for e in read_events(settings.url, args.since, args.until, types=["user"])}
        events = read_events(settings.url, senders=sorted(senders)) if senders else []
        with warnings.catch_warnings():  # Rasa 3.6 warns that slot auto-fill was removed, for any domain with slots
            warnings.simplefilter("ignore", UserWarning)
            domain = Domain.load(str(args.domain)) if args.domain.exists() else Domain.empty()
        text = story_export.render(events, domain, settings.redactor, args.since, args.until)
    else:
        messages = logged_messages(read_events(settings.url, args.since, args.until, types=["user"]))
        found = review_export.candidates(messages, review_export.training_texts(args.data))
        text = review_export.render(found, settings.redactor, _period(args.since, args.until))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"Wrote {args.out}")
    return 0


def report(args: argparse.Namespace) -> int:
    from bot.conversation_log.report import build, write
    from bot.conversation_log.store import LogStoreSettings, read_events

    settings = LogStoreSettings.load(args.endpoints, args.url)
    events = read_events(settings.url, args.since, args.until)
    paths = write(build(events, _period(args.since, args.until)), args.out_dir)
    print("Wrote " + " and ".join(str(p) for p in paths))
    return 0


def _exit_on_log_error(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Rasa and SQLAlchemy load only for these commands, without their deprecation noise; a log
    that cannot be read is a one-line error, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        _hide_deprecation_warnings()
        from bot.conversation_log.store import LogStoreError

        try:
            return command(args)
        except LogStoreError as error:
            print(error, file=sys.stderr)
            return 1

    return run


def _hide_deprecation_warnings() -> None:
    """Rasa's dependencies warn about deprecated APIs as they load (and Sanic turns such warnings
    back on), which says nothing to someone reading a report: show every other warning only."""
    show = warnings.showwarning

    def show_others(message, category, *args, **kwargs):
        if not issubclass(category, DeprecationWarning):
            show(message, category, *args, **kwargs)

    warnings.showwarning = show_others


def add_commands(commands: "argparse._SubParsersAction") -> None:
    """Register `export` and `report` on the `python -m bot` parser."""
    out = commands.add_parser("export", help="write logged user messages as NLU YAML to review (or --stories)")
    out.add_argument("--out", type=Path, required=True, help="the YAML file to write")
    out.add_argument("--stories", action="store_true", help="whole conversations as Rasa test stories instead")
    out.add_argument("--data", type=Path, default=Path("data"), help="training data whose texts are left out")
    out.add_argument("--domain", type=Path, default=Path("domain.yml"), help="for slots in --stories")
    out.set_defaults(handler=_exit_on_log_error(export))

    summary = commands.add_parser("report", help="conversation, intent, fallback and confidence figures (md + png)")
    summary.add_argument("--out-dir", type=Path, required=True, help="where report.md and report.png go")
    summary.set_defaults(handler=_exit_on_log_error(report))

    for sub in (out, summary):
        sub.add_argument("--since", type=timestamp, help="first day (or moment) to include")
        sub.add_argument("--until", type=lambda v: timestamp(v, end_of_day=True), help="last day to include")
        sub.add_argument("--url", help="SQLAlchemy URL of the log, instead of endpoints.yml")
        sub.add_argument("--endpoints", default=argparse.SUPPRESS)
