"""Following the component's configuration through training: which functions of `nlu/` receive it
(the config dict, the FineTuneConfig, EncodingSettings and TextEncoder made of it, or the Triton
model name it sets), in the order they are first called, and how often that path returns to a file
it had already left.

The measure of issue 32 ("returns to a file already left"), taken from a real training instead of by
hand. `python tests/config_trace.py` prints the path of the code on sys.path (run it with
PYTHONPATH=<another checkout> to measure that one); tests/test_layout.py keeps the number low.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

CARRIERS = ("FineTuneConfig", "EncodingSettings", "TextEncoder")
TEXTS = ["where is my order 12345", "hi there", "cancel order 55555", "hello", "track 12345 please", "hey"] * 3
INTENTS = ["status", "greet", "cancel", "greet", "status", "greet"] * 3

Step = Tuple[str, str]  # (file under nlu/, function)


def config_path(train: Callable[[], Any], config: Dict[str, Any]) -> List[Step]:
    """The (file, function) steps of `nlu/` whose arguments carry `config`, first calls only, in order."""
    seen: set = set()
    steps: List[Step] = []

    def carries(value: Any) -> bool:
        return (
            value is config
            or getattr(value, "component_config", None) is config
            or type(value).__name__ in CARRIERS
            or (isinstance(value, str) and value == config["triton_model_name"])
        )

    def profile(frame, event, arg):
        code = frame.f_code
        if (
            event != "call"
            or code in seen
            or code.co_name.startswith("<")
            or f"{os.sep}nlu{os.sep}" not in code.co_filename
        ):
            return
        if any(carries(value) for value in list(frame.f_locals.values())):
            seen.add(code)
            steps.append((code.co_filename.split(f"{os.sep}nlu{os.sep}", 1)[1], code.co_name))

    sys.setprofile(profile)
    try:
        train()
    finally:
        sys.setprofile(None)
    return steps


def returns(steps: List[Step]) -> int:
    """How often the path enters a file it had left before."""
    left, count, current = set(), 0, None
    for file, _ in steps:
        if file != current:
            if file in left:
                count += 1
            if current is not None:
                left.add(current)
            current = file
    return count


def train_tiny_model(base_model: str, directory: Path) -> List[Step]:
    """Train the component (`BertTritonNLU.train`) on a few texts and a tiny checkpoint; its config path.
    TRITON_MODEL_REPOSITORY and MLFLOW_TRACKING_URI must name places of the caller's."""
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from nlu.component import BertTritonNLU

    config = {**BertTritonNLU.get_default_config(), "model_name_or_path": base_model, "epochs": 1, "batch_size": 4}
    (directory / "storage").mkdir()
    component = BertTritonNLU(config, LocalModelStorage(directory / "storage"), Resource("nlu"))
    data = TrainingData([Message(data={"text": text, "intent": intent}) for text, intent in zip(TEXTS, INTENTS)])
    return config_path(lambda: component.train(data), config)


def main() -> None:
    from tests.checkpoints import make_checkpoint

    with tempfile.TemporaryDirectory() as scratch:
        os.environ["TRITON_MODEL_REPOSITORY"] = str(Path(scratch) / "live")
        os.environ["MLFLOW_TRACKING_URI"] = (Path(scratch) / "mlruns").as_uri()
        base = make_checkpoint("bert", Path(scratch) / "bert", TEXTS)
        steps = train_tiny_model(str(base), Path(scratch))
    for file, function in steps:
        print(f"{file:32} {function}")
    print(
        f"{len(steps)} steps in {len({file for file, _ in steps})} files, {returns(steps)} returns to a file already left"
    )


if __name__ == "__main__":
    main()
