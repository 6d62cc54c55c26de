"""The config hash (bench.config.hashing): its values are fixed, so committed runs stay resumable."""

import copy

from bench.config.hashing import config_hash, config_key, config_settings, flatten

CONFIG = {
    "seed": 1,
    "paths": {"results": "/x"},
    "experiment_name": "e",
    "logger": {},
    "resume": True,
    "force": False,
    "train": {"lr": 1e-3, "epochs": 2, "progress": "bar", "compile": "auto"},
    "model": {"name": "tiny", "dropout": None, "max_length": 64},
    "task": {"name": "rt_polarity", "max_train_samples": 32},
    "variant": {"name": "lora", "r": 8},
}


def test_the_hash_and_key_of_a_config_are_the_values_committed_runs_hold():
    assert (config_hash(CONFIG), config_key(CONFIG)) == ("4008173db6b1", "415bebc5c764")


def test_a_setting_hashed_only_when_set_changes_the_hash_once_set():
    cfg = copy.deepcopy(CONFIG)
    cfg["model"]["dropout"] = 0.2
    assert config_hash(cfg) == "e1d1a0eea7ac"


def test_settings_are_the_hashed_config_without_the_seed_as_dotted_keys():
    assert config_settings(CONFIG) == {
        "train.lr": 0.001,
        "train.epochs": 2,
        "model.name": "tiny",
        "model.max_length": 64,
        "task.name": "rt_polarity",
        "task.max_train_samples": 32,
        "variant.name": "lora",
        "variant.r": 8,
    }


def test_flatten_keeps_lists_and_empty_dicts_as_values():
    assert flatten({"a": {"b": [1, 2], "c": {}}, "d": 3}) == {"a.b": [1, 2], "a.c": {}, "d": 3}
