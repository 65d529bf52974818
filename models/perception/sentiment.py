"""Text sentiment of final utterances: VADER's compound score in [-1, 1].

VADER (Hutto & Gilbert 2014, ICWSM) is a lexicon and rule model tuned on short
social-media text: it needs no training data, runs in microseconds, and its
lexicon ships inside the `vaderSentiment` wheel, so it works offline. The
compound score sums the valences of the words (with rules for negation, degree
adverbs such as "very", "but" clauses and punctuation) and squashes the sum into
[-1, 1]; VADER's authors call below -0.05 negative and above 0.05 positive.

Recognised speech is lower-case and unpunctuated, so only the word-level rules
apply. Only final utterances are scored: partial results change as speech goes on.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

NEUTRAL_BAND = 0.05  # |compound| below this is neutral (VADER's convention)


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    """One analyzer per process: loading the lexicon takes tens of milliseconds."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER compound score of text: -1 most negative, 0 neutral (or empty), +1 most positive."""
    if not text or not text.strip():
        return 0.0
    return float(_analyzer().polarity_scores(text)["compound"])
