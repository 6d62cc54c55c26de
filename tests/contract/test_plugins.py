"""Adding a variant without touching the harness, each route tested the way a user takes it.

1. In the repo: ``variants/<name>.py`` + ``conf/variant/<name>.yaml`` (written by the scaffold into a copy of
   this working tree, so the real tree is never modified) train with no other edit.
2. Outside package: examples/plugin-pissa and a scaffolded ``--package`` are pip-installed into a temporary
   site folder (``PYTHONPATH``, never /tmp/venv's site-packages); they compose with their schema (typos fail),
   train, sweep with 2 joblib workers, land in the CSV, the leaderboard and the report, pass their own
   contract tests; a second plugin named ``lora``, or one that fails on import, is set aside with a warning
   naming it, and only a run that asks for it fails.

The scaffold command itself (bad names, existing files, what it writes) is tested in
tests/unit/tools/test_new_variant.py.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from helpers.runs import COPY_IGNORE, ROOT, TINY_RUN, copy_repo, lora_params, read_rows
from omegaconf import OmegaConf

import variants
from bench.analysis import leaderboard, report
from bench.testing import CHECKS, check_variant
from bench.tools import new_variant

EXAMPLE = ROOT / "examples" / "plugin-pissa"
PLUGINS = ("pissa", "starter")
# tiny BERT: 2 layers x (query, value) of 32 x 32 with rank-4 factors A, B, plus the 32 -> 2 head
PARAMS_R4 = lora_params(4)


def python(args, *, cwd=ROOT, path=(), results=None, check=True) -> subprocess.CompletedProcess:
    """Run ``python <args>`` with PYTHONPATH = ``path`` (and PEFT_BENCH_RESULTS = ``results``)."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("PYTHONPATH", None)
    if path:
        env["PYTHONPATH"] = os.pathsep.join(map(str, path))
    if results is not None:
        env["PEFT_BENCH_RESULTS"] = str(results)
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def pip_install(site: Path, *packages: Path) -> None:
    """Install local packages into ``site`` only: no index, no dependencies, no isolated build env."""
    assert importlib.util.find_spec("setuptools"), (
        "building plugin packages offline needs setuptools in this environment (the dev extra lists it)"
    )
    python(
        [
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            *map(str, packages),
        ]
    )


def composed_variant(run_dir: str | Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(Path(run_dir) / "config.yaml").variant)


# -- 2. outside packages ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """PiSSA (examples/plugin-pissa) and a scaffolded package `starter`, installed into one site folder."""
    tmp = tmp_path_factory.mktemp("plugins")
    pissa = shutil.copytree(EXAMPLE, tmp / "plugin-pissa", ignore=COPY_IGNORE)  # builds write into the source
    starter = tmp / "peft-bench-starter"
    assert new_variant.main(["starter", "--package", "--out", str(starter)]) == 0
    site = tmp / "site"
    pip_install(site, pissa, starter)
    return SimpleNamespace(site=site, pissa=pissa, starter=starter)


@pytest.fixture(scope="module")
def sweep(plugins, tmp_path_factory):
    """Both plugins x 2 seeds, in 2 joblib worker processes."""
    results = tmp_path_factory.mktemp("results")
    args = [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "variant=pissa,starter",
        "seed=0,1",
        "variant.r=4",
        *TINY_RUN,
    ]
    proc = python(["-m", "bench", "train", *args], path=[plugins.site], results=results)
    return results, proc.stdout + proc.stderr


