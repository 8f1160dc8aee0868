"""`python -m bench`: our BERT + Triton NLU against Rasa's DIET pipeline, in one run.

Writes OUT/results.json and renders the docs page (default docs/benchmarks.md) from it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from bench.pipelines import DIET_EPOCHS, PIPELINES
from bot.supervisor import handle_stop_signals

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("snips70", "clinc150", "banking77")  # as bench.splits.DATASETS, without importing Rasa
_QUIET_ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _choices(known: Tuple[str, ...]) -> Callable[[str], List[str]]:
    """Parser of a comma-separated subset of `known`."""

    def parse(text: str) -> List[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {unknown or text!r}; choose from {','.join(known)}")
        return names

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--datasets", type=_choices(DATASETS), default=list(DATASETS), help="comma-separated (default: all three)"
    )
    p.add_argument(
        "--pipelines",
        type=_choices(PIPELINES),
        default=list(PIPELINES),
        help="comma-separated (default: ours,diet,keyword)",
    )
    p.add_argument("--seed", type=int, default=13, help="seed of every split and of DIET (default 13)")
    p.add_argument(
        "--max-train-per-intent",
        type=_positive,
        help="cap training examples per intent of CLINC150 and BANKING77 (seeded; SNIPS-70 is fixed)",
    )
    p.add_argument(
        "--test-per-intent",
        type=_positive,
        help="test examples per intent (SNIPS default 100; others uncapped unless given)",
    )
    p.add_argument("--epochs", type=_positive, help="our fine-tuning epochs (default: config.yml's)")
    p.add_argument(
        "--diet-epochs",
        type=_positive,
        default=DIET_EPOCHS,
        help=f"DIETClassifier epochs (default {DIET_EPOCHS}; rasa init's config has 100)",
    )
    p.add_argument(
        "--diet-max-train-per-intent",
        type=_positive,
        default=10,
        help="cap DIET's training examples per intent of CLINC150 and BANKING77 (default 10: its defaults on "
        "the full sets take hours on 2 cores); ours always trains on the full split",
    )
    p.add_argument("--http-requests", type=_positive, default=200, help="POST /model/parse per model (default 200)")
    p.add_argument(
        "--datasets-dir",
        type=Path,
        default=Path(os.environ.get("DATASETS_DIR", REPO_ROOT.parent / "shared" / "datasets")),
    )
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="results.json goes here")
    p.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md", help="markdown report")
    p.add_argument("--keep-work", action="store_true", help="keep the temp work dir (models, splits, logs)")
    p.add_argument("--render-only", action="store_true", help="only re-render --docs from OUT/results.json")
    p.add_argument(
        "--serving",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the model alone and at the Triton boundary (default: on; --no-serving skips it)",
    )
    p.add_argument("--serving-only", action="store_true", help="only the serving latency part (no datasets)")
    p.add_argument(
        "--serving-runs",
        type=_positive,
        default=200,
        help="timed runs per model-alone case, and requests per Triton concurrency level (default 200)",
    )
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # else every parse prints a debug line

    from bench import report  # Rasa and TensorFlow load only after the environment is set

    if args.render_only:
        print(f"wrote {report.write_docs(report.read_json(args.out), args.docs)}")
        return 0

    from bench.runner import Options, Progress, run

    options = Options(
        datasets=[] if args.serving_only else args.datasets,
        pipelines=args.pipelines,
        seed=args.seed,
        max_train_per_intent=args.max_train_per_intent,
        test_per_intent=args.test_per_intent,
        epochs=args.epochs,
        diet_epochs=args.diet_epochs,
        diet_max_train_per_intent=args.diet_max_train_per_intent,
        http_requests=args.http_requests,
        datasets_dir=args.datasets_dir.resolve(),
        out=args.out.resolve(),
        docs=args.docs.resolve(),
        keep_work=args.keep_work,
        serving=args.serving or args.serving_only,
        serving_runs=args.serving_runs,
        argv=list(argv),
    )
    progress = Progress()
    handle_stop_signals()  # a CI timeout or `kill` still stops Triton and the Rasa servers
    results = run(options, progress)
    results["results_file"] = _shown(options.out / "results.json")
    progress(f"wrote {report.write_json(results, options.out)}")
    progress(f"wrote {report.write_docs(results, options.docs)}")
    failed = [f"{d}/{p}" for d, e in results["datasets"].items() for p, r in e["pipelines"].items() if r.get("error")]
    failed += ["serving"] if results.get("serving", {}).get("error") else []
    if failed:
        progress(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


def _shown(path: Path) -> str:
    """A path relative to the repo when inside it, as the docs should show it."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
