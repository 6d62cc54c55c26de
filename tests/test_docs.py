"""The code references of the README and the docs name things that exist.

Every dotted module path in code (`bench.…`, `variants.…`) resolves to a module or an attribute; every
`peft-bench <command>` or `python -m bench <command>` names a command of ``bench.__main__.COMMANDS``, and
each `--option` after it is one its parser accepts (for ``train``: Hydra's flags, and overrides that name
real options and compose into a config); every repository path in backticks exists; every relative link
points to an existing file, and to a heading of it when it names one. A rename, a removed option or a
moved page fails here. The site build (``make docs``) checks the links between the docs pages again.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import importlib.util
import re
import shlex
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser

from bench.__main__ import COMMANDS
from bench.config.store import group_options

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    {
        ROOT / "README.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "results" / "compare").glob("*.md"),
        *(ROOT / "results" / "archive").glob("*/*.md"),
        *(ROOT / "results" / "reference").glob("*.md"),
        *(ROOT / "examples").glob("*/README.md"),
    }
)
# Variants the docs create (the walk-through's scaffold, the example plugin): not in conf/ until made.
EXAMPLE_VARIANTS = {"rslora", "pissa"}
# Commands whose positional arguments are Hydra overrides of train.
OVERRIDE_COMMANDS = {"train", "sweep_overhead", "tune"}
TOP_LEVEL_FLAGS = {"-h", "--help"}
# Top-level entries of the repository that a path in backticks may start with.
REPO_PREFIXES = ("bench/", "variants/", "conf/", "tests/", "docs/", "examples/", "results/reference", ".ci/")
REPO_PREFIXES += ("results/compare", "results/archive")
FILE_SUFFIXES = {"md", "py", "yaml", "yml", "csv", "json", "toml", "txt", "html", "jsonl"}

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})([^\n]*)\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)
SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
MODULE = re.compile(r"(?<![\w./-])((?:bench|variants)(?:\.[A-Za-z_]\w*)+)")
COMMAND = re.compile(r"(?:(?<![\w./<-])peft-bench|(?<![\w-])-m[ \t]+bench)[ \t]+([A-Za-z_<\[-]\S*)(.*)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
LINK_DEFINITION = re.compile(r"^[ \t]*\[[^\]]+\]:[ \t]*(\S+)", re.M)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
SHELL_ENDS = {"|", "||", "&&", ";", ">", ">>", "2>&1"}


# -- reading a page ----------------------------------------------------------------------------------


def fences(text: str) -> list[tuple[str, str]]:
    """The fenced code blocks of a page: (info string, content)."""
    return [(m.group(2).strip(), textwrap.dedent(m.group(3))) for m in FENCE.finditer(text)]


def prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return FENCE.sub("", text)


def spans(text: str) -> list[str]:
    """The inline code spans outside fenced blocks, a line break read as a space."""
    return [" ".join(m.group(2).split()) for m in SPAN.finditer(prose(text))]


def code_lines(text: str) -> list[str]:
    """Every line of code: each span, and each line of a fenced block (``\\`` continuations joined)."""
    lines = list(spans(text))
    for _, block in fences(text):
        lines += [re.sub(r"(^|\s)#.*", "", line) for line in block.replace("\\\n", " ").splitlines()]
    return lines


# -- module paths ------------------------------------------------------------------------------------


def resolves(dotted: str) -> bool:
    """``dotted`` is a module, or an attribute reached from the longest module prefix of it."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent is a module, not a package
            found = False
        if found:
            break
    else:
        return False
    obj = importlib.import_module(name)
    for attr in parts[i:]:
        if not hasattr(obj, attr):
            return False
        obj = getattr(obj, attr)
    return True


def python_imports(text: str) -> Iterator[str]:
    """The names a page's Python blocks import from bench or variants, as dotted paths."""
    for info, block in fences(text):
        if info.split()[:1] != ["python"]:
            continue
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield from (f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)


def module_problems(text: str) -> list[str]:
    named = {m for line in code_lines(text) for m in MODULE.findall(line)}
    named |= {n for n in python_imports(text) if n.split(".")[0] in ("bench", "variants")}
    named = {n for n in named if n.rsplit(".", 1)[-1] not in FILE_SUFFIXES}  # docs/variants.md, ...
    named = {n for n in named if n.split(".")[:2] not in (["variants", v] for v in EXAMPLE_VARIANTS)}
    return [f"`{n}` is no module or attribute" for n in sorted(named) if not resolves(n)]


# -- commands and their options ---------------------------------------------------------------------


