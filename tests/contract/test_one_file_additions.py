"""A new variant, task or model is one config file (plus, for a variant, one Python file) and no other
edit: added to a copy of the working tree, all three compose, show in --help, join experiment=demo_all
(the variant) and train together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.runs import ROOT, copy_repo

import variants

VARIANTS = variants.available()  # the built-in ones, in this process
# helpers/ia3.py (variant out_scale) as a file of variants/, registered on import like the built-ins.
VARIANT = (ROOT / "tests" / "helpers" / "ia3.py").read_text() + "\n\nregister(IA3)\n"
VARIANT = VARIANT.replace("from variants.base", "from variants.registry import register\nfrom variants.base")

VARIANT_YAML = """\
# IA3-style output scaling: defaults in IA3Config (variants/out_scale.py).
defaults:
  - out_scale_schema
  - _self_
"""

MODEL_YAML = """\
# The tiny BERT, wider and shallower.
defaults:
  - model_schema
  - _self_

name: tiny_wide
source: tiny
max_length: 64
family: bert
vocab_size: 99
hidden_size: 48
num_layers: 1
num_heads: 4
intermediate_size: 96
"""

TASK_YAML = """\
# Four sentences with binary labels, from CSV files.
defaults:
  - task_schema
  - _self_

name: four_sentences
source: local
data_dir: {data_dir}
text_fields: [sentence]
num_labels: 2
metrics: [accuracy]
main_metric: accuracy
eval_splits:
  validation: ""
"""


def python(repo: Path, *args: str, results: Path | None = None, check: bool = True):
    env = {**os.environ, "PYTHONPATH": str(repo), "WANDB_MODE": "offline"}
    if results is not None:
        env["PEFT_BENCH_RESULTS"] = str(results)
    proc = subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 or not check, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


@pytest.mark.slow
def test_a_variant_a_task_and_a_model_are_one_file_each(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    (repo / "variants" / "out_scale.py").write_text(VARIANT)
    (repo / "conf" / "variant" / "out_scale.yaml").write_text(VARIANT_YAML)
    (repo / "conf" / "model" / "tiny_wide.yaml").write_text(MODEL_YAML)
    data = ROOT / "tests" / "fixtures" / "local" / "sst2_csv"
    (repo / "conf" / "task" / "four_sentences.yaml").write_text(TASK_YAML.format(data_dir=data))

    help_text = python(repo, "-m", "bench", "train", "--help").stdout.split("== Config ==")[0]
    for group, option in [("variant", "out_scale"), ("model", "tiny_wide"), ("task", "four_sentences")]:
        (line,) = [x for x in help_text.splitlines() if x.strip().startswith(f"{group}:")]
        assert option in line, help_text

    # experiment=demo_all sweeps every registered variant: the new one joins it, on the new task and model.
    results = tmp_path / "results"
    both = ["task=four_sentences", "model=tiny_wide", "train.epochs=1"]
    python(repo, "-m", "bench", "train", "-m", "experiment=demo_all", *both, results=results, check=False)
    (sweep,) = (results / "sweeps").iterdir()
    runs = {p.parent.name.split("_", 1)[1]: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}
    # Config errors, which leave no run behind: QLoRA's rank 64 does not fit tiny_wide's 48-wide layers,
    # and prompt tuning's virtual tokens take positions beyond the max_length the tiny model is sized to
    fits = [v for v in [*VARIANTS, "out_scale"] if v not in ("qlora", "prompt_tuning")]
    assert sorted(runs) == sorted(f"{v}-four_sentences-s0" for v in fits)
    for refused in ("qlora", "prompt_tuning"):
        assert [p.name for p in (results / "errors").rglob(f"*{refused}*.txt")], "the config error is logged"
    m = runs["out_scale-four_sentences-s0"]
    assert (m["status"], m["variant"], m["model"]) == ("completed", "out_scale", "tiny_wide")
    # one (out, 1) scale per adapted layer (q, k, v, attention.output.dense: 48 each) plus the 48 -> 2 head
    assert m["trainable_params"] == 4 * 48 + (48 * 2 + 2)
    assert not (ROOT / "variants" / "out_scale.py").exists()
