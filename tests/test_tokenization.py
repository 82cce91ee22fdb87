"""Tests for chapter 01, bert_annotated.tokenization.

The vocabularies are trained here, with our own trainer, on a short local text plus a few
hand-added pieces; they are small on purpose so that many words split into several wordpieces.
Parity tests compare every token (and the encoded ids) with Hugging Face's two BERT tokenizers,
the `tokenizers`-backed `BertTokenizer` and the pure-Python `BertTokenizerLegacy`, on the same
vocab.txt. Nothing is downloaded.
"""
import collections
import json
import pickle
import random
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

import bert_annotated
from bert_annotated.tokenization import (
    SPECIAL_TOKENS,
    SPLIT_DISAGREEMENTS,
    BasicTokenizer,
    BertTokenizer,
    PairStatistics,
    WordpieceTokenizer,
    count_words,
    count_words_fast,
    initial_alphabet,
    is_cjk_character,
    is_punctuation,
    is_whitespace,
    learn_vocab,
    learn_vocab_by_frequency,
    load_vocab,
    merge_pair,
    split_on_whitespace,
    train_wordpiece_vocab,
    train_wordpiece_vocab_simple,
    truncate_longest_first,
    write_vocab,
)

LOCAL_TEXT = """\
The quick brown fox jumps over the lazy dog, and the dog does not mind at all.
A tokenizer cuts text into pieces; a vocabulary lists the pieces that a model knows.
Words such as tokenization, tokenizer and tokenized share the stem token.
Playing, played and player share the stem play, while unplayable adds a prefix.
Researchers at Google trained BERT on books and on the English Wikipedia in 2018.
The model reads 512 tokens at most, and each token becomes a vector of 768 numbers.
Masked language modelling hides fifteen percent of the tokens and predicts them again.
Next sentence prediction asks whether sentence B really follows sentence A.
Café owners in Zürich serve crème brûlée to naïve tourists every Tuesday.
Über-long compound words are rare in English but common in German.
Don't panic: punctuation (commas, dots, dashes -- and quotes "like these") is split off!
Prices rose 3.5% to $1,250 on 12/31/2019, says the report #42 @ 10:30am.
自然语言处理是人工智能的一个重要方向。
BERT 模型在中文任务上也取得了很好的效果，例如阅读理解和文本分类。
我们用 WordPiece 把英文单词切成更小的片段，而每个汉字单独成为一个词。
预训练需要大量的文本，微调只需要少量的标注数据。
Mixed text like 深度学习 deep learning 和 transformers 也能正确处理。
"""
LOCAL_LINES = LOCAL_TEXT.splitlines()
HAND_ADDED = ["un", "##aff", "##able", "##ing", "##ed", "##er", "##s", "token", "##ization", "##izer", "play"]
SMALL_MERGES = 120  # merges on top of the alphabet: small, so many words stay in several pieces

SAMPLES = [
    "The quick brown fox jumps over the lazy dog.",
    "unaffable tokenization of unplayable playing players",
    "Hello, World! HELLO world... hello?!",
    "自然语言处理是人工智能的一个重要方向。",
    "BERT模型在中文任务上也取得了很好的效果，例如阅读理解。",
    "Mixed 深度学习deep learning和transformers混合文本",
    "Héllo Crème brûlée naïve Zürich Über café",
    "Don't stop: (a) [b] {c} <d> e/f g\\h i|j k~l m^n o`p q_r s=t u+v w*x y&z #1 @2 $3 %4",
    "“Quoted” ‘text’ — with – dashes … and «guillemets» ¿qué? ¡sí!",
    "control\x00chars\x01and\x7fzero\u200bwidth\ufffdreplacement",
    "tabs\tand\nnewlines\r\nand\u00a0no-break\u3000ideographic spaces",
    "a" * 100 + " " + "b" * 101 + " ok",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "the man went to [MASK] store",
    "[CLS] sentence one [SEP] sentence two [SEP]",
    "store[MASK].[SEP]next [mask] [Mask] [UNK] [PAD]",
    "emoji 🙂 and math ∑∫ and symbols € £ ™",
    "",
    "   \t\n  ",
]
UNCASED_ONLY_SAMPLES = ["decomposed accents: Cre\u0300me bru\u0302le\u0301e"]  # HF's legacy tokenizer NFC-normalises first

