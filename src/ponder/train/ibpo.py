"""IBPO's per-batch selection: which sampled responses to train on, under a cap on long ones.

Inference Budget-Constrained Policy Optimization (Yu et al. 2025,
arXiv:2501.17974) treats "how long to think" as a constrained policy problem:
responses fall into length groups, and the policy may give at most a share
``q`` (the inference budget) of its responses from the long group. The
constrained update becomes weighted SFT: per batch, an integer linear program
picks the responses to train on; the weights feed the SFT loss. This module is
that selection, with no torch; ``ponder.train.sft`` runs the loop around it
(sample, score, select, weighted SFT, repeat: semi-online).

Our program, over one batch of prompts i and their sampled responses s::

    max  sum_s u_s x_s  -  eps sum_i g_i
    s.t. x_s <= g_i         for every long response s of prompt i
         x_s <= 1 - g_i     for every short response s of prompt i
         x_s <= t_i,  t_i <= sum_{s of i} x_s,  g_i <= t_i
         sum_i g_i <= q sum_i t_i      (the cap: long share of the trained prompts)
         x_s = 0 where reward_s <= 0;  x, g, t binary

``x_s``: train on response s; ``g_i``: prompt i is taught the long group;
``t_i``: prompt i gets any target. The utility ``u_s = reward_s / n_i,group``
(``n``: responses of that prompt in that group) makes a prompt's contribution
its group's mean reward, so the objective is the sum over prompts of the short
group's accuracy plus, where long is chosen, the *reward margin* of long over
short: the cap goes to the prompts where thinking longer gains the most, the
paper's motivation for margins. ``eps`` breaks ties toward short. A chosen
response's weight is its reward, normalised per prompt, so every trained prompt
carries unit mass and the long share of the SFT target distribution is exactly
``sum g / sum t <= q``.

Solved with ``scipy.optimize.milp`` (the ``budget`` or ``train`` extra), as
``ponder.budget.allocate`` solves the inference-time form.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ponder.errors import ConfigError

GROUPS = ("short", "long")
_TIE = 1e-4
"""Tie-break weight of a long assignment; utilities are in [0, 1] per prompt."""


@dataclass(frozen=True, slots=True)
class IBPOConfig:
    """Knobs of the IBPO recipe (the selection and the loop around it).

    Example: ``IBPOConfig(cap=0.3, long_tokens=32, iterations=2)``.
    """

    cap: float = 0.3
    """q: the largest share of trained prompts whose target is a long response, in [0, 1]."""
    long_tokens: int = 32
    """A response with more completion tokens than this is long; <= is short."""
    max_tokens: int = 160
    """Cap on a long response while sampling and evaluating."""
    iterations: int = 2
    """Rounds of sample -> score -> select -> weighted SFT."""
    samples_short: int = 2
    """Responses per prompt sampled with the answer-directly instruction."""
    samples_policy: int = 2
    """Responses per prompt sampled from the policy's own prompt (chain of thought)."""
    temperature: float = 0.7
    epochs: int = 2
    """SFT passes over each round's selected responses."""
    batch_size: int = 8
    """Responses per optimizer step."""
    lr: float = 5e-5
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.cap, int | float) and 0 <= self.cap <= 1):
            raise ConfigError(f"cap must be in [0, 1], got {self.cap!r}")
        for name in ("long_tokens", "max_tokens", "iterations", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.max_tokens <= self.long_tokens:
            raise ConfigError(f"max_tokens ({self.max_tokens}) must exceed long_tokens "
                              f"({self.long_tokens}), or no response could be long")
        for name in ("samples_short", "samples_policy"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
        if self.samples_short + self.samples_policy < 1:
            raise ConfigError("sample at least one response per prompt")
        if not (isinstance(self.temperature, int | float) and self.temperature >= 0):
            raise ConfigError(f"temperature must be >= 0, got {self.temperature!r}")
        if not (isinstance(self.lr, int | float) and self.lr > 0):
            raise ConfigError(f"lr must be > 0, got {self.lr!r}")


@dataclass(frozen=True, slots=True)
class Sample:
    """One sampled response, reduced to what the selection needs.

    Example: ``Sample.of(prompt=0, tokens=80, reward=1.0, long_tokens=32)`` is long.
    """

    prompt: int
    """Index of its prompt in the batch."""
    reward: float
    """In [0, 1]: 1 correct, 0 wrong (or unfinished)."""
    long: bool
    """Its length group: True for the long group."""
    tokens: int = 0
    """Completion tokens (kept for reports)."""

    def __post_init__(self) -> None:
        if self.prompt < 0 or self.tokens < 0:
            raise ConfigError(f"prompt and tokens must be >= 0, got {self}")
        if not (isinstance(self.reward, int | float) and math.isfinite(self.reward)
                and 0 <= self.reward <= 1):
            raise ConfigError(f"reward must be in [0, 1], got {self.reward!r}")

    @classmethod
    def of(cls, prompt: int, tokens: int, reward: float, long_tokens: int) -> Sample:
        """A sample grouped by its length (see ``is_long``)."""
        return cls(prompt, reward, is_long(tokens, long_tokens), tokens)

    @property
    def group(self) -> str:
        return GROUPS[self.long]


@dataclass(frozen=True, slots=True)
class Selection:
    """The ILP's answer: a weight per sample, and the group taught to each prompt."""

    weights: tuple[float, ...]
    """Per sample, in sample order; a trained prompt's weights sum to 1."""
    prompt_groups: dict[int, str] = field(default_factory=dict)
    """Trained prompts only: "short" or "long"."""
    objective: float = 0.0
    """sum_s u_s x_s: the expected reward of the target policy, summed over prompts."""
    cap: float = 0.0
    method: str = "milp"

    @property
    def trained_prompts(self) -> int:
        return len(self.prompt_groups)

    @property
    def long_prompts(self) -> int:
        return sum(g == "long" for g in self.prompt_groups.values())

    @property
    def long_share(self) -> float:
        """Long share of the SFT target distribution (<= cap by construction)."""
        return self.long_prompts / self.trained_prompts if self.prompt_groups else 0.0

    def summary(self) -> dict[str, float | int]:
        return {"trained_prompts": self.trained_prompts, "long_prompts": self.long_prompts,
                "long_share": round(self.long_share, 4), "cap": self.cap,
                "selected_responses": sum(w > 0 for w in self.weights),
                "objective": round(self.objective, 4)}


def is_long(tokens: int, long_tokens: int) -> bool:
    """The length grouping: more than ``long_tokens`` completion tokens is long."""
    return tokens > long_tokens


def utilities(samples: Sequence[Sample]) -> np.ndarray:
    """``u_s = reward / (responses of the same prompt in the same group)``."""
    counts: dict[tuple[int, bool], int] = defaultdict(int)
    for s in samples:
        counts[s.prompt, s.long] += 1
    return np.array([s.reward / counts[s.prompt, s.long] for s in samples], dtype=float)


def select(samples: Sequence[Sample], cap: float) -> Selection:
    """Solve the module's ILP for one batch (see the module docstring)."""
    if not (isinstance(cap, int | float) and 0 <= cap <= 1):
        raise ConfigError(f"cap must be in [0, 1], got {cap!r}")
    if not samples:
        return Selection((), {}, 0.0, float(cap))
    prompts = sorted({s.prompt for s in samples})
    if not any(s.reward > 0 for s in samples):
        return Selection(tuple(0.0 for _ in samples), {}, 0.0, float(cap))
    x = _solve(samples, prompts, float(cap))
    return _selection(samples, x, float(cap))


def _solve(samples: Sequence[Sample], prompts: list[int], cap: float) -> np.ndarray:
    """The 0/1 choice per sample, from ``scipy.optimize.milp``."""
    try:
        from scipy.optimize import Bounds, LinearConstraint, milp
    except ImportError as exc:
        raise ConfigError("IBPO's selection needs scipy: pip install 'ponder[train]'") from exc
    n_s, n_p = len(samples), len(prompts)
    col = {p: k for k, p in enumerate(prompts)}
    g0, t0, n_var = n_s, n_s + n_p, n_s + 2 * n_p
    rows: list[tuple[dict[int, float], float, float]] = []
    for k, s in enumerate(samples):
        g, t = g0 + col[s.prompt], t0 + col[s.prompt]
        # long: x - g <= 0; short: x + g <= 1
        rows.append(({k: 1.0, g: -1.0}, -np.inf, 0.0) if s.long else
                    ({k: 1.0, g: 1.0}, -np.inf, 1.0))
        rows.append(({k: 1.0, t: -1.0}, -np.inf, 0.0))
    for p, j in col.items():
        members = {k: -1.0 for k, s in enumerate(samples) if s.prompt == p}
        rows.append(({t0 + j: 1.0, **members}, -np.inf, 0.0))     # t <= sum x
        rows.append(({g0 + j: 1.0, t0 + j: -1.0}, -np.inf, 0.0))  # g <= t
    rows.append(({**{g0 + j: 1.0 for j in range(n_p)},
                  **{t0 + j: -cap for j in range(n_p)}}, -np.inf, 1e-9))  # the cap
    a = np.zeros((len(rows), n_var))
    for r, (coefs, _, _) in enumerate(rows):
        for k, v in coefs.items():
            a[r, k] = v
    cost = np.concatenate([-utilities(samples), np.full(n_p, _TIE), np.zeros(n_p)])
    upper = np.concatenate([[1.0 if s.reward > 0 else 0.0 for s in samples], np.ones(2 * n_p)])
    res = milp(cost, constraints=LinearConstraint(a, [r[1] for r in rows], [r[2] for r in rows]),
               integrality=np.ones(n_var), bounds=Bounds(0, upper))
    if not res.success or res.x is None:  # x = 0 is always feasible; this is a solver fault
        raise ConfigError(f"IBPO selection failed: {res.message}")
    return np.round(res.x[:n_s]).astype(int)


def _selection(samples: Sequence[Sample], x: np.ndarray, cap: float) -> Selection:
    mass: dict[int, float] = defaultdict(float)
    for chosen, s in zip(x, samples, strict=True):
        if chosen:
            mass[s.prompt] += s.reward
    weights = tuple(s.reward / mass[s.prompt] if chosen else 0.0
                    for chosen, s in zip(x, samples, strict=True))
    groups = {s.prompt: s.group for chosen, s in zip(x, samples, strict=True) if chosen}
    objective = float(utilities(samples) @ x)
    return Selection(weights, dict(sorted(groups.items())), objective, cap)


def brute_force(samples: Sequence[Sample], cap: float) -> float:
    """The best objective by enumeration (for tests on small batches)."""
    u = utilities(samples)
    best = 0.0
    for bits in range(1 << len(samples)):
        chosen = [(bits >> k) & 1 for k in range(len(samples))]
        if any(c and s.reward <= 0 for c, s in zip(chosen, samples, strict=True)):
            continue
        groups: dict[int, set[bool]] = defaultdict(set)
        for c, s in zip(chosen, samples, strict=True):
            if c:
                groups[s.prompt].add(s.long)
        if any(len(g) > 1 for g in groups.values()):
            continue
        long_prompts = sum(True in g for g in groups.values())
        if long_prompts > cap * len(groups) + 1e-9:
            continue
        best = max(best, float(u @ np.array(chosen, dtype=float)))
    return best


def long_share(tokens: Sequence[int], long_tokens: int) -> float:
    """The share of responses that are long (0 for no responses)."""
    return sum(is_long(t, long_tokens) for t in tokens) / len(tokens) if tokens else 0.0
