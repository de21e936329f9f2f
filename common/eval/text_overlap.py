"""BLEU-4 and ROUGE-1/2/L of generated answers against reference answers, as LLaMA-Factory's SFT ``do_predict``.

What upstream computes per example ([CODE] hiyouga/LLaMA-Factory src/llmtuner/train/sft/metric.py
``ComputeMetrics``, the release RLDF's SFT ran; later releases call it ``ComputeSimilarity``):
- BLEU-4 on **characters**: nltk ``sentence_bleu([list(label)], list(pred), smoothing_function=method3)`` (uniform
  weights over 1-4-grams, spaces are characters too), × 100 and rounded to 4 places;
- ROUGE-1/2/L on jieba **words**: ``rouge_chinese.Rouge().get_scores(" ".join(jieba.cut(pred)),
  " ".join(jieba.cut(label)))``, each f-score × 100 and rounded to 4 places; all three are 0 when either side has
  no word;
- the reported ``predict_bleu-4`` / ``predict_rouge-*`` are the means over examples.

Re-implemented here without nltk, jieba or rouge_chinese:
- BLEU follows nltk's ``sentence_bleu``: clipped n-gram precisions over ``max(1, hypothesis n-grams)``, 0 when no
  unigram matches, brevity penalty from the closest reference length, and smoothing method 3 (NIST geometric
  sequence: the k-th precision with no match becomes 1 / (2^k · its denominator); Chen & Cherry 2014).
- ROUGE follows rouge_chinese 1.0.3 ([CODE] Isaac-JL-Chen/rouge_chinese rouge_chinese/rouge.py, rouge_score.py):
  sentences cut after 。！？? (``cut_sent``), each sentence's whitespace collapsed, words = the sentences' words
  concatenated; ROUGE-N counts **distinct** n-grams (``exclusive=True``: sets, not multisets); ROUGE-L is the plain
  LCS of the two word sequences over their lengths; F = 2PR / (P + R + 1e-8).
- Words follow jieba's default mode ([CODE] fxsjy/jieba jieba/__init__.py ``cut``, jieba/finalseg ``cut``): every
  whitespace character is a token, runs of ``[a-zA-Z0-9]`` (with a decimal part and ``%``: "3.14", "50%") are one
  word, a run of ``+#&._%-`` between them is one token ("...", "--"), any other character is its own token.
  Deviation: jieba joins Chinese characters into dictionary words (a 5 MB dictionary and an HMM); here each Chinese
  character is one word, which raises ROUGE on Chinese text. English text segments as jieba does, unless jieba's
  dictionary holds a Latin-letter entry.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

# jieba's default-mode block pattern (re_han_default), whitespace pattern (re_skip_default) and the HMM fallback's
# alphanumeric pattern (finalseg.re_skip)
_JIEBA_BLOCK = re.compile("([\u4E00-\u9FD5a-zA-Z0-9+#&\\._%\\-]+)")
_JIEBA_SPACE = re.compile(r"(\r\n|\s)")
_HAN = re.compile("([\u4E00-\u9FD5]+)")
_ALNUM = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")

METRIC_KEYS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")


def jieba_like_words(text: str) -> list[str]:
    """Tokens as ``jieba.cut(text)`` yields them (whitespace included), each Chinese character one word."""
    out: list[str] = []
    for block in _JIEBA_BLOCK.split(text):
        if not block:
            continue
        if _JIEBA_BLOCK.fullmatch(block):
            for part in _HAN.split(block):
                if _HAN.fullmatch(part):
                    out.extend(part)
                elif len(part) == 1:
                    out.append(part)
                else:
                    out.extend(x for x in _ALNUM.split(part) if x)
        else:
            for piece in _JIEBA_SPACE.split(block):
                if _JIEBA_SPACE.fullmatch(piece):
                    out.append(piece)
                else:
                    out.extend(piece)
    return out


# ---------------------------------------------------------------------------------------------------------------
# BLEU


def _ngrams(tokens: Sequence, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def sentence_bleu(references: Sequence[Sequence], hypothesis: Sequence, max_n: int = 4) -> float:
    """Smoothed sentence BLEU (uniform weights over 1..max_n-grams, smoothing method 3) in [0, 1].

    p_n = Σ min(count_hyp(g), max_ref count_ref(g)) / max(1, Σ count_hyp(g)); a p_n with no match is replaced by
    1 / (2^k · denominator), k = 1, 2, ... in order; BP = 1 if c > r, 0 if c = 0, else exp(1 − r/c) with r the
    reference length closest to c (the shorter one on a tie); BLEU = BP · exp(Σ_n log p_n / max_n), and 0 when no
    unigram matches at all (as nltk).
    """
    numerators, denominators = [], []
    for n in range(1, max_n + 1):
        hyp = _ngrams(hypothesis, n)
        best: Counter = Counter()
        for ref in references:
            best |= _ngrams(ref, n)  # per n-gram, the largest count in any one reference
        numerators.append(sum(min(c, best[g]) for g, c in hyp.items()))
        denominators.append(max(1, sum(hyp.values())))
    if numerators[0] == 0:
        return 0.0
    c = len(hypothesis)
    r = min((len(ref) for ref in references), key=lambda length: (abs(length - c), length))
    bp = 1.0 if c > r else (0.0 if c == 0 else math.exp(1 - r / c))
    k, log_p = 1, 0.0
    for num, den in zip(numerators, denominators):
        if num == 0:
            p = 1 / (2 ** k * den)
            k += 1
        else:
            p = num / den
        log_p += math.log(p) / max_n
    return bp * math.exp(log_p)


def char_bleu4(prediction: str, reference: str) -> float:
    """Upstream's BLEU-4 of one example: characters as tokens, one reference. In [0, 1]."""
    return sentence_bleu([list(reference)], list(prediction))


