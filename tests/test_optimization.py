"""Chapter 08 (bert_annotated.optimization): AdamW's parameter groups, the learning-rate schedule, the choice
of precision."""
from __future__ import annotations

import pytest
import torch

from bert_annotated.model import BertForPreTraining
from bert_annotated.optimization import (
    build_optimizer,
    build_scheduler,
    parameter_groups,
    resolve_precision,
    warmup_linear_decay,
)

# pytest fixtures (imported with the fixtures they depend on)
from pretraining_fixtures import CPU


def test_parameter_groups_exclude_bias_and_layernorm(tiny_config):
    model = BertForPreTraining(tiny_config(vocab_size=100))
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


def test_no_decay_parameters_are_not_shrunk(tiny_config):
    model = BertForPreTraining(tiny_config(vocab_size=100))
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


def test_precision_choice():
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", CPU)
