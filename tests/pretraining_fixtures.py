"""Fixtures shared by the tests of chapters 07 and 08 and appendix A: the book's corpus, a vocabulary, examples."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bert_annotated.corpora import Corpus, build_vocab, embedded_corpus_paths, read_corpus
from bert_annotated.masking import MaskedLMMasker
from bert_annotated.pretraining_data import PretrainingCollator, PretrainingDataset, create_pretraining_examples
from bert_annotated.tokenization import BertTokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return read_corpus(embedded_corpus_paths("both"))


@pytest.fixture(scope="module")
def tokenizer(corpus, tmp_path_factory) -> BertTokenizer:
    vocab_file = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    build_vocab(corpus, vocab_file, vocab_size=2000)
    return BertTokenizer(str(vocab_file))


@pytest.fixture(scope="module")
def dataset(corpus, tokenizer) -> PretrainingDataset:
    return PretrainingDataset(create_pretraining_examples(corpus, tokenizer, seq_len=48, seed=0), tokenizer)


@pytest.fixture(scope="module")
def collate(tokenizer) -> PretrainingCollator:
    masker = MaskedLMMasker.from_tokenizer(tokenizer, max_predictions_per_seq=8)
    return PretrainingCollator(masker, tokenizer.pad_token_id, seed=0)
