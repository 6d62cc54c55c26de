"""Every variant against Hugging Face peft (a test reference only) on identical weights: one matrix.

Each entry of MATRIX is one case of one comparison (its ``check``) for one variant, with everything the
case needs: our options, peft's config class and options, the targets, the base peft starts from, the
tolerances. Each test below runs the entries of its check; nothing in a test branches on the variant.

- outputs: logits and the last hidden state after a few training steps, two ways: a peft model on an
  identical base holding our trained tensors, and our adapter saved to disk and loaded with
  ``peft.PeftModel.from_pretrained``;
- train_mode: the same in training mode from one seed, so dropout sits where peft puts it;
- merge: our merged outputs equal our unmerged ones, our merged weights peft's ``merge_and_unload``;
- gradients: one backward gives peft's gradients (DoRA: the norm is detached as in peft);
- init: what peft initialises without drawing from torch's generator equals ours (DoRA's magnitude, VeRA's
  shared projections);
- optimizer_groups: our optimizer groups equal peft's (LoRA+'s ``create_loraplus_optimizer``);
- extra_loss, step_end, saved_adapter: AdaLoRA's dW and orthogonality loss, its importance, budget and
  mask step by step beside peft's allocator, and its pruned adapter loaded by peft.

NF4's bytes against bitsandbytes are tests/unit/variants/test_nf4.py and test_qlora.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers.dequantized import dequantized_copy
from helpers.peft_reference import (
    ATOL,
    RTOL,
    assert_matches_peft,
    assert_same_outputs,
    live_by_key,
    named_groups,
    outputs,
    peft_key,
    peft_twin,
    save_adapter_for_test,
    train_mode_outputs,
    trained,
)
from torch import nn

import variants
from bench.config.schemas import BERT_TARGETS
from bench.testing import perturb_biases_and_norms
from variants import build
from variants.adalora import schedule
from variants.base import Targets, adapter_layers
from variants.vera import shared_projections

peft = pytest.importorskip("peft")
from peft import (  # noqa: E402
    AdaLoraConfig,
    IA3Config,
    LoHaConfig,
    LoKrConfig,
    LoraConfig,
    OFTConfig,
    PeftModel,
    PromptTuningConfig,
    VeraConfig,
    get_peft_model,
)
from peft.optimizers import create_loraplus_optimizer  # noqa: E402

ATTENTION = Targets(modules=["query", "value"], head=["classifier"])
# Layers of two shapes (32 -> 32 and 32 -> 64), so each slices VeRA's shared pair differently.
MIXED = Targets(modules=["query", "value", "intermediate.dense"], head=["classifier"])
ALL_LINEAR = Targets(modules=list(BERT_TARGETS["all_linear"]), head=["classifier"])
FOUR = Targets(modules=["query", "key", "value", "intermediate.dense"], head=["classifier"])
IA3_TARGETS = Targets(modules=["key", "value", "output.dense"], head=["classifier"])  # peft's for BERT
# One module per suffix and layer (the gradient test counts them), both IA3 kinds among them.
IA3_FOUR = Targets(modules=["key", "value", "attention.output.dense", "intermediate.dense"])
# Inputs of two sizes (32 and 64: output.dense matches both attention.output.dense and the FFN's output).
OFT_MIXED = Targets(modules=["query", "value", "output.dense"], head=["classifier"])
DORA = partial(LoraConfig, use_dora=True)
LR, WD, RATIO = 1e-3, 0.01, 16.0  # LoRA+'s groups
ADALORA = {"init_r": 12, "target_r": 8, "tinit": 2, "tfinal": 3}  # of a 12-step run: 3 warm-up, 3 fixed steps
NAMES = ("lora_A", "lora_E", "lora_B")


def dora_magnitudes(ours: nn.Module, theirs: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [
        (layer.magnitude, theirs.base_model.model.get_submodule(name).lora_magnitude_vector["default"].weight)
        for name, layer in adapter_layers(ours).items()
    ]


def vera_projections(ours: nn.Module, theirs: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    shared = shared_projections(ours)
    return [
        (shared.vera_A, theirs.base_model.vera_A["default"]),
        (shared.vera_B, theirs.base_model.vera_B["default"]),
    ]


def loraplus_optimizer(peft_model: nn.Module) -> torch.optim.Optimizer:
    return create_loraplus_optimizer(
        peft_model, torch.optim.AdamW, lr=LR, loraplus_lr_ratio=RATIO, loraplus_weight_decay=WD
    )


def ia3_vectors(ours: nn.Module, theirs: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [
        (layer.ia3_l, theirs.base_model.model.get_submodule(name).ia3_l["default"])
        for name, layer in adapter_layers(ours).items()
    ]


def oft_skews(ours: nn.Module, theirs: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [
        (layer.oft_R, theirs.base_model.model.get_submodule(name).oft_R["default"].weight)
        for name, layer in adapter_layers(ours).items()
    ]


def unchanged(model: nn.Module) -> nn.Module:
    return model


@dataclass(frozen=True)
class Case:
    """One comparison of one variant with peft: the row of the matrix, named ``<variant>-<name>``."""

    check: str  # the test that runs it
    variant: str
    name: str
    ours: dict[str, Any] = field(default_factory=dict)  # our options
    theirs: dict[str, Any] = field(default_factory=dict)  # peft's config options for the same model
    config: Callable[..., Any] = LoraConfig  # peft's config class
    targets: Targets = field(default_factory=lambda: ATTENTION)
    base: Callable[[nn.Module], nn.Module] = unchanged  # peft's base from ours (QLoRA's: dequantized)
    start: Callable[[nn.Module], nn.Module] = unchanged  # the tiny model both sides start from
    moved: str = "lora_B.weight"  # an adapter tensor starting at 0: training moves it in every layer
    steps: int = 3  # training steps before the comparison
    rtol: float = RTOL
    atol: float = ATOL  # on outputs (gradients: relative to each gradient's largest entry)
    weight_atol: float = ATOL  # on weights (merged W, dW)
    seed: int = 0  # train_mode: the dropout masks
    pairs: Callable[[nn.Module, nn.Module], list] | None = None  # init: (ours, peft's) tensors
    optimizer: Callable[[nn.Module], torch.optim.Optimizer] | None = None  # optimizer_groups: peft's


def lora(check: str, name: str, options: tuple[dict, dict], **settings) -> Case:
    return Case(check, "lora", name, *options, **settings)


def dora(check: str, name: str, options: tuple[dict, dict], **settings) -> Case:
    return Case(check, "dora", name, *options, config=DORA, **settings)


def vera(check: str, name: str, options: tuple[dict, dict], **settings) -> Case:
    return Case(
        check, "vera", name, *options, config=VeraConfig, targets=MIXED, moved="vera_lambda_b", **settings
    )


def loha(check: str, name: str, options: tuple[dict, dict], **settings) -> Case:
    """On the tiny model with randomised biases and norms, both layer shapes (32 -> 32, 32 -> 64)."""
    settings = {"targets": MIXED, "start": perturb_biases_and_norms, **settings}
    return Case(check, "loha", name, *options, config=LoHaConfig, moved="hada_w2_b", **settings)


def lokr(check: str, name: str, options: tuple[dict, dict], moved: str = "lokr_w1", **settings) -> Case:
    """As LoHa's. The tiny model's 32 = 4 x 8 and 64 = 8 x 8 (decompose_factor 4: 4 x 8 and 4 x 16); W2
    8 x 8 is low-rank below r 4."""
    settings = {"targets": MIXED, "start": perturb_biases_and_norms, **settings}
    return Case(check, "lokr", name, *options, config=LoKrConfig, moved=moved, **settings)


def loraplus(check: str, name: str, options: tuple[dict, dict], **settings) -> Case:
    return Case(check, "loraplus", name, *options, **settings)


def ia3(check: str, name: str, options: tuple[dict, dict], **settings) -> Case:
    """On the tiny model with randomised biases and norms: a bias the scale forgets shows."""
    settings = {"targets": IA3_TARGETS, "start": perturb_biases_and_norms, **settings}
    return Case(check, "ia3", name, *options, config=IA3Config, moved="ia3_l", **settings)


def oft(check: str, name: str, options: tuple[dict, dict], **settings) -> Case:
    """On the tiny model with randomised biases and norms, as IA3's."""
    settings = {"start": perturb_biases_and_norms, **settings}
    return Case(check, "oft", name, *options, config=OFTConfig, moved="oft_R.weight", **settings)


