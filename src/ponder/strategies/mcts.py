"""Monte Carlo tree search over reasoning steps.

Nodes are partial solutions and edges are sampled steps, as in step-level
MCTS for LLM reasoning (e.g. Hao et al., "Reasoning with Language Model is
Planning with World Model", 2023). Each simulation:

1. **selects** a leaf, descending from the root by UCT,
   ``Q(c) + c_uct * sqrt(ln N(parent) / N(c))`` (ties go to the first child);
2. **expands** it into ``expansion_width`` sampled next steps (one backend
   call; at ``max_depth - 1`` the steps run to the end of the solution);
3. **evaluates** every new child in one batched call: its aggregated step
   scores (``value="scorer"``), or the score of a rollout that samples the
   child to an answer (``value="rollout"``);
4. **backs up** each child's value: the child starts with N=1, Q=value, and
   every node from the leaf to the root gains one visit and the value per child.

A selected leaf that is terminal (it states an answer, the model stopped, or
it is at ``max_depth``) is not expanded; its value is backed up again. The
answer is picked among finished nodes and rollouts, as the beam searches do;
with none finished, it follows the most visited path (ties: higher Q).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, get_args

from ponder.errors import BudgetExceeded
from ponder.strategies.base import Answer, Problem, RunContext, Strategy
from ponder.strategies.steps import (
    Beam,
    StepSearchParams,
    check_param,
    sample_steps,
    score_beams,
    search_answer,
    verifier_name,
)
from ponder.verifiers.base import Verifier
from ponder.verifiers.step_scorer import LLMStepScorer

ValueSource = Literal["scorer", "rollout"]


@dataclass(frozen=True, slots=True)
class MCTSParams(StepSearchParams):
    owner: ClassVar[str] = "mcts"

    simulations: int = 8
    """Select-expand-evaluate-backup rounds, >= 1."""
    expansion_width: int = 2
    """Next steps sampled when a leaf is expanded, >= 1."""
    c_uct: float = 1.0
    """Exploration weight of UCT, >= 0 (0 is greedy on Q)."""
    value: ValueSource = "scorer"
    """A new node's value: its step scores ("scorer") or a rollout to an answer ("rollout")."""

    def __post_init__(self) -> None:
        StepSearchParams.__post_init__(self)
        o = self.owner
        check_param(isinstance(self.simulations, int) and self.simulations >= 1, o,
                    "simulations", "an integer >= 1", self.simulations)
        check_param(isinstance(self.expansion_width, int) and self.expansion_width >= 1, o,
                    "expansion_width", "an integer >= 1", self.expansion_width)
        check_param(isinstance(self.c_uct, int | float) and self.c_uct >= 0, o, "c_uct",
                    ">= 0", self.c_uct)
        check_param(self.value in get_args(ValueSource), o, "value",
                    f"one of {', '.join(get_args(ValueSource))}", self.value)


@dataclass(eq=False)
class Node:
    """A partial solution in the search tree, with its visit statistics."""

    beam: Beam
    depth: int = 0
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    visits: int = 0
    value_sum: float = 0.0
    value: float = 0.0
    """This node's own evaluation."""

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def path(self) -> list[Node]:
        """This node and its ancestors, up to the root."""
        nodes, node = [], self
        while node is not None:
            nodes.append(node)
            node = node.parent
        return nodes


def uct(child: Node, parent_visits: int, c_uct: float) -> float:
    if child.visits == 0:
        return math.inf
    return child.q + c_uct * math.sqrt(math.log(max(parent_visits, 1)) / child.visits)


def select_leaf(root: Node, c_uct: float) -> Node:
    """Descend by UCT to a node without children; ties go to the first child."""
    node = root
    while node.children:
        parent = node
        node = max(parent.children, key=lambda c: uct(c, parent.visits, c_uct))
    return node


def backup(leaf: Node, values: Sequence[float]) -> None:
    """Add one visit and its value per entry of ``values`` to ``leaf`` and its ancestors."""
    for node in leaf.path():
        node.visits += len(values)
        node.value_sum += sum(values)


