"""One bench run: Triton up, then per dataset split, train both pipelines, evaluate, time HTTP."""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from bench import evaluate, latency, metrics, pipelines, serving
from bench.machine import code_version, load_average, machine_info
from bench.pipelines import DIET_EPOCHS
from bench.services import TritonEndpoint, rasa_server, triton_server, unload_models
from bench.splits import Split, make_split
from bot import secrets
from nlu.settings import TritonSettings
from nlu.training import tracking
from nlu.triton.model_config import model_config, write_config

REPO_ROOT = Path(__file__).resolve().parent.parent
# `keyword` measures Rasa's own overhead, which no data set changes; on the big ones Rasa's
# KeywordIntentClassifier compares every example with every other (minutes) and then fails on its own
# removal of keywords shared by intents (KeyError), so it runs on SNIPS-70 alone.
KEYWORD_DATASETS = ("snips70",)
RATIO_KEYS = {
    "train_time_s": ("train_time_s",),
    "load_time_s": ("load_time_s",),
    "server_start_s": ("server_start_s",),
    "server_rss_mb": ("server_rss_mb",),
    "in_server_p50": ("in_server_ms", "p50"),
    "in_server_p99": ("in_server_ms", "p99"),
    "http_p50": ("http_ms", "p50"),
    "http_p99": ("http_ms", "p99"),
}


@dataclass
class Options:
    """The command line, parsed (see bench.__main__)."""

    datasets: List[str]
    pipelines: List[str] = field(default_factory=lambda: list(pipelines.PIPELINES))
    seed: int = 13
    max_train_per_intent: Optional[int] = None
    test_per_intent: Optional[int] = None
    epochs: Optional[int] = None
    diet_epochs: int = DIET_EPOCHS
    diet_max_train_per_intent: Optional[int] = None
    http_requests: int = 200
    datasets_dir: Path = REPO_ROOT.parent / "shared" / "datasets"
    out: Path = REPO_ROOT / "bench" / "results"
    docs: Path = REPO_ROOT / "docs" / "benchmarks.md"
    keep_work: bool = False
    serving: bool = True
    serving_runs: int = 200
    argv: List[str] = field(default_factory=list)


class Progress:
    """One line per phase, with the time since the run started."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[bench {time.monotonic() - self.start:7.1f}s] {text}", flush=True)


def run(options: Options, progress: Progress) -> Dict[str, Any]:
    """Serving latency, then every selected dataset with one Triton; returns the results dict."""
    results: Dict[str, Any] = {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "bench_args": shlex.join(options.argv),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items() if k != "argv"},
        "machine": machine_info(),
        "code": code_version(REPO_ROOT),
        "load_average_at_start": load_average(),
        "datasets": {},
    }
    load, cores = results["load_average_at_start"], results["machine"]["cores"] or 1
    if load and load[0] > 0.5 * cores:
        progress(f"WARNING: load average {load[0]:.2f} on {cores} cores: other work will skew the timings")
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    started = time.monotonic()
    failed = False
    try:
        if options.serving:
            results["serving"] = _bench_serving(options, results["machine"], work / "serving", progress)
            failed |= "error" in results["serving"]
        if options.datasets:
            model_repository = _prepare_environment(work)
            progress(f"starting Triton on {model_repository} (work dir {work})")
            with triton_server(model_repository, work / "logs", dict(os.environ)) as triton:
                os.environ["TRITON_URL"] = triton.grpc_url
                _write_endpoints(work, triton)
                progress(f"Triton ready at {triton.grpc_url}")
                for name in options.datasets:
                    entry = _bench_dataset(name, options, work, triton, progress)
                    results["datasets"][name] = entry
                    failed |= any(p.get("error") for p in entry["pipelines"].values())
                progress("stopping Triton")
        results["load_average_at_end"] = load_average()
        results["wall_time_s"] = time.monotonic() - started
    except BaseException:
        failed = True
        raise
    finally:
        if options.keep_work or failed:
            progress(f"kept the work dir (models, splits, service logs): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return results


def _bench_serving(options: Options, machine: Dict[str, Any], work: Path, progress: Progress) -> Dict[str, Any]:
    """Serving latency; a failure is recorded, not raised, so that the datasets still run."""
    try:
        return serving.run(options.serving_runs, machine, work, progress)
    except Exception as error:
        traceback.print_exc()
        progress(f"serving: FAILED ({type(error).__name__})")
        return {"error": f"{type(error).__name__}: {error}".strip()[:2000]}


def _prepare_environment(work: Path) -> Path:
    """Set what the component reads, here and in `rasa run` children; returns the model repository."""
    os.environ["RASA_MAX_CACHE_SIZE"] = "0"  # no training cache: every train is timed in full
    os.environ["RASA_CACHE_DIRECTORY"] = str(work / "rasa-cache")
    os.environ["TRITON_MODEL_REPOSITORY"] = str(work / "triton")
    os.environ["RASA_ENDPOINTS"] = str(work / "endpoints.yml")
    for name, value in secrets.generate().items():  # Triton's API key and Rasa's token, for this run's servers
        os.environ.setdefault(name, value)
    # Keep the repo's per-request Triton timeout (read before RASA_ENDPOINTS points elsewhere).
    os.environ.setdefault("TRITON_TIMEOUT", str(TritonSettings.load(str(REPO_ROOT / "endpoints.yml")).timeout_s))
    return work / "triton"


def _write_endpoints(work: Path, triton: TritonEndpoint) -> None:
    """Endpoints for `rasa run`: only our Triton, none of the repo's trackers or actions."""
    section = {"url": triton.grpc_url, "model_repository": str(triton.repository), "http_port": triton.http_port}
    (work / "endpoints.yml").write_text(yaml.safe_dump({"triton": section}))


