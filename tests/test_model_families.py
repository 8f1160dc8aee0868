"""Each BERT-family architecture goes through Rasa's training, Triton and Rasa's parsing.

Tiny random checkpoints keep this fast; they still learn this small data set well enough to
find the intent and the exact order number span.
"""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path

import pytest
import yaml
from rasa.core.agent import Agent
from rasa.model_training import train_nlu

from nlu.triton.client import TritonNLUClient
from tests.checkpoints import FAMILIES, make_checkpoint

INTENT_TEMPLATES = {
    "order_status": ["where is my order {n}", "track order {n} please", "status of order {n}?", "has {n} shipped yet"],
    "cancel_order": ["cancel order {n}", "please cancel {n} now", "i want to cancel my order {n}", "stop order {n}"],
    "greet": ["hello", "hi there", "good morning", "hey"],
}


def examples(intents):
    """(intent, example in Rasa's markup) pairs, order numbers annotated as order_id."""
    rng = random.Random(7)
    pairs = []
    for intent in intents:
        for template in INTENT_TEMPLATES[intent]:
            for _ in range(4 if "{n}" in template else 2):
                pairs.append((intent, template.format(n=f"[{rng.randint(10000, 999999)}](order_id)")))
    return list(dict.fromkeys(pairs))


def nlu_yaml(intents) -> str:
    blocks = [
        {"intent": intent, "examples": "".join(f"- {text}\n" for i, text in examples(intents) if i == intent)}
        for intent in intents
    ]
    return yaml.safe_dump({"version": "3.1", "nlu": blocks}, sort_keys=False)


def plain(text: str) -> str:
    return re.sub(r"\[(.+?)\]\(order_id\)", r"\1", text)


def train(directory: Path, base: Path, intents) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "nlu.yml").write_text(nlu_yaml(intents))
    config = {
        "recipe": "default.v1",
        "language": "en",
        "pipeline": [
            {"name": "nlu.spacy_tokenizer.BlankSpacyTokenizer"},
            {
                "name": "nlu.component.BertTritonNLU",
                "model_name_or_path": str(base),
                "triton_model_name": base.name,
                "epochs": 40,
                "learning_rate": 0.001,
                "batch_size": 8,
                "validation_fraction": 0.0,
                "seed": 1,
            },
        ],
    }
    (directory / "config.yml").write_text(yaml.safe_dump(config))
    return train_nlu(str(directory / "config.yml"), str(directory / "nlu.yml"), str(directory / "models"))


def parse(model: str, text: str) -> dict:
    return asyncio.run(Agent.load(model).parse_message(text))


@pytest.fixture
def triton_env(triton, monkeypatch):
    monkeypatch.setenv("TRITON_URL", triton.url)
    monkeypatch.setenv("TRITON_MODEL_REPOSITORY", str(triton.repository))
    return triton


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_trains_serves_and_parses(family, tmp_path, triton_env):
    corpus = [plain(text) for _, text in examples(INTENT_TEMPLATES)]
    base = make_checkpoint(family, tmp_path / f"tiny-{family}", corpus * 20)
    model = train(tmp_path / "project", base, INTENT_TEMPLATES)

    text = plain(next(text for _, text in examples(INTENT_TEMPLATES) if text.startswith("where is my order")))
    number = text.split()[-1]
    result = parse(model, text)
    assert result["intent"]["name"] == "order_status"
    confidences = [r["confidence"] for r in result["intent_ranking"]]
    assert confidences == sorted(confidences, reverse=True) and len(confidences) == len(INTENT_TEMPLATES)
    entities = [(e["entity"], e["value"], e["start"], e["end"], e["extractor"]) for e in result["entities"]]
    assert entities == [("order_id", number, 18, 18 + len(number), "BertTritonNLU")]
    assert 0 < result["entities"][0]["confidence_entity"] <= 1


def test_each_rasa_model_is_served_by_its_own_version(tmp_path, triton_env):
    """Retraining writes a new Triton version; the older Rasa model still gets the older one."""
    corpus = [plain(text) for _, text in examples(INTENT_TEMPLATES)]
    base = make_checkpoint("bert", tmp_path / "tiny-versions", corpus * 20)
    old = train(tmp_path / "old", base, ["order_status", "greet"])
    new = train(tmp_path / "new", base, ["order_status", "greet", "cancel_order"])

    name = base.name
    versions = sorted(int(p.name) for p in (triton_env.repository / name).iterdir() if p.name.isdigit())
    assert versions == [1, 2]

    assert Path(new).is_file()
    # Loading the older Rasa model has Triton serve both versions; the older one answers it.
    assert {r["name"] for r in parse(old, "cancel order 555555")["intent_ranking"]} == {"order_status", "greet"}
    client = TritonNLUClient(triton_env.url, 5.0)
    assert client.problem(name, 1) is None and client.problem(name, 2) is None
