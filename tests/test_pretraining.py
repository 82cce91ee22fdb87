"""Chapter 07, pretraining: model, corpus readers, data pipeline, optimisation, checkpoints and resume."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import pytest
import torch

from bert_annotated.masked_lm import IGNORE_INDEX, MaskedLMMasker
from bert_annotated.model import BertConfig
from bert_annotated.pretraining import (
    CHECKPOINT_FILE,
    BertForPreTraining,
    Corpus,
    PretrainingCollator,
    PretrainingDataset,
    TrainingConfig,
    TrainingInterrupted,
    atomic_save,
    build_optimizer,
    build_scheduler,
    build_vocab,
    check_output_dir,
    corpus_files,
    create_pretraining_examples,
    detect_corpus_format,
    embedded_corpus_paths,
    evaluate_pretraining,
    load_checkpoint,
    load_pretrained,
    parameter_groups,
    pretrain,
    read_corpus,
    read_metrics,
    resolve_precision,
    split_sentences,
    train_step,
    warmup_linear_decay,
)
from bert_annotated.tokenization import BertTokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
CPU = torch.device("cpu")


def tiny_config(vocab_size: int, dropout: float = 0.1) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)


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


# ------------------------------------------------------------------ model
def test_model_outputs_shapes_and_losses():
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(500, dropout=0.0)).eval()
    assert model.mlm_head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    input_ids = torch.randint(5, 500, (4, 10))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 7:] = 0

    bare = model(input_ids, attention_mask=attention_mask)
    assert bare.mlm_logits.shape == (4, 10, 500) and bare.nsp_logits.shape == (4, 2)
    assert bare.loss is None and bare.mlm_loss is None and bare.nsp_accuracy is None

    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[:, 3] = input_ids[:, 3]
    labels[1, 5] = input_ids[1, 5]
    nsp_labels = torch.tensor([0, 1, 1, 0])
    out = model(input_ids, attention_mask=attention_mask, mlm_labels=labels, next_sentence_labels=nsp_labels)
    assert out.mlm_logits.shape == (5, 500)  # only the 5 predicted positions
    # the logits at masked positions are the full logits gathered there
    torch.testing.assert_close(out.mlm_logits, bare.mlm_logits[labels != IGNORE_INDEX])
    expected_mlm = torch.nn.functional.cross_entropy(bare.mlm_logits[labels != IGNORE_INDEX], labels[labels != IGNORE_INDEX])
    expected_nsp = torch.nn.functional.cross_entropy(bare.nsp_logits, nsp_labels)
    torch.testing.assert_close(out.mlm_loss, expected_mlm)
    torch.testing.assert_close(out.nsp_loss, expected_nsp)
    torch.testing.assert_close(out.loss, expected_mlm + expected_nsp)
    assert out.nsp_accuracy.item() == (bare.nsp_logits.argmax(-1) == nsp_labels).float().mean().item()
    assert abs(out.mlm_loss.item() - math.log(500)) < 0.5  # untrained: close to uniform

    only_nsp = model(input_ids, next_sentence_labels=nsp_labels)
    torch.testing.assert_close(only_nsp.loss, only_nsp.nsp_loss)
    nothing_masked = model(input_ids, mlm_labels=torch.full_like(input_ids, IGNORE_INDEX), next_sentence_labels=nsp_labels)
    assert nothing_masked.mlm_loss.item() == 0.0 and nothing_masked.mlm_logits.shape == (0, 500)
    nothing_masked.loss.backward()  # still differentiable


def test_tied_decoder_gets_both_gradients():
    model = BertForPreTraining(tiny_config(300))
    labels = torch.full((2, 6), IGNORE_INDEX)
    labels[:, 2] = 7
    model(torch.randint(5, 300, (2, 6)), mlm_labels=labels, next_sentence_labels=torch.tensor([0, 1])).loss.backward()
    grad = model.bert.embeddings.word_embeddings.weight.grad
    assert grad is model.mlm_head.decoder.weight.grad
    assert grad[299].abs().sum() > 0  # an id absent from the input still gets a gradient through the decoder


# ------------------------------------------------------------------ optimisation
def test_parameter_groups_exclude_bias_and_layernorm():
    model = BertForPreTraining(tiny_config(100))
    decay, no_decay = parameter_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert not decay_names & no_decay_names
    assert decay_names | no_decay_names == set(names.values())
    assert all(n.endswith("bias") or "layer_norm" in n for n in no_decay_names)
    assert "mlm_head.bias" in no_decay_names and "bert.encoder.layers.0.attention_layer_norm.weight" in no_decay_names
    assert "bert.embeddings.word_embeddings.weight" in decay_names and "nsp_head.seq_relationship.weight" in decay_names
    optimizer = build_optimizer(model, lr=3e-4, weight_decay=0.05, betas=(0.8, 0.99))
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.05, 0.0]
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.99) and optimizer.param_groups[0]["lr"] == 3e-4


def test_no_decay_parameters_are_not_shrunk():
    model = BertForPreTraining(tiny_config(100))
    optimizer = build_optimizer(model, lr=0.1, weight_decay=0.5)
    layer_norm = model.bert.embeddings.layer_norm.weight
    word = model.bert.embeddings.word_embeddings.weight
    before_ln, before_word = layer_norm.detach().clone(), word.detach().clone()
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)  # zero gradients: only the decoupled weight decay moves weights
    optimizer.step()
    assert torch.equal(layer_norm, before_ln)
    torch.testing.assert_close(word, before_word * (1 - 0.1 * 0.5))


def test_schedule_warmup_then_linear_decay_and_lr_is_used():
    assert [warmup_linear_decay(s, 4, 12) for s in range(12)] == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])
    assert warmup_linear_decay(12, 4, 12) == 0.0 and warmup_linear_decay(0, 0, 10) == 1.0
    model = torch.nn.Linear(2, 2)
    for lr in (1e-4, 5e-3):
        optimizer = build_optimizer(model, lr=lr)
        scheduler = build_scheduler(optimizer, warmup_steps=4, total_steps=12)
        used = []
        for _ in range(12):
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert max(used) == pytest.approx(lr) and used[3] == pytest.approx(lr)  # --lr is the peak
        assert used[0] == pytest.approx(lr / 4) and used[-1] == pytest.approx(lr / 8)


def test_gradient_accumulation_equals_one_big_batch(dataset, collate, tokenizer):
    whole = collate([dataset[i] for i in range(8)])
    parts = [{k: v[:3] for k, v in whole.items()}, {k: v[3:] for k, v in whole.items()}]
    assert int((parts[0]["mlm_labels"] != IGNORE_INDEX).sum()) != int((parts[1]["mlm_labels"] != IGNORE_INDEX).sum())

    def weights_after(micro_batches, max_grad_norm=1e9):
        torch.manual_seed(0)
        model = BertForPreTraining(tiny_config(len(tokenizer), dropout=0.0))
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)  # the update is the gradient itself
        scheduler = build_scheduler(optimizer, 0, 1)
        stats = train_step(model, micro_batches, optimizer, scheduler, torch.amp.GradScaler("cpu", enabled=False),
                           CPU, max_grad_norm=max_grad_norm)
        return torch.cat([p.detach().flatten() for p in model.parameters()]), stats

    big, big_stats = weights_after([whole])
    accumulated, accumulated_stats = weights_after(parts)
    assert (big - accumulated).abs().max() < 1e-5
    torch.testing.assert_close(big_stats, accumulated_stats, rtol=1e-5, atol=1e-4)
    clipped, clipped_stats = weights_after(parts, max_grad_norm=0.5)
    assert clipped_stats[7].item() > 0.5  # the norm before clipping is reported
    assert not torch.allclose(clipped, accumulated)


def test_fp16_style_loss_scaling_is_undone_before_clipping(dataset, collate, tokenizer):
    batch = collate([dataset[i] for i in range(4)])

    def weights_after(scaler):
        torch.manual_seed(0)
        model = BertForPreTraining(tiny_config(len(tokenizer), dropout=0.0))
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        train_step(model, [batch], optimizer, build_scheduler(optimizer, 0, 1), scaler, CPU, max_grad_norm=1.0)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    plain = weights_after(torch.amp.GradScaler("cpu", enabled=False))
    scaled = weights_after(torch.amp.GradScaler("cpu", init_scale=2.0 ** 12))
    assert (plain - scaled).abs().max() < 1e-5


def test_precision_choice():
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", CPU)


def test_bf16_autocast_step_on_cpu(dataset, collate, tokenizer):
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(len(tokenizer)))
    optimizer = build_optimizer(model, lr=1e-3)
    stats = train_step(model, [collate([dataset[i] for i in range(4)])], optimizer, build_scheduler(optimizer, 0, 5),
                       torch.amp.GradScaler("cpu", enabled=False), CPU, precision="bf16")
    assert torch.isfinite(stats).all() and all(p.dtype == torch.float32 for p in model.parameters())


# ------------------------------------------------------------------ checkpoints
def test_atomic_save_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.pt"
    atomic_save({"w": torch.ones(2)}, target)
    real_save = torch.save

    def crash_after_writing(obj, file):
        real_save(obj, file)
        raise KeyboardInterrupt  # Ctrl-C in the middle of a save

    monkeypatch.setattr(torch, "save", crash_after_writing)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"w": torch.zeros(2)}, target)
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left
    atomic_save({"w": torch.zeros(2)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.zeros(2))


def test_load_checkpoint_rejects_other_files(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read this checkpoint"):
        load_checkpoint(tmp_path)
    torch.save({"model": {}}, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(ValueError, match="not a bert_annotated pretraining checkpoint"):
        load_checkpoint(tmp_path)


def _run(corpus, tokenizer, output_dir, max_steps=8, resume=None, stop_after=None, **overrides):
    def interrupt(step, record):
        if step == stop_after:
            raise KeyboardInterrupt  # what Ctrl-C does between two steps

    settings = dict(seq_len=48, batch_size=8, log_every=1, lr=1e-3, valid_fraction=0.1, device="cpu", progress=False)
    config = TrainingConfig(output_dir=str(output_dir), max_steps=max_steps, **{**settings, **overrides})
    return pretrain(corpus, tokenizer, tiny_config(len(tokenizer)), config, resume=resume,
                    on_step=interrupt if stop_after else None)


def test_resume_reproduces_the_uninterrupted_run_exactly(corpus, tokenizer, tmp_path):
    straight = _run(corpus, tokenizer, tmp_path / "straight", max_steps=10, eval_every=3)
    with pytest.raises(TrainingInterrupted) as interrupted:
        _run(corpus, tokenizer, tmp_path / "resumed", max_steps=10, eval_every=3, stop_after=5)
    assert interrupted.value.step == 5 and Path(interrupted.value.checkpoint_path).name == CHECKPOINT_FILE
    checkpoint = load_checkpoint(tmp_path / "resumed")
    assert checkpoint["position"]["step"] == 5
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "position", "model_config", "training_config"} <= set(checkpoint)
    assert {"python", "torch"} <= set(checkpoint["rng"])
    assert not any(isinstance(v, torch.nn.Module) for v in checkpoint.values())  # state, not pickled modules

    resumed = _run(corpus, tokenizer, tmp_path / "resumed", max_steps=10, eval_every=3, resume=tmp_path / "resumed")
    straight_records, resumed_records = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "resumed")
    assert [r["step"] for r in resumed_records] == [r["step"] for r in straight_records]  # nothing logged twice
    for a, b in zip(straight_records, resumed_records):
        for key in ("loss", "mlm_loss", "nsp_loss", "mlm_acc", "nsp_acc"):
            assert abs(a[key] - b[key]) <= 1e-6, (a["step"], key, a[key], b[key])
        if a["split"] == "train":
            assert a["lr"] == b["lr"]
    for name, tensor in straight.model.state_dict().items():
        torch.testing.assert_close(tensor, resumed.model.state_dict()[name], rtol=0, atol=1e-6)


def test_resume_with_different_settings_is_refused(corpus, tokenizer, tmp_path):
    _run(corpus, tokenizer, tmp_path / "run", max_steps=2)
    with pytest.raises(ValueError, match="batch_size=8 there but 4 now"):
        config = TrainingConfig(output_dir=str(tmp_path / "run"), seq_len=48, batch_size=4, max_steps=4,
                                device="cpu", progress=False)
        pretrain(corpus, tokenizer, tiny_config(len(tokenizer)), config, resume=tmp_path / "run")
    with pytest.raises(ValueError, match="hidden_size=32 there but 64 now"):
        config = TrainingConfig(output_dir=str(tmp_path / "run"), seq_len=48, batch_size=8, max_steps=4, lr=1e-3,
                                valid_fraction=0.1, device="cpu", progress=False)
        bigger = dataclasses.replace(tiny_config(len(tokenizer)), hidden_size=64, intermediate_size=128)
        pretrain(corpus, tokenizer, bigger, config, resume=tmp_path / "run")


def test_output_dir_with_another_run_is_refused(tmp_path):
    check_output_dir(tmp_path / "new")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="already holds another run"):
        check_output_dir(tmp_path / "old")
    check_output_dir(tmp_path / "old", resuming=True)


def test_tiny_training_run_lowers_the_loss_and_saves_a_loadable_model(corpus, tokenizer, tmp_path):
    result = _run(corpus, tokenizer, tmp_path / "run", max_steps=60, log_every=10, eval_every=30, batch_size=16, lr=2e-3)
    train = [r for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    valid = [r for r in read_metrics(tmp_path / "run") if r["split"] == "valid"]
    assert [r["step"] for r in train] == [10, 20, 30, 40, 50, 60] and [r["step"] for r in valid] == [30, 60]
    assert set(train[0]) >= {"step", "lr", "loss", "mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc", "tokens_per_second"}
    assert train[-1]["mlm_loss"] < train[0]["mlm_loss"] - 0.5
    assert train[-1]["mlm_loss"] < math.log(len(tokenizer)) - 0.7  # well below a uniform guess
    assert valid[-1]["mlm_loss"] < valid[0]["mlm_loss"]
    assert max(r["lr"] for r in train) <= 2e-3 and train[0]["tokens_per_second"] > 0
    for name in ("loss.png", "accuracy.png", "model.pt", "config.json", "vocab.txt", "run.json"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    assert (tmp_path / "run" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 60 and summary["device"] == "cpu" and summary["wall_seconds"] > 0
    assert summary["val_mlm_acc"] == valid[-1]["mlm_acc"] and summary["val_nsp_acc"] == valid[-1]["nsp_acc"]
    assert summary["tokens_per_second"] == train[-1]["tokens_per_second"]
    assert summary["config"]["hidden_size"] == result.model.config.hidden_size
    model, loaded_tokenizer = load_pretrained(tmp_path / "run")
    assert len(loaded_tokenizer) == len(tokenizer)
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name])


# ------------------------------------------------------------------ data
def test_collate_pads_dynamically_and_masks_deterministically(dataset, collate):
    items = [dataset[i] for i in (0, 5, 9)]
    lengths = [len(item["input_ids"]) for item in items]
    batch = collate(items)
    assert batch["input_ids"].shape == (3, max(lengths)) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].sum(1).tolist() == lengths
    for row, item in enumerate(items):
        length = lengths[row]
        assert (batch["input_ids"][row, length:] == 0).all()  # [PAD]
        assert torch.equal(batch["token_type_ids"][row, :length], item["token_type_ids"].long())
        original = item["input_ids"].long()
        chosen = batch["mlm_labels"][row, :length] != IGNORE_INDEX
        assert torch.equal(batch["mlm_labels"][row, :length][chosen], original[chosen])
        assert torch.equal(batch["input_ids"][row, :length][~chosen], original[~chosen])
    assert (batch["mlm_labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert batch["next_sentence_labels"].tolist() == [item["next_sentence_label"] for item in items]
    assert torch.equal(collate(items)["mlm_labels"], batch["mlm_labels"])  # same batch, same epoch: same mask
    collate.epoch = 3
    try:
        assert not torch.equal(collate(items)["mlm_labels"], batch["mlm_labels"])  # another epoch: a fresh mask
    finally:
        collate.epoch = 0


def test_loader_workers_do_not_change_the_batches(dataset, collate):
    def first_batches(num_workers):
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=collate, num_workers=num_workers)
        iterator = iter(loader)
        return [next(iterator) for _ in range(3)]

    for a, b in zip(first_batches(0), first_batches(2)):
        for key in a:
            assert torch.equal(a[key], b[key])


def test_dataset_holds_the_examples_as_ids(corpus, tokenizer):
    examples = create_pretraining_examples(corpus, tokenizer, seq_len=64, seed=1)
    data = PretrainingDataset(examples, tokenizer)
    assert len(data) == len(examples) > 100
    item = data[7]
    assert tokenizer.convert_ids_to_tokens(item["input_ids"].tolist()) == [
        t if t in tokenizer.vocab else "[UNK]" for t in examples[7].tokens]
    assert item["next_sentence_label"] == examples[7].label
    assert max(len(e.tokens) for e in examples) <= 64
    # chapter 06 makes every one-sentence chunk NotNext (as Google does), so NotNext is a bit above half
    assert 0.45 < data.next_sentence_labels.float().mean().item() < 0.75


# ------------------------------------------------------------------ readers and splitter
def test_split_sentences_english():
    text = ("Mr. Smith paid $3.50 for e.g. apples at 9 a.m. on Monday. The U.S. economy grew by 2.5 percent! "
            "Did J. R. R. Tolkien know? He said \"Stop.\" Then he left... Fine.")
    assert split_sentences(text) == [
        "Mr. Smith paid $3.50 for e.g. apples at 9 a.m. on Monday.",
        "The U.S. economy grew by 2.5 percent!",
        "Did J. R. R. Tolkien know?",
        "He said \"Stop.\"",
        "Then he left...",
        "Fine.",
    ]
    assert split_sentences("Version 3.14 is out.Really") == ["Version 3.14 is out.Really"]
    assert split_sentences("") == [] and split_sentences(" \t ") == []
    started = time.perf_counter()
    assert len(split_sentences("Short one. " * 200_000 + "X" * 100_000 + " end.")) == 200_001  # linear, not quadratic
    assert time.perf_counter() - started < 10


def test_split_sentences_chinese():
    text = "今天天气很好。我们去公园吧！你来吗？“好的。”他说。「走吧！」她答道。圆周率约为3.14"
    assert split_sentences(text) == ["今天天气很好。", "我们去公园吧！", "你来吗？", "“好的。”", "他说。", "「走吧！」",
                                     "她答道。", "圆周率约为3.14"]
    assert split_sentences("BERT 很好用。It works. 真的？") == ["BERT 很好用。", "It works.", "真的？"]


def test_read_documents_bom_crlf_and_long_line(tmp_path):
    long_line = "word " * 100_000 + "end."
    path = tmp_path / "docs.txt"
    path.write_bytes(("\ufeffOne. Two.\r\nThree\r\n\r\n\r\n" + long_line + "\r\n\r\nLast doc.").encode("utf-8"))
    corpus = read_corpus(path)
    assert corpus.format == "documents" and len(corpus) == 3
    assert corpus.documents[0] == ["One.", "Two.", "Three"]
    assert corpus.documents[1] == [long_line]
    assert corpus.documents[2] == ["Last doc."]


def test_read_wikiextractor_and_directories(tmp_path):
    folder = tmp_path / "wiki" / "AA"
    folder.mkdir(parents=True)
    (folder / "wiki_00").write_text(
        '<doc id="1" url="?curid=1" title="Alpha">\nAlpha\n\nAlpha is first. It leads.\nHistory.\n</doc>\n'
        '<doc id="2" url="?curid=2" title="Empty">\nEmpty\n\n</doc>\n', encoding="utf-8")
    (folder / "wiki_01").write_text('<doc id="3" url="?curid=3" title="Beta">\nBeta\n\nBeta is second.\n', encoding="utf-8")
    (tmp_path / "wiki" / "README.md").write_text("not corpus text\n\nat all\n", encoding="utf-8")
    (tmp_path / "wiki" / ".hidden").write_text("secret\n", encoding="utf-8")
    assert [p.name for p in corpus_files(tmp_path / "wiki")] == ["wiki_00", "wiki_01"]
    assert detect_corpus_format(folder / "wiki_00") == "wikiextractor"
    corpus = read_corpus(tmp_path / "wiki")
    assert corpus.documents == [["Alpha is first.", "It leads.", "History."], ["Beta is second."]]  # titles dropped
    explicit = read_corpus(tmp_path / "wiki", corpus_format="wikiextractor")
    assert explicit.documents == corpus.documents


def test_read_pairs(tmp_path, tokenizer):
    path = tmp_path / "pairs.txt"
    path.write_text("the cat sat\ton the mat\nit was warm\tthe sun shone\ndogs bark\tcats meow\n", encoding="utf-8")
    corpus = read_corpus(path)
    assert corpus.format == "pairs" and corpus.pairs[0] == ("the cat sat", "on the mat") and len(corpus) == 3
    assert list(corpus.texts())[:2] == ["the cat sat", "on the mat"]
    examples = create_pretraining_examples(corpus, tokenizer, seq_len=16)
    assert len(examples) == 3 and all(e.tokens[0] == "[CLS]" for e in examples)
    bad = tmp_path / "bad_pairs.txt"
    bad.write_text("a\tb\nc\td\nno tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3"):
        read_corpus(bad, corpus_format="pairs")


@pytest.mark.parametrize("content, message", [
    (b"", "empty or blank"),
    (b"   \n\t\n\n", "empty or blank"),
    (b"Only one document.\nStill the same one.\n", "found only 1 document"),
    (b"Fine line.\n\nCaf\xe9 is latin-1.\n", "line 3: bytes that are not UTF-8"),
])
def test_bad_corpora_raise_value_error(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        read_corpus(path)
    assert str(path) in str(error.value)


def test_missing_corpus_and_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="no such file or directory"):
        read_corpus(tmp_path / "nope.txt")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="no text files"):
        read_corpus(tmp_path / "empty_dir")
    with pytest.raises(ValueError, match="unknown corpus format"):
        read_corpus(tmp_path, corpus_format="xml")


def test_corpus_split_holds_out_whole_documents(corpus):
    train, valid = corpus.split(0.1, seed=0)
    assert len(train) + len(valid) == len(corpus) and len(valid) == max(2, round(0.1 * len(corpus)))
    remaining = [list(d) for d in corpus.documents]
    for document in train.documents + valid.documents:  # every document lands on exactly one side
        remaining.remove(document)
    assert remaining == []
    again_train, again_valid = corpus.split(0.1, seed=0)
    assert again_valid.documents == valid.documents
    tiny = Corpus([["a."], ["b."], ["c."]], [], "documents", "tiny")
    assert tiny.split(0.5) == (tiny, None)  # too few documents to spare two


def test_evaluate_is_deterministic(dataset, collate, tokenizer):
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(len(tokenizer)))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(16)), batch_size=8, collate_fn=collate)
    first, second = evaluate_pretraining(model, loader, CPU), evaluate_pretraining(model, loader, CPU)
    assert first == second and model.training  # eval mode only inside
    assert abs(first["nsp_loss"] - math.log(2)) < 0.3


# ------------------------------------------------------------------ real corpora (optional)
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/corpora is not available")
def test_shared_corpora_are_read():
    wiki = SHARED / "enwiki-sample" / "wiki_00"
    if wiki.exists():
        corpus = read_corpus(wiki)
        assert detect_corpus_format(wiki) == "wikiextractor"
        assert len(corpus) > 300 and all(doc for doc in corpus.documents)
        sentences = [s for d in corpus.documents[:50] for s in d]
        assert not any(s.startswith("<doc") or s == "</doc>" for s in sentences)
        assert sum(len(s) for s in sentences) / len(sentences) < 400  # paragraphs were split into sentences
    chinese = SHARED / "cmrc2018-contexts" / "cmrc2018_contexts.txt"
    if chinese.exists():
        corpus = read_corpus(chinese)
        assert len(corpus) > 500
        sentences = [s for d in corpus.documents[:50] for s in d]
        assert sum(s.endswith(("。", "！", "？", "”", "」")) for s in sentences) > len(sentences) / 2
