"""Tests of chapter 05: dynamic BERT masking and the tied masked-LM head (package code only)."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bert_annotated.masking import (
    IGNORE_INDEX,
    MaskedLMMasker,
    gather_masked_positions,
    masking_budget,
    word_start_positions,
)
from bert_annotated.model import BertMLMHead, BertModel, masked_lm_loss

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIALS = [PAD, UNK, CLS, SEP, MASK]
NUM_SPECIAL = len(SPECIALS)


def google_budget(n, mask_prob=0.15, max_predictions_per_seq=20):
    """The budget formula written out in plain Python, one sequence at a time."""
    if n == 0:
        return 0
    return min(max_predictions_per_seq, max(1, int(round(n * mask_prob))))


def make_batch(batch_size, seq_len, vocab_size, seed):
    """[CLS] A [SEP] B [SEP] [PAD]... rows of random lengths, with [UNK]s sprinkled in: (batch, seq) long."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(NUM_SPECIAL, vocab_size, (batch_size, seq_len), generator=generator)
    ids[torch.rand(batch_size, seq_len, generator=generator) < 0.01] = UNK
    total = torch.randint(5, seq_len + 1, (batch_size,), generator=generator)
    first_sep = 2 + (torch.rand(batch_size, generator=generator) * (total - 4)).long()
    positions = torch.arange(seq_len).expand(batch_size, seq_len)
    ids[:, 0] = CLS
    ids[positions == first_sep[:, None]] = SEP
    ids[positions == (total - 1)[:, None]] = SEP
    ids[positions >= total[:, None]] = PAD
    return ids


def continuation_table(vocab_size, fraction, seed):
    generator = torch.Generator().manual_seed(seed)
    table = torch.rand(vocab_size, generator=generator) < fraction
    table[:NUM_SPECIAL] = False
    return table


@pytest.fixture(scope="module")
def big_batch():
    batch = make_batch(2048, 128, 1000, seed=0)
    candidates = ~torch.isin(batch, torch.tensor(SPECIALS))
    assert candidates.sum() >= 100_000
    return batch, candidates


def outcome_shares(batch, masked, labels):
    chosen = labels != IGNORE_INDEX
    n = chosen.sum().item()
    as_mask = (chosen & (masked == MASK)).sum().item() / n
    unchanged = (chosen & (masked == batch)).sum().item() / n
    random = (chosen & (masked != MASK) & (masked != batch)).sum().item() / n
    return as_mask, random, unchanged


@pytest.mark.parametrize("whole_word_mask", [False, True])
def test_rates_over_100k_tokens(big_batch, whole_word_mask):
    batch, candidates = big_batch
    masker = MaskedLMMasker(MASK, 1000, SPECIALS, continuation_token_mask=continuation_table(1000, 0.3, 1),
                            whole_word_mask=whole_word_mask)
    masked, labels = masker(batch, generator=torch.Generator().manual_seed(123))
    chosen = labels != IGNORE_INDEX
    rate = chosen.sum().item() / candidates.sum().item()
    assert abs(rate - 0.15) <= 0.005, rate
    as_mask, random, unchanged = outcome_shares(batch, masked, labels)
    assert abs(as_mask - 0.8) <= 0.01, as_mask
    assert abs(random - 0.1) <= 0.01, random
    assert abs(unchanged - 0.1) <= 0.01, unchanged


def test_special_tokens_never_chosen_or_touched(big_batch):
    batch, candidates = big_batch
    masker = MaskedLMMasker(MASK, 1000, SPECIALS)
    for seed in range(3):
        masked, labels = masker(batch, generator=torch.Generator().manual_seed(seed))
        chosen = labels != IGNORE_INDEX
        for special in (CLS, SEP, PAD, UNK):
            assert (batch == special).any()
            assert not chosen[batch == special].any(), special
            assert (masked[batch == special] == special).all(), special
        assert torch.equal(masked[~chosen], batch[~chosen])  # unchosen positions are untouched
        assert torch.equal(labels[chosen], batch[chosen])  # labels hold the original ids
        assert (labels[~chosen] == IGNORE_INDEX).all()


