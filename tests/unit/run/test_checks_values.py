"""The value checks of bench.run.checks: dev_size, the seeds, label_range, the test sizes, alpha,
max_length (with a variant's virtual tokens) against the model's limit, and a key no schema declares;
each fails its run before anything loads, in one line naming the key, the value and what is valid."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest
from helpers.runs import tiny_run
from omegaconf import OmegaConf, open_dict

import variants
from bench.config.schemas import ModelConfig, TaskConfig
from bench.config.store import group_config
from bench.inputs.models import model_config
from bench.run import checks, runner
from bench.run.checks import MAX_SEED, check_model, check_seeds, check_task


def options(variant: str) -> set[str]:
    return {f.name for f in dataclasses.fields(variants.get(variant).Config)}


ALPHA_VARIANTS = [name for name in variants.available() if "alpha" in options(name)]
BAD = {
    ("task.dev_size=1.5",): (
        r"task.dev_size=1.5 is not valid: it must be a fraction of train in \(0, 1\) or a whole number of "
        "examples >= 1"
    ),
    ("seed=-1",): r"seed=-1 is not valid: it must be an integer in \[0, 4294967295\]",
    ("seed=4294967296",): r"seed=4294967296 is not valid: it must be an integer in \[0, 4294967295\]",
    ("task.split_seed=-1",): r"task.split_seed=-1 is not valid: it must be an integer in \[0, 4294967295\]",
    ("model.max_length=0",): "model.max_length=0 is not valid: it must be an integer >= 1",
    ("task.max_test_samples=0",): "task.max_test_samples must be >= 1 or null, got 0",
    ("task.test_fraction=0.9",): r"task.test_fraction=0.9 is not valid: it must be a fraction in \(0, 0.9\)",
    ("task.test_fraction=0",): r"task.test_fraction=0.0 is not valid: it must be a fraction in \(0, 0.9\)",
    ("task=snli", "task.test_fraction=0.4"): (
        "task.test_fraction=0.4 is not valid for task 'snli': it sizes the test part of a vader corpus, "
        "and this task's source is packaged; leave it unset"
    ),
    ("task.label_range=[0,5]",): (
        r"task.label_range=\[0.0, 5.0\] is not valid for task 'rt_polarity': it bounds regression targets"
    ),
    ("task=rt_rating", "task.label_range=[5,0]"): (
        r"task.label_range=\[5.0, 0.0\] is not valid: it must be \[low, high\], two finite numbers with "
        "low < high"
    ),
    **{  # each at a rank that fits the tiny model's layers (QLoRA's default r is 64)
        (f"variant={name}", "variant.alpha=-1", *(["variant.r=4"] if "r" in options(name) else [])): (
            r"alpha=-1.0 must be a finite number > 0 \(it scales the update"
        )
        for name in ALPHA_VARIANTS
    },
    ("variant=lora", "variant.alpha=0"): "alpha=0.0 must be a finite number > 0",
    ("variant=prompt_tuning",): (
        r"model.max_length=64 and the variant's 20 virtual tokens need 84 positions, more than the 64 of "
        "model 'tiny', whose positions are sized to model.max_length: train the variant on a pretrained model"
    ),
    ("+train.lrr=1",): r"unknown key train.lrr=1 \('lrr' not in 'TrainConfig'\); did you mean train.lr\?$",
}


@pytest.mark.parametrize(("overrides", "message"), BAD.items(), ids=[" ".join(o) for o in BAD])
def test_a_bad_value_is_refused_before_anything_loads(compose, tmp_path, nothing_loads, overrides, message):
    with pytest.raises(ValueError, match=message) as e:
        tiny_run(compose, tmp_path, *overrides)
    assert "\n" not in str(e.value)


def test_every_variant_with_an_alpha_is_covered():
    assert {"lora", "dora", "qlora", "loraplus", "adalora"} <= set(ALPHA_VARIANTS)


def test_a_key_added_after_composition_is_refused_by_the_checks(compose, tmp_path, nothing_loads):
    cfg = compose(["model=tiny", f"paths.results={tmp_path}"])
    with open_dict(cfg.task):  # as Hydra's +task.max_train_sample=8 does
        cfg.task.max_train_sample = 8
    with pytest.raises(
        ValueError, match=r"unknown key task.max_train_sample=8 .*did you mean task.max_train_samples or "
    ):
        runner.run(cfg, tmp_path / "runs" / "tiny")


@pytest.mark.parametrize(
    "extension", ["+logger.mine._target_=bench.results.sinks.Sink", "+model.targets.mine=[query]"]
)
def test_the_open_sections_take_keys_of_their_own(compose, extension):
    cfg = compose(["model=tiny", extension])
    checks.check_keys(OmegaConf.to_container(cfg, resolve=True))


def test_dev_size_is_a_fraction_or_a_whole_count():
    sst2 = group_config("task", "sst2", TaskConfig)
    for size in (0.1, 0.5, 1, 2.0, 100):
        check_task(replace(sst2, dev_size=size))
    for size in (0, -1, 1.0000001, 1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=rf"task.dev_size={size} is not valid"):
            check_task(replace(sst2, dev_size=size))


def test_a_seed_is_an_integer_of_32_bits():
    for seed in (0, 1, MAX_SEED):
        check_seeds({"seed": seed})
    for seed in (-1, MAX_SEED + 1, True, 1.5):
        with pytest.raises(ValueError, match=rf"^seed={seed!r} is not valid: it must be an integer in \[0, "):
            check_seeds({"seed": seed})


def test_max_length_fits_minilm_s_512_positions():
    minilm = model_config("minilm")
    check_model(replace(minilm, max_length=512))
    with pytest.raises(
        ValueError,
        match=r"^model.max_length=1000 is not valid: it must be in 1..512, the most tokens model 'minilm' "
        r"takes \(its config's max_position_embeddings\)$",
    ):
        check_model(replace(minilm, max_length=1000))


def test_the_virtual_tokens_of_a_variant_take_positions_beside_max_length():
    minilm = model_config("minilm")
    check_model(replace(minilm, max_length=492), variants.build("prompt_tuning").added_tokens())
    check_model(replace(minilm, max_length=502), added_tokens=10)
    with pytest.raises(
        ValueError,
        match=r"^model.max_length=493 and the variant's 20 virtual tokens need 513 positions, more than the "
        r"512 of model 'minilm': use a model.max_length of at most 492, or fewer virtual tokens$",
    ):
        check_model(replace(minilm, max_length=493), added_tokens=20)
    check_model(ModelConfig(name="tiny", source="tiny", max_length=64))  # no virtual tokens: it fits
    with pytest.raises(ValueError, match=r"more than the 64 of model 'tiny', whose positions are sized to"):
        check_model(ModelConfig(name="tiny", source="tiny", max_length=64), added_tokens=1)


def test_the_limit_comes_from_the_checkpoint_s_config(tmp_path):
    from transformers import DebertaV2Config, RobertaConfig

    RobertaConfig(max_position_embeddings=514).save_pretrained(tmp_path / "roberta")
    DebertaV2Config(max_position_embeddings=512, position_biased_input=False).save_pretrained(
        tmp_path / "deberta"
    )
    roberta = ModelConfig(name="local_roberta", pretrained=str(tmp_path / "roberta"), max_length=512)
    check_model(roberta)  # 514 positions, of which RoBERTa reserves 2
    with pytest.raises(ValueError, match=r"model.max_length=513 is not valid: it must be in 1..512"):
        check_model(replace(roberta, max_length=513))
    # DeBERTa-v3's positions are relative: any length fits them
    check_model(ModelConfig(name="local_deberta", pretrained=str(tmp_path / "deberta"), max_length=2048))
    check_model(ModelConfig(name="tiny", source="tiny", max_length=4096))  # sized to max_length
