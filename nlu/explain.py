"""Why did the model understand that: the word pieces that drove a parse's intent and entities.

Occlusion: each word piece of the text in turn is replaced by the tokenizer's mask token ([UNK]
where it has none), and a piece's score is how much that lowers the probability behind the
decision: of the predicted intent, or, for an entity, of its label (B and I together, whichever
prefix the decoder chose) averaged over the entity's pieces. A negative score is a piece that
argued against it. It needs only what the Rasa model keeps, the served ONNX graph: the torch
weights are gone, so integrated gradients has nothing to differentiate, and the graph outputs no
attention weights for attention rollout. It explains the graph the CPU serves (INT8 when the
quality gate kept it) of any BERT family, and all variants of a text run as one batch.

A command line, not a flag on `/model/parse`: Rasa 3.6 carries no per-request options from that
route into the pipeline, and a text costs one forward pass per piece, which the normal path must
never pay. Usage: python -m nlu.explain [--model models/x.tar.gz] [--top K] [--json] TEXT...
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from nlu import archive
from nlu.decoding import Infer, parse_texts
from nlu.encoding import TextEncoder, TokenizerError
from nlu.stored_model import Labels
from nlu.tags import EntityLabel, is_special
from nlu.triton.backend import onnx_session
from nlu.triton.backend.onnx_session import runner, served_graph
from nlu.triton.contract import INPUTS, MAX_BATCH_SIZE, OUTPUTS

# One forward pass of at most max_length short windows takes tens of milliseconds on one thread;
# more would take the cores from the Triton and Rasa this tool usually runs beside.
THREADS = 1
DEFAULT_TOP = 3


class ExplainError(ValueError):
    """A text that cannot be explained (empty, or longer than one window)."""


@dataclass(frozen=True)
class Piece:
    """A word piece: the characters of the text it covers, and how much masking it cost the decision."""

    text: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class IntentExplanation:
    """The intent the head predicted; `declined` when the out-of-scope score made the parse nlu_fallback."""

    name: str
    confidence: float
    declined: bool
    pieces: List[Piece]  # highest score first


@dataclass(frozen=True)
class EntityExplanation:
    entity: str
    role: Optional[str]
    group: Optional[str]
    value: str
    start: int
    end: int
    pieces: List[Piece]  # highest score first


@dataclass(frozen=True)
class Explanation:
    text: str
    intent: IntentExplanation
    entities: List[EntityExplanation]


def explain(text: str, encoder: TextEncoder, infer: Infer, labels: Labels, top: Optional[int] = None) -> Explanation:
    """The parse of `text` with each decision's `top` pieces (all of them when None)."""
    require_text(text)
    windows = encoder.windows([text])
    if len(windows.input_ids) > 1:
        raise ExplainError(
            f"The text is longer than one window of {encoder.settings.max_length} word pieces; explain a shorter one."
        )
    ids, offsets = windows.input_ids[0], windows.offsets[0]
    # Two: a declined text's ranking is nlu_fallback, then the intent the head predicted.
    parse = parse_texts([text], encoder, infer, labels, ranking_length=2, chunk_size=MAX_BATCH_SIZE)[0]
    positions = [position for position, offset in enumerate(offsets) if not is_special(offset)]
    mask = encoder.special.mask
    # The text as it is is row 0 of the same batch: INT8's per-batch activation scales touch it and
    # the masked variants alike.
    outputs = infer(*encoder.pad([ids] + [ids[:position] + [mask] + ids[position + 1 :] for position in positions]))
    intent_probabilities, tag_probabilities = np.asarray(outputs[0]), np.asarray(outputs[1])
    spans = [offsets[position] for position in positions]

    intent = next(entry for entry in parse.intent_ranking if entry["name"] in labels.intents)
    intent_column = labels.intents.index(intent["name"])
    entities = []
    for entity in parse.entities:
        columns = [labels.tags.index(f"{prefix}-{EntityLabel.of(entity).key}") for prefix in ("B", "I")]
        inside = [p for p, (start, end) in zip(positions, spans) if start < entity["end"] and end > entity["start"]]
        label_probabilities = tag_probabilities[:, inside][:, :, columns].sum(axis=-1).mean(axis=-1)
        fields = (entity["entity"], entity.get("role"), entity.get("group"), entity["value"])
        entities.append(
            EntityExplanation(*fields, entity["start"], entity["end"], _ranked(text, spans, label_probabilities, top))
        )
    declined = intent is not parse.intent_ranking[0]
    intent_pieces = _ranked(text, spans, intent_probabilities[:, intent_column], top)
    return Explanation(text, IntentExplanation(intent["name"], intent["confidence"], declined, intent_pieces), entities)


