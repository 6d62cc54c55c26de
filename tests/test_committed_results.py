"""The committed comparisons match today's code: from the runs of each committed comparison folder
(results/compare, results/archive/*), its leaderboards (leaderboard.md, leaderboard.csv), its sensitivity
table, its selected lrs (each conf/selected/ file made from it) and its report (the verdict, the notes,
the tables) are made again by the commands its README lists, and compared by content with the committed
files: the Markdown table's cells, the CSVs' values, the YAML's lrs, the report's text block by block and
its tables cell by cell, the data its plots draw value by value. Only timestamps may differ."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers.paths import ROOT
from omegaconf import OmegaConf

from bench.analysis import leaderboard, report

# a committed comparison: a folder of run folders with its leaderboard committed beside them
COMPARISONS = [
    folder
    for folder in (
        Path("results/compare"),
        *sorted(p.relative_to(ROOT) for p in (ROOT / "results/archive").glob("*")),
    )
    if (ROOT / folder / "leaderboard.md").is_file()
]
MADE = {  # file -> the leaderboard command's options that make it (the report is made apart)
    "leaderboard.md": [],
    "leaderboard.csv": ["--full", "--format", "csv"],
    "sensitivity.csv": ["--sensitivity", "--format", "csv"],
}
SELECTED = "selected.yaml"  # the made --selected-lrs file, compared with each conf/selected/ file from it
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?")


def markdown_content(path: Path) -> list:
    """A Markdown file's lines, each table line as its cells."""
    return [
        [c.strip() for c in line.strip().strip("|").split(" | ")] if line.startswith("|") else line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not re.fullmatch(r"\|(---\|)+", line.strip())
    ]


def value(cell: str) -> float | str:
    """A CSV cell as a number when it is one (``1`` and ``1.0`` are the same value), else as written."""
    try:
        return float(cell)
    except ValueError:
        return cell


def csv_content(path: Path) -> list[list]:
    """A CSV's rows, each cell a value."""
    with path.open(newline="") as f:
        return [[value(cell) for cell in row] for row in csv.reader(f)]


