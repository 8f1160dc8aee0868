"""Evaluation of a trained Rasa model in this process: predictions, quality and parse latency."""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Set, Tuple

from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME as FALLBACK_INTENT  # our answer when Triton fails

from bench import metrics
from bench.splits import OUT_OF_SCOPE, Example, spans
from nlu.encoding import EncodingSettings
from nlu.stored_model import read_labels
from nlu.triton import repository
from nlu.triton.contract import FP32_FILE, INT8_FILE


@dataclass(frozen=True)
class Prediction:
    intent: str
    entities: Set[Tuple[str, int, int]]
    undeclined_intent: str  # the best intent other than nlu_fallback: what a pipeline without declining says


def predict(model_path: Path, texts: Sequence[str]) -> Tuple[List[Prediction], List[float], float]:
    """Parse each text with `Agent.parse_message`, one at a time: predictions, ms per call, load s.

    One untimed parse first, so that lazy initialisation is not counted as latency.
    """
    from rasa.core.agent import Agent

    start = time.perf_counter()
    agent = Agent.load(str(model_path))
    load_time_s = time.perf_counter() - start

    async def parse_all() -> Tuple[List[Prediction], List[float]]:
        await agent.parse_message(texts[0])
        predictions, timings = [], []
        for text in texts:
            start = time.perf_counter()
            parsed = await agent.parse_message(text)
            timings.append((time.perf_counter() - start) * 1000.0)
            intent = (parsed.get("intent") or {}).get("name") or ""
            ranked = [r["name"] for r in parsed.get("intent_ranking") or [] if r["name"] != FALLBACK_INTENT]
            predictions.append(Prediction(intent, set(spans(parsed.get("entities") or [])), (ranked or [intent])[0]))
        return predictions, timings

    predictions, timings = asyncio.run(parse_all())
    return predictions, timings, load_time_s


def score(test: Sequence[Example], predictions: Sequence[Prediction], has_entities: bool) -> Dict[str, Any]:
    """Intent accuracy and macro F1; entity F1 overall, per type and per (intent, type) pair (or None);
    OOS figures where the data has OOS."""
    gold = [e.intent for e in test]
    predicted = [p.intent for p in predictions]
    # A decline (nlu_fallback) is the right answer to an out-of-scope text, as the report says.
    answered = [OUT_OF_SCOPE if g == OUT_OF_SCOPE and p == FALLBACK_INTENT else p for g, p in zip(gold, predicted)]
    result: Dict[str, Any] = dict(metrics.intent_scores(gold, answered))
    result["undeclined_intent_accuracy"] = metrics.intent_scores(gold, [p.undeclined_intent for p in predictions])[
        "intent_accuracy"
    ]
    if has_entities:
        gold_spans = [set(e.entities) for e in test]
        predicted_spans = [p.entities for p in predictions]
        result.update(metrics.entity_scores(gold_spans, predicted_spans))
        result["intent_slot_mean_f1"] = metrics.intent_slot_mean_f1(gold, gold_spans, predicted_spans)
        result["entity_types"] = metrics.entity_type_scores(gold_spans, predicted_spans)
    else:
        result.update(entity_precision=None, entity_recall=None, entity_f1=None)
    if OUT_OF_SCOPE in gold:  # declining with nlu_fallback is the bot's answer to out-of-scope too
        result.update(metrics.out_of_scope_scores(gold, predicted, OUT_OF_SCOPE, {OUT_OF_SCOPE, FALLBACK_INTENT}))
    result["fallback_predictions"] = sum(p == FALLBACK_INTENT for p in predicted)  # declined (out-of-scope score)
    return result


def precisions(repository_dir: Path, name: str, component: Dict[str, Any], test: Sequence[Example]) -> Dict[str, Any]:
    """Intent accuracy and entity F1 of the newest version's fp32 and INT8 graphs on the test split.

    Parsed by ONNX Runtime in this process as Triton's answers are parsed. Where the quality gate
    kept fp32, the INT8 copy is made again here, so that both are always compared.
    """
    from nlu.training import export  # torch and ONNX: only for our pipeline
    from nlu.training.base_model import load_encoder

    version = repository.next_version(repository_dir, name) - 1
    directory = repository.version_dir(repository_dir, name, version)
    labels = read_labels(directory)
    encoder = load_encoder(component["model_name_or_path"], EncodingSettings.from_component_config(component))
    texts, intents = [e.text for e in test], [e.intent for e in test]
    annotations = [[{"entity": entity, "start": start, "end": end} for entity, start, end in e.entities] for e in test]
    served = "int8" if (directory / INT8_FILE).exists() else "fp32"
    with tempfile.TemporaryDirectory() as scratch:
        int8 = (
            directory / INT8_FILE
            if served == "int8"
            else export.quantize_int8(directory / FP32_FILE, Path(scratch) / INT8_FILE)
        )
        scores = {
            precision: export.quality(export.session(path), encoder, labels, texts, intents, annotations)
            for precision, path in (("fp32", directory / FP32_FILE), ("int8", int8))
        }
    return {"served_on_cpu": served, **scores}
