"""The table of requests (actions/flows.yml) agrees with the domain, and data/rules/forms.yml is
exactly what `python -m actions.rules` generates from it, so Rasa trains on the table's rules."""

from __future__ import annotations

import yaml

from actions import rules
from actions.common import FLOWS, FORM_INTENTS, INTENT_DESCRIPTIONS
from tests.conftest import ROOT

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())


def test_the_committed_form_rules_are_what_the_table_generates():
    committed = rules.OUTPUT.read_text(encoding="utf-8")
    assert committed == rules.generate(), "data/rules/forms.yml is out of date: run `python -m actions.rules`"


def test_the_table_names_the_domains_forms_intents_and_actions():
    assert sorted(FORM_INTENTS) == sorted(DOMAIN["forms"])
    intents = {name for names in FORM_INTENTS.values() for name in names}
    assert intents <= set(DOMAIN["intents"]) and set(INTENT_DESCRIPTIONS) <= set(DOMAIN["intents"])
    assert {spec["submit"] for spec in FLOWS["forms"].values()} <= set(DOMAIN["actions"])


def test_each_form_switches_to_every_other_form_on_its_intents():
    generated = yaml.safe_load(rules.generate())["rules"]
    switches = {rule["rule"] for rule in generated if rule["rule"].startswith("Switch from")}
    assert len(switches) == len(FORM_INTENTS) * (len(FORM_INTENTS) - 1)
    [to_status] = [r for r in generated if r["rule"] == "Switch from the return form to the order status form"]
    assert to_status["condition"] == [{"active_loop": "return_form"}]
    assert to_status["steps"][0] == {"or": [{"intent": "order_status"}, {"intent": "refund_status"}]}
    assert to_status["steps"][-2:] == [{"action": "order_status_form"}, {"active_loop": "order_status_form"}]
