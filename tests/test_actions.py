"""The action server's actions and form validators against a real, temporary SQLite database."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from sqlalchemy import func, select

from actions import common, db, forms, submissions, support
from actions.models import Order, Refund, Return, Ticket
from tests.bot_texts import RESPONSES, said, shown, text
from tests.conftest import ROOT

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
JANE, MIKE = "jane.doe@example.com", "mike.chen@example.com"


@pytest.fixture(autouse=True)
def shop_db(tmp_path, monkeypatch) -> str:
    """A fresh database with the demo data for every test."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv(db.DATABASE_URL_VARIABLE, url)
    return url


def tracker(
    slots: Optional[Dict[str, Any]] = None,
    text: str = "",
    intent: str = "inform",
    sender: str = "customer-1",
    events: Optional[List[Dict]] = None,
    ranking=None,
    entities=None,
) -> Tracker:
    message = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "intent_ranking": ranking or [{"name": intent, "confidence": 0.9}],
        "entities": entities or [],
    }
    return Tracker(sender, dict(slots or {}), message, events or [], False, None, {}, "action_listen")


def verified(sender: str = "customer-1", **slots: Any) -> Dict[str, Any]:
    """Slots as the forms leave them once this conversation's customer verified the email."""
    return {**slots, common.VERIFIED_IN: sender}


def run(action, slots=None, **kwargs):
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker(slots, **kwargs), DOMAIN)
    return [said(m, slots) for m in dispatcher.messages], {e["name"]: e["value"] for e in events}


def validate(form, slot: str, value: Any, slots=None) -> Dict[str, Any]:
    method = getattr(form, f"validate_{slot}")
    return method(value, CollectingDispatcher(), tracker(slots), DOMAIN)


def count(model, **where) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).filter_by(**where))


def test_schema_and_demo_data_are_created_once(shop_db):
    engine = db.make_engine(shop_db)
    with db.Session(engine) as session:
        assert db.seed(session, db.SEED_FILE) == 0  # already seeded by make_engine
    assert count(Order) == 9


def test_the_action_server_registers_every_action_of_the_domain_and_every_response_is_said():
    """rasa_sdk imports every module of the `actions` package (python -m actions serves it)."""
    executor = ActionExecutor()
    executor.register_package("actions")
    assert sorted(executor.actions) == sorted(DOMAIN["actions"])
    code = "".join(path.read_text() for path in (ROOT / "actions").glob("*.py"))
    named = set(re.findall(r'"(utter_\w+)"', code))
    asked = {f"utter_ask_{slot}" for form in DOMAIN["forms"].values() for slot in form["required_slots"]}
    assert named | asked <= set(RESPONSES), (named | asked) - set(RESPONSES)
    # `rasa data validate` warns about every response no rule or story says; this is its real check
    data = "".join(path.read_text() for path in (ROOT / "data").rglob("*.yml"))
    faq = {f"utter_{intent}" for intent in DOMAIN["intents"] if intent.startswith("faq_")}
    spoken = set(re.findall(r"action: (utter_\w+)", data)) | named | asked | faq
    assert set(RESPONSES) <= spoken, set(RESPONSES) - spoken


def test_unknown_order_is_rejected_with_a_reason_the_next_question_gives():
    result = validate(forms.ValidateOrderStatusForm(), "order_id", "#777")
    assert result == {"order_id": None, "problem": result["problem"]} and "777" in result["problem"]
    texts, events = run(forms.AskOrderId(), {"problem": result["problem"]})
    assert len(texts) == 1 and texts[0].startswith(result["problem"]) and "order number" in texts[0]
    assert events == {"problem": None}


def test_email_must_be_the_one_on_the_order():
    form = forms.ValidateOrderStatusForm()
    assert validate(form, "order_id", "12345") == {"order_id": "12345"}
    wrong = validate(form, "email", MIKE, {"order_id": "12345"})
    assert wrong["email"] is None and "doesn't match" in wrong["problem"]
    assert validate(form, "email", "Jane.Doe@Example.com", {"order_id": "12345"}) == verified(email=JANE)
    assert validate(form, "email", "not an email", {"order_id": "12345"})["email"] is None


def test_correcting_the_order_number_asks_again_for_another_customers_email():
    form = forms.ValidateOrderStatusForm()
    assert validate(form, "order_id", "98765", {"email": JANE}) == {"order_id": "98765", "email": None}
    assert validate(form, "order_id", "100234", {"email": JANE}) == verified(order_id="100234")


