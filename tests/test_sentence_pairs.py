"""Tests for chapter 06, next-sentence prediction (bert_annotated.sentence_pairs)."""
import random

import pytest
import torch
from torch import nn

from bert_annotated.corpora import read_pair_corpus
from bert_annotated.model import BertNSPHead, next_sentence_loss
from bert_annotated.sentence_pairs import (
    IS_NEXT,
    NOT_NEXT,
    NSPExample,
    create_nsp_examples,
    create_nsp_examples_from_pairs,
    truncate_seq_pair,
)


# ----------------------------------------------------------------------------- helpers
def numbered_corpus(num_documents, sentences_per_document, min_tokens, max_tokens, seed=0):
    """Documents whose tokens name their place: 'd3s7t2' is token 2 of sentence 7 of document 3."""
    rng = random.Random(seed)
    return [
        [[f"d{d}s{s}t{t}" for t in range(rng.randint(min_tokens, max_tokens))] for s in range(sentences_per_document)]
        for d in range(num_documents)
    ]


def source_tokens(documents, document_index, sentence_range):
    start, end = sentence_range
    return [token for sentence in documents[document_index][start:end] for token in sentence]


def is_contiguous_slice(part, whole):
    return any(whole[i : i + len(part)] == part for i in range(len(whole) - len(part) + 1))


def document_of(token):
    return int(token[1 : token.index("s")])


class WhitespaceTokenizer:
    """A minimal tokenizer for the pair-format tests; records every text it was asked to tokenize."""

    def __init__(self):
        self.calls = []

    def tokenize(self, text):
        self.calls.append(text)
        return text.lower().split()


LONG_MAX_SEQ_LENGTH = 48


@pytest.fixture(scope="module")
def long_documents():
    # long documents of short sentences: chunks almost always hold many sentences
    return numbered_corpus(num_documents=300, sentences_per_document=120, min_tokens=3, max_tokens=8)


@pytest.fixture(scope="module")
def long_document_examples(long_documents):
    return create_nsp_examples(long_documents, max_seq_length=LONG_MAX_SEQ_LENGTH, short_seq_prob=0.0, rng=1234)


# ----------------------------------------------------------------------------- document-level NSP
def test_not_next_rate_is_one_half(long_document_examples):
    examples = long_document_examples
    rate = sum(example.is_random_next for example in examples) / len(examples)
    assert len(examples) > 5000
    assert abs(rate - 0.5) <= 0.02, f"NotNext rate {rate:.3f} over {len(examples)} examples"


def test_single_sentence_chunks_are_always_not_next():
    # every sentence is longer than the budget, so every chunk is one sentence: nothing can follow A
    documents = numbered_corpus(num_documents=5, sentences_per_document=10, min_tokens=40, max_tokens=50)
    examples = create_nsp_examples(documents, max_seq_length=32, short_seq_prob=0.0, rng=0)
    assert examples and all(example.is_random_next for example in examples)


def test_labels_follow_google_convention():
    assert (IS_NEXT, NOT_NEXT) == (0, 1)
    assert NSPExample(["[CLS]", "a", "[SEP]", "b", "[SEP]"], [0, 0, 0, 1, 1], False).label == 0
    assert NSPExample(["[CLS]", "a", "[SEP]", "b", "[SEP]"], [0, 0, 0, 1, 1], True).label == 1


def test_is_next_b_immediately_follows_a(long_documents, long_document_examples):
    is_next = [example for example in long_document_examples if not example.is_random_next]
    assert len(is_next) > 2000
    max_num_tokens = LONG_MAX_SEQ_LENGTH - 3
    untruncated = 0
    for example in is_next:
        # provenance: same document, B's first sentence is the one right after A's last
        assert example.b_document == example.a_document
        a_start, a_end = example.a_sentence_range
        b_start, b_end = example.b_sentence_range
        assert a_start < a_end == b_start < b_end
        # content: every token comes from that document, in one unbroken stretch of each range
        assert {document_of(token) for token in example.tokens_a + example.tokens_b} == {example.a_document}
        a_source = source_tokens(long_documents, example.a_document, example.a_sentence_range)
        b_source = source_tokens(long_documents, example.b_document, example.b_sentence_range)
        assert is_contiguous_slice(example.tokens_a, a_source)
        assert is_contiguous_slice(example.tokens_b, b_source)
        if len(example.tokens_a) + len(example.tokens_b) < max_num_tokens or (
            example.tokens_a == a_source and example.tokens_b == b_source
        ):
            untruncated += 1
            # nothing was cut: A then B is exactly the document's text, with no gap and no overlap
            assert example.tokens_a + example.tokens_b == a_source + b_source
    assert untruncated > 100