def prompt_config(target_modules: list[str], **options) -> PromptTuningConfig:
    """peft's PromptTuningConfig from the matrix's common arguments: a prompt has no target modules."""
    return PromptTuningConfig(**options)


def prompt_tuning(check: str, name: str, options: tuple[dict, dict], **settings) -> Case:
    """An input-level method on the tiny model with randomised biases and norms: no adapter layer."""
    settings = {"start": perturb_biases_and_norms, **settings}
    return Case(check, "prompt_tuning", name, *options, config=prompt_config, **settings)


def qlora(
    check: str, name: str, options: tuple[dict, dict], variant: str = "qlora", targets: Targets = ALL_LINEAR
) -> Case:
    """Over the base with dequant(quant(W)) in every target; the recipe's r 64 exceeds the tiny width 32."""
    base = partial(dequantized_copy, targets=targets)
    return Case(check, variant, name, *options, targets=targets, base=base)


def adalora(check: str, name: str, steps: int, ours: dict | None = None, **settings) -> Case:
    return Case(
        check, "adalora", name, {**ADALORA, **(ours or {})}, config=AdaLoraConfig, steps=steps, **settings
    )


def same(**options) -> tuple[dict, dict]:
    """The same options for ours and peft's (VeRA's names are peft's)."""
    return options, options


