"""Chapter 07 (bert_annotated.pretraining_data): examples, dataset, collator and parallel tokenization."""
from __future__ import annotations

import torch

from bert_annotated.masking import IGNORE_INDEX
from bert_annotated.pretraining_data import PretrainingDataset, create_pretraining_examples

# pytest fixtures (imported with the fixtures they depend on)
from pretraining_fixtures import collate, corpus, dataset, tokenizer  # noqa: F401


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
        used = batch["mlm_labels"][row] != IGNORE_INDEX  # (slots,)
        positions = batch["masked_positions"][row][used]
        assert (positions < length).all() and (positions.diff() > 0).all()  # real tokens, in order, each once
        assert torch.equal(batch["mlm_labels"][row][used], original[positions])
        chosen = torch.zeros(length, dtype=torch.bool)
        chosen[positions] = True
        assert torch.equal(batch["input_ids"][row, :length][~chosen], original[~chosen])
    assert batch["masked_positions"].shape == batch["mlm_labels"].shape == (3, collate.masker.max_predictions_per_seq)
    assert batch["next_sentence_labels"].tolist() == [item["next_sentence_label"] for item in items]
    assert torch.equal(collate(items)["mlm_labels"], batch["mlm_labels"])  # same batch, same epoch: same mask
    collate.epoch = 3
    try:
        assert not torch.equal(collate(items)["mlm_labels"], batch["mlm_labels"])  # another epoch: a fresh mask
    finally:
        collate.epoch = 0


def test_vectorised_batches_equal_the_padded_items(dataset, collate):
    for indices in ([0, 5, 9], [3], list(range(16))):
        from_items = collate([dataset[i] for i in indices])
        gathered = collate(dataset.__getitems__(indices))  # what a DataLoader calls: no loop over rows
        assert from_items.keys() == gathered.keys()
        for key in from_items:
            assert torch.equal(from_items[key], gathered[key]), key


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


def test_parallel_tokenization_gives_the_same_documents(corpus, tokenizer):
    from bert_annotated.tokenization import tokenize_documents

    documents = corpus.documents[:40] + [["", "   "]]  # a document with no text is dropped either way
    one_process = tokenize_documents(documents, tokenizer, processes=1)
    assert tokenize_documents(documents, tokenizer, processes=2) == one_process
    assert tokenize_documents(documents, tokenizer) == one_process  # small corpus: one process, by default
    assert len(one_process) == 40


def test_collator_without_fixed_slots_keeps_per_position_labels(dataset, collate):
    from bert_annotated.pretraining_data import PretrainingCollator

    plain = PretrainingCollator(collate.masker, 0, seed=collate.seed, fixed_slots=False)
    items = [dataset[i] for i in range(4)]
    per_position, slots = plain(items), collate(items)
    assert "masked_positions" not in per_position and per_position["mlm_labels"].shape == per_position["input_ids"].shape
    assert torch.equal(per_position["input_ids"], slots["input_ids"])  # the same masks either way
    rebuilt = torch.full_like(per_position["mlm_labels"], IGNORE_INDEX)
    rebuilt.scatter_(1, slots["masked_positions"], slots["mlm_labels"])  # unused slots write -100 at [CLS]
    assert torch.equal(rebuilt, per_position["mlm_labels"])


# --- WikiText: the reader, and the WikiText-103 loader (never the network) ---------------------------------------------


