from dataclasses import dataclass

import pytest

from ponder import Answer, Engine, Problem, RunContext, Strategy
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.strategies.registry import Registry


@dataclass(frozen=True, slots=True)
class EchoParams:
    times: int = 1
    loud: bool = False


class Echo(Strategy[EchoParams]):
    name = "echo"
    Params = EchoParams

    async def run(self, problem: Problem, ctx: RunContext) -> Answer:
        text = problem.question * self.params.times
        return Answer(text.upper() if self.params.loud else text, None, self.name)


def test_builtins_come_from_entry_points() -> None:
    registry = Registry.from_entry_points()
    assert {"direct", "cot", "self-consistency"} <= set(registry.names())
    assert registry.get("cot").source == "ponder"


@pytest.fixture
def registry_with_plugin() -> Registry:
    registry = Registry.from_entry_points()
    registry.register(Echo)
    yield registry
    registry.unregister("echo")
    assert "echo" not in registry


def test_a_registered_plugin_runs_with_parsed_params(registry_with_plugin: Registry) -> None:
    engine = Engine(ScriptedBackend([]), registry_with_plugin)
    answer = engine.ask("ab", strategy="echo", params={"times": "2", "loud": "true"})
    assert answer.text == "ABAB"


def test_unknown_strategy_suggests_a_close_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'self-consistency'"):
        Registry.from_entry_points().get("self-consistancy")


def test_registering_under_a_wrong_name_fails() -> None:
    with pytest.raises(ConfigError, match="names a strategy called 'echo'"):
        Registry().register(Echo, name="other")
