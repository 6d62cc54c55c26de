"""The readers of packaged labelled files (bench.inputs.readers), on small files written here."""

from __future__ import annotations

import json

import pytest

from bench.inputs import readers


def test_snli_pairs_and_the_dropped_no_gold_label(tmp_path):
    rows = [
        {"sentence1": "A man sleeps. ", "sentence2": "A man rests.", "gold_label": "entailment"},
        {"sentence1": "A dog runs.", "sentence2": "A cat sits.", "gold_label": "-"},
        {"sentence1": "Two kids play.", "sentence2": "Nobody plays.", "gold_label": "contradiction"},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert readers.snli_jsonl(path) == [
        (("A man sleeps.", "A man rests."), "entailment"),
        (("Two kids play.", "Nobody plays."), "contradiction"),
    ]
    path.write_text(json.dumps({"sentence1": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"s.jsonl, line 1: not an SNLI example \(KeyError"):
        readers.snli_jsonl(path)


def test_trec_coarse_labels_from_latin1(tmp_path):
    path = tmp_path / "q.txt"
    path.write_bytes("HUM:ind Who was Jos\xe9 Mart\xed ?\nNUM:date When did it rain ?\n".encode("latin-1"))
    assert readers.trec_questions(path) == [
        (("Who was José Martí ?",), "HUM"),
        (("When did it rain ?",), "NUM"),
    ]
    path.write_text("HUM Who ?\n")
    with pytest.raises(ValueError, match=r"q.txt, line 1: expected 'COARSE:fine question', got 'HUM Who \?'"):
        readers.trec_questions(path)


def test_orange_tab_skips_its_type_rows_and_keeps_quotes(tmp_path):
    path = tmp_path / "n.tab"
    path.write_text('Category\tText\nd\tstring\nclass\t\n\nsci.med\tsay "hi\nrec.autos\tcars\n')
    assert readers.orange_tab(path) == [(('say "hi',), "sci.med"), (("cars",), "rec.autos")]
    path.write_text("Topic\tText\nd\tstring\nclass\t\n")
    with pytest.raises(ValueError, match="lacks column.s. Category; it has columns: Topic, Text"):
        readers.orange_tab(path)


def test_health_tweets_outlet_labels_and_no_urls(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(
        "source_id,text\n"
        "bbchealth-585978391360221184,Breast cancer risk test devised http://bbc.in/1CimpJF\n"
        'reuters_health-1234-5,"Flu, again: www.reuters.com/x here"\n'
        "KaiserHealthNews-77,RT @khn: cut off http:…\n"
    )
    assert readers.health_tweets(path) == [
        (("Breast cancer risk test devised",), "bbchealth"),
        (("Flu, again: here",), "reuters_health-1234"),
        (("RT @khn: cut off",), "KaiserHealthNews"),
    ]
    path.write_text("id,text\n1,x\n")
    with pytest.raises(ValueError, match="expected the columns source_id, text; it has id, text"):
        readers.health_tweets(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("See https://t.co/abc and http://ow.ly/KiDDJ now", "See and now"),
        ("cut http:// ... end", "cut ... end"),
        ("no link, just https", "no link, just"),
        ("shop www.example.com/a?b=1", "shop"),
        ("plain text stays", "plain text stays"),
    ],
)
def test_strip_urls(text, expected):
    assert readers.strip_urls(text) == expected


def test_conll2010_certainty_flags(tmp_path):
    path = tmp_path / "u.csv"
    path.write_bytes('\ufeff"1","It rains."\n"-1","It may rain, perhaps."\n'.encode())
    assert readers.conll2010_hedges(path) == [
        (("It rains.",), "certain"),
        (("It may rain, perhaps.",), "uncertain"),
    ]
    path.write_text('"0","x"\n')
    with pytest.raises(ValueError, match="u.csv, data row 1: certainty '0' is not one of 1, -1"):
        readers.conll2010_hedges(path)
