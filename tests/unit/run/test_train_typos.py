"""A mistyped key on the command line (bench.run.train.one_line): Hydra's "Could not override" becomes
one line naming the key, its value and the closest valid keys, and never suggests adding it with ``+``."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from bench.run.train import one_line


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "train.lrr=1",
            "error: unknown key train.lrr=1 ('lrr' not in 'TrainConfig'); did you mean train.lr?",
        ),
        (
            "variant.rr=3",
            "error: unknown key variant.rr=3 ('rr' not in 'LoRAConfig'); did you mean variant.r?",
        ),
        ("model.max_lenght=64", "did you mean model.max_length?"),
        (
            "varient=dora",
            "error: unknown key varient=dora ('varient' not in 'RootConfig'); did you mean variant?",
        ),
    ],
)
def test_a_mistyped_key_names_the_close_valid_keys_and_no_plus(compose, override, expected):
    with pytest.raises(ConfigCompositionException) as e:
        compose([override])
    line = one_line(e.value, "no run started")
    assert expected in line and "+" not in line and "\n" not in line
    assert line.endswith("(no run started; HYDRA_FULL_ERROR=1 prints it)")
