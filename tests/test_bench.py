"""The benchmark's figures on small hand-made cases: metrics, splits, scoring and the report's tables.

Every expected value is worked out by hand in a comment beside it. Nothing here trains a model,
starts a server or reads the shared datasets: the splits are made from tiny Rasa YAML files.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np
import pytest
from rasa.shared.nlu.training_data.loading import load_data

from bench import metrics, report
from bench.evaluate import Prediction, score
from bench.machine import code_version
from bench.splits import OUT_OF_SCOPE, Example, Split, make_split, spans

Span = Tuple[str, int, int]
FALLBACK = "nlu_fallback"  # Rasa's DEFAULT_NLU_FALLBACK_INTENT_NAME: how ours declines

CITY, SHIFTED, DATE_ON_CITY = ("city", 0, 5), ("city", 0, 4), ("date", 0, 5)


def approx(expected: Mapping[str, Any]) -> Any:
    """`expected` (nested dicts too) with its floats compared to 1e-12; other values compare exactly."""
    if any(isinstance(value, Mapping) for value in expected.values()):
        return {key: approx(value) if isinstance(value, Mapping) else value for key, value in expected.items()}
    return pytest.approx(dict(expected), abs=1e-12)


def prf(precision: float, recall: float, f1: float, **extra: int) -> Dict[str, float]:
    """An entity_scores result, plus `support` where given."""
    return {"entity_precision": precision, "entity_recall": recall, "entity_f1": f1, **extra}


# --- intents ------------------------------------------------------------------------------------


def test_intent_scores_macro_f1_counts_gold_labels_only() -> None:
    """Accuracy is the share right; macro F1 averages over gold intents: a gold label never predicted
    scores F1 0 and counts, a label predicted but never gold adds no class (its text is a miss)."""
    gold = ["a", "a", "b", "c"]
    predicted = ["a", "b", "b", "d"]  # c is never predicted; d is never gold
    # accuracy: positions 0 and 2 right = 2/4.
    # a: tp 1, fp 0, fn 1 -> P 1, R 1/2, F1 2/3.  b: tp 1, fp 1, fn 0 -> P 1/2, R 1, F1 2/3.
    # c: tp 0, fn 1 -> F1 0.  d: no class.  macro = (2/3 + 2/3 + 0) / 3 = 4/9.
    assert metrics.intent_scores(gold, predicted) == approx({"intent_accuracy": 0.5, "intent_macro_f1": 4 / 9})


@pytest.mark.parametrize(
    ("gold", "predicted", "expected"),
    [
        # all right: accuracy 1, every class F1 1.
        (["a", "b"], ["a", "b"], {"intent_accuracy": 1.0, "intent_macro_f1": 1.0}),
        # every prediction a label never gold: accuracy 0, a and b both F1 0 (P 0/0 -> 0 without a warning).
        (["a", "b"], ["x", "x"], {"intent_accuracy": 0.0, "intent_macro_f1": 0.0}),
        # one class: a tp 2, fn 1 -> P 1, R 2/3, F1 4/5; accuracy 2/3.
        (["a", "a", "a"], ["a", "a", "z"], {"intent_accuracy": 2 / 3, "intent_macro_f1": 0.8}),
    ],
)
def test_intent_scores_edge_cases(gold: List[str], predicted: List[str], expected: Dict[str, float]) -> None:
    """Perfect, hopeless and single-class predictions give the hand-computed figures."""
    assert metrics.intent_scores(gold, predicted) == approx(expected)


# --- out of scope -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "predicted", "expected"),
    [
        # OOS texts 0, 1, 2: out_of_scope (a decline), nlu_fallback (a decline), "a" (a miss) -> recall 2/3.
        # In-scope texts 3, 4, 5: right; out_of_scope (wrong); nlu_fallback (wrong) -> accuracy 1/3.
        (
            [OUT_OF_SCOPE, OUT_OF_SCOPE, OUT_OF_SCOPE, "a", "b", "a"],
            [OUT_OF_SCOPE, FALLBACK, "a", "a", OUT_OF_SCOPE, FALLBACK],
            {"oos_recall": 2 / 3, "in_scope_accuracy": 1 / 3},
        ),
        # no out-of-scope text: recall undefined (None), not 0; in-scope 1/2.
        (["a", "b"], ["a", OUT_OF_SCOPE], {"oos_recall": None, "in_scope_accuracy": 0.5}),
        # only out-of-scope texts: in-scope accuracy undefined (None); recall 1/2.
        ([OUT_OF_SCOPE, OUT_OF_SCOPE], [FALLBACK, "a"], {"oos_recall": 0.5, "in_scope_accuracy": None}),
        # nothing at all: both undefined, nothing divides by zero.
        ([], [], {"oos_recall": None, "in_scope_accuracy": None}),
    ],
)
def test_out_of_scope_scores(gold: List[str], predicted: List[str], expected: Dict[str, Optional[float]]) -> None:
    """Any of the declining labels counts as recall on an out-of-scope text, and as a miss on an
    in-scope one; a figure with no text to average over is None."""
    result = metrics.out_of_scope_scores(gold, predicted, OUT_OF_SCOPE, {OUT_OF_SCOPE, FALLBACK})
    assert result == approx(expected)


# --- entities -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "predicted", "expected"),
    [
        pytest.param({CITY}, {CITY}, {"city": prf(1.0, 1.0, 1.0, support=1)}, id="right-span"),
        # the gold city is missed (fn), the date on its span is spurious (fp): both types score 0.
        pytest.param(
            {CITY},
            {DATE_ON_CITY},
            {"city": prf(0.0, 0.0, 0.0, support=1), "date": prf(0.0, 0.0, 0.0, support=0)},
            id="wrong-type-right-span",
        ),
        # exact spans: (0, 4) is not (0, 5), so one fp and one fn.
        pytest.param({CITY}, {SHIFTED}, {"city": prf(0.0, 0.0, 0.0, support=1)}, id="shifted-boundary"),
        pytest.param({CITY}, set(), {"city": prf(0.0, 0.0, 0.0, support=1)}, id="missed"),
        # recall 0/0 is reported as 0.0 for a type with no gold span.
        pytest.param(set(), {CITY}, {"city": prf(0.0, 0.0, 0.0, support=0)}, id="spurious"),
        pytest.param(set(), set(), {}, id="empty"),
        # one right and one shifted: tp 1, fp 1, fn 1 -> P 1/2, R 1/2, F1 1/2.
        pytest.param(
            {CITY, ("city", 10, 15)},
            {CITY, ("city", 10, 14)},
            {"city": prf(0.5, 0.5, 0.5, support=2)},
            id="half-right",
        ),
    ],
)
def test_entity_type_scores_one_text(gold: Set[Span], predicted: Set[Span], expected: Dict[str, Any]) -> None:
    """Each kind of span error on one text gives the per-type figures worked out beside it."""
    assert metrics.entity_type_scores([gold], [predicted]) == approx(expected)


# Four texts with every kind of error (the case of tests below and of the report's table).
GOLD_SPANS: List[Set[Span]] = [{CITY, ("date", 10, 15)}, {("city", 3, 9)}, {("date", 0, 4)}, set()]
PREDICTED_SPANS: List[Set[Span]] = [{CITY, ("time", 10, 15)}, {("city", 3, 8)}, set(), {("city", 2, 6)}]


def test_entity_type_scores_and_micro_f1_over_texts() -> None:
    """Per type and micro over texts: right span, wrong type, shifted boundary, missed and spurious at once."""
    # city: tp 1 (text 0), fp 2 (text 1 shifted, text 3 spurious), fn 1 (text 1)
    #       -> P 1/3, R 1/2, F1 = 2 * 1/6 / (5/6) = 2/5; support 2.
    # date: tp 0, fp 0, fn 2 (text 0 typed time, text 2 missed) -> 0, 0, 0; support 2.
    # time: tp 0, fp 1 (text 0), fn 0 -> 0, 0, 0; support 0.
    by_type = metrics.entity_type_scores(GOLD_SPANS, PREDICTED_SPANS)
    assert by_type == approx(
        {
            "city": prf(1 / 3, 1 / 2, 2 / 5, support=2),
            "date": prf(0.0, 0.0, 0.0, support=2),
            "time": prf(0.0, 0.0, 0.0, support=0),
        }
    )
    # micro: tp 1, fp 2 + 1 = 3, fn 1 + 2 = 3 -> P 1/4, R 1/4, F1 1/4.
    assert metrics.entity_scores(GOLD_SPANS, PREDICTED_SPANS) == approx(prf(0.25, 0.25, 0.25))


@pytest.mark.parametrize("texts", [0, 3])
def test_entity_scores_without_any_span_divide_by_nothing(texts: int) -> None:
    """No gold and no predicted span (no text, or texts without entities): every figure is 0.0, no error."""
    empty: List[Set[Span]] = [set() for _ in range(texts)]
    assert metrics.entity_scores(empty, empty) == prf(0.0, 0.0, 0.0)
    assert metrics.entity_type_scores(empty, empty) == {}
    assert metrics.intent_slot_mean_f1(["a"] * texts, empty, empty) == 0.0


def test_intent_slot_mean_f1_averages_pairs_with_gold_spans() -> None:
    """F1 per (gold intent, entity type) pair, averaged with equal weight; a pair with only spurious
    spans is left out, so the figure differs from micro F1."""
    intents = ["book", "book", "weather", "weather", "weather"]
    gold: List[Set[Span]] = [{CITY, ("date", 6, 10)}, {CITY}, {CITY}, set(), {CITY}]
    predicted: List[Set[Span]] = [{CITY}, {SHIFTED}, {CITY}, {("date", 0, 3)}, {CITY}]
    # (book, city): tp 1, fp 1, fn 1 -> F1 1/2.  (book, date): fn 1 -> F1 0.
    # (weather, city): tp 2 -> F1 1.  (weather, date): no gold span -> left out.
    # mean = (1/2 + 0 + 1) / 3 = 1/2.
    assert metrics.intent_slot_mean_f1(intents, gold, predicted) == pytest.approx(0.5)
    # micro for contrast: tp 3, fp 2, fn 2 -> P = R = F1 = 3/5.
    assert metrics.entity_scores(gold, predicted)["entity_f1"] == pytest.approx(0.6)


def test_intent_slot_mean_f1_with_only_spurious_spans_is_zero() -> None:
    """Spans predicted where there is no gold span form no pair: the mean over no pair is 0.0."""
    assert metrics.intent_slot_mean_f1(["a", "b"], [set(), set()], [{CITY}, {SHIFTED}]) == 0.0


# --- latency ------------------------------------------------------------------------------------

ONE_TO_TEN = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 6.0, 9.0, 7.0, 8.0]


@pytest.mark.parametrize(
    ("milliseconds", "expected"),
    [
        # one value: every statistic is that value.
        ([7.0], {"p50": 7.0, "p99": 7.0, "mean": 7.0, "n": 1}),
        # sorted 1..10, numpy's linear interpolation at rank q * (n - 1):
        # p50: 4.5 -> 5 + 0.5 * (6 - 5) = 5.5;  p99: 8.91 -> 9 + 0.91 * (10 - 9) = 9.91;  mean 55 / 10.
        (ONE_TO_TEN, {"p50": 5.5, "p99": 9.91, "mean": 5.5, "n": 10}),
        # sorted 10, 20, 30, 1000: p50 at 1.5 -> 20 + 0.5 * 10 = 25;
        # p99 at 2.97 -> 30 + 0.97 * 970 = 970.9;  mean 1060 / 4 = 265.
        ([1000.0, 10.0, 30.0, 20.0], {"p50": 25.0, "p99": 970.9, "mean": 265.0, "n": 4}),
    ],
)
def test_latency_summary_by_hand(milliseconds: List[float], expected: Dict[str, float]) -> None:
    """p50 and p99 interpolate linearly between ranks (numpy's default), in any input order."""
    summary = metrics.latency_summary(milliseconds)
    assert summary == approx(expected)
    assert isinstance(summary["n"], int)


def test_latency_summary_matches_numpy_linear_percentile() -> None:
    """On a skewed random sample, p50 and p99 are numpy's percentile with the 'linear' method."""
    values = np.random.default_rng(0).lognormal(mean=2.0, sigma=1.0, size=257)
    summary = metrics.latency_summary(values.tolist())
    for p in (50, 99):
        assert summary[f"p{p}"] == pytest.approx(float(np.percentile(values, p, method="linear")), rel=1e-12)
    assert summary["mean"] == pytest.approx(float(values.mean()), rel=1e-12)


# --- evaluate.score -----------------------------------------------------------------------------

SCORED_TEST = [
    Example("book in Paris", "book", (CITY,)),
    Example("book it", "book", ()),
    Example("sing a song", OUT_OF_SCOPE, ()),
    Example("dance", OUT_OF_SCOPE, ()),
    Example("rain in Paris", "weather", (CITY,)),
]
SCORED_PREDICTIONS = [
    Prediction("book", {CITY}, "book"),
    Prediction(FALLBACK, set(), "book"),  # an in-scope text declined: wrong, but right never declining
    Prediction(OUT_OF_SCOPE, set(), OUT_OF_SCOPE),
    Prediction("weather", set(), "weather"),  # an out-of-scope text answered as in scope
    Prediction("weather", {SHIFTED}, "weather"),
]


@pytest.mark.parametrize("has_entities", [True, False])
def test_score_collects_every_figure(has_entities: bool) -> None:
    """`score` puts the intent, never-declining, out-of-scope and entity figures together as worked out."""
    result = score(SCORED_TEST, SCORED_PREDICTIONS, has_entities)
    # intent accuracy: texts 0, 2, 4 right -> 3/5; never declining: text 1 also right -> 4/5.
    # macro F1: book tp 1, fn 1 -> 2/3; out_of_scope tp 1, fn 1 -> 2/3; weather tp 1, fp 1 -> 2/3 -> 2/3.
    # OOS recall: text 2 declined, text 3 not -> 1/2; in-scope: texts 0, 4 right, 1 not -> 2/3.
    expected: Dict[str, Any] = {
        "intent_accuracy": 0.6,
        "undeclined_intent_accuracy": 0.8,
        "intent_macro_f1": 2 / 3,
        "oos_recall": 0.5,
        "in_scope_accuracy": 2 / 3,
        "fallback_predictions": 1,
    }
    if has_entities:
        # spans: tp 1 (text 0), fp 1 and fn 1 (text 4 shifted) -> P = R = F1 = 1/2.
        # pairs: (book, city) F1 1, (weather, city) F1 0 -> mean 1/2.
        expected.update(prf(0.5, 0.5, 0.5), intent_slot_mean_f1=0.5)
        expected["entity_types"] = {"city": prf(0.5, 0.5, 0.5, support=2)}
    else:
        expected.update(entity_precision=None, entity_recall=None, entity_f1=None)
    assert result == approx(expected)


def test_score_has_no_out_of_scope_figures_without_out_of_scope_texts() -> None:
    """Without an out-of-scope gold text, the OOS figures are absent (the report then hides their rows)."""
    result = score(SCORED_TEST[:2], SCORED_PREDICTIONS[:2], has_entities=False)
    assert "oos_recall" not in result and "in_scope_accuracy" not in result


@pytest.mark.parametrize(
    "figure",
    [
        "oos_recall",
        "in_scope_accuracy",
        "undeclined_intent_accuracy",
        "intent_accuracy",
        "intent_macro_f1",
    ],
)
def test_score_counts_a_decline_of_an_out_of_scope_text_right(figure: str) -> None:
    """A bot that declines the out-of-scope text (nlu_fallback) and gets the in-scope one right is
    perfect by the report's definitions: every intent figure is 1.0."""
    test = [Example("sing a song", OUT_OF_SCOPE, ()), Example("book it", "book", ())]
    predictions = [Prediction(FALLBACK, set(), OUT_OF_SCOPE), Prediction("book", set(), "book")]
    assert score(test, predictions, has_entities=False)[figure] == 1.0


# --- splits -------------------------------------------------------------------------------------


def nlu_yaml(examples: Mapping[str, Sequence[str]]) -> str:
    """Rasa 3 NLU training data with `examples` per intent (entities as [value](type) annotations)."""
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in examples.items():
        lines += [f"- intent: {intent}", "  examples: |", *(f"    - {text}" for text in texts)]
    return "\n".join(lines) + "\n"


def numbered(intent: str, count: int, part: str = "train") -> List[str]:
    """`count` distinct texts of `intent`."""
    return [f"{intent} {part} text {i}" for i in range(count)]


SNIPS_SIZES = {"BookRestaurant": 75, "GetWeather": 73}  # SNIPS-70: the first 70 train, the rest test
BANKING_SIZES = {"card_lost": 10, "refund": 13, "top_up": 2}  # 20% test: round(2.0), round(2.6), max(1, round(0.4))
CLINC_TRAIN_SIZES = {"balance": 6, "freeze": 5, OUT_OF_SCOPE: 4}
CLINC_VAL_SIZES = {"balance": 4, "freeze": 4, OUT_OF_SCOPE: 3}
CITY_TEXT = "book a table in [Paris](city) for {i}"  # every other BookRestaurant text has an entity


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three datasets' files, laid out as `make_split` reads them, with a few examples each."""
    root = tmp_path_factory.mktemp("datasets")
    snips = {intent: numbered(intent, count) for intent, count in SNIPS_SIZES.items()}
    snips["BookRestaurant"][::2] = [CITY_TEXT.format(i=i) for i in range(0, SNIPS_SIZES["BookRestaurant"], 2)]
    files = {
        "snips/train.yml": snips,
        "banking77/train.yml": {intent: numbered(intent, count) for intent, count in BANKING_SIZES.items()},
        "clinc150/train.yml": {intent: numbered(intent, count) for intent, count in CLINC_TRAIN_SIZES.items()},
        "clinc150/val.yml": {intent: numbered(intent, count, "val") for intent, count in CLINC_VAL_SIZES.items()},
    }
    for name, examples in files.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(nlu_yaml(examples))
    return root


@dataclass(frozen=True)
class Made:
    """A split and its train and test texts by intent, in file order."""

    split: Split
    train: Dict[str, List[str]]
    test: Dict[str, List[str]]


def by_intent(pairs: Sequence[Tuple[str, str]]) -> Dict[str, List[str]]:
    """(intent, text) pairs grouped by intent, keeping their order."""
    groups: Dict[str, List[str]] = {}
    for intent, text in pairs:
        groups.setdefault(intent, []).append(text)
    return groups


def read_texts(path: Path) -> Dict[str, List[str]]:
    """The texts of a Rasa YAML file by intent, as Rasa loads them."""
    return by_intent([(m.get("intent"), m.get("text")) for m in load_data(str(path)).intent_examples])


_work_dirs = itertools.count()


def make(
    name: str,
    datasets: Path,
    tmp_path: Path,
    seed: int = 0,
    max_train_per_intent: Optional[int] = None,
    test_per_intent: Optional[int] = None,
) -> Made:
    """`make_split` into a fresh work directory, with its files read back."""
    work = tmp_path / f"work-{next(_work_dirs)}"
    work.mkdir()
    split = make_split(name, datasets, work, seed, max_train_per_intent, test_per_intent)
    test = by_intent([(e.intent, e.text) for e in split.test])
    assert read_texts(split.test_file) == test  # the test file holds exactly the test examples
    return Made(split, read_texts(split.train_file), test)


def all_texts(groups: Mapping[str, Sequence[str]]) -> Set[str]:
    """Every text of every intent."""
    return {text for texts in groups.values() for text in texts}


def counts(groups: Mapping[str, Sequence[str]]) -> Dict[str, int]:
    """Texts per intent, leaving out intents without any."""
    return {intent: len(texts) for intent, texts in groups.items() if texts}


def source_texts(datasets: Path, name: str) -> Set[str]:
    """Every text of one of the dataset files."""
    return all_texts(read_texts(datasets / name))


NAMES = ("snips70", "clinc150", "banking77")


@pytest.mark.parametrize("name", NAMES)
def test_make_split_is_reproducible_and_seeded(name: str, datasets: Path, tmp_path: Path) -> None:
    """The same seed gives the same files and test examples; another seed shuffles differently."""
    first = make(name, datasets, tmp_path, seed=3)
    random.seed(12345)  # the splits use their own generators, not the global one
    again, other = make(name, datasets, tmp_path, seed=3), make(name, datasets, tmp_path, seed=4)
    assert first.split.test == again.split.test
    assert first.split.train_file.read_text() == again.split.train_file.read_text()
    assert first.split.test_file.read_text() == again.split.test_file.read_text()
    assert (first.train, first.test) != (other.train, other.test)
    assert all_texts(first.train) | all_texts(first.test) == all_texts(other.train) | all_texts(other.test)


@pytest.mark.parametrize(
    ("name", "train_source", "test_source"),
    [
        ("snips70", "snips/train.yml", "snips/train.yml"),
        ("banking77", "banking77/train.yml", "banking77/train.yml"),
        ("clinc150", "clinc150/train.yml", "clinc150/val.yml"),
    ],
)
def test_make_split_never_puts_an_example_in_train_and_test(
    name: str, train_source: str, test_source: str, datasets: Path, tmp_path: Path
) -> None:
    """Train and test are disjoint and, without caps, use every example of their files."""
    made = make(name, datasets, tmp_path, seed=11)
    train, test = all_texts(made.train), all_texts(made.test)
    assert not train & test
    if train_source == test_source:
        assert train | test == source_texts(datasets, train_source)
    else:
        assert (train, test) == (source_texts(datasets, train_source), source_texts(datasets, test_source))


@pytest.mark.parametrize(
    ("name", "caps", "train_counts", "test_counts"),
    [
        # SNIPS-70: 70 train per intent, then up to 100 test: 75 - 70 = 5 and 73 - 70 = 3.
        ("snips70", {}, {"BookRestaurant": 70, "GetWeather": 70}, {"BookRestaurant": 5, "GetWeather": 3}),
        # the test cap takes 2 of the rest; the training cap does not apply to SNIPS-70.
        (
            "snips70",
            {"max_train_per_intent": 10, "test_per_intent": 2},
            {"BookRestaurant": 70, "GetWeather": 70},
            {"BookRestaurant": 2, "GetWeather": 2},
        ),
        # BANKING77: test = max(1, round(0.2 n)): 10 -> 2, 13 -> round(2.6) = 3, 2 -> max(1, 0) = 1.
        ("banking77", {}, {"card_lost": 8, "refund": 10, "top_up": 1}, {"card_lost": 2, "refund": 3, "top_up": 1}),
        ("banking77", {"max_train_per_intent": 4}, {"card_lost": 4, "refund": 4, "top_up": 1}, None),
        ("banking77", {"test_per_intent": 1}, None, {"card_lost": 1, "refund": 1, "top_up": 1}),
        # CLINC150: train.yml trains, val.yml tests, each cap a prefix per intent (out_of_scope included).
        ("clinc150", {}, CLINC_TRAIN_SIZES, CLINC_VAL_SIZES),
        (
            "clinc150",
            {"max_train_per_intent": 3, "test_per_intent": 2},
            {"balance": 3, "freeze": 3, OUT_OF_SCOPE: 3},
            {"balance": 2, "freeze": 2, OUT_OF_SCOPE: 2},
        ),
    ],
)
def test_make_split_is_stratified_and_caps_take_seeded_prefixes(
    name: str,
    caps: Dict[str, int],
    train_counts: Optional[Dict[str, int]],
    test_counts: Optional[Dict[str, int]],
    datasets: Path,
    tmp_path: Path,
) -> None:
    """Every intent gets its share of train and test; a cap keeps a prefix of the uncapped split's
    per-intent order, so the test slice never depends on the training cap and vice versa
    (None: the same counts as without caps)."""
    uncapped = make(name, datasets, tmp_path, seed=5)
    capped = make(name, datasets, tmp_path, seed=5, **caps)
    assert counts(capped.train) == (train_counts or counts(uncapped.train))
    assert counts(capped.test) == (test_counts or counts(uncapped.test))
    for part, whole in ((capped.train, uncapped.train), (capped.test, uncapped.test)):
        for intent, texts in part.items():
            assert texts == whole[intent][: len(texts)]
    summary = capped.split.summary
    assert (summary["train_examples"], summary["test_examples"]) == (
        sum(counts(capped.train).values()),
        sum(counts(capped.test).values()),
    )
    assert summary["intents"] == len(counts(uncapped.train) | counts(uncapped.test))


@pytest.mark.parametrize(("name", "has_entities"), [("snips70", True), ("banking77", False), ("clinc150", False)])
def test_make_split_keeps_exact_entity_spans(name: str, has_entities: bool, datasets: Path, tmp_path: Path) -> None:
    """Annotated entities reach the test examples as exact (entity, start, end) spans of their text."""
    split = make(name, datasets, tmp_path).split
    assert split.has_entities is has_entities and split.summary["has_entities"] is has_entities
    with_spans = [example for example in split.test if example.entities]
    assert bool(with_spans) is has_entities
    for example in with_spans:
        ((entity, start, end),) = example.entities
        assert (entity, example.text[start:end]) == ("city", "Paris")


def test_make_split_rejects_unknown_or_missing_datasets(tmp_path: Path) -> None:
    """An unknown name is a ValueError; a known one whose file is absent is a FileNotFoundError."""
    with pytest.raises(ValueError, match="unknown dataset 'atis'"):
        make_split("atis", tmp_path, tmp_path, 0)
    with pytest.raises(FileNotFoundError, match="banking77"):
        make_split("banking77", tmp_path, tmp_path, 0)


@pytest.mark.parametrize(
    ("entities", "expected"),
    [
        (None, ()),
        ([], ()),
        # sorted by (entity, start, end); string offsets become ints; other keys are ignored.
        (
            [
                {"entity": "date", "start": "9", "end": 14, "value": "today"},
                {"entity": "city", "start": 3, "end": 8},
                {"entity": "city", "start": 0, "end": 2},
            ],
            (("city", 0, 2), ("city", 3, 8), ("date", 9, 14)),
        ),
    ],
)
def test_spans(entities: Optional[List[Dict[str, Any]]], expected: Tuple[Span, ...]) -> None:
    """`spans` turns Rasa entity dicts into sorted exact (entity, start, end) tuples."""
    assert spans(entities) == expected  # type: ignore[arg-type]  # Rasa hands None for "no entities"


# --- report -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (None, "pct", "n/a"),
        (0.0, "pct", "0.0%"),
        (0.9814285714, "pct", "98.1%"),
        (12.34, "s", "12.3"),
        (0.5, "s", "0.5"),
        (3.14159, "ms", "3.14"),  # below 10 ms: two decimals
        (12.34, "ms", "12.3"),  # from 10 ms: one
        ("int8", "text", "int8"),
    ],
)
def test_fmt(value: Any, kind: str, expected: str) -> None:
    """Figures are shown as percentages, seconds, milliseconds or text as the tables need."""
    assert report._fmt(value, kind) == expected


