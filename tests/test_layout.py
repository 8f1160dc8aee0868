"""The house stays as issue 32 left it: training apart from serving, short modules, and a short
path for the component's configuration through training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.checkpoints import make_checkpoint
from tests.config_trace import TEXTS, returns, train_tiny_model

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 300
# tests/config_trace.py on 61509ba (before training moved to nlu/training/) counted 11 returns.
MAX_RETURNS = 5


def test_no_module_of_the_product_is_over_300_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for package in ("bot", "actions", "nlu")
        for path in (ROOT / package).rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these by responsibility: {long}"


def test_what_the_rasa_server_loads_imports_neither_torch_nor_transformers():
    """The import contract (make lint) reads the imports; this runs them, as `rasa run` does."""
    modules = ["nlu.component", "nlu.spacy_tokenizer", "nlu.structured_entities", "nlu.serving", "bot.channels"]
    code = f"import sys; import {', '.join(modules)}; print(sorted({{'torch', 'transformers'}} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_configuration_reaches_the_written_version_returning_to_few_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_MODEL_REPOSITORY", str(tmp_path / "live"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    steps = train_tiny_model(str(make_checkpoint("bert", tmp_path / "bert", TEXTS)), tmp_path)
    assert steps[0] == ("component.py", "train") and ("triton/repository.py", "install_version") in steps
    assert returns(steps) <= MAX_RETURNS, steps
