"""`python -m nlu.training.tracking_cli`: read tracked fine-tuning runs without MLflow's UI; link a Rasa model to its run.

python -m nlu.training.tracking_cli runs             the newest runs: base model, data, Triton version, Rasa model file
python -m nlu.training.tracking_cli show RUN_ID      one run: parameters, tags, metrics per epoch, artifacts
python -m nlu.training.tracking_cli link [ARCHIVE]   tag the run that trained a Rasa model (default: the newest in models/)

The store is MLFLOW_TRACKING_URI's, else mlruns/ in the working directory (nlu/training/tracking.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Optional, Sequence

from rasa.shared.constants import DEFAULT_MODELS_PATH

from nlu.archive import newest_archive
from nlu.training import tracking


def runs(limit: int) -> None:
    client = tracking.client()
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    rows = [["started", "run id", "experiment", "run", "status", "base model", "data", "triton", "rasa model file"]]
    for run in client.search_runs(list(experiments), order_by=["attributes.start_time DESC"], max_results=limit):
        tags = run.data.tags
        triton = f"{tags.get(tracking.TAG_TRITON_MODEL, '')}/{tags.get(tracking.TAG_TRITON_VERSION, '')}"
        rows.append(
            [
                datetime.fromtimestamp(run.info.start_time / 1000).strftime("%Y-%m-%d %H:%M"),
                run.info.run_id,
                experiments[run.info.experiment_id],
                run.info.run_name or "",
                run.info.status,
                tags.get(tracking.TAG_BASE_MODEL, ""),
                tags.get(tracking.TAG_DATA_FINGERPRINT, "")[:12],
                triton if triton != "/" else "",
                tags.get(tracking.TAG_RASA_MODEL_FILE, ""),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def show(run_id: str) -> None:
    client = tracking.client()
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id).name
    print(f"run {run_id} ({run.info.run_name}), experiment {experiment}: {run.info.status}")
    print("parameters:")
    for key, value in sorted(run.data.params.items()):
        print(f"  {key} = {value}")
    print("tags:")
    for key, value in sorted(run.data.tags.items()):
        if not key.startswith("mlflow.") or key in ("mlflow.source.git.commit", "mlflow.parentRunId"):
            print(f"  {key} = {value}")
    print("metrics, by step:")
    for key in sorted(run.data.metrics):
        history = sorted(client.get_metric_history(run_id, key), key=lambda metric: metric.step)
        print(f"  {key}: " + ", ".join(f"{metric.value:.4g}" for metric in history))
    print("artifacts:")
    for artifact in client.list_artifacts(run_id):
        print(f"  {artifact.path}")


def link(archive: Optional[Path]) -> int:
    """Exit 1 only without an archive: a run that cannot be tagged is a warning, never a failed build."""
    archive = archive or newest_archive()
    if archive is None or not archive.is_file():
        print(f"No Rasa model archive {'in ' + DEFAULT_MODELS_PATH if archive is None else archive}", file=sys.stderr)
        return 1
    run_id = tracking.link_model_archive(archive)
    if run_id:
        print(f"{archive} was trained by MLflow run {run_id}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlu.training.tracking_cli", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runs_parser = commands.add_parser("runs", help="the newest runs, newest first")
    runs_parser.add_argument("--limit", type=int, default=20)
    commands.add_parser("show", help="one run in full").add_argument("run_id")
    link_parser = commands.add_parser("link", help="tag the run that trained a Rasa model with its file")
    link_parser.add_argument("archive", type=Path, nargs="?", help=f"default: the newest in {DEFAULT_MODELS_PATH}/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "link":
        return link(args.archive)
    try:
        if args.command == "runs":
            runs(args.limit)
        else:
            show(args.run_id)
    except Exception as error:  # MLflow's errors: an unreachable store, an unknown run id
        print(f"Cannot read {tracking.redact(tracking.tracking_uri())}: {tracking.redact(str(error))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
