"""Chapter 11 (bert_annotated.question_answering): offsets and windows, best-span rules, the QA head, token tagging."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bert_annotated.masking import IGNORE_INDEX
from bert_annotated.model import BertForQuestionAnswering, BertForTokenClassification
from bert_annotated.qa_data import Answer, QAExample, read_squad_json
from bert_annotated.question_answering import (
    QAFeature,
    align_word_labels,
    answer_token_span,
    best_spans,
    doc_windows,
    is_max_context,
    make_features,
    predict_answers,
    train_qa,
)
from bert_annotated.tokenization import BertTokenizer, tokenize_with_offsets

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "book" / "data" / "qa-sample"
MODEL = ROOT / "book" / "models" / "bert-mini-bilingual"


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(str(MODEL / "vocab.txt"))


# metrics ------------------------------------------------------------------------------------------------------------


# loaders ------------------------------------------------------------------------------------------------------------

def test_sample_files_load_with_every_question(tokenizer):
    for name, count in (("squad-v1.1-dev-sample.json", 20), ("drcd-dev-sample.json", 9)):
        examples = read_squad_json(SAMPLE / name)
        assert len(examples) == count
        assert all(e.context[a.start:a.start + len(a.text)] == a.text for e in examples for a in e.answers)


# offsets and windows ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["Tesla's AC motor (1888), patented in Zürich!", "臺灣大學成立於1928年，BERT-base。",
                                  "tab\there  and\u3000ideographic space", "naïve façade İstanbul straße", ""])
def test_offsets_give_the_pieces_of_the_tokenizer(tokenizer, text):
    pieces, offsets = tokenize_with_offsets(tokenizer, text)
    assert pieces == tokenizer.tokenize(text)
    for piece, (start, end) in zip(pieces, offsets):
        assert 0 <= start < end <= len(text)
        if piece != "[UNK]" and text[start:end].isascii():
            assert text[start:end].lower() == piece.removeprefix("##")


def test_windows_and_max_context():
    assert doc_windows(0, 5, 2) == [(0, 0)]
    assert doc_windows(5, 5, 2) == [(0, 5)]
    windows = doc_windows(12, 5, 3)
    assert windows == [(0, 5), (3, 5), (6, 5), (9, 3)]
    assert sorted(position for position in range(12) for index in range(4)
                  if is_max_context(windows, index, position)) == list(range(12))
    assert is_max_context(windows, 1, 4) and not is_max_context(windows, 0, 4)  # 4 is central in window 1
    assert answer_token_span([(0, 5), (6, 8), (8, 12)], Answer("xx yy", 6)) == (1, 2)
    assert answer_token_span([(0, 5)], Answer("x", -1)) is None


@pytest.mark.parametrize("name", ["squad-v1.1-dev-sample.json", "drcd-dev-sample.json"])
@pytest.mark.parametrize("max_seq_length, doc_stride", [(64, 24), (96, 40), (256, 128)])
def test_every_gold_answer_is_recoverable_from_a_window(tokenizer, name, max_seq_length, doc_stride):
    examples = read_squad_json(SAMPLE / name)
    features = make_features(examples, tokenizer, max_seq_length, doc_stride)
    recovered = set()
    for feature in features:
        assert len(feature.input_ids) <= max_seq_length
        assert len(feature.input_ids) == len(feature.token_type_ids) == len(feature.offsets) == len(feature.is_max_context)
        if feature.start_position:
            example = examples[feature.example_index]
            text = example.context[feature.offsets[feature.start_position][0]:feature.offsets[feature.end_position][1]]
            assert text == example.answers[0].text
            recovered.add(feature.example_index)
    fits = set()  # answers short enough that the overlap of two windows guarantees one holds them
    for index, example in enumerate(examples):
        _, offsets = tokenize_with_offsets(tokenizer, example.context)
        first, last = answer_token_span(offsets, example.answers[0])
        if last - first + 1 <= max_seq_length - len(tokenizer.tokenize(example.question)[:64]) - 3 - doc_stride:
            fits.add(index)
    assert fits <= recovered and len(recovered) >= 0.8 * len(examples)
    if max_seq_length == 256:
        assert recovered == set(range(len(examples)))
    with pytest.raises(ValueError, match="max_seq_length"):
        make_features(examples, tokenizer, max_seq_length=8)


# best span ----------------------------------------------------------------------------------------------------------

def make_feature(max_context=(True, True, True, True)):
    return QAFeature(0, [2, 9, 3, 9, 9, 9, 9, 3], [0, 0, 0, 1, 1, 1, 1, 1],
                     [None, None, None, (0, 1), (2, 3), (4, 5), (6, 7), None], [False] * 3 + list(max_context) + [False], 0, 0)


def test_best_span_rules():
    feature = make_feature()
    start = torch.tensor([9., 9., 0., 1., 0., .5, 0., 9.])  # [CLS], question, final [SEP] score highest
    end = torch.tensor([9., 0., 9., 0., 0., 0., 2., 9.])
    assert best_spans(start, end, feature)[0] == (3.0, 3, 6)
    assert all(s >= 3 and e <= 6 and s <= e for _, s, e in best_spans(start, end, feature))
    assert best_spans(start, end, feature, max_answer_length=3)[0] == (2.5, 5, 6)  # (3, 6) is 4 tokens long
    end_first = torch.zeros(8)
    end_first[3] = 5.0
    start_later = torch.zeros(8)
    start_later[5] = 5.0
    assert best_spans(start_later, end_first, feature)[0] == (5.0, 5, 6)  # never (5, 3): the end precedes the start
    not_owned = make_feature((False, True, True, True))
    assert all(s != 3 for _, s, _ in best_spans(start, end, not_owned))
    padded = torch.cat([start, torch.full((4,), 99.)]), torch.cat([end, torch.full((4,), 99.)])
    assert best_spans(*padded, feature) == best_spans(start, end, feature)  # padding is never an answer


def test_prediction_picks_the_best_window_and_returns_exact_text(tokenizer):
    class Oracle(torch.nn.Module):  # scores the gold span of window 1 high, and a wrong span of window 0 lower
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, token_type_ids, attention_mask):
            start, end = torch.zeros(input_ids.shape), torch.zeros(input_ids.shape)
            for row in range(input_ids.shape[0]):
                start[row, targets[row][0]], end[row, targets[row][1]] = targets[row][2], targets[row][2]
            return type("Output", (), {"start_logits": start, "end_logits": end})

    context = "one two three four five six seven eight nine ten eleven twelve River thirteen fourteen."
    example = QAExample("x", "t", context, "which letter?", (Answer("River", 0),))
    features = make_features([example], tokenizer, max_seq_length=16, doc_stride=4)
    assert len(features) > 2
    owner, piece = next((f, i) for f, feature in enumerate(features) for i, o in enumerate(feature.offsets)
                        if o and context[o[0]:o[1]] == "River" and feature.is_max_context[i])
    decoy = next(i for i, o in enumerate(features[0].offsets) if o and features[0].is_max_context[i])
    targets = [(0, 0, 0.0)] * len(features)
    targets[owner] = (piece, piece, 5.0)
    if owner != 0:
        targets[0] = (decoy, decoy, 1.0)
    predictions = predict_answers(Oracle(), [example], features, tokenizer.pad_token_id, batch_size=len(features))
    assert predictions == {"x": "River"}  # the original text, capital and all


# the model ----------------------------------------------------------------------------------------------------------

def test_qa_head_matches_transformers_and_round_trips(tmp_path, tiny_config):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    reference = transformers.BertForQuestionAnswering(transformers.BertConfig(**tiny_config().to_dict())).eval()
    ours = BertForQuestionAnswering(tiny_config()).load_hf_state_dict(reference.state_dict()).eval()
    ids, types = torch.randint(5, 99, (2, 12)), torch.tensor([[0] * 5 + [1] * 7] * 2)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    with torch.no_grad():
        theirs = reference(input_ids=ids, token_type_ids=types, attention_mask=mask,
                           start_positions=torch.tensor([6, 0]), end_positions=torch.tensor([8, 0]))
        mine = ours(ids, types, mask, torch.tensor([6, 0]), torch.tensor([8, 0]))
    torch.testing.assert_close(mine.start_logits, theirs.start_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(mine.end_logits, theirs.end_logits, atol=1e-5, rtol=0)
    assert mine.loss.item() == pytest.approx(theirs.loss.item(), abs=1e-5)
    # our model saved with HF names loads into transformers, and a saved HF QA folder loads into ours
    back = transformers.BertForQuestionAnswering(transformers.BertConfig(**tiny_config().to_dict())).eval()
    back.load_state_dict(ours.hf_state_dict(), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=ids).start_logits, reference(input_ids=ids).start_logits)
    reference.save_pretrained(tmp_path / "hf-qa")
    loaded = BertForQuestionAnswering.from_pretrained(tmp_path / "hf-qa").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).end_logits, reference(input_ids=ids).end_logits, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="end_positions"):
        ours(ids, start_positions=torch.tensor([0, 1]), end_positions=torch.tensor([0, 12]))


def test_book_model_loads_as_qa_model_with_fresh_head():
    model = BertForQuestionAnswering.from_pretrained(MODEL)
    assert model.config.vocab_size == 30000 and model.config.max_position_embeddings == 512
    assert abs(model.qa_outputs.weight.std().item() - 0.02) < 0.005 and torch.all(model.qa_outputs.bias == 0)


def test_a_few_training_steps_lower_the_loss(tokenizer, tiny_config):
    torch.manual_seed(0)
    config = tiny_config(vocab_size=len(tokenizer), num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=128)  # 96-token windows
    examples = read_squad_json(SAMPLE / "drcd-dev-sample.json")[:4]
    features = make_features(examples, tokenizer, max_seq_length=96, doc_stride=48)
    losses = train_qa(BertForQuestionAnswering(config), features, tokenizer.pad_token_id, epochs=8, batch_size=8, lr=3e-3)
    assert sum(losses[-2:]) / 2 < losses[0] * 0.8
    with pytest.raises(ValueError, match="at least one window"):
        train_qa(BertForQuestionAnswering(config), [], tokenizer.pad_token_id)


# token tagging ------------------------------------------------------------------------------------------------------

def test_token_labels_go_on_first_pieces_only(tokenizer):
    labels = {"O": 0, "B-LOC": 1}
    item = align_word_labels(tokenizer, ["Guangzhou", "and", "廣東"], ["B-LOC", "O", "B-LOC"], labels)
    pieces = tokenizer.convert_ids_to_tokens(item["input_ids"])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    first = [i for i, w in enumerate(item["word_ids"]) if w is not None and item["word_ids"][i - 1] != w]
    assert [item["labels"][i] for i in first] == [1, 0, 1]
    assert all(label == IGNORE_INDEX for i, label in enumerate(item["labels"]) if i not in first)
    assert all(item["labels"][i] == IGNORE_INDEX for i, p in enumerate(pieces) if p.startswith("##"))
    assert pieces[first[2]:first[2] + 2] == ["廣", "東"]
    with pytest.raises(ValueError, match="2 words but 1 labels"):
        align_word_labels(tokenizer, ["a", "b"], ["O"], labels)
    with pytest.raises(ValueError, match="not one of"):
        align_word_labels(tokenizer, ["a"], ["B-PER"], labels)


def test_token_classifier_ignores_unlabelled_pieces(tiny_config):
    torch.manual_seed(0)
    model = BertForTokenClassification(tiny_config(), num_labels=3).eval()
    ids = torch.randint(5, 99, (2, 6))
    labels = torch.tensor([[IGNORE_INDEX, 1, IGNORE_INDEX, 2, 0, IGNORE_INDEX], [IGNORE_INDEX, 0, 0, 0, IGNORE_INDEX, IGNORE_INDEX]])
    output = model(ids, labels=labels)
    keep = labels != IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(output.logits[keep], labels[keep])
    assert output.logits.shape == (2, 6, 3) and output.loss.item() == pytest.approx(expected.item(), abs=1e-6)
    with pytest.raises(ValueError, match="num_labels"):
        BertForTokenClassification(tiny_config(), num_labels=1)
