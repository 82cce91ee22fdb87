"""Reading corpora (bert_annotated.corpora): chapter 07's sentence splitter and corpus, appendix F's readers,
WikiText and its download."""
from __future__ import annotations

import io
import re
import time

import pytest

from bert_annotated.corpora import Corpus, corpus_files, detect_corpus_format, read_corpus, split_sentences
from bert_annotated.pretraining_data import create_pretraining_examples

# pytest fixtures (imported with the fixtures they depend on)
from pretraining_fixtures import SHARED, collate, corpus, dataset, tokenizer  # noqa: F401


def test_split_sentences_english():
    text = ("Mr. Smith paid $3.50 for e.g. apples at 9 a.m. on Monday. The U.S. economy grew by 2.5 percent! "
            "Did J. R. R. Tolkien know? He said \"Stop.\" Then he left... Fine.")
    assert split_sentences(text) == [
        "Mr. Smith paid $3.50 for e.g. apples at 9 a.m. on Monday.",
        "The U.S. economy grew by 2.5 percent!",
        "Did J. R. R. Tolkien know?",
        "He said \"Stop.\"",
        "Then he left...",
        "Fine.",
    ]
    assert split_sentences("Version 3.14 is out.Really") == ["Version 3.14 is out.Really"]
    assert split_sentences("") == [] and split_sentences(" \t ") == []
    started = time.perf_counter()
    assert len(split_sentences("Short one. " * 200_000 + "X" * 100_000 + " end.")) == 200_001  # linear, not quadratic
    assert time.perf_counter() - started < 10


def test_split_sentences_chinese():
    text = "今天天气很好。我们去公园吧！你来吗？“好的。”他说。「走吧！」她答道。圆周率约为3.14"
    assert split_sentences(text) == ["今天天气很好。", "我们去公园吧！", "你来吗？", "“好的。”", "他说。", "「走吧！」",
                                     "她答道。", "圆周率约为3.14"]
    assert split_sentences("BERT 很好用。It works. 真的？") == ["BERT 很好用。", "It works.", "真的？"]


def test_read_documents_bom_crlf_and_long_line(tmp_path):
    long_line = "word " * 100_000 + "end."
    path = tmp_path / "docs.txt"
    path.write_bytes(("\ufeffOne. Two.\r\nThree\r\n\r\n\r\n" + long_line + "\r\n\r\nLast doc.").encode("utf-8"))
    corpus = read_corpus(path)
    assert corpus.format == "documents" and len(corpus) == 3
    assert corpus.documents[0] == ["One.", "Two.", "Three"]
    assert corpus.documents[1] == [long_line]
    assert corpus.documents[2] == ["Last doc."]


def test_read_wikiextractor_and_directories(tmp_path):
    folder = tmp_path / "wiki" / "AA"
    folder.mkdir(parents=True)
    (folder / "wiki_00").write_text(
        '<doc id="1" url="?curid=1" title="Alpha">\nAlpha\n\nAlpha is first. It leads.\nHistory.\n</doc>\n'
        '<doc id="2" url="?curid=2" title="Empty">\nEmpty\n\n</doc>\n', encoding="utf-8")
    (folder / "wiki_01").write_text('<doc id="3" url="?curid=3" title="Beta">\nBeta\n\nBeta is second.\n', encoding="utf-8")
    (tmp_path / "wiki" / "README.md").write_text("not corpus text\n\nat all\n", encoding="utf-8")
    (tmp_path / "wiki" / ".hidden").write_text("secret\n", encoding="utf-8")
    assert [p.name for p in corpus_files(tmp_path / "wiki")] == ["wiki_00", "wiki_01"]
    assert detect_corpus_format(folder / "wiki_00") == "wikiextractor"
    corpus = read_corpus(tmp_path / "wiki")
    assert corpus.documents == [["Alpha is first.", "It leads.", "History."], ["Beta is second."]]  # titles dropped
    explicit = read_corpus(tmp_path / "wiki", corpus_format="wikiextractor")
    assert explicit.documents == corpus.documents


