"""Appendix H: the two QA baselines without a network (SQuAD's sliding window, the best-overlap sentence)."""
from __future__ import annotations

import json
import math

import pytest

from bert_annotated.qa_baselines import (
    answer_length_cap,
    baseline_words,
    best_sentence_answer,
    run_qa_baselines,
    sentence_spans,
    sliding_window_answer,
    write_qa_baselines,
)
from bert_annotated.qa_data import Answer, QAExample

# Two sentences; after dropping punctuation the passage has 12 words, "tesla" twice (IC = log 1.5), the others
# once (IC = log 2):  0 tesla 1 was 2 born 3 at 4 smiljan | 5 in 6 1884 7 tesla 8 moved 9 to 10 new 11 york
PASSAGE = "Tesla was born at Smiljan. In 1884 Tesla moved to New York."
QUESTION = "When did Tesla move to New York?"  # words: when did tesla move to new york ("move" is not "moved")


def test_words_are_lower_case_without_punctuation_or_articles_and_characters_in_chinese():
    assert [word for word, _, _ in baseline_words("The U.S. Army, a force!")] == ["u", "s", "army", "force"]
    words = baseline_words("1884年特斯拉 BERT。")
    assert [word for word, _, _ in words] == ["1884", "年", "特", "斯", "拉", "bert"]
    assert [(start, end) for _, start, end in words] == [(0, 4), (4, 5), (5, 6), (6, 7), (7, 8), (9, 13)]


def test_sentences_end_at_final_punctuation_before_a_space_and_at_chinese_stops():
    text = 'He said "Go." Then 1.5 m! Is it? 你好。再見'
    assert [text[start:end].strip() for start, end in sentence_spans(text)] == [
        'He said "Go."', "Then 1.5 m!", "Is it?", "你好。", "再見"]  # 1.5 is not cut: no space after the point


def test_sliding_window_worked_by_hand():
    # Step 1: in sentence 2 the question words are tesla, to, new, york: a candidate that takes none of them keeps
    # all four (overlap 4); sentence 1 reaches 1 at most. Candidates of <= 2 words: "in", "1884", "in 1884", "moved".
    # Step 2, a window of |S| words over the passage, S = question words + candidate words:
    #   "in 1884": |S| = 9, window 3..11 holds in, 1884, tesla, to, new, york: 5 log 2 + log 1.5 = 3.87 (the best);
    #   "in", "1884", "moved": |S| = 8, window 4..11 holds the word, tesla, to, new, york: 4 log 2 + log 1.5 = 3.18.
    assert sliding_window_answer(QUESTION, PASSAGE, max_words=2) == "In 1884"
    assert sliding_window_answer(QUESTION, PASSAGE, max_words=3) == "In 1884"  # "in 1884 tesla" loses tesla: overlap 3
    assert sliding_window_answer(QUESTION, PASSAGE, max_words=1) == "In"  # three ties at 3.18: the first wins
    assert math.isclose(5 * math.log(2) + math.log(1.5), 3.871, abs_tol=1e-3)


def test_a_candidate_that_takes_a_question_word_loses_step_one():
    # Every span of "Paris beat Rome" either leaves "beat" outside (overlap 1) or takes it (overlap 0).
    assert sliding_window_answer("Who beat Rome?", "Paris beat Rome.", max_words=3) == "Paris"
    assert sliding_window_answer("Who did Paris beat?", "Paris beat Rome.", max_words=3) == "Rome"


def test_chinese_words_are_characters():
    passage, question = "特斯拉生於斯米良。1884年特斯拉移居紐約。", "特斯拉哪一年移居紐約？"
    # sentence 2 shares 年 特 斯 拉 移 居 紐 約 with the question: only "1884" keeps all eight outside it
    assert sliding_window_answer(question, passage, max_words=10) == "1884"
    assert best_sentence_answer(question, passage) == "1884年特斯拉移居紐約。"


def test_best_sentence_is_the_one_with_most_question_words_and_the_first_on_ties():
    assert best_sentence_answer(QUESTION, PASSAGE) == "In 1884 Tesla moved to New York."
    assert best_sentence_answer("Where was Tesla born?", PASSAGE) == "Tesla was born at Smiljan."
    assert best_sentence_answer("Who?", "Cats purr. Dogs bark.") == "Cats purr."  # no overlap anywhere: the first
    assert best_sentence_answer("Who?", " ... ") == "" and sliding_window_answer("Who?", "!?") == ""