def test_another_order_request_mid_form_rejects_the_turn_and_keeps_its_order_number():
    """ "Actually I want to return an item from order 55821" while the order-status form asks for
    the number: the number is validated (it carries over) and the turn rejected, so the switch rule
    starts the return form. Short answers, plain answers and the form's own requests are answers."""

    def form_turn(text: str, intent: str, requested_slot: str = "order_id") -> List[Dict]:
        number = text.index("55821")
        said = tracker(
            {"order_id": "55821", "requested_slot": requested_slot},
            text,
            intent,
            events=[{"event": "user"}, {"event": "slot", "name": "order_id", "value": "55821"}],
            entities=[{"entity": "order_id", "value": "55821", "start": number, "end": number + 5}],
        )
        return asyncio.run(forms.ValidateOrderStatusForm().run(CollectingDispatcher(), said, DOMAIN))

    switch = "actually I want to return an item from order 55821"
    switched = form_turn(switch, "return_item")
    assert [(e["event"], e["name"], e.get("value")) for e in switched] == [
        ("slot", "order_id", "55821"),
        ("action_execution_rejected", "order_status_form", None),
    ]
    assert form_turn(switch, "return_item", requested_slot="email") == switched  # the number was not asked for
    answer = [switched[0]]
    assert form_turn("return order 55821", "return_item") == answer
    for intent in ("inform", "order_status", "refund_status"):
        assert form_turn(switch, intent) == answer, intent


def test_order_status_tells_status_and_tracking():
    texts, events = run(submissions.ActionOrderStatus(), verified(order_id="12345", email=JANE))
    assert "shipped" in texts[0] and "1Z999AA10123456784" in texts[0] and "UPS" in texts[0]
    assert events["order_id"] is None  # the next flow asks which order


def test_cancel_ends_the_form_early_for_a_shipped_order_and_explains():
    assert validate(forms.ValidateCancelOrderForm(), "email", JANE, {"order_id": "12345"}) == verified(
        email=JANE, requested_slot=None
    )
    texts, _ = run(submissions.ActionCancelOrder(), verified(order_id="12345", email=JANE))
    assert "already shipped" in texts[0]
    assert count(Order, number="12345", status="shipped") == 1


def test_cancel_is_done_once_even_when_repeated():
    slots = verified(order_id="100234", email=JANE, confirm_cancel=True)
    first, events = run(submissions.ActionCancelOrder(), slots)
    again, _ = run(submissions.ActionCancelOrder(), slots)
    assert "is cancelled" in first[0] and "$76.00" in first[0] and "already cancelled" in again[0]
    assert events == {"order_id": None, "confirm_cancel": None}
    assert count(Order, number="100234", status="cancelled") == 1 and count(Refund, order_number="100234") == 1
    # asked a third time, the form ends before the confirmation and the answer is the same
    assert validate(forms.ValidateCancelOrderForm(), "order_id", "100234", {"email": JANE}) == verified(
        order_id="100234", requested_slot=None
    )


def test_declined_confirmation_changes_nothing():
    texts, _ = run(submissions.ActionCancelOrder(), verified(order_id="100234", email=JANE, confirm_cancel=False))
    assert "won't cancel" in texts[0] and count(Order, number="100234", status="processing") == 1


def test_a_confirmation_is_kept_as_said_without_a_warning(caplog):
    """Yes or no to "shall I cancel?" goes through the form's validator unchanged, and the log stays
    quiet (rasa_sdk warns at every turn about a slot without a validator)."""
    for answer, intent in ((True, "affirm"), (False, "deny")):
        said = tracker(
            verified(order_id="100234", email=JANE, confirm_cancel=answer, requested_slot="confirm_cancel"),
            intent=intent,
            events=[{"event": "user"}, {"event": "slot", "name": "confirm_cancel", "value": answer}],
        )
        with caplog.at_level(logging.WARNING):
            events = asyncio.run(forms.ValidateCancelOrderForm().run(CollectingDispatcher(), said, DOMAIN))
        assert {"event": "slot", "timestamp": None, "name": "confirm_cancel", "value": answer} in events, events
    assert not caplog.records, caplog.text


def test_return_creates_one_return_with_a_reference_even_when_repeated():
    form = forms.ValidateReturnForm()
    slots = verified(order_id="55821", email=MIKE)
    assert validate(form, "product", "the kettle", slots) == {"product": "electric kettle"}
    assert "toaster" in validate(form, "product", "a sofa", slots)["problem"]
    slots.update(product="electric kettle", return_reason="damaged or defective")
    first, events = run(submissions.ActionStartReturn(), slots)
    again, _ = run(submissions.ActionStartReturn(), slots)
    assert "RET-10001" in first[0] and "RET-10001" in again[0] and "already exists" in again[0]
    assert count(Return) == 1 and count(Refund, status="awaiting_return") == 1
    assert events == {"order_id": None, "product": None, "return_reason": None}


