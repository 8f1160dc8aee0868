"""The support bot end to end: `rasa train`, a real Triton, `rasa run` with the REST channel,
the action server, `rasa test nlu`, and an outage of Triton in the middle of a conversation."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ROOT, copy_project, rasa, rasa_test_nlu

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
FALLBACK_TEXT = DOMAIN["responses"]["utter_default"][0]["text"]
GREET_TEXT = DOMAIN["responses"]["utter_greet"][0]["text"]
ORDER_12345_EMAIL_QUESTION = "email address on order 12345"


def parse(servers, text: str) -> dict:
    response = httpx.post(
        f"{servers.rasa_url}/model/parse", params={"token": servers.token}, json={"text": text}, timeout=30
    )
    response.raise_for_status()
    return response.json()


def say(servers, sender: str, text: str) -> list:
    response = httpx.post(
        f"{servers.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=30
    )
    response.raise_for_status()
    return [message.get("text", "") for message in response.json()]


def versions(triton) -> list:
    return sorted(int(p.name) for p in (triton.repository / "support_nlu").iterdir() if p.name.isdigit())


def test_order_question_gets_order_status_and_exact_order_id(bot_servers):
    result = parse(bot_servers, "where is my order 12345?")
    assert result["intent"]["name"] == "order_status"
    assert 2 <= len(result["intent_ranking"]) <= 10
    order_ids = [e for e in result["entities"] if e["entity"] == "order_id"]
    assert [(e["value"], e["start"], e["end"], e["extractor"]) for e in order_ids] == [
        ("12345", 18, 23, "BertTritonNLU")
    ]
    assert 0 < order_ids[0]["confidence_entity"] <= 1


def test_messy_and_long_texts_keep_exact_spans(bot_servers):
    texts = [
        "hey   where is   my order   #98765 ??",
        "Wo ist meine Bestellung? ünïcode 😀 order 100234",
        "hello, "
        + "I have been waiting for a very long time and nobody answers my emails " * 6
        + "where is order 55821?",
    ]
    for text in texts:
        result = parse(bot_servers, text)
        for entity in result["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["value"]
        assert result["entities"], f"no entity found in {text!r}"
        assert result["entities"][-1]["value"] == text.rstrip(" ?").split()[-1].lstrip("#")


FILLER = "I ordered this a while ago and have been waiting for an answer from your shop for weeks. " * 4


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "the winter jacket is too small, I want to return it",
            {("product", "winter jacket"), ("reason", "too small")},
        ),
        ("please send it to 42 Maple Drive, Denver, CO 80202", {("address", "42 Maple Drive, Denver, CO 80202")}),
        # Past max_length (32 word pieces in the suite's config): the entities lie in a later window.
        (
            FILLER + "the winter jacket is too small, I want to return it",
            {("product", "winter jacket"), ("reason", "too small")},
        ),
    ],
    ids=["product-and-reason", "address", "later-window"],
)
def test_the_tagger_finds_products_reasons_and_addresses(bot_servers, text, expected):
    """No rule extracts these entity types, so only the BERT tagger (and its windows) can find them;
    each expected span occurs once in its text (values may be mapped by synonyms: "too small" is
    stored as "wrong size")."""
    entities = parse(bot_servers, text)["entities"]
    found = {(e["entity"], text[e["start"] : e["end"]]) for e in entities if e["extractor"] == "BertTritonNLU"}
    assert expected <= found, entities


def test_texts_of_any_length_get_an_answer(bot_servers):
    """10,000 English and 3,000 CJK characters: an intent, spans cut from the text, within the timeout.

    The tagger sees the first max_windows windows only (config.yml): an order number near the start
    is found, one past the cap is not tagged by BERT.
    """
    english = "where is my order 55821? " + "I have waited for weeks and nobody answers my emails. " * 200
    english = english[:10_000]
    cjk = ("我的订单在哪里？请帮我查一下。" * 250)[:3_000]
    for text in (english, cjk):
        result = parse(bot_servers, text)
        assert result["intent"]["name"] and 0 < result["intent"]["confidence"] <= 1
        for entity in result["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["value"]
    tagged = [e for e in parse(bot_servers, english)["entities"] if e["extractor"] == "BertTritonNLU"]
    assert ("order_id", "55821", 18) in [(e["entity"], e["value"], e["start"]) for e in tagged]
    assert max(e["end"] for e in tagged) < 5_000, (
        "past the window cap (about 1,000 to 3,700 characters) nothing is tagged"
    )


def _requests_by_model(triton) -> dict:
    """Triton's successful inference requests so far, by model and version (Prometheus metrics)."""
    text = httpx.get(f"http://localhost:{triton.metrics_port}/metrics", timeout=10).text
    counts = {}
    for match in re.finditer(r'^nv_inference_request_success\{model="([^"]+)",version="(\d+)"\} (\d+)', text, re.M):
        counts[(match[1], int(match[2]))] = int(match[3])
    return counts


