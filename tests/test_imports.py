"""The import structure: reading results imports no training stack, and no module imports itself back.

The cycle check reads every ``import`` of ``bench/`` and ``variants/`` with ast, those inside functions
included (a lazy import only hides a cycle), and resolves ``from bench.x import y`` to ``bench.x.y`` when
``y`` is a module.
"""

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "variants")
TRAINING_STACK = ("torch", "datasets", "transformers")
# What reads a leaderboard or a report (python -m bench leaderboard / report / failed_runs).
READERS = (
    "bench.analysis.leaderboard",
    "bench.analysis.report",
    "bench.analysis.runs_table",
    "bench.analysis.selection",
    "bench.analysis.significance",
    "bench.results.runs_csv",
    "bench.results.failed_runs",
)
# The config schemas and the hash: the standard library and each other only.
CONFIG_LEAVES = ("bench.config.hash_policy", "bench.config.schemas", "bench.config.hashing")


def imported_after(modules: tuple[str, ...]) -> set[str]:
    """The top-level names in sys.modules of a fresh interpreter once it has imported ``modules``."""
    code = f"import sys\nimport {', '.join(modules)}\nprint(__import__('json').dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout)}


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        (READERS, TRAINING_STACK),
        (CONFIG_LEAVES, (*TRAINING_STACK, "hydra", "omegaconf", "numpy", "variants")),
    ],
    ids=["readers", "config-leaves"],
)
def test_a_module_that_needs_no_training_imports_none_of_it(modules, forbidden):
    assert sorted(set(forbidden) & imported_after(modules)) == []


def module_files() -> dict[str, Path]:
    """Dotted name -> file of every module of PACKAGES (a package is its ``__init__.py``)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``name`` imports anywhere in its file."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return (out & known) - {name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def test_the_graph_counts_imports_inside_functions_and_from_imports_of_modules():
    graph = import_graph()
    assert "bench.results.wandb_leaderboard" in graph["bench.results.sweep_callback"]  # in a function
    assert "bench.config.schemas" in graph["bench.config.store"]  # from bench.config.schemas import ...
    assert "bench.config.hashing" in graph["bench.run.spec"]  # from bench.config import hashing
    assert "variants" in graph["bench.config.store"]  # import variants


def test_no_import_cycle():
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(reversed(e.args[1]))}")