def _ranked(text: str, spans: Sequence[Tuple[int, int]], values: np.ndarray, top: Optional[int]) -> List[Piece]:
    """Pieces by how much `values` (one per variant: the text as it is, then each piece masked) drop
    when each is masked, the highest first (ties in text order)."""
    drops = values[0] - values[1:]
    order = sorted(range(len(spans)), key=lambda i: -drops[i])[:top]
    return [Piece(text[spans[i][0] : spans[i][1]], *spans[i], float(drops[i])) for i in order]


def require_text(text: str) -> None:
    if not text.strip():
        raise ExplainError("Nothing to explain: the text is empty.")


@dataclass(frozen=True)
class ExplainableModel:
    """A stored model loaded for explaining: its encoder, labels and the graph the CPU serves."""

    encoder: TextEncoder
    labels: Labels
    infer: Infer
    graph: str  # the ONNX file's name


def load(model_archive: Path) -> ExplainableModel:
    """The archive's BertTritonNLU model in ONNX Runtime (INT8 where training kept it, as Triton's CPU serves it)."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            stored = archive.extract(model_archive, Path(scratch))
            graph = Path(served_graph(str(stored.version_dir)))
            session = onnx_session.session(str(graph), THREADS)
            encoder = stored.encoder()
            labels = stored.labels()
        except (OSError, ValueError, KeyError, TokenizerError) as error:  # a damaged archive
            raise archive.ArchiveError(f"{model_archive}: its NLU model cannot be read ({error})") from error
    missing = set(OUTPUTS) - {output.name for output in session.get_outputs()}
    if missing:
        raise archive.ArchiveError(
            f"{model_archive}'s graph lacks {', '.join(sorted(missing))}: it was trained by an older version of "
            f"{archive.COMPONENT}; retrain it with `rasa train`."
        )
    return ExplainableModel(encoder, labels, runner(session, INPUTS, OUTPUTS), graph.name)


def format_table(explanation: Explanation) -> str:
    """The explanation as aligned lines: each decision, then its pieces with their spans and scores."""
    lines = [json.dumps(explanation.text, ensure_ascii=False)]
    intent = explanation.intent
    declined = "  declined as out of scope" if intent.declined else ""
    lines.append(f"  intent  {intent.name}  ({intent.confidence:.3f}){declined}")
    lines += _piece_lines(intent.pieces)
    for entity in explanation.entities:
        label = entity.entity + "".join(
            f" {name}={value}" for name, value in (("role", entity.role), ("group", entity.group)) if value
        )
        lines.append(
            f"  entity  {label}  {json.dumps(entity.value, ensure_ascii=False)}  [{entity.start}:{entity.end}]"
        )
        lines += _piece_lines(entity.pieces)
    return "\n".join(lines)


def _piece_lines(pieces: Sequence[Piece]) -> List[str]:
    width = max((len(piece.text) for piece in pieces), default=0)
    return [f"      {piece.score:+.3f}  {piece.text:<{width}}  [{piece.start}:{piece.end}]" for piece in pieces]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nlu.explain",
        description="The word pieces that drove the intent and each entity of a text (occlusion on the served ONNX graph).",
    )
    parser.add_argument(
        "--model",
        default=archive.DEFAULT_MODELS_PATH,
        help="a Rasa model archive, or a directory whose newest archive to use (default: models)",
    )
    parser.add_argument(
        "--top", type=int, default=DEFAULT_TOP, help=f"pieces shown per decision (default {DEFAULT_TOP})"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("texts", nargs="+", metavar="TEXT")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error("--top must be at least 1")
    try:
        for text in args.texts:
            require_text(text)
        model_archive = archive.find_archive(args.model)
        model = load(model_archive)
        explanations = [explain(text, model.encoder, model.infer, model.labels, args.top) for text in args.texts]
    except (ExplainError, archive.ArchiveError) as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 1
    if args.json:
        report = {"model": str(model_archive), "graph": model.graph, "explanations": [asdict(e) for e in explanations]}
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(f"{model_archive} ({model.graph}); a score is the probability lost when the piece is masked")
        print("\n\n".join(format_table(explanation) for explanation in explanations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
