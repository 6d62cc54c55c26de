"""The test suite's layout: test modules do not lean on each other.

Fixtures come from conftest.py (pytest finds them; it is never imported by name), shared plain functions
from the ``helpers`` package (tests/helpers/), and no test module imports another one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
TEST_MODULES = sorted(p for p in TESTS.rglob("test_*.py") if "helpers" not in p.parts)


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports (``import a.b`` -> ``a.b``; ``from a import b`` -> ``a``, ``a.b``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names += [base, *(f"{base.rstrip('.')}.{alias.name}".lstrip(".") for alias in node.names)]
    return names


def forbidden(name: str) -> bool:
    """A test module (``test_x``, ``tests.test_x``), conftest, anything in ``tests.``, a relative import."""
    parts = name.split(".")
    return (
        name.startswith(".")
        or parts[0] in ("conftest", "tests")
        or any(p.startswith("test_") for p in parts if p)
    )


def test_the_rules_catch_what_they_should(tmp_path):
    source = tmp_path / "test_example.py"
    source.write_text(
        "import conftest\nfrom tests.conftest import x\nfrom test_lora_reference import outputs\n"
        "from . import conftest\nimport tests.test_leaderboard\n"
        "from helpers.results import write_results\nfrom bench.testing import check_variant\nimport torch\n"
    )
    names = imported_modules(source)
    assert sorted({n for n in names if forbidden(n)}) == [
        ".",
        "conftest",
        "test_lora_reference",
        "test_lora_reference.outputs",
        "tests.conftest",
        "tests.conftest.x",
        "tests.test_leaderboard",
    ]
    assert {n for n in names if not forbidden(n)} == {
        "helpers.results",
        "helpers.results.write_results",
        "bench.testing",
        "bench.testing.check_variant",
        "torch",
    }


@pytest.mark.parametrize("path", TEST_MODULES, ids=lambda p: str(p.relative_to(TESTS)))
def test_no_test_module_imports_another_or_conftest(path):
    bad = sorted({name for name in imported_modules(path) if forbidden(name)})
    assert not bad, (
        f"{path.name} imports {bad}: fixtures belong in tests/conftest.py (pytest injects them), "
        "shared plain functions in tests/helpers/ (`from helpers.<module> import ...`)"
    )


def test_helpers_do_not_import_test_modules_or_conftest():
    for path in sorted((TESTS / "helpers").rglob("*.py")):
        bad = sorted({name for name in imported_modules(path) if forbidden(name)})
        assert not bad, f"helpers/{path.relative_to(TESTS / 'helpers')} imports {bad}"


def test_only_test_modules_and_conftest_at_the_top_of_tests():
    stray = sorted(
        p.name for p in TESTS.glob("*.py") if p.name != "conftest.py" and not p.name.startswith("test_")
    )
    assert not stray, f"{stray} directly in tests/: shared helpers belong in tests/helpers/"
    assert (TESTS / "helpers" / "__init__.py").is_file()


def test_unit_tests_mirror_the_packages():
    """tests/unit/<package>/test_<module>[_<aspect>].py tests bench/<package>/<module>.py (variants/ for
    tests/unit/variants/)."""
    root = TESTS.parent
    stray = []
    for path in sorted((TESTS / "unit").rglob("test_*.py")):
        package = path.parent.relative_to(TESTS / "unit")
        code = root / ("variants" if package.parts == ("variants",) else Path("bench") / package)
        stem = path.stem.removeprefix("test_")
        if not any(stem == m.stem or stem.startswith(f"{m.stem}_") for m in code.glob("*.py")):
            stray.append(f"{path.relative_to(TESTS)} names no module of {code.relative_to(root)}/")
    assert stray == []


def test_test_file_names_are_unique():
    """pytest imports test files by their base name (rootdir import mode): two of one name collide."""
    names = [p.name for p in TEST_MODULES]
    assert sorted({n for n in names if names.count(n) > 1}) == []
