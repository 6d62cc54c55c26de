"""The config schemas (bench.config.schemas): dataclasses whose unset values OmegaConf reads as missing."""

import omegaconf
import pytest
from omegaconf import OmegaConf

from bench.config.schemas import MISSING, ModelConfig, PathsConfig, TaskConfig, TrainConfig, TuneConfig

ARCHITECTURE = {"family", "vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size"}
TASK_REQUIRED = {"name", "text_fields", "num_labels", "metrics", "main_metric", "eval_splits"}


def test_missing_is_omegaconfs_marker():
    assert MISSING == omegaconf.MISSING


@pytest.mark.parametrize(
    ("schema", "unset"),
    [
        (ModelConfig, {"name"} | ARCHITECTURE),
        (TaskConfig, TASK_REQUIRED),
        (PathsConfig, {"results", "runs_csv"}),
        (TrainConfig, set()),
        (
            TuneConfig,
            {"top_k", "first_seeds", "top_seeds", "edge_cap"},
        ),  # an experiment tuned in stages sets them
    ],
)
def test_the_values_a_schema_leaves_unset_are_missing_in_a_config(schema, unset):
    cfg = OmegaConf.structured(schema)
    assert {k for k in cfg if OmegaConf.is_missing(cfg, k)} == unset
