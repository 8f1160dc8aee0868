"""config.yml's settings of BertTritonNLU: a wrong one is named before any training starts."""

from __future__ import annotations

import pytest

from nlu.component import BertTritonNLU


def component(**settings) -> BertTritonNLU:
    return BertTritonNLU({**BertTritonNLU.get_default_config(), **settings}, None, None)


def test_the_defaults_and_the_shipped_settings_are_accepted():
    component()
    component(epochs=30, learning_rate=0.0003, validation_fraction=0, mixed_precision=True)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"epoch": 3}, "unknown setting(s) epoch"),
        ({"epochs": 0}, "epochs must be a whole number of at least 1"),
        ({"batch_size": "16"}, "batch_size must be a int"),
        ({"validation_fraction": 1.0}, "validation_fraction must be at least 0 and below 1"),
        ({"in_scope_coverage": 0}, "in_scope_coverage must be above 0"),
        ({"mixed_precision": 1}, "mixed_precision must be a bool"),
        ({"stride": 64}, "stride must be below max_length"),
    ],
)
def test_a_wrong_setting_is_named(settings, named):
    with pytest.raises(
        ValueError, match="BertTritonNLU in config.yml: " + named.replace("(", r"\(").replace(")", r"\)")
    ):
        component(**settings)