# (our options, peft's) of LoRA and DoRA
R4 = ({"r": 4, "alpha": 8.0}, {"r": 4, "lora_alpha": 8})
RSLORA = ({"r": 4, "alpha": 8.0, "use_rslora": True}, {"r": 4, "lora_alpha": 8, "use_rslora": True})
GAUSSIAN_R4 = (
    {"r": 4, "alpha": 4.0, "init": "gaussian"},
    {"r": 4, "lora_alpha": 4, "init_lora_weights": "gaussian"},
)
GAUSSIAN_R8 = (
    {"r": 8, "alpha": 16.0, "init": "gaussian"},
    {"r": 8, "lora_alpha": 16, "init_lora_weights": "gaussian"},
)
DROPOUT_R8 = ({"r": 8, "alpha": 16.0, "dropout": 0.1}, {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1})
DROPOUT_R4 = ({"r": 4, "alpha": 8.0, "dropout": 0.2}, {"r": 4, "lora_alpha": 8, "lora_dropout": 0.2})
DROPOUT_TRAIN = ({"r": 4, "alpha": 8.0, "dropout": 0.3}, {"r": 4, "lora_alpha": 8, "lora_dropout": 0.3})
LORAPLUS = ({**R4[0], "loraplus_lr_ratio": RATIO}, R4[1])
# (our options, peft's) of IA3: peft's BERT feed-forward layer (both attention.output.dense and output.dense
# match it), or intermediate.dense (32 -> 64) as the one input-scaled layer of four
IA3_DEFAULT = ({}, {"feedforward_modules": ["output.dense"]})
IA3_INTERMEDIATE = ({"feedforward": ["intermediate.dense"]}, {"feedforward_modules": ["intermediate.dense"]})
# LoHa and LoKr in train mode with both dropouts (LoKr's kept rows rescaled as LoHa's always are)
LOHA_DROPOUTS = same(r=4, rank_dropout=0.3, module_dropout=0.3)
LOKR_DROPOUTS = same(r=2, rank_dropout=0.3, module_dropout=0.3, rank_dropout_scale=True)
LOKR_LYCORIS = ({"r": 2, "init": "lycoris"}, {"r": 2, "init_weights": "lycoris"})
# (our options, peft's) of prompt tuning: our default 20 virtual tokens, and a single one
PROMPT_DEFAULT = ({}, {"num_virtual_tokens": 20})
PROMPT_ONE = ({"num_virtual_tokens": 1}, {"num_virtual_tokens": 1})