@pytest.mark.parametrize(
    ("ours", "diet", "expected"),
    [(2.0, 4.0, "0.50×"), (0.0, 4.0, "0.00×"), (None, 4.0, "n/a"), (2.0, None, "n/a"), (2.0, 0.0, "n/a")],
)
def test_ratio(ours: Optional[float], diet: Optional[float], expected: str) -> None:
    """The ours/diet column: two decimals, n/a where a side is missing or the divisor is zero."""
    assert report._ratio(ours, diet) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [(("metrics", "entity_f1"), 0.5), (("metrics", "missing"), None), (("metrics", "entity_f1", "deeper"), None)],
)
def test_get(where: Tuple[str, ...], expected: Optional[float]) -> None:
    """Nested look-ups give None for a missing key or a path through a non-dict."""
    assert report._get({"metrics": {"entity_f1": 0.5}}, where) == expected


def test_loads() -> None:
    """Load averages are shown with two decimals, n/a when unknown."""
    assert report._loads([0.5, 1.0, 12.25]) == "0.50, 1.00, 12.25"
    assert report._loads(None) == report._loads([]) == "n/a"


def pipeline_result(accuracy: float, train_time_s: float, oos_recall: Optional[float]) -> Dict[str, Any]:
    """A pipeline's results as the runner records them, with a few figures."""
    metrics_ = {"intent_accuracy": accuracy, "entity_f1": 0.25, "oos_recall": oos_recall, "in_scope_accuracy": 0.9}
    return {"metrics": metrics_, "train_time_s": train_time_s, "in_server_ms": {"p50": 3.14159, "p99": 12.34}}