PAIRS = [
    ("The quick brown fox", "jumps over the lazy dog."),
    ("自然语言处理", "BERT 模型在中文任务上也取得了很好的效果"),
    ("the man went to [MASK] store", "he bought a gallon [MASK] milk"),
    ("unaffable tokenization", "ok"),
]


def build_vocab(do_lower_case):
    words = count_words(LOCAL_LINES, do_lower_case=do_lower_case)
    base = len(SPECIAL_TOKENS) + len(initial_alphabet(words))
    tokens = train_wordpiece_vocab(LOCAL_LINES, vocab_size=base + SMALL_MERGES, min_frequency=1, do_lower_case=do_lower_case)
    return tokens + [token for token in HAND_ADDED if token not in tokens]


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def vocab_dir(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uncased" if request.param else "cased")
    write_vocab(build_vocab(request.param), folder / "vocab.txt")
    return folder, request.param


def samples_for(do_lower_case):
    return SAMPLES + (UNCASED_ONLY_SAMPLES if do_lower_case else [])


# ---------------------------------------------------------------- the pieces


def test_package_reexports_the_public_api():
    for name in ["BertTokenizer", "load_vocab", "write_vocab", "train_wordpiece_vocab"]:  # the lean top level
        assert getattr(bert_annotated, name) is getattr(bert_annotated.tokenization, name)
    for name in ["BasicTokenizer", "WordpieceTokenizer", "SPECIAL_TOKENS"]:  # the rest, from their module
        assert hasattr(bert_annotated.tokenization, name) and not hasattr(bert_annotated, name)
    assert SPECIAL_TOKENS == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_basic_tokenizer_rules():
    basic = BasicTokenizer()
    assert basic.tokenize("Héllo, WORLD!") == ["hello", ",", "world", "!"]
    assert basic.tokenize("a$b+c<d^e`f") == ["a", "$", "b", "+", "c", "<", "d", "^", "e", "`", "f"]
    assert basic.tokenize("中文BERT，好") == ["中", "文", "bert", "，", "好"]
    assert basic.tokenize("x\x00y\ufffdz\u200bw\x7fv") == ["xyzwv"]
    assert basic.tokenize("a\u00a0b\u3000c\td\ne") == ["a", "b", "c", "d", "e"]
    assert basic.tokenize("go to [MASK] now[SEP]") == ["go", "to", "[MASK]", "now", "[SEP]"]
    assert basic.tokenize("[mask]") == ["[", "mask", "]"]
    assert BasicTokenizer(never_split=()).tokenize("[MASK]") == ["[", "mask", "]"]
    assert BasicTokenizer(do_lower_case=False).tokenize("Héllo WORLD") == ["Héllo", "WORLD"]


def test_wordpiece_greedy_longest_match():
    vocab = {"un", "##aff", "##able", "##a", "##b", "##l", "##e", "a", "##aa"}
    wordpiece = WordpieceTokenizer(vocab)
    assert wordpiece.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert wordpiece.tokenize("unable") == ["un", "##able"]
    assert wordpiece.tokenize("aaaaa") == ["a", "##aa", "##aa"]   # longest first, left to right
    assert wordpiece.tokenize("unx") == ["[UNK]"]                   # one missing piece -> the whole word is [UNK]
    assert wordpiece.tokenize("a" * 100) == ["a"] + ["##aa"] * 49 + ["##a"]
    assert wordpiece.tokenize("a" * 101) == ["[UNK]"]
    assert WordpieceTokenizer(vocab, max_input_chars_per_word=3).tokenize("aaaa aaa") == ["[UNK]", "a", "##aa"]


def test_merge_pair():
    assert merge_pair(["t", "##o", "##k", "##e", "##n"], "##k", "##e") == ["t", "##o", "##ke", "##n"]
    assert merge_pair(["##a", "##a", "##a", "##a"], "##a", "##a") == ["##aa", "##aa"]
    assert merge_pair(["a", "##b"], "##b", "##c") == ["a", "##b"]


# ---------------------------------------------------------------- the trainer


def reference_trainer(texts, vocab_size, min_frequency, do_lower_case=True, score="wordpiece"):
    """The slow, obviously-correct trainer: recount everything before every merge."""
    word_counts = count_words(texts, do_lower_case=do_lower_case)
    alphabet = initial_alphabet(word_counts)[: vocab_size - len(SPECIAL_TOKENS)]
    vocab = SPECIAL_TOKENS + alphabet
    words = [([w[0]] + ["##" + c for c in w[1:]], n) for w, n in sorted(word_counts.items())]
    words = [(s, n) for s, n in words if n >= min_frequency and len(s) > 1 and all(x in vocab for x in s)]
    while len(vocab) < vocab_size:
        symbols, pairs = collections.Counter(), collections.Counter()
        for s, n in words:
            for x in s:
                symbols[x] += n
            for pair in zip(s, s[1:]):
                pairs[pair] += n
        if not pairs:
            break

        def key(pair):
            value = pairs[pair] if score == "frequency" else pairs[pair] / (symbols[pair[0]] * symbols[pair[1]])
            return (-value, -pairs[pair], pair)

        first, second = min(pairs, key=key)
        if first + second[2:] not in vocab:
            vocab.append(first + second[2:])
        words = [(merge_pair(s, first, second), n) for s, n in words]
    return vocab


@pytest.mark.parametrize("score", ["wordpiece", "frequency"])
@pytest.mark.parametrize("min_frequency", [1, 2])
def test_incremental_trainer_matches_naive_recount(score, min_frequency):
    words = count_words(LOCAL_LINES)
    size = len(SPECIAL_TOKENS) + len(initial_alphabet(words)) + 150
    fast = train_wordpiece_vocab(LOCAL_LINES, vocab_size=size, min_frequency=min_frequency, score=score)
    slow = reference_trainer(LOCAL_LINES, vocab_size=size, min_frequency=min_frequency, score=score)
    assert fast == slow


def test_trainer_vocabulary_invariants():
    words = count_words(LOCAL_LINES)
    alphabet = initial_alphabet(words)
    size = len(SPECIAL_TOKENS) + len(alphabet) + 200
    vocab = train_wordpiece_vocab(LOCAL_LINES, vocab_size=size, min_frequency=1)
    assert vocab[:5] == SPECIAL_TOKENS
    assert len(vocab) == len(set(vocab)) == size
    # every character seen is in the vocabulary; letters in both forms, CJK and punctuation plain only
    for char in {char for word in words for char in word}:
        assert char in vocab
        continuation = "##" + char in vocab
        assert continuation == (not (is_cjk_character(char) or is_punctuation(char)))
    # every merged token is built from two tokens that came before it
    for position in range(len(SPECIAL_TOKENS) + len(alphabet), len(vocab)):
        earlier = set(vocab[:position])
        token = vocab[position]
        assert any(token[:cut] in earlier and "##" + token[cut:] in earlier for cut in range(1, len(token)))
    # deterministic, and independent of the order of the texts
    assert train_wordpiece_vocab(LOCAL_LINES, vocab_size=size, min_frequency=1) == vocab
    shuffled = LOCAL_LINES[:]
    random.Random(0).shuffle(shuffled)
    assert train_wordpiece_vocab(shuffled, vocab_size=size, min_frequency=1) == vocab


def test_trainer_min_frequency_and_size_bound():
    texts = ["hello world hello world hello", "qzxqzj once"]
    vocab = train_wordpiece_vocab(texts, vocab_size=10_000, min_frequency=2)
    assert "hello" in vocab and "world" in vocab
    assert "qzxqzj" not in vocab and "once" not in vocab      # seen once: below min_frequency
    assert {"q", "##z", "##x", "##j"} <= set(vocab)           # ...but its characters are in the alphabet
    assert len(vocab) < 10_000                                # stopped when nothing was left to merge
    # a budget smaller than the alphabet keeps the specials and the most frequent characters
    tiny = train_wordpiece_vocab(texts, vocab_size=9)
    assert tiny == SPECIAL_TOKENS + ["l", "##l", "o", "##o"]


def test_trainer_result_tokenizes_its_corpus_without_unk(tmp_path):
    vocab = train_wordpiece_vocab(LOCAL_LINES, vocab_size=400, min_frequency=2)
    tokenizer = BertTokenizer(write_vocab(vocab, tmp_path / "vocab.txt"))
    tokens = [token for line in LOCAL_LINES for token in tokenizer.tokenize(line)]
    assert "[UNK]" not in tokens
    assert sum(token.startswith("##") for token in tokens) > 50    # a small vocabulary: plenty of pieces


def test_pair_statistics_track_counts():
    stats = PairStatistics([["l", "##o", "##w"], ["l", "##o"]], [3, 2])
    assert stats.pair_counts[("l", "##o")] == 5 and stats.symbol_counts["##o"] == 5
    changed = stats.merge("l", "##o")
    assert stats.words == [["lo", "##w"], ["lo"]]
    assert stats.symbol_counts["lo"] == 5 and stats.symbol_counts["l"] == 0
    assert ("l", "##o") not in stats.pair_counts and stats.pair_counts[("lo", "##w")] == 3
    assert ("lo", "##w") in changed


def test_trainer_bad_arguments():
    with pytest.raises(ValueError, match="vocab_size"):
        train_wordpiece_vocab(["some text"], vocab_size=5)
    with pytest.raises(ValueError, match="score"):
        train_wordpiece_vocab(["some text"], score="bpe")
    with pytest.raises(TypeError, match="list"):
        train_wordpiece_vocab("one string, not a list of lines")


# ---------------------------------------------------------------- the fast trainer

ROOT = Path(__file__).resolve().parents[1]


def embedded_lines(name):
    return (files("bert_annotated") / "data" / name).read_text(encoding="utf-8").splitlines()


def random_unicode_texts(seed, count=60):
    """Texts mixing every kind of character the basic tokenizer treats specially."""
    rng = random.Random(seed)
    pool = (list("abcdefgh ABC  éÉüñ") + list(",.!?'$-") + list("中文字") + list(SPLIT_DISAGREEMENTS)
            + ["\t", "\n", "\r", "\x00", "\x07", "\ufffd", "\u200b", "\u00a0", "\u3000", "e\u0301", "🙂", "Ⅻ"])
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(count)]


