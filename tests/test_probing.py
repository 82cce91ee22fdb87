"""Chapter 09 (bert_annotated.probing): fill-mask, probes, the cloze test and its readers, the attention summary."""
from __future__ import annotations

import pytest
import torch

from bert_annotated.corpora import read_drcd_paragraphs, read_wikitext_paragraphs
from bert_annotated.model import BertForPreTraining
from bert_annotated.probing import (
    attention_summary,
    cloze_evaluation,
    cloze_windows,
    fill_mask,
    nearest_tokens,
    run_probes,
)
from bert_annotated.tokenization import BertTokenizer, write_vocab

transformers = pytest.importorskip("transformers")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "dog", "bark", "##s", "cat", "hello", "world", "中", "文", ",", "."]


# ------------------------------------------------------------------------------------------------ using a model
def test_fill_mask_and_nearest_tokens(tmp_path, tiny_config):
    write_vocab(VOCAB, tmp_path / "v.txt")
    tokenizer = BertTokenizer(str(tmp_path / "v.txt"))
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(vocab_size=len(VOCAB)))
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


# ------------------------------------------------------------------------------------------------ probes, cloze, attention
def _dog_model(tiny_config, tmp_path, favourite="dog"):
    write_vocab(VOCAB, tmp_path / "v.txt")
    tokenizer = BertTokenizer(str(tmp_path / "v.txt"))
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(vocab_size=len(VOCAB))).eval()
    with torch.no_grad():  # a model that is certain: `favourite` is the answer everywhere
        model.mlm_head.bias[tokenizer.vocab[favourite]] = 50.0
    return model, tokenizer


def test_run_probes_ranks_the_expected_piece(tmp_path, tiny_config):
    model, tokenizer = _dog_model(tiny_config, tmp_path)
    dog, cat = run_probes(model, tokenizer, [("the [MASK] barks.", "dog"), ("the [MASK] world", "cat")])
    assert dog.rank == 1 and dog.top[0] == "dog" and len(dog.top) == 5
    assert cat.rank in (0, 2, 3, 4, 5) and cat.top[0] == "dog"
    with pytest.raises(ValueError, match="elephant"):
        run_probes(model, tokenizer, [("the [MASK].", "elephant")])
    with pytest.raises(ValueError, match="exactly one"):
        run_probes(model, tokenizer, [("the [MASK] [MASK].", "dog")])


def test_cloze_evaluation_scores_the_model_and_the_baseline_on_the_same_positions(tmp_path, tiny_config):
    model, tokenizer = _dog_model(tiny_config, tmp_path, favourite="cat")
    dog, cat, unk = tokenizer.vocab["dog"], tokenizer.vocab["cat"], tokenizer.vocab["[UNK]"]
    windows = [[dog] * 8 + [cat] * 2 + [unk]] * 60  # the baseline guesses dog, the model guesses cat
    figures = cloze_evaluation(model, tokenizer, windows, seed=0)
    assert figures["windows"] == 60 and figures["pieces"] == 660
    assert 0.10 < figures["masked"] / 600 < 0.20  # 15 % of the pieces that may be hidden ([UNK] never is)
    assert figures["unigram_guesses"][:2] == ["dog", "cat"] and figures["unk_fraction"] == pytest.approx(1 / 11)
    assert figures["top1"] + figures["unigram_top1"] == pytest.approx(1.0)  # every target is dog or cat
    assert 0.1 < figures["top1"] < 0.3 and figures["top5"] >= figures["top1"]
    assert figures["unigram_top5"] == pytest.approx(1.0)
    again = cloze_evaluation(model, tokenizer, windows, seed=0)
    assert again == figures  # seeded
    with pytest.raises(ValueError, match="no piece can be hidden"):
        cloze_evaluation(model, tokenizer, [[unk] * 10])


def test_cloze_windows_cut_long_paragraphs_and_sample_with_a_seed(tmp_path, tiny_config):
    _, tokenizer = _dog_model(tiny_config, tmp_path)
    paragraphs = ["the dog barks " * 100, "hello world " * 3, "the cat"]  # 400, 6 and 2 pieces
    windows = cloze_windows(tokenizer, paragraphs, seq_len=128)
    assert [len(window) for window in windows] == [126, 126, 126, 22]  # 6 and 2 pieces: too short to test
    sample = cloze_windows(tokenizer, paragraphs * 5, seq_len=32, max_windows=7, seed=3)
    assert len(sample) == 7 and sample == cloze_windows(tokenizer, paragraphs * 5, seq_len=32, max_windows=7, seed=3)


def test_held_out_readers(tmp_path):
    wikitext = tmp_path / "wiki.test.raw"
    wikitext.write_text(" = Robert Boulter = \r\n A guest @-@ starring role , 1 @,@ 000 fans and 3 @.@ 5 stars . \n"
                        " = = Career = = \r\n In 2000 he acted . \n", encoding="utf-8")
    assert read_wikitext_paragraphs(wikitext) == ["A guest-starring role , 1,000 fans and 3.5 stars .", "In 2000 he acted ."]
    drcd = tmp_path / "drcd_contexts.txt"
    drcd.write_text("梵文\n第一段。\n第二段。\n\n台北\n第三段。\n", encoding="utf-8")
    assert read_drcd_paragraphs(drcd) == ["第一段。", "第二段。", "第三段。"]
    for reader in (read_wikitext_paragraphs, read_drcd_paragraphs):
        with pytest.raises(ValueError, match="no such file"):
            reader(tmp_path / "missing.txt")


def test_attention_summary_matches_a_direct_count(tmp_path, tiny_config):
    model, tokenizer = _dog_model(tiny_config, tmp_path)
    pairs = [("the dog barks", "hello world"), ("the cat", "中 文 , the dog")]
    summary = attention_summary(model, tokenizer, pairs)
    layers, heads = tiny_config().num_hidden_layers, tiny_config().num_attention_heads
    expected = {name: torch.zeros(layers, heads) for name in ("[CLS]", "[SEP]", "previous", "next")}
    counts = {"[CLS]": 0, "[SEP]": 0, "previous": 0, "next": 0}
    for a, b in pairs:
        encoded = tokenizer.encode(a, b)
        tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
        with torch.no_grad():
            maps = model.bert(torch.tensor([encoded["input_ids"]]), torch.tensor([encoded["token_type_ids"]]),
                              output_attentions=True)[2]
        for layer in range(layers):
            for head in range(heads):
                grid = maps[layer][0, head]
                for i in range(len(tokens)):
                    for j, token in enumerate(tokens):
                        if token in ("[CLS]", "[SEP]"):
                            expected[token][layer, head] += grid[i, j]
                    if i > 0:
                        expected["previous"][layer, head] += grid[i, i - 1]
                    if i + 1 < len(tokens):
                        expected["next"][layer, head] += grid[i, i + 1]
        counts = {"[CLS]": counts["[CLS]"] + len(tokens), "[SEP]": counts["[SEP]"] + len(tokens),
                  "previous": counts["previous"] + len(tokens) - 1, "next": counts["next"] + len(tokens) - 1}
    for name in expected:
        torch.testing.assert_close(summary[name], expected[name] / counts[name], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="no sentence pairs"):
        attention_summary(model, tokenizer, [])