def test_one_model_serves_each_message_with_one_request(bot_servers, triton):
    before = _requests_by_model(triton)
    texts = ["where is my order 12345?", "hi", "I want to return the toaster from order 55821"]
    for text in texts:
        parse(bot_servers, text)
    after = _requests_by_model(triton)
    changed = {key: count - before.get(key, 0) for key, count in after.items() if count != before.get(key, 0)}
    assert [name for name, _ in changed] == ["support_nlu"], changed
    assert list(changed.values()) == [len(texts)]


def test_rasa_follows_the_endpoints_file_it_was_started_with(bot_servers, triton):
    """bot_servers' Rasa runs with `--endpoints served-endpoints.yml`; the project's endpoints.yml
    beside it names another Triton (nothing listens there) and another model repository."""
    decoy = yaml.safe_load((bot_servers.project / "endpoints.yml").read_text())["triton"]
    assert decoy["url"] != triton.url
    before = sum(_requests_by_model(triton).values())
    assert parse(bot_servers, "where is my order 12345?")["intent"]["name"] == "order_status"
    assert sum(_requests_by_model(triton).values()) == before + 1
    assert not Path(decoy["model_repository"]).exists(), "the model was installed where the decoy points"


def test_conversation_over_rest_runs_the_action_server(bot_servers):
    assert say(bot_servers, "rest-user", "hi") == [GREET_TEXT]
    replies = say(bot_servers, "rest-user", "where is my order 12345?")
    assert any(ORDER_12345_EMAIL_QUESTION in reply for reply in replies), replies


def test_another_order_request_mid_form_switches_forms_with_its_order_number(bot_servers):
    sender = "switching-user"
    assert any("order number" in reply for reply in say(bot_servers, sender, "where is my order?"))
    replies = say(bot_servers, sender, "actually I want to return an item from order 55821")
    assert any("email address on order 55821" in reply for reply in replies), replies
    replies = say(bot_servers, sender, "mike.chen@example.com")
    assert any("Which item from order 55821" in reply for reply in replies), replies


def test_rasa_test_nlu_scores_our_intents_and_entities(trained_bot, triton, tmp_path):
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData

    # Eight examples of every intent (29 order numbers among them): enough to check that Rasa's
    # evaluation scores our component, at a fraction of the time of all ~800.
    by_intent = defaultdict(list)
    for message in load_data(str(ROOT / "data" / "nlu")).intent_examples:
        by_intent[message.get("intent")].append(message)
    sample = tmp_path / "sample.yml"
    sample.write_text(TrainingData([m for examples in by_intent.values() for m in examples[:8]]).nlu_as_yaml())
    results = tmp_path / "results"
    rasa_test_nlu(sample, trained_bot.model, results, cwd=trained_bot.project)
    intents = json.loads((results / "intent_report.json").read_text())
    entities = json.loads((results / "BertTritonNLU_report.json").read_text())
    assert intents["accuracy"] > 0.9
    assert entities["order_id"]["f1-score"] > 0.9


