"""Training recipes. ``ibpo`` is pure (no torch); ``sft`` needs the ``train`` extra.

* ``ibpo.py``: IBPO's length groups and per-batch ILP selection (arXiv:2501.17974).
* ``sft.py``: the semi-online loop around it on transformers: sample, score,
  select, weighted SFT, evaluate, save (``ponder train ibpo``).
"""

from __future__ import annotations

from ponder.train.ibpo import IBPOConfig, Sample, Selection, is_long, long_share, select

__all__ = ["IBPOConfig", "Sample", "Selection", "is_long", "long_share", "select"]