# ---------------------------------------------------------------------------------------------------------------
# ROUGE


def _cut_sentences(para: str) -> list[str]:
    """rouge_chinese ``Rouge.cut_sent``: a line break after 。！？? (and after ...... and ……) unless a closing quote
    follows, and after such a mark followed by a closing quote."""
    para = re.sub("([。！？?])([^”’])", r"\1\n\2", para)
    para = re.sub(r"(\.{6})([^”’])", r"\1\n\2", para)
    para = re.sub("(…{2})([^”’])", r"\1\n\2", para)
    para = re.sub("([。！？?][”’])([^，。！？?])", r"\1\n\2", para)
    return para.rstrip().split("\n")


def rouge_words(joined: str) -> list[str]:
    """The word list rouge_chinese scores for a space-joined text: sentences cut, whitespace collapsed, flattened
    (a whitespace-only sentence contributes one empty word, as upstream)."""
    sentences = [" ".join(s.split()) for s in _cut_sentences(joined) if len(s) > 0]
    return [w for s in sentences for w in s.split(" ")]


def _f1(overlap: int, n_hyp: int, n_ref: int) -> float:
    p = overlap / n_hyp if n_hyp else 0.0
    r = overlap / n_ref if n_ref else 0.0
    return 2.0 * (p * r / (p + r + 1e-8))


def rouge_n(hyp_words: Sequence[str], ref_words: Sequence[str], n: int) -> float:
    """F of distinct n-grams: |H ∩ R| / |H| and |H ∩ R| / |R| with H, R the *sets* of n-grams. In [0, 1]."""
    hyp, ref = set(_ngrams(hyp_words, n)), set(_ngrams(ref_words, n))
    return _f1(len(hyp & ref), len(hyp), len(ref))


def lcs_length(x: Sequence, y: Sequence) -> int:
    """Length of the longest common subsequence, O(len(x)·len(y)) time, O(len(y)) memory."""
    row = [0] * (len(y) + 1)
    for a in x:
        prev_diag = 0
        for j, b in enumerate(y, start=1):
            prev_diag, row[j] = row[j], prev_diag + 1 if a == b else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(hyp_words: Sequence[str], ref_words: Sequence[str]) -> float:
    """F of LCS(hyp, ref) / len(hyp) and LCS(hyp, ref) / len(ref). In [0, 1]."""
    return _f1(lcs_length(ref_words, hyp_words), len(hyp_words), len(ref_words))


# ---------------------------------------------------------------------------------------------------------------
# Per example and mean, as ComputeMetrics


def example_scores(prediction: str, reference: str) -> dict[str, float]:
    """{bleu-4, rouge-1, rouge-2, rouge-l} of one example, each × 100 and rounded to 4 places as upstream."""
    hyp, ref = " ".join(jieba_like_words(prediction)), " ".join(jieba_like_words(reference))
    if not hyp.split() or not ref.split():
        rouge = {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    else:
        hw, rw = rouge_words(hyp), rouge_words(ref)
        rouge = {"rouge-1": rouge_n(hw, rw, 1), "rouge-2": rouge_n(hw, rw, 2), "rouge-l": rouge_l(hw, rw)}
    scores = {"bleu-4": char_bleu4(prediction, reference), **rouge}
    return {k: round(scores[k] * 100, 4) for k in METRIC_KEYS}


def text_overlap(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float | None]:
    """Means over examples of :func:`example_scores` (None for no examples); one reference per prediction."""
    if len(predictions) != len(references):
        raise ValueError(f"text_overlap: {len(predictions)} predictions but {len(references)} references")
    rows = [example_scores(p, r) for p, r in zip(predictions, references)]
    return {k: (sum(row[k] for row in rows) / len(rows) if rows else None) for k in METRIC_KEYS}
