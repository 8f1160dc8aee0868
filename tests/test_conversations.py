"""The support assistant's flows end to end: every test story in tests/conversations/ (Rasa's
test-story format) runs through the trained bot's real NLU (Triton) and dialogue policies."""

from __future__ import annotations

import json

from tests.conftest import ROOT, rasa

CONVERSATIONS = ROOT / "tests" / "conversations"


def test_every_conversation_passes(trained_bot, triton, tmp_path):
    rasa(
        "test",
        "core",
        "--stories",
        str(CONVERSATIONS),
        "--model",
        str(trained_bot.model),
        "--e2e",
        "--out",
        str(tmp_path),
        "--no-plot",
        "--successes",
        cwd=trained_bot.project,
    )
    result = json.loads((tmp_path / "story_report.json").read_text())["conversation_accuracy"]
    failed = tmp_path / "failed_test_stories.yml"
    assert result["correct"] == result["total"], failed.read_text()[:6000] if failed.exists() else result
    assert result["total"] >= 30


def test_training_data_validates_without_warnings():
    rasa("data", "validate", "--fail-on-warnings", cwd=ROOT)
