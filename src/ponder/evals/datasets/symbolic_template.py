"""A sampler for GSM-Symbolic's template language, with a restricted evaluator.

A template's ``question_annotated`` is the question with ``{var, default}``
slots, then three sections::

    #init:
    - name = sample(names_female)
    - $x = range(10, 500, 10)
    - a, b = sample(["pen", "cup", "hat"], 2)
    #conditions:
    - divides(x, 5)
    #answer: x // 5

``#init`` draws each variable: ``sample(pool[, k])`` picks (k distinct), a bare
domain (``range``, a list, ``np.arange``) yields one uniform element. A sample is
accepted when every condition holds (rejection sampling). Numbers are kept as
exact ``Fraction``s, so ``is_int(n * frac)`` is exact and gold answers such as
32.5 are exact too.

The expressions are data from a file, not code: they are parsed with ``ast`` and
only arithmetic, comparisons, literals, names and a fixed set of functions are
allowed (no attributes but ``np.arange`` / ``np.random.randint``, no dunders),
then evaluated without builtins. Apple did not publish its word pools
(``names``, ``fractions``, ``multi_times``...), so ``POOLS`` are ours.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import CodeType, MappingProxyType, SimpleNamespace
from typing import Any

from ponder.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Choice:
    """A value shown as words: ``Choice("twice", 2)`` reads "twice" and computes as 2."""

    text: str
    value: Any


def _pairs(*items: tuple[str, Fraction | int]) -> tuple[Choice, ...]:
    return tuple(Choice(text, value) for text, value in items)


_F = Fraction
_WORD_FRACTIONS = (("half", _F(1, 2)), ("one third", _F(1, 3)), ("one quarter", _F(1, 4)),
                   ("one fifth", _F(1, 5)), ("two thirds", _F(2, 3)),
                   ("three quarters", _F(3, 4)), ("two fifths", _F(2, 5)))
_NUMERAL_FRACTIONS = (("1/2", _F(1, 2)), ("1/3", _F(1, 3)), ("1/4", _F(1, 4)),
                      ("1/5", _F(1, 5)), ("2/3", _F(2, 3)), ("3/4", _F(3, 4)),
                      ("1/10", _F(1, 10)))
POOLS: Mapping[str, tuple[Any, ...]] = MappingProxyType({
    "names_female": ("Ava", "Chloe", "Emma", "Grace", "Iris", "Kira", "Maya", "Olga", "Rosa",
                     "Tara", "Sofia", "Leila", "Priya", "Mei", "Fatima", "Hannah"),
    "names_male": ("Ben", "Dev", "Finn", "Hugo", "Jack", "Leo", "Noah", "Pablo", "Sam",
                   "Omar", "Kenji", "Luca", "Ravi", "Tomas", "Elijah", "Yusuf"),
    "names": ("Ava", "Ben", "Chloe", "Dev", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack",
              "Kira", "Leo", "Maya", "Noah", "Quinn", "Rosa", "Sam", "Tara", "Alex", "Jordan"),
    "fractions": _pairs(*_WORD_FRACTIONS),
    "fraction_alph": _pairs(("half", _F(1, 2)), ("a third", _F(1, 3)), ("a quarter", _F(1, 4)),
                            ("a fifth", _F(1, 5)), ("two-thirds", _F(2, 3)),
                            ("three-quarters", _F(3, 4)), ("a tenth", _F(1, 10))),
    "fraction_alnum": _pairs(*_WORD_FRACTIONS, *_NUMERAL_FRACTIONS),
    "fraction_nums": _pairs(*_NUMERAL_FRACTIONS),
    "fraction_decimals": _pairs(*((str(d), _F(d)) for d in (
        "0.1", "0.2", "0.25", "0.3", "0.4", "0.5", "0.6", "0.7", "0.75", "0.8", "0.9"))),
    "multi_times": _pairs(("twice", 2), ("three times", 3), ("four times", 4),
                          ("five times", 5)),
    "multiple_ice": _pairs(("twice", 2), ("thrice", 3)),
    "multiple": _pairs(("double", 2), ("triple", 3), ("quadruple", 4)),
    "currencies_sym": ("$", "£", "€"),
    "weights_sm": ("ounce", "gram"),
    "weights_med": ("pound", "kilogram"),
    "length_lg": ("mile", "kilometer"),
    "sports": ("basketball", "soccer", "tennis", "volleyball", "baseball", "hockey"),
    "colors": ("red", "blue", "green", "yellow", "purple", "orange", "white", "black"),
    "fruits": ("apple", "banana", "orange", "pear", "peach", "mango", "plum", "lemon"),
    "cities": ("Boston", "Chicago", "Denver", "Seattle", "Austin", "Miami", "Toronto", "Dublin"),
    "weekdays": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
})

_SECTION = re.compile(r"^\s*#\s*(init|conditions|answer)\s*[:=]", re.MULTILINE)
_DOLLAR_NAME = re.compile(r"\$(?=[A-Za-z_])")
_SLOT = re.compile(r"\{\s*([A-Za-z_]\w*)\s*,\s*([^{}]*?)\s*\}")
_ALLOWED_CALLS = frozenset({
    "range", "list", "int", "float", "round", "abs", "min", "max", "sum", "len", "Fraction",
    "is_int", "divides", "sample", "sample_sequential", "numbers_within", "fix_floats",
    "shuffle_list", "frange",
})
_ALLOWED_ATTRIBUTES = frozenset({"np.arange", "np.random.randint"})
_BUILTIN_NAMES = _ALLOWED_CALLS | frozenset(POOLS) | {"np"}
_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call,
                  ast.Name, ast.Constant, ast.List, ast.Tuple, ast.IfExp, ast.Attribute,
                  ast.Subscript, ast.Slice, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
                  ast.expr_context)


@dataclass(frozen=True, slots=True)
class Expression:
    source: str
    code: CodeType
    names: frozenset[str]
    """The template variables it reads."""


@dataclass(frozen=True, slots=True)
class Assignment:
    names: tuple[str, ...]
    expression: Expression
    is_sample: bool
    """The right side is a ``sample(...)`` call (already a pick, not a domain)."""
    checks: tuple[Expression, ...] = ()
    """Conditions whose variables are all bound once this assignment is made, checked
    right away so a doomed draw is abandoned early."""


@dataclass(frozen=True, slots=True)
class Template:
    """One parsed GSM-Symbolic template."""

    id: int
    variant: str
    body: str
    init: tuple[Assignment, ...]
    answer: Expression
    original_id: int | None = None
    first_checks: tuple[Expression, ...] = ()
    """Conditions on slot defaults only (checked before any draw)."""


@dataclass(frozen=True, slots=True)
class Instance:
    question: str
    answer: str
    values: Mapping[str, Any]


class TemplateError(ConfigError):
    """A template uses syntax or names the sampler does not support."""


def parse_template(record: Mapping[str, Any], variant: str) -> Template:
    """Parse a template record (``question_annotated`` plus ids)."""
    annotated = record.get("question_annotated")
    tid = int(record.get("id_shuffled", record.get("id", -1)))
    if not isinstance(annotated, str):
        raise TemplateError(f"template {variant}/{tid}: no question_annotated field")
    parts = _SECTION.split(annotated)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    if "answer" not in sections:
        raise TemplateError(f"template {variant}/{tid}: no #answer section")
    where = f"template {variant}/{tid}"
    body = parts[0].strip()
    init = [_assignment(line, where) for line in _bullets(sections.get("init", ""))]
    answer = _compile(sections["answer"].strip().strip("{}").strip(), where)
    conditions = [_compile(c, where) for c in _bullets(sections.get("conditions", ""))]
    drawn = {n for a in init for n in a.names}
    bound = {name for name, _ in _SLOT.findall(body)} - drawn  # fixed at their defaults
    _check_names([answer, *conditions, *(a.expression for a in init)], bound | drawn, where)
    # a template variable may shadow a pool name ("multiple"): it waits for its draw
    first = [c for c in conditions if c.names & drawn == set()]
    staged = []
    for assignment in init:
        bound |= set(assignment.names)
        ready = [c for c in conditions if c.names & drawn <= bound and c not in first
                 and all(c not in a.checks for a in staged)]
        staged.append(dataclasses.replace(assignment, checks=tuple(ready)))
    return Template(tid, variant, body, tuple(staged), answer, record.get("id_orig"),
                    tuple(first))


def sample_instance(template: Template, rng: random.Random, *,
                    max_tries: int = 100_000) -> Instance:
    """Draw variables until every condition holds; render the question and the answer."""
    functions = _functions(rng)
    defaults = {name: _default_value(text) for name, text in _SLOT.findall(template.body)}
    texts = {k: str(v) for k, v in defaults.items()}
    for _ in range(max_tries):
        values = dict(defaults)
        env = {**functions, **values}
        try:
            if not _draw(template, rng, env, values):
                continue
            answer = _evaluate(template.answer, env)
        except (ArithmeticError, ValueError, TypeError, IndexError):
            continue
        drawn = {name: _text(values[name]) for a in template.init for name in a.names}
        return Instance(_render(template.body, texts | drawn), format_number(answer), values)
    raise TemplateError(f"template {template.variant}/{template.id}: no sample met its "
                        f"conditions in {max_tries} tries")


def format_number(value: Any) -> str:
    """An exact, plain rendering: 12, 32.5, 0.25 (non-terminating fractions: 6 decimals)."""
    if isinstance(value, Choice):
        value = value.value
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        return str(value)
    exact = value if isinstance(value, Fraction) else _to_fraction(value)
    if exact.denominator == 1:
        return str(exact.numerator)
    denominator = exact.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator == 1:
        digits = max(len(str(exact.denominator)) + 2, 2)
        return f"{float(exact):.{digits}f}".rstrip("0").rstrip(".")
    return f"{float(exact):.6f}".rstrip("0").rstrip(".")


def number_words(n: int) -> str:
    """0 <= n < 1000 in words ("forty-two")."""
    ones = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
            "seventeen", "eighteen", "nineteen")
    tens = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
            "ninety")
    if n < 20:
        return ones[n]
    if n < 100:
        return tens[n // 10] + ("" if n % 10 == 0 else "-" + ones[n % 10])
    rest = n % 100
    return f"{ones[n // 100]} hundred" + (f" and {number_words(rest)}" if rest else "")


# -- parsing ----------------------------------------------------------------------------

def _bullets(section: str) -> list[str]:
    lines = [line.strip() for line in section.splitlines()]
    return [line[1:].strip() for line in lines if line.startswith("-") and line[1:].strip()]


def _assignment(line: str, where: str) -> Assignment:
    left, sep, right = line.partition("=")
    if not sep or not right.strip():
        raise TemplateError(f"{where}: cannot read init line {line!r}")
    names = tuple(n.strip().lstrip("$").strip() for n in left.split(","))
    if not all(n.isidentifier() and not n.startswith("_") for n in names):
        raise TemplateError(f"{where}: bad variable names in {line!r}")
    expression = _compile(right.strip(), where)
    tree = ast.parse(expression.source, mode="eval").body
    is_sample = isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) \
        and tree.func.id in ("sample", "sample_sequential")
    return Assignment(names, expression, is_sample)


def _check_names(expressions: Iterable[Expression], bound: set[str], where: str) -> None:
    for expression in expressions:
        unknown = sorted(expression.names - bound - _BUILTIN_NAMES)
        if unknown:
            raise TemplateError(f"{where}: name {unknown[0]!r} is not defined "
                                f"(in {expression.source!r})")


def _compile(expression: str, where: str) -> Expression:
    expression = _DOLLAR_NAME.sub("", expression)
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise TemplateError(f"{where}: cannot parse {expression!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise TemplateError(f"{where}: {type(node).__name__} is not allowed in "
                                f"{expression!r}")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise TemplateError(f"{where}: name {node.id!r} is not allowed")
        if isinstance(node, ast.Call) and _call_name(node.func) not in \
                _ALLOWED_CALLS | _ALLOWED_ATTRIBUTES:
            raise TemplateError(f"{where}: function {_call_name(node.func)!r} is not allowed")
        if isinstance(node, ast.Attribute) and _call_name(node) not in _ALLOWED_ATTRIBUTES \
                and _call_name(node) != "np.random":
            raise TemplateError(f"{where}: attribute {_call_name(node)!r} is not allowed")
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return Expression(expression, compile(tree, where, "eval"), frozenset(names))


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_call_name(node.value)}.{node.attr}"
    return type(node).__name__


# -- sampling ---------------------------------------------------------------------------

def _functions(rng: random.Random) -> dict[str, Any]:
    def sample(pool: Iterable[Any], k: int | None = None) -> Any:
        items = pool if isinstance(pool, list | tuple | range) else list(pool)
        if k is None:
            return _as_choice(items[rng.randrange(len(items))])
        return [_as_choice(x) for x in rng.sample(items, k)]

    def sample_sequential(pool: Sequence[Any], k: int) -> list[Any]:
        start = rng.randint(0, len(pool) - k)
        return list(pool[start:start + k])

    def frange(start: float, stop: float, step: float) -> list[Fraction]:
        count = math.ceil((stop - start) / step - 1e-9)
        return [_to_fraction(start + i * step) for i in range(max(0, count))]

    def randint(low: int, high: int, size: int | None = None) -> range:
        return range(low, high)

    numpy = SimpleNamespace(arange=frange, random=SimpleNamespace(randint=randint))
    return {
        **POOLS, "range": range, "list": list, "int": int, "float": float, "round": round,
        "abs": abs, "min": min, "max": max, "sum": sum, "len": len, "Fraction": Fraction,
        "is_int": _is_int, "divides": _divides, "sample": sample,
        "sample_sequential": sample_sequential, "frange": frange, "np": numpy,
        "numbers_within": lambda a, b: [Choice(number_words(k), k) for k in range(a, b + 1)],
        "fix_floats": lambda xs: [_to_fraction(round(float(x), 2)) for x in xs],
        "shuffle_list": list,
    }


def _draw(template: Template, rng: random.Random, env: dict[str, Any],
          values: dict[str, Any]) -> bool:
    """Draw every variable in order (into ``env`` too); False once a condition fails."""
    if not all(_evaluate(c, env) for c in template.first_checks):
        return False
    for assignment in template.init:
        _assign(assignment, env, rng, values)
        if not all(_evaluate(c, env) for c in assignment.checks):
            return False
    return True


def _assign(assignment: Assignment, env: dict[str, Any], rng: random.Random,
            values: dict[str, Any]) -> None:
    result = _evaluate(assignment.expression, env)
    if len(assignment.names) == 1:
        picked = [result if assignment.is_sample else _pick(result, rng)]
    else:
        picked = list(result)
        if len(picked) != len(assignment.names):
            raise ValueError(f"{assignment.expression.source!r} gives {len(picked)} values")
    for name, raw in zip(assignment.names, picked, strict=True):
        value = _as_choice(raw)
        values[name] = env[name] = _Worded(_exact(value.value), value.text) \
            if isinstance(value, Choice) else _exact(value)


def _text(value: Any) -> str:
    if isinstance(value, _Worded):
        return value.text
    return format_number(value) if isinstance(value, int | Fraction) else str(value)


def _pick(domain: Any, rng: random.Random) -> Any:
    if isinstance(domain, range | list | tuple):
        if not domain:
            raise ValueError("empty domain")
        return domain[rng.randrange(len(domain))]
    return domain


def _evaluate(expression: Expression, env: dict[str, Any]) -> Any:
    return eval(expression.code, {"__builtins__": {}}, env)  # vetted by _compile


def _render(body: str, texts: Mapping[str, str]) -> str:
    def slot(match: re.Match[str]) -> str:
        text = texts.get(match.group(1), match.group(2))
        before = body[:match.start()].rstrip()
        if (not before or before[-1] in ".!?") and text[:1].islower():
            text = text[0].upper() + text[1:]
        return text

    return _SLOT.sub(slot, body)


# -- numbers ----------------------------------------------------------------------------

class _Worded(Fraction):
    """A number that templates may also index as ``(text, value)``: ``mult[1]`` == ``mult``."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, value: Fraction | int, text: str) -> _Worded:
        self = super().__new__(cls, value)
        self.text = text
        return self

    def __getitem__(self, index: int) -> Any:
        return (self.text, Fraction(self))[index]


def _as_choice(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 \
            and isinstance(value[1], int | float | Fraction):
        return Choice(str(value[0]), value[1])
    return value


def _exact(value: Any) -> Any:
    if isinstance(value, float):
        return _to_fraction(value)
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _exact(value.item())
    return value


def _to_fraction(value: float | int | Fraction) -> Fraction:
    return value if isinstance(value, Fraction) else Fraction(repr(round(float(value), 9)))


def _default_value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return _to_fraction(float(text))
        except ValueError:
            return text


def _is_int(x: Any) -> bool:
    return x == int(x)


def _divides(a: Any, b: Any) -> bool:
    return b != 0 and a % b == 0

