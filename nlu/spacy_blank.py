"""spaCy for the rule-based components (the tokenizer, the structured entities), imported without torch.

spaCy's thinc imports torch whenever it is installed (thinc.compat, for GPU interop): hundreds of
MiB of resident memory and seconds of start-up in every Rasa server (docs/nlu.md), for rule-based
tokenizing and matching that never touch it. Importing spaCy here with torch hidden leaves thinc without it; a
process that trains imports torch itself later, unaffected. Where thinc or torch is already loaded
(a test process, training) spaCy is imported as it is. Import spaCy in `nlu` only from here.
"""

from __future__ import annotations

import sys
from types import ModuleType


def _import_spacy() -> ModuleType:
    if "thinc" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError: thinc goes without
    try:
        import spacy
    finally:
        del sys.modules["torch"]
    return spacy


spacy = _import_spacy()
