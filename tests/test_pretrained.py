"""Hugging Face checkpoint folders, both ways: chapter 08 (bert_annotated.pretrained).

Every model here is a randomly initialised `transformers` model of a small config: nothing is downloaded.
"""
from __future__ import annotations

import json

import pytest
import torch

import bert_annotated  # noqa: F401  (attaches from_pretrained / save_pretrained to the classes)
from bert_annotated import BertConfig, BertForPreTraining, BertModel, BertTokenizer, write_vocab
from bert_annotated.pretrained import (fill_mask, hf_to_pretraining_state_dict, nearest_tokens,
                                       pretraining_to_hf_state_dict)
from bert_annotated.pretraining import build_optimizer

transformers = pytest.importorskip("transformers")
from safetensors.torch import load_file, save_file  # noqa: E402

SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             max_position_embeddings=40, type_vocab_size=2)
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "dog", "bark", "##s", "cat", "hello", "world", "中", "文", ",", "."]


def _randomise(model):
    """Distinct values everywhere, so that a swapped bias or LayerNorm cannot go unnoticed."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.normal_(mean=1.0 if name.endswith("LayerNorm.weight") else 0.0, std=0.1)
    return model.eval()


def _batch():
    torch.manual_seed(1)
    input_ids = torch.randint(5, SMALL["vocab_size"], (3, 12))
    input_ids[:, 0] = 2
    input_ids[0, 8:] = 0  # padding
    input_ids[1, 10:] = 0
    attention_mask = (input_ids != 0).long()
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 6:] = 1
    token_type_ids[input_ids == 0] = 0
    return input_ids, token_type_ids, attention_mask


def _hf_pretraining_folder(tmp_path, binary=False):
    hf_model = _randomise(transformers.BertForPreTraining(transformers.BertConfig(**SMALL)))
    folder = tmp_path / ("hf-bin" if binary else "hf")
    hf_model.save_pretrained(folder)
    if binary:  # the older layout: a pickle holding every key, the tied decoder and the duplicated bias included
        (folder / "model.safetensors").unlink()
        torch.save(hf_model.state_dict(), folder / "pytorch_model.bin")
    return hf_model, folder


@pytest.mark.parametrize("binary", [False, True], ids=["safetensors", "pytorch_model.bin"])
def test_transformers_folder_loads_into_ours_with_same_logits(tmp_path, binary):
    hf_model, folder = _hf_pretraining_folder(tmp_path, binary)
    if binary:
        saved = torch.load(folder / "pytorch_model.bin", weights_only=True)
        assert "cls.predictions.decoder.weight" in saved  # the check below covers the tied copy
    ours = BertForPreTraining.from_pretrained(folder)
    assert not ours.training
    assert ours.mlm_head.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    input_ids, token_type_ids, attention_mask = _batch()
    with torch.no_grad():
        expected = hf_model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        output = ours(input_ids, token_type_ids, attention_mask)
    real = attention_mask.bool()
    assert output.mlm_logits.shape == (3, 12, SMALL["vocab_size"]) and output.nsp_logits.shape == (3, 2)
    assert output.loss is None
    torch.testing.assert_close(output.mlm_logits[real], expected.prediction_logits[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(output.nsp_logits, expected.seq_relationship_logits, atol=1e-5, rtol=0)


def test_our_folder_loads_into_transformers_with_nothing_missing(tmp_path):
    hf_source, source = _hf_pretraining_folder(tmp_path)
    ours = BertForPreTraining.from_pretrained(source)
    ours.save_pretrained(tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"] and config["model_type"] == "bert"
    assert {key: config[key] for key in SMALL} == SMALL
    stored = load_file(tmp_path / "ours" / "model.safetensors")
    assert "cls.predictions.decoder.weight" not in stored and "cls.predictions.bias" in stored
    assert all(key.startswith(("bert.", "cls.")) for key in stored)

    loaded, info = transformers.BertForPreTraining.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert info["missing_keys"] in (set(), []) and info["unexpected_keys"] in (set(), [])
    assert not info["mismatched_keys"]
    loaded.eval()
    input_ids, token_type_ids, attention_mask = _batch()
    with torch.no_grad():
        theirs = loaded(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        original = hf_source(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        mine = ours(input_ids, token_type_ids, attention_mask)
    real = attention_mask.bool()
    torch.testing.assert_close(theirs.prediction_logits[real], mine.mlm_logits[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(theirs.seq_relationship_logits, mine.nsp_logits, atol=1e-5, rtol=0)
    # and the weights went through unchanged: the same numbers as the model we started from
    torch.testing.assert_close(theirs.prediction_logits, original.prediction_logits, atol=1e-6, rtol=0)


def test_fresh_model_round_trip_keeps_every_tensor_and_the_tie(tmp_path):
    torch.manual_seed(3)
    model = BertForPreTraining(BertConfig(**SMALL))
    model.save_pretrained(tmp_path / "m")
    again = BertForPreTraining.from_pretrained(tmp_path / "m")
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    assert again.mlm_head.decoder.weight is again.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        again.bert.embeddings.word_embeddings.weight[7] += 1.0  # still one tensor after loading
    assert torch.equal(again.mlm_head.decoder.weight[7], again.bert.embeddings.word_embeddings.weight[7])


@pytest.mark.parametrize("binary", [False, True], ids=["safetensors", "pytorch_model.bin"])
def test_bert_model_folders_both_ways(tmp_path, binary):
    hf_model = _randomise(transformers.BertModel(transformers.BertConfig(**SMALL)))
    hf_model.save_pretrained(tmp_path / "hf")
    if binary:
        (tmp_path / "hf" / "model.safetensors").unlink()
        torch.save(hf_model.state_dict(), tmp_path / "hf" / "pytorch_model.bin")
    ours = BertModel.from_pretrained(tmp_path / "hf")
    input_ids, token_type_ids, attention_mask = _batch()
    real = attention_mask.bool()
    with torch.no_grad():
        expected = hf_model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        sequence_output, pooled_output = ours(input_ids, token_type_ids, attention_mask)
    torch.testing.assert_close(sequence_output[real], expected.last_hidden_state[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(pooled_output, expected.pooler_output, atol=1e-5, rtol=0)

    ours.save_pretrained(tmp_path / "ours")
    loaded, info = transformers.BertModel.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    with torch.no_grad():
        again = loaded.eval()(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
    torch.testing.assert_close(again.pooler_output, pooled_output, atol=1e-5, rtol=0)


def test_bert_model_reads_the_body_of_a_pretraining_folder(tmp_path):
    hf_model, folder = _hf_pretraining_folder(tmp_path)
    body = BertModel.from_pretrained(folder)
    input_ids, token_type_ids, attention_mask = _batch()
    with torch.no_grad():
        expected = hf_model.bert(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        _, pooled = body(input_ids, token_type_ids, attention_mask)
    torch.testing.assert_close(pooled, expected.pooler_output, atol=1e-5, rtol=0)


def test_chapter07_run_folder_loads(tmp_path):
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(**SMALL))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps(model.config.to_dict()))  # no model_type: what ch07 writes
    loaded = BertForPreTraining.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


# ------------------------------------------------------------------------------------------------ tokenizer
def _legacy_or_fast(name):
    return getattr(transformers, name, None)


@pytest.mark.parametrize("do_lower_case", [True, False])
@pytest.mark.parametrize("tokenizer_class", ["BertTokenizer", "BertTokenizerLegacy"])
def test_tokenizer_saved_by_transformers_loads_with_its_casing(tmp_path, do_lower_case, tokenizer_class):
    cls = _legacy_or_fast(tokenizer_class)
    if cls is None:
        pytest.skip(f"transformers has no {tokenizer_class}")
    write_vocab(VOCAB + ["Hello", "The"], tmp_path / "source.txt")
    hf_tokenizer = cls(vocab_file=str(tmp_path / "source.txt"), do_lower_case=do_lower_case)
    hf_tokenizer.save_pretrained(tmp_path / "tok")
    ours = BertTokenizer.from_pretrained(tmp_path / "tok")
    assert ours.do_lower_case is do_lower_case
    for text in ["Hello, the dog barks.", "The cat 中文 world.", "Hello [MASK] world"]:
        assert ours.encode(text)["input_ids"] == hf_tokenizer(text)["input_ids"], text


def test_our_tokenizer_folder_loads_in_transformers(tmp_path):
    write_vocab(VOCAB, tmp_path / "vocab-source.txt")
    ours = BertTokenizer(str(tmp_path / "vocab-source.txt"), do_lower_case=True)
    ours.save_pretrained(tmp_path / "tok")
    theirs = transformers.BertTokenizer.from_pretrained(tmp_path / "tok")
    again = BertTokenizer.from_pretrained(tmp_path / "tok")
    assert again.vocab == ours.vocab and again.do_lower_case
    for text in ["Hello, the DOG barks.", "中文, world"]:
        assert theirs(text)["input_ids"] == ours.encode(text)["input_ids"]


def test_save_pretrained_with_tokenizer_writes_vocab(tmp_path):
    write_vocab(VOCAB, tmp_path / "v.txt")
    tokenizer = BertTokenizer(str(tmp_path / "v.txt"))
    model = BertForPreTraining(BertConfig(**{**SMALL, "vocab_size": len(VOCAB)}))
    model.save_pretrained(tmp_path / "m", tokenizer=tokenizer)
    assert (tmp_path / "m" / "vocab.txt").read_text(encoding="utf-8").split() == VOCAB
    assert BertTokenizer.from_pretrained(tmp_path / "m").vocab == tokenizer.vocab
    wrong = BertForPreTraining(BertConfig(**SMALL))
    with pytest.raises(ValueError, match="99"):
        wrong.save_pretrained(tmp_path / "w", tokenizer=tokenizer)


# ------------------------------------------------------------------------------------------------ bad folders
@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    BertForPreTraining(BertConfig(**SMALL)).save_pretrained(tmp_path / "good")
    return tmp_path / "good"


def _raises(loader, folder, *needles):
    with pytest.raises(ValueError) as error:
        loader(folder)
    message = str(error.value)
    assert str(folder) in message and "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_missing_directory_and_missing_config(tmp_path, saved):
    _raises(BertForPreTraining.from_pretrained, tmp_path / "nowhere", "no such directory")
    (saved / "config.json").unlink()
    _raises(BertForPreTraining.from_pretrained, saved, "config.json")
    _raises(BertModel.from_pretrained, saved, "config.json")


@pytest.mark.parametrize("config", [{"model_type": "gpt2", "n_embd": 32}, {"model_type": "roberta"},
                                    {"architectures": ["RobertaModel"]}, {"model_type": "bert", "architectures": ["GPT2Model"]}])
def test_other_architectures_are_refused(saved, config):
    (saved / "config.json").write_text(json.dumps(config))
    name = config.get("model_type") if config.get("model_type", "bert") != "bert" else config["architectures"][0]
    _raises(BertForPreTraining.from_pretrained, saved, name)


def test_config_that_is_not_json(saved):
    (saved / "config.json").write_text("{not json")
    _raises(BertForPreTraining.from_pretrained, saved, "not a JSON file")


def test_weights_that_do_not_fit_the_config(saved):
    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(json.dumps({**config, "intermediate_size": 64}))
    message = _raises(BertForPreTraining.from_pretrained, saved, "model.safetensors", "intermediate", "(48, 32)", "(64, 32)")
    assert "config.json" in message
    (saved / "config.json").write_text(json.dumps({**config, "vocab_size": 120}))
    _raises(BertModel.from_pretrained, saved, "word_embeddings")


def test_missing_weights_file_and_missing_heads(tmp_path, saved):
    (saved / "model.safetensors").unlink()
    _raises(BertForPreTraining.from_pretrained, saved, "model.safetensors", "pytorch_model.bin")
    BertModel(BertConfig(**SMALL)).save_pretrained(tmp_path / "body")
    _raises(BertForPreTraining.from_pretrained, tmp_path / "body", "missing", "mlm_head")


def test_unknown_and_untied_keys(saved):
    tensors = load_file(saved / "model.safetensors")
    save_file({**tensors, "cls.something.weight": torch.zeros(2)}, saved / "model.safetensors", metadata={"format": "pt"})
    _raises(BertForPreTraining.from_pretrained, saved, "cls.something.weight")
    untied = tensors["bert.embeddings.word_embeddings.weight"] + 1.0
    save_file({**tensors, "cls.predictions.decoder.weight": untied}, saved / "model.safetensors", metadata={"format": "pt"})
    _raises(BertForPreTraining.from_pretrained, saved, "tied")


def test_corrupt_weights(saved):
    (saved / "model.safetensors").write_bytes(b"\x00" * 20)
    _raises(BertForPreTraining.from_pretrained, saved, "cannot read")


def test_vocab_of_the_wrong_size(saved):
    write_vocab(VOCAB, saved / "vocab.txt")
    _raises(BertTokenizer.from_pretrained, saved, "vocab.txt", "16 tokens", "vocab_size=99")


def test_tokenizer_folder_without_vocab(tmp_path):
    (tmp_path / "t").mkdir()
    _raises(BertTokenizer.from_pretrained, tmp_path / "t", "vocab.txt")


def test_unsupported_tokenizer_options(tmp_path):
    write_vocab(VOCAB, tmp_path / "vocab.txt")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenize_chinese_chars": False}))
    _raises(BertTokenizer.from_pretrained, tmp_path, "tokenize_chinese_chars")


# ------------------------------------------------------------------------------------------------ using a model
def test_fill_mask_and_nearest_tokens(tmp_path):
    write_vocab(VOCAB, tmp_path / "v.txt")
    tokenizer = BertTokenizer(str(tmp_path / "v.txt"))
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(**{**SMALL, "vocab_size": len(VOCAB)}))
    with torch.no_grad():  # make the model certain: "dog" is the answer everywhere
        model.mlm_head.bias[tokenizer.vocab["dog"]] = 50.0
    predictions = fill_mask(model, tokenizer, "the [MASK] barks, the [MASK].", top_k=3)
    assert len(predictions) == 2 and all(len(row) == 3 for row in predictions)
    assert predictions[0][0].token == "dog" and predictions[0][0].probability > 0.99
    assert model.training  # fill_mask puts the mode back
    with pytest.raises(ValueError, match="MASK"):
        fill_mask(model, tokenizer, "no blank here")
    with torch.no_grad():
        embeddings = model.bert.embeddings.word_embeddings.weight
        embeddings[tokenizer.vocab["cat"]] = embeddings[tokenizer.vocab["dog"]] * 2.0  # same direction
    neighbours = nearest_tokens(model, tokenizer, "dog", k=3)
    assert neighbours[0][0] == "cat" and neighbours[0][1] == pytest.approx(1.0, abs=1e-5)
    assert "dog" not in [token for token, _ in neighbours]
    with pytest.raises(ValueError, match="vocabulary"):
        nearest_tokens(model, tokenizer, "elephant")


def test_hf_names_of_the_heads():
    model = BertForPreTraining(BertConfig(**SMALL))
    names = set(pretraining_to_hf_state_dict(model.state_dict()))
    hf_names = set(transformers.BertForPreTraining(transformers.BertConfig(**SMALL)).state_dict())
    hf_names -= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
                 "bert.embeddings.position_ids", "bert.embeddings.token_type_ids"}
    assert names == hf_names


def test_training_steps_match_transformers():
    """Same weights, same batches, same AdamW: five training steps give the same losses and weights.

    Forward parity alone would miss a wrong gradient (the tied decoder, the gather of masked positions,
    the NSP head on the pooler); here every update has to agree too.
    """
    hf_model = _randomise(transformers.BertForPreTraining(transformers.BertConfig(
        **SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation="eager")))
    ours = BertForPreTraining(BertConfig(**SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    missing, unexpected = ours.load_state_dict(hf_to_pretraining_state_dict(hf_model.state_dict()), strict=False)
    assert not unexpected and set(missing) <= {"mlm_head.decoder.weight"}  # the tie: the word embeddings
    hf_model.train()
    ours.train()

    def adamw(model, no_decay):  # the same recipe, written independently against transformers' names
        decay = [p for n, p in model.named_parameters() if not no_decay(n)]
        rest = [p for n, p in model.named_parameters() if no_decay(n)]
        return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                 lr=1e-3, eps=1e-6)

    our_optimizer = build_optimizer(ours, lr=1e-3, weight_decay=0.01)
    hf_optimizer = adamw(hf_model, lambda name: name.endswith("bias") or "LayerNorm" in name)
    assert sum(len(g["params"]) for g in our_optimizer.param_groups) == len(list(hf_model.parameters()))

    generator = torch.Generator().manual_seed(3)
    for step in range(5):
        input_ids, token_type_ids, attention_mask = _batch()
        input_ids = torch.where(attention_mask.bool(), torch.randint(5, SMALL["vocab_size"], input_ids.shape,
                                                                     generator=generator), input_ids)
        input_ids[:, 0] = 2
        chosen = (torch.rand(input_ids.shape, generator=generator) < 0.3) & (input_ids > 4)
        labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
        masked = torch.where(chosen, torch.full_like(input_ids, 4), input_ids)
        next_sentence = torch.randint(0, 2, (3,), generator=generator)

        mine = ours(masked, token_type_ids, attention_mask, mlm_labels=labels, next_sentence_labels=next_sentence)
        theirs = hf_model(input_ids=masked, token_type_ids=token_type_ids, attention_mask=attention_mask,
                          labels=labels, next_sentence_label=next_sentence)
        torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=1e-5, msg=f"loss at step {step}")
        for optimizer, loss in ((our_optimizer, mine.loss), (hf_optimizer, theirs.loss)):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    after = pretraining_to_hf_state_dict(ours.state_dict())
    reference = hf_model.state_dict()
    for key, value in after.items():
        torch.testing.assert_close(value, reference[key], atol=1e-5, rtol=1e-4, msg=key)