class MCTS(Strategy[MCTSParams]):
    name = "mcts"
    summary = "Monte Carlo tree search over steps: UCT, expansion, PRM or rollout value"
    paper = "arXiv:2305.14992"
    Params = MCTSParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        p = self.params
        verifier = ctx.verifier or LLMStepScorer()
        root = Node(Beam())
        rollouts: list[Beam] = []
        done, stopped = 0, "simulations"
        while done < p.simulations:
            leaf = select_leaf(root, p.c_uct)
            if self.terminal(leaf):
                backup(leaf, [leaf.value])
            else:
                try:
                    await self.expand(problem, ctx, verifier, leaf, rollouts)
                except BudgetExceeded:
                    stopped = "budget"
                    break
            done += 1
        nodes = [n for n in _walk(root) if n is not root]
        finished = [n.beam for n in nodes if n.beam.finished] + rollouts
        beams = finished or [_most_visited_leaf(root).beam]
        return search_answer(self.name, problem, beams, ctx, aggregation=p.aggregation,
                             select=p.select,
                             info={"simulations": done, "stopped": stopped, "nodes": len(nodes),
                                   "root_visits": root.visits,
                                   "verifier": verifier_name(verifier)})

    def terminal(self, node: Node) -> bool:
        return node.beam.finished or node.depth >= self.params.max_depth

    async def expand(self, problem: Problem, ctx: RunContext, verifier: Verifier, leaf: Node,
                     rollouts: list[Beam]) -> None:
        """Sample the leaf's children, evaluate them, attach them and back their values up.

        Children are attached before they are evaluated, so that a budget that
        runs out during evaluation still leaves their text in the tree.
        """
        p = self.params
        final = leaf.depth + 1 >= p.max_depth
        cap = p.final_max_tokens if final else p.max_step_tokens
        params = self.sampling(ctx, temperature=p.temperature, max_tokens=cap)
        [group] = await sample_steps(ctx, problem, [leaf.beam.steps], p.expansion_width, params,
                                     strategy=self.name, final=final)
        leaf.children = [Node(leaf.beam.extend(e), leaf.depth + 1, leaf) for e in group]
        values = await self.evaluate(problem, ctx, verifier, leaf.children, rollouts)
        for child, value in zip(leaf.children, values, strict=True):
            child.value = child.value_sum = value
            child.visits = 1
        backup(leaf, values)

    async def evaluate(self, problem: Problem, ctx: RunContext, verifier: Verifier,
                       children: Sequence[Node], rollouts: list[Beam]) -> list[float]:
        """Each child's value, from one verifier call (after one rollout call if asked)."""
        p = self.params
        scored = await score_beams(verifier, problem, [c.beam for c in children], ctx)
        for child, beam in zip(children, scored, strict=True):
            child.beam = beam
        if p.value == "scorer":
            return [b.value(p.aggregation) for b in scored]
        open_ = [i for i, c in enumerate(children) if not self.terminal(c)]
        ends = await self.rollout(problem, ctx, [scored[i] for i in open_])
        first = len(rollouts)
        rollouts += ends  # kept, with their parents' scores, should scoring run out of budget
        rollouts[first:] = await score_beams(verifier, problem, ends, ctx)
        values = [b.value(p.aggregation) for b in scored]
        for i, end in zip(open_, rollouts[first:], strict=True):
            values[i] = end.value(p.aggregation)
        return values

    async def rollout(self, problem: Problem, ctx: RunContext,
                      beams: Sequence[Beam]) -> list[Beam]:
        """Each beam sampled to the end of its solution (unscored)."""
        if not beams:
            return []
        params = self.sampling(ctx, temperature=self.params.temperature,
                               max_tokens=self.params.final_max_tokens)
        groups = await sample_steps(ctx, problem, [b.steps for b in beams], 1, params,
                                    strategy=self.name, final=True)
        return [beam.extend(group[0]) for beam, group in zip(beams, groups, strict=True)]


def _walk(root: Node) -> list[Node]:
    nodes, stack = [], [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(reversed(node.children))
    return nodes


def _most_visited_leaf(root: Node) -> Node:
    node = root
    while node.children:
        node = max(node.children, key=lambda c: (c.visits, c.q))
    return node