def test_budget_formula_is_exact_per_row(big_batch):
    batch, candidates = big_batch
    # add rows with no candidates at all, with 1-4 candidates, and with many candidates (cap reached)
    extra = torch.full((6, 128), PAD)
    extra[:, 0] = CLS
    for row, n in enumerate([0, 1, 3, 4, 10, 125]):
        extra[row, 1:1 + n] = torch.arange(n) % 900 + NUM_SPECIAL
        extra[row, 1 + n] = SEP
    batch = torch.cat([batch, extra])
    candidates = ~torch.isin(batch, torch.tensor(SPECIALS))
    for max_predictions, prob in [(20, 0.15), (5, 0.15), (76, 0.3)]:
        masker = MaskedLMMasker(MASK, 1000, SPECIALS, mask_prob=prob, max_predictions_per_seq=max_predictions)
        _, labels = masker(batch, generator=torch.Generator().manual_seed(7))
        got = (labels != IGNORE_INDEX).sum(1).tolist()
        expected = [google_budget(n, prob, max_predictions) for n in candidates.sum(1).tolist()]
        assert got == expected
    assert masking_budget(torch.tensor([0, 1, 10, 30, 200])).tolist() == [0, 1, 2, 4, 20]  # round(1.5) = 2


def test_random_replacements_are_never_special():
    # a 12-word vocabulary of which 5 are special: a draw from the whole vocabulary would hit them often
    vocab_size = 12
    batch = make_batch(4096, 32, vocab_size, seed=3)
    masker = MaskedLMMasker(MASK, vocab_size, SPECIALS, mask_token_prob=0.0, random_token_prob=1.0)
    masked, labels = masker(batch, generator=torch.Generator().manual_seed(0))
    chosen = labels != IGNORE_INDEX
    replacements = masked[chosen]
    assert replacements.numel() > 5000
    assert (replacements >= NUM_SPECIAL).all()
    # and the pool is every non-special id, uniformly
    counts = torch.bincount(replacements, minlength=vocab_size)[NUM_SPECIAL:].float()
    assert (counts > 0).all()
    assert (counts / counts.mean() - 1).abs().max() < 0.1


def test_mask_token_is_special_even_if_not_listed():
    masker = MaskedLMMasker(MASK, 50, [PAD, CLS, SEP])
    assert MASK in masker.special_token_ids.tolist()
    assert MASK not in masker.random_token_ids.tolist()
    batch = torch.tensor([[CLS, MASK, MASK, MASK, 10, SEP]])
    _, labels = masker(batch, generator=torch.Generator().manual_seed(0))
    assert labels.tolist() == [[-100, -100, -100, -100, 10, -100]]


def words_of(row_tokens):
    """Split a row of token strings into words: lists of positions, specials excluded."""
    words = []
    for position, token in enumerate(row_tokens):
        if token.startswith("["):
            continue
        if token.startswith("##") and words and words[-1][-1] == position - 1:
            words[-1].append(position)
        else:
            words.append([position])
    return words


def test_word_start_positions_matches_a_python_reference():
    tokens = [["[CLS]", "a", "##b", "##c", "d", "[SEP]", "##e", "f", "##g", "[SEP]", "[PAD]"],
              ["[CLS]", "##x", "y", "z", "##w", "##v", "[SEP]", "[PAD]", "[PAD]", "[PAD]", "[PAD]"]]
    candidates = torch.tensor([[not t.startswith("[") for t in row] for row in tokens])
    pieces = torch.tensor([[t.startswith("##") for t in row] for row in tokens])
    starts = word_start_positions(candidates, pieces)
    for row, row_tokens in enumerate(tokens):
        for word in words_of(row_tokens):
            assert starts[row, word].tolist() == [word[0]] * len(word)
    assert torch.equal(word_start_positions(candidates), torch.arange(11).expand(2, 11))


def test_whole_word_masking_selects_all_pieces_of_a_word_together():
    vocab_size = 1000
    continuation = continuation_table(vocab_size, 0.4, seed=5)
    batch = make_batch(1024, 128, vocab_size, seed=9)
    masker = MaskedLMMasker(MASK, vocab_size, SPECIALS, continuation_token_mask=continuation, whole_word_mask=True)
    masked, labels = masker(batch, generator=torch.Generator().manual_seed(11))
    chosen = labels != IGNORE_INDEX
    candidates = ~torch.isin(batch, torch.tensor(SPECIALS))
    budgets = masking_budget(candidates.sum(1))
    names = {i: (f"##{i}" if continuation[i] else f"w{i}") for i in range(vocab_size)}
    names.update({PAD: "[PAD]", UNK: "[UNK]", CLS: "[CLS]", SEP: "[SEP]", MASK: "[MASK]"})
    multi_piece_words = split_decisions = 0
    for row in range(batch.shape[0]):
        words = words_of([names[i] for i in batch[row].tolist()])
        chosen_tokens = 0
        for word in words:
            flags = chosen[row, word]
            assert flags.all() or not flags.any(), (row, word)  # all pieces or none
            if flags.all():
                chosen_tokens += len(word)
                if len(word) > 1:
                    multi_piece_words += 1
                    is_mask = masked[row, word] == MASK
                    split_decisions += int(not (is_mask.all() or not is_mask.any()))
        assert chosen_tokens == chosen[row].sum().item()
        remaining = budgets[row].item() - chosen_tokens
        assert remaining >= 0  # never over budget
        # Google's greedy rule: a word is left out only if it no longer fits in what remains
        for word in words:
            if not chosen[row, word[0]]:
                assert len(word) > remaining, (row, word, remaining)
    assert multi_piece_words > 1000
    assert split_decisions == 0  # one 80/10/10 decision per whole word