def random_ascii_texts(seed, count=60):
    rng = random.Random(seed)
    return ["".join(chr(rng.randrange(128)) for _ in range(rng.randint(0, 40))) for _ in range(count)]


def test_split_disagreements_are_exactly_where_python_and_bert_differ():
    differ = "".join(chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace() != is_whitespace(chr(code)))
    assert differ == SPLIT_DISAGREEMENTS


@pytest.mark.parametrize("seed", range(4))
def test_split_on_whitespace_matches_clean_text(seed):
    from bert_annotated.tokenization import clean_text
    for text in random_unicode_texts(seed) + random_ascii_texts(seed):
        cleaned_chunks = [clean_text(chunk) for chunk in split_on_whitespace(text)]
        assert [chunk for chunk in cleaned_chunks if chunk] == [chunk for chunk in clean_text(text).split(" ") if chunk]


@pytest.mark.parametrize("do_lower_case", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_count_words_fast_matches_count_words(do_lower_case, seed):
    texts = LOCAL_LINES + SAMPLES + random_unicode_texts(seed) + random_ascii_texts(seed)
    expected = count_words(texts, do_lower_case=do_lower_case)
    assert count_words_fast(texts, do_lower_case=do_lower_case, processes=1) == expected
    assert count_words_fast(texts, do_lower_case=do_lower_case, processes=2) == expected
    assert count_words_fast(iter(texts), do_lower_case=do_lower_case) == expected   # any iterable
    with pytest.raises(TypeError, match="list"):
        count_words_fast("one string")


def random_corpus(seed):
    """Words over a tiny alphabet: many ties, repeated letters (overlapping pairs), words that merge to one piece."""
    rng = random.Random(seed)
    letters = "abcab" if seed % 2 else "aabcdxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 9))) for _ in range(40)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(50)]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("min_frequency", [1, 2, 3])
def test_incremental_merging_matches_simple_on_random_corpora(seed, min_frequency):
    word_counts = count_words(random_corpus(seed))
    for vocab_size in [12, 40, 10_000]:  # alphabet cut short, mid-way, and run until nothing is left
        assert learn_vocab_by_frequency(word_counts, vocab_size, min_frequency) == \
            learn_vocab(word_counts, vocab_size, min_frequency, score="frequency")


@pytest.mark.parametrize("name", ["corpus_en.txt", "corpus_zh.txt"])
def test_incremental_merging_matches_simple_on_embedded_corpus(name):
    word_counts = count_words_fast(embedded_lines(name))
    for min_frequency in [1, 2]:
        vocab = learn_vocab_by_frequency(word_counts, 30_000, min_frequency)
        assert vocab == learn_vocab(word_counts, 30_000, min_frequency, score="frequency")
    assert len(vocab) > 1000


@pytest.mark.parametrize("score", ["wordpiece", "frequency"])
def test_train_wordpiece_vocab_equals_the_simple_trainer(score):
    texts = embedded_lines("corpus_en.txt")[:400] + embedded_lines("corpus_zh.txt")[:400]
    expected = train_wordpiece_vocab_simple(texts, vocab_size=1500, min_frequency=2, score=score)
    assert train_wordpiece_vocab(texts, vocab_size=1500, min_frequency=2, score=score) == expected
    assert train_wordpiece_vocab(texts, vocab_size=1500, min_frequency=2, score=score, processes=2) == expected


def test_tokenize_documents_parallel_keeps_order():
    from bert_annotated.tokenization import tokenize_documents_parallel

    documents = [[line] for line in LOCAL_LINES + SAMPLES] + [[], LOCAL_LINES[:3]]
    tokenizer = BasicTokenizer()
    expected = [[tokenizer.tokenize(sentence) for sentence in document] for document in documents]
    assert tokenize_documents_parallel(documents, tokenizer.tokenize, processes=1) == expected
    assert tokenize_documents_parallel(documents, tokenizer.tokenize, processes=2) == expected
    assert tokenize_documents_parallel(iter(documents), tokenizer.tokenize) == expected
    assert tokenize_documents_parallel([], tokenizer.tokenize, processes=2) == []


def test_vocab_benchmark_smoke(tmp_path):
    pytest.importorskip("tokenizers")
    output = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vocab_trainer.py"), "--smoke",
                             "--output", str(output)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads(output.read_text(encoding="utf-8"))
    assert record["runs"] == 1 and len(record["ours_s"]) == len(record["rust_s"]) == 1
    assert record["ratio"] == record["ours_median_s"] / record["rust_median_s"] > 0
    assert record["same_vocabulary_as_simple_trainer"] is True
    assert set(record["stages_median_s"]) == {"read corpus (chapter 07)", "count words (fast)",
                                              "merge (incremental)", "write vocab.txt"}
    assert record["device"]["cores"] >= 1 and record["device"]["cpu"]
    assert record["vocabulary_sizes"]["ours"] == 600 and 0 < record["shared_with_rust"] <= 1


# ---------------------------------------------------------------- vocabulary files


def test_vocab_round_trip_and_line_endings(tmp_path):
    tokens = SPECIAL_TOKENS + ["hello", "##s", "中"]
    path = write_vocab(tokens, tmp_path / "sub" / "vocab.txt")
    assert path.read_text(encoding="utf-8") == "\n".join(tokens) + "\n"
    assert load_vocab(path) == {token: index for index, token in enumerate(tokens)}
    assert load_vocab(tmp_path / "sub") == load_vocab(path)
    windows = tmp_path / "crlf.txt"
    windows.write_bytes(("\r\n".join(tokens) + "\r\n").encode("utf-8"))
    assert load_vocab(windows) == load_vocab(path)
    google_layout = tmp_path / "google.txt"  # specials need not come first
    google_layout.write_text("[PAD]\n[unused0]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n", encoding="utf-8")
    tokenizer = BertTokenizer(google_layout)
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.mask_token_id) == (0, 2, 5)
    assert tokenizer.all_special_ids == [0, 2, 3, 4, 5]


