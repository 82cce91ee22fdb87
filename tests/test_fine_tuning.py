"""Chapter 09: the sequence classifier, the review datasets and the fine-tuning loop."""
from __future__ import annotations

import pytest
import torch

import bert_annotated  # noqa: F401  (attaches from_pretrained / save_pretrained)
from bert_annotated import BertConfig, BertForPreTraining, BertModel, BertTokenizer, write_vocab
from bert_annotated.fine_tuning import (
    BertForSequenceClassification,
    Review,
    accuracy,
    encode_batch,
    fine_tune,
    predict,
    read_reviews,
)

TINY = dict(vocab_size=40, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=32)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_review_datasets_are_balanced_fixed_and_disjoint(language):
    train, test = read_reviews(language)
    assert (len(train), len(test)) == (250, 62)
    assert sum(r.label for r in train) == 125 and sum(r.label for r in test) == 31
    texts = [r.text for r in train + test]
    assert len(set(texts)) == len(texts) and all(texts)
    assert read_reviews(language) == (train, test)  # deterministic
    if language == "zh":
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in text) for text in texts)


def test_read_reviews_errors(tmp_path):
    with pytest.raises(ValueError, match="language"):
        read_reviews("fr")
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\ttext\n1\tgood\n2\tnot a label\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3"):
        read_reviews(path=bad)
    bad.write_text("1\tno header\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        read_reviews(path=bad)


def test_classifier_shapes_loss_and_label_check():
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**TINY), num_labels=3)
    ids = torch.randint(5, 40, (4, 6))
    mask = torch.ones_like(ids)
    mask[0, 4:] = 0
    out = model(ids, attention_mask=mask, labels=torch.tensor([0, 2, 1, 1]))
    assert out.logits.shape == (4, 3) and out.loss.ndim == 0
    model.eval()
    expected = torch.nn.functional.cross_entropy(model(ids, attention_mask=mask).logits, torch.tensor([0, 2, 1, 1]))
    assert torch.isclose(model(ids, attention_mask=mask, labels=torch.tensor([0, 2, 1, 1])).loss, expected)
    with pytest.raises(ValueError, match="labels"):
        model(ids, labels=torch.tensor([0, 3, 1, 1]))
    with pytest.raises(ValueError, match="num_labels"):
        BertForSequenceClassification(BertConfig(**TINY), num_labels=1)
    assert abs(model.classifier.weight.std().item() - 0.02) < 0.01 and torch.all(model.classifier.bias == 0)


@pytest.mark.parametrize("kind", ["pretraining", "body"])
def test_from_pretrained_copies_the_body_only(tmp_path, kind):
    torch.manual_seed(0)
    source = BertForPreTraining(BertConfig(**TINY)) if kind == "pretraining" else BertModel(BertConfig(**TINY))
    source.save_pretrained(tmp_path / "ckpt")
    model = BertForSequenceClassification.from_pretrained(tmp_path / "ckpt", num_labels=2)
    body = source.bert if kind == "pretraining" else source
    for (name, a), (_, b) in zip(body.state_dict().items(), model.bert.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="config.json"):
        BertForSequenceClassification.from_pretrained(tmp_path / "nothing-here")


def test_transformers_body_matches(tmp_path):
    transformers = pytest.importorskip("transformers")
    hf = transformers.BertModel(transformers.BertConfig(**TINY)).eval()
    hf.save_pretrained(tmp_path / "hf")
    model = BertForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    ids = torch.randint(5, 40, (2, 7))
    with torch.no_grad():
        pooled = model.bert(ids)[1]
        torch.testing.assert_close(pooled, hf(input_ids=ids).pooler_output, atol=1e-5, rtol=0)


def _toy_task(tmp_path):
    """Sentiment decided by one word: 'good' or 'bad', among neutral filler words."""
    words = ["good", "bad"] + [f"w{i}" for i in range(20)]
    write_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words], tmp_path / "vocab.txt")
    tokenizer = BertTokenizer(str(tmp_path / "vocab.txt"))
    generator = torch.Generator().manual_seed(0)
    reviews = []
    for index in range(160):
        filler = [f"w{int(i)}" for i in torch.randint(0, 20, (5,), generator=generator)]
        label = index % 2
        filler.insert(int(torch.randint(0, 6, (1,), generator=generator)), "good" if label else "bad")
        reviews.append(Review(" ".join(filler), label))
    return tokenizer, reviews[:120], reviews[120:]


def test_fine_tune_learns_a_separable_task(tmp_path):
    tokenizer, train, test = _toy_task(tmp_path)
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**{**TINY, "vocab_size": len(tokenizer)}))
    history = fine_tune(model, tokenizer, train, test, epochs=8, batch_size=16, lr=2e-3, seed=0)
    assert [record["epoch"] for record in history] == list(range(9)) and history[0]["train_loss"] is None
    assert history[-1]["test_accuracy"] >= 0.95, history
    assert history[-1]["train_loss"] < history[1]["train_loss"]
    assert accuracy(model, tokenizer, test) == history[-1]["test_accuracy"]
    probabilities = predict(model, tokenizer, ["w1 good w3", "w2 bad w4"])
    assert probabilities.shape == (2, 2) and torch.allclose(probabilities.sum(-1), torch.ones(2))
    assert probabilities[0, 1] > 0.5 > probabilities[1, 1]


def test_fine_tune_is_reproducible_and_validates(tmp_path):
    tokenizer, train, test = _toy_task(tmp_path)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(**{**TINY, "vocab_size": len(tokenizer)}))
        runs.append(fine_tune(model, tokenizer, train[:32], test, epochs=2, batch_size=8, lr=1e-3, seed=3))
    assert runs[0] == runs[1]
    with pytest.raises(ValueError):
        fine_tune(model, tokenizer, [], test)


def test_encode_batch_pads_and_truncates(tmp_path):
    tokenizer, _, _ = _toy_task(tmp_path)
    batch = encode_batch(tokenizer, ["good", "w1 w2 w3 w4 w5 w6 w7 w8"], max_length=6)
    assert batch["input_ids"].shape == (2, 6)
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0]
    assert batch["input_ids"][0, 3:].tolist() == [tokenizer.pad_token_id] * 3
    assert batch["input_ids"][1, -1].item() == tokenizer.sep_token_id