MATRIX = [
    lora("outputs", "default", R4),
    lora("outputs", "rslora", RSLORA),
    lora("outputs", "gaussian", GAUSSIAN_R4),
    lora("outputs", "dropout", DROPOUT_R8),
    lora("train_mode", "dropout", DROPOUT_TRAIN, seed=7),
    lora("merge", "default", R4),
    dora("outputs", "default", R4),
    dora("outputs", "rslora", RSLORA),
    dora("outputs", "gaussian", GAUSSIAN_R8),
    dora("outputs", "dropout", DROPOUT_R4),
    dora("train_mode", "dropout", DROPOUT_TRAIN, seed=3),
    # float32 sums in another order: with one thread, 1.3e-8 off where the largest entry is 7e-4
    dora("gradients", "default", R4, atol=1e-4),
    dora("init", "magnitude", R4, rtol=1e-6, atol=0.0, pairs=dora_magnitudes),
    dora("merge", "default", R4, weight_atol=1e-7),
    vera("init", "key0", same(r=16, projection_prng_key=0), rtol=0.0, atol=0.0, pairs=vera_projections),
    vera("init", "key1234", same(r=16, projection_prng_key=1234), rtol=0.0, atol=0.0, pairs=vera_projections),
    vera("outputs", "default", same()),
    vera("outputs", "small_r", same(r=16, d_initial=0.5)),
    vera("outputs", "no_projection", same(r=16, save_projection=False)),
    vera("outputs", "dropout", ({"r": 16, "dropout": 0.2}, {"r": 16, "vera_dropout": 0.2})),
    vera("train_mode", "dropout", ({"r": 16, "dropout": 0.3}, {"r": 16, "vera_dropout": 0.3}), seed=5),
    vera("merge", "default", same(r=16), weight_atol=1e-7),
    loha("outputs", "default", same()),
    loha("outputs", "r4_alpha16", same(r=4, alpha=16.0)),
    loha("train_mode", "default", same(), seed=4),
    loha("train_mode", "dropouts", LOHA_DROPOUTS, seed=6),
    loha("gradients", "default", same()),
    loha("merge", "default", same(), weight_atol=1e-7),
    lokr("outputs", "default", same()),  # W1 and W2 full
    lokr("outputs", "low_rank_w2", same(r=2)),
    lokr("outputs", "decompose_both", same(r=1, decompose_both=True), moved="lokr_w1_a"),
    lokr("outputs", "factor4", same(r=2, decompose_factor=4)),
    lokr("outputs", "lycoris_init", LOKR_LYCORIS, moved="lokr_w2_b"),
    lokr("train_mode", "default", same(r=2), seed=4),
    lokr("train_mode", "dropouts", LOKR_DROPOUTS, seed=6),
    lokr("gradients", "default", same(r=2)),
    lokr("merge", "default", same(r=2), weight_atol=1e-7),
    loraplus("outputs", "default", R4),
    loraplus("optimizer_groups", "attention", LORAPLUS, optimizer=loraplus_optimizer),
    loraplus("optimizer_groups", "four_modules", LORAPLUS, targets=FOUR, optimizer=loraplus_optimizer),
    qlora("outputs", "default", ({"r": 8, "alpha": 16.0}, {"r": 8, "lora_alpha": 16.0, "lora_dropout": 0.0})),
    qlora("outputs", "default", ({}, {"r": 8, "lora_alpha": 8.0}), "qlora_as_lora", targets=ATTENTION),
    adalora("extra_loss", "default", steps=6, weight_atol=1e-7),
    adalora("step_end", "deltaT1", steps=12, ours={"deltaT": 1}, rtol=0.0, atol=0.0),
    adalora("step_end", "deltaT2", steps=12, ours={"deltaT": 2}, rtol=0.0, atol=0.0),
    adalora("saved_adapter", "pruned", steps=12),
    ia3("init", "ones", IA3_DEFAULT, rtol=0.0, atol=0.0, pairs=ia3_vectors),
    ia3("outputs", "default", IA3_DEFAULT),
    ia3("outputs", "intermediate", IA3_INTERMEDIATE, targets=IA3_FOUR),
    ia3("outputs", "no_feedforward", ({"feedforward": []}, {"feedforward_modules": []})),
    ia3("train_mode", "default", IA3_DEFAULT, seed=2),
    ia3("gradients", "four", IA3_INTERMEDIATE, targets=IA3_FOUR),
    # W * l and l * b, the products peft's merge forms: bit for bit
    ia3("merge", "default", IA3_DEFAULT, rtol=0.0, weight_atol=0.0),
    oft("init", "zeros", same(oft_block_size=8), rtol=0.0, atol=0.0, pairs=oft_skews),
    oft("outputs", "default", same()),
    oft("outputs", "block8_mixed", same(oft_block_size=8), targets=OFT_MIXED),
    oft("outputs", "exact_cayley", same(oft_block_size=8, use_cayley_neumann=False)),
    oft("outputs", "block_share", same(oft_block_size=4, block_share=True)),
    oft("outputs", "neumann3", same(oft_block_size=8, num_cayley_neumann_terms=3)),
    oft("outputs", "fitted_block", same(oft_block_size=12), targets=OFT_MIXED),  # 8 where peft makes 8
    oft("train_mode", "default", same(oft_block_size=8), seed=4),
    oft("gradients", "default", same(oft_block_size=8)),
    oft("merge", "default", same(oft_block_size=8), targets=OFT_MIXED, rtol=0.0, weight_atol=0.0),
    prompt_tuning("outputs", "default", PROMPT_DEFAULT),
    prompt_tuning("outputs", "one_token", PROMPT_ONE),
    prompt_tuning("train_mode", "default", PROMPT_DEFAULT, seed=6),
]