def test_not_next_b_never_comes_from_the_same_document():
    # two or three documents are where Google's ten-retry draw can fall back on the same document
    for num_documents in (2, 3):
        documents = numbered_corpus(num_documents, sentences_per_document=30, min_tokens=2, max_tokens=6)
        drawn = set()
        for seed in range(150):
            for example in create_nsp_examples(documents, max_seq_length=24, short_seq_prob=0.3, rng=seed):
                if example.is_random_next:
                    drawn.add((example.a_document, example.b_document))
                    assert example.b_document != example.a_document
                    assert {document_of(token) for token in example.tokens_b} == {example.b_document}
                    assert {document_of(token) for token in example.tokens_a} == {example.a_document}
        # every other document is used, and only those
        assert drawn == {(a, b) for a in range(num_documents) for b in range(num_documents) if a != b}


def test_empty_documents_are_skipped_but_keep_their_index():
    documents = numbered_corpus(num_documents=4, sentences_per_document=12, min_tokens=2, max_tokens=5)
    documents[1] = []
    examples = create_nsp_examples(documents, max_seq_length=20, rng=7)
    assert {example.a_document for example in examples} == {0, 2, 3}
    assert 1 not in {example.b_document for example in examples}
    for example in examples:
        assert document_of(example.tokens_a[0]) == example.a_document
        assert document_of(example.tokens_b[0]) == example.b_document


@pytest.mark.parametrize("max_seq_length", [5, 6, 9, 16, 64, 128])
@pytest.mark.parametrize("short_seq_prob", [0.1, 0.6])
def test_length_and_layout(max_seq_length, short_seq_prob):
    documents = numbered_corpus(num_documents=20, sentences_per_document=25, min_tokens=1, max_tokens=30, seed=3)
    examples = create_nsp_examples(documents, max_seq_length=max_seq_length, short_seq_prob=short_seq_prob, rng=11)
    assert examples
    for example in examples:
        tokens, segment_ids = example.tokens, example.segment_ids
        assert len(tokens) <= max_seq_length
        assert len(segment_ids) == len(tokens)
        separators = [i for i, token in enumerate(tokens) if token == "[SEP]"]
        assert tokens[0] == "[CLS]" and "[CLS]" not in tokens[1:]
        assert len(separators) == 2 and separators[1] == len(tokens) - 1
        num_a = separators[0] - 1
        num_b = len(tokens) - separators[0] - 2
        assert num_a >= 1 and num_b >= 1
        # 0 for [CLS] A [SEP], 1 for B [SEP]
        assert segment_ids == [0] * (num_a + 2) + [1] * (num_b + 1)
        assert example.tokens_a == tokens[1 : 1 + num_a] and example.tokens_b == tokens[num_a + 2 : -1]
        assert example.label == int(example.is_random_next)


def test_every_sentence_is_used_exactly_once_per_pass():
    # unused sentences of a NotNext chunk are put back, so A ranges and IsNext B ranges tile each document
    documents = numbered_corpus(num_documents=40, sentences_per_document=50, min_tokens=2, max_tokens=12, seed=5)
    examples = create_nsp_examples(documents, max_seq_length=48, short_seq_prob=0.1, rng=3)
    used = {}
    for example in examples:
        ranges = [(example.a_document, example.a_sentence_range)]
        if not example.is_random_next:
            ranges.append((example.b_document, example.b_sentence_range))
        for document_index, (start, end) in ranges:
            for sentence in range(start, end):
                used[document_index, sentence] = used.get((document_index, sentence), 0) + 1
    assert set(used) == {(d, s) for d in range(40) for s in range(50)}
    assert set(used.values()) == {1}


def test_a_takes_a_random_number_of_sentences(long_document_examples):
    is_next = [example for example in long_document_examples if not example.is_random_next]
    shares = [
        (example.a_sentence_range[1] - example.a_sentence_range[0], example.b_sentence_range[1] - example.b_sentence_range[0])
        for example in is_next
    ]
    assert any(a == 1 for a, b in shares) and any(b == 1 for a, b in shares)
    assert any(a > 1 and b > 1 for a, b in shares)


