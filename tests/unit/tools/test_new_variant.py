"""bench.tools.new_variant (``peft-bench new_variant``): it refuses bad names and existing files, writes the
in-repo files or a ``--package``, and what it writes passes check_variant as is."""

from __future__ import annotations

import importlib
import sys

import pytest
from omegaconf import OmegaConf

import variants
from bench.testing import check_variant
from bench.tools import new_variant
from variants.lora import LoRALinear


@pytest.mark.parametrize(
    "name, reason",
    [
        ("My-Lora", "must be a lowercase Python identifier"),
        ("2fast", "must be a lowercase Python identifier"),
        ("_hidden", "must be a lowercase Python identifier"),
        ("class", "is a Python keyword"),
        ("lora", "a variant of that name exists already (registered: adalora, "),
    ],
)
def test_scaffold_refuses_invalid_names(name, reason, tmp_path):
    with pytest.raises(ValueError, match=f"invalid variant name '{name}': .*{reason.replace('(', '.')}"):
        new_variant.scaffold(name, tmp_path / "pkg", package=True)
    assert not (tmp_path / "pkg").exists()


def test_scaffold_cli_names_the_error(capsys):
    with pytest.raises(SystemExit) as e:
        new_variant.main(["lora", "--package"])
    assert e.value.code == 2
    assert "invalid variant name 'lora': a variant of that name exists already" in capsys.readouterr().err


def test_scaffold_refuses_to_overwrite(tmp_path):
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "__init__.py").write_text("")
    (tmp_path / "conf" / "variant").mkdir(parents=True)
    (tmp_path / "conf" / "variant" / "mine.yaml").write_text("# mine\n")
    with pytest.raises(FileExistsError, match=r"refusing to overwrite existing files: .*mine\.yaml"):
        new_variant.scaffold("mine", tmp_path)
    assert not (tmp_path / "variants" / "mine.py").exists()  # nothing written
    assert (tmp_path / "conf" / "variant" / "mine.yaml").read_text() == "# mine\n"
    with pytest.raises(ValueError, match="is not a peft-bench checkout"):
        new_variant.scaffold("mine", tmp_path / "elsewhere")


def test_scaffold_writes_the_in_repo_files(tmp_path):
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "__init__.py").write_text("")
    with pytest.raises(ValueError, match="is not a peft-bench checkout"):  # e.g. site-packages: no conf/
        new_variant.scaffold("two_step", tmp_path)
    (tmp_path / "conf" / "variant").mkdir(parents=True)
    written = new_variant.scaffold("two_step", tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "conf/variant/two_step.yaml",
        "tests/unit/variants/test_two_step.py",
        "variants/two_step.py",
    ]
    source = (tmp_path / "variants" / "two_step.py").read_text()
    assert "@register\nclass TwoStep(Variant):" in source and "class TwoStepLinear(AdapterLayer):" in source
    assert "EDIT HERE" in source
    assert OmegaConf.to_container(OmegaConf.load(tmp_path / "conf" / "variant" / "two_step.yaml")) == {
        "defaults": ["two_step_schema", "_self_"],
    }
    for path in written:
        if path.suffix == ".py":
            compile(path.read_text(), str(path), "exec")


def test_scaffolded_package_passes_the_contract(tmp_path, monkeypatch):
    """The --package skeleton is a real variant (its own layer, not LoRA's) and passes the test-kit as is."""
    pkg = tmp_path / "pkg"
    written = new_variant.scaffold("my_method", pkg, package=True)
    assert sorted(p.relative_to(pkg).as_posix() for p in written) == [
        "README.md",
        "pyproject.toml",
        "src/peft_bench_my_method/__init__.py",
        "tests/test_my_method.py",
    ]
    pyproject = (pkg / "pyproject.toml").read_text()  # the installed entry point is checked in the slow tests
    assert (
        '[project.entry-points."peft_bench.variants"]\nmy_method = "peft_bench_my_method:MyMethod"\n'
        in pyproject
    )
    assert 'name = "peft-bench-my-method"' in pyproject
    compile((pkg / "tests" / "test_my_method.py").read_text(), "test_my_method.py", "exec")
    monkeypatch.syspath_prepend(str(pkg / "src"))
    try:
        module = importlib.import_module("peft_bench_my_method")
        assert "\n@register\n" not in (pkg / "src" / "peft_bench_my_method" / "__init__.py").read_text()
        assert issubclass(module.MyMethodLinear, variants.AdapterLayer)
        assert not issubclass(module.MyMethodLinear, LoRALinear)  # its own layer, not a re-export of LoRA's
        check_variant(module.MyMethod, {"r": 4})
        assert "my_method" not in variants.available()
    finally:
        sys.modules.pop("peft_bench_my_method", None)