def test_read_pairs(tmp_path, tokenizer):
    path = tmp_path / "pairs.txt"
    path.write_text("the cat sat\ton the mat\nit was warm\tthe sun shone\ndogs bark\tcats meow\n", encoding="utf-8")
    corpus = read_corpus(path)
    assert corpus.format == "pairs" and corpus.pairs[0] == ("the cat sat", "on the mat") and len(corpus) == 3
    assert list(corpus.texts())[:2] == ["the cat sat", "on the mat"]
    examples = create_pretraining_examples(corpus, tokenizer, seq_len=16)
    assert len(examples) == 3 and all(e.tokens[0] == "[CLS]" for e in examples)
    bad = tmp_path / "bad_pairs.txt"
    bad.write_text("a\tb\nc\td\nno tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3"):
        read_corpus(bad, corpus_format="pairs")


@pytest.mark.parametrize("content, message", [
    (b"", "empty or blank"),
    (b"   \n\t\n\n", "empty or blank"),
    (b"Only one document.\nStill the same one.\n", "found only 1 document"),
    (b"Fine line.\n\nCaf\xe9 is latin-1.\n", "line 3: bytes that are not UTF-8"),
])
def test_bad_corpora_raise_value_error(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        read_corpus(path)
    assert str(path) in str(error.value)


def test_missing_corpus_and_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="no such file or directory"):
        read_corpus(tmp_path / "nope.txt")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="no text files"):
        read_corpus(tmp_path / "empty_dir")
    with pytest.raises(ValueError, match="unknown corpus format"):
        read_corpus(tmp_path, corpus_format="xml")


def test_corpus_split_holds_out_whole_documents(corpus):
    train, valid = corpus.split(0.1, seed=0)
    assert len(train) + len(valid) == len(corpus) and len(valid) == max(2, round(0.1 * len(corpus)))
    remaining = [list(d) for d in corpus.documents]
    for document in train.documents + valid.documents:  # every document lands on exactly one side
        remaining.remove(document)
    assert remaining == []
    again_train, again_valid = corpus.split(0.1, seed=0)
    assert again_valid.documents == valid.documents
    tiny = Corpus([["a."], ["b."], ["c."]], [], "documents", "tiny")
    assert tiny.split(0.5) == (tiny, None)  # too few documents to spare two


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/corpora is not available")
def test_shared_corpora_are_read():
    wiki = SHARED / "enwiki-sample" / "wiki_00"
    if wiki.exists():
        corpus = read_corpus(wiki)
        assert detect_corpus_format(wiki) == "wikiextractor"
        assert len(corpus) > 300 and all(doc for doc in corpus.documents)
        sentences = [s for d in corpus.documents[:50] for s in d]
        assert not any(s.startswith("<doc") or s == "</doc>" for s in sentences)
        assert sum(len(s) for s in sentences) / len(sentences) < 400  # paragraphs were split into sentences
    chinese = SHARED / "cmrc2018-contexts" / "cmrc2018_contexts.txt"
    if chinese.exists():
        corpus = read_corpus(chinese)
        assert len(corpus) > 500
        sentences = [s for d in corpus.documents[:50] for s in d]
        assert sum(s.endswith(("。", "！", "？", "”", "」")) for s in sentences) > len(sentences) / 2


WIKITEXT2_TEST = SHARED / "wikitext-2" / "raw" / "wiki.test.raw"
WIKITEXT_SAMPLE = (" = Alpha = \n \n Alpha is a letter . It comes first @-@ ever .\n \n = = History = = \n \n"
                   " It dates from 1 @,@ 000 BC .\n \n = Beta = \n \n Beta comes second .\n")


def _wikitext_zip(tmp_path, text: str = WIKITEXT_SAMPLE):
    from bert_annotated.corpora import WIKITEXT_SPLITS
    import zipfile

    archive = tmp_path / "source" / "wikitext-103-raw-v1.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for split in WIKITEXT_SPLITS:
            zipped.writestr(f"wikitext-103-raw/wiki.{split}.raw", text)
    return archive


def test_read_wikitext_articles_headings_and_slice(tmp_path):
    from bert_annotated.corpora import read_wikitext

    path = tmp_path / "wiki.valid.raw"
    path.write_text(WIKITEXT_SAMPLE.replace(" = Alpha = \n", " = Alpha = \r\n"), encoding="utf-8")  # CRLF titles
    assert read_wikitext(path) == [["Alpha is a letter .", "It comes first-ever .", "It dates from 1,000 BC ."],
                                   ["Beta comes second ."]]
    assert read_wikitext(path, max_characters=1) == [["Alpha is a letter .", "It comes first-ever .",
                                                       "It dates from 1,000 BC ."]]