def commands(text: str) -> Iterator[tuple[str, list[str]]]:
    """Each command named in code: (command, the tokens after it up to the end of its shell command)."""
    for line in code_lines(text):
        for m in COMMAND.finditer(line):
            try:
                tokens = shlex.split(m.group(2), comments=True)
            except ValueError:  # an unbalanced quote: read it word by word
                tokens = m.group(2).split()
            cut = next((i for i, t in enumerate(tokens) if t in SHELL_ENDS), len(tokens))
            yield m.group(1), [t.strip("[]") if t.startswith("[") else t for t in tokens[:cut]]


class ParserBuilt(BaseException):
    """Raised in place of parsing: carries the parser a command built (not an Exception, so no command's
    own error handling catches it)."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


@functools.cache
def accepted_options(command: str) -> frozenset[str]:
    """The option strings a command's parser accepts (``train``'s parser is Hydra's command line)."""
    if command == "train":
        parser = get_args_parser()
    else:

        def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
            raise ParserBuilt(self)

        with mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture):
            try:
                importlib.import_module(COMMANDS[command][0]).main([])
            except ParserBuilt as built:
                parser = built.parser
            else:
                raise AssertionError(f"{command}: main([]) returned without parsing its arguments")
    return frozenset(s for action in parser._actions for s in action.option_strings)


def override_problems(tokens: list[str], compose: Callable) -> list[str]:
    """Hydra overrides: each group option exists (every value of a sweep), and the first value of each
    sweep composes into a config (keys and types checked by the schemas)."""
    given = [t for t in tokens if "=" in t and not t.startswith("-") and "<" not in t]
    if not given:
        return []
    try:
        overrides = OverridesParser.create().parse_overrides(given)
    except Exception as e:
        return [f"{given}: {e}"]
    problems, first, examples = [], [], False
    for o in overrides:
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        options = group_options(o.key_or_group) if "." not in o.key_or_group else []
        examples |= o.key_or_group == "variant" and bool(EXAMPLE_VARIANTS & set(values))
        for value in values:
            if (
                options
                and value not in options
                and not (o.key_or_group == "variant" and value in EXAMPLE_VARIANTS)
            ):
                problems.append(f"{o.key_or_group}={value}: no such option; available: {', '.join(options)}")
        first.append(o.input_line if not o.is_sweep_override() else f"{o.get_key_element()}={values[0]}")
    if not problems and not examples:
        try:
            compose(first, return_hydra_config=True)
        except Exception as e:
            problems.append(f"{' '.join(first)} does not compose: {e}")
    return problems


def command_problems(text: str, compose: Callable) -> list[str]:
    problems = []
    for command, tokens in commands(text):
        if command.startswith("<") or command in TOP_LEVEL_FLAGS:
            continue
        if command not in COMMANDS:
            problems.append(f"`{command}` is no command; available: {', '.join(COMMANDS)}")
            continue
        accepted = accepted_options(command)
        for token in tokens:
            if token.startswith("-") and token.split("=")[0] not in accepted:
                problems.append(f"`{command} {token}`: not an option of {command}")
        if command in OVERRIDE_COMMANDS:
            problems += [f"`{command}`: {p}" for p in override_problems(tokens, compose)]
    return problems


def lone_option_problems(text: str) -> list[str]:
    """A span that is only an option (`--prune`, `--json PATH`) names an option of some command."""
    known = set().union(*map(accepted_options, COMMANDS))
    lone = {s.split()[0].split("=")[0] for s in spans(text) if re.match(r"--[a-z]", s)}
    return [f"`{o}` is an option of no command" for o in sorted(lone - known)]


# -- repository paths and links ---------------------------------------------------------------------


def path_problems(text: str, page: Path) -> list[str]:
    """A span that is one repository path (`bench/run/loop.py`) names something that exists, from the
    repository root or from the page's folder."""
    problems = []
    for span in spans(text):
        if " " in span or not span.startswith(REPO_PREFIXES) or re.search(r"[<*]|\.\.\.", span):
            continue
        if Path(span).stem.removeprefix("test_") in EXAMPLE_VARIANTS:  # files the docs have you create
            continue
        if not ((ROOT / span).exists() or (page.parent / span).exists()):
            problems.append(f"`{span}` does not exist")
    return problems


def slugs(text: str) -> set[str]:
    """The anchors of a page's headings, as GitHub (and the site: mkdocs.yml) writes them."""
    out, seen = set(), {}
    for heading in HEADING.findall(prose(text)):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
        slug = re.sub(r"[^\w\- ]", "", plain.strip().lower()).replace(" ", "-")
        out.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return out


def link_problems(text: str, page: Path) -> list[str]:
    problems = []
    body = SPAN.sub("", prose(text))
    for target in LINK.findall(body) + LINK_DEFINITION.findall(body):
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|//", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve()
        if path and not file.exists():
            problems.append(f"({target}): {path} does not exist")
            continue
        headings = slugs(file.read_text()) if path else slugs(text)
        if anchor and (not path or file.suffix == ".md") and anchor not in headings:
            problems.append(f"({target}): {file.name if path else page.name} has no heading #{anchor}")
    return problems


