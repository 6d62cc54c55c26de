"""The config hash: which settings of a resolved config say what a run computes, and their short hash.

``config_hash`` names a run (resume matches it), ``config_key`` names its configuration (the hash without
the seed: a leaderboard row) and ``config_settings`` lists what two configurations differ in.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bench.config.hash_policy import unhashed
from bench.config.schemas import ModelConfig, RootConfig, TaskConfig, TrainConfig

# What does not change what a run computes: where it logs, how it reports progress, what it keeps, and
# which runs of a grid staged tuning makes; and vader_test_fraction, hashed where a task reads it
# (task.test_fraction).
HASH_IGNORED = (
    "logger",
    "paths",
    "hydra",
    "resume",
    "force",
    "experiment_name",
    "tune",
    "vader_test_fraction",
)
# The sections whose schemas mark settings as not hashed, or hashed only when set (bench.config.hash_policy).
SECTION_SCHEMAS = {"train": TrainConfig, "task": TaskConfig, "model": ModelConfig}


def config_payload(cfg: dict[str, Any], with_seed: bool = True) -> dict[str, Any]:
    """The resolved config minus HASH_IGNORED and the settings its schemas (the root's and the sections')
    leave unhashed (not what a run computes), and minus ``seed`` unless ``with_seed``: what
    ``config_hash``, ``config_key`` and ``config_settings`` read."""
    kept = {k: v for k, v in cfg.items() if k not in HASH_IGNORED and (with_seed or k != "seed")}
    out = unhashed(kept, RootConfig)
    for section, schema in SECTION_SCHEMAS.items():
        if isinstance(out.get(section), dict):
            out[section] = unhashed(out[section], schema)
    return out


def _short_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_hash(cfg: dict[str, Any]) -> str:
    """A short hash of everything that changes what a run computes (not where it logs): one per run."""
    return _short_hash(config_payload(cfg))


def config_key(cfg: dict[str, Any]) -> str:
    """``config_hash`` without the seed: one per configuration, shared by its seeds (a leaderboard row)."""
    return _short_hash(config_payload(cfg, with_seed=False))


def config_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The payload of ``config_key`` flattened to dotted keys (``train.weight_decay``,
    ``model.max_length``, ``task.max_eval_samples``): what two configurations differ in."""
    return flatten(config_payload(cfg, with_seed=False))


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys; lists and other values as they are."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