class PageText(HTMLParser):
    """A page's content: each table as its rows of cell texts, every other block (heading, paragraph,
    list item, caption) as its text, an image as its alt text, a JSON script (the plots' data) as its
    value; markup, styles, scripts and image data left out, timestamps masked."""

    BLOCKS = {"h1", "h2", "h3", "h4", "p", "li", "figcaption", "summary", "caption", "section", "ul", "div"}

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list = []
        self.text: list[str] = []
        self.rows: list[list[str]] | None = None
        self.hidden = False
        self.json: list[str] | None = None

    def words(self) -> str:
        text, self.text = " ".join("".join(self.text).split()), []
        return TIMESTAMP.sub("<time>", text)

    def flush(self) -> None:
        if self.rows is None and (text := self.words()):
            self.blocks.append(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "script" and dict(attrs).get("type") == "application/json":
            self.flush()
            self.json = []
        elif tag in ("style", "title", "script"):
            self.hidden = True
        elif tag == "table":
            self.flush()
            self.rows = []
        elif tag == "tr" and self.rows is not None:
            self.rows.append([])
        elif tag in ("td", "th"):
            self.text = []
        elif tag == "img":
            self.flush()
            self.blocks.append(f"image: {dict(attrs).get('alt')}")
        elif tag in self.BLOCKS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self.json is not None:
            self.blocks.append(json.loads("".join(self.json)))
            self.json = None
        elif tag in ("style", "title", "script"):
            self.hidden = False
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append(self.words())
        elif tag == "table" and self.rows is not None:
            self.blocks.append(self.rows)
            self.rows = None
        elif tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self.json is not None:
            self.json.append(data)
        elif not self.hidden:
            self.text.append(data)


def page_content(path: Path) -> list:
    parser = PageText()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.flush()
    return parser.blocks


READERS = {"leaderboard.md": markdown_content, "report.html": page_content}


def same(a: object, b: object) -> bool:
    """Equal contents; two floats are the same number when they differ only in the last bits (the order
    of a sum on another machine), far below any digit a person would edit."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    return a == b


def first_difference(committed: list, made: list) -> str:
    """Where two contents part: the first item that differs, or the one that only one of them has."""
    for i, (a, b) in enumerate(zip(committed, made, strict=False)):
        if not same(a, b):
            return f"item {i}: committed {a!r}, made now {b!r}"
    return f"committed {len(committed)} items, made now {len(made)}"


def selected_files(folder: Path) -> list[Path]:
    """The conf/selected/ files made from ``folder`` (their header names it: ``selected_lrs_yaml``)."""
    return [
        p
        for p in sorted((ROOT / "conf" / "selected").glob("*.yaml"))
        if f"--results {folder.as_posix()} --selected-lrs" in p.read_text()
    ]


def differences(committed: Path, made: Path, selected: list[Path]) -> list[str]:
    """Each committed file whose content differs from the one made now, with where (none: all match)."""
    out = []
    for name in [*MADE, "report.html"]:
        path = committed / name
        if not path.is_file():
            out.append(f"{path}: not committed")
            continue
        read = READERS.get(name, csv_content)
        if not same(was := read(path), now := read(made / name)):
            out.append(f"{path}: {first_difference(was, now)}")
    lrs = OmegaConf.to_container(OmegaConf.load(made / SELECTED))
    for path in selected:
        if (was := OmegaConf.to_container(OmegaConf.load(path))) != lrs:
            out.append(f"{path}: committed {was}, made now {lrs}")
    return out


def without_images(fig, alt: str) -> str:
    """``report.png`` without the picture: the image's data is not compared, and saving it is slow."""
    return f'<img alt="{alt}">'


@pytest.fixture(scope="module", params=COMPARISONS, ids=str)
def made(request, tmp_path_factory) -> tuple[Path, Path]:
    """A committed comparison folder, relative to the repository, and a folder with its files made again
    now by the commands of its README."""
    folder, out = request.param, tmp_path_factory.mktemp("made")
    with contextlib.chdir(ROOT), pytest.MonkeyPatch.context() as patch:
        for name, options in MADE.items():
            assert leaderboard.main(["--results", str(folder), *options, "--out", str(out / name)]) == 0
        assert (
            leaderboard.main(["--results", str(folder), "--selected-lrs", "--out", str(out / SELECTED)]) == 0
        )
        patch.setattr(report, "png", without_images)
        (out / "report.html").write_text(report.build_report(folder), encoding="utf-8")
    return folder, out


def test_there_is_a_committed_comparison():
    assert Path("results/archive/compare") in COMPARISONS


def test_the_committed_files_are_what_the_code_makes_of_the_runs(made):
    """Regenerate them with the commands of the folder's README when this fails."""
    folder, fresh = made
    assert differences(ROOT / folder, fresh, selected_files(folder)) == []


def test_an_edited_number_is_a_difference_and_a_timestamp_is_not(made, tmp_path):
    """The check on a copy of the committed files: each file with one number edited is named."""
    folder, fresh = made
    for name in [*MADE, "report.html"]:
        shutil.copy(ROOT / folder / name, tmp_path / name)
    (tmp_path / SELECTED).write_text((fresh / SELECTED).read_text())
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    (tmp_path / "report.html").write_text(TIMESTAMP.sub("1999-12-31 23:59", page), encoding="utf-8")
    assert differences(tmp_path, fresh, [tmp_path / SELECTED]) == []

    [header, first, *_] = csv_content(tmp_path / "leaderboard.csv")
    mean = first[header.index("mean_x100")]
    shown, edited = f"{mean:.2f}", f"{mean + 0.01:.2f}"  # as the Markdown table and the report show it
    edits = {
        "leaderboard.csv": lambda text: edit_csv(text, "mean_x100"),
        "sensitivity.csv": lambda text: edit_csv(text, "dev_x100"),
        "leaderboard.md": lambda text: text.replace(f"| {shown} |", f"| {edited} |", 1),
        "report.html": lambda text: text.replace(f"<td>{shown}</td>", f"<td>{edited}</td>", 1),
        SELECTED: lambda text: re.sub(r"(?m)^(  \w+: )", r"\g<1>1", text, count=1),  # 0.008 -> 10.008
    }
    for name, edit in edits.items():
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert edit(text) != text, name
        (tmp_path / name).write_text(edit(text), encoding="utf-8")
        found = differences(tmp_path, fresh, [tmp_path / SELECTED])
        assert [d.split(": ")[0] for d in found] == [str(tmp_path / name)], found
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "leaderboard.md").unlink()
    assert differences(tmp_path, fresh, []) == [f"{tmp_path / 'leaderboard.md'}: not committed"]


def edit_csv(text: str, column: str) -> str:
    """A CSV with the first row's number in ``column`` raised by 0.01."""
    rows = list(csv.reader(text.splitlines()))
    at = rows[0].index(column)
    rows[1][at] = repr(float(rows[1][at]) + 0.01)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()