@pytest.mark.slow
def test_plugins_sweep_in_joblib_workers_into_the_csv(sweep):
    results, log = sweep
    assert "Joblib.Parallel(n_jobs=2" in log and "is launching 4 jobs" in log
    rows = read_rows(results / "runs.csv")
    assert sorted((r["variant"], r["seed"]) for r in rows) == [
        ("pissa", "0"),
        ("pissa", "1"),
        ("starter", "0"),
        ("starter", "1"),
    ]
    defaults = {"pissa": 2e-4, "starter": 5e-4}  # each plugin's dataclass default lr
    for row in rows:
        assert row["status"] == "completed" and row["task"] == "rt_polarity" and row["model"] == "tiny"
        assert int(row["trainable_params"]) == PARAMS_R4 and 0 <= float(row["score"]) <= 1
        assert json.loads(row["hparams"])["r"] == 4 and float(row["lr"]) == defaults[row["variant"]]
        # The plugin's schema composed: its defaults, the override, nothing else.
        assert composed_variant(row["run_dir"]) == {
            "name": row["variant"],
            "lr": defaults[row["variant"]],
            "targets": "attention",
            "r": 4,
            "alpha": 8.0,
        }
        m = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
        if row["variant"] == "pissa":  # the plugin's own code ran in the worker
            assert 0 < m["variant_summary"]["principal_energy"] < 1
    (sweep_md,) = (results / "sweeps").glob("*/leaderboard.md")
    assert "| pissa |" in sweep_md.read_text() and "| starter |" in sweep_md.read_text()


