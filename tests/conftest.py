"""Shared fixtures for the unit tests."""
import pytest
import torch

from bert_annotated.model import BertConfig

# The unit tests' one model size: a real BERT (two layers, four heads, a hidden size they divide), small enough
# that a forward pass takes milliseconds. 37 is deliberately not a multiple of anything.
TINY_CONFIG = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                   max_position_embeddings=64)


@pytest.fixture(scope="session")
def tiny_config():
    """Makes the tiny BertConfig: `tiny_config()`, or with some fields changed, `tiny_config(vocab_size=16)`;
    `dropout=0.0` sets both dropout probabilities (a deterministic model)."""
    def make(dropout: float | None = None, **changes) -> BertConfig:
        if dropout is not None:
            changes = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout, **changes}
        return BertConfig(**{**TINY_CONFIG, **changes})

    return make


@pytest.fixture(autouse=True)
def _one_thread():
    """Each test runs torch on one thread: the suite runs two workers on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
