"""Appendix A, training runs that survive: atomic checkpoints, exact resume, the robust loop."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from bert_annotated.runs import (
    CHECKPOINT_FILE,
    TrainingConfig,
    TrainingInterrupted,
    atomic_save,
    check_output_dir,
    load_checkpoint,
    load_pretrained,
    pretrain,
    read_metrics,
)

# pytest fixtures (imported with the fixtures they depend on)
from pretraining_fixtures import collate, corpus, dataset, tokenizer  # noqa: F401


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


def _run(tiny_config, corpus, tokenizer, output_dir, max_steps=8, resume=None, stop_after=None, **overrides):
    def interrupt(step, record):
        if step == stop_after:
            raise KeyboardInterrupt  # what Ctrl-C does between two steps

    settings = dict(seq_len=48, batch_size=8, log_every=1, lr=1e-3, valid_fraction=0.1, device="cpu", progress=False)
    config = TrainingConfig(output_dir=str(output_dir), max_steps=max_steps, **{**settings, **overrides})
    return pretrain(corpus, tokenizer, tiny_config(vocab_size=len(tokenizer)), config, resume=resume,
                    on_step=interrupt if stop_after else None)


def test_resume_reproduces_the_uninterrupted_run_exactly(corpus, tokenizer, tmp_path, tiny_config):
    straight = _run(tiny_config, corpus, tokenizer, tmp_path / "straight", max_steps=10, eval_every=3)
    with pytest.raises(TrainingInterrupted) as interrupted:
        _run(tiny_config, corpus, tokenizer, tmp_path / "resumed", max_steps=10, eval_every=3, stop_after=5)
    assert interrupted.value.step == 5 and Path(interrupted.value.checkpoint_path).name == CHECKPOINT_FILE
    checkpoint = load_checkpoint(tmp_path / "resumed")
    assert checkpoint["position"]["step"] == 5
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "position", "model_config", "training_config"} <= set(checkpoint)
    assert {"python", "torch"} <= set(checkpoint["rng"])
    assert not any(isinstance(v, torch.nn.Module) for v in checkpoint.values())  # state, not pickled modules

    resumed = _run(tiny_config, corpus, tokenizer, tmp_path / "resumed", max_steps=10, eval_every=3, resume=tmp_path / "resumed")
    straight_records, resumed_records = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "resumed")
    assert [r["step"] for r in resumed_records] == [r["step"] for r in straight_records]  # nothing logged twice
    for a, b in zip(straight_records, resumed_records):
        for key in ("loss", "mlm_loss", "nsp_loss", "mlm_acc", "nsp_acc"):
            assert abs(a[key] - b[key]) <= 1e-6, (a["step"], key, a[key], b[key])
        if a["split"] == "train":
            assert a["lr"] == b["lr"]
    for name, tensor in straight.model.state_dict().items():
        torch.testing.assert_close(tensor, resumed.model.state_dict()[name], rtol=0, atol=1e-6)


def test_resume_with_different_settings_is_refused(corpus, tokenizer, tmp_path, tiny_config):
    _run(tiny_config, corpus, tokenizer, tmp_path / "run", max_steps=2)
    with pytest.raises(ValueError, match="batch_size=8 there but 4 now"):
        config = TrainingConfig(output_dir=str(tmp_path / "run"), seq_len=48, batch_size=4, max_steps=4,
                                device="cpu", progress=False)
        pretrain(corpus, tokenizer, tiny_config(vocab_size=len(tokenizer)), config, resume=tmp_path / "run")
    with pytest.raises(ValueError, match="hidden_size=32 there but 64 now"):
        config = TrainingConfig(output_dir=str(tmp_path / "run"), seq_len=48, batch_size=8, max_steps=4, lr=1e-3,
                                valid_fraction=0.1, device="cpu", progress=False)
        bigger = dataclasses.replace(tiny_config(vocab_size=len(tokenizer)), hidden_size=64, intermediate_size=128)
        pretrain(corpus, tokenizer, bigger, config, resume=tmp_path / "run")


def test_output_dir_with_another_run_is_refused(tmp_path):
    check_output_dir(tmp_path / "new")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="already holds another run"):
        check_output_dir(tmp_path / "old")
    check_output_dir(tmp_path / "old", resuming=True)


def test_tiny_training_run_lowers_the_loss_and_saves_a_loadable_model(corpus, tokenizer, tmp_path, tiny_config):
    result = _run(tiny_config, corpus, tokenizer, tmp_path / "run", max_steps=60, log_every=10, eval_every=30, batch_size=16, lr=2e-3)
    train = [r for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    valid = [r for r in read_metrics(tmp_path / "run") if r["split"] == "valid"]
    assert [r["step"] for r in train] == [10, 20, 30, 40, 50, 60] and [r["step"] for r in valid] == [30, 60]
    assert set(train[0]) >= {"step", "lr", "loss", "mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc", "tokens_per_second"}
    assert train[-1]["mlm_loss"] < train[0]["mlm_loss"] - 0.5
    assert train[-1]["mlm_loss"] < math.log(len(tokenizer)) - 0.7  # well below a uniform guess
    assert valid[-1]["mlm_loss"] < valid[0]["mlm_loss"]
    assert max(r["lr"] for r in train) <= 2e-3 and train[0]["tokens_per_second"] > 0
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [  # a Hugging Face folder + training state
        "accuracy.png", "checkpoint.pt", "config.json", "loss.png", "metrics.jsonl", "model.safetensors", "run.json",
        "summary.json", "tokenizer_config.json", "vocab.txt"]
    for name in ("loss.png", "accuracy.png", "model.safetensors", "config.json", "vocab.txt", "run.json"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    final_checkpoint = torch.load(tmp_path / "run" / CHECKPOINT_FILE, weights_only=True)
    assert "model" not in final_checkpoint and "optimizer" in final_checkpoint  # the weights are stored once
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
    from bert_annotated.model import BertForPreTraining
    from bert_annotated.tokenization import BertTokenizer

    as_checkpoint = BertForPreTraining.from_pretrained(tmp_path / "run")  # the run folder is a Hugging Face folder
    assert BertTokenizer.from_pretrained(tmp_path / "run").vocab == tokenizer.vocab
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, as_checkpoint.state_dict()[name])


def test_dynamic_nsp_pairs_resume_mid_epoch_exactly(corpus, tokenizer, tmp_path, tiny_config):
    settings = dict(eval_every=1000, batch_size=16)
    straight = _run(tiny_config, corpus, tokenizer, tmp_path / "straight", max_steps=1, **settings)  # to learn an epoch's length
    steps_per_epoch = math.ceil(straight.data["train_examples"] / 16) - 1  # a lower bound: epochs vary a little
    total = 3 * steps_per_epoch
    straight = _run(tiny_config, corpus, tokenizer, tmp_path / "straight2", max_steps=total, **settings)
    epochs = {record["step"]: record["epoch"] for record in read_metrics(tmp_path / "straight2") if record["split"] == "train"}
    stop = next(step for step in sorted(epochs) if epochs[step] == 2) + 1  # two steps into the third epoch
    with pytest.raises(TrainingInterrupted):
        _run(tiny_config, corpus, tokenizer, tmp_path / "resumed", max_steps=total, stop_after=stop, **settings)
    resumed = _run(tiny_config, corpus, tokenizer, tmp_path / "resumed", max_steps=total, resume=tmp_path / "resumed", **settings)
    straight_records, resumed_records = read_metrics(tmp_path / "straight2"), read_metrics(tmp_path / "resumed")
    assert [r["step"] for r in resumed_records] == [r["step"] for r in straight_records]
    for a, b in zip(straight_records, resumed_records):
        assert all(a[key] == b[key] for key in ("loss", "mlm_acc", "nsp_acc")), a["step"]
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_dynamic_nsp_draws_new_pairs_each_epoch_from_seed_and_epoch(corpus, tokenizer):
    from bert_annotated.pretraining_data import create_pretraining_dataset, create_pretraining_examples

    first = create_pretraining_dataset(corpus, tokenizer, seq_len=48, seed=3)
    fixed = create_pretraining_examples(corpus, tokenizer, seq_len=48, seed=3)
    assert len(first) == len(fixed)  # epoch 0: the same examples as the fixed dataset
    epoch0 = first.input_ids.clone()
    first.set_epoch(1)
    epoch1 = first.input_ids.clone()
    assert not torch.equal(epoch0, epoch1)  # new A/B splits and NotNext partners
    second = create_pretraining_dataset(corpus, tokenizer, seq_len=48, seed=3)
    second.set_epoch(1)
    assert torch.equal(second.input_ids, epoch1)  # a function of (seed, epoch) only
    first.set_epoch(0)
    assert torch.equal(first.input_ids, epoch0)


def test_default_slots_are_the_most_the_masker_can_fill(corpus, tokenizer):
    from bert_annotated.masking import IGNORE_INDEX, MaskedLMMasker
    from bert_annotated.pretraining_data import PretrainingCollator, PretrainingDataset, create_pretraining_examples

    config = TrainingConfig(seq_len=48)
    dataset = PretrainingDataset(create_pretraining_examples(corpus, tokenizer, seq_len=48, seed=0), tokenizer)
    masker = MaskedLMMasker.from_tokenizer(tokenizer, max_predictions_per_seq=config.predictions_per_seq)
    collate = PretrainingCollator(masker, tokenizer.pad_token_id)
    used = max(int((collate(dataset.__getitems__(range(start, start + 32)))["mlm_labels"] != IGNORE_INDEX).sum(1).max())
               for start in range(0, len(dataset) - 32, 32))
    assert used == config.predictions_per_seq  # full rows fill every slot: none is always empty


def test_a_finished_checkpoint_takes_its_weights_from_the_folder_and_resumes(corpus, tokenizer, tmp_path, tiny_config):
    finished = _run(tiny_config, corpus, tokenizer, tmp_path / "run", max_steps=4, eval_every=2)
    checkpoint = load_checkpoint(tmp_path / "run")  # no weights in checkpoint.pt: they come from model.safetensors
    assert checkpoint["position"]["step"] == 4
    for name, tensor in finished.model.state_dict().items():
        assert torch.equal(tensor, checkpoint["model"][name]), name  # bit for bit
    rng = torch.get_rng_state()
    load_checkpoint(tmp_path / "run")
    assert torch.equal(rng, torch.get_rng_state())  # reading the weights draws no random numbers
    longer = _run(tiny_config, corpus, tokenizer, tmp_path / "run", max_steps=6, eval_every=2, resume=tmp_path / "run")
    assert longer.steps == 6
    assert [r["step"] for r in read_metrics(tmp_path / "run") if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    model, _ = load_pretrained(tmp_path / "run")
    for name, tensor in longer.model.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    (tmp_path / "run" / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="keeps its weights in .*model.safetensors, which is missing"):
        load_checkpoint(tmp_path / "run")


def test_load_pretrained_reads_older_run_folders_and_explains_the_others(tmp_path, tiny_config):
    from bert_annotated.model import BertForPreTraining
    from bert_annotated.tokenization import write_vocab

    older = tmp_path / "older"  # what a run of an older version left: model.pt, our config.json, vocab.txt
    older.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(27)]
    config = tiny_config(vocab_size=len(vocab))
    torch.manual_seed(0)
    model = BertForPreTraining(config)
    torch.save(model.state_dict(), older / "model.pt")
    (older / "config.json").write_text(json.dumps(config.to_dict()))
    write_vocab(vocab, older / "vocab.txt")
    loaded, loaded_tokenizer = load_pretrained(older)
    assert len(loaded_tokenizer) == len(vocab) and not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name

    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / CHECKPOINT_FILE).write_bytes(b"")
    with pytest.raises(ValueError, match="has not finished: resume it"):
        load_pretrained(unfinished)
    with pytest.raises(ValueError, match="no model.safetensors; give the output directory of a finished"):
        load_pretrained(tmp_path / "nothing-here")
