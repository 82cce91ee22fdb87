"""SQuAD's and CMRC's exact match and F1 (bert_annotated.qa_metrics): chapter 11 and appendix H."""
from __future__ import annotations


import pytest

from bert_annotated.qa_data import Answer, QAExample
from bert_annotated.qa_metrics import (
    cmrc_exact_match,
    cmrc_f1,
    evaluate_answers,
    mixed_segmentation,
    normalize_answer,
    squad_exact_match,
    squad_f1,
)


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