@pytest.mark.parametrize("missing", [["[MASK]"], ["[CLS]", "[SEP]"]])
def test_missing_special_tokens_are_named(tmp_path, missing):
    path = tmp_path / "partial_vocab.txt"
    path.write_text("\n".join(t for t in SPECIAL_TOKENS + ["word"] if t not in missing) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as error:
        BertTokenizer(path)
    message = str(error.value)
    assert "partial_vocab.txt" in message and "train_wordpiece_vocab" in message
    named = re.search(r"is missing the special token\(s\) ([^;]*);", message)
    assert named is not None and named.group(1).split() == missing


def test_missing_and_malformed_vocab_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_vocab.txt"):
        BertTokenizer(tmp_path / "no_such_vocab.txt")
    pickled = tmp_path / "seed_vocab.pkl"
    pickled.write_bytes(pickle.dumps({"<pad>": 0, "<unk>": 1, "<mask>": 4}))  # what the seed's bert-vocab saves
    with pytest.raises(ValueError, match="seed_vocab.pkl.*UTF-8"):
        load_vocab(pickled)
    duplicated = tmp_path / "dup.txt"
    duplicated.write_text("\n".join(SPECIAL_TOKENS + ["a", "b", "a"]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dup.txt, line 8: token 'a' already appears on line 6"):
        load_vocab(duplicated)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n".join(SPECIAL_TOKENS + ["", "b"]) + "\n\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="blank.txt, line 6: empty line"):
        load_vocab(blank)
    with pytest.raises(ValueError, match="twice"):
        write_vocab(["a", "b", "a"], tmp_path / "out.txt")
    with pytest.raises(ValueError, match="whitespace"):
        write_vocab(["a b"], tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


# ---------------------------------------------------------------- BertTokenizer


def test_bert_tokenizer_behaviour(vocab_dir):
    folder, do_lower_case = vocab_dir
    tokenizer = BertTokenizer(folder / "vocab.txt", do_lower_case=do_lower_case)
    assert len(tokenizer) == len(tokenizer.vocab) == len(tokenizer.ids_to_tokens)
    assert [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
            tokenizer.mask_token_id] == tokenizer.all_special_ids == [0, 1, 2, 3, 4]
    assert tokenizer.tokenize("unaffable") == ["un", "##aff", "##able"]
    tokens = tokenizer.tokenize("the man went to [MASK] store")
    assert tokens.count("[MASK]") == 1 and tokens.index("[MASK]") == len(tokenizer.tokenize("the man went to"))
    assert tokenizer.tokenize("中文模型") == ["中", "文", "模", "型"]
    assert tokenizer.tokenize("x" * 101) == ["[UNK]"]
    ids = tokenizer.convert_tokens_to_ids(tokens)
    assert tokenizer.convert_ids_to_tokens(ids) == tokens
    assert tokenizer.convert_tokens_to_ids("[MASK]") == 4 and tokenizer.convert_ids_to_tokens(4) == "[MASK]"
    assert tokenizer.convert_tokens_to_ids(["never-seen-token"]) == [tokenizer.unk_token_id]
    with pytest.raises(ValueError, match="outside this vocabulary"):
        tokenizer.convert_ids_to_tokens([len(tokenizer)])
    sentence = "the tokenizer splits words into pieces" if do_lower_case else "The tokenizer splits words into pieces"
    assert tokenizer.decode(tokenizer.encode(sentence)["input_ids"], skip_special_tokens=True) == sentence
    assert tokenizer.decode(tokenizer.encode(sentence)["input_ids"]).startswith("[CLS] ")
    many_pieces = [word for word in LOCAL_TEXT.split() if len(tokenizer.tokenize(word)) >= 3]
    assert len(many_pieces) >= 20   # the test vocabulary really exercises multi-piece words


def test_encode_layout_truncation_and_padding(vocab_dir):
    folder, do_lower_case = vocab_dir
    tokenizer = BertTokenizer(folder, do_lower_case=do_lower_case)
    a, b = tokenizer.tokenize(PAIRS[0][0]), tokenizer.tokenize(PAIRS[0][1])
    encoded = tokenizer.encode(*PAIRS[0])
    assert encoded["input_ids"] == tokenizer.convert_tokens_to_ids(["[CLS]"] + a + ["[SEP]"] + b + ["[SEP]"])
    assert encoded["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert encoded["attention_mask"] == [1] * (len(a) + len(b) + 3)
    single = tokenizer.encode(PAIRS[0][0], max_length=4)
    assert single["input_ids"] == tokenizer.convert_tokens_to_ids(["[CLS]"] + a[:2] + ["[SEP]"])
    unpadded = tokenizer.encode("fox", "dog")
    padded = tokenizer.encode("fox", "dog", max_length=30, pad_to_max_length=True)
    real = len(unpadded["input_ids"])
    assert padded["input_ids"] == unpadded["input_ids"] + [tokenizer.pad_token_id] * (30 - real)
    assert padded["token_type_ids"] == unpadded["token_type_ids"] + [0] * (30 - real)
    assert padded["attention_mask"] == [1] * real + [0] * (30 - real)
    with pytest.raises(ValueError, match="max_length"):
        tokenizer.encode("fox", "dog", max_length=3)
    with pytest.raises(ValueError, match="max_length"):
        tokenizer.encode("fox", pad_to_max_length=True)


def test_truncate_longest_first():
    a, b = list("abcdefg"), list("xyz")
    truncate_longest_first(a, b, 6)
    assert a == list("abc") and b == list("xyz")
    a, b = list("abcd"), list("wxyz")
    truncate_longest_first(a, b, 5)         # ties are taken from B, as Google's _truncate_seq_pair does
    assert a == list("abc") and b == list("wx")
    a, b = list("ab"), []
    truncate_longest_first(a, b, 1)
    assert a == ["a"]


# ---------------------------------------------------------------- parity with Hugging Face


def hf_tokenizers(folder, do_lower_case):
    transformers = pytest.importorskip("transformers")
    return {
        "BertTokenizer": transformers.BertTokenizer.from_pretrained(str(folder), do_lower_case=do_lower_case),
        "BertTokenizerLegacy": transformers.BertTokenizerLegacy.from_pretrained(str(folder), do_lower_case=do_lower_case),
    }


def test_tokens_match_hugging_face(vocab_dir):
    folder, do_lower_case = vocab_dir
    ours = BertTokenizer(folder / "vocab.txt", do_lower_case=do_lower_case)
    for name, theirs in hf_tokenizers(folder, do_lower_case).items():
        for text in samples_for(do_lower_case):
            assert ours.tokenize(text) == theirs.tokenize(text), (name, text)
        # the samples exercise what they should
        assert any(len(ours.tokenize(word)) > 1 for word in SAMPLES[1].split())


def test_encode_matches_hugging_face(vocab_dir):
    folder, do_lower_case = vocab_dir
    ours = BertTokenizer(folder / "vocab.txt", do_lower_case=do_lower_case)
    keys = ["input_ids", "token_type_ids", "attention_mask"]
    for name, theirs in hf_tokenizers(folder, do_lower_case).items():
        def hf(*texts, **options):
            result = theirs(*texts, return_token_type_ids=True, return_attention_mask=True, **options)
            return {key: list(result[key]) for key in keys}

        for text_a, text_b in PAIRS:
            assert ours.encode(text_a, text_b) == hf(text_a, text_b), (name, text_a, text_b)
            assert ours.encode(text_a) == hf(text_a), (name, text_a)
            length = len(ours.encode(text_a, text_b)["input_ids"])
            # even budgets (max_length - 3 special tokens): there Hugging Face's two tokenizers agree with
            # each other and with Google; odd budgets are checked against the Python reference below
            for max_length in range(length - 9, length + 2):
                if max_length > 3 and (max_length - 3) % 2 == 0:
                    options = dict(max_length=max_length, truncation="longest_first")
                    assert ours.encode(text_a, text_b, max_length=max_length) == hf(text_a, text_b, **options), (name, max_length)
                    padded = ours.encode(text_a, text_b, max_length=max_length + 4, pad_to_max_length=True)
                    assert padded == hf(text_a, text_b, padding="max_length", max_length=max_length + 4, truncation="longest_first")
            single = ours.encode(text_a, max_length=5)
            assert single == hf(text_a, max_length=5, truncation=True)
        if name == "BertTokenizer":  # an empty text_b means a single sentence, as in Google's run_classifier.py
            assert ours.encode("unaffable tokenization", "") == ours.encode("unaffable tokenization")
            assert ours.encode("unaffable tokenization", "") == hf("unaffable tokenization", "")


def test_odd_budget_truncation_matches_the_python_reference(vocab_dir):
    folder, do_lower_case = vocab_dir
    ours = BertTokenizer(folder / "vocab.txt", do_lower_case=do_lower_case)
    legacy = hf_tokenizers(folder, do_lower_case)["BertTokenizerLegacy"]
    text_a, text_b = "the quick brown fox jumps over", "the lazy dog does not mind at all"
    for max_length in range(4, 25):
        theirs = legacy(text_a, text_b, max_length=max_length, truncation="longest_first", return_token_type_ids=True)
        mine = ours.encode(text_a, text_b, max_length=max_length)
        assert mine["input_ids"] == theirs["input_ids"] and mine["token_type_ids"] == theirs["token_type_ids"], max_length