@pytest.mark.parametrize(("has_entities", "oos_recall"), [(True, 0.8), (False, None), (True, None)])
def test_dataset_table_rows(has_entities: bool, oos_recall: Optional[float]) -> None:
    """A dataset's table: one column per pipeline that ran, ours/diet ratios on the time rows only,
    entity rows only where the split has entities, OOS rows only where a pipeline scored OOS."""
    pipelines = {"diet": pipeline_result(0.5, 20.0, oos_recall), "ours": pipeline_result(0.9, 10.0, oos_recall)}
    lines = report._dataset_table("tiny", {"pipelines": pipelines, "split": {"has_entities": has_entities}})
    assert lines[:4] == ["### tiny", "", "| | ours | diet | ours/diet |", "| --- | ---: | ---: | ---: |"]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert rows["intent accuracy"] == "| intent accuracy | 90.0% | 50.0% |  |"
    assert rows["train time (s)"] == "| train time (s) | 10.0 | 20.0 | 0.50× |"  # 10 / 20
    assert rows["in-server p50 (ms)"] == "| in-server p50 (ms) | 3.14 | 3.14 | 1.00× |"
    assert rows["ONNX fp32: intent accuracy"] == "| ONNX fp32: intent accuracy | n/a | n/a |  |"
    assert ("entity micro F1 (exact spans)" in rows) is has_entities
    assert ("out-of-scope recall" in rows) is (oos_recall is not None)
    assert ("in-scope accuracy" in rows) is (oos_recall is not None)


