"""A sleep worker whose model blocks forever once asked: the crash test SIGKILLs it.

Usage: python blocking_worker.py DATABASE_URL MARKER_FILE
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ponder.backends.base import Prompt
from ponder.backends.scripted import ScriptedBackend
from ponder.params import SamplingParams
from ponder.sleep import ContextStore, SleepAgent, SleepParams, SleepWorker


def main() -> None:
    url, marker = sys.argv[1], Path(sys.argv[2])

    def block(prompt: Prompt, params: SamplingParams) -> list[str]:
        marker.write_text("the sleep agent is running")
        time.sleep(3600)
        return ["never"]

    with ContextStore(url) as store:
        worker = SleepWorker(store, ScriptedBackend(block), SleepAgent(SleepParams(rounds=1)),
                             lease_seconds=1.0, poll_seconds=0.05, owner="doomed-worker")
        worker.run(max_jobs=1)


if __name__ == "__main__":
    main()
