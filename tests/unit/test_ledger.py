import asyncio
import threading

import pytest

from ponder.ledger import Ledger, Usage, current_ledger


def test_usage_adds_and_derives() -> None:
    total = Usage(10, 5, 0) + Usage(10, 7, 10)
    assert total == Usage(20, 12, 10)
    assert total.prefill_tokens == 10
    assert total.total_tokens == 32
    with pytest.raises(ValueError, match="cached"):
        Usage(5, 0, 6)


def test_scopes_label_rows_and_totals_split_by_phase() -> None:
    ledger = Ledger()
    with ledger.activate():
        with Ledger.scope(phase="sleep", strategy="rethink"):
            current_ledger().record(backend="b", model="m", usage=Usage(100, 50), seconds=1.0)
        with Ledger.scope(strategy="cot"):
            current_ledger().record(backend="b", model="m", usage=Usage(10, 5), seconds=0.5)
    assert [(e.phase, e.strategy) for e in ledger.entries] == [("sleep", "rethink"),
                                                               ("test", "cot")]
    assert ledger.total("sleep") == Usage(100, 50)
    assert ledger.total("test") == Usage(10, 5)
    assert ledger.seconds() == pytest.approx(1.5)
    # a test-time token costs 10 sleep-time tokens by default
    assert ledger.cost() == 50 + 10 * 5
    assert ledger.cost(test_time_weight=1.0, include_prompt=True) == 150 + 15
    summary = ledger.summary()
    assert summary["completion_tokens"] == 55
    assert summary["strategies"]["sleep/rethink"]["completion_tokens"] == 50


def test_no_current_ledger_outside_activate() -> None:
    assert current_ledger() is None
    with Ledger().activate() as ledger:
        assert current_ledger() is ledger
    assert current_ledger() is None


def test_concurrent_tasks_never_mix_counts() -> None:
    async def request(tokens: int) -> Ledger:
        ledger = Ledger()
        with ledger.activate():
            for _ in range(20):
                await asyncio.sleep(0)
                current_ledger().record(backend="b", model="m", usage=Usage(0, tokens),
                                        seconds=0.0)
        return ledger

    async def main() -> list[Ledger]:
        return await asyncio.gather(*(request(t) for t in (1, 2, 3)))

    ledgers = asyncio.run(main())
    assert [lg.total().completion_tokens for lg in ledgers] == [20, 40, 60]


def test_threads_record_into_their_own_ledgers() -> None:
    results: dict[int, int] = {}

    def work(k: int) -> None:
        ledger = Ledger()
        with ledger.activate():
            for _ in range(100):
                current_ledger().record(backend="b", model="m", usage=Usage(0, k), seconds=0)
        results[k] = ledger.total().completion_tokens

    threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {1: 100, 2: 200, 3: 300, 4: 400}