def test_entity_types_table_from_entity_type_scores() -> None:
    """The per-type table shows each scoring pipeline's P, R and F1 of every type any of them saw,
    with the gold support; a pipeline without entity figures gets no columns."""
    ours = metrics.entity_type_scores(GOLD_SPANS, PREDICTED_SPANS)  # city 1/3, 1/2, 2/5 (worked out above)
    diet = metrics.entity_type_scores(GOLD_SPANS, GOLD_SPANS)  # perfect: no "time" type at all
    pipelines = {"ours": {"metrics": {"entity_types": ours}}, "diet": {"metrics": {"entity_types": diet}}}
    pipelines["keyword"] = {"metrics": {}}
    lines = report._entity_types_table(pipelines, ["ours", "diet", "keyword"])
    assert lines[2] == "| entity type | support | ours P | ours R | ours F1 | diet P | diet R | diet F1 |"
    assert lines[4:] == [
        "| city | 2 | 33.3% | 50.0% | 40.0% | 100.0% | 100.0% | 100.0% |",
        "| date | 2 | 0.0% | 0.0% | 0.0% | 100.0% | 100.0% | 100.0% |",
        "| time | 0 | 0.0% | 0.0% | 0.0% | n/a | n/a | n/a |",
        "",
    ]


def test_model_alone_table_groups_rows_by_runtime_and_threads() -> None:
    """Model-alone timings become one row per (runtime, threads), one column pair per length; a
    length a runtime did not run shows n/a."""
    rows = [
        {"runtime": "onnx", "threads": 1, "pieces": 16, "p50": 1.234, "p95": 2.5},
        {"runtime": "onnx", "threads": 1, "pieces": 64, "p50": 12.34, "p95": 20.0},
        {"runtime": "torch", "threads": 4, "pieces": 16, "p50": 5.0, "p95": 6.0},
    ]
    lines = report._model_alone_table({"model_alone": rows})
    assert lines[-3:] == ["| onnx | 1 | 1.23 | 2.50 | 12.3 | 20.0 |", "| torch | 4 | 5.00 | 6.00 | n/a | n/a |", ""]