def test_short_sequence_probability():
    # one-token sentences: a chunk reaches its target exactly, so the target is visible in the lengths
    documents = [[[f"d{d}s{s}t0"] for s in range(2000)] for d in range(100)]
    max_num_tokens = 32
    examples = create_nsp_examples(documents, max_seq_length=max_num_tokens + 3, short_seq_prob=0.1, rng=0)
    assert len(examples) > 6000
    short_rate = sum(example.target_length < max_num_tokens for example in examples) / len(examples)
    expected = 0.1 * (1 - 1 / (max_num_tokens - 1))  # randint(2, 32) lands on 32 itself 1 time in 31
    assert abs(short_rate - expected) <= 0.01, f"short rate {short_rate:.4f}, expected {expected:.4f}"
    for example in examples:
        assert 2 <= example.target_length <= max_num_tokens
        pair_length = len(example.tokens_a) + len(example.tokens_b)
        assert pair_length <= example.target_length
        end_of_document = example.b_sentence_range[1] == 2000
        if not example.is_random_next and not end_of_document:
            assert pair_length == example.target_length
    # what a reader can see without the target_length field: the share of short examples
    observed = sum(len(example.tokens) - 3 < max_num_tokens for example in examples) / len(examples)
    assert short_rate <= observed <= short_rate + 0.03

    never_short = create_nsp_examples(documents[:10], max_seq_length=35, short_seq_prob=0.0, rng=1)
    assert all(example.target_length == max_num_tokens for example in never_short)
    always_short = create_nsp_examples(documents[:10], max_seq_length=35, short_seq_prob=1.0, rng=1)
    mean_target = sum(example.target_length for example in always_short) / len(always_short)
    assert 14 < mean_target < 20  # uniform on [2, 32] has mean 17


def test_same_seed_same_examples():
    documents = numbered_corpus(num_documents=10, sentences_per_document=20, min_tokens=2, max_tokens=9)
    first = create_nsp_examples(documents, max_seq_length=32, rng=42)
    assert first == create_nsp_examples(documents, max_seq_length=32, rng=random.Random(42))
    assert first != create_nsp_examples(documents, max_seq_length=32, rng=43)


@pytest.mark.parametrize("documents, count", [([], 0), ([[["a", "b"]]], 1), ([[["a"], ["b"]], [], []], 1)])
def test_fewer_than_two_documents_is_an_error(documents, count):
    with pytest.raises(ValueError) as error:
        create_nsp_examples(documents, max_seq_length=16)
    assert str(error.value) == (
        f"need at least 2 documents for NotNext, got {count}; add blank lines between documents"
    )


def test_bad_documents_are_refused():
    with pytest.raises(TypeError, match="tokenize each sentence first"):
        create_nsp_examples([["a sentence"], ["another"]], max_seq_length=16)
    with pytest.raises(ValueError, match="document 1, sentence 1 has no tokens"):
        create_nsp_examples([[["a"]], [["b"], []]], max_seq_length=16)
    with pytest.raises(ValueError, match="max_seq_length"):
        create_nsp_examples([[["a"]], [["b"]]], max_seq_length=4)
    with pytest.raises(ValueError, match="short_seq_prob"):
        create_nsp_examples([[["a"]], [["b"]]], short_seq_prob=1.5)


# ----------------------------------------------------------------------------- truncate_seq_pair
def test_truncate_seq_pair_trims_both_ends_and_respects_the_limit():
    rng = random.Random(0)
    b_original = [f"b{i}" for i in range(100)]
    for _ in range(200):
        tokens_a, tokens_b = ["a0", "a1", "a2"], list(b_original)
        truncate_seq_pair(tokens_a, tokens_b, 13, rng)
        assert len(tokens_a) + len(tokens_b) == 13
        assert tokens_a == ["a0", "a1", "a2"]  # B stays longer until the very end
        assert is_contiguous_slice(tokens_b, b_original)
        # the end is chosen at every step, not once per call: 90 trims always hit both ends
        assert tokens_b[0] != "b0" and tokens_b[-1] != "b99"