@pytest.mark.parametrize("max_words", [0, -1, 1.5, True, "3"])
def test_max_words_must_be_a_positive_integer(max_words):
    with pytest.raises(ValueError, match="max_words must be a positive integer"):
        sliding_window_answer(QUESTION, PASSAGE, max_words=max_words)


def test_answer_length_cap_is_the_coverage_quantile_of_first_gold_answers():
    def example(*answers):
        return QAExample("id", "t", "c", "q", tuple(Answer(text, 0) for text in answers))
    examples = [example("Paris"), example("the Rhine"), example("New York", "York"), example("x y z"),
                example("one two three four five six seven eight nine ten")]
    assert [len(baseline_words(e.answers[0].text)) for e in examples] == [1, 1, 2, 3, 10]
    assert answer_length_cap(examples, coverage=0.8) == 3 and answer_length_cap(examples, coverage=1.0) == 10
    assert answer_length_cap(examples, coverage=0.4) == 1


def _drcd_file(path, questions):
    context = "特斯拉生於斯米良。1884年特斯拉移居紐約。"
    qas = [{"id": f"q{n}", "question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}]}
           for n, (question, answer) in enumerate(questions)]
    path.write_text(json.dumps({"data": [{"title": "特斯拉", "paragraphs": [{"context": context, "qas": qas}]}]},
                               ensure_ascii=False), encoding="utf-8")


def test_records_score_the_baselines_with_the_official_metrics_and_are_written_atomically(tmp_path):
    folder = tmp_path / "corpora" / "drcd-contexts"
    folder.mkdir(parents=True)
    _drcd_file(folder / "DRCD_test.json", [("特斯拉哪一年移居紐約？", "1884")])
    _drcd_file(folder / "DRCD_dev.json", [("特斯拉哪一年移居紐約？", "1884"), ("特斯拉生於哪裡？", "斯米良")])
    records = run_qa_baselines("drcd", tmp_path)
    window, sentence = records
    assert (window["baseline"], sentence["baseline"]) == ("sliding window", "best sentence")
    assert window["max_words"] == 1 and sentence["max_words"] is None  # the training answer "1884" is one word
    assert window["split"] == ("DRCD: train on DRCD_test.json, evaluate on DRCD_dev.json; "
                               "1 of 1 training questions, 2 of 2 evaluation questions")
    # q2, N = 1: sentence 1 shares 特 斯 拉 生 於 with the question, and 斯 twice, so 斯 (the second), 米 and 良
    # each keep all five outside (overlap 5). Step 2: 米 and 良 both get the window 特斯拉生於斯米良 minus one,
    # log 1.5 + 2 log(4/3) + log 1.5 + 3 log 2 = 3.47, the second 斯 (S = the question alone, 7 words) 2.77: 米 first.
    assert [item["predicted"] for item in window["examples"]] == ["1884", "米"]
    # q1 exact; q2: 米 against 斯米良, one character of three in common: p = 1, r = 1/3, F1 = 0.5
    assert math.isclose(window["em"], 50) and math.isclose(window["f1"], 100 * (1 + 0.5) / 2)
    # best sentence: q1 gets 1884年特斯拉移居紐約。 (9 segments, 1 in common: p = 1/9, r = 1, F1 = 0.2); q2 gets
    # 特斯拉生於斯米良。 (8 characters, the run 斯米良 of 3 in common: p = 3/8, r = 1, F1 = 6/11)
    assert sentence["em"] == 0 and math.isclose(sentence["f1"], 100 * (0.2 + 6 / 11) / 2)
    output = tmp_path / "out" / "baselines.json"
    output.parent.mkdir()
    written = write_qa_baselines(tmp_path, output, {"drcd": (None, 1)})
    assert json.loads(output.read_text(encoding="utf-8")) == written and len(written) == 2
    assert written[0]["eval_examples"] == 1 and written[0]["command"].startswith("python -c ")
    assert written[0]["device"] == "cpu" and written[0]["date"]
