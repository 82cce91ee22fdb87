"""Unit tests for chapters 02 (embeddings) and 03 (attention), run against the exported package."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bert_annotated.attention import MultiHeadSelfAttention, merge_heads, scaled_dot_product_attention, split_heads
from bert_annotated.embeddings import BertEmbeddings


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_qkv(batch=2, heads=3, seq_q=5, seq_k=5, head_dim=8):
    return (torch.randn(batch, heads, seq_q, head_dim),
            torch.randn(batch, heads, seq_k, head_dim),
            torch.randn(batch, heads, seq_k, head_dim))


# ------------------------------------------------------------------ scaled_dot_product_attention
def test_sdpa_matches_torch_without_mask():
    query, key, value = random_qkv(seq_q=4, seq_k=6)
    output, probabilities = scaled_dot_product_attention(query, key, value)
    assert output.shape == (2, 3, 4, 8)
    assert probabilities.shape == (2, 3, 4, 6)
    torch.testing.assert_close(output, F.scaled_dot_product_attention(query, key, value), atol=1e-6, rtol=0)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2, 3, 4))


def test_sdpa_matches_torch_with_padding_mask():
    query, key, value = random_qkv()
    key_mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]).bool()[:, None, None, :]
    output, probabilities = scaled_dot_product_attention(query, key, value, key_mask)
    reference = F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask)
    torch.testing.assert_close(output, reference, atol=1e-6, rtol=0)
    assert (probabilities[0, :, :, 2:] == 0).all()
    # the mask actually did something
    unmasked, _ = scaled_dot_product_attention(query, key, value)
    assert not torch.allclose(unmasked[0], output[0], atol=1e-3)


def test_sdpa_matches_torch_with_general_mask_and_fully_masked_rows():
    query, key, value = random_qkv()
    mask = torch.rand(2, 3, 5, 5) > 0.4
    mask[1, 2, 3] = False  # a query that may attend to nothing
    output, probabilities = scaled_dot_product_attention(query, key, value, mask)
    reference = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    assert torch.isfinite(output).all()
    torch.testing.assert_close(output, reference, atol=1e-6, rtol=0)
    assert (probabilities[1, 2, 3] == 0).all()


def test_sdpa_explicit_formula():
    query, key, value = random_qkv(batch=1, heads=1)
    output, probabilities = scaled_dot_product_attention(query, key, value)
    expected_probabilities = torch.softmax(query @ key.transpose(-2, -1) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(probabilities, expected_probabilities)
    torch.testing.assert_close(output, expected_probabilities @ value)


def test_sdpa_real_tokens_ignore_padding_contents():
    query, key, value = random_qkv()
    key_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()[:, None, None, :]
    noisy_key, noisy_value = key.clone(), value.clone()
    noisy_key[0, :, 3:] = 1000 * torch.randn(3, 2, 8)
    noisy_value[0, :, 3:] = 1000 * torch.randn(3, 2, 8)
    clean, _ = scaled_dot_product_attention(query, key, value, key_mask)
    noisy, _ = scaled_dot_product_attention(query, noisy_key, noisy_value, key_mask)
    torch.testing.assert_close(clean[0, :, :3], noisy[0, :, :3], atol=1e-6, rtol=0)
    torch.testing.assert_close(clean[1], noisy[1])


def test_sdpa_rejects_integer_mask():
    query, key, value = random_qkv()
    with pytest.raises(ValueError, match="bool"):
        scaled_dot_product_attention(query, key, value, torch.ones(2, 1, 1, 5, dtype=torch.long))


def test_sdpa_applies_dropout_module():
    query, key, value = random_qkv()
    _, plain = scaled_dot_product_attention(query, key, value)
    dropout = nn.Dropout(0.5).train()
    _, dropped = scaled_dot_product_attention(query, key, value, dropout=dropout)
    kept = dropped != 0
    assert (~kept).any() and kept.any()
    torch.testing.assert_close(dropped[kept], plain[kept] * 2)


# ------------------------------------------------------------------ heads
def test_split_and_merge_heads_round_trip():
    hidden = torch.randn(2, 7, 12)
    heads = split_heads(hidden, 3)
    assert heads.shape == (2, 3, 7, 4)
    torch.testing.assert_close(heads[:, 2], hidden[:, :, 8:12])
    assert torch.equal(merge_heads(heads), hidden)


# ------------------------------------------------------------------ MultiHeadSelfAttention
@pytest.mark.parametrize("hidden_size, heads", [(30, 4), (64, 5), (7, 2)])
def test_attention_rejects_indivisible_hidden_size(hidden_size, heads):
    with pytest.raises(ValueError) as error:
        MultiHeadSelfAttention(hidden_size, heads)
    message = str(error.value)
    assert str(hidden_size) in message and str(heads) in message and "divisible" in message


def test_attention_submodules_and_shapes():
    attention = MultiHeadSelfAttention(32, 4, attention_dropout_prob=0.0)
    for name in ("query", "key", "value", "output"):
        layer = getattr(attention, name)
        assert isinstance(layer, nn.Linear) and layer.in_features == layer.out_features == 32
    assert sum(p.numel() for p in attention.parameters()) == 4 * (32 * 32 + 32)
    output, probabilities = attention(torch.randn(3, 9, 32))
    assert output.shape == (3, 9, 32) and probabilities is None
    output, probabilities = attention(torch.randn(3, 9, 32), output_attentions=True)
    assert probabilities.shape == (3, 4, 9, 9)


@pytest.mark.parametrize("use_mask", [False, True])
def test_attention_fused_and_explicit_paths_agree(use_mask):
    attention = MultiHeadSelfAttention(32, 4).eval()
    hidden = torch.randn(2, 6, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]]) if use_mask else None
    with torch.no_grad():
        fused, none = attention(hidden, mask)
        explicit, probabilities = attention(hidden, mask, output_attentions=True)
    assert none is None
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=0)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2, 4, 6))
    if use_mask:
        assert (probabilities[0, :, :, 3:] == 0).all()


def test_attention_equals_per_head_computation():
    attention = MultiHeadSelfAttention(24, 3).eval()
    hidden = torch.randn(2, 5, 24)
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        output, _ = attention(hidden, mask)
        pieces = []
        for head in range(3):
            rows = slice(8 * head, 8 * (head + 1))
            q = F.linear(hidden, attention.query.weight[rows], attention.query.bias[rows])
            k = F.linear(hidden, attention.key.weight[rows], attention.key.bias[rows])
            v = F.linear(hidden, attention.value.weight[rows], attention.value.bias[rows])
            scores = q @ k.transpose(-2, -1) / math.sqrt(8)
            scores = scores.masked_fill(~mask.bool()[:, None, :], float("-inf"))
            pieces.append(scores.softmax(-1) @ v)
        expected = attention.output(torch.cat(pieces, dim=-1))
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("output_attentions", [False, True])
def test_attention_real_tokens_ignore_padding_contents(output_attentions):
    attention = MultiHeadSelfAttention(32, 4).eval()
    hidden = torch.randn(2, 6, 32)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    garbage = hidden.clone()
    garbage[0, 4:] = 100 * torch.randn(2, 32)
    with torch.no_grad():
        clean, _ = attention(hidden, mask, output_attentions=output_attentions)
        noisy, _ = attention(garbage, mask, output_attentions=output_attentions)
        unmasked_clean, _ = attention(hidden, output_attentions=output_attentions)
        unmasked_noisy, _ = attention(garbage, output_attentions=output_attentions)
    torch.testing.assert_close(clean[0, :4], noisy[0, :4], atol=1e-5, rtol=0)
    torch.testing.assert_close(clean[1], noisy[1])
    assert not torch.allclose(unmasked_clean[0, :4], unmasked_noisy[0, :4], atol=1e-2)


def test_attention_rejects_mask_of_wrong_shape():
    attention = MultiHeadSelfAttention(16, 2)
    with pytest.raises(ValueError, match="attention_mask"):
        attention(torch.randn(2, 5, 16), torch.ones(2, 4))


@pytest.mark.parametrize("output_attentions", [False, True])
def test_attention_dropout_only_in_training(output_attentions):
    attention = MultiHeadSelfAttention(32, 4, attention_dropout_prob=0.5)
    hidden = torch.randn(2, 6, 32)
    with torch.no_grad():
        attention.train()
        first, _ = attention(hidden, output_attentions=output_attentions)
        second, _ = attention(hidden, output_attentions=output_attentions)
        attention.eval()
        third, _ = attention(hidden, output_attentions=output_attentions)
        fourth, _ = attention(hidden, output_attentions=output_attentions)
    assert not torch.allclose(first, second)
    assert torch.equal(third, fourth)


def test_attention_gradients_flow_to_all_projections():
    attention = MultiHeadSelfAttention(16, 2)
    output, _ = attention(torch.randn(2, 4, 16), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]))
    output.square().sum().backward()
    for name in ("query", "key", "value", "output"):
        assert getattr(attention, name).weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ BertEmbeddings
def make_embeddings(**overrides):
    arguments = dict(vocab_size=50, hidden_size=32, max_position_embeddings=16)
    arguments.update(overrides)
    return BertEmbeddings(**arguments)


def test_embeddings_defaults_and_submodules():
    embeddings = BertEmbeddings(vocab_size=50, hidden_size=32)
    assert embeddings.word_embeddings.weight.shape == (50, 32)
    assert embeddings.position_embeddings.weight.shape == (512, 32)
    assert embeddings.token_type_embeddings.weight.shape == (2, 32)
    assert isinstance(embeddings.layer_norm, nn.LayerNorm) and embeddings.layer_norm.eps == 1e-12
    assert isinstance(embeddings.dropout, nn.Dropout) and embeddings.dropout.p == 0.1
    assert set(embeddings.state_dict()) == {
        "word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
        "layer_norm.weight", "layer_norm.bias",
    }


def test_embeddings_shape_and_layer_norm_statistics():
    embeddings = make_embeddings().eval()
    input_ids = torch.randint(0, 50, (3, 10))
    output = embeddings(input_ids)
    assert output.shape == (3, 10, 32)
    torch.testing.assert_close(output.mean(-1), torch.zeros(3, 10), atol=1e-5, rtol=0)
    torch.testing.assert_close(output.var(-1, unbiased=False), torch.ones(3, 10), atol=1e-4, rtol=0)


def test_embeddings_is_sum_then_layer_norm():
    embeddings = make_embeddings(layer_norm_eps=1e-12).eval()
    with torch.no_grad():
        embeddings.layer_norm.weight.uniform_(0.5, 1.5)
        embeddings.layer_norm.bias.normal_()
    input_ids = torch.randint(0, 50, (2, 7))
    token_type_ids = torch.randint(0, 2, (2, 7))
    summed = (embeddings.word_embeddings.weight[input_ids]
              + embeddings.position_embeddings.weight[:7]
              + embeddings.token_type_embeddings.weight[token_type_ids])
    expected = F.layer_norm(summed, (32,), embeddings.layer_norm.weight, embeddings.layer_norm.bias, eps=1e-12)
    torch.testing.assert_close(embeddings(input_ids, token_type_ids), expected, atol=1e-5, rtol=0)


def test_embeddings_token_type_ids_default_to_zeros():
    embeddings = make_embeddings().eval()
    input_ids = torch.randint(0, 50, (2, 8))
    default = embeddings(input_ids)
    assert torch.equal(default, embeddings(input_ids, torch.zeros_like(input_ids)))
    assert not torch.allclose(default, embeddings(input_ids, torch.ones_like(input_ids)), atol=1e-3)


def test_embeddings_positions_are_learned_parameters():
    embeddings = make_embeddings().eval()
    weight = embeddings.position_embeddings.weight
    assert isinstance(weight, nn.Parameter) and weight.requires_grad
    assert any(parameter is weight for parameter in embeddings.parameters())
    output = embeddings(torch.randint(0, 50, (2, 5)))
    (output * torch.randn_like(output)).sum().backward()
    rows_with_gradient = weight.grad.abs().sum(-1) > 0
    assert rows_with_gradient[:5].all() and not rows_with_gradient[5:].any()
    # position matters: the same token at two positions gives two vectors
    same = embeddings(torch.full((1, 4), 7))[0]
    assert not torch.allclose(same[0], same[1], atol=1e-3)


def test_embeddings_dropout_off_in_eval():
    embeddings = make_embeddings(dropout_prob=0.5)
    input_ids = torch.randint(0, 50, (2, 8))
    embeddings.train()
    assert not torch.equal(embeddings(input_ids), embeddings(input_ids))
    embeddings.eval()
    assert torch.equal(embeddings(input_ids), embeddings(input_ids))


def test_embeddings_reject_too_long_and_mismatched_segments():
    embeddings = make_embeddings()
    with pytest.raises(ValueError, match="17.*16"):
        embeddings(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="token_type_ids"):
        embeddings(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))


def test_embeddings_match_transformers():
    transformers = pytest.importorskip("transformers")
    from transformers.models.bert.modeling_bert import BertEmbeddings as HFBertEmbeddings

    config = transformers.BertConfig(vocab_size=50, hidden_size=32, num_attention_heads=4,
                                     max_position_embeddings=16, type_vocab_size=2, layer_norm_eps=1e-12)
    reference = HFBertEmbeddings(config).eval()
    ours = make_embeddings().eval()
    state = {key.replace("LayerNorm", "layer_norm"): value for key, value in reference.state_dict().items()
             if key != "position_ids" and not key.endswith("token_type_ids")}
    ours.load_state_dict(state)
    input_ids = torch.randint(0, 50, (2, 9))
    token_type_ids = torch.randint(0, 2, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids, token_type_ids),
                                   reference(input_ids=input_ids, token_type_ids=token_type_ids),
                                   atol=1e-5, rtol=0)
