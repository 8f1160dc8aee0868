"""`python -m loadtest` (`make loadtest`): the bot under load with one Rasa and with several, side by side.

For each replica count: a throw-away copy of the project with its newest trained model, started as
`python -m bot run --replicas N` would, then Locust's conversations (loadtest/locustfile.py), then
the audit of every event against the conversation log. Writes docs/load.md (and its plot) and
loadtest/results/results.json. Run it on an otherwise idle machine: the load generator shares it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rasa.shared.constants import DEFAULT_MODELS_PATH

from bench.machine import code_version, load_average, machine_info
from bot import services
from bot.engines import haproxy
from loadtest import cpu, report
from loadtest.ledger import audit
from loadtest.stack import running
from loadtest.swarm import run as run_swarm
from nlu.archive import newest_archive

REPO_ROOT = Path(__file__).resolve().parent.parent
THINK_TIME_S = (10.0, 20.0)  # a customer reading an answer and typing the next message
FAILURES = ("errors", "apologies", "lost", "duplicated", "out_of_order")  # audit counts that fail the load test


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.splitlines()[0])
    p.add_argument("--replicas", default="1,3", help="comma-separated replica counts (default 1,3)")
    p.add_argument("--users", type=int, default=200, help="conversations at once (default 200)")
    p.add_argument("--messages", type=int, default=20, help="messages per conversation (default 20)")
    p.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second (default 10)")
    p.add_argument("--socketio-share", type=float, default=0.2, help="share of users on socket.io (default 0.2)")
    p.add_argument(
        "--think-time",
        type=_seconds_range,
        default=THINK_TIME_S,
        help="seconds a customer takes between an answer and the next message, drawn uniformly from MIN,MAX "
        "(default %s; 0,0 sends back to back: the most load the users can make)" % ",".join(map(str, THINK_TIME_S)),
    )
    p.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "load.md")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "loadtest" / "results")
    p.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the work directory (each run's project, service logs, Locust's CSVs); kept anyway when a run fails",
    )
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    model = newest_archive(REPO_ROOT / DEFAULT_MODELS_PATH)
    if model is None:
        print("No trained model in models/: run `make train` (or `make run` once) first.", file=sys.stderr)
        return 2
    results: Dict[str, Any] = {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "args": shlex.join(argv),
        "options": vars(args) | {"docs": str(args.docs), "out": str(args.out)},
        "commit": code_version(REPO_ROOT)["commit"],
        "machine": machine_info(),
        "locust": version("locust"),  # not imported: importing Locust patches this process with gevent
        "model": model.name,
        "load_average_at_start": load_average(),
        "runs": [],
    }
    work = Path(tempfile.mkdtemp(prefix="loadtest-"))
    for replicas in [int(n) for n in args.replicas.split(",")]:
        project = _project_copy(work / f"replicas-{replicas}", model)
        print(f"[loadtest] {replicas} replica(s): starting the bot (log: {work}/run-{replicas}.log)", flush=True)
        with running(project, replicas, work / f"run-{replicas}.log") as bot:
            print(f"[loadtest] {args.users} conversations x {args.messages} messages", flush=True)
            started, cpu_before = time.monotonic(), cpu.snapshot(bot.process.pid)
            with cpu.Timeline() as timeline:
                swarm = run_swarm(
                    bot.url,
                    args.users,
                    args.messages,
                    work / f"locust-{replicas}",
                    args.spawn_rate,
                    args.socketio_share,
                    args.think_time,
                )
            duration, cpu_spent = time.monotonic() - started, cpu.spent(cpu_before, cpu.snapshot(bot.process.pid))
            checked = audit(swarm.ledger, bot.log_url)
            balancer = haproxy.replica_stats(project / ".run" / "haproxy") if replicas > 1 else {}
        print(f"[loadtest] {replicas} replica(s): {checked}", flush=True)
        results["runs"].append(
            {
                "replicas": replicas,
                "messages": sum(len(c.sent) for c in swarm.ledger.conversations.values()),
                "duration_s": duration,
                "audit": asdict(checked),
                "replica_stats": balancer,
                "cpu_s": cpu_spent,
                "cpu_timeline": timeline.samples,
                "stats": swarm.stats,
                "history": swarm.history,
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"[loadtest] wrote {report.write(results, args.docs)}", flush=True)
    failed = [r for r in results["runs"] if any(r["audit"][k] for k in FAILURES)]
    if failed or args.keep_work:
        print(
            f"[loadtest] kept {work}: each run's project (service logs in .run/), run log and Locust CSVs", flush=True
        )
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def _seconds_range(text: str) -> Tuple[float, float]:
    low, high = (float(part) for part in text.split(","))
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX seconds with 0 <= MIN <= MAX, got {text!r}")
    return low, high


def _project_copy(directory: Path, model: Path) -> Path:
    """The project's files and its newest model, for a bot of the load test's own."""
    directory.mkdir(parents=True)
    for name in services.PROJECT_FILES:
        source = REPO_ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, directory / name)
    (directory / "models").mkdir()
    shutil.copy(model, directory / "models" / model.name)
    return directory


if __name__ == "__main__":
    sys.exit(main())