# -- the tests ---------------------------------------------------------------------------------------


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def test_the_pages_are_the_readme_and_the_docs():
    names = {page_id(p) for p in PAGES}
    assert {"README.md", "docs/index.md", "docs/running.md", "docs/adding-a-variant.md"} <= names
    assert "results/archive/compare/README.md" in names


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_module_paths_resolve(page):
    assert module_problems(page.read_text()) == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_commands_and_their_options_exist(page, compose):
    text = page.read_text()
    assert command_problems(text, compose) + lone_option_problems(text) == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_repository_paths_and_relative_links_exist(page):
    text = page.read_text()
    assert path_problems(text, page) + link_problems(text, page) == []


BROKEN = """# A page

## Its heading

`bench.results_index` and `bench.results.run_folder.HASH_IGNORD`, but `variants.base.Variant` is fine.

```python
from bench.tools.reload import load_run, reload_everything
```

`peft-bench trian` and `python -m bench leaderboard --fulll`, `peft-bench speed --no-inference`.

```bash
python -m bench train -m variant=lora,lorra seed=0,1  # a sweep with a typo
python -m bench train train.epochz=2
python -m bench train --cfgg job
```

`--prunne` is lone, `--prune` too. `bench/loop.py` moved, `bench/run/loop.py` did not.
[a page](nowhere.md), [a heading](#its-heading), [another](#no-heading),
[the readme](../README.md#the-commands).
"""


def test_each_check_catches_a_broken_reference(compose):
    page = ROOT / "docs" / "broken.md"
    assert module_problems(BROKEN) == [
        "`bench.results.run_folder.HASH_IGNORD` is no module or attribute",
        "`bench.results_index` is no module or attribute",
        "`bench.tools.reload.reload_everything` is no module or attribute",
    ]
    found = command_problems(BROKEN, compose)
    expected = [
        "`trian` is no command; available: train, leaderboard, ",
        "`leaderboard --fulll`: not an option of leaderboard",
        "`train`: variant=lorra: no such option; available: adalora, bitfit, dora, ",
        "`train`: train.epochz=2 does not compose: ",
        "`train --cfgg`: not an option of train",
    ]
    assert len(found) == len(expected), found
    assert all(f.startswith(e) for f, e in zip(found, expected, strict=True)), found
    assert "epochz" in found[3].split("does not compose: ")[1]
    assert lone_option_problems(BROKEN) == ["`--prunne` is an option of no command"]
    assert path_problems(BROKEN, page) == ["`bench/loop.py` does not exist"]
    assert link_problems(BROKEN, page) == [
        "(nowhere.md): nowhere.md does not exist",
        "(#no-heading): broken.md has no heading #no-heading",
    ]


def test_slugs_are_githubs():
    text = (
        "# The contract (`variants/base.py`)\n## End to end, against the Trainer + peft\n## Notes\n## Notes\n"
    )
    assert slugs(text) == {
        "the-contract-variantsbasepy",
        "end-to-end-against-the-trainer--peft",
        "notes",
        "notes-1",
    }


def markdown_table(text: str, header: str) -> list[dict[str, str]]:
    """The rows of the table whose header line starts with ``header``: {column: stripped cell}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[start:]]
    end = next((i for i, line in enumerate(lines[start:]) if not line.startswith("|")), len(cells))
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:end]]


def test_the_readme_quotes_the_committed_leaderboard():
    """The README's answer table: each score, its tied mark (bold) and the averages as committed."""
    committed = markdown_table(
        (ROOT / "results" / "archive" / "compare" / "leaderboard.md").read_text(), "| rank |"
    )
    board = {(row["task"], row["variant"]): row for row in committed}
    readme = markdown_table((ROOT / "README.md").read_text(), "| variant | rt_polarity |")
    assert [r["variant"] for r in readme] == [v for (t, v) in board if t == "avg"]  # every one, by average
    for quoted in readme:
        variant = quoted["variant"]
        for task in ("rt_polarity", "rt_rating", "tweet_polarity"):
            row = board[(task, variant)]
            assert quoted[task].strip("*") == row["mean_x100"], (task, variant)
            assert quoted[task].startswith("**") == (row["tied"] == "yes"), (task, variant)
        avg = board[("avg", variant)]
        assert (quoted["avg"], quoted["% trainable"], quoted["peak MB"]) == (
            avg["mean_x100"],
            avg["pct_trainable"],
            avg["peak_memory_mb"],
        ), variant