def test_truncate_seq_pair_trims_the_longer_side_from_either_end():
    rng = random.Random(1)
    a_original = [f"a{i}" for i in range(12)]
    first_kept, last_kept = set(), set()
    for _ in range(500):
        tokens_a, tokens_b = list(a_original), ["b0", "b1", "b2", "b3"]
        truncate_seq_pair(tokens_a, tokens_b, 10, rng)
        # A (12) is trimmed to 6, then both are trimmed in turns (longer first, B on a tie): 5 + 5 = 10
        assert (len(tokens_a), len(tokens_b)) == (6, 4)
        assert is_contiguous_slice(tokens_a, a_original)
        first_kept.add(tokens_a[0])
        last_kept.add(tokens_a[-1])
    assert "a0" in first_kept and len(first_kept) > 3  # sometimes the front survives, often not
    assert "a11" in last_kept and len(last_kept) > 3

    tokens_a, tokens_b = ["a"] * 5, ["b"] * 5
    truncate_seq_pair(tokens_a, tokens_b, 9, rng)
    assert (len(tokens_a), len(tokens_b)) == (5, 4)  # a tie trims B


def test_truncate_seq_pair_leaves_short_pairs_alone_and_checks_its_limit():
    tokens_a, tokens_b = ["a", "b"], ["c"]
    truncate_seq_pair(tokens_a, tokens_b, 3, random.Random(0))
    assert (tokens_a, tokens_b) == (["a", "b"], ["c"])
    with pytest.raises(ValueError, match="at least 2"):
        truncate_seq_pair(["a"], ["b"], 1, random.Random(0))
    with pytest.raises(ValueError, match="at least one token"):
        truncate_seq_pair([], ["b"], 5, random.Random(0))


