"""What the code never does with files and config values: unpickle, run remote code, evaluate strings.

Adapters and checkpoints are read with safetensors; a model's weights too (every ``*Model*.from_pretrained``
passes ``use_safetensors=True``; tests/unit/inputs/test_models.py refuses a pickle at run time);
``torch.load`` only with ``weights_only=True``; ``trust_remote_code`` is never turned on; no
``eval``/``exec`` and no ``pickle``. A config names no arbitrary callable: tests/unit/config/test_targets.py.
"""

from __future__ import annotations

import ast

import pytest
from helpers.paths import ROOT

SOURCES = sorted([*(ROOT / "bench").rglob("*.py"), *(ROOT / "variants").rglob("*.py")])


def loads_weights(call: str) -> bool:
    """``AutoModelForSequenceClassification.from_pretrained``, ``PeftModel.from_pretrained``: a model's
    ``from_pretrained`` (a tokenizer's or a config's reads no weights)."""
    owner, _, method = call.rpartition(".")
    return method == "from_pretrained" and "Model" in owner.rpartition(".")[2]


def unsafe(source: str) -> list[str]:
    """The unsafe constructs in ``source``, one line each (``line N: what``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if name in ("eval", "exec"):
                found.append(f"line {line}: {name}()")
            if name.endswith("torch.load") and keywords.get("weights_only") != "True":
                found.append(f"line {line}: torch.load without weights_only=True")
            if loads_weights(name) and keywords.get("use_safetensors") != "True":
                found.append(f"line {line}: {name} without use_safetensors=True")
            if keywords.get("trust_remote_code", "False") != "False":
                found.append(f"line {line}: trust_remote_code={keywords['trust_remote_code']}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"line {line}: import {m}" for m in modules if m.split(".")[0] in ("pickle", "dill")]
    return found


def test_the_scan_finds_each_unsafe_construct():
    bad = (
        "import pickle\nimport torch\neval('1')\ntorch.load('x.pt')\n"
        "torch.load('y.pt', weights_only=True)\nf(trust_remote_code=True)\n"
        "AutoModelForSequenceClassification.from_pretrained(p)\nAutoTokenizer.from_pretrained(p)\n"
        "transformers.AutoModel.from_pretrained(p, use_safetensors=True)\n"
    )
    assert unsafe(bad) == [
        "line 1: import pickle",
        "line 3: eval()",
        "line 4: torch.load without weights_only=True",
        "line 6: trust_remote_code=True",
        "line 7: AutoModelForSequenceClassification.from_pretrained without use_safetensors=True",
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unsafe_construct_in_the_package(path):
    assert unsafe(path.read_text()) == []