def cases(check: str) -> list:
    return [pytest.param(c, id=f"{c.variant}-{c.name}") for c in MATRIX if c.check == check]


def peft_config(case: Case, **options):
    return case.config(
        task_type="SEQ_CLS",
        target_modules=case.targets.modules,
        modules_to_save=["classifier"],
        **case.theirs,
        **options,
    )


def start(case: Case, tiny_bert):
    """The factory of the tiny model both sides of ``case`` start from."""

    def make():
        return case.start(tiny_bert())

    return make


def train(case: Case, tiny_bert, batch):
    return trained(start(case, tiny_bert), batch, case.targets, case.variant, steps=case.steps, **case.ours)


def peft_holding_ours(case: Case, tiny_bert, variant, model):
    """Way (1): peft's model on its base, holding our trained tensors."""
    return peft_twin(case.base(start(case, tiny_bert)()), peft_config(case), variant, model)


def test_the_matrix_covers_every_built_in_variant_peft_has():
    with_peft = [n for n in variants.available() if variants.get(n).peft_type]
    built_in = [n for n in with_peft if variants.get(n).__module__ == f"variants.{n}"]
    assert sorted({c.variant for c in MATRIX}) == sorted(built_in)
    assert len({(c.check, c.variant, c.name) for c in MATRIX}) == len(MATRIX)  # ids are unique per test


