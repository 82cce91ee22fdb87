"""Hugging Face checkpoint folders, both ways, and where the book's model comes from (bert_annotated.checkpoints).

Most models here are randomly initialised `transformers` models of a small config; the book's own model is read
from book/models/. Nothing is downloaded: the download path is tested with file:// URLs and a stand-in urlopen.
"""
from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from bert_annotated import checkpoints, runtime
from bert_annotated.checkpoints import (
    BOOK_MODEL_FILES,
    BOOK_MODEL_FOLDER,
    REPOSITORY_BRANCH,
    REPOSITORY_URL,
    book_model_dir,
    hf_to_pretraining_state_dict,
    pretraining_to_hf_state_dict,
)
from bert_annotated.model import BertConfig, BertForPreTraining, BertModel
from bert_annotated.optimization import build_optimizer
from bert_annotated.probing import load_book_model
from bert_annotated.tokenization import BertTokenizer, write_vocab

transformers = pytest.importorskip("transformers")
from safetensors.torch import load_file, save_file  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "dog", "bark", "##s", "cat", "hello", "world", "中", "文", ",", "."]


def _randomise(model):
    """Distinct values everywhere, so that a swapped bias or LayerNorm cannot go unnoticed."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.normal_(mean=1.0 if name.endswith("LayerNorm.weight") else 0.0, std=0.1)
    return model.eval()


def _batch(vocab_size):
    torch.manual_seed(1)
    input_ids = torch.randint(5, vocab_size, (3, 12))
    input_ids[:, 0] = 2
    input_ids[0, 8:] = 0  # padding
    input_ids[1, 10:] = 0
    attention_mask = (input_ids != 0).long()
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 6:] = 1
    token_type_ids[input_ids == 0] = 0
    return input_ids, token_type_ids, attention_mask


def _hf_pretraining_folder(tiny_config, tmp_path, binary=False):
    hf_model = _randomise(transformers.BertForPreTraining(transformers.BertConfig(**tiny_config().to_dict())))
    folder = tmp_path / ("hf-bin" if binary else "hf")
    hf_model.save_pretrained(folder)
    if binary:  # the older layout: a pickle holding every key, the tied decoder and the duplicated bias included
        (folder / "model.safetensors").unlink()
        torch.save(hf_model.state_dict(), folder / "pytorch_model.bin")
    return hf_model, folder


@pytest.mark.parametrize("binary", [False, True], ids=["safetensors", "pytorch_model.bin"])
def test_transformers_folder_loads_into_ours_with_same_logits(tmp_path, binary, tiny_config):
    hf_model, folder = _hf_pretraining_folder(tiny_config, tmp_path, binary)
    if binary:
        saved = torch.load(folder / "pytorch_model.bin", weights_only=True)
        assert "cls.predictions.decoder.weight" in saved  # the check below covers the tied copy
    ours = BertForPreTraining.from_pretrained(folder)
    assert not ours.training
    assert ours.mlm_head.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    input_ids, token_type_ids, attention_mask = _batch(tiny_config().vocab_size)
    with torch.no_grad():
        expected = hf_model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        output = ours(input_ids, token_type_ids, attention_mask)
    real = attention_mask.bool()
    assert output.mlm_logits.shape == (3, 12, tiny_config().vocab_size) and output.nsp_logits.shape == (3, 2)
    assert output.loss is None
    torch.testing.assert_close(output.mlm_logits[real], expected.prediction_logits[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(output.nsp_logits, expected.seq_relationship_logits, atol=1e-5, rtol=0)


def test_our_folder_loads_into_transformers_with_nothing_missing(tmp_path, tiny_config):
    hf_source, source = _hf_pretraining_folder(tiny_config, tmp_path)
    ours = BertForPreTraining.from_pretrained(source)
    ours.save_pretrained(tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"] and config["model_type"] == "bert"
    assert BertConfig.from_dict(config) == tiny_config()
    stored = load_file(tmp_path / "ours" / "model.safetensors")
    assert "cls.predictions.decoder.weight" not in stored and "cls.predictions.bias" in stored
    assert all(key.startswith(("bert.", "cls.")) for key in stored)

    loaded, info = transformers.BertForPreTraining.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert info["missing_keys"] in (set(), []) and info["unexpected_keys"] in (set(), [])
    assert not info["mismatched_keys"]
    loaded.eval()
    input_ids, token_type_ids, attention_mask = _batch(tiny_config().vocab_size)
    with torch.no_grad():
        theirs = loaded(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        original = hf_source(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        mine = ours(input_ids, token_type_ids, attention_mask)
    real = attention_mask.bool()
    torch.testing.assert_close(theirs.prediction_logits[real], mine.mlm_logits[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(theirs.seq_relationship_logits, mine.nsp_logits, atol=1e-5, rtol=0)
    # and the weights went through unchanged: the same numbers as the model we started from
    torch.testing.assert_close(theirs.prediction_logits, original.prediction_logits, atol=1e-6, rtol=0)


def test_fresh_model_round_trip_keeps_every_tensor_and_the_tie(tmp_path, tiny_config):
    torch.manual_seed(3)
    model = BertForPreTraining(tiny_config())
    model.save_pretrained(tmp_path / "m")
    again = BertForPreTraining.from_pretrained(tmp_path / "m")
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    assert again.mlm_head.decoder.weight is again.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        again.bert.embeddings.word_embeddings.weight[7] += 1.0  # still one tensor after loading
    assert torch.equal(again.mlm_head.decoder.weight[7], again.bert.embeddings.word_embeddings.weight[7])


@pytest.mark.parametrize("binary", [False, True], ids=["safetensors", "pytorch_model.bin"])
def test_bert_model_folders_both_ways(tmp_path, binary, tiny_config):
    hf_model = _randomise(transformers.BertModel(transformers.BertConfig(**tiny_config().to_dict())))
    hf_model.save_pretrained(tmp_path / "hf")
    if binary:
        (tmp_path / "hf" / "model.safetensors").unlink()
        torch.save(hf_model.state_dict(), tmp_path / "hf" / "pytorch_model.bin")
    ours = BertModel.from_pretrained(tmp_path / "hf")
    input_ids, token_type_ids, attention_mask = _batch(tiny_config().vocab_size)
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


def test_bert_model_reads_the_body_of_a_pretraining_folder(tmp_path, tiny_config):
    hf_model, folder = _hf_pretraining_folder(tiny_config, tmp_path)
    body = BertModel.from_pretrained(folder)
    input_ids, token_type_ids, attention_mask = _batch(tiny_config().vocab_size)
    with torch.no_grad():
        expected = hf_model.bert(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        _, pooled = body(input_ids, token_type_ids, attention_mask)
    torch.testing.assert_close(pooled, expected.pooler_output, atol=1e-5, rtol=0)


def test_a_folder_with_only_model_pt_points_to_load_pretrained(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config())
    torch.save(model.state_dict(), tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps(model.config.to_dict()))  # no model_type: BertConfig.to_dict()
    _raises(BertForPreTraining.from_pretrained, tmp_path, "model.safetensors", "load_pretrained")


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


def test_save_pretrained_with_tokenizer_writes_vocab(tmp_path, tiny_config):
    write_vocab(VOCAB, tmp_path / "v.txt")
    tokenizer = BertTokenizer(str(tmp_path / "v.txt"))
    model = BertForPreTraining(tiny_config(vocab_size=len(VOCAB)))
    model.save_pretrained(tmp_path / "m", tokenizer=tokenizer)
    assert (tmp_path / "m" / "vocab.txt").read_text(encoding="utf-8").split() == VOCAB
    assert BertTokenizer.from_pretrained(tmp_path / "m").vocab == tokenizer.vocab
    wrong = BertForPreTraining(tiny_config())
    with pytest.raises(ValueError, match="99"):
        wrong.save_pretrained(tmp_path / "w", tokenizer=tokenizer)


# ------------------------------------------------------------------------------------------------ bad folders
@pytest.fixture
def saved(tmp_path, tiny_config):
    torch.manual_seed(0)
    BertForPreTraining(tiny_config()).save_pretrained(tmp_path / "good")
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
    message = _raises(BertForPreTraining.from_pretrained, saved, "model.safetensors", "intermediate", "(37, 32)", "(64, 32)")
    assert "config.json" in message
    (saved / "config.json").write_text(json.dumps({**config, "vocab_size": 120}))
    _raises(BertModel.from_pretrained, saved, "word_embeddings")


def test_missing_weights_file_and_missing_heads(tmp_path, saved, tiny_config):
    (saved / "model.safetensors").unlink()
    _raises(BertForPreTraining.from_pretrained, saved, "model.safetensors", "pytorch_model.bin")
    BertModel(tiny_config()).save_pretrained(tmp_path / "body")
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
    _raises(BertTokenizer.from_pretrained, saved, "vocab.txt", "16 tokens", "vocab_size is 99")


def test_tokenizer_folder_without_vocab(tmp_path):
    (tmp_path / "t").mkdir()
    _raises(BertTokenizer.from_pretrained, tmp_path / "t", "vocab.txt")


def test_unsupported_tokenizer_options(tmp_path):
    write_vocab(VOCAB, tmp_path / "vocab.txt")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenize_chinese_chars": False}))
    _raises(BertTokenizer.from_pretrained, tmp_path, "tokenize_chinese_chars")


def test_hf_names_of_the_heads(tiny_config):
    model = BertForPreTraining(tiny_config())
    names = set(pretraining_to_hf_state_dict(model.state_dict()))
    hf_names = set(transformers.BertForPreTraining(transformers.BertConfig(**tiny_config().to_dict())).state_dict())
    hf_names -= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
                 "bert.embeddings.position_ids", "bert.embeddings.token_type_ids"}
    assert names == hf_names


def test_training_steps_match_transformers(tiny_config):
    """Same weights, same batches, same AdamW: five training steps give the same losses and weights.

    Forward parity alone would miss a wrong gradient (the tied decoder, the gather of masked positions,
    the NSP head on the pooler); here every update has to agree too.
    """
    hf_model = _randomise(transformers.BertForPreTraining(transformers.BertConfig(
        **tiny_config(dropout=0.0).to_dict(), attn_implementation="eager")))
    ours = BertForPreTraining(tiny_config(dropout=0.0))
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
        input_ids, token_type_ids, attention_mask = _batch(tiny_config().vocab_size)
        input_ids = torch.where(attention_mask.bool(), torch.randint(5, tiny_config().vocab_size, input_ids.shape,
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


# ------------------------------------------------------------------------------------------------ the book's model
ROOT = Path(__file__).resolve().parents[1]
BOOK_MODEL = ROOT / BOOK_MODEL_FOLDER
needs_book_model = pytest.mark.skipif(not (BOOK_MODEL / "model.safetensors").is_file(),
                                      reason=f"no {BOOK_MODEL_FOLDER} here (an sdist without the book)")


@needs_book_model
def test_the_book_model_is_found_in_the_repository():
    assert book_model_dir() == BOOK_MODEL
    assert all((BOOK_MODEL / name).is_file() for name in BOOK_MODEL_FILES)
    card = (BOOK_MODEL / "README.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in card and "中文" in card


@pytest.mark.skipif(not (ROOT / "_config.yml").is_file(), reason="no _config.yml here (an sdist without the book)")
def test_the_repository_is_named_once():
    """The download URL is built from REPOSITORY_URL and REPOSITORY_BRANCH, which must be _config.yml's."""
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    repository = re.search(r"^repository:\n((?:  .*\n)+)", config, re.M).group(1)
    assert re.search(r"^  url: (\S+)$", repository, re.M).group(1) == REPOSITORY_URL
    assert re.search(r"^  branch: (\S+)$", repository, re.M).group(1) == REPOSITORY_BRANCH
    assert checkpoints.BOOK_MODEL_URL == (f"https://raw.githubusercontent.com/{REPOSITORY_URL.split('github.com/')[1]}"
                                         f"/{REPOSITORY_BRANCH}/{BOOK_MODEL_FOLDER}")


