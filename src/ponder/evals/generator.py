"""A seeded, difficulty-controlled generator of stateful arithmetic word problems.

Why it exists: small CPU models score near 0% on GSM8K-hard material and near
100% on one-step sums, so neither shows how accuracy moves with compute. Here
difficulty is a set of knobs — entities, reasoning steps, number sizes and
distractor sentences — so a benchmark can pick bins where the model lands
between 0% and 100%. Answers are exact (integers by construction).

Problems are *stateful*, as in the sleep-time compute paper: a context (the
story) and questions about it. ``queries`` > 1 gives multi-query contexts
(several questions over one context) for the amortisation experiment. All
templates are our own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

NAMES = ("Ava", "Ben", "Chloe", "Dev", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack",
         "Kira", "Leo", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sam", "Tara")
ITEMS = ("apples", "marbles", "stickers", "books", "coins", "pencils", "shells", "cards")
DISTRACTOR_ITEMS = ("hats", "kites", "cups", "bells")


@dataclass(frozen=True, slots=True)
class Difficulty:
    """The knobs. ``level()`` orders them into the bins benchmarks report."""

    entities: int = 2
    steps: int = 2
    number_max: int = 20
    distractors: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.entities <= len(NAMES) // 2:
            raise ValueError(f"entities must be in [1, {len(NAMES) // 2}], got {self.entities}")
        if self.steps < 0 or self.number_max < 2 or self.distractors < 0:
            raise ValueError(f"steps >= 0, number_max >= 2, distractors >= 0: {self}")

    def level(self) -> int:
        """A single difficulty number: reasoning steps dominate, then entities, sizes."""
        return self.steps * 4 + (self.entities - 1) * 2 + (self.number_max > 50) + \
            (self.distractors > 0)


@dataclass(frozen=True, slots=True)
class Query:
    question: str
    answer: int


@dataclass(frozen=True, slots=True)
class StatefulProblem:
    """A context and the questions asked about it."""

    id: str
    context: str
    queries: tuple[Query, ...]
    difficulty: Difficulty
    steps: tuple[str, ...] = field(default=())
    """The state after each sentence, for inspection ("Ava=5, Ben=3")."""

    @property
    def question(self) -> str:
        return self.queries[0].question

    @property
    def answer(self) -> int:
        return self.queries[0].answer

    def full_question(self, index: int = 0) -> str:
        """Context and one question as a single (non-stateful) problem."""
        return f"{self.context} {self.queries[index].question}"


class _Story:
    """Builds the sentences while tracking the true state."""

    def __init__(self, rng: random.Random, difficulty: Difficulty) -> None:
        self.rng = rng
        self.d = difficulty
        self.item = rng.choice(ITEMS)
        self.names = rng.sample(NAMES, difficulty.entities * 2)[:difficulty.entities]
        self.counts: dict[str, int] = {}
        self.start: dict[str, int] = {}
        """Counts right after the introduction (for multi-query "at the start" questions)."""
        self.sentences: list[str] = []
        self.trace: list[str] = []

    def amount(self, k: int, item: str | None = None) -> str:
        item = item or self.item
        return f"{k} {item[:-1] if k == 1 else item}"

    def number(self, low: int = 1, high: int | None = None) -> int:
        return self.rng.randint(low, max(low, high if high is not None else self.d.number_max))

    def say(self, sentence: str) -> None:
        self.sentences.append(sentence)
        self.trace.append(", ".join(f"{n}={c}" for n, c in self.counts.items()))

    def introduce(self) -> None:
        first = self.names[0]
        self.counts[first] = self.number(2)
        self.say(f"{first} has {self.counts[first]} {self.item}.")
        for name in self.names[1:]:
            other = self.rng.choice(list(self.counts))
            if self.rng.random() < 0.5:
                delta = self.number(1, max(2, self.d.number_max // 2))
                self.counts[name] = self.counts[other] + delta
                self.say(f"{name} has {delta} more {self.item} than {other}.")
            elif self.counts[other] > 1 and self.rng.random() < 0.5:
                delta = self.number(1, self.counts[other] - 1)
                self.counts[name] = self.counts[other] - delta
                self.say(f"{name} has {delta} fewer {self.item} than {other}.")
            else:
                self.counts[name] = self.number(2)
                self.say(f"{name} has {self.counts[name]} {self.item}.")
        self.start = dict(self.counts)

    def step(self) -> None:
        name = self.rng.choice(self.names)
        kinds = ["buy", "lose", "double"] + (["give"] if len(self.names) > 1 else [])
        kind = self.rng.choice(kinds)
        have = self.counts[name]
        if kind == "buy":
            k = self.number()
            self.counts[name] += k
            self.say(f"Then {name} buys {k} more {self.item}.")
        elif kind == "lose" and have > 1:
            k = self.number(1, have - 1)
            self.counts[name] -= k
            self.say(f"Then {name} loses {self.amount(k)}.")
        elif kind == "give" and have > 1:
            other = self.rng.choice([n for n in self.names if n != name])
            k = self.number(1, have - 1)
            self.counts[name] -= k
            self.counts[other] += k
            self.say(f"Then {name} gives {self.amount(k)} to {other}.")
        else:
            self.counts[name] *= 2
            self.say(f"Then {name} doubles the number of {self.item} they have.")

    def distract(self) -> None:
        name = self.rng.choice(self.names)
        thing = self.rng.choice(DISTRACTOR_ITEMS)
        position = self.rng.randint(1, len(self.sentences))
        self.sentences.insert(position, f"{name} also owns {self.amount(self.number(), thing)}.")
        self.trace.insert(position, self.trace[position - 1])

    def queries(self, count: int) -> list[Query]:
        pool = [Query(f"How many {self.item} does {n} have now?", c)
                for n, c in self.counts.items()]
        if len(self.names) > 1:
            a, b = self.names[0], self.names[1]
            pool.append(Query(f"How many {self.item} do {a} and {b} have together?",
                              self.counts[a] + self.counts[b]))
            hi, lo = sorted((a, b), key=lambda n: -self.counts[n])
            pool.append(Query(f"How many more {self.item} does {hi} have than {lo}?",
                              self.counts[hi] - self.counts[lo]))
        if len(self.names) > 2:
            pool.append(Query(f"How many {self.item} do they have in total?",
                              sum(self.counts.values())))
        self.rng.shuffle(pool)
        if len(pool) < count:  # appended after the shuffle: earlier outputs stay the same
            pool.extend(Query(f"How many {self.item} did {n} have at the start?", c)
                        for n, c in self.start.items())
        return pool[:count]


def generate(count: int, difficulty: Difficulty | None = None, *, queries: int = 1,
             seed: int = 0) -> list[StatefulProblem]:
    """``count`` problems at one difficulty, each with up to ``queries`` questions."""
    difficulty = difficulty or Difficulty()
    if count < 0 or queries < 1:
        raise ValueError("count >= 0 and queries >= 1 are required")
    problems = []
    for index in range(count):
        rng = random.Random(f"{seed}:{difficulty}:{index}")
        story = _Story(rng, difficulty)
        story.introduce()
        for _ in range(difficulty.steps):
            story.step()
        for _ in range(difficulty.distractors):
            story.distract()
        problems.append(StatefulProblem(
            id=f"gen-L{difficulty.level()}-s{seed}-{index}",
            context=" ".join(story.sentences),
            queries=tuple(story.queries(queries)),
            difficulty=difficulty,
            steps=tuple(story.trace),
        ))
    return problems


def difficulty_ladder() -> list[Difficulty]:
    """Bins from trivial to hard for a small CPU model (the default benchmark tiers)."""
    # Qwen2.5-Coder-0.5B with greedy CoT (6 items each): (1, 1) 6/6; (2, 2) 2/6;
    # (2, 4, distractor) 0/6. The bins in between are where compute can help.
    return [
        Difficulty(entities=1, steps=1, number_max=10),
        Difficulty(entities=2, steps=1, number_max=20),
        Difficulty(entities=1, steps=2, number_max=20),
        Difficulty(entities=2, steps=2, number_max=20),
        Difficulty(entities=2, steps=3, number_max=30, distractors=1),
    ]