def test_without_whole_word_masking_pieces_are_independent():
    vocab_size = 1000
    continuation = continuation_table(vocab_size, 0.4, seed=5)
    batch = make_batch(512, 128, vocab_size, seed=9)
    masker = MaskedLMMasker(MASK, vocab_size, SPECIALS, continuation_token_mask=continuation, whole_word_mask=False)
    _, labels = masker(batch, generator=torch.Generator().manual_seed(11))
    chosen = labels != IGNORE_INDEX
    candidates = ~torch.isin(batch, torch.tensor(SPECIALS))
    starts = word_start_positions(candidates, continuation[batch])
    partly_chosen = (chosen != chosen.gather(1, starts)) & candidates
    assert partly_chosen.any()  # pieces are chosen without their words


def test_generator_reproducible_and_dynamic(big_batch):
    batch, _ = big_batch
    masker = MaskedLMMasker(MASK, 1000, SPECIALS)
    first = masker(batch, generator=torch.Generator().manual_seed(2024))
    second = masker(batch, generator=torch.Generator().manual_seed(2024))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    other = masker(batch, generator=torch.Generator().manual_seed(2025))
    assert not torch.equal(first[1], other[1])
    generator = torch.Generator().manual_seed(2024)
    epoch_1 = masker(batch, generator=generator)[1] != IGNORE_INDEX
    epoch_2 = masker(batch, generator=generator)[1] != IGNORE_INDEX
    overlap = (epoch_1 & epoch_2).sum().item() / epoch_1.sum().item()
    assert overlap < 0.25  # a fresh mask: about 15% of positions chosen again by chance


def test_single_sequence_and_bad_input():
    masker = MaskedLMMasker(MASK, 100, SPECIALS)
    sequence = torch.tensor([CLS] + list(range(10, 50)) + [SEP])
    masked, labels = masker(sequence, generator=torch.Generator().manual_seed(0))
    assert masked.shape == labels.shape == sequence.shape
    assert (labels != IGNORE_INDEX).sum().item() == google_budget(40)
    with pytest.raises(ValueError, match="vocab_size"):
        masker(torch.tensor([[CLS, 100, SEP]]))
    with pytest.raises(ValueError, match="integer"):
        masker(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="mask_prob"):
        MaskedLMMasker(MASK, 100, SPECIALS, mask_prob=0.0)
    with pytest.raises(ValueError, match="continuation_token_mask"):
        MaskedLMMasker(MASK, 100, SPECIALS, whole_word_mask=True)
    with pytest.raises(ValueError, match="shape"):
        MaskedLMMasker(MASK, 100, SPECIALS, continuation_token_mask=torch.zeros(99, dtype=torch.bool))


def test_from_tokenizer(tmp_path):
    from bert_annotated.tokenization import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "phil", "##am", "##mon", "sang", "un", "##aff",
             "##able", "was", "a", "story", "##tell", "##er", "."]
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(vocab_file))
    masker = MaskedLMMasker.from_tokenizer(tokenizer, whole_word_mask=True, mask_prob=0.5)
    assert masker.vocab_size == len(vocab)
    assert masker.mask_token_id == tokenizer.mask_token_id == 4
    assert masker.special_token_ids.tolist() == [0, 1, 2, 3, 4]
    assert masker.continuation_token_mask.tolist() == [token.startswith("##") for token in vocab]
    ids = torch.tensor(tokenizer.encode("the unaffable philammon sang", "a storyteller was the")["input_ids"])
    tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
    assert tokens[:4] == ["[CLS]", "the", "un", "##aff"]
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        _, labels = masker(ids, generator=generator)
        chosen = labels != IGNORE_INDEX
        for word in words_of(tokens):
            assert chosen[word].all() or not chosen[word].any()


@pytest.fixture
def tiny_model(tiny_config):
    torch.manual_seed(0)
    config = tiny_config(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)  # 16: the checks below
    bert = BertModel(config)
    head = BertMLMHead(config, bert.embeddings.word_embeddings)
    return config, bert, head


