"""Appendix G (bert_annotated.classification_data): GLUE and ChnSentiCorp loaders, downloads, training subsets."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import bert_annotated.classification_data as classification_data
from bert_annotated.classification_data import (
    TASKS,
    Example,
    load_task,
    read_task_split,
    split_train_pool,
    training_subset,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SAMPLE = Path(__file__).resolve().parents[1] / "book" / "data" / "glue-sst2-sample"

# (task, split) -> (rows, rows with label index 1), from the READMEs of ../shared/datasets
PUBLISHED = {("sst2", "train"): (67_349, 37_569), ("sst2", "dev"): (872, 444),
             ("mrpc", "train"): (3_668, 2_474), ("mrpc", "dev"): (408, 279),
             ("rte", "train"): (2_490, 1_241), ("rte", "dev"): (277, 131),
             ("chnsenticorp", "train"): (9_600, 4_799), ("chnsenticorp", "dev"): (1_200, 593)}


@pytest.mark.parametrize("task, split", sorted(PUBLISHED))
def test_loaders_read_the_shared_copies_with_every_row(task, split):
    folder = SHARED / TASKS[task].folder
    if not folder.is_dir():
        pytest.skip(f"{folder} is not here (../shared is only on development machines)")
    examples = load_task(task, split, folder)
    rows, positives = PUBLISHED[task, split]
    assert len(examples) == rows and sum(example.label for example in examples) == positives
    assert all(example.text_a for example in examples)
    assert all((example.text_b is not None) == (task in ("mrpc", "rte")) for example in examples)
    if (task, split) == ("chnsenticorp", "train"):  # reviews that start with '"': csv quoting would merge rows
        assert any(example.text_a.startswith('"') for example in examples)


def test_sample_in_the_repository_reads_with_the_same_loader():
    train, dev = (load_task("sst2", split, SAMPLE, check_rows=False) for split in ("train", "dev"))
    assert (len(train), len(dev)) == (400, 872)
    with pytest.raises(ValueError, match="published file has 67,349"):
        load_task("sst2", "train", SAMPLE)


def _write(path: Path, text: str, encoding="utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def test_quotes_and_byte_order_mark_are_read_as_text(tmp_path):
    _write(tmp_path / "train.tsv", '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n'
           '1\t1\t2\t" the witness " said\tHe said " yes\n0\t3\t4\ta\tb\n')
    examples = read_task_split("mrpc", "train", tmp_path, check_rows=False)
    assert examples == [Example('" the witness " said', 'He said " yes', 1), Example("a", "b", 0)]


@pytest.mark.parametrize("text, message", [
    ("sentence\tlabel\ngood film\t1\nbad\t0\textra\n", r"train\.tsv:3: expected 2 tab-separated fields, found 3"),
    ("sentence\tlabel\ngood film\t1\nno tab here\n", r"train\.tsv:3: expected 2 tab-separated fields, found 1"),
    ("sentence\tlabel\ngood film\t1\nbad film\t2\n", r"train\.tsv:3: label '2' is not one of \('0', '1'\)"),
    ("text\tlabel\ngood film\t1\n", r"train\.tsv:1: expected the header 'sentence\\tlabel'"),
])
def test_malformed_files_name_the_file_and_the_line(tmp_path, text, message):
    _write(tmp_path / "train.tsv", text)
    with pytest.raises(ValueError, match=message) as error:
        read_task_split("sst2", "train", tmp_path, check_rows=False)
    assert "\n" not in str(error.value)


def test_row_count_unknown_split_and_task(tmp_path):
    _write(tmp_path / "dev.tsv", "sentence\tlabel\ngood\t1\n")
    with pytest.raises(ValueError, match=r"1 rows, but the published file has 872"):
        read_task_split("sst2", "dev", tmp_path)
    with pytest.raises(ValueError, match="test labels are hidden"):
        read_task_split("sst2", "test", tmp_path)
    with pytest.raises(ValueError, match="unknown task"):
        load_task("cola", "dev", tmp_path)
    with pytest.raises(FileNotFoundError, match="train.tsv"):
        read_task_split("sst2", "train", tmp_path)


def test_download_unpacks_the_archive_into_the_cache_once(tmp_path, monkeypatch):
    archive = tmp_path / "SST-2.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("SST-2/train.tsv", "sentence\tlabel\nfine\t1\n")
        out.writestr("SST-2/dev.tsv", "sentence\tlabel\nawful\t0\ngreat\t1\n")
        out.writestr("SST-2/test.tsv", "index\tsentence\n0\tunknown\n")
    monkeypatch.setitem(TASKS, "sst2", TASKS["sst2"]._replace(url=archive.as_uri()))
    monkeypatch.setenv("BERT_ANNOTATED_CACHE", str(tmp_path / "cache"))
    assert load_task("sst2", "dev", check_rows=False) == [Example("awful", None, 0), Example("great", None, 1)]
    assert (tmp_path / "cache" / "datasets" / "glue-sst2" / "train.tsv").is_file()

    def no_network(url, destination):
        raise AssertionError("downloaded twice")
    monkeypatch.setattr(classification_data, "_fetch", no_network)
    assert len(load_task("sst2", "train", check_rows=False)) == 1


def test_download_builds_mrpc_like_glue(tmp_path, monkeypatch):
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    source = _write(tmp_path / "msr_paraphrase_train.txt", f"{header}\n1\t10\t11\tA one\tA two\n0\t20\t21\tB\tC\n"
                    "1\t30\t31\tD\tE \n")
    ids = _write(tmp_path / "mrpc_dev_ids.tsv", "20\t21\n")
    monkeypatch.setitem(TASKS, "mrpc", TASKS["mrpc"]._replace(url=source.as_uri()))
    monkeypatch.setattr(classification_data, "MRPC_DEV_IDS_URL", ids.as_uri())
    folder = classification_data.download_task("mrpc", tmp_path / "cache")
    assert (folder / "train.tsv").read_bytes().startswith(b"\xef\xbb\xbfQuality")  # GLUE keeps the BOM
    assert read_task_split("mrpc", "dev", folder, check_rows=False) == [Example("B", "C", 0)]
    assert [e.text_b for e in read_task_split("mrpc", "train", folder, check_rows=False)] == ["A two", "E"]


def test_a_failed_download_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(TASKS, "rte", TASKS["rte"]._replace(url=(tmp_path / "missing.zip").as_uri()))
    with pytest.raises(ValueError, match="cannot download .*missing.zip.*download it by hand"):
        classification_data.download_task("rte", tmp_path / "cache")


def test_held_out_is_fixed_and_subsets_nest():
    examples = list(range(100))
    held_out, pool = split_train_pool(examples, 10)
    assert split_train_pool(examples, 10) == (held_out, pool) and not set(held_out) & set(pool)
    assert sorted(held_out + pool) == examples
    small, large = training_subset(pool, 20, seed=1), training_subset(pool, 50, seed=1)
    assert large[:20] == small and training_subset(pool, 20, seed=2) != small
    with pytest.raises(ValueError, match="pool has 90"):
        training_subset(pool, 91, seed=0)
    with pytest.raises(ValueError, match="held_out_size"):
        split_train_pool(examples, 100)
