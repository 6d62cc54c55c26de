"""Where things are: the repository root and the tests' data fixtures."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # tests/helpers/paths.py -> the repository root
TESTS = ROOT / "tests"
FIXTURES = TESTS / "fixtures"
