"""A composed config holds only the keys its schemas declare (bench.config.store.check_keys): Hydra's
``+key=value`` cannot add one to a typed section; the open sections take keys of their own."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf, open_dict

from bench.config.schemas import RootConfig, TrainConfig
from bench.config.store import check_keys, unknown_key


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+train.lrr=1", r"unknown key train.lrr=1 \('lrr' not in 'TrainConfig'\); did you mean train.lr\?"),
        ("+model.max_lenght=64", r"unknown key model.max_lenght=64 .* did you mean model.max_length\?"),
        (
            "+task.dev_sise=0.2",
            r"unknown key task.dev_sise=0.2 .* did you mean task.dev_size or task.dev_split or ",
        ),
        (
            "+variant.alhpa=2",
            r"unknown key variant.alhpa=2 \('alhpa' not in 'LoRAConfig'\); did you mean variant.alpha\?",
        ),
        ("+paths.cache=x", r"unknown key paths.cache=x .* valid keys: paths.results, paths.runs_csv"),
        ("+sed=1", r"unknown key sed=1 \('sed' not in 'RootConfig'\); did you mean seed\?"),
    ],
)
def test_a_key_added_with_plus_is_refused_at_composition(compose, override, message):
    with pytest.raises(ValueError, match=message):
        compose([override])


@pytest.mark.parametrize(
    "override",
    [
        "+logger.mine._target_=bench.results.wandb_sink.WandbSink",  # a sink: checked by bench.results.sinks
        "+model.targets.mine=[query,key]",  # a targets preset of the user's
        "+task.tsv_columns.extra=3",
        "hydra.job.chdir=false",
    ],
)
def test_the_extension_points_stay_open(compose, override):
    compose(["model=tiny", override], return_hydra_config=True)


def test_check_keys_reads_a_resolved_config_too(compose):
    cfg = compose(["model=tiny"])
    check_keys(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(cfg.train):
        cfg.train.epoch = 2
    with pytest.raises(ValueError, match=r"unknown key train.epoch=2 .* did you mean train.epochs"):
        check_keys(OmegaConf.to_container(cfg, resolve=True))


def test_an_unknown_variant_is_left_to_its_own_check(compose):
    cfg = OmegaConf.to_container(compose(["model=tiny"]), resolve=True)
    cfg["variant"] = {"name": "nope", "whatever": 1}
    check_keys(cfg)  # variants.build names the unknown variant and its choices


def test_the_message_lists_every_valid_key_when_none_is_close():
    line = unknown_key("train.zzz", 1, TrainConfig)
    assert line.startswith(
        "unknown key train.zzz=1 ('zzz' not in 'TrainConfig'); valid keys: train.batch_size, "
    )
    assert "train.weight_decay" in line and "+" not in line
    assert unknown_key("varient", "dora", RootConfig).endswith("did you mean variant?")
