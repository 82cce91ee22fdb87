"""Chapter 08 (bert_annotated.pretraining): BertForPreTraining, train_step and evaluation."""
from __future__ import annotations

import math

import pytest
import torch

from bert_annotated.masking import IGNORE_INDEX, gather_masked_positions
from bert_annotated.model import BertForPreTraining
from bert_annotated.optimization import build_optimizer, build_scheduler
from bert_annotated.pretraining import evaluate_pretraining, forward_batch, train_step

# pytest fixtures (imported with the fixtures they depend on)
from pretraining_fixtures import CPU, collate, corpus, dataset, tokenizer  # noqa: F401


def test_model_outputs_shapes_and_losses(tiny_config):
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(vocab_size=500, dropout=0.0)).eval()
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


def test_tied_decoder_gets_both_gradients(tiny_config):
    model = BertForPreTraining(tiny_config(vocab_size=300))
    labels = torch.full((2, 6), IGNORE_INDEX)
    labels[:, 2] = 7
    model(torch.randint(5, 300, (2, 6)), mlm_labels=labels, next_sentence_labels=torch.tensor([0, 1])).loss.backward()
    grad = model.bert.embeddings.word_embeddings.weight.grad
    assert grad is model.mlm_head.decoder.weight.grad
    assert grad[299].abs().sum() > 0  # an id absent from the input still gets a gradient through the decoder


def test_gradient_accumulation_equals_one_big_batch(dataset, collate, tokenizer, tiny_config):
    whole = collate([dataset[i] for i in range(8)])
    parts = [{k: v[:3] for k, v in whole.items()}, {k: v[3:] for k, v in whole.items()}]
    assert int((parts[0]["mlm_labels"] != IGNORE_INDEX).sum()) != int((parts[1]["mlm_labels"] != IGNORE_INDEX).sum())

    def weights_after(micro_batches, max_grad_norm=1e9):
        torch.manual_seed(0)
        model = BertForPreTraining(tiny_config(vocab_size=len(tokenizer), dropout=0.0))
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
    assert clipped_stats["grad_norm_sum"].item() > 0.5  # the norm before clipping is reported
    assert not torch.allclose(clipped, accumulated)


def test_fp16_style_loss_scaling_is_undone_before_clipping(dataset, collate, tokenizer, tiny_config):
    batch = collate([dataset[i] for i in range(4)])

    def weights_after(scaler):
        torch.manual_seed(0)
        model = BertForPreTraining(tiny_config(vocab_size=len(tokenizer), dropout=0.0))
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        train_step(model, [batch], optimizer, build_scheduler(optimizer, 0, 1), scaler, CPU, max_grad_norm=1.0)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    plain = weights_after(torch.amp.GradScaler("cpu", enabled=False))
    scaled = weights_after(torch.amp.GradScaler("cpu", init_scale=2.0 ** 12))
    assert (plain - scaled).abs().max() < 1e-5


def test_bf16_autocast_step_on_cpu(dataset, collate, tokenizer, tiny_config):
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(vocab_size=len(tokenizer)))
    optimizer = build_optimizer(model, lr=1e-3)
    stats = train_step(model, [collate([dataset[i] for i in range(4)])], optimizer, build_scheduler(optimizer, 0, 5),
                       torch.amp.GradScaler("cpu", enabled=False), CPU, precision="bf16")
    assert all(torch.isfinite(value) for value in stats.values()) and all(p.dtype == torch.float32 for p in model.parameters())


def test_evaluate_is_deterministic(dataset, collate, tokenizer, tiny_config):
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(vocab_size=len(tokenizer)))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(16)), batch_size=8, collate_fn=collate)
    first, second = evaluate_pretraining(model, loader, CPU), evaluate_pretraining(model, loader, CPU)
    assert first == second and model.training  # eval mode only inside
    assert abs(first["nsp_loss"] - math.log(2)) < 0.3


def test_fixed_slots_give_the_same_loss_and_gradients_without_a_device_sync(monkeypatch, tiny_config):
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(vocab_size=300, dropout=0.0))
    input_ids = torch.randint(5, 300, (3, 10))
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[0, [1, 4]], labels[2, [7]] = input_ids[0, [1, 4]], input_ids[2, [7]]  # row 1 predicts nothing
    nsp = torch.tensor([0, 1, 1])

    def loss_and_gradients(**inputs):
        model.zero_grad()
        output = model(input_ids, next_sentence_labels=nsp, **inputs)
        output.loss.backward()
        return output, [p.grad.clone() for p in model.parameters()]

    dynamic, dynamic_grads = loss_and_gradients(mlm_labels=labels)
    positions, slot_labels = gather_masked_positions(labels, max_predictions_per_seq=4)
    monkeypatch.setattr(torch, "aminmax", lambda *args, **kwargs: pytest.fail("a per-step range check ran"))
    static, static_grads = loss_and_gradients(mlm_labels=slot_labels, masked_positions=positions, check_inputs=False)
    assert static.mlm_logits.shape == (3, 4, 300)
    assert torch.allclose(static.mlm_loss, dynamic.mlm_loss, atol=1e-6)
    assert torch.allclose(static.mlm_accuracy, dynamic.mlm_accuracy)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(static_grads, dynamic_grads))
    with pytest.raises(ValueError, match="same shape"):
        model(input_ids, mlm_labels=labels, masked_positions=positions)


def test_collated_batches_run_the_step_without_a_range_check(dataset, collate, tokenizer, monkeypatch, tiny_config):
    batch = collate(dataset.__getitems__(range(4)))
    model = BertForPreTraining(tiny_config(vocab_size=len(tokenizer)))
    monkeypatch.setattr(torch, "aminmax", lambda *args, **kwargs: pytest.fail("a per-step range check ran"))
    output = forward_batch(model, batch)
    assert output.mlm_logits.shape[:2] == batch["masked_positions"].shape
