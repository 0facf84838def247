"""Answer extraction and equivalence.

Models end their work in many ways: ``\\boxed{12}`` (Qwen's habit),
``Answer: 12``, ``The answer is $12.00.``, or just a last number. Extraction
tries those in that order. Equivalence compares numbers exactly (after
removing thousands separators, currency and trailing zeros) and falls back
to ``math-verify`` for symbolic answers (fractions, LaTeX, expressions).
"""

from __future__ import annotations

import logging
import re
import threading
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal

AnswerKind = Literal["math", "text"]

_ANSWER_LINE = re.compile(
    r"(?:final answer|the answer is|answer)\s*(?:is)?\s*[:=]?\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def extract_answer(text: str, kind: AnswerKind = "math") -> str | None:
    """The final answer stated in ``text``, or None when there is none."""
    if not text:
        return None
    boxed = _last_boxed(text)
    if boxed is not None:
        return _clean(boxed)
    lines = [m.group(1) for m in _ANSWER_LINE.finditer(text)]
    if lines:
        stated = _clean(lines[-1])
        if kind == "math":
            number = _last_number(stated)
            return number if number is not None else (stated or None)
        return stated or None
    if kind == "math":
        return _last_number(text)
    last = text.strip().splitlines()
    return _clean(last[-1]) if last else None


def canonical_number(answer: str) -> Fraction | None:
    """``answer`` as an exact number, if it is one ("1,000", "$3.50", "7/2", "-4.")."""
    s = answer.strip().strip("$").strip()
    s = re.sub(r"^\\\(|\\\)$", "", s).strip()
    s = s.replace("\\$", "").replace("$", "").replace(",", "").replace(" ", "")
    s = s.rstrip(".%")
    frac = re.fullmatch(r"\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}", s)
    if frac:
        s = f"{frac.group(1)}/{frac.group(2)}"
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            return Fraction(Decimal(num)) / Fraction(Decimal(den))
        return Fraction(Decimal(s))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def normalize_answer(answer: str | None, kind: AnswerKind = "math") -> str | None:
    """A key under which equivalent answers group together for voting."""
    if answer is None:
        return None
    if kind == "math":
        number = canonical_number(answer)
        if number is not None:
            return str(number.numerator) if number.denominator == 1 else str(number)
    text = re.sub(r"\s+", " ", answer.strip().strip(".").lower())
    return text.strip("$ ") or None


def answers_equal(a: str | None, b: str | None, kind: AnswerKind = "math") -> bool:
    """Whether two answers are the same, numerically or symbolically."""
    if a is None or b is None:
        return False
    if normalize_answer(a, kind) == normalize_answer(b, kind):
        return True
    if kind != "math":
        return False
    na, nb = canonical_number(a), canonical_number(b)
    if na is not None and nb is not None:
        return na == nb
    return _math_verify_equal(a, b)


def _math_verify_equal(gold: str, pred: str) -> bool:
    from math_verify import parse, verify

    # math-verify's timeouts use SIGALRM, which only works in the main thread;
    # elsewhere they are off and it logs a warning per call, which we silence.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    try:
        parsed_gold = parse(_as_latex(gold), parsing_timeout=timeout)
        parsed_pred = parse(_as_latex(pred), parsing_timeout=timeout)
        return bool(parsed_gold and parsed_pred and verify(parsed_gold, parsed_pred,
                                                          timeout_seconds=timeout))
    except Exception:  # math-verify raises on exotic input; unequal is the safe answer
        return False


def _as_latex(answer: str) -> str:
    return answer if "$" in answer else f"${answer}$"


def _last_boxed(text: str) -> str | None:
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    start = starts[-1]
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def _last_number(text: str) -> str | None:
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    return numbers[-1].replace("$", "").replace(" ", "").rstrip(".")


def _clean(answer: str) -> str:
    answer = answer.strip().splitlines()[0] if answer.strip() else ""
    answer = re.sub(r"^\$+|\$+$", "", answer.strip())
    answer = re.sub(r"\\text\{([^}]*)\}", r"\1", answer)
    return answer.strip().rstrip(".").strip()