@pytest.mark.slow
def test_plugins_in_the_leaderboard_and_report(sweep, capsys, tmp_path):
    results, _ = sweep
    rows = read_rows(results / "runs.csv")
    test_mean = {v: 100 * sum(float(r["score"]) for r in rows if r["variant"] == v) / 2 for v in PLUGINS}
    dev_mean = {v: 100 * sum(float(r["dev_score"]) for r in rows if r["variant"] == v) / 2 for v in PLUGINS}
    # the default view: the tuned table, each plugin at its (only) configuration, over its 2 seeds
    assert leaderboard.main(["--results", str(results), "--format", "csv"]) == 0
    tuned = pd.read_csv(io.StringIO(capsys.readouterr().out))
    by_variant = tuned[tuned["task"] == "rt_polarity"].set_index("variant")
    assert set(by_variant.index) == set(PLUGINS)
    for v in PLUGINS:
        assert (by_variant.loc[v, "n"], by_variant.loc[v, "grid"]) == (2, 1)
        assert by_variant.loc[v, "mean_x100"] == pytest.approx(test_mean[v], abs=1e-4)
        assert by_variant.loc[v, "dev_x100"] == pytest.approx(dev_mean[v], abs=1e-4)
    # --configs: every configuration, with its seeds
    assert leaderboard.main(["--results", str(results), "--format", "csv", "--configs"]) == 0
    configs = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("variant")
    assert set(configs.index) == set(PLUGINS)
    assert list(configs.loc[list(PLUGINS), "seeds"]) == [2, 2]
    assert report.main(["--results", str(results), "--out", str(tmp_path / "report.html")]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "pissa" in html and "starter" in html
    assert html.index('<section id="verdict">') < html.index("<h2>Leaderboard</h2>")  # the verdict first


@pytest.mark.slow
def test_plugin_option_typo_fails_at_compose(plugins, tmp_path):
    proc = python(
        ["-m", "bench", "train", "variant=pissa", "variant.rr=3", *TINY_RUN],
        path=[plugins.site],
        results=tmp_path,
        check=False,
    )
    assert proc.returncode != 0
    assert "unknown key variant.rr=3 ('rr' not in 'PiSSAConfig'); did you mean variant.r?" in proc.stderr
    assert not (tmp_path / "runs").exists()  # failed before any run started


@pytest.mark.slow
def test_plugin_packages_pass_their_own_tests(plugins):
    """As their authors run them: pytest on each package's tests against the installed plugin."""
    tests = [str(plugins.pissa / "tests"), str(plugins.starter / "tests")]
    proc = python(
        ["-m", "pytest", "-v", "-p", "no:cacheprovider", *tests], cwd=plugins.site.parent, path=[plugins.site]
    )
    for test in [
        "test_pissa.py::test_contract",
        "test_pissa.py::test_registered_through_the_entry_point",
        "test_starter.py::test_contract[merge_equals_unmerged]",
        "test_starter.py::test_contract[save_load_round_trip]",
        "test_starter.py::test_registered",
        "test_starter.py::test_trainable_parameter_count",
    ]:
        assert f"{test} PASSED" in proc.stdout, proc.stdout[-3000:]


DUP_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "peft-bench-dup-lora"
version = "0.1.0"

[project.entry-points."peft_bench.variants"]
lora = "dup_lora:DupLoRA"

[tool.setuptools]
py-modules = ["dup_lora"]
"""


BROKEN_PYPROJECT = (
    DUP_PYPROJECT.replace("dup-lora", "broken")
    .replace('lora = "dup_lora:DupLoRA"', 'broken = "broken_plugin:Broken"')
    .replace('["dup_lora"]', '["broken_plugin"]')
)


@pytest.mark.slow
def test_broken_plugins_only_break_the_runs_that_ask_for_them(tmp_path):
    """A plugin that collides with a built-in name, and one that fails on import, are set aside with a
    warning naming the plugin and the reason: every other variant composes and runs."""
    dup, broken = tmp_path / "dup", tmp_path / "broken"
    dup.mkdir()
    broken.mkdir()
    (dup / "pyproject.toml").write_text(DUP_PYPROJECT)
    (dup / "dup_lora.py").write_text(
        "from variants.lora import LoRA\n\n\nclass DupLoRA(LoRA):\n    name = 'lora'\n"
    )
    (broken / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (broken / "broken_plugin.py").write_text("import a_module_that_is_not_installed\n")
    pip_install(tmp_path / "site", dup, broken)
    results = tmp_path / "results"
    ok = python(
        ["-m", "bench", "train", "variant=lora", *TINY_RUN], path=[tmp_path / "site"], results=results
    )
    assert (
        "variant name 'lora' from plugin (package peft-bench-dup-lora 0.1.0, entry point lora = "
        "dup_lora:DupLoRA) collides with the registered variant variants.lora.LoRA"
    ) in ok.stderr
    assert "ModuleNotFoundError: No module named 'a_module_that_is_not_installed'" in ok.stderr
    (run_dir,) = (results / "runs").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    asked = python(
        ["-m", "bench", "train", "variant=broken", *TINY_RUN],
        path=[tmp_path / "site"],
        results=results,
        check=False,
    )
    assert asked.returncode != 0
    assert "could not load the variant plugin (package peft-bench-broken 0.1.0, entry point broken" in (
        asked.stderr
    )


def test_pissa_passes_the_contract_in_process(monkeypatch):
    """The example, imported from its source: importing it must not register it (the entry point does)."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    try:
        pissa = importlib.import_module("peft_bench_pissa")
        check_variant(pissa.PiSSA, {"r": 4}, init_atol=1e-5)
        assert "pissa" not in variants.available()
    finally:
        sys.modules.pop("peft_bench_pissa", None)


# -- 1. a new file in variants/ (in a copy of this working tree) -----------------------------------


@pytest.mark.slow
def test_new_variant_file_in_a_repo_copy_is_picked_up(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    assert new_variant.main(["scaled", "--out", str(repo)]) == 0
    assert not (ROOT / "variants" / "scaled.py").exists()
    # The author edits the default in the dataclass, the one place defaults are stated.
    source = repo / "variants" / "scaled.py"
    source.write_text(source.read_text().replace("lr: float = 5e-4", "lr: float = 1e-3"))

    proc = python(
        ["-m", "pytest", "-v", "-p", "no:cacheprovider", "tests/unit/variants/test_scaled.py"],
        cwd=repo,
        path=[repo],
    )
    # every check but peft's loader, skipped: the scaffold saves no peft adapter (no peft_type)
    counts = (proc.stdout.count(" PASSED"), proc.stdout.count(" SKIPPED"))
    assert " FAILED" not in proc.stdout and counts == (2 + len(CHECKS) - 1, 1), proc.stdout[-3000:]

    results = tmp_path / "results"
    python(
        ["-m", "bench", "train", "variant=scaled", "variant.r=4", *TINY_RUN],
        cwd=repo,
        path=[repo],
        results=results,
    )
    (run_dir,) = (results / "runs").iterdir()
    m = json.loads((run_dir / "metrics.json").read_text())
    assert (m["variant"], m["status"], m["trainable_params"]) == ("scaled", "completed", PARAMS_R4)
    assert composed_variant(run_dir) == {
        "name": "scaled",
        "lr": 1e-3,
        "targets": "attention",
        "r": 4,
        "alpha": 8.0,
    }
    (row,) = read_rows(results / "runs.csv")
    assert (row["variant"], row["status"], float(row["lr"])) == ("scaled", "completed", 1e-3)