def test_head_structure_and_tied_storage(tiny_model):
    config, bert, head = tiny_model
    embeddings = bert.embeddings.word_embeddings
    assert head.decoder.weight is embeddings.weight
    assert head.decoder.weight.data_ptr() == embeddings.weight.data_ptr()
    assert isinstance(head.dense, nn.Linear) and head.dense.weight.shape == (16, 16)
    assert isinstance(head.layer_norm, nn.LayerNorm) and head.layer_norm.eps == config.layer_norm_eps
    assert head.decoder.bias is None and head.bias.shape == (60,)
    with torch.no_grad():
        embeddings.weight[7, 3] = 123.0  # a write through one name is seen through the other
    assert head.decoder.weight[7, 3].item() == 123.0
    with pytest.raises(ValueError, match="word_embeddings"):
        BertMLMHead(config, nn.Embedding(61, 16))


def test_head_computes_the_bert_transform(tiny_model):
    config, bert, head = tiny_model
    hidden = torch.randn(2, 5, 16)
    expected = F.layer_norm(F.gelu(hidden @ head.dense.weight.T + head.dense.bias), (16,), head.layer_norm.weight,
                            head.layer_norm.bias, eps=config.layer_norm_eps)
    expected = expected @ bert.embeddings.word_embeddings.weight.T + head.bias
    torch.testing.assert_close(head(hidden), expected)


def test_gradient_step_through_head_updates_embedding(tiny_model):
    config, bert, head = tiny_model
    embeddings = bert.embeddings.word_embeddings
    hidden = torch.randn(3, 7, 16)  # not computed from the embeddings: only the tied decoder links them
    labels = torch.full((3, 7), IGNORE_INDEX)
    labels[0, 2], labels[1, 5], labels[2, 0] = 10, 20, 30
    loss = masked_lm_loss(head(hidden, labels != IGNORE_INDEX), labels)
    loss.backward()
    assert embeddings.weight.grad is not None and embeddings.weight.grad.abs().sum() > 0
    before = embeddings.weight.detach().clone()
    torch.optim.SGD(head.parameters(), lr=1.0).step()
    assert not torch.equal(before, embeddings.weight.detach())
    assert head.decoder.weight.data_ptr() == embeddings.weight.data_ptr()


def test_logits_only_at_masked_positions(tiny_model):
    config, bert, head = tiny_model
    hidden = torch.randn(4, 9, 16)
    positions = torch.rand(4, 9) < 0.3
    logits = head(hidden, positions)
    assert logits.shape == (positions.sum().item(), 60)
    torch.testing.assert_close(logits, head(hidden)[positions])
    assert head(hidden).shape == (4, 9, 60)
    with pytest.raises(ValueError, match="masked_positions"):
        head(hidden, positions.float())
    with pytest.raises(ValueError, match="masked_positions"):
        head(hidden, positions.long()[:2])  # integer positions for another batch size


def test_loss_is_cross_entropy_over_masked_positions_only(tiny_model):
    config, bert, head = tiny_model
    masker = MaskedLMMasker(MASK, 60, SPECIALS)
    batch = make_batch(8, 32, 60, seed=4)
    masked, labels = masker(batch, generator=torch.Generator().manual_seed(0))
    sequence_output, _ = bert(masked, attention_mask=(batch != PAD).long())
    full_logits = head(sequence_output)  # (8, 32, 60)
    chosen = labels != IGNORE_INDEX
    log_probs = torch.log_softmax(full_logits, dim=-1)
    by_hand = torch.stack([-log_probs[b, s, labels[b, s]] for b, s in chosen.nonzero().tolist()]).mean()
    loss = masked_lm_loss(head(sequence_output, chosen), labels)
    torch.testing.assert_close(loss, by_hand)
    torch.testing.assert_close(masked_lm_loss(full_logits, labels), by_hand)
    # what happens at unmasked positions does not matter
    scrambled = full_logits.detach().clone()
    scrambled[~chosen] = torch.randn_like(scrambled[~chosen]) * 50
    torch.testing.assert_close(masked_lm_loss(scrambled, labels), by_hand.detach())
    # and it is not the average over every position
    everywhere = F.cross_entropy(full_logits.reshape(-1, 60), batch.reshape(-1))
    assert not torch.isclose(loss, everywhere)
    # nothing masked: a zero loss that still backpropagates
    empty = masked_lm_loss(full_logits[:0].reshape(0, 60), torch.full((2, 3), IGNORE_INDEX))
    assert empty.item() == 0.0 and empty.requires_grad
    with pytest.raises(ValueError, match="labelled positions"):
        masked_lm_loss(full_logits[chosen][:-1], labels)