# -- the comparisons -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", cases("outputs"))
def test_outputs_equal_peft(case, tmp_path, tiny_bert, tiny_batch):
    variant, model = train(case, tiny_bert, tiny_batch)
    assert all(
        layer.adapter_tensors()[case.moved].abs().max() > 0 for layer in adapter_layers(model).values()
    )

    def base():
        return case.base(start(case, tiny_bert)())

    assert_matches_peft(tmp_path, base, tiny_batch, variant, model, peft_config(case), case.rtol, case.atol)


@pytest.mark.parametrize("case", cases("train_mode"))
def test_train_mode_equals_peft(case, tiny_bert, tiny_batch):
    """Same seed, same dropout masks: the train-mode outputs agree, so dropout sits where peft puts it."""
    variant, model = train(case, tiny_bert, tiny_batch)
    twin = peft_holding_ours(case, tiny_bert, variant, model)
    assert_same_outputs(*train_mode_outputs([model, twin], tiny_batch, seed=case.seed), case.rtol, case.atol)


@pytest.mark.parametrize("case", cases("merge"))
def test_merge_equals_peft_merge(case, tiny_bert, tiny_batch):
    variant, model = train(case, tiny_bert, tiny_batch)
    twin = peft_holding_ours(case, tiny_bert, variant, model)
    unmerged = outputs(model, tiny_batch)
    variant.merge(model)
    assert_same_outputs(unmerged, outputs(model, tiny_batch), case.rtol, case.atol)
    merged = twin.merge_and_unload()
    for name in adapter_layers(model):
        ours, theirs = model.get_submodule(name).base_layer, merged.get_submodule(name)
        for tensor in ("weight", "bias"):  # IA3 scales the bias too
            torch.testing.assert_close(
                getattr(ours, tensor), getattr(theirs, tensor), rtol=case.rtol, atol=case.weight_atol
            )


@pytest.mark.parametrize("case", cases("gradients"))
def test_gradients_equal_peft(case, tiny_bert, tiny_batch):
    """Same loss, one backward: every adapter tensor's and the head's gradients agree."""
    variant, model = train(case, tiny_bert, tiny_batch)
    twin = peft_holding_ours(case, tiny_bert, variant, model)
    labels = torch.tensor([0, 1, 1, 0])
    for m in (model, twin):
        m(**tiny_batch, labels=labels).loss.backward()
    ours = {key: t.grad for key, t in live_by_key(model).items()}
    theirs = {peft_key(n): p.grad for n, p in twin.named_parameters() if p.requires_grad}
    assert set(ours) == set(theirs)
    layers = adapter_layers(model)
    assert len(layers) == 2 * len(case.targets.modules)  # the tiny model's two layers
    for key in next(iter(layers.values())).adapter_tensors():  # DoRA: the magnitude too
        assert sum(k.endswith("." + key) for k in ours) == len(layers), key
    for key, grad in ours.items():
        assert grad.abs().max() > 0, key
        scale = grad.abs().max().item()
        torch.testing.assert_close(grad, theirs[key], rtol=case.rtol, atol=case.atol * scale, msg=key)


@pytest.mark.parametrize("case", cases("init"))
def test_init_equals_peft(case, tiny_bert):
    model = build(case.variant, case.ours).apply(start(case, tiny_bert)(), case.targets)
    theirs = get_peft_model(case.base(start(case, tiny_bert)()), peft_config(case))
    pairs = case.pairs(model, theirs)
    assert pairs
    for mine, peft_tensor in pairs:
        torch.testing.assert_close(mine, peft_tensor, rtol=case.rtol, atol=case.atol)


