"""Chapter 10 and appendix G (bert_annotated.fine_tuning): the classifier, batches, fine-tuning, metrics, the runner."""
from __future__ import annotations

import json

import pytest
import torch

from bert_annotated.classification_data import Example
from bert_annotated.fine_tuning import (
    accuracy_and_f1,
    bag_of_words_baseline,
    collate,
    encode_examples,
    fine_tune,
    length_batches,
    predict_labels,
    run_experiment,
    scored_epochs,
    select_lr,
)
from bert_annotated.model import BertForPreTraining, BertForSequenceClassification, BertModel
from bert_annotated.tokenization import BertTokenizer, write_vocab


def test_classifier_shapes_loss_and_label_check(tiny_config):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(), num_labels=3)
    ids = torch.randint(5, 40, (4, 6))
    out = model(ids, labels=torch.tensor([0, 2, 1, 1]))
    assert out.logits.shape == (4, 3) and out.loss.ndim == 0
    with pytest.raises(ValueError, match="labels"):
        model(ids, labels=torch.tensor([0, 3, 1, 1]))
    with pytest.raises(ValueError, match="num_labels"):
        BertForSequenceClassification(tiny_config(), num_labels=1)
    assert abs(model.classifier.weight.std().item() - 0.02) < 0.01 and torch.all(model.classifier.bias == 0)


@pytest.mark.parametrize("kind", ["pretraining", "body"])
def test_from_pretrained_copies_the_body_only(tmp_path, kind, tiny_config):
    torch.manual_seed(0)
    source = BertForPreTraining(tiny_config()) if kind == "pretraining" else BertModel(tiny_config())
    source.save_pretrained(tmp_path / "ckpt")
    model = BertForSequenceClassification.from_pretrained(tmp_path / "ckpt", num_labels=2)
    body = source.bert if kind == "pretraining" else source
    for (name, a), (_, b) in zip(body.state_dict().items(), model.bert.state_dict().items()):
        assert torch.equal(a, b), name


def _toy_tokenizer(tmp_path) -> BertTokenizer:
    words = ["good", "bad"] + [f"w{i}" for i in range(20)]
    write_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words], tmp_path / "vocab.txt")
    return BertTokenizer(str(tmp_path / "vocab.txt"))


def _toy_examples(count: int, seed: int = 0) -> list:
    """Sentiment decided by one word, 'good' or 'bad', among neutral filler words: a separable task."""
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for index in range(count):
        words = [f"w{int(i)}" for i in torch.randint(0, 20, (5,), generator=generator)]
        words.insert(int(torch.randint(0, 6, (1,), generator=generator)), "good" if index % 2 else "bad")
        examples.append(Example(" ".join(words), None, index % 2))
    return examples


def test_batches_pad_and_group_by_length(tmp_path):
    tokenizer = _toy_tokenizer(tmp_path)
    encoded = encode_examples(tokenizer, [Example("good", None, 1), Example("w1 w2 w3 w4 w5 w6 w7", "bad", 0)], 8)
    assert len(encoded[1]["input_ids"]) == 8 and encoded[1]["token_type_ids"][-2:] == [1, 1]  # B kept, A cut
    batch = collate(encoded)
    assert batch["input_ids"].shape == (2, 8) and batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert batch["labels"].tolist() == [1, 0]
    batches = length_batches([5, 1, 4, 2, 3, 6], 2)
    assert batches == [[1, 3], [4, 2], [0, 5]]
    shuffled = length_batches(list(range(100)), 8, __import__("random").Random(0))
    assert sorted(i for b in shuffled for i in b) == list(range(100))


def test_fine_tune_learns_a_separable_task_and_keeps_the_best_epoch(tmp_path, tiny_config):
    tokenizer = _toy_tokenizer(tmp_path)
    train, held_out = (encode_examples(tokenizer, _toy_examples(n, seed), 16) for n, seed in ((160, 0), (60, 1)))
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(vocab_size=len(tokenizer)))
    result = fine_tune(model, train, held_out, epochs=6, batch_size=16, lr=2e-3, seed=0)
    assert [record["epoch"] for record in result.history] == sorted(scored_epochs(6))
    assert result.held_out_accuracy >= 0.95, result.history
    assert result.held_out_accuracy == max(record["held_out_accuracy"] for record in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    labels = [item["label"] for item in held_out]
    assert accuracy_and_f1(predict_labels(model, held_out), labels)[0] == result.held_out_accuracy
    with pytest.raises(ValueError, match="held-out"):
        fine_tune(model, train, [])


def test_fine_tune_adds_epochs_up_to_min_updates_and_scores_five_of_them(tmp_path, tiny_config):
    tokenizer = _toy_tokenizer(tmp_path)
    train, held_out = (encode_examples(tokenizer, _toy_examples(n, seed), 16) for n, seed in ((32, 0), (20, 1)))
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(vocab_size=len(tokenizer)))
    result = fine_tune(model, train, held_out, epochs=1, batch_size=16, lr=1e-3, min_updates=19, seed=0)
    assert result.updates == 20  # 2 batches per epoch: 10 epochs
    assert [record["epoch"] for record in result.history] == [2, 4, 6, 8, 10]
    assert result.held_out_loss == next(r["held_out_loss"] for r in result.history if r["epoch"] == result.best_epoch)
    assert scored_epochs(3) == {1, 2, 3} and scored_epochs(7) == {2, 3, 5, 6, 7}


