"""Plain functions and constants shared by the test modules (fixtures live in tests/conftest.py).

Imported as ``helpers`` (``from helpers.results import write_results``): pytest puts tests/ on
``sys.path`` (pyproject's ``[tool.pytest.ini_options] pythonpath``), the same under ``pytest`` and
``python -m pytest``. Test modules never import one another, nor conftest (tests/test_layout.py checks).
"""