@pytest.mark.parametrize("text", ["Plain text, no title.\n\nAnother document.\n", "", " = = Only a heading = = \n"])
def test_read_wikitext_rejects_other_files(tmp_path, text):
    from bert_annotated.corpora import read_wikitext

    path = tmp_path / "notes.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="notes.txt") as error:
        read_wikitext(path)
    assert "\n" not in str(error.value) and "WikiText" in str(error.value)


@pytest.mark.skipif(not WIKITEXT2_TEST.is_file(), reason="needs ../shared/corpora/wikitext-2")
def test_read_wikitext_on_wikitext2_and_a_slice():
    from bert_annotated.corpora import read_wikitext

    lines = WIKITEXT2_TEST.read_text(encoding="utf-8").split("\n")
    title_lines = sum(1 for line in lines if re.match(r"^ = [^=].* = $", line.rstrip("\r")))  # as its README says
    articles = read_wikitext(WIKITEXT2_TEST)
    assert len(articles) == title_lines and all(articles)
    assert articles[0][0].startswith("Robert Boulter is an English film")
    assert not any(re.match(r"^=( =)* .* =( =)*$", sentence) or "@-@" in sentence  # no heading, joined numbers
                   for article in articles for sentence in article)
    sliced = read_wikitext(WIKITEXT2_TEST, max_characters=100_000)
    assert 0 < len(sliced) < len(articles) and sliced == articles[:len(sliced)]
    characters = [sum(len(sentence) for sentence in article) for article in sliced]
    assert sum(characters[:-1]) < 100_000 and sum(characters) > 90_000  # stops after the article crossing it


@pytest.mark.skipif(not WIKITEXT2_TEST.is_file(), reason="needs ../shared/corpora/wikitext-2")
def test_loader_reads_wikitext2_through_the_download_path(tmp_path):
    from bert_annotated.corpora import read_wikitext, read_wikitext103

    archive = _wikitext_zip(tmp_path, WIKITEXT2_TEST.read_text(encoding="utf-8"))
    corpus = read_wikitext103("valid", cache_dir=tmp_path / "cache", url=archive.as_uri())
    assert corpus.format == "documents" and corpus.documents == read_wikitext(WIKITEXT2_TEST)


def test_loader_downloads_once_from_a_file_url(tmp_path, monkeypatch):
    import bert_annotated.corpora as corpora

    archive = _wikitext_zip(tmp_path)
    monkeypatch.setenv("BERT_ANNOTATED_CACHE", str(tmp_path / "cache"))
    corpus = corpora.read_wikitext103("test", url=archive.as_uri())
    assert len(corpus) == 2 and corpus.source.endswith("wiki.test.raw")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["wikitext-103-raw", "wikitext-103-raw-v1.zip"]
    archive.unlink()  # a second call uses the cache and never downloads
    assert corpora.wikitext103_dir(url=archive.as_uri()) == tmp_path / "cache" / "wikitext-103-raw"
    with pytest.raises(ValueError, match="unknown WikiText split"):
        corpora.read_wikitext103("dev", url=archive.as_uri())


def test_a_cut_download_never_looks_complete(tmp_path, monkeypatch):
    import bert_annotated.corpora as corpora

    class CutResponse(io.BytesIO):
        headers = {"Content-Length": "1000"}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(corpora.urllib.request, "urlopen", lambda url, timeout: CutResponse(b"x" * 400))
    with pytest.raises(ValueError, match="stopped after 400 of 1,000 bytes"):
        corpora.wikitext103_dir(tmp_path, url="https://example.invalid/wikitext-103-raw-v1.zip")
    assert list(tmp_path.iterdir()) == []  # neither the archive nor a .partial file is left behind


def test_truncated_zip_is_a_one_line_error_naming_it(tmp_path):
    from bert_annotated.corpora import wikitext103_dir

    archive = _wikitext_zip(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    data = archive.read_bytes()
    (cache / archive.name).write_bytes(data[: len(data) // 2])  # as if a copy stopped halfway
    with pytest.raises(ValueError, match="wikitext-103-raw-v1.zip: not a complete zip archive") as error:
        wikitext103_dir(cache, url=archive.as_uri())
    assert "\n" not in str(error.value)
    assert not (cache / "wikitext-103-raw").exists()  # nothing half-extracted that would look complete
