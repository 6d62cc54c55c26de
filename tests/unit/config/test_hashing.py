"""The config hash (bench.config.hashing): its values are fixed, so committed runs stay resumable."""

import copy

from omegaconf import OmegaConf

from bench.config.hashing import HASH_IGNORED, config_hash, config_key, config_settings, flatten

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


def test_config_key_is_the_config_hash_without_the_seed(compose):
    def both(*overrides: str) -> tuple[str, str]:
        container = OmegaConf.to_container(compose(list(overrides)), resolve=True)
        return config_hash(container), config_key(container)

    (h0, k0), (h1, k1) = both("seed=0"), both("seed=1")
    assert h0 != h1 and k0 == k1 and len(k0) == 12
    assert both("seed=0", "paths.results=/elsewhere", "experiment_name=x") == (h0, k0)  # HASH_IGNORED
    assert both("seed=0", "train.weight_decay=0.1")[1] != k0
    settings = config_settings(OmegaConf.to_container(compose(["seed=0"]), resolve=True))
    assert settings["train.weight_decay"] == 0.01 and settings["task.max_eval_samples"] is None
    assert settings["model.max_length"] == 128 and "seed" not in settings
    assert not any(k.split(".")[0] in HASH_IGNORED for k in settings)