@pytest.mark.parametrize(
    ("existing", "notes"),
    [
        (None, report.DEFAULT_NOTES),
        (f"{report.BEGIN}\nold tables\n{report.END}\n\n## Notes\n\nmine\n", "## Notes\n\nmine\n"),
        (f"{report.BEGIN}\nold tables\n{report.END}\n", report.DEFAULT_NOTES),
        ("hand-written, no markers\n", report.DEFAULT_NOTES),
    ],
)
def test_write_docs_regenerates_and_keeps_the_notes(
    existing: Optional[str], notes: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generated part is replaced, the text after END kept (default notes where there is none),
    and writing again changes nothing."""
    monkeypatch.setattr(report, "render_markdown", lambda results: f"tables of {results['run']}")
    path = tmp_path / "docs" / "benchmarks.md"
    if existing is not None:
        path.parent.mkdir()
        path.write_text(existing)
    report.write_docs({"run": "today"}, path)
    first = path.read_text()
    assert first == f"{report.BEGIN}\n\ntables of today\n{report.END}\n\n{notes}"
    report.write_docs({"run": "today"}, path)
    assert path.read_text() == first


def test_render_markdown_of_a_serving_only_run() -> None:
    """A run without datasets renders reproduction, settings and machine, and no result tables."""
    machine = dict.fromkeys(("platform", "cpu", "cores", "gpu", "python", "torch", "transformers", "rasa"), "x")
    options = {"seed": 7, "max_train_per_intent": None, "test_per_intent": 5, "epochs": None}
    results = {
        "options": {**options, "diet_epochs": 50, "http_requests": 200},
        "code": {"commit": "abc1234", "dirty": True},
        "generated_at": "2024-01-01",
        "results_file": "bench/results/results.json",
        "bench_args": "--seed 7",
        "datasets": {},
        "machine": {**machine, "memory_gib": 62.5},
        "wall_time_s": 90.0,
        "load_average_at_start": [0.5, 1.0, 1.5],
    }
    text = report.render_markdown(results)
    assert "from commit `abc1234` with uncommitted changes" in text
    assert 'make bench BENCH_ARGS="--seed 7"' in text
    assert "Settings: seed 7; training cap per intent: none; test cap per intent: 5;" in text
    assert "The whole run took 1.5 minutes." in text  # 90 s / 60
    assert "at start: 0.50, 1.00, 1.50; at end: n/a." in text
    assert "| x | x | x | 62.5 GiB | x | x | x | x | x |" in text
    assert "## Results" not in text and "## Splits" not in text


# --- machine ------------------------------------------------------------------------------------


def test_code_version_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    """Where git finds no repository, the commit and dirtiness are None rather than an error."""
    assert code_version(tmp_path) == {"commit": None, "dirty": None}