def test_return_outside_the_window_or_before_delivery_is_refused():
    form = forms.ValidateReturnForm()
    assert validate(form, "email", "amira@example.org", {"order_id": "31415"})["requested_slot"] is None
    texts, _ = run(submissions.ActionStartReturn(), verified(order_id="31415", email="amira@example.org"))
    assert "return window" in texts[0]
    texts, _ = run(submissions.ActionStartReturn(), verified(order_id="12345", email=JANE, product="headphones"))
    assert "hasn't been delivered" in texts[0] and count(Return) == 0


def test_address_changes_before_shipping_only():
    form = forms.ValidateChangeAddressForm()
    assert validate(form, "new_address", "nowhere")["new_address"] is None
    new = "7 Oak Avenue, Portland, OR 97201"
    texts, _ = run(submissions.ActionChangeAddress(), verified(order_id="48213", email=MIKE, new_address=new))
    again, _ = run(submissions.ActionChangeAddress(), verified(order_id="48213", email=MIKE, new_address=new))
    assert "will now be delivered to" in texts[0] and "already going to" in again[0]
    assert count(Order, number="48213", shipping_address=new) == 1
    refused, _ = run(submissions.ActionChangeAddress(), verified(order_id="98765", email=MIKE, new_address=new))
    assert "already shipped" in refused[0] and count(Order, shipping_address=new) == 1


def test_handoff_opens_one_ticket_per_conversation_with_a_summary():
    events = [{"event": "user", "text": "my parcel is damaged"}, {"event": "bot", "text": "Sorry to hear that."}]
    slots = verified("c-42", email=JANE)
    first, _ = run(support.ActionHumanHandoff(), slots, events=events, sender="c-42")
    again, _ = run(support.ActionHumanHandoff(), slots, events=events, sender="c-42")
    assert "TCK-10001" in first[0] and "TCK-10001" in again[0] and JANE in first[0]
    with db.transaction() as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        assert "customer: my parcel is damaged" in ticket.summary and f"email: {JANE}" in ticket.summary


def test_a_database_outage_gets_an_answer_and_an_error_log(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(db.DATABASE_URL_VARIABLE, f"sqlite:///{tmp_path / 'missing' / 'shop.db'}")
    with caplog.at_level(logging.ERROR):
        texts, _ = run(submissions.ActionOrderStatus(), verified(order_id="12345", email=JANE))
        rejected = validate(forms.ValidateOrderStatusForm(), "order_id", "12345")
        handoff, _ = run(support.ActionHumanHandoff(), {})
    assert texts == [text("utter_backend_down")] and rejected["problem"] == text("utter_backend_down")
    assert handoff == [text("utter_handoff_failed")]
    assert "database failed" in caplog.text


def test_every_faq_intent_has_an_answer_in_the_domain(caplog):
    faq_answers = [f"utter_{intent}" for intent in DOMAIN["intents"] if intent.startswith("faq_")]
    assert sorted(faq_answers) == sorted(name for name in RESPONSES if name.startswith("utter_faq_"))
    texts, _ = run(support.ActionAnswerFaq(), intent="faq_opening_hours")
    assert texts == [text("utter_faq_opening_hours")] and "Monday" in texts[0]
    with caplog.at_level(logging.ERROR):
        texts, _ = run(support.ActionAnswerFaq(), intent="faq_gift_wrapping")
    assert texts == [text("utter_default")] and "add a response utter_faq_gift_wrapping to domain.yml" in caplog.text


def test_unsure_nlu_suggests_the_likely_request_with_its_entities():
    ranking = [{"name": "nlu_fallback", "confidence": 1}, {"name": "cancel_order", "confidence": 0.3}]
    dispatcher = CollectingDispatcher()
    support.ActionSuggestIntent().run(
        dispatcher,
        tracker(intent="nlu_fallback", ranking=ranking, entities=[{"entity": "order_id", "value": "100234"}]),
        DOMAIN,
    )
    [message] = [shown(m) for m in dispatcher.messages]
    assert "cancel an order" in message["text"]
    assert message["buttons"][0]["payload"] == '/cancel_order{"order_id": "100234"}'
    texts, _ = run(support.ActionSuggestIntent(), intent="nlu_fallback", ranking=[{"name": "nlu_fallback"}])
    assert texts == [text("utter_default")]  # Triton down: nothing to suggest
