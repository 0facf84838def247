import re
import zlib
from collections.abc import Sequence

import numpy as np
import pytest

from ponder import Engine, Problem, SamplingParams
from ponder.backends.base import Completion, Message, Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.errors import ConfigError
from ponder.ledger import Usage
from ponder.strategies.registry import Registry
from ponder.strategies.thought_switch_penalty import SwitchPenalty, switch_token_ids

SPLIT = {"hmm", "Hmm"}
"""Words this toy vocabulary splits into their first letter + the rest (as SmolLM2 does)."""


def toy_tokenize(text: str) -> list[int]:
    ids: list[int] = []
    for piece in re.findall(r" ?[A-Za-z]+|\s|[^\sA-Za-z]", text):
        word = piece.strip()
        if word in SPLIT and not piece.startswith(" "):
            ids += [zlib.crc32(word[0].encode()) % 50_000, zlib.crc32(word[1:].encode()) % 50_000]
        else:
            ids.append(zlib.crc32(piece.encode()) % 50_000)
    return ids


class ToyBackend(ScriptedBackend):
    def tokenize(self, text: str) -> list[int]:
        return toy_tokenize(text)

    def render_chat(self, messages: Sequence[Message], *, add_generation_prompt: bool = True
                    ) -> str:
        return "|".join(str(m["content"]) for m in messages) + "|A:"


class ProcessorBackend(ToyBackend):
    supports_logits_processor = True


def test_switch_tokens_are_first_tokens_of_each_variant() -> None:
    ids = set(switch_token_ids(ToyBackend([]), ["Wait", "Hmm"]))
    expected = {toy_tokenize(v)[0] for v in ("Wait", " Wait", "wait", " wait", " Hmm", " hmm")}
    assert ids == expected
    # "Hmm" and "hmm" split into "H"/"h" + "mm": their first tokens are single letters, skipped
    assert toy_tokenize("H")[0] not in ids and toy_tokenize("h")[0] not in ids


def test_penalty_applies_within_beta_tokens_of_each_thought() -> None:
    switch = 5
    penalty = SwitchPenalty([switch], alpha=3.0, beta=4)
    assert penalty.active([])                      # first thought, position 0
    assert penalty.active([1, 2, 3])               # position 3 < beta
    assert not penalty.active([1, 2, 3, 4])        # position 4: the first thought is 4 old
    assert penalty.active([1, 5, 2, 3])            # a thought started at 1: 4 - 1 < 4
    assert not penalty.active([5, 1, 2, 3])        # started at 0: 4 - 0 = beta
    assert penalty.active([1, 2, 3, 4, 5, 6, 7])   # started at 4
    logits = np.zeros(8, dtype=np.float32)
    out = penalty([], logits)
    assert out[switch] == -3.0 and np.count_nonzero(out) == 1
    untouched = penalty([1, 2, 3, 4], np.zeros(8, dtype=np.float32))
    assert not untouched.any()


def test_processor_is_passed_and_switches_are_counted() -> None:
    wait = toy_tokenize(" Wait")[0]

    def reply(prompt: Prompt, params: SamplingParams) -> list[Completion]:
        [processor] = params.logits_processors
        assert isinstance(processor, SwitchPenalty)
        assert (processor.alpha, processor.beta) == (2.5, 50) and wait in processor.token_ids
        return [Completion("x Wait y. Answer: 4", "stop", Usage(10, 4),
                           token_ids=(1, wait, 2, wait))]

    backend = ProcessorBackend(reply)
    answer = Engine(backend, Registry.from_entry_points()).ask(
        "q", strategy="thought-switch-penalty", params={"alpha": "2.5", "beta": "50"})
    assert answer.answer == "4"
    assert answer.info["mode"] == "logits_processor" and answer.info["switch_tokens"] == 2
    assert [e.strategy for e in answer.ledger.entries] == ["thought-switch-penalty"]


def test_without_processors_a_biased_segment_then_a_raw_continuation() -> None:
    backend = ToyBackend(["w " * 10, "so Answer: 6"])
    answer = Engine(backend, Registry.from_entry_points()).ask(
        Problem("q"), strategy="thought-switch-penalty", params={"beta": 4},
        sampling=SamplingParams(max_tokens=30))
    (first_prompts, first), (second_prompts, second) = backend.calls
    ids = set(switch_token_ids(backend, ["Alternatively", "Wait", "Another approach", "Hmm"]))
    assert first.max_tokens == 4 and first.logit_bias == dict.fromkeys(ids, -3.0)
    assert isinstance(first_prompts[0], list)
    assert second_prompts[0] == backend.render_chat(first_prompts[0]) + "w w w w"
    assert second.max_tokens == 26 and second.logit_bias == {}
    assert answer.text == "w w w wso Answer: 6" and answer.answer == "6"
    assert answer.info["mode"] == "logit_bias+continuation"
    assert answer.ledger.total().completion_tokens == 4 + 3


def test_without_raw_continuation_the_bias_covers_the_whole_answer() -> None:
    class ChatOnly(ToyBackend):
        supports_raw_completion = False

    backend = ChatOnly(["Wait Answer: 2"])
    answer = Engine(backend, Registry.from_entry_points()).ask(
        "q", strategy="thought-switch-penalty", sampling=SamplingParams(max_tokens=30))
    [(_, params)] = backend.calls
    assert params.max_tokens == 30 and params.logit_bias
    assert answer.info["mode"] == "logit_bias" and answer.info["switch_tokens"] == 1


def test_bad_params() -> None:
    registry = Registry.from_entry_points()
    with pytest.raises(ConfigError, match="beta must be an integer >= 1"):
        registry.create("thought-switch-penalty", {"beta": "0"})
    with pytest.raises(ConfigError, match="alpha must be in"):
        registry.create("thought-switch-penalty", {"alpha": "-1"})
    with pytest.raises(ConfigError, match="switch_words"):
        registry.create("thought-switch-penalty", {"switch_words": " , "})
