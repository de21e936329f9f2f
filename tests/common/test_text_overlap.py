"""BLEU-4 (characters, smoothing method 3) and ROUGE-1/2/L (jieba-like words, distinct n-grams) on hand-made pairs."""

import math

import pytest

from common.eval.text_overlap import (
    char_bleu4,
    example_scores,
    jieba_like_words,
    lcs_length,
    rouge_l,
    rouge_n,
    rouge_words,
    sentence_bleu,
    text_overlap,
)


def test_bleu_of_an_exact_copy_is_one():
    assert char_bleu4("abcd", "abcd") == pytest.approx(1.0)


def test_bleu_smooths_each_empty_order_with_the_next_power_of_two():
    # hyp abxd vs ref abcd: p1 3/4, p2 1/3, p3 0/2 -> 1/(2*2), p4 0/1 -> 1/(4*1); BP 1 (equal lengths)
    assert char_bleu4("abxd", "abcd") == pytest.approx((3 / 4 * 1 / 3 * 1 / 4 * 1 / 4) ** 0.25)


def test_bleu_brevity_penalty_and_a_missing_fourgram():
    # hyp abc vs ref abcd: p1 = p2 = p3 = 1, no 4-gram at all -> 1/(2*max(1, 0)); BP exp(1 - 4/3)
    assert char_bleu4("abc", "abcd") == pytest.approx(math.exp(1 - 4 / 3) * 0.5 ** 0.25)


def test_bleu_is_zero_without_a_matching_unigram_or_for_an_empty_answer():
    assert char_bleu4("xyz", "abcd") == 0.0
    assert char_bleu4("", "abcd") == 0.0


def test_bleu_clips_counts_by_the_most_generous_reference():
    # hyp "aa": unigram a twice; refs "ab" (one a) and "aac" (two a): clip at 2 -> p1 = 1; bigram aa in ref 2 -> p2 = 1;
    # p3 (0/1) -> 1/2, p4 (0/1) -> 1/4; closest ref length to 2 is 2 ("ab") -> BP 1
    assert sentence_bleu([list("ab"), list("aac")], list("aa")) == pytest.approx((1 * 1 * 0.5 * 0.25) ** 0.25)


def test_words_split_like_jieba_on_english_text():
    assert jieba_like_words("Hello, world.") == ["Hello", ",", " ", "world", "."]
    assert jieba_like_words("It costs 3.14% more... well-known") == [
        "It", " ", "costs", " ", "3.14%", " ", "more", "...", " ", "well", "-", "known"]
    assert jieba_like_words("我是人") == ["我", "是", "人"]


def test_rouge_counts_distinct_ngrams():
    hyp, ref = ["the", "cat", "sat", "on", "the", "mat"], ["the", "cat", "is", "on", "the", "mat"]
    # unigram sets {the, cat, sat, on, mat} and {the, cat, is, on, mat}: 4 shared of 5 each (a multiset count would
    # give 5 of 6)
    assert rouge_n(hyp, ref, 1) == pytest.approx(0.8)
    # bigrams: the-cat, on-the, the-mat shared, 5 distinct each
    assert rouge_n(hyp, ref, 2) == pytest.approx(0.6)
    # LCS "the cat on the mat" = 5 of 6 words on both sides
    assert lcs_length(ref, hyp) == 5
    assert rouge_l(hyp, ref) == pytest.approx(5 / 6)


def test_example_scores_are_percent_rounded_to_four_places():
    s = example_scores("the cat sat on the mat", "the cat is on the mat")
    assert s["rouge-1"] == 80.0 and s["rouge-2"] == 60.0 and s["rouge-l"] == 83.3333
    assert s["bleu-4"] == round(char_bleu4("the cat sat on the mat", "the cat is on the mat") * 100, 4)


def test_a_whitespace_only_sentence_becomes_an_empty_word_as_rouge_chinese():
    assert rouge_words("a \n \n b") == ["a", "", "b"]
    assert rouge_words("Yes ? No") == ["Yes", "?", "No"]  # cut after '?': the mark stays a word


def test_empty_answers_score_zero_and_the_mean_runs_over_examples():
    assert example_scores("", "abc") == {"bleu-4": 0.0, "rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    means = text_overlap(["abcd", ""], ["abcd", "x"])
    assert means == {"bleu-4": 50.0, "rouge-1": 50.0, "rouge-2": 0.0, "rouge-l": 50.0}  # 1 word: no bigram
    assert text_overlap([], []) == {"bleu-4": None, "rouge-1": None, "rouge-2": None, "rouge-l": None}
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        text_overlap(["a", "b"], ["a"])