@pytest.mark.parametrize("case", cases("optimizer_groups"))
def test_optimizer_groups_equal_peft(case, tiny_bert):
    variant = build(case.variant, case.ours)
    model = variant.apply(tiny_bert(), case.targets)
    twin = peft_holding_ours(case, tiny_bert, variant, model)
    theirs = [g for g in case.optimizer(twin).param_groups if g["params"]]
    peft_names = {peft_key(n): p for n, p in twin.named_parameters()}
    assert named_groups(variant.param_groups(model, LR, WD), live_by_key(model)) == named_groups(
        theirs, peft_names
    )


# -- AdaLoRA: peft's model from the same options, our tensors copied in --------------------------
def adalora_twin(case: Case, tiny_bert, variant):
    """peft's AdaLoRA on an identical base with the same options (the schedule in steps, as peft takes it)."""
    c = variant.config
    steps = schedule(c, case.steps)
    return get_peft_model(
        case.base(tiny_bert()),
        peft_config(
            case,
            init_r=c.init_r,
            target_r=c.target_r,
            tinit=steps.tinit,
            tfinal=steps.tfinal,
            deltaT=steps.delta,
            beta1=c.beta1,
            beta2=c.beta2,
            orth_reg_weight=c.orth_reg_weight,
            total_step=case.steps,
            lora_alpha=c.alpha,
            lora_dropout=c.dropout,
        ),
    )


def peft_name(name: str) -> str:
    """Our trainable parameter name -> the peft model's (adapter 'default', head under modules_to_save)."""
    module, _, leaf = name.rpartition(".")
    if leaf in NAMES:
        return f"base_model.model.{name}.default"
    return f"base_model.model.{module}.modules_to_save.default.{leaf}"


def paired_params(model, peft_model) -> list[tuple[torch.nn.Parameter, torch.nn.Parameter]]:
    theirs = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    mine = {peft_name(n): p for n, p in model.named_parameters() if p.requires_grad}
    assert set(mine) == set(theirs)
    return [(mine[n], theirs[n]) for n in sorted(mine)]


@torch.no_grad()
def copy_into(model, peft_model) -> None:
    for mine, theirs in paired_params(model, peft_model):
        theirs.copy_(mine)


