"""ponder: an inference-time compute engine.

Decide how much a language model thinks, when, and about what::

    from ponder import Engine
    with Engine.create() as engine:           # the embedded default model
        answer = engine.ask("A pen costs 3 dollars. How much do 4 pens cost?",
                            strategy="self-consistency", params={"n": 8})
        print(answer.answer, answer.votes, answer.ledger.total())
"""

from ponder.backends.base import Backend, Completion
from ponder.engine import Engine
from ponder.errors import PonderError
from ponder.ledger import Ledger, Usage
from ponder.params import SamplingParams
from ponder.strategies.base import Answer, Candidate, Problem, RunContext, Strategy
from ponder.strategies.registry import Registry

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Backend",
    "Candidate",
    "Completion",
    "Engine",
    "Ledger",
    "PonderError",
    "Problem",
    "Registry",
    "RunContext",
    "SamplingParams",
    "Strategy",
    "Usage",
    "__version__",
]