def test_unchanged_nlu_reuses_the_fine_tuned_models(trained_bot, triton, tmp_path):
    project = copy_project(trained_bot, tmp_path / "project")
    before = versions(triton)
    domain = project / "domain.yml"
    domain.write_text(domain.read_text().replace("How can I help?", "What can I do for you?"))
    output = rasa("train", "--fixed-model-name", "retrained", cwd=project)
    text = output.stdout + output.stderr
    assert "Restored component 'BertTritonNLU' from cache." in text
    assert "Starting to train component 'BertTritonNLU'" not in text
    assert versions(triton) == before


def test_triton_outage_gets_a_polite_fallback_and_recovers(bot_servers, triton):
    sender = "outage-user"
    assert say(bot_servers, sender, "hi") == [GREET_TEXT]

    triton.stop()
    started = time.monotonic()
    assert say(bot_servers, sender, "where is my order 12345?") == [FALLBACK_TEXT]
    assert time.monotonic() - started < 10

    triton.start()
    # Wait on /model/parse, which keeps no conversation state: a retry through the webhook
    # would walk the user down the fallback rules, whose rephrase hint also quotes "12345".
    deadline = time.monotonic() + 60
    while parse(bot_servers, "where is my order 12345?")["intent"]["name"] != "order_status":
        assert time.monotonic() < deadline, "the bot did not recover within 60 s of Triton's restart"
        time.sleep(1)
    replies = say(bot_servers, sender, "where is my order 12345?")
    assert any(ORDER_12345_EMAIL_QUESTION in reply for reply in replies), replies


def test_unreachable_triton_is_a_clear_error_at_load_and_a_fallback_per_message(
    trained_bot, monkeypatch, caplog, tmp_path
):
    import asyncio

    from rasa.core.agent import Agent

    from tests.conftest import free_port

    url = f"localhost:{free_port()}"
    monkeypatch.setenv("TRITON_URL", url)
    monkeypatch.setenv("TRITON_MODEL_REPOSITORY", str(tmp_path / "repository"))
    agent = Agent.load(str(trained_bot.model))
    errors = " ".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert f"Triton at {url} is unreachable" in errors
    assert re.search(r"'support_nlu' version \d+ cannot serve", errors), errors

    started = time.monotonic()
    result = asyncio.run(agent.parse_message("where is my order 12345?"))
    assert result["intent"]["name"] == "nlu_fallback"
    assert time.monotonic() - started < 5


def test_a_stalled_triton_gets_a_fallback_after_triton_timeout_then_recovers(
    trained_bot, triton, monkeypatch, tmp_path
):
    """TRITON_TIMEOUT bounds the wait on a Triton that takes the request and does not answer, over
    the endpoints file's `timeout` (1 s here, so a wait of 4 s shows the variable won); the messages
    after it cost a short health probe each, not the timeout again; the first answer after Triton
    goes on is a normal parse."""
    import asyncio

    from rasa.core.agent import Agent

    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        yaml.safe_dump({"triton": {"url": triton.url, "model_repository": str(triton.repository), "timeout": 1.0}})
    )
    monkeypatch.setenv("RASA_ENDPOINTS", str(endpoints))
    monkeypatch.setenv("TRITON_TIMEOUT", "4")
    agent = Agent.load(str(trained_bot.model))

    async def intent_and_seconds(text: str):
        started = time.monotonic()
        result = await agent.parse_message(text)
        return result["intent"]["name"], time.monotonic() - started

    async def conversation():
        assert (await intent_and_seconds("where is my order 12345?"))[0] == "order_status"
        with triton.stalled():
            intent, seconds = await intent_and_seconds("where is my order 55821?")
            # Rasa parses one message at a time: the conversations waiting behind that one must not
            # each pay the timeout again (the client probes a failed Triton with a short deadline).
            started = time.monotonic()
            others = [await intent_and_seconds(f"where is my order {n}?") for n in (12345, 77310, 100234)]
            waited = time.monotonic() - started
        assert intent == "nlu_fallback" and {i for i, _ in others} == {"nlu_fallback"}
        assert 4 <= seconds < 10, seconds
        assert waited < 2, others
        assert (await intent_and_seconds("where is my order 100234?"))[0] == "order_status"

    asyncio.run(conversation())