def _bench_dataset(
    name: str, options: Options, work: Path, triton: TritonEndpoint, progress: Progress
) -> Dict[str, Any]:
    progress(f"{name}: splitting (seed {options.seed})")
    split = make_split(
        name, options.datasets_dir, work, options.seed, options.max_train_per_intent, options.test_per_intent
    )
    summary = split.summary
    progress(
        f"{name}: {summary['intents']} intents, {summary['train_examples']} train / {summary['test_examples']} test"
    )
    triton_name = f"bench_{name}"
    configs = {
        pipelines.OURS: lambda: pipelines.ours_config(REPO_ROOT / "config.yml", triton_name, options.epochs),
        pipelines.DIET: lambda: pipelines.diet_config(options.diet_epochs, options.seed),
        pipelines.KEYWORD: pipelines.keyword_config,
    }
    entry: Dict[str, Any] = {"split": summary, "pipelines": {}}
    for pipeline in options.pipelines:
        if pipeline == pipelines.KEYWORD and name not in KEYWORD_DATASETS:
            continue
        config = configs[pipeline]()
        pipeline_split = split
        if pipeline == pipelines.DIET and options.diet_max_train_per_intent and name != "snips70":
            pipeline_split = _capped_split(name, options, work, progress)
            entry["diet_split"] = pipeline_split.summary
        with tracking.track("bench", f"{name}/{pipeline}") as run:
            run.log_params({"dataset": name, "pipeline": pipeline, **pipeline_split.summary})
            result = _bench_pipeline(name, pipeline, config, pipeline_split, options, work, progress)
            run.log_metrics(_numbers(result))
        entry["pipelines"][pipeline] = result
    unload_models(triton, [triton_name], os.environ[secrets.TRITON_API_KEY])
    entry["ratios"] = _ratios(entry["pipelines"].get(pipelines.OURS, {}), entry["pipelines"].get(pipelines.DIET, {}))
    return entry


def _capped_split(name: str, options: Options, work: Path, progress: Progress) -> Split:
    """The same test texts, DIET's training capped per intent (where its defaults take too long)."""
    directory = work / "diet-split"
    directory.mkdir(exist_ok=True)
    cap = options.diet_max_train_per_intent
    split = make_split(name, options.datasets_dir, directory, options.seed, cap, options.test_per_intent)
    progress(f"{name}/diet: training capped at {cap} per intent ({split.summary['train_examples']} examples)")
    return split


