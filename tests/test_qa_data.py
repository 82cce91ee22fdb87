"""SQuAD, DRCD and CMRC 2018 loaders, downloads and subsets (bert_annotated.qa_data): appendix H."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bert_annotated.qa_data import (
    CMRC2018_URLS,
    DRCD_URLS,
    SQUAD_URLS,
    download_to_cache,
    load_cmrc2018,
    load_drcd,
    load_squad,
    read_squad_json,
    split_by_article,
    subsample,
)
from bert_annotated.question_answering import make_features
from bert_annotated.tokenization import BertTokenizer

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "book" / "data" / "qa-sample"
MODEL = ROOT / "book" / "models" / "bert-mini-bilingual"
SHARED = ROOT.parent / "shared"


def squad_file(tmp_path, qas, context="Paris is the capital of France."):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": qas}]}]}), encoding="utf-8")
    return path


@pytest.mark.parametrize("qas, where", [
    ([{"id": "q", "answers": [{"text": "Paris", "answer_start": 0}]}], r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.question"),
    ([{"id": "q", "question": "?", "answers": [{"answer_start": 0}]}], r"qas\[0\]\.answers\[0\]\.text is missing"),
    ([{"id": "q", "question": "?", "answers": [{"text": "Paris", "answer_start": "0"}]}], r"answer_start is a str"),
    ([{"id": "q", "question": "?", "answers": []}], r"qas\[0\]\.answers is empty"),
    ({"id": "q"}, r"paragraphs\[0\]\.qas is a dict"),
])
def test_malformed_json_names_file_and_entry(tmp_path, qas, where):
    path = squad_file(tmp_path, qas)
    with pytest.raises(ValueError, match=where) as error:
        read_squad_json(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_not_json_duplicate_ids_and_missing_data(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json: cannot read it as a JSON"):
        read_squad_json(bad)
    bad.write_text(json.dumps({"version": "1.1"}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"\$\.data is missing"):
        read_squad_json(bad)
    qa = {"id": "q", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]}
    with pytest.raises(ValueError, match="appears twice"):
        read_squad_json(squad_file(tmp_path, [qa, qa]))


def test_answer_start_mismatch_is_loud(tmp_path):
    path = squad_file(tmp_path, [
        {"id": "q1", "question": "?", "answers": [{"text": "France", "answer_start": 3}]},
        {"id": "q2", "question": "?", "answers": [{"text": "Berlin", "answer_start": 0}]},
        {"id": "q3", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]}])
    with pytest.raises(ValueError, match=r"2 answer\(s\).*qas\[0\]\.answers\[0\] \(id q1\)"):
        read_squad_json(path)
    with pytest.warns(UserWarning, match="moved 1 .* 1 do not occur"):
        examples = read_squad_json(path, on_mismatch="repair")
    assert [e.answers[0].start for e in examples] == [24, -1, 0]  # no question dropped
    features = make_features(examples, BertTokenizer(str(MODEL / "vocab.txt")))
    assert [f.start_position > 0 for f in features] == [True, False, True]  # q2 is never a training target


def test_loaders_read_folders_and_download_once(tmp_path, monkeypatch):
    source = tmp_path / "remote"
    source.mkdir()
    (source / "DRCD_dev.json").write_bytes((SAMPLE / "drcd-dev-sample.json").read_bytes())
    assert len(load_drcd("dev", path=source)) == 9  # a folder in the published layout
    monkeypatch.setitem(DRCD_URLS,
                        "dev", (source / "DRCD_dev.json").as_uri())
    cache = tmp_path / "cache"
    assert len(load_drcd("dev", cache_dir=cache)) == 9
    assert (cache / "DRCD_dev.json").is_file() and not list(cache.glob("*.tmp"))
    (source / "DRCD_dev.json").unlink()
    assert len(load_drcd("dev", cache_dir=cache)) == 9  # from the cache, no second download
    with pytest.raises(ValueError, match="cannot download"):
        download_to_cache((source / "missing.json").as_uri(), cache)
    assert not list(cache.glob("*.tmp"))
    with pytest.raises(ValueError, match="no split 'test'"):
        load_squad("test")
    with pytest.raises(ValueError, match="no such file"):
        load_squad("dev", path=tmp_path / "nowhere.json")
    assert set(SQUAD_URLS) == {"train", "dev"} and set(CMRC2018_URLS) == {"train", "dev", "trial"}


@pytest.mark.skipif(not (SHARED / "corpora").is_dir(), reason="needs ../shared (the full datasets)")
def test_full_datasets_load_with_every_question():
    squad = load_squad("dev", path=SHARED / "datasets" / "squad-v1.1")
    assert len(squad) == 10570 and sum(len(e.answers) for e in squad) == 34726
    train, evaluation = split_by_article(squad, 32)
    assert len({e.title for e in train}) == 32 and evaluation[0].title == "Jacksonville,_Florida"
    assert not {e.title for e in train} & {e.title for e in evaluation}
    assert len(load_drcd("dev", path=SHARED / "corpora" / "drcd-contexts")) == 3524
    assert len(load_drcd("test", path=SHARED / "corpora" / "drcd-contexts")) == 3493
    with pytest.warns(UserWarning, match="200 answer"):
        cmrc = load_cmrc2018("dev", path=SHARED / "corpora" / "cmrc2018-contexts")
    assert len(cmrc) == 3219


def test_subsample_is_fixed_and_ordered():
    items = list(range(100))
    assert subsample(items, 10) == subsample(items, 10) == sorted(subsample(items, 10))
    assert subsample(items, None) == items and subsample(items, 500) == items
