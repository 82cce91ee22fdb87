"""Tests of chapter 04 (bert_annotated.model): the encoder, the config, the full BertModel.

The parity tests compare with a randomly initialised `transformers.BertModel` (nothing is
downloaded) and are skipped when transformers is not installed.
"""
import pytest
import torch
from torch import nn

from bert_annotated.checkpoints import hf_to_ours_state_dict, ours_to_hf_state_dict
from bert_annotated.model import (
    BertConfig,
    BertEncoder,
    BertFeedForward,
    BertLayer,
    BertModel,
    BertPooler,
    init_bert_weights,
)

BASE_PARAMETERS = 109_482_240  # bert-base-uncased, BertModel with pooler
LARGE_PARAMETERS = 335_141_888  # bert-large-uncased


def padded_batch(vocab_size):
    """Three sequences of lengths 10, 7 and 4, padded with id 0, each with two segments."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, vocab_size, (3, 10), generator=generator)
    token_type_ids = torch.zeros(3, 10, dtype=torch.long)
    attention_mask = torch.zeros(3, 10, dtype=torch.long)
    for row, length in enumerate((10, 7, 4)):
        attention_mask[row, :length] = 1
        token_type_ids[row, length // 2 : length] = 1
        input_ids[row, length:] = 0
    return input_ids, token_type_ids, attention_mask


def randomized_hf_model(tiny_config, transformers, attn_implementation):
    """A small transformers.BertModel whose every parameter (biases and LayerNorms too) is random."""
    torch.manual_seed(0)
    hf_config = transformers.BertConfig(**tiny_config().to_dict(), attn_implementation=attn_implementation)
    hf_model = transformers.BertModel(hf_config).eval()
    with torch.no_grad():
        for name, parameter in hf_model.named_parameters():
            parameter.normal_(mean=1.0 if name.endswith("LayerNorm.weight") else 0.0, std=0.1)
    return hf_config, hf_model


def ours_from_hf(hf_config, hf_model):
    model = BertModel(BertConfig.from_dict(hf_config.to_dict())).eval()
    model.load_state_dict(hf_to_ours_state_dict(hf_model.state_dict()))  # strict
    return model


# ---------------------------------------------------------------------------- parity with transformers
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_outputs_match_transformers_at_every_position(attn_implementation, tiny_config):
    transformers = pytest.importorskip("transformers")
    hf_config, hf_model = randomized_hf_model(tiny_config, transformers, attn_implementation)
    model = ours_from_hf(hf_config, hf_model)
    input_ids, token_type_ids, attention_mask = padded_batch(tiny_config().vocab_size)
    with torch.no_grad():
        expected = hf_model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        sequence_output, pooled_output = model(input_ids, token_type_ids, attention_mask)
    # All positions are compared, padded ones included: both models mask padded *keys* only, so a
    # padded query row attends to the real tokens in both and computes the same vector.
    torch.testing.assert_close(sequence_output, expected.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(pooled_output, expected.pooler_output, atol=1e-5, rtol=0)
    # the comparison has teeth: the batch really is padded and the outputs are not trivial
    assert (attention_mask == 0).sum() == 9
    assert sequence_output.std() > 0.5


def test_attention_probabilities_match_transformers(tiny_config):
    transformers = pytest.importorskip("transformers")
    hf_config, hf_model = randomized_hf_model(tiny_config, transformers, "eager")
    model = ours_from_hf(hf_config, hf_model)
    input_ids, token_type_ids, attention_mask = padded_batch(tiny_config().vocab_size)
    with torch.no_grad():
        expected = hf_model(
            input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask, output_attentions=True
        )
        _, _, attentions = model(input_ids, token_type_ids, attention_mask, output_attentions=True)
    assert len(attentions) == len(expected.attentions) == tiny_config().num_hidden_layers
    for ours, theirs in zip(attentions, expected.attentions):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_default_token_types_and_mask_match_transformers(tiny_config):
    transformers = pytest.importorskip("transformers")
    hf_config, hf_model = randomized_hf_model(tiny_config, transformers, "eager")
    model = ours_from_hf(hf_config, hf_model)
    input_ids = padded_batch(tiny_config().vocab_size)[0][:1]  # the unpadded row
    with torch.no_grad():
        expected = hf_model(input_ids=input_ids)
        sequence_output, pooled_output = model(input_ids)
    torch.testing.assert_close(sequence_output, expected.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(pooled_output, expected.pooler_output, atol=1e-5, rtol=0)


def test_config_from_transformers_config_dict(tiny_config):
    transformers = pytest.importorskip("transformers")
    hf_dict = transformers.BertConfig(**tiny_config().to_dict()).to_dict()
    assert "model_type" in hf_dict  # extra keys that we must ignore
    config = BertConfig.from_dict(hf_dict)
    assert config == tiny_config()


# ---------------------------------------------------------------------------- parameter counts
def count(model):
    return sum(parameter.numel() for parameter in model.parameters())


def test_parameter_counts_of_published_sizes_on_meta_device():
    with torch.device("meta"):
        base = BertModel(BertConfig.base())
        large = BertModel(BertConfig.large())
    assert next(base.parameters()).device.type == "meta"
    assert count(base) == BASE_PARAMETERS
    assert count(large) == LARGE_PARAMETERS


def test_parameter_counts_agree_with_transformers_on_meta_device():
    transformers = pytest.importorskip("transformers")
    for config in (BertConfig.base(), BertConfig.large()):
        with torch.device("meta"):
            ours = BertModel(config)
            theirs = transformers.BertModel(transformers.BertConfig(**config.to_dict()))
        assert count(ours) == count(theirs)
        assert {k: v.shape for k, v in ours_to_hf_state_dict(ours.state_dict()).items()} == {
            k: v.shape for k, v in theirs.state_dict().items() if k not in ("embeddings.position_ids", "embeddings.token_type_ids")
        }


def test_config_sizes():
    base, large = BertConfig.base(), BertConfig.large()
    assert (base.vocab_size, base.num_hidden_layers, base.hidden_size, base.num_attention_heads, base.intermediate_size) == (
        30522, 12, 768, 12, 3072,
    )
    assert (large.vocab_size, large.num_hidden_layers, large.hidden_size, large.num_attention_heads, large.intermediate_size) == (
        30522, 24, 1024, 16, 4096,
    )
    assert BertConfig.base(vocab_size=21128).vocab_size == 21128
    assert base.hidden_act == "gelu" and base.layer_norm_eps == 1e-12 and base.initializer_range == 0.02


# ---------------------------------------------------------------------------- initialisation
def test_initialisation_statistics():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=2000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512)
    model = BertModel(config)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(linears) == 2 * 6 + 1 and len(embeddings) == 3 and len(norms) == 1 + 2 * 2
    for module in linears + embeddings[:1]:  # word embeddings: 256,000 draws
        assert abs(module.weight.mean().item()) < 0.002
        assert module.weight.std().item() == pytest.approx(0.02, rel=0.05)
    for module in linears:
        assert torch.count_nonzero(module.bias) == 0
    for module in norms:
        assert torch.equal(module.weight, torch.ones_like(module.weight))
        assert torch.count_nonzero(module.bias) == 0
    # PyTorch's own nn.Embedding default is N(0, 1): make sure we replaced it
    assert model.embeddings.position_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_init_bert_weights_uses_initializer_range_and_keeps_padding_row():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(256, 256), nn.Embedding(500, 64, padding_idx=3), nn.LayerNorm(8))
    with torch.no_grad():
        module[2].weight.fill_(3.0)
    init_bert_weights(module, initializer_range=0.1)
    assert module[0].weight.std().item() == pytest.approx(0.1, rel=0.05)
    assert module[1].weight.std().item() == pytest.approx(0.1, rel=0.05)
    assert torch.count_nonzero(module[1].weight[3]) == 0
    assert torch.equal(module[2].weight, torch.ones(8))


# ---------------------------------------------------------------------------- errors
def test_config_rejects_heads_that_do_not_divide_hidden_size():
    with pytest.raises(ValueError, match=r"BertConfig: hidden size 100 is not divisible by 12 attention heads") as error:
        BertConfig(hidden_size=100, num_attention_heads=12)
    assert "set num_attention_heads to 10 (a divisor of 100), or hidden_size to 96 or 108" in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(vocab_size=0), "vocab_size"),
        (dict(num_hidden_layers=-1), "num_hidden_layers"),
        (dict(intermediate_size=3.5), "intermediate_size"),
        (dict(max_position_embeddings=0), "max_position_embeddings"),
        (dict(hidden_act="swish"), "hidden_act"),
        (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob"),
        (dict(layer_norm_eps=0.0), "layer_norm_eps"),
        (dict(pad_token_id=30522), "pad_token_id"),
    ],
)
def test_config_rejects_bad_values(overrides, field):
    with pytest.raises(ValueError, match=field):
        BertConfig.base(**overrides)


def test_config_dict_round_trip_and_unknown_position_embeddings(tiny_config):
    config = tiny_config(hidden_act="gelu_new", hidden_dropout_prob=0.0)
    assert BertConfig.from_dict(config.to_dict()) == config
    extra = {**config.to_dict(), "architectures": ["BertForMaskedLM"], "model_type": "bert", "use_cache": True}
    assert BertConfig.from_dict(extra) == config
    with pytest.raises(ValueError, match="position_embedding_type"):
        BertConfig.from_dict({**config.to_dict(), "position_embedding_type": "relative_key"})


def test_forward_rejects_too_long_input(tiny_config):
    model = BertModel(tiny_config()).eval()
    with pytest.raises(ValueError, match=r"65 tokens, more than max_position_embeddings 64"):
        model(torch.ones(1, 65, dtype=torch.long))
    model(torch.ones(1, 64, dtype=torch.long))  # the limit itself is fine


@pytest.mark.parametrize("bad_id", [99, 12345, -1])  # the tiny vocabulary holds ids 0 to 98
def test_forward_rejects_out_of_range_ids(bad_id, tiny_config):
    model = BertModel(tiny_config()).eval()
    input_ids = torch.tensor([[2, 7, bad_id, 3]])
    with pytest.raises(ValueError, match=rf"input_ids contains {bad_id}, outside \[0, 99\)"):
        model(input_ids)
    with pytest.raises(ValueError, match=r"token_type_ids contains 2, outside \[0, 2\)"):
        model(torch.tensor([[2, 7, 3]]), token_type_ids=torch.tensor([[0, 1, 2]]))


def test_forward_rejects_mismatched_shapes(tiny_config):
    model = BertModel(tiny_config()).eval()
    with pytest.raises(ValueError, match="batch"):
        model(torch.tensor([2, 7, 3]))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.tensor([[2, 7, 3]]), attention_mask=torch.ones(1, 4))


# ---------------------------------------------------------------------------- behaviour
def test_output_attentions_are_probabilities_and_ignore_padding(tiny_config):
    torch.manual_seed(0)
    config = tiny_config()
    model = BertModel(config).eval()
    input_ids, token_type_ids, attention_mask = padded_batch(tiny_config().vocab_size)
    with torch.no_grad():
        outputs = model(input_ids, token_type_ids, attention_mask, output_attentions=True)
        plain = model(input_ids, token_type_ids, attention_mask)
    assert len(outputs) == 3 and len(plain) == 2
    sequence_output, pooled_output, attentions = outputs
    torch.testing.assert_close(sequence_output, plain[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(pooled_output, plain[1], atol=1e-6, rtol=0)
    assert len(attentions) == config.num_hidden_layers
    for probabilities in attentions:
        assert probabilities.shape == (3, config.num_attention_heads, 10, 10)
        assert (probabilities >= 0).all()
        torch.testing.assert_close(probabilities.sum(-1), torch.ones(3, config.num_attention_heads, 10))
        padded_keys = (attention_mask == 0)[:, None, None, :].expand_as(probabilities)
        assert (probabilities[padded_keys] == 0).all()
        assert (probabilities[~padded_keys] > 0).all()


def test_padding_does_not_change_real_positions(tiny_config):
    torch.manual_seed(0)
    model = BertModel(tiny_config()).eval()
    input_ids, token_type_ids, attention_mask = padded_batch(tiny_config().vocab_size)
    with torch.no_grad():
        sequence_output, pooled_output = model(input_ids, token_type_ids, attention_mask)
        for row, length in enumerate((10, 7, 4)):
            alone, alone_pooled = model(input_ids[row : row + 1, :length], token_type_ids[row : row + 1, :length])
            torch.testing.assert_close(alone[0], sequence_output[row, :length], atol=1e-5, rtol=0)
            torch.testing.assert_close(alone_pooled[0], pooled_output[row], atol=1e-5, rtol=0)


def test_eval_is_deterministic_and_train_uses_dropout(tiny_config):
    torch.manual_seed(0)
    model = BertModel(tiny_config())
    input_ids, token_type_ids, attention_mask = padded_batch(tiny_config().vocab_size)
    model.eval()
    with torch.no_grad():
        first = model(input_ids, token_type_ids, attention_mask)
        second = model(input_ids, token_type_ids, attention_mask)
        assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
        model.train()
        dropped = model(input_ids, token_type_ids, attention_mask)
    assert not torch.allclose(dropped[0], first[0])


def test_layers_are_post_layer_norm(tiny_config):
    """Right after init (LayerNorm gamma=1, beta=0) every layer output has mean 0, variance 1 per token."""
    torch.manual_seed(0)
    config = tiny_config()
    layer = BertLayer(config).eval()
    hidden = 7.0 * torch.randn(2, 5, config.hidden_size) + 3.0
    with torch.no_grad():
        out, probabilities = layer(hidden)
    assert probabilities is None
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-4, rtol=0)


def test_feed_forward_is_position_wise_and_uses_exact_gelu():
    torch.manual_seed(0)
    feed_forward = BertFeedForward(8, 16)
    x = torch.randn(3, 5, 8)
    expected = feed_forward.output(torch.nn.functional.gelu(feed_forward.intermediate(x)))
    torch.testing.assert_close(feed_forward(x), expected)
    torch.testing.assert_close(feed_forward(x)[:, 2], feed_forward(x[:, 2]))
    approximate = BertFeedForward(8, 16, hidden_act="gelu_new")
    approximate.load_state_dict(feed_forward.state_dict())
    assert not torch.equal(approximate(x), feed_forward(x))
    with pytest.raises(ValueError, match="hidden_act"):
        BertFeedForward(8, 16, hidden_act="swish")


def test_encoder_and_pooler_structure(tiny_config):
    config = tiny_config()
    encoder = BertEncoder(config)
    assert len(encoder.layers) == 2 and isinstance(encoder.layers, nn.ModuleList)
    pooler = BertPooler(config.hidden_size)
    hidden = torch.randn(2, 6, config.hidden_size)
    expected = torch.tanh(pooler.dense(hidden[:, 0]))
    torch.testing.assert_close(pooler(hidden), expected)
    model = BertModel(config)
    assert model.config is config and isinstance(model.pooler, BertPooler) and isinstance(model.encoder, BertEncoder)


# ---------------------------------------------------------------------------- key mapping
def test_state_dict_key_mapping_round_trip(tiny_config):
    model = BertModel(tiny_config())
    state = model.state_dict()
    as_hf = ours_to_hf_state_dict(state)
    assert len(as_hf) == len(state) == 5 + 16 * 2 + 2
    for key in (
        "embeddings.LayerNorm.weight",
        "encoder.layer.1.attention.self.query.weight",
        "encoder.layer.1.attention.output.dense.bias",
        "encoder.layer.1.attention.output.LayerNorm.weight",
        "encoder.layer.1.intermediate.dense.weight",
        "encoder.layer.1.output.dense.weight",
        "encoder.layer.1.output.LayerNorm.bias",
        "pooler.dense.weight",
    ):
        assert key in as_hf
    assert as_hf["encoder.layer.1.intermediate.dense.weight"] is state["encoder.layers.1.feed_forward.intermediate.weight"]
    back = hf_to_ours_state_dict(as_hf)
    assert back.keys() == state.keys() and all(back[key] is state[key] for key in state)


def test_hf_key_mapping_accepts_prefix_buffers_and_old_layer_norm_names(tiny_config):
    model = BertModel(tiny_config())
    as_hf = ours_to_hf_state_dict(model.state_dict())
    prefixed = {"bert." + key: value for key, value in as_hf.items()}
    prefixed["bert.embeddings.position_ids"] = torch.arange(64)[None]
    prefixed["bert.embeddings.token_type_ids"] = torch.zeros(1, 64, dtype=torch.long)
    old_names = {
        key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): value
        for key, value in prefixed.items()
    }
    for state in (prefixed, old_names):
        converted = hf_to_ours_state_dict(state)
        assert converted.keys() == model.state_dict().keys()
        fresh = BertModel(tiny_config())
        fresh.load_state_dict(converted)  # strict
        assert torch.equal(fresh.encoder.layers[1].feed_forward_layer_norm.bias, model.encoder.layers[1].feed_forward_layer_norm.bias)


def test_key_mapping_reports_unexpected_keys(tiny_config):
    model = BertModel(tiny_config())
    as_hf = ours_to_hf_state_dict(model.state_dict())
    bad = {**as_hf, "cls.predictions.bias": torch.zeros(100), "encoder.layer.0.crossattention.self.query.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"2 unexpected key\(s\): cls\.predictions\.bias, encoder\.layer\.0\.crossattention"):
        hf_to_ours_state_dict(bad)
    with pytest.raises(ValueError, match=r"unexpected key\(s\): mlm_head\.bias"):
        ours_to_hf_state_dict({**model.state_dict(), "mlm_head.bias": torch.zeros(100)})


def test_hf_weights_load_into_ours_with_transformers_state_dict(tiny_config):
    transformers = pytest.importorskip("transformers")
    _, hf_model = randomized_hf_model(tiny_config, transformers, "eager")
    hf_state = hf_model.state_dict()
    converted = hf_to_ours_state_dict(hf_state)
    model = BertModel(tiny_config())
    missing, unexpected = model.load_state_dict(converted, strict=True)
    assert not missing and not unexpected
    back = ours_to_hf_state_dict(model.state_dict())
    for key, value in back.items():
        assert torch.equal(value, hf_state[key])
