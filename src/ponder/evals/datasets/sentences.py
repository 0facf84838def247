"""Sentence splitting for the stateful split: context = all sentences but the last.

The sleep-time compute reference splits on every "." (``split="naive"`` keeps
that, for faithful reproductions). It cuts "$0.7" into "$0. 7" and ends a
sentence at "Mrs.", so by default we split on real sentence ends: a ".", "!"
or "?" (plus closing quotes) followed by whitespace and a capital letter,
digit, currency sign or quote, and never after a title ("Mrs.", "Dr."), an
initial ("J.") or a dotted abbreviation ("e.g.", but "5 p.m. Then" ends one).
"""

from __future__ import annotations

import re
from typing import Literal

SplitMethod = Literal["sentences", "naive"]

_TITLES = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "fr", "rev", "gen", "col", "capt",
    "lt", "sgt", "hon", "messrs", "mme", "mlle", "no", "vs", "approx", "fig", "ca", "cf",
})
_SENTENCE_ENDERS = frozenset({"a.m", "p.m", "etc"})
"""Abbreviations that end a sentence when a capital follows ("at 5 p.m. Then ...")."""
_BOUNDARY = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9$£€¥])""")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped, in order (the last may lack a full stop)."""
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group().startswith(".") and _is_abbreviation(text[start:match.start()]):
            continue
        piece = text[start:match.end()].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def stateful_split(text: str, method: SplitMethod = "sentences") -> tuple[str, str]:
    """``(context, question)``: the question is the last sentence, the context the rest.

    With ``sentences``, a short note after the question ("How much is left? Round
    down.") stays with the question. ``naive`` is the reference's plain split on
    ".": context = pieces joined by ". " plus ".", question = the last piece.
    """
    if method == "naive":
        pieces = [p.strip() for p in text.split(".") if p.strip()]
        if len(pieces) < 2:
            return "", text.strip()
        return ". ".join(pieces[:-1]) + ".", pieces[-1]
    if method != "sentences":
        raise ValueError(f"split must be 'sentences' or 'naive', got {method!r}")
    sentences = split_sentences(text)
    cut = len(sentences) - 1
    if cut >= 2 and "?" not in sentences[-1] and sentences[-2].endswith("?"):
        cut -= 1
    return " ".join(sentences[:cut]), " ".join(sentences[cut:])


def _is_abbreviation(before: str) -> bool:
    match = _WORD_BEFORE.search(before)
    if match is None:
        return False
    word = match.group(1)
    if word.lower() in _SENTENCE_ENDERS:
        return False
    if "." in word:  # "e.g", "U.S", "a.m" — dotted abbreviations
        return True
    return word.lower() in _TITLES or (len(word) == 1 and word.isupper())