# ----------------------------------------------------------------------------- pair-per-line format
def write_bytes(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_read_pair_corpus_names_file_and_line_of_a_line_without_tab(tmp_path):
    path = write_bytes(tmp_path, "pairs.txt", b"one a\tone b\n\ntwo a\ttwo b\nno tab here\nthree a\tthree b\n")
    with pytest.raises(ValueError) as error:
        read_pair_corpus(path)
    message = str(error.value)
    assert "pairs.txt" in message and "line 4" in message and "no tab" in message


def test_read_pair_corpus_refuses_two_tabs_and_empty_sides(tmp_path):
    with pytest.raises(ValueError, match=r"line 2: .*found 2 tabs"):
        read_pair_corpus(write_bytes(tmp_path, "a.txt", b"a\tb\nc\td\te\n"))
    with pytest.raises(ValueError, match="line 1: sentence B is empty"):
        read_pair_corpus(write_bytes(tmp_path, "b.txt", b"a\t  \n"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        read_pair_corpus(write_bytes(tmp_path, "c.txt", b"caf\xe9\tbar\n"))


def test_read_pair_corpus_tolerates_bom_crlf_and_blank_lines(tmp_path):
    data = "\ufeffThe cat sat.\tIt purred.\r\n\r\n  \r\nRain fell.\tThe river rose.\r\nLast a\tLast b."
    path = write_bytes(tmp_path, "windows.txt", data.encode("utf-8"))
    assert read_pair_corpus(path) == [
        ("The cat sat.", "It purred."),
        ("Rain fell.", "The river rose."),
        ("Last a", "Last b."),  # no newline at the end, and no character lost
    ]


def test_pairs_not_next_b_never_from_the_same_line_nor_equal_to_the_true_b():
    pairs = [(f"sentence a number {i}", f"sentence b number {i % 7}") for i in range(20)]  # duplicated Bs
    tokenizer = WhitespaceTokenizer()
    examples = []
    for seed in range(300):
        examples += create_nsp_examples_from_pairs(pairs, tokenizer, max_seq_length=32, rng=seed)
    rate = sum(example.is_random_next for example in examples) / len(examples)
    assert abs(rate - 0.5) <= 0.02
    for example in examples:
        true_b = pairs[example.a_document][1].split()
        assert example.tokens_a == pairs[example.a_document][0].split()
        if example.is_random_next:
            assert example.b_document != example.a_document
            assert example.tokens_b != true_b
            assert example.tokens_b == pairs[example.b_document][1].split()
        else:
            assert example.b_document == example.a_document and example.tokens_b == true_b
    # negatives are drawn from all the other lines, the first and the last included
    for line in (0, 19):
        drawn = {example.b_document for example in examples if example.is_random_next and example.a_document == line}
        assert drawn == {other for other in range(20) if other % 7 != line % 7}


def test_pairs_tokenize_a_and_b_separately():
    pairs = [("the cat sat on the mat.", "it purred."), ("rain fell.", "the river rose.")]
    tokenizer = WhitespaceTokenizer()
    examples = create_nsp_examples_from_pairs(pairs, tokenizer, max_seq_length=32, rng=0)
    assert all("\t" not in text for text in tokenizer.calls)
    assert set(tokenizer.calls) == {text for pair in pairs for text in pair}
    for example in examples:
        assert example.tokens_a == pairs[example.a_document][0].split()  # "mat." stays "mat.", never "mat.it"
        assert "mat.it" not in example.tokens
        assert example.segment_ids == [0] * (len(example.tokens_a) + 2) + [1] * (len(example.tokens_b) + 1)


def test_pairs_are_truncated_to_fit():
    pairs = [(" ".join(f"a{i}x{j}" for j in range(40)), " ".join(f"b{i}x{j}" for j in range(40))) for i in range(5)]
    examples = create_nsp_examples_from_pairs(pairs, WhitespaceTokenizer(), max_seq_length=16, rng=0)
    assert all(len(example.tokens) == 16 for example in examples)


def test_pairs_need_two_lines_and_two_different_bs():
    with pytest.raises(ValueError, match="need at least 2 pairs for NotNext, got 1"):
        create_nsp_examples_from_pairs([("a", "b")], WhitespaceTokenizer(), 16, 0)
    with pytest.raises(ValueError, match="same sentence B"):
        create_nsp_examples_from_pairs([("a", "same"), ("c", "SAME")], WhitespaceTokenizer(), 16, 0)
    with pytest.raises(ValueError, match="pair 1: sentence A has no tokens"):
        create_nsp_examples_from_pairs([("a", "b"), ("   ", "d")], WhitespaceTokenizer(), 16, 0)


# ----------------------------------------------------------------------------- head and loss
def test_nsp_head_shape():
    head = BertNSPHead(48)
    assert isinstance(head.seq_relationship, nn.Linear)
    assert (head.seq_relationship.in_features, head.seq_relationship.out_features) == (48, 2)
    assert head(torch.randn(5, 48)).shape == (5, 2)


def test_our_loss_counts_not_next_examples_the_seed_loss_ignores_them():
    torch.manual_seed(0)
    logits = torch.randn(8, 2, requires_grad=True)
    labels = torch.tensor([0, 1, 1, 0, 1, 1, 0, 1])  # ours: 0 = IsNext, 1 = NotNext
    per_example = -torch.log_softmax(logits, dim=-1)[torch.arange(8), labels]

    loss = next_sentence_loss(logits, labels)
    torch.testing.assert_close(loss, per_example.mean())  # every example counts
    gradient = torch.autograd.grad(loss, logits)[0]
    assert torch.all(gradient.abs().sum(dim=1) > 0)

    # the seed: one NLLLoss(ignore_index=0) for MLM and NSP, and labels 1 = IsNext, 0 = NotNext
    seed_labels = 1 - labels
    seed_log_probs = torch.log_softmax(logits, dim=-1)[:, [1, 0]]  # its column c is its label c
    seed_loss = nn.NLLLoss(ignore_index=0)(seed_log_probs, seed_labels)
    is_next = labels == 0
    torch.testing.assert_close(seed_loss, per_example[is_next].mean())  # NotNext examples dropped
    seed_gradient = torch.autograd.grad(seed_loss, logits)[0]
    assert torch.all(seed_gradient[~is_next] == 0)
    assert not torch.isclose(seed_loss, loss)


def test_loss_refuses_bad_labels_and_shapes():
    logits = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="0 \\(IsNext\\) or 1 \\(NotNext\\)"):
        next_sentence_loss(logits, torch.tensor([0, -100, 1]))
    with pytest.raises(ValueError, match="0 \\(IsNext\\) or 1 \\(NotNext\\)"):
        next_sentence_loss(logits, torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="shape \\(batch, 2\\)"):
        next_sentence_loss(torch.zeros(3, 3), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="labels must have shape"):
        next_sentence_loss(logits, torch.tensor([0, 1]))


def test_head_and_loss_match_transformers():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=64, hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48
    )
    reference = transformers.BertForNextSentencePrediction(config).eval()
    input_ids = torch.randint(5, 64, (4, 10))
    token_type_ids = torch.tensor([[0] * 4 + [1] * 6] * 4)
    labels = torch.tensor([1, 0, 1, 0])
    head = BertNSPHead(24)
    head.load_state_dict(reference.cls.state_dict())
    with torch.no_grad():
        expected = reference(input_ids=input_ids, token_type_ids=token_type_ids, labels=labels)
        pooled = reference.bert(input_ids=input_ids, token_type_ids=token_type_ids).pooler_output
        logits = head(pooled)
    torch.testing.assert_close(logits, expected.logits)
    torch.testing.assert_close(next_sentence_loss(logits, labels), expected.loss)