def test_bag_of_words_learns_the_separable_task(tmp_path):
    tokenizer = _toy_tokenizer(tmp_path)
    train, held_out, dev = (encode_examples(tokenizer, _toy_examples(n, seed), 16)
                            for n, seed in ((80, 0), (40, 1), (40, 2)))
    result = bag_of_words_baseline(train, held_out, dev, len(tokenizer))
    assert result["dev_accuracy"] == 1.0 and result["l2"] in (1e-4, 1e-3, 1e-2)


def test_accuracy_and_f1():
    accuracy, f1 = accuracy_and_f1(torch.tensor([1, 1, 0, 0]), [1, 0, 0, 1])
    assert accuracy == 0.5 and f1 == 0.5
    assert accuracy_and_f1(torch.tensor([0, 0]), [0, 0]) == (1.0, 0.0)


def test_select_lr_uses_held_out_accuracy_only():
    records = [{"start": "scratch", "train_examples": 10, "seed": 0, "lr": lr, "held_out_accuracy": h,
                "held_out_examples": 100, "dev_accuracy": d} for lr, h, d in ((1e-4, 0.7, 0.9), (3e-4, 0.8, 0.5))]
    assert select_lr(records, "scratch", 10, (0,)) == 3e-4
    with pytest.raises(ValueError, match="no search runs"):
        select_lr(records, "pretrained", 10, (0,))


def test_select_lr_averages_seeds_and_breaks_ties_by_held_out_loss():
    def run(lr, seed, accuracy, loss):
        return {"start": "scratch", "train_examples": 10, "seed": seed, "lr": lr, "held_out_examples": 50,
                "held_out_accuracy": accuracy, "held_out_loss": loss}
    # 1e-4 wins seed 0 by more than the other rate wins seed 1: the mean decides, not the first seed
    records = [run(1e-4, 0, 0.80, 0.5), run(1e-4, 1, 0.70, 0.6), run(3e-4, 0, 0.70, 0.4), run(3e-4, 1, 0.72, 0.4)]
    assert select_lr(records, "scratch", 10, (0, 1)) == 1e-4
    # within one held-out example (0.02) of the best: a tie, and the lower held-out loss wins, not the order
    tied = [run(1e-4, s, 0.56, 0.69) for s in (0, 1)] + [run(3e-5, s, 0.55, 0.68) for s in (0, 1)]
    assert select_lr(tied, "scratch", 10, (0, 1)) == 3e-5
    assert select_lr(tied + [run(3e-4, 0, 0.9, 0.1)], "scratch", 10, (0, 1)) == 3e-5  # one seed only: not a candidate
    with pytest.raises(ValueError, match="no search runs"):
        select_lr(tied, "scratch", 10, (2,))


def test_run_experiment_writes_records_and_resumes(tmp_path, tiny_config):
    tokenizer = _toy_tokenizer(tmp_path / "model")
    torch.manual_seed(0)
    BertForPreTraining(tiny_config(vocab_size=len(tokenizer))).save_pretrained(
        tmp_path / "model", tokenizer=tokenizer)
    rows = ["sentence\tlabel"] + [f"{e.text_a}\t{e.label}" for e in _toy_examples(60)]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "data" / "dev.tsv").write_text("\n".join(rows[:21]) + "\n", encoding="utf-8")
    arguments = dict(task="sst2", data_folder=tmp_path / "data", model_folder=tmp_path / "model",
                     output=tmp_path / "out.json", sizes=[8, 16], seeds=(0, 1), lrs=(1e-3, 3e-3), epochs=1,
                     batch_size=8, held_out=10, check_rows=False, command="pytest", log=lambda line: None,
                     min_updates=3, search_seeds=2)
    results = run_experiment(**arguments)
    records = results["records"]
    assert len(records) == 2 * 2 * 2 + 2 * 2 * 3 - 2 * 2  # search (2 starts x 2 seeds x 2 lrs) + curve, reused
    assert all(r["updates"] >= 3 for r in records if r["start"] != "bag-of-words")
    for record in records:
        assert {"task", "start", "seed", "train_examples", "device", "dev_accuracy", "command", "date"} <= set(record)
        assert record["held_out_examples"] == 10 and record["dev_examples"] == 20
    assert json.loads((tmp_path / "out.json").read_text()) == results
    assert run_experiment(**arguments)["records"] == records  # everything done: nothing runs again
    with pytest.raises(ValueError, match="other settings"):
        run_experiment(**{**arguments, "epochs": 2})
    grown = run_experiment(**{**arguments, "sizes": [8, 16, 32]})  # a new size: the search stays where it was
    assert grown["search_size"] == 16 and len(grown["records"]) == len(records) + 2 * 3
    assert all(r["lr"] == grown["selected_lr"][r["start"]] for r in grown["records"]
               if r["train_examples"] == 32 and r["start"] != "bag-of-words")
    with pytest.raises(ValueError, match="searched learning rates at 16 examples, not 8"):
        run_experiment(**{**arguments, "search_size": 8})
