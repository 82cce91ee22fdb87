"""Chapter 11: QA loaders, offsets and windows, best-span rules, metrics, the QA head, token tagging."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from bert_annotated.masking import IGNORE_INDEX
from bert_annotated.model import BertForQuestionAnswering, BertForTokenClassification
from bert_annotated.qa_data import (
    CMRC2018_URLS,
    DRCD_URLS,
    SQUAD_URLS,
    Answer,
    QAExample,
    download_to_cache,
    load_cmrc2018,
    load_drcd,
    load_squad,
    read_squad_json,
    split_by_article,
    subsample,
)
from bert_annotated.qa_metrics import (
    cmrc_exact_match,
    cmrc_f1,
    evaluate_answers,
    mixed_segmentation,
    normalize_answer,
    squad_exact_match,
    squad_f1,
)
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
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(str(MODEL / "vocab.txt"))


def squad_file(tmp_path, qas, context="Paris is the capital of France."):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": qas}]}]}), encoding="utf-8")
    return path


# metrics ------------------------------------------------------------------------------------------------------------

def test_squad_metrics_on_hand_examples():
    assert normalize_answer("  The Eiffel-Tower, an icon! ") == "eiffeltower icon"
    assert squad_exact_match("an Eiffel Tower", "Eiffel Tower.") == 1.0
    assert squad_exact_match("Tower", "Eiffel Tower") == 0.0
    # 1 common word of 3 predicted and 2 gold: p = 1/3, r = 1/2, F1 = 0.4
    assert squad_f1("tall Eiffel structure", "Eiffel Tower") == pytest.approx(0.4)
    assert squad_f1("", "Eiffel Tower") == 0.0
    assert squad_f1("Paris Paris", "Paris") == pytest.approx(2 * 0.5 * 1 / 1.5)  # bags, not sets


def test_cmrc_metrics_on_hand_examples():
    assert mixed_segmentation("Hello 世界，BERT-base！") == ["hello", "世", "界", "bert", "base"]
    assert cmrc_exact_match("《梵語》", "梵語") == 1.0
    assert cmrc_f1("梵語", "梵語") == 1.0
    # longest common run 2 (馬祖), prediction 3 segments, gold 2: p = 2/3, r = 1, F1 = 0.8
    assert cmrc_f1("馬祖島", "馬祖") == pytest.approx(0.8)
    assert cmrc_f1("祖馬", "馬祖") == pytest.approx(0.5)  # a run, not a bag: only one character in common
    assert cmrc_f1("", "馬祖") == 0.0


def test_evaluate_takes_the_best_gold_answer_and_checks_predictions():
    examples = [QAExample("a", "t", "c", "q", (Answer("1888", 0), Answer("in 1888", 0))),
                QAExample("b", "t", "c", "q", (Answer("西元前", 0),))]
    assert evaluate_answers({"a": "in 1888", "b": "x"}, examples[:1], "en") == {"em": 100.0, "f1": 100.0}
    scores = evaluate_answers({"a": "x", "b": "西元"}, examples[1:], "zh")
    assert scores["em"] == 0.0 and scores["f1"] == pytest.approx(100 * 0.8)
    with pytest.raises(ValueError, match="no prediction"):
        evaluate_answers({"a": "x"}, examples, "zh")
    with pytest.raises(ValueError, match="language"):
        evaluate_answers({"a": "x", "b": "y"}, examples, "fr")


# loaders ------------------------------------------------------------------------------------------------------------

def test_sample_files_load_with_every_question(tokenizer):
    for name, count in (("squad-v1.1-dev-sample.json", 20), ("drcd-dev-sample.json", 9)):
        examples = read_squad_json(SAMPLE / name)
        assert len(examples) == count
        assert all(e.context[a.start:a.start + len(a.text)] == a.text for e in examples for a in e.answers)


@pytest.mark.parametrize("qas, where", [
    ([{"id": "q", "answers": [{"text": "Paris", "answer_start": 0}]}], r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.question"),
    ([{"id": "q", "question": "?", "answers": [{"answer_start": 0}]}], r"qas\[0\]\.answers\[0\]\.text is missing"),
    ([{"id": "q", "question": "?", "answers": [{"text": "Paris", "answer_start": "0"}]}], r"answer_start is a str"),
    ([{"id": "q", "question": "?", "answers": []}], r"qas\[0\]\.answers is empty"),
    ({"id": "q"}, r"paragraphs\[0\]\.qas is a dict"),
])
def test_malformed_json_names_file_and_entry(tmp_path, qas, where):
    path = squad_file(tmp_path, qas)
    with pytest.raises(ValueError, match=where) as error:
        read_squad_json(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_not_json_duplicate_ids_and_missing_data(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json: cannot read it as a JSON"):
        read_squad_json(bad)
    bad.write_text(json.dumps({"version": "1.1"}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"\$\.data is missing"):
        read_squad_json(bad)
    qa = {"id": "q", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]}
    with pytest.raises(ValueError, match="appears twice"):
        read_squad_json(squad_file(tmp_path, [qa, qa]))


def test_answer_start_mismatch_is_loud(tmp_path):
    path = squad_file(tmp_path, [
        {"id": "q1", "question": "?", "answers": [{"text": "France", "answer_start": 3}]},
        {"id": "q2", "question": "?", "answers": [{"text": "Berlin", "answer_start": 0}]},
        {"id": "q3", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]}])
    with pytest.raises(ValueError, match=r"2 answer\(s\).*qas\[0\]\.answers\[0\] \(id q1\)"):
        read_squad_json(path)
    with pytest.warns(UserWarning, match="moved 1 .* 1 do not occur"):
        examples = read_squad_json(path, on_mismatch="repair")
    assert [e.answers[0].start for e in examples] == [24, -1, 0]  # no question dropped
    features = make_features(examples, BertTokenizer(str(MODEL / "vocab.txt")))
    assert [f.start_position > 0 for f in features] == [True, False, True]  # q2 is never a training target


def test_loaders_read_folders_and_download_once(tmp_path, monkeypatch):
    source = tmp_path / "remote"
    source.mkdir()
    (source / "DRCD_dev.json").write_bytes((SAMPLE / "drcd-dev-sample.json").read_bytes())
    assert len(load_drcd("dev", path=source)) == 9  # a folder in the published layout
    monkeypatch.setitem(DRCD_URLS,
                        "dev", (source / "DRCD_dev.json").as_uri())
    cache = tmp_path / "cache"
    assert len(load_drcd("dev", cache_dir=cache)) == 9
    assert (cache / "DRCD_dev.json").is_file() and not list(cache.glob("*.tmp"))
    (source / "DRCD_dev.json").unlink()
    assert len(load_drcd("dev", cache_dir=cache)) == 9  # from the cache, no second download
    with pytest.raises(ValueError, match="cannot download"):
        download_to_cache((source / "missing.json").as_uri(), cache)
    assert not list(cache.glob("*.tmp"))
    with pytest.raises(ValueError, match="no split 'test'"):
        load_squad("test")
    with pytest.raises(ValueError, match="no such file"):
        load_squad("dev", path=tmp_path / "nowhere.json")
    assert set(SQUAD_URLS) == {"train", "dev"} and set(CMRC2018_URLS) == {"train", "dev", "trial"}


@pytest.mark.skipif(not (SHARED / "corpora").is_dir(), reason="needs ../shared (the full datasets)")
def test_full_datasets_load_with_every_question():
    squad = load_squad("dev", path=SHARED / "datasets" / "squad-v1.1")
    assert len(squad) == 10570 and sum(len(e.answers) for e in squad) == 34726
    train, evaluation = split_by_article(squad, 32)
    assert len({e.title for e in train}) == 32 and evaluation[0].title == "Jacksonville,_Florida"
    assert not {e.title for e in train} & {e.title for e in evaluation}
    assert len(load_drcd("dev", path=SHARED / "corpora" / "drcd-contexts")) == 3524
    assert len(load_drcd("test", path=SHARED / "corpora" / "drcd-contexts")) == 3493
    with pytest.warns(UserWarning, match="200 answer"):
        cmrc = load_cmrc2018("dev", path=SHARED / "corpora" / "cmrc2018-contexts")
    assert len(cmrc) == 3219


def test_subsample_is_fixed_and_ordered():
    items = list(range(100))
    assert subsample(items, 10) == subsample(items, 10) == sorted(subsample(items, 10))
    assert subsample(items, None) == items and subsample(items, 500) == items


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
