"""The test suite's layout: test modules do not lean on each other, and the unit tests mirror the code.

Fixtures come from conftest.py (pytest finds them; it is never imported by name), shared plain functions
from the ``helpers`` package (tests/helpers/), and no test module imports another one. Each module of
bench/ and variants/ has a test file of its name under tests/unit/.
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


# Modules whose tests live outside tests/unit/: bench/testing.py is the contract test-kit that plugin
# authors call, and tests/contract/test_contract.py runs it over every registered variant.
TESTED_ELSEWHERE = {"bench/testing.py": "contract/test_contract.py"}


def code_modules() -> list[Path]:
    """Every module of bench/ and variants/ but the package files (``__init__``, bench's ``__main__``)."""
    root = TESTS.parent
    modules = [*(root / "bench").rglob("*.py"), *(root / "variants").rglob("*.py")]
    return sorted(p for p in modules if p.name not in ("__init__.py", "__main__.py"))


def unit_test_folder(module: Path) -> Path:
    """tests/unit/<package>/ for bench/<package>/<module>.py, tests/unit/ for a loose bench/<module>.py,
    tests/unit/variants/ for variants/<module>.py."""
    package = module.parent.relative_to(TESTS.parent)
    if package.parts[0] == "bench":
        return TESTS / "unit" / Path(*package.parts[1:])
    return TESTS / "unit" / package


def has_test_file(module: Path) -> bool:
    """tests/unit/.../test_<module>.py or test_<module>_<aspect>.py exists (or its TESTED_ELSEWHERE file)."""
    elsewhere = TESTED_ELSEWHERE.get(module.relative_to(TESTS.parent).as_posix())
    if elsewhere is not None:
        return (TESTS / elsewhere).is_file()
    folder = unit_test_folder(module)
    return (folder / f"test_{module.stem}.py").is_file() or any(folder.glob(f"test_{module.stem}_*.py"))


def test_the_mirror_rule_finds_each_modules_test_folder():
    root = TESTS.parent
    assert unit_test_folder(root / "bench" / "analysis" / "render.py") == TESTS / "unit" / "analysis"
    assert unit_test_folder(root / "bench" / "plural.py") == TESTS / "unit"
    assert unit_test_folder(root / "variants" / "lora.py") == TESTS / "unit" / "variants"
    assert has_test_file(root / "bench" / "testing.py")
    assert has_test_file(root / "bench" / "run" / "memory.py")  # test_memory.py (and test_memory_switches.py)
    assert not has_test_file(root / "bench" / "no_such_module.py")
    assert root / "bench" / "__main__.py" not in code_modules()
    assert {root / "bench" / "plural.py", root / "variants" / "base.py"} <= set(code_modules())


def test_every_module_has_a_test_file_of_its_name():
    root = TESTS.parent
    missing = [p.relative_to(root).as_posix() for p in code_modules() if not has_test_file(p)]
    assert missing == [], (
        f"{len(missing)} modules have no test file of their name under tests/unit/ "
        f"(tests/unit/<package>/test_<module>.py or test_<module>_<aspect>.py): {', '.join(missing)}"
    )


def test_test_file_names_are_unique():
    """pytest imports test files by their base name (rootdir import mode): two of one name collide."""
    names = [p.name for p in TEST_MODULES]
    assert sorted({n for n in names if names.count(n) > 1}) == []


CODE = [p for folder in ("bench", "variants") for p in sorted((TESTS.parent / folder).rglob("*.py"))]
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 450, 80


def oversized(path: Path) -> list[str]:
    """``path`` itself when it is over MAX_MODULE_LINES, and each function over MAX_FUNCTION_LINES."""
    source = path.read_text()
    found = [f"{len(source.splitlines())} lines"] if len(source.splitlines()) > MAX_MODULE_LINES else []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{node.name}() {length} lines")
    return found


def test_the_size_rule_sees_long_functions(tmp_path):
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES)
    assert oversized(long) == [f"f() {MAX_FUNCTION_LINES + 1} lines"]


def test_no_module_or_function_is_too_long():
    found = {str(p.relative_to(TESTS.parent)): sizes for p in CODE if (sizes := oversized(p))}
    assert found == {}, f"over {MAX_MODULE_LINES} lines a module or {MAX_FUNCTION_LINES} a function"


def test_bench_has_a_handful_of_loose_modules():
    loose = sorted(p.name for p in (TESTS.parent / "bench").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "log.py", "plural.py", "testing.py"]
