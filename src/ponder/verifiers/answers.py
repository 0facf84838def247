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
            # "Answer: 4 * 3 = 12" -> after the last "="; "Answer: Sara has 12 dollars
            # left, 8 fewer than Tom" -> the first number stated
            number = _last_number(stated.rsplit("=", 1)[1]) if "=" in stated \
                else _first_number(stated)
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


def _first_number(text: str) -> str | None:
    numbers = _NUMBER.findall(text)
    return numbers[0].replace("$", "").replace(" ", "").rstrip(".") if numbers else None


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


_CHOICE_PATTERNS = (
    r"\\boxed\{\s*\(?([{L}])\)?\s*\}",
    r"(?i:final answer|answer|correct (?:option|choice))\s*(?i:is)?\s*[:=]?\s*"
    r"(?:\(([{L}{l}])\)|([{L}])(?![A-Za-z]))",
    r"^\s*\(?([{L}])\)?[.):]?\s*$",
    r"(?<![A-Za-z])\(([{L}])\)",
)


def extract_choice(text: str, letters: str = "ABCDE") -> str | None:
    """The multiple-choice letter ``text`` settles on ("Answer: (C)", "\\boxed{B}", "D.").

    Tries a boxed letter, then an answer phrase, then a line that is only a letter,
    then a parenthesised letter; the last match of the first pattern that hits wins.
    Letters are upper case, except "(b)" after an answer phrase ("the answer is a
    number" has no choice in it).
    """
    if not text or not letters:
        return None
    upper = re.escape(letters.upper())
    lower = re.escape(letters.lower())
    for template in _CHOICE_PATTERNS:
        pattern = template.replace("{L}", upper).replace("{l}", lower)
        hits = [h if isinstance(h, str) else next(g for g in h if g)
                for h in re.findall(pattern, text, re.MULTILINE)]
        if hits:
            return hits[-1].upper()
    return None


def numbers_close(a: str | None, b: str | None, *, rel_tol: float = 1e-6,
                  abs_tol: float = 1e-9) -> bool:
    """Whether two answers are numbers within a tolerance ("3.3333" vs "10/3" at rel_tol=1e-4).

    Non-numbers are never close; use ``answers_equal`` for exact or symbolic equality.
    """
    if a is None or b is None:
        return False
    na, nb = canonical_number(a), canonical_number(b)
    if na is None or nb is None:
        return False
    if rel_tol < 0 or abs_tol < 0:
        raise ValueError(f"tolerances must be >= 0, got rel_tol={rel_tol}, abs_tol={abs_tol}")
    return abs(float(na) - float(nb)) <= max(rel_tol * max(abs(float(na)), abs(float(nb))),
                                             abs_tol)