def test_the_book_model_is_not_in_the_wheel():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    package_data = pyproject[pyproject.index("[tool.setuptools.package-data]"):].split("\n[", 1)[0]
    assert "safetensors" not in package_data and "models" not in package_data
    assert not list((ROOT / "bert_annotated").rglob("*.safetensors"))


@needs_book_model
@pytest.mark.parametrize("transformers_class", ["BertForPreTraining", "BertForMaskedLM"])
def test_the_book_model_gives_the_same_logits_in_transformers(transformers_class):
    model, tokenizer = load_book_model()
    pairs = [("He was born in 1950 and [MASK] in 2010.", "北京是中国的[MASK]都。"),
             ("The river flows into the sea.", None)]
    encoded = [tokenizer.encode(a, b, max_length=32, pad_to_max_length=True) for a, b in pairs]
    input_ids = torch.tensor([e["input_ids"] for e in encoded])  # (2, 32), the second one padded
    token_type_ids = torch.tensor([e["token_type_ids"] for e in encoded])
    attention_mask = torch.tensor([e["attention_mask"] for e in encoded])
    assert attention_mask[1].sum() < 32 and token_type_ids[0].max() == 1
    theirs = getattr(transformers, transformers_class).from_pretrained(BOOK_MODEL, dtype=torch.float32).eval()
    with torch.no_grad():
        mine = model(input_ids, token_type_ids, attention_mask)
        out = theirs(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
    real = attention_mask.bool()
    logits = out.prediction_logits if transformers_class == "BertForPreTraining" else out.logits
    torch.testing.assert_close(mine.mlm_logits[real], logits[real], atol=1e-4, rtol=0)
    if transformers_class == "BertForPreTraining":
        torch.testing.assert_close(mine.nsp_logits, out.seq_relationship_logits, atol=1e-4, rtol=0)


@pytest.fixture
def book_copy(tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in BOOK_MODEL_FILES:
        shutil.copyfile(BOOK_MODEL / name, folder / name)
    return folder


def _one_line_error(folder, file_name, *needles):
    with pytest.raises(ValueError) as error:
        load_book_model(folder)
    message = str(error.value)
    assert str(folder / file_name) in message and "\n" not in message, message
    for needle in needles:
        assert needle in message, message


@needs_book_model
def test_a_truncated_model_file_is_a_one_line_error(book_copy):
    data = (book_copy / "model.safetensors").read_bytes()
    (book_copy / "model.safetensors").write_bytes(data[:len(data) // 2])
    _one_line_error(book_copy, "model.safetensors", "cannot read")


@needs_book_model
def test_wrong_files_are_one_line_errors(book_copy):
    (book_copy / "model.safetensors").write_bytes(b"<html>404: Not Found</html>")  # what a bad download saves
    _one_line_error(book_copy, "model.safetensors", "cannot read")
    shutil.copyfile(BOOK_MODEL / "model.safetensors", book_copy / "model.safetensors")
    (book_copy / "config.json").write_text((BOOK_MODEL / "config.json").read_text()[:100])
    _one_line_error(book_copy, "config.json", "not a JSON file")
    shutil.copyfile(BOOK_MODEL / "config.json", book_copy / "config.json")
    lines = (BOOK_MODEL / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (book_copy / "vocab.txt").write_text("\n".join(lines[:1000]) + "\n", encoding="utf-8")
    _one_line_error(book_copy, "vocab.txt", "1000 tokens", "vocab_size is 30000")


@needs_book_model
def test_the_download_path_fetches_each_file_once(book_copy, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    folder = book_model_dir(cache_dir=cache, base_url=book_copy.as_uri())
    assert folder == cache / "bert-mini-bilingual"
    for name in BOOK_MODEL_FILES:
        assert (folder / name).read_bytes() == (BOOK_MODEL / name).read_bytes(), name
    assert not list(folder.glob("*.tmp"))
    model, tokenizer = load_book_model(folder)
    assert len(tokenizer) == model.config.vocab_size == 30000

    def no_network(*args, **kwargs):
        raise AssertionError("the cached files must not be downloaded again")
    monkeypatch.setattr(runtime.urllib.request, "urlopen", no_network)
    assert book_model_dir(cache_dir=cache, base_url="https://example.invalid/model") == folder
    monkeypatch.setenv("BERT_ANNOTATED_CACHE", str(cache))
    assert book_model_dir(cache_dir=cache) == folder


def test_a_failed_download_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError) as error:
        book_model_dir(cache_dir=tmp_path / "cache", base_url=(tmp_path / "nowhere").as_uri())
    message = str(error.value)
    assert str(tmp_path / "cache" / "bert-mini-bilingual" / "config.json") in message and "\n" not in message
    assert not list((tmp_path / "cache" / "bert-mini-bilingual").iterdir())  # nothing half-written stays


def test_a_short_download_is_an_error(tmp_path, monkeypatch):
    class ShortResponse(io.BytesIO):
        headers = {"Content-Length": "1000"}

    monkeypatch.setattr(runtime.urllib.request, "urlopen", lambda url, timeout: ShortResponse(b"{}" * 10))
    with pytest.raises(ValueError, match=r"config\.json: the download stopped after 20 of 1,000 bytes"):
        book_model_dir(cache_dir=tmp_path / "cache", base_url="https://example.invalid/model")
    assert not (tmp_path / "cache" / "bert-mini-bilingual" / "config.json").exists()


# --- hub_model_dir: Google's and Hugging Face's checkpoints from the Hub (chapter 09), on local folders ---------------

def _google_layout(tiny_config, folder: Path, with_safetensors: bool) -> "transformers.BertForPreTraining":
    """A folder laid out as Google's small BERTs are on the Hub: config.json, pytorch_model.bin, vocab.txt, no
    tokenizer settings (or, with_safetensors, a newer upload's model.safetensors instead of the pickle)."""
    reference = transformers.BertForPreTraining(transformers.BertConfig(**tiny_config().to_dict())).eval()
    _randomise(reference)
    reference.save_pretrained(folder)  # config.json and model.safetensors
    if not with_safetensors:  # the 2019 uploads: a pickled state dict with the TF checkpoints' LayerNorm names
        state = {re.sub(r"LayerNorm\.weight$", "LayerNorm.gamma", re.sub(r"LayerNorm\.bias$", "LayerNorm.beta", key)):
                 tensor for key, tensor in load_file(folder / "model.safetensors").items()}
        torch.save(state, folder / "pytorch_model.bin")
        (folder / "model.safetensors").unlink()
    write_vocab(VOCAB + [f"extra{i}" for i in range(tiny_config().vocab_size - len(VOCAB))], folder / "vocab.txt")
    (folder / "notes.md").write_text("not a file the loaders read\n")
    return reference


class _LocalHub:
    """Stands in for huggingface_hub.snapshot_download: copies the files that match allow_patterns from a local
    'repository' into one snapshot folder, and records what each call asked for."""

    def __init__(self, repository: Path, snapshot: Path):
        self.repository, self.snapshot, self.calls = repository, snapshot, []

    def __call__(self, repo_id, revision=None, allow_patterns=()):
        import fnmatch
        self.calls.append((repo_id, revision, list(allow_patterns)))
        self.snapshot.mkdir(parents=True, exist_ok=True)
        for path in self.repository.iterdir():
            if any(fnmatch.fnmatch(path.name, pattern) for pattern in allow_patterns):
                shutil.copy(path, self.snapshot / path.name)
        return str(self.snapshot)


@pytest.mark.parametrize("with_safetensors", [False, True])
def test_hub_model_dir_fetches_only_what_the_loaders_read(tmp_path, with_safetensors, tiny_config):
    repository = tmp_path / "repo"
    reference = _google_layout(tiny_config, repository, with_safetensors)
    hub = _LocalHub(repository, tmp_path / "snapshot")
    folder = checkpoints.hub_model_dir(checkpoints.GOOGLE_BERT_MINI, download=hub)
    weights = "model.safetensors" if with_safetensors else "pytorch_model.bin"
    assert sorted(path.name for path in folder.iterdir()) == sorted(["config.json", weights, "vocab.txt"])
    assert len(hub.calls) == (1 if with_safetensors else 2)  # the pickle only when no safetensors file exists
    assert all(call[0] == "google/bert_uncased_L-4_H-256_A-4" for call in hub.calls)
    tokenizer = BertTokenizer.from_pretrained(folder)
    assert tokenizer.tokenize("The Dog BARKS") == ["the", "dog", "bark", "##s"]  # uncased without tokenizer_config
    model = BertForPreTraining.from_pretrained(folder)
    ids = torch.tensor([[2, 5, 6, 7, 8, 3, 9, 3]])
    segments = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 1]])
    with torch.no_grad():
        theirs = reference(input_ids=ids, token_type_ids=segments)
        mine = model(ids, segments)
    assert torch.allclose(mine.mlm_logits, theirs.prediction_logits, atol=1e-5)
    assert torch.allclose(mine.nsp_logits, theirs.seq_relationship_logits, atol=1e-5)


def test_hub_model_dir_refuses_a_repository_without_weights(tmp_path, tiny_config):
    repository = tmp_path / "repo"
    repository.mkdir()
    (repository / "config.json").write_text(json.dumps({"model_type": "bert", **tiny_config().to_dict()}))
    hub = _LocalHub(repository, tmp_path / "snapshot")
    with pytest.raises(ValueError, match=r"^someone/not-bert: no config.json with model.safetensors or pytorch_model"):
        checkpoints.hub_model_dir("someone/not-bert", download=hub)
    assert [call[2] for call in hub.calls][-1] == ["pytorch_model.bin"]


def test_hub_model_dir_without_huggingface_hub_names_the_package(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_hub(name, *args, **kwargs):
        if name.startswith("huggingface_hub"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    with pytest.raises(ValueError, match="pip install huggingface_hub"):
        checkpoints.hub_model_dir(checkpoints.GOOGLE_BERT_MINI)