def test_initial_loss_is_near_log_vocab(tiny_model):
    config, bert, head = tiny_model
    masker = MaskedLMMasker(MASK, 60, SPECIALS)
    batch = make_batch(16, 32, 60, seed=2)
    masked, labels = masker(batch, generator=torch.Generator().manual_seed(0))
    sequence_output, _ = bert(masked, attention_mask=(batch != PAD).long())
    loss = masked_lm_loss(head(sequence_output, labels != IGNORE_INDEX), labels)
    assert abs(loss.item() - math.log(60)) < 0.5


# ---------------------------------------------------------------- a fixed number of predictions per sequence


def test_gather_masked_positions_layout():
    labels = torch.full((3, 6), IGNORE_INDEX)
    labels[0, 1], labels[0, 4] = 11, 14
    labels[2, 0], labels[2, 2], labels[2, 5] = 20, 22, 25
    positions, slot_labels = gather_masked_positions(labels, 4)
    assert positions.tolist() == [[1, 4, 0, 0], [0, 0, 0, 0], [0, 2, 5, 0]]
    assert slot_labels.tolist() == [[11, 14, -100, -100], [-100] * 4, [20, 22, 25, -100]]
    # more slots than positions: padded, still the requested shape
    positions, slot_labels = gather_masked_positions(labels, 9)
    assert positions.shape == slot_labels.shape == (3, 9) and (slot_labels != IGNORE_INDEX).sum() == 5
    assert positions.max() < 6
    with pytest.raises(ValueError, match="max_predictions_per_seq=2"):
        gather_masked_positions(labels, 2)
    assert gather_masked_positions(labels, 2, check=False)[1].tolist()[2] == [20, 22]  # unchecked: cut
    with pytest.raises(ValueError, match="batch, seq"):
        gather_masked_positions(labels[0], 4)
    with pytest.raises(ValueError, match="at least 1"):
        gather_masked_positions(labels, 0)


@pytest.mark.parametrize("whole_word_mask", [False, True])
def test_fixed_slots_have_static_shapes_and_the_same_loss(tiny_model, whole_word_mask):
    config, bert, head = tiny_model
    continuation = torch.zeros(60, dtype=torch.bool)
    continuation[40:] = True  # ids 40..59 are '##' pieces
    masker = MaskedLMMasker(MASK, 60, SPECIALS, continuation_token_mask=continuation, max_predictions_per_seq=5,
                            whole_word_mask=whole_word_mask)
    shapes, counts = set(), set()
    for seed in range(4):
        batch = make_batch(8, 32, 60, seed=seed)
        masked, labels = masker(batch, generator=torch.Generator().manual_seed(seed))
        positions, slot_labels = gather_masked_positions(labels, masker.max_predictions_per_seq)
        sequence_output, _ = bert(masked, attention_mask=(batch != PAD).long())
        slot_logits = head(sequence_output, positions)
        shapes.add(tuple(slot_logits.shape))
        counts.add(int((labels != IGNORE_INDEX).sum()))
        chosen = labels != IGNORE_INDEX
        dynamic_loss = masked_lm_loss(head(sequence_output, chosen), labels)
        static_loss = masked_lm_loss(slot_logits, slot_labels)
        torch.testing.assert_close(static_loss, dynamic_loss)
        # the same gradients reach the model
        dynamic_grads = torch.autograd.grad(dynamic_loss, list(head.parameters()), retain_graph=True)
        static_grads = torch.autograd.grad(static_loss, list(head.parameters()))
        for dynamic, static in zip(dynamic_grads, static_grads):
            torch.testing.assert_close(static, dynamic)
        # the padded slots are ignored, whatever their logits
        scrambled = slot_logits.detach().clone()
        scrambled[slot_labels == IGNORE_INDEX] = torch.randn_like(scrambled[slot_labels == IGNORE_INDEX]) * 50
        torch.testing.assert_close(masked_lm_loss(scrambled, slot_labels), static_loss.detach())
    assert shapes == {(8, 5, 60)} and len(counts) > 1  # different numbers of masked tokens, one shape


def test_fixed_slots_with_nothing_to_predict(tiny_model):
    config, bert, head = tiny_model
    hidden = torch.randn(2, 6, 16, requires_grad=True)
    positions, slot_labels = gather_masked_positions(torch.full((2, 6), IGNORE_INDEX), 3)
    loss = masked_lm_loss(head(hidden, positions), slot_labels)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert hidden.grad.abs().sum() == 0