def _numbers(result: Dict[str, Any]) -> Dict[str, float]:
    """A pipeline's scores and times, flat, for MLflow."""
    flat = {key: value for key, value in result.get("metrics", {}).items() if isinstance(value, (int, float))}
    flat.update({key: result[key] for key in ("train_time_s", "load_time_s") if key in result})
    flat.update({f"http_{key}_ms": value for key, value in result.get("http_ms", {}).items() if key != "n"})
    return flat


def _bench_pipeline(
    dataset: str,
    pipeline: str,
    config: Dict[str, Any],
    split: Split,
    options: Options,
    work: Path,
    progress: Progress,
) -> Dict[str, Any]:
    """Train, evaluate in process, then time HTTP; a failure is recorded, not raised."""
    label = f"{dataset}/{pipeline}"
    result: Dict[str, Any] = {"config": config["pipeline"]}
    texts = [example.text for example in split.test]
    started = time.monotonic()
    try:
        progress(f"{label}: training")
        model = pipelines.train(config, split.train_file, work, f"{dataset}-{pipeline}")
        result["train_time_s"] = model.train_time_s
        if pipeline == pipelines.OURS:
            _without_response_cache(config)
        progress(f"{label}: trained in {model.train_time_s:.1f} s; loading it and parsing {len(texts)} test texts")
        predictions, timings, result["load_time_s"] = evaluate.predict(model.path, texts)
        result["metrics"] = evaluate.score(split.test, predictions, split.has_entities)
        if pipeline == pipelines.OURS:
            component = next(c for c in config["pipeline"] if c["name"] == pipelines.OUR_COMPONENT)
            repository_dir = Path(os.environ["TRITON_MODEL_REPOSITORY"])
            result["precisions"] = evaluate.precisions(
                repository_dir, component["triton_model_name"], component, split.test
            )
        result["in_server_ms"] = metrics.latency_summary(timings)
        if result["metrics"]["fallback_predictions"]:
            progress(f"{label}: {result['metrics']['fallback_predictions']} texts declined (nlu_fallback)")
        progress(
            f"{label}: loaded in {result['load_time_s']:.1f} s, accuracy {result['metrics']['intent_accuracy']:.3f}, in-server p50 "
            f"{result['in_server_ms']['p50']:.1f} ms; timing {options.http_requests} HTTP parses"
        )
        with rasa_server(model.path, work / "logs", dict(os.environ)) as server:
            result["server_start_s"], result["server_rss_mb"] = server.start_s, server.rss_mb
            result["http_ms"] = metrics.latency_summary(
                latency.http_parse_latencies(
                    server.url, texts, options.http_requests, os.environ[secrets.RASA_AUTH_TOKEN]
                )
            )
        progress(f"{label}: HTTP p50 {result['http_ms']['p50']:.1f} ms, p99 {result['http_ms']['p99']:.1f} ms")
    except Exception as error:  # one pipeline failing must not lose the others' results
        traceback.print_exc()
        result["error"] = f"{type(error).__name__}: {error}".strip()[:2000]
        progress(f"{label}: FAILED ({type(error).__name__})")
    result["wall_time_s"] = time.monotonic() - started
    return result


def _without_response_cache(config: Dict[str, Any]) -> None:
    """Turn Triton's response cache off for our freshly trained model before anything loads it.

    Every test text is parsed in process before the HTTP timing: with the cache on, HTTP would
    time cached answers. (Its effect on real conversations is measured in the serving part.)
    """
    component = next(c for c in config["pipeline"] if c["name"] == pipelines.OUR_COMPONENT)
    name = component["triton_model_name"]
    write_config(Path(os.environ["TRITON_MODEL_REPOSITORY"]) / name, serving.uncached(model_config(name)))


def _ratios(ours: Dict[str, Any], diet: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """ours/diet for training time and latencies (None where either is missing)."""
    ratios: Dict[str, Optional[float]] = {}
    for key, where in RATIO_KEYS.items():
        a: Any = ours
        b: Any = diet
        for part in where:
            a = a.get(part) if isinstance(a, dict) else None
            b = b.get(part) if isinstance(b, dict) else None
        ratios[key] = a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
    return ratios