def labels_for(batch, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randint(0, 2, (batch["input_ids"].shape[0],))


@pytest.mark.parametrize("case", cases("extra_loss"))
def test_forward_and_extra_loss_equal_peft(case, tiny_bert, tiny_batch):
    variant, model = train(case, tiny_bert, tiny_batch)
    es = [layer.lora_E for layer in adapter_layers(model).values()]
    assert all(e.abs().sum() > 0 for e in es) and any((e == 0).any() for e in es)  # trained and pruned
    with torch.no_grad():
        for e in es:
            e.mul_(100)  # a few steps leave dW ~1e-3 of W: make the update dominate the comparison
    pm = adalora_twin(case, tiny_bert, variant)
    copy_into(model, pm)
    pm.eval()
    for name, layer in adapter_layers(model).items():
        theirs = pm.base_model.model.get_submodule(name).get_delta_weight("default")
        torch.testing.assert_close(layer.delta_weight(), theirs, rtol=case.rtol, atol=case.weight_atol)
    labels = labels_for(tiny_batch)
    with torch.no_grad():
        base = tiny_bert()(**tiny_batch).logits
        mine = model(**tiny_batch).logits
        out = pm(**tiny_batch, labels=labels)
        orth = variant.extra_loss(model)
    assert (mine - base).abs().max() > 0.1 * base.abs().max()
    torch.testing.assert_close(out.logits, mine, rtol=case.rtol, atol=case.atol)
    peft_orth = out.loss - F.cross_entropy(out.logits, labels)  # peft adds the penalty inside forward
    assert orth > 0.1
    torch.testing.assert_close(orth, peft_orth, rtol=case.rtol, atol=case.atol)


@pytest.mark.parametrize("case", cases("step_end"))
def test_step_end_equals_peft_in_lockstep(case, tiny_bert, tiny_batch):
    """Importance, budget and mask after every step equal peft's allocator's, from identical gradients."""
    total = case.steps
    model = tiny_bert()
    variant = build(case.variant, case.ours)
    variant.apply(model, case.targets)
    pm = adalora_twin(case, tiny_bert, variant)
    copy_into(model, pm)  # identical start, then identical gradients each step
    pairs = paired_params(model, pm)
    opt_mine = torch.optim.AdamW([p for p, _ in pairs], lr=1e-2)
    opt_peft = torch.optim.AdamW([q for _, q in pairs], lr=1e-2)
    allocator = pm.base_model.rankallocator
    labels = labels_for(tiny_batch)
    model.train()
    budgets = []
    for step in range(1, total + 1):
        loss = model(**tiny_batch, labels=labels).loss + variant.extra_loss(model)
        loss.backward()
        for p, q in pairs:
            q.grad = p.grad.clone()
        opt_mine.step()
        opt_peft.step()
        variant.on_step_end(model, step, total)
        pm.base_model.update_and_allocate(step - 1)  # peft's 0-based global_step
        budgets.append(variant.budget)
        assert variant.budget == allocator.budget_schedule(step - 1)[0]
        importance = variant.importance()
        assert set(importance) == {k.removesuffix(".default") for k in allocator.exp_avg_ipt}
        for name, (ipt, unc) in importance.items():
            torch.testing.assert_close(
                ipt, allocator.exp_avg_ipt[f"{name}.default"], rtol=case.rtol, atol=case.atol
            )
            torch.testing.assert_close(
                unc, allocator.exp_avg_unc[f"{name}.default"], rtol=case.rtol, atol=case.atol
            )
        for p, q in pairs:
            torch.testing.assert_close(
                p, q, rtol=case.rtol, atol=case.atol
            )  # so the same E entries are zeroed
        pattern = pm.peft_config["default"].rank_pattern
        if pattern is not None:
            kept = {name: layer.kept.tolist() for name, layer in adapter_layers(model).items()}
            assert kept == {k.removesuffix(".lora_E.default"): v for k, v in pattern.items()}
        opt_mine.zero_grad()
        opt_peft.zero_grad()
    assert budgets == [48, 48, 48, 42, 37, 34, 33, 32, 32, 32, 32, 32]  # b0 = 12 * 4, bT = 8 * 4, cubic
    summary = variant.summary(model)
    assert summary["total_rank"] == 32 and summary["budget"] == 32
    assert len(set(summary["final_ranks"].values())) > 1  # ranks moved between layers


# peft 0.21 warns on its own AdaLoRA rank_pattern keys too (LoRA's per-module rank check); harmless.
@pytest.mark.filterwarnings("ignore:The following rank_pattern keys:RuntimeWarning")
@pytest.mark.parametrize("case", cases("saved_adapter"))
def test_peft_loads_the_saved_adapter(case, tiny_bert, tiny_batch, tmp_path):
    """Our pruned adapter (A, E, B cut to the kept ranks) loads in peft and gives our logits."""
    from transformers import AutoModelForSequenceClassification

    variant, model = train(case, tiny_bert, tiny_batch)
    ranks = variant.summary(model)["final_ranks"]
    assert sum(ranks.values()) == 32 and max(ranks.values()) < 12
    case.base(tiny_bert()).save_pretrained(tmp_path / "base")
    save_adapter_for_test(variant, model, tmp_path / "adapter", str(tmp_path / "base"))
    base = AutoModelForSequenceClassification.from_pretrained(tmp_path / "base")
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        mine = model(**tiny_batch).logits
        torch.testing.assert_close(loaded(**tiny_batch).logits, mine, rtol=case.rtol, atol=case.atol)
    query = "bert.encoder.layer.0.attention.self.query"
    assert loaded.base_model.model.get_submodule(query).lora_E["default"].shape == (ranks[query], 1)
